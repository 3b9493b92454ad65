"""What every step shares: logging, the user-error type, and the entry-point wrapper."""

import json
import logging
import os
import sys
import tempfile
from typing import Any, Callable, List, Optional

LOG = logging.getLogger("tao_aml")


class StepError(Exception):
    """A problem with the step's input that the user can fix; reported without a traceback."""


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_main(body: Callable[[Optional[List[str]]], None], argv: Optional[List[str]] = None) -> int:
    """Run a step body; a StepError becomes one clear line on stderr and exit code 2."""
    setup_logging(os.environ.get("TAO_AML_VERBOSE") == "1")
    try:
        body(argv)
    except StepError as err:
        LOG.error("%s", err)
        return 2
    return 0


def atomic_write_text(path: str, text: str) -> None:
    """Write a file so that a reader never sees it half written."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_json(path: str, missing: str) -> Any:
    """A JSON file another step wrote; StepError(missing) when there is none, one naming it when it is not JSON."""
    if not os.path.isfile(path):
        raise StepError(missing)
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except ValueError as err:
            raise StepError("{} is not JSON: {}".format(path, err)) from None
