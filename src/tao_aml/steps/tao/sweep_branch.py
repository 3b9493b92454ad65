"""A failing branch of a pruning sweep must not fail the job: it leaves BRANCH_FAILED.json instead.

Azure ML runs no node whose upstream failed, so one threshold that TAO cannot prune, retrain or
evaluate would stop the selection step and with it every other branch. The submitter sets
TAO_AML_SWEEP_BRANCH=<i> on each branch node (prune_<i>, retrain_<i>, evaluate_retrained_<i>); under it a
step whose body raises writes BRANCH_FAILED.json ({"branch": i, "step": module, "error": one line}) into
each of its output folders, logs the error and exits 0, and a step whose input folder holds
BRANCH_FAILED.json copies it to its outputs and exits 0 without running. The selection step
(steps/asset/select_model.py) names such a branch and leaves it out. Without the variable, `run` is
steps.common.run_main.
"""

import argparse
import json
import logging
import os
import sys
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from tao_aml.steps.common import StepError, atomic_write_text, run_main, setup_logging

LOG = logging.getLogger("tao_aml.sweep_branch")

BRANCH_VARIABLE = "TAO_AML_SWEEP_BRANCH"
# The most branches a sweep has: the selection component's slots (components/report/select_model: threshold_1..12).
SELECT_SLOTS = 12
MARKER = "BRANCH_FAILED.json"

Body = Callable[[Optional[List[str]]], None]


def run(body: Body, argv: Optional[List[str]] = None, inputs: Sequence[str] = (),
        outputs: Sequence[str] = ()) -> int:
    """run_main, or under TAO_AML_SWEEP_BRANCH the branch protocol. `inputs` and `outputs` are the flag
    names (without dashes) of the step's input and output folders."""
    branch_text = os.environ.get(BRANCH_VARIABLE)
    if not branch_text:
        return run_main(body, argv)
    setup_logging(os.environ.get("TAO_AML_VERBOSE") == "1")
    if not branch_text.strip().isdigit() or int(branch_text) < 1:
        LOG.error("%s must be a branch number (1, 2, ...), got %r", BRANCH_VARIABLE, branch_text)
        return 2
    branch = int(branch_text)
    folders = _flag_values(list(sys.argv[1:] if argv is None else argv), list(inputs) + list(outputs))
    targets = [folders[name] for name in outputs if folders.get(name)]
    upstream = next((os.path.join(folders[name], MARKER) for name in inputs
                     if folders.get(name) and os.path.isfile(os.path.join(folders[name], MARKER))), None)
    if upstream is not None:
        with open(upstream, encoding="utf-8") as handle:
            marker = handle.read()
        LOG.warning("sweep branch %d: %s (%s); passed on without running", branch, upstream, describe(upstream))
        _write(targets, marker)
        return 0
    for folder in targets:  # an earlier attempt's marker (a rerun on the outputs it left) is no longer true
        if os.path.isfile(os.path.join(folder, MARKER)):
            os.remove(os.path.join(folder, MARKER))
    try:
        body(argv)
    except Exception as err:  # every failure of a branch, not only the ones the steps foresee
        error = _one_line(err)
        if isinstance(err, StepError):
            LOG.error("%s", err)
        else:
            LOG.exception("%s", error)
        LOG.error("sweep branch %d failed; the selection step leaves it out: %s", branch, error)
        _write(targets, json.dumps({"branch": branch, "step": _module(body), "error": error}, indent=2) + "\n")
    return 0


def failure(folders: Iterable[str]) -> Optional[str]:
    """Why a branch failed ("<step>: <error>"), from the first of `folders` holding BRANCH_FAILED.json."""
    for folder in folders:
        path = os.path.join(folder, MARKER)
        if os.path.isfile(path):
            return describe(path)
    return None


def describe(path: str) -> str:
    """A BRANCH_FAILED.json as one line: the step that failed and its error."""
    try:
        with open(path, encoding="utf-8") as handle:
            marker = json.load(handle)
        return "{}: {}".format(".".join(str(marker["step"]).split(".")[-2:]), marker["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return "{} is not readable JSON with step and error".format(path)


def _flag_values(argv: List[str], names: List[str]) -> Dict[str, Optional[str]]:
    """The values of the folder flags on the step's command line, as the step's own parser reads them."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for name in names:
        parser.add_argument("--" + name)
    known, _ = parser.parse_known_args(argv)
    return vars(known)


def _write(folders: List[str], marker: str) -> None:
    for folder in folders:
        atomic_write_text(os.path.join(folder, MARKER), marker)


def _one_line(err: Exception) -> str:
    """The first line of the error: TaoFailed's message goes on with the tail of TAO's log."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if isinstance(err, StepError):
        return first or type(err).__name__
    return "{}: {}".format(type(err).__name__, first) if first else type(err).__name__


def _module(body: Body) -> str:
    """The step's module name, also when it runs as `python -m` (then its functions live in __main__)."""
    if body.__module__ != "__main__":
        return body.__module__
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else os.path.basename(sys.argv[0])
