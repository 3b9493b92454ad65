"""The repository's pipelines: `validate`, `submit` (with its printout of the job) and `profile show`."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tao_aml.cli.common import (
    EXIT_AZURE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    add_workspace_arguments,
    error,
)
from tao_aml.repo import gpu_time, run_cost
from tao_aml.repo import sweep as sweeps
from tao_aml.repo.pipelines import SettingError
from tao_aml.steps.cli_types import of_kind

if TYPE_CHECKING:  # azure-ai-ml loads slowly: only when a command needs it
    from azure.ai.ml import MLClient
    from azure.ai.ml.entities import Job

    from tao_aml.azure.submit import BuiltJob
    from tao_aml.azure.workspace import Target


def cmd_validate(args: argparse.Namespace) -> int:
    from tao_aml.repo.validation import validate_repository

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
    from tao_aml.azure.submit import build_job, resume_data, send
    from tao_aml.azure.workspace import WorkspaceError, asset_exists, azure_errors, connect, resolve_target
    from tao_aml.repo.pipelines import Pipeline

    assignments = list(args.set)
    if args.gpu_compute:
        assignments.append(f"gpu_compute={args.gpu_compute}")
    if args.cpu_compute:
        assignments.append(f"cpu_compute={args.cpu_compute}")
    if args.dry_run and args.resume_from:
        error("--resume-from needs a workspace (it looks up the earlier job's steps there); drop --dry-run")
        return EXIT_USAGE
    client, lookup = None, None
    try:
        data = parse_inputs(args.input)
        # Offline first: a missing workspace is reported before anything is built.
        target = None if args.dry_run else resolve_target(
            args.config, args.subscription, args.resource_group, args.workspace
        )
        out_dir = Path(args.output_dir) / args.pipeline
        arguments = (args.pipeline, assignments, args.experiment, Path(args.root), args.profile)
        # Every setting is checked offline before anything signs in.
        built = build_job(*arguments, data, out_dir, args.serverless, None, args.images,
                          resuming=bool(args.resume_from))
        if target is not None:
            client = connect(target)
            lookup = partial(asset_exists, client.data)
            with azure_errors(target):
                if args.resume_from:
                    data.update(resume_data(client, Pipeline.load(args.pipeline, Path(args.root)), args.resume_from))
                built = build_job(*arguments, data, out_dir, args.serverless, lookup, args.images)
    except SettingError as err:
        error(str(err))
        return EXIT_USAGE
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    print_job(args, built, out_dir)
    if target is None:
        return EXIT_OK
    try:
        with azure_errors(target):
            job = send(client, built)
        print(f"submitted {job.name} to {target}, experiment {job.experiment_name}")
        print(f"Studio: {job.studio_url}")
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    if not args.stream:
        return EXIT_OK
    return follow_job(args, client, target, job)


def print_job(args: argparse.Namespace, built: BuiltJob, out_dir: Path) -> None:
    """The job as checked offline: its steps, GPU-hours and cost, inputs, data assets and the files written."""
    from tao_aml.azure.submit import write_rest
    from tao_aml.repo.graph import write_graph
    from tao_aml.repo.profiles import format_value
    from tao_aml.repo.secret_rules import shown_input

    rest = write_rest(built)
    pictures = write_graph(args.pipeline, built.steps, out_dir)
    print(f"pipeline {args.pipeline}: {len(built.steps)} steps, validated offline")
    width = max(len(step.name) for step in built.steps)
    for step in built.steps:
        print(f"  {step.name:<{width}}  " + ", ".join(step.details()))
    estimated = [step.gpu_hours for step in built.steps if step.gpu_hours is not None]
    if estimated:
        print(f"estimated GPU-hours used: {sum(estimated):.3g} (guesses in src/tao_aml/repo/gpu_time.py for each "
              "step's GPU, an A100 where the size is unknown; the run report prints the measured ones beside them)")
    print("\n".join(run_cost.lines(built.steps, Path(args.root))))
    if built.sweep is not None:
        print(run_cost.sweep_line(built.steps, built.sweep))
        print(f"  {built.sweep.choice()}; a branch that fails is left out (docs/pruning-sweep.md)")
    if args.pipeline in gpu_time.USER_DATASET_PIPELINES and not built.inputs.get(gpu_time.LIMIT_INPUT):
        assumed = gpu_time.ASSUMED_USER_IMAGES
        print(f"  your data set's size is unknown before it is read: the estimate ASSUMES {assumed['train']:,} "
              f"training and {assumed['val']:,} validation images (KITTI's size); --set images_per_split=N "
              "estimates N per split")
    print("pipeline inputs" + (f" (profile {args.profile}, then --set)" if args.profile else "") + ":")
    notes: dict[str, list[str]] = {}
    for item in built.overridden:  # TAO uses the override: say so where the input is shown
        notes.setdefault(item.source, []).append(item.note())
    if built.sweep is not None:
        notes.setdefault(sweeps.THRESHOLD_INPUT, []).append(f"not used: the sweep prunes with {sweeps.SETTING}")
    for name, value in built.inputs.items():
        note = f" ({'; '.join(notes[name])})" if name in notes else ""
        print(f"  {name} = {'(not set)' if value is None else shown_input(name, format_value(value))}{note}")
    for name in built.settings.omitted:
        print(f"  {name}: empty --set value, left unset (not sent)")
    if built.data_plan.lines:
        print("data assets:")
        for line in built.data_plan.lines:
            print(f"  {line}")
    print(f"job as sent written to {built.job_file} (az ml job create --file takes it), REST body to {rest}")
    print("step graph written to " + ", ".join(map(str, pictures)))


def follow_job(args: argparse.Namespace, client: MLClient, target: Target, job: Job) -> int:
    """`submit --stream`: follow the submitted job to its end, then register its model (unless told not to)."""
    from tao_aml.azure.submit import FINISHED_OK, follow
    from tao_aml.azure.workspace import WorkspaceError, azure_errors

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
    if status != FINISHED_OK:
        return EXIT_FAILED
    if args.no_register_model:
        return EXIT_OK
    from tao_aml.azure.model_asset import ModelJobError, ModelNameError, register_from_job

    try:
        with azure_errors(target):
            model = register_from_job(client, str(job.name), report=print)
    except (ModelJobError, ModelNameError, WorkspaceError) as err:
        error(f"the job completed but its model was not registered: {err} "
              f"(retry with `tao-aml model register {job.name}`)")
        return EXIT_AZURE
    print(f"model {model.name}:{model.version} registered from job {job.name}")
    return EXIT_OK


def parse_inputs(pairs: list[str]) -> dict[str, str]:
    """`--input NAME=URI` pairs; the URI is an Azure ML data reference (azureml:name:version, azureml://...)."""
    found = {}
    for pair in pairs:
        name, sep, uri = pair.partition("=")
        if not sep or not name.strip() or not uri.strip():
            raise SettingError(f"--input {pair!r}: expected NAME=URI, e.g. wider_data=azureml:my-wider:1")
        found[name.strip()] = uri.strip()
    return found


def cmd_profile_show(args: argparse.Namespace) -> int:
    from tao_aml.repo.pipelines import Pipeline
    from tao_aml.repo.profiles import show

    try:
        lines = show(Pipeline.load(args.pipeline, Path(args.root)), args.profile)
    except SettingError as err:
        error(str(err))
        return EXIT_USAGE
    print("\n".join(lines))
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
    submit.add_argument(
        "--input", action="append", default=[], metavar="NAME=URI",
        help="a data input, e.g. wider_data=azureml:my-wider:1 (an Azure ML data asset or azureml:// path)",
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
    submit.add_argument(
        "--serverless", action="store_true",
        help="run every step on serverless compute, no clusters (sizes: --set gpu_instance_type=..., "
        "cpu_instance_type=..., spot=true)",
    )
    submit.add_argument(
        "--images", metavar="ACR", type=of_kind("container_registry"),
        help="use the environments' prebuilt images in this container registry (tao-aml images build) "
        "instead of building them from their contexts",
    )
    submit.add_argument("--experiment", type=of_kind("experiment"), help="experiment name (default: the pipeline's)")
    submit.add_argument("--output-dir", default="build", help="where the resolved job and step graph are written")
    mode = submit.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="build and validate only; nothing is sent")
    mode.add_argument(
        "--stream", action="store_true",
        help="follow the job's logs; exit 1 if it fails; register its model asset when it completes",
    )
    submit.add_argument(
        "--no-register-model", action="store_true", help="with --stream: do not register the model asset"
    )
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
