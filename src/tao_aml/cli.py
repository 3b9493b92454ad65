"""`tao-aml`: validate the repository, submit pipelines, publish assets, create clusters.

Exit codes: 0 success; 1 problems found by `validate`, or the job failed or was canceled while
`--stream` followed it; 2 a usage or setting error (unknown `--set` name, wrong type, a version that
must be bumped, an asset a registry cannot take); 3 workspace, sign-in or compute problem; 130 Ctrl-C
while streaming (the job keeps running).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .pipelines import REPO_ROOT, SettingError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AZURE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
LOG = logging.getLogger("tao_aml")


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    from .validation import validate_repository

    root = Path(args.root).resolve()
    problems = validate_repository(root)
    for problem in problems:
        print(problem.render(root))
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return EXIT_FAILED
    print("all components, pipelines and specs are valid")
    return EXIT_OK


def cmd_submit(args: argparse.Namespace) -> int:
    from .graph import write_graph
    from .pipelines import Pipeline
    from .profiles import format_value
    from .submit import FINISHED_OK, build_job, follow, resume_data, send, write_resolved
    from .workspace import WorkspaceError, azure_errors, connect, resolve_target

    assignments = list(args.set)
    if args.gpu_compute:
        assignments.append(f"gpu_compute={args.gpu_compute}")
    if args.cpu_compute:
        assignments.append(f"cpu_compute={args.cpu_compute}")
    if args.dry_run and args.resume_from:
        error("--resume-from needs a workspace (it looks up the earlier job's steps there); drop --dry-run")
        return EXIT_USAGE
    client, data = None, {}
    try:
        # Offline first: a missing workspace is reported before anything is built.
        target = None if args.dry_run else resolve_target(
            args.config, args.subscription, args.resource_group, args.workspace
        )
        if args.resume_from:
            pipeline = Pipeline.load(args.pipeline, Path(args.root))
            client = connect(target)
            with azure_errors(target):
                data = resume_data(client, pipeline, args.resume_from)
        built = build_job(args.pipeline, assignments, args.experiment, Path(args.root), args.profile, data)
    except SettingError as err:
        error(str(err))
        return EXIT_USAGE
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    out_dir = Path(args.output_dir) / args.pipeline
    resolved = write_resolved(built, out_dir)
    pictures = write_graph(args.pipeline, built.steps, out_dir)
    print(f"pipeline {args.pipeline}: {len(built.steps)} steps, validated offline")
    width = max(len(step.name) for step in built.steps)
    for step in built.steps:
        print(f"  {step.name:<{width}}  " + ", ".join(step.details()))
    print("pipeline inputs" + (f" (profile {args.profile}, then --set)" if args.profile else "") + ":")
    for name, value in built.inputs.items():
        print(f"  {name} = {'(not set)' if value is None else format_value(value)}")
    print(f"resolved job written to {resolved}")
    print("step graph written to " + ", ".join(map(str, pictures)))
    if target is None:
        return EXIT_OK
    try:
        client = client or connect(target)
        with azure_errors(target):
            job = send(client, built)
        print(f"submitted {job.name} to {target}, experiment {job.experiment_name}")
        print(f"Studio: {job.studio_url}")
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    if not args.stream:
        return EXIT_OK
    try:
        with azure_errors(target):
            status = follow(client, str(job.name))
    except WorkspaceError as err:
        error(f"{err} (the job may still be running: {job.studio_url})")
        return EXIT_AZURE
    except KeyboardInterrupt:
        error(f"stopped following; the job keeps running: {job.studio_url}")
        return EXIT_INTERRUPTED
    print(f"job {job.name} finished: {status}")
    return EXIT_OK if status == FINISHED_OK else EXIT_FAILED


def cmd_profile_show(args: argparse.Namespace) -> int:
    from .pipelines import Pipeline
    from .profiles import show

    try:
        lines = show(Pipeline.load(args.pipeline, Path(args.root)), args.profile)
    except SettingError as err:
        error(str(err))
        return EXIT_USAGE
    print("\n".join(lines))
    return EXIT_OK


def cmd_register(args: argparse.Namespace) -> int:
    from .register import Refs, RegisterError, plan, publish
    from .workspace import Target, WorkspaceError, azure_errors, connect, resolve_target

    refs = Refs(args.version, args.registry)
    try:
        assets = plan(Path(args.root), refs)
        if args.dry_run:
            for asset in assets:
                print(f"would publish  {asset.label}  (sha256 {asset.content_hash[:12]})")
            return EXIT_OK
        target = Target(registry_name=args.registry) if args.registry else resolve_target(
            args.config, args.subscription, args.resource_group, args.workspace
        )
        client = connect(target)
        with azure_errors(target):
            published = publish(client, assets, print)
    except RegisterError as err:
        error(str(err))
        return EXIT_USAGE
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    print(f"{len(published)} published, {len(assets) - len(published)} unchanged, in {target}")
    return EXIT_OK


def cmd_compute_create(args: argparse.Namespace) -> int:
    from .workspace import WorkspaceError, azure_errors, compute_definition, connect, resolve_target

    try:
        compute = compute_definition(Path(args.root), args.kind, args.name, args.low_priority)
        target = resolve_target(args.config, args.subscription, args.resource_group, args.workspace)
        client = connect(target)
        with azure_errors(target):
            created = client.compute.begin_create_or_update(compute).result()
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    print(f"compute {created.name} ({created.size}, {compute.tier}) ready in {target}")
    return EXIT_OK


def add_workspace_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "workspace", "first of: these flags, --config, AZUREML_SUBSCRIPTION_ID / AZUREML_RESOURCE_GROUP / "
        "AZUREML_WORKSPACE_NAME, ./config.json",
    )
    group.add_argument("--config", help="config.json downloaded from Studio (workspace menu)")
    group.add_argument("--subscription", help="subscription id")
    group.add_argument("--resource-group", help="resource group of the workspace")
    group.add_argument("--workspace", help="workspace name")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=str(REPO_ROOT), help="repository root (default: this checkout)")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens (never secrets)")
    parser = argparse.ArgumentParser(
        prog="tao-aml", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser("validate", parents=[common], help="check every component, pipeline and spec offline")
    validate.set_defaults(func=cmd_validate)

    submit = sub.add_parser(
        "submit", parents=[common], help="build, check and submit a pipeline job; --dry-run stays offline"
    )
    submit.add_argument("pipeline", help="pipeline name: a folder of pipelines/, e.g. facenet")
    submit.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="pipeline input (train_epochs=10) or spec field of a step (train.training_config.batch_size_per_gpu=8)",
    )
    submit.add_argument("--gpu-compute", help="GPU cluster name (default: the pipeline's gpu_compute)")
    submit.add_argument("--cpu-compute", help="CPU cluster name (default: the pipeline's cpu_compute)")
    submit.add_argument(
        "--profile", help="named input values of pipelines/<name>/profiles.yml, e.g. smoke; --set wins over them"
    )
    submit.add_argument(
        "--resume-from", metavar="JOB_NAME",
        help="continue train and retrain from the checkpoints of this earlier job (needs a workspace)",
    )
    submit.add_argument("--experiment", help="experiment name (default: the pipeline's)")
    submit.add_argument("--output-dir", default="build", help="where the resolved job and step graph are written")
    mode = submit.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="build and validate only; nothing is sent")
    mode.add_argument("--stream", action="store_true", help="follow the job's logs; exit 1 if it fails")
    add_workspace_arguments(submit)
    submit.set_defaults(func=cmd_submit)

    profile = sub.add_parser("profile", help="show a pipeline's profiles (named input values)")
    profile_sub = profile.add_subparsers(dest="action", required=True)
    show = profile_sub.add_parser(
        "show", parents=[common], help="print a profile as `az ml job create --set` and `tao-aml submit --set` lines"
    )
    show.add_argument("pipeline", help="pipeline name, e.g. facenet")
    show.add_argument("profile", help="profile name, e.g. smoke")
    show.set_defaults(func=cmd_profile_show)

    register = sub.add_parser(
        "register", parents=[common],
        help="publish environments, components, pipeline components and specs (Designer, registries)",
    )
    register.add_argument("--registry", help="publish to this Azure ML registry instead of a workspace")
    register.add_argument("--version", default=__version__, help=f"version of every asset (default {__version__})")
    register.add_argument("--dry-run", action="store_true", help="list what would be published; nothing is sent")
    add_workspace_arguments(register)
    register.set_defaults(func=cmd_register)

    compute = sub.add_parser("compute", help="create the clusters of compute/")
    compute_sub = compute.add_subparsers(dest="action", required=True)
    create = compute_sub.add_parser(
        "create", parents=[common], help="create (or update) compute/<kind>-cluster.yml in the workspace"
    )
    create.add_argument("kind", choices=["gpu", "cpu"])
    create.add_argument("--name", help="cluster name (default: the file's, gpu-cluster or cpu-cluster)")
    create.add_argument("--low-priority", action="store_true", help="spot-priced nodes Azure may take back")
    add_workspace_arguments(create)
    create.set_defaults(func=cmd_compute_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    # Our environments carry names for registration; loaded inline, azure-ai-ml warns it ignores them.
    logging.getLogger("azure.ai.ml._schema.assets").setLevel(logging.ERROR)
    # "Class X: This is an experimental class" for classes azure-ai-ml itself instantiates on load.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    # azure-core logs every HTTP request at INFO; headers are redacted, but it drowns our lines.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
