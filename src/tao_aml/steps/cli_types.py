"""argparse types for values as Azure ML passes them on a command line."""

import argparse
from typing import List


def boolean(text: str) -> bool:
    """Azure ML renders boolean inputs as `True`/`False`; accept the usual spellings."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got {!r}".format(text))


def name_list(text: str) -> List[str]:
    """A comma-separated list of names such as `face` or `face,mask`; empty items are refused."""
    names = [part.strip() for part in text.split(",")]
    if not names or any(not name for name in names):
        raise argparse.ArgumentTypeError("expected a comma-separated list of names, got {!r}".format(text))
    return names


def override_list(text: str) -> List[str]:
    """Spec overrides `a.b=1;c.d=x` as one string: a pipeline input holds a single value."""
    return [part.strip() for part in text.replace("\n", ";").split(";") if part.strip()]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, got {!r}".format(text)) from None
    if value < 1:
        raise argparse.ArgumentTypeError("expected a number of at least 1, got {}".format(value))
    return value
