"""Every `tao-aml` command README.md and docs/ show goes through the CLI's own argument parser, so none goes
stale when an option is renamed; the README stays short and its links lead somewhere."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from doc_commands import DOC_FILES, REPO, doc_text, inline_tao_aml, tao_aml_commands
from tao_aml.cli import build_parser

README_MAX_LINES = 250
PARSER = build_parser()


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction)), {})


def command_parser(words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The (sub)parser the leading words select, and the words after them."""
    parser = PARSER
    while words and words[0] in subcommands(parser):
        parser, words = subcommands(parser)[words[0]], words[1:]
    return parser, words


def parse_cases() -> list:
    return [pytest.param(args, id=str(shown)) for shown, args in tao_aml_commands()]


@pytest.mark.parametrize("args", parse_cases())
def test_every_shown_command_parses(args: list[str], capsys: pytest.CaptureFixture) -> None:
    try:
        PARSER.parse_args(args)
    except SystemExit:
        pytest.fail(f"tao-aml {' '.join(args)}: {capsys.readouterr().err}")


@pytest.mark.parametrize("page, text", inline_tao_aml(), ids=lambda value: value)
def test_every_inline_command_names_real_options(page: str, text: str) -> None:
    """Prose shows synopses (`tao-aml triton MODEL_DIR --output-dir REPO [--plan --gpu A100]`): each
    subcommand must exist and each option it names must be one of that subcommand's."""
    words = text.split()[1:]
    assert words[0] in subcommands(PARSER) or words[0].startswith("-"), f"{page}: `{text}`: no such command"
    parser, rest = command_parser(words)
    options = {option for action in parser._actions for option in action.option_strings}
    for word in rest:
        flag = word.strip("[]").partition("=")[0]
        if flag.startswith("--"):
            assert flag in options, f"{page}: `{text}`: {flag} is not an option of this command"


def test_the_readme_is_short() -> None:
    assert len(doc_text(REPO / "README.md").splitlines()) <= README_MAX_LINES


def test_the_readme_leads_to_every_docs_page() -> None:
    readme = doc_text(REPO / "README.md")
    for page in (REPO / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    prose = re.sub(r"```.*?```", "", doc_text(path), flags=re.S)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", prose, re.M)}


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: p.name)
def test_every_link_between_pages_resolves(path: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", doc_text(path)):
        if re.match(r"\w+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{path.name}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{path.name}: link to {target}: no such heading"
