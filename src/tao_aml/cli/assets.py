"""What is made in a workspace or registry: `register` (Designer assets), `model register`, `images build`,
`compute create`."""

from __future__ import annotations

import argparse
from pathlib import Path

from tao_aml import __version__
from tao_aml.cli.common import EXIT_AZURE, EXIT_OK, EXIT_USAGE, add_workspace_arguments, error, positive_int
from tao_aml.steps.cli_types import of_kind


def cmd_register(args: argparse.Namespace) -> int:
    from tao_aml.azure.register import Refs, RegisterError, plan, publish
    from tao_aml.azure.workspace import Target, WorkspaceError, azure_errors, connect, resolve_target
    from tao_aml.repo.run_shape import RunShape

    refs = Refs(args.version, args.registry, args.images)
    try:
        assets = plan(Path(args.root), refs, RunShape(args.nodes, args.gpus_per_node), args.sweep_branches)
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


def sweep_branches(text: str) -> int:
    """--sweep-branches: 2 to the selection step's slots (one branch is no sweep)."""
    from tao_aml.repo.sweep import SELECT_SLOTS

    number = positive_int(text)
    if not 2 <= number <= SELECT_SLOTS:
        raise argparse.ArgumentTypeError(f"{text}: a sweep has 2 to {SELECT_SLOTS} branches (the selection step's "
                                         "slots)")
    return number


def cmd_model_register(args: argparse.Namespace) -> int:
    from tao_aml.azure.model_asset import ModelJobError, ModelNameError, register_from_job
    from tao_aml.azure.workspace import WorkspaceError, azure_errors, connect, resolve_target

    try:
        target = resolve_target(args.config, args.subscription, args.resource_group, args.workspace)
        client = connect(target)
        with azure_errors(target):
            model = register_from_job(client, args.job_name, args.name, args.version, args.registry, print)
    except ModelNameError as err:
        error(str(err))
        return EXIT_USAGE
    except (ModelJobError, WorkspaceError) as err:
        error(str(err))
        return EXIT_AZURE
    print(f"model {model.name}:{model.version} in {target}")
    return EXIT_OK


def cmd_compute_create(args: argparse.Namespace) -> int:
    from tao_aml.azure.workspace import WorkspaceError, azure_errors, compute_definition, connect, resolve_target

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


def cmd_images_build(args: argparse.Namespace) -> int:
    from tao_aml.azure.images import ImageError, build_all

    try:
        commands = build_all(Path(args.root), args.registry, run=not args.dry_run)
    except ImageError as err:
        error(str(err))
        return EXIT_AZURE
    for command in commands:
        print(("would run  " if args.dry_run else "built  ") + " ".join(command))
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    register = sub.add_parser(
        "register", parents=[common],
        help="publish environments, components, pipeline components and specs (Designer, registries)",
    )
    register.add_argument("--registry", help="publish to this Azure ML registry instead of a workspace")
    register.add_argument("--version", default=__version__, help=f"version of every asset (default {__version__})")
    register.add_argument("--dry-run", action="store_true", help="list what would be published; nothing is sent")
    register.add_argument(
        "--images", metavar="ACR", type=of_kind("container_registry"),
        help="register the environments as their prebuilt images in this container registry (tao-aml images build)",
    )
    register.add_argument(
        "--nodes", type=positive_int, default=1,
        help="nodes of train and retrain in the published pipeline components (default 1)",
    )
    register.add_argument(
        "--gpus-per-node", type=positive_int, default=1,
        help="GPUs per node of train and retrain; a shape other than 1x1 is published as <name>_<N>x<G>",
    )
    register.add_argument(
        "--sweep-branches", type=sweep_branches, metavar="N",
        help="also publish each pipeline with a pruning sweep of N branches (2-12) as <name>_sweep<N>: thresholds "
        "pruning_threshold_1..N and max_map_drop are its inputs (docs/pruning-sweep.md)",
    )
    add_workspace_arguments(register)
    register.set_defaults(func=cmd_register)

    model = sub.add_parser("model", help="model assets made by pipeline jobs")
    model_sub = model.add_subparsers(dest="action", required=True)
    model_register = model_sub.add_parser(
        "register", help="register a completed pipeline job's model output as a custom_model asset (card's tags)"
    )
    model_register.add_argument("-v", "--verbose", action="store_true", help="log what happens (never secrets)")
    model_register.add_argument("job_name", metavar="JOB_NAME", help="the pipeline job's Name (Studio: Overview)")
    model_register.add_argument("--name", help="model asset name (default: the card's, pipeline input model_name)")
    model_register.add_argument("--version", help="model version (default: the next free one)")
    model_register.add_argument(
        "--registry", help="also share the registered version to this Azure ML registry (same name and version)"
    )
    add_workspace_arguments(model_register)
    model_register.set_defaults(func=cmd_model_register)

    images = sub.add_parser("images", help="prebuilt environment images in an Azure container registry")
    images_sub = images.add_subparsers(dest="action", required=True)
    build = images_sub.add_parser(
        "build", parents=[common], help="build and push every environment's image once with `az acr build`"
    )
    build.add_argument("--registry", type=of_kind("container_registry"), required=True,
                       help="Azure container registry (name or login server)")
    build.add_argument("--dry-run", action="store_true", help="print the az acr build commands; run nothing")
    build.set_defaults(func=cmd_images_build)

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
