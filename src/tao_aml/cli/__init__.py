"""`tao-aml`: validate the repository, submit pipelines, publish assets, register models, create clusters.

Exit codes: 0 success; 1 problems found by `validate`, or the job failed or was canceled while
`--stream` followed it, or a step (or an image build) of `run --local` or `rehearse` failed; 2 a usage or setting
error (unknown `--set` name, wrong type, a version that must be bumped, an asset a registry cannot
take, a model with no name or a taken model version, a `--workdir` that cannot hold the run); 3
workspace, sign-in or compute problem, or a job with no model to register (not completed, no
register_model step, no model card), or `docker` missing or not answering for `run --local` (with
--no-docker: a TAO CLI or a module the steps import missing); 130
Ctrl-C while streaming (the job keeps running) or during `run --local` (the same command continues).
`predict`, `triton` and `deploy` exit 2 on bad input (an image, a model asset, an ONNX model, an
endpoint setting or a model that is not a Triton model) and 3 on a workspace or endpoint problem.
"""

from __future__ import annotations

import argparse
import logging

from tao_aml.cli import assets, local, pipelines, serving
from tao_aml.repo.pipelines import REPO_ROOT


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this checkout)")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens (never secrets)")
    parser = argparse.ArgumentParser(
        prog="tao-aml", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (pipelines, assets, local, serving):  # in this order in --help
        group.add_parsers(sub, common)
    parser.epilog = "every command (tao-aml COMMAND --help for its options):\n" + "\n".join(
        f"  {name:<22}  {text}" for name, text in commands(parser))
    return parser


def commands(parser: argparse.ArgumentParser, prefix: str = "tao-aml") -> list[tuple[str, str]]:
    """(`tao-aml model register`, its help) for every command, sub-commands included, as the parser has them."""
    found = []
    for action in parser._actions:  # argparse keeps sub-commands only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                inner = commands(child, f"{prefix} {name}")
                found += inner or [(f"{prefix} {name}", helps.get(name, ""))]
    return found


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # Our environments carry names for registration; loaded inline, azure-ai-ml warns it ignores them.
    logging.getLogger("azure.ai.ml._schema.assets").setLevel(logging.ERROR)
    # "Class X: This is an experimental class" for classes azure-ai-ml itself instantiates on load.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    # The same for fields (`queue_settings`, which --serverless --set spot=true writes).
    logging.getLogger("azure.ai.ml._schema.core.fields").setLevel(logging.ERROR)
    # azure-core logs every HTTP request at INFO; headers are redacted, but it drowns our lines.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return args.func(args)
