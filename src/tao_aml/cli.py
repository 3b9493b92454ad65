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
import sys
from functools import partial
from pathlib import Path

from . import __version__, gpu_time, run_cost
from .pipelines import REPO_ROOT, SettingError
from .steps.cli_types import of_kind

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
    from .secret_rules import shown_input
    from .submit import FINISHED_OK, build_job, follow, resume_data, send, write_rest
    from .workspace import WorkspaceError, asset_exists, azure_errors, connect, resolve_target

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
        built = build_job(*arguments, data, out_dir, args.serverless, None, args.images)
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
    rest = write_rest(built)
    pictures = write_graph(args.pipeline, built.steps, out_dir)
    print(f"pipeline {args.pipeline}: {len(built.steps)} steps, validated offline")
    width = max(len(step.name) for step in built.steps)
    for step in built.steps:
        print(f"  {step.name:<{width}}  " + ", ".join(step.details()))
    estimated = [step.gpu_hours for step in built.steps if step.gpu_hours is not None]
    if estimated:
        print(f"estimated GPU-hours used: {sum(estimated):.3g} (guesses in src/tao_aml/gpu_time.py for each step's "
              "GPU, an A100 where the size is unknown; the run report prints the measured ones beside them)")
    print("\n".join(run_cost.lines(built.steps, Path(args.root))))
    if args.pipeline in gpu_time.USER_DATASET_PIPELINES and not built.inputs.get(gpu_time.LIMIT_INPUT):
        assumed = gpu_time.ASSUMED_USER_IMAGES
        print(f"  your data set's size is unknown before it is read: the estimate ASSUMES {assumed['train']:,} "
              f"training and {assumed['val']:,} validation images (KITTI's size); --set images_per_split=N "
              "estimates N per split")
    print("pipeline inputs" + (f" (profile {args.profile}, then --set)" if args.profile else "") + ":")
    notes: dict[str, list[str]] = {}
    for item in built.overridden:  # TAO uses the override: say so where the input is shown
        notes.setdefault(item.source, []).append(item.note())
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
    from .model_asset import ModelJobError, ModelNameError, register_from_job

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
    from .render import RunShape
    from .workspace import Target, WorkspaceError, azure_errors, connect, resolve_target

    refs = Refs(args.version, args.registry, args.images)
    try:
        assets = plan(Path(args.root), refs, RunShape(args.nodes, args.gpus_per_node))
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


def cmd_model_register(args: argparse.Namespace) -> int:
    from .model_asset import ModelJobError, ModelNameError, register_from_job
    from .workspace import WorkspaceError, azure_errors, connect, resolve_target

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


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of at least 1")
    return value


def cmd_images_build(args: argparse.Namespace) -> int:
    from .images import ImageError, build_all

    try:
        commands = build_all(Path(args.root), args.registry, run=not args.dry_run)
    except ImageError as err:
        error(str(err))
        return EXIT_AZURE
    for command in commands:
        print(("would run  " if args.dry_run else "built  ") + " ".join(command))
    return EXIT_OK


def serving_extra_missing(command: str, err: ImportError) -> int:
    from .serve import INSTALL

    error(f"tao-aml {command} needs the serving extra ({err.name} is missing): {INSTALL}")
    return EXIT_USAGE


