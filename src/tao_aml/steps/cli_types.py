"""argparse types for values as Azure ML passes them on a command line."""

import argparse
from typing import Callable, List

from tao_aml.steps import input_kinds


def boolean(text: str) -> bool:
    """Azure ML renders boolean inputs as `True`/`False`; accept the usual spellings."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got {!r}".format(text))


def of_kind(kind: str) -> Callable[[str], str]:
    """An argparse type for a string input of `kind` (input_kinds.py): argparse names the flag when it refuses."""
    rule = input_kinds.KINDS[kind]

    def check(text: str) -> str:
        problem = rule.problem(text)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return text

    return check


def name_list(text: str) -> List[str]:
    """A comma-separated list of names such as `face` or `face,mask`; empty items are refused."""
    return [part.strip() for part in of_kind("names")(text).split(",")]


def override_list(text: str) -> List[str]:
    """Spec overrides `a.b=1;c.d=x` as one string: a pipeline input holds a single value."""
    return [part.strip() for part in of_kind("overrides")(text).split(";") if part.strip()]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, got {!r}".format(text)) from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected a number of at least 1, got {}".format(value))
    return value
