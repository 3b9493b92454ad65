"""`tao-aml`: validate the repository and build (or dry-run) pipeline jobs, offline first."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .pipelines import REPO_ROOT, SettingError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def cmd_validate(args: argparse.Namespace) -> int:
    from .validation import validate_repository

    root = Path(args.root).resolve()
    problems = validate_repository(root)
    for problem in problems:
        print(problem.render(root))
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_PROBLEMS
    print("all components, pipelines and specs are valid")
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    from .submit import build_job, write_resolved

    assignments = list(args.set)
    if args.gpu_compute:
        assignments.append(f"gpu_compute={args.gpu_compute}")
    if args.cpu_compute:
        assignments.append(f"cpu_compute={args.cpu_compute}")
    try:
        built = build_job(args.pipeline, assignments, args.experiment)
    except SettingError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    resolved = write_resolved(built, Path(args.output_dir) / args.pipeline)
    print(f"pipeline {args.pipeline}: {len(built.steps)} steps, validated offline")
    width = max(len(step.name) for step in built.steps)
    for step in built.steps:
        print(f"  {step.name:<{width}}  on {step.compute:<14} {step.component}")
    print(f"resolved job written to {resolved}")
    if args.dry_run:
        return EXIT_OK
    print("error: submission to a workspace is not available yet; use --dry-run", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tao-aml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", help="check every component, pipeline and spec offline")
    validate.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this checkout)")
    validate.set_defaults(func=cmd_validate)

    submit = sub.add_parser("submit", help="build a pipeline job; --dry-run stays offline")
    submit.add_argument("pipeline", help="pipeline name, e.g. facenet")
    submit.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="pipeline input (train_epochs=10) or spec field of a step (train.training_config.batch_size_per_gpu=8)",
    )
    submit.add_argument("--gpu-compute", help="GPU cluster name (default: the pipeline's gpu_compute)")
    submit.add_argument("--cpu-compute", help="CPU cluster name (default: the pipeline's cpu_compute)")
    submit.add_argument("--experiment", help="experiment name (default: the pipeline's)")
    submit.add_argument("--output-dir", default="build", help="where the resolved job YAML is written")
    submit.add_argument("--dry-run", action="store_true", help="build and validate only; nothing is sent")
    submit.set_defaults(func=cmd_submit)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Our environments carry names for registration; loaded inline, azure-ai-ml warns it ignores them.
    logging.getLogger("azure.ai.ml._schema.assets").setLevel(logging.ERROR)
    # "Class X: This is an experimental class" for classes azure-ai-ml itself instantiates on load.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