def cmd_triton(args: argparse.Namespace) -> int:
    try:
        from .serve.detectnet_v2 import DecodeError, Decoder
        from .serve.runtime import PredictError, load_card
    except ImportError as err:
        return serving_extra_missing("triton", err)
    from .simulate import simulated_folder
    from .steps.common import StepError
    from .steps.deploy_bundle import plan_problem, triton_repository

    model_dir, target = Path(args.model_dir), Path(args.output_dir)
    try:
        simulated = simulated_folder(model_dir)
        if simulated:
            raise PredictError(simulated)
        card = load_card(model_dir)
        Decoder(card["postprocessing"])  # the network section config.pbtxt is written from
        if target.exists() and any(target.iterdir()):
            raise PredictError(f"{target} is not empty: give a new folder for the Triton repository")
        engine = card.get("engine")
        tensorrt = (engine or {}).get("tensorrt")  # --plan: the user's Triton carries the engine's TensorRT
        problem = plan_problem(engine, args.gpu, tensorrt) if args.plan else None
        if problem:
            raise PredictError(f"no TensorRT plan for {args.gpu} GPUs: {problem}")
        name = (card.get("triton") or {}).get("model") or card.get("name") or "detectnet_v2"
        triton = triton_repository(str(model_dir), str(target), card["postprocessing"], engine, args.plan, name,
                                   args.gpu, tensorrt)
    except (PredictError, StepError, DecodeError) as err:
        error(str(err))
        return EXIT_USAGE
    print(f"Triton model repository in {target}: {', '.join(triton['models'])} "
          f"(tritonserver --model-repository {target})")
    if triton["plan"]["included"]:
        print(f"model.plan loads only on {args.gpu} GPUs in a Triton with TensorRT {tensorrt}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    try:
        from .serve.detectnet_v2 import DecodeError, Decoder
        from .serve.runtime import LocalModel, PredictError, load_card, predict
    except ImportError as err:
        return serving_extra_missing("predict", err)

    from .simulate import simulated_problem

    if args.endpoint and not args.model_dir:
        error("--endpoint needs --model-dir: the downloaded model asset folder, whose model card holds the thresholds")
        return EXIT_USAGE
    model_dir = Path(args.local or args.model_dir)
    try:
        card = load_card(model_dir)
        decoder = Decoder(card["postprocessing"])
        if args.local:
            model = LocalModel(model_dir / "model.onnx", decoder)
        else:
            model = endpoint_model(args, card, decoder)
        predictions = predict(model, decoder, [Path(p) for p in args.images], Path(args.output_dir), args.batch_size)
    except (PredictError, DecodeError) as err:
        error(str(err))
        return EXIT_USAGE
    except _WorkspaceFailure as err:
        error(str(err))
        return EXIT_AZURE
    print(f"model {card.get('name') or model_dir}: classes {', '.join(decoder.classes)}")
    for prediction in predictions:
        boxes = "; ".join(f"{d.label} {d.score:.2f} ({d.score_is}) [{d.x1:.0f}, {d.y1:.0f}, {d.x2:.0f}, {d.y2:.0f}]"
                          for d in prediction.detections) or "no detections"
        print(f"{prediction.image}: {boxes}")
    print(f"boxes (JSON) and annotated images written to {args.output_dir}")
    if simulated_problem(card.get("tags"), ""):
        print("this model was made by tao-aml rehearse with TAO simulated: its boxes show the output format, "
              "not what a trained model finds")
    return EXIT_OK


class _WorkspaceFailure(RuntimeError):
    """The endpoint could not be looked up in the workspace (sign-in, workspace or endpoint missing)."""


def endpoint_model(args: argparse.Namespace, card: dict, decoder):  # type: ignore[no-untyped-def]
    """The Triton model behind a managed online endpoint, with the endpoint's key (never printed)."""
    from azure.core.exceptions import ResourceNotFoundError

    from .serve.runtime import PredictError, TritonModel
    from .workspace import WorkspaceError, azure_errors, connect, resolve_target

    triton = card.get("triton") or {}
    if not triton.get("model"):
        raise PredictError(f"the model card in {args.model_dir} names no Triton model (no triton/ repository)")
    try:
        target = resolve_target(args.config, args.subscription, args.resource_group, args.workspace)
        client = connect(target)
        with azure_errors(target):
            endpoint = client.online_endpoints.get(args.endpoint)
            key = client.online_endpoints.get_keys(args.endpoint).primary_key
    except ResourceNotFoundError:
        raise _WorkspaceFailure(f"endpoint {args.endpoint} not found in the workspace (tao-aml deploy creates it)") \
            from None
    except WorkspaceError as err:
        raise _WorkspaceFailure(str(err)) from err
    return TritonModel(str(endpoint.scoring_uri), triton["model"], decoder, key=key)


def cmd_deploy(args: argparse.Namespace) -> int:
    from .endpoint import EndpointError, deploy, how_to_call, plan, write_plan
    from .workspace import WorkspaceError, azure_errors, connect, resolve_target

    try:
        planned = plan(args.endpoint, args.model, args.deployment, args.instance_type, args.instance_count)
        written = write_plan(planned, Path(args.output_dir) / "deploy")
    except EndpointError as err:
        error(str(err))
        return EXIT_USAGE
    print(f"endpoint {planned.endpoint.name}, deployment {planned.deployment.name}: {planned.deployment.instance_count}"
          f" x {planned.deployment.instance_type}, Triton model {args.model}; validated offline")
    print("bodies as sent written to " + ", ".join(map(str, written)))
    print(run_cost.monthly_line(args.instance_type, args.instance_count))
    if args.dry_run:
        return EXIT_OK
    try:
        target = resolve_target(args.config, args.subscription, args.resource_group, args.workspace)
        client = connect(target)
        with azure_errors(target):
            endpoint, triton_model = deploy(client, planned, print)
    except EndpointError as err:
        error(str(err))
        return EXIT_USAGE
    except WorkspaceError as err:
        error(str(err))
        return EXIT_AZURE
    print(f"endpoint {endpoint.name} is ready in {target}, all traffic to {planned.deployment.name}")
    for line in how_to_call(endpoint, triton_model):
        print(line)
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from time import monotonic

    from .local_run import (
        Docker,
        DockerUnavailable,
        ImageBuildFailed,
        LocalRunner,
        MissingTools,
        StepFailed,
        format_elapsed,
        local_inputs,
    )
    from .pipelines import Pipeline, resolve_settings
    from .profiles import profile_assignments

    started = monotonic()
    try:
        pipeline = Pipeline.load(args.pipeline, Path(args.root))
        first = profile_assignments(pipeline, args.profile) if args.profile else []
        settings = resolve_settings(pipeline, first + args.set)
        runner = LocalRunner(
            pipeline, settings, Path(args.workdir), data_inputs=local_inputs(pipeline, args.input),
            docker=None if args.no_docker else Docker(Path(args.root)), progress=partial(print, flush=True),
        )
        runs = runner.run(start=args.from_step)
    except SettingError as err:
        error(str(err))
        return EXIT_USAGE
    except (DockerUnavailable, MissingTools) as err:
        error(str(err))
        return EXIT_AZURE
    except (StepFailed, ImageBuildFailed) as err:
        if err.code == 125 and not args.no_docker:
            error("exit code 125 is docker's own: it could not start the container (a GPU step needs the NVIDIA "
                  "Container Toolkit)")
        print_failure(err)
        print("the same command runs it again and skips the steps that completed (--from STEP forces a step)",
              file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("stopped; the same command continues with the step that was running")
        return EXIT_INTERRUPTED
    ran = sum(run.ran for run in runs)
    print(f"{args.pipeline}: done in {format_elapsed(monotonic() - started)}, {ran} steps run, "
          f"{len(runs) - ran} complete from earlier runs")
    print_outputs(runner.pipeline_outputs())
    return EXIT_OK


def print_failure(err: Exception) -> None:
    """A failed step (or image build) of a local run: what failed and the last lines of its log."""
    from .local_run import StepFailed, format_elapsed, log_tail

    if isinstance(err, StepFailed):
        error(f"step {err.step} failed with exit code {err.code} after {format_elapsed(err.elapsed)}")
    else:
        error(f"docker build of {err.tag} failed with exit code {err.code}")  # type: ignore[attr-defined]
    print(f"last lines of {err.log}:", file=sys.stderr)  # type: ignore[attr-defined]
    for line in log_tail(err.log):  # type: ignore[attr-defined]
        print(f"  {line}", file=sys.stderr)


def print_outputs(outputs: dict[str, Path]) -> None:
    print("outputs, named as in the Azure ML job:")
    width = max(map(len, outputs), default=0)
    for name, path in outputs.items():
        print(f"  {name:<{width}}  {path}")


def cmd_rehearse(args: argparse.Namespace) -> int:
    from time import monotonic

    from .local_run import StepFailed, format_elapsed, local_inputs
    from .pipelines import Pipeline
    from .rehearse import NOTICE, rehearse, step_lines
    from .secret_rules import shown_command
    from .simulate import SimulationUnavailable

    started = monotonic()
    try:
        pipeline = Pipeline.load(args.pipeline, Path(args.root))
        workdir = Path(args.workdir or f"runs/rehearse-{args.pipeline}")
        done = rehearse(pipeline, args.set, local_inputs(pipeline, args.input), workdir, args.sample,
                        progress=partial(print, flush=True))
    except (SettingError, SimulationUnavailable) as err:
        error(str(err))
        return EXIT_USAGE
    except StepFailed as err:
        print_failure(err)
        error("the rehearsal found this before any GPU was paid for; a run on Azure ML would fail the same way "
              "(TAO was simulated: it checks command lines, specs and data, not training)")
        return EXIT_FAILED
    except KeyboardInterrupt:
        error("stopped")
        return EXIT_INTERRUPTED
    print(f"{args.pipeline}: rehearsed in {format_elapsed(monotonic() - started)}; every step, with the command "
          "line the service runs:")
    for run in done.runs:
        print(f"  {run.name}: {shown_command(run.command)}")
        for line in step_lines(run):
            print(f"      {line}")
    print_outputs(done.outputs)
    report = done.outputs.get("report")
    if report is not None and (report / "report.md").is_file():
        print(f"run report: {report / 'report.md'}")
    if done.model is not None:
        print(f"model folder (simulated): {done.model}")
    print(NOTICE)
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
    local = sub.add_parser(
        "run", parents=[common],
        help="run a pipeline on this machine (a TAO workstation), step by step, each step in its environment's image",
    )
    local.add_argument("pipeline", help="pipeline name: a folder of pipelines/, e.g. facenet")
    local.add_argument(
        "--local", action="store_true", required=True, help="run here, not on Azure ML (that is tao-aml submit)"
    )
    local.add_argument(
        "--workdir", required=True,
        help="folder for every step's outputs and log, <workdir>/<step>/<output>; the same folder again continues",
    )
    local.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="pipeline input (train_epochs=10) or spec field of a step (train.training_config.batch_size_per_gpu=8)",
    )
    local.add_argument(
        "--profile", help="named input values of pipelines/<name>/profiles.yml, e.g. smoke; --set wins over them"
    )
    local.add_argument(
        "--input", action="append", default=[], metavar="NAME=PATH",
        help="a data input from this machine, e.g. wider_data=/data/wider (skips the download)",
    )
    local.add_argument(
        "--from", dest="from_step", metavar="STEP", help="run this step and every later one again, complete or not"
    )
    local.add_argument(
        "--no-docker", action="store_true",
        help="run every step directly with the CLIs on PATH, for a machine that is itself the TAO environment",
    )
    local.set_defaults(func=cmd_run)

    rehearsal = sub.add_parser(
        "rehearse", parents=[common],
        help="the whole pipeline here in under a minute, TAO simulated, on generated data or a sample of yours: "
             "proves paths, specs, data and settings before a GPU is paid for (not accuracy)",
    )
    rehearsal.add_argument("pipeline", help="pipeline name: a folder of pipelines/, e.g. facenet")
    rehearsal.add_argument(
        "--input", action="append", default=[], metavar="NAME=PATH",
        help="your data instead of generated data, e.g. kitti_data=./my_kitti (read up to --sample images per split)",
    )
    rehearsal.add_argument("--sample", type=positive_int,
                           help="images per split (default 24): the pipeline's images_per_split")
    rehearsal.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="pipeline input or spec field, as for tao-aml submit: checked as a real run checks it",
    )
    rehearsal.add_argument("--workdir", help="folder of the rehearsal (default runs/rehearse-<pipeline>); "
                                             "an earlier rehearsal there is replaced")
    rehearsal.set_defaults(func=cmd_rehearse)

    from .steps.deploy_bundle import COMPUTE_CAPABILITY, DEFAULT_SERVING_GPU

    triton = sub.add_parser(
        "triton", parents=[common], help="lay out a Triton model repository from a downloaded DetectNet_v2 model asset"
    )
    triton.add_argument("model_dir", metavar="MODEL_DIR", help="the model asset folder (model_card.json, model.onnx)")
    triton.add_argument("--output-dir", required=True, help="a new or empty folder for the repository")
    triton.add_argument("--plan", action="store_true",
                        help="also the TensorRT engine as a tensorrt_plan model, for a Triton with the engine's "
                             "TensorRT on --gpu (refused when the engine was built on another GPU family)")
    triton.add_argument("--gpu", choices=sorted(COMPUTE_CAPABILITY), default=DEFAULT_SERVING_GPU,
                        help=f"the GPU Triton serves on (default {DEFAULT_SERVING_GPU})")
    triton.set_defaults(func=cmd_triton)

    predict = sub.add_parser(
        "predict", parents=[common],
        help="detect the classes of a DetectNet_v2 model asset on images (its card names them): locally "
             "(onnxruntime) or through its endpoint",
    )
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    where = predict.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", metavar="MODEL_DIR", help="run model.onnx of this model asset folder on the CPU")
    where.add_argument("--endpoint", help="a managed online endpoint made by tao-aml deploy (needs --model-dir)")
    predict.add_argument("--model-dir", help="with --endpoint: the model asset folder (its card's thresholds)")
    predict.add_argument("--output-dir", default="predictions", help="where boxes (JSON) and annotated images go")
    predict.add_argument("--batch-size", type=positive_int, default=1, help="images per inference call")
    add_workspace_arguments(predict)
    predict.set_defaults(func=cmd_predict)

    deploy = sub.add_parser(
        "deploy", parents=[common], help="serve a registered Triton model on a managed online endpoint"
    )
    deploy.add_argument("--model", required=True, metavar="NAME:VERSION",
                        help="the triton_model asset tao-aml model register made, e.g. tao-detectnet-v2-triton:1")
    deploy.add_argument("--endpoint", required=True, help="endpoint name (3-32 letters, digits, '-')")
    deploy.add_argument("--deployment", default="tao", help="deployment name (default tao)")
    deploy.add_argument("--instance-type", default="Standard_NC4as_T4_v3",
                        help="GPU size (default Standard_NC4as_T4_v3, 1 x T4)")
    deploy.add_argument("--instance-count", type=positive_int, default=1)
    deploy.add_argument("--dry-run", action="store_true", help="build and validate offline; nothing is sent")
    deploy.add_argument("--output-dir", default="build", help="where the endpoint and deployment bodies go")
    add_workspace_arguments(deploy)
    deploy.set_defaults(func=cmd_deploy)
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


if __name__ == "__main__":
    sys.exit(main())
