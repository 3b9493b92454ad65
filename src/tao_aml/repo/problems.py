"""One finding of the offline checks, named by file and key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    file: Path
    key: str
    message: str

    def render(self, root: Path) -> str:
        try:
            shown = self.file.relative_to(root)
        except ValueError:
            shown = self.file
        return f"{shown}: {self.key}: {self.message}"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`; did you mean train_epochs?` for the closest of `choices` to a misspelt name, or ""."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]}?" if close else ""
