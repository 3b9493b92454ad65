"""Problems and warnings about a data set, listed up to SHOWN_PROBLEMS and then counted."""

import logging
from typing import List

from tao_aml.steps.common import StepError

# How many problems (or warnings) one message lists before it only counts the rest.
SHOWN_PROBLEMS = 10


def _listed(items: List[str]) -> str:
    more = len(items) - SHOWN_PROBLEMS
    return "\n  ".join(items[:SHOWN_PROBLEMS]) + ("\n  ... and {} more".format(more) if more > 0 else "")


def problems_error(where: str, problems: List[str]) -> StepError:
    """One error: `where` has N problem(s), then the first problems and how many more there are."""
    return StepError("{} has {} problem(s):\n  {}".format(where, len(problems), _listed(problems)))


def warn_listed(log: logging.Logger, header: str, items: List[str]) -> None:
    """One warning: `header (N):`, then the first items and how many more there are; nothing when empty."""
    if items:
        log.warning("%s (%d):\n  %s", header, len(items), _listed(items))
