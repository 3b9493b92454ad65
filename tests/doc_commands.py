"""The commands README.md and docs/*.md show, read as a user pastes them into bash."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Names only the service knows, which the docs hold in shell variables: example values for the tests.
EXAMPLE_VALUES = {"JOB": "tao_job_7", "STEP_JOB": "tao_job_7_register_model"}


@dataclass(frozen=True)
class Shown:
    """One command line of a bash block (continuation lines joined), with the page and section it is in."""

    page: str
    section: str
    line: str

    @property
    def tokens(self) -> list[str]:
        """The words bash passes, comments dropped, variables given their example values; after `&&`, the
        last command of the line."""
        words = shlex.split(self.line.split("&&")[-1], comments=True)
        return [re.sub(r"\$\{?(\w+)\}?", lambda m: EXAMPLE_VALUES.get(m.group(1), m.group(0)), word) for word in words]

    def __str__(self) -> str:
        return f"{self.page} ({self.section}): {self.line}"


def doc_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def shown_commands(files: list[Path] = DOC_FILES) -> list[Shown]:
    """Every command line of every ```bash block, in page order."""
    found = []
    for path in files:
        section = ""
        for part in re.split(r"(```bash\n.*?```)", doc_text(path), flags=re.S):
            if not part.startswith("```bash"):
                headings = re.findall(r"^#+ (.+)$", part, re.M)
                section = headings[-1] if headings else section
                continue
            for line in part.removeprefix("```bash\n").removesuffix("```").replace("\\\n", " ").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    found.append(Shown(path.relative_to(REPO).as_posix(), section, line.strip()))
    return found


def tao_aml_commands(files: list[Path] = DOC_FILES) -> list[tuple[Shown, list[str]]]:
    """Each `tao-aml ...` (or `.venv/bin/tao-aml ...`) line, with its arguments."""
    return [(shown, shown.tokens[1:]) for shown in shown_commands(files)
            if shown.tokens and shown.tokens[0].endswith("tao-aml")]


def inline_tao_aml(files: list[Path] = DOC_FILES) -> list[tuple[str, str]]:
    """Every `tao-aml ...` in inline code of the prose (page, text)."""
    found = []
    for path in files:
        prose = re.sub(r"```.*?```", "", doc_text(path), flags=re.S)
        found += [(path.relative_to(REPO).as_posix(), " ".join(code.split()))
                  for code in re.findall(r"`(tao-aml [^`]+)`", prose)]
    return found
