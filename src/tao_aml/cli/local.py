"""Pipelines on this machine: `run --local` (TAO for real) and `rehearse` (TAO simulated)."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

from tao_aml.cli.common import EXIT_AZURE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, error, positive_int
from tao_aml.repo.pipelines import SettingError


def cmd_run(args: argparse.Namespace) -> int:
    from time import monotonic

    from tao_aml.local.local_run import (
        Docker,
        DockerUnavailable,
        ImageBuildFailed,
        LocalRunner,
        MissingTools,
        StepFailed,
        format_elapsed,
        local_inputs,
    )
    from tao_aml.repo.pipelines import Pipeline, resolve_settings
    from tao_aml.repo.profiles import profile_assignments

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
    from tao_aml.local.local_run import StepFailed, format_elapsed, log_tail

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

    from tao_aml.local.local_run import StepFailed, format_elapsed, local_inputs
    from tao_aml.local.rehearse import NOTICE, rehearse, step_lines, sweep_lines
    from tao_aml.repo.pipelines import Pipeline
    from tao_aml.repo.secret_rules import shown_command
    from tao_aml.simulate import SimulationUnavailable

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
    for line in sweep_lines(done.runs):
        print(line)
    if done.model is not None:
        print(f"model folder (simulated): {done.model}")
    print(NOTICE)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
