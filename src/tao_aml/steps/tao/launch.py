"""How a TAO train task starts: by TAO's entrypoint, or directly under Azure ML's MPI launcher.

With `distribution: {type: mpi}` Azure ML starts one process per GPU on every node and sets Open
MPI's variables. TAO's entrypoint would start a second mpirun inside each of them, so under MPI
every process runs the task's runner module itself, with the environment the entrypoint gives it
(facts/tao5.md, "Several GPUs and several nodes"); Horovod inside the runner takes one GPU per
local rank. Without MPI (a workstation, a local run) the entrypoint is used with `--gpus N`.
"""

import argparse
import logging
import os
import re
import shutil
import sys
import tempfile
import zipfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from tao_aml.steps.cli_types import boolean, positive_int
from tao_aml.steps.common import StepError
from tao_aml.steps.tao import command as tao

LOG = logging.getLogger("tao_aml.launch")

RUNNER_MODULE = "nvidia_tao_tf1.cv.{family}.scripts.train"
# TAO's checkpoints: model.epoch-E.ckzip for both families (detectnet_v2/tfhooks/checkpoint_saver_hook.py), and
# for bpnet also model.epoch-E.hdf5 (the final bpnet_model.hdf5 is a copy of the newest one: bpnet_trainer.py).
CHECKPOINT = re.compile(r"^model\.epoch-(\d+)\.[A-Za-z0-9]+$")
# Where checkpoints TAO could not read are moved, out of the names TAO lists in its results folder.
SET_ASIDE = "unreadable_checkpoints"


class World(NamedTuple):
    """This process's place among the processes Azure ML's MPI launcher started."""

    rank: int
    size: int
    local_rank: int
    local_size: int = 1


def mpi_world(environ: Optional[Dict[str, str]] = None) -> Optional[World]:
    """The Open MPI world this process belongs to, or None when not started by mpirun."""
    env = os.environ if environ is None else environ
    if "OMPI_COMM_WORLD_RANK" not in env:
        return None
    try:
        return World(
            int(env["OMPI_COMM_WORLD_RANK"]),
            int(env.get("OMPI_COMM_WORLD_SIZE", "1")),
            int(env.get("OMPI_COMM_WORLD_LOCAL_RANK", "0")),
            int(env.get("OMPI_COMM_WORLD_LOCAL_SIZE", "1")),
        )
    except ValueError as err:
        raise StepError("Open MPI's rank variables are not numbers: {}".format(err)) from None


def is_rank_zero(world: Optional[World]) -> bool:
    """Only the first process writes what the step adds beyond TAO (TAO's master does the same)."""
    return world is None or world.rank == 0


def step_output_dir(results_dir: str, world: Optional[World]) -> str:
    """Where this process writes its own copies of the specs: other ranks keep theirs off the output."""
    if is_rank_zero(world):
        return results_dir
    return tempfile.mkdtemp(prefix="tao_aml_rank{}_".format(world.rank if world else 0))


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every TAO train step has for GPUs, resuming and learning-rate scaling."""
    parser.add_argument("--gpus", type=positive_int, default=1, help="GPUs when not started by MPI")
    parser.add_argument("--resume_from", help="results folder of an earlier run whose newest checkpoint to continue")
    parser.add_argument(
        "--scale_learning_rate", type=boolean, default=False,
        help="multiply the spec's learning rates by the number of GPUs (linear scaling)",
    )
    parser.add_argument(
        "--use_amp", type=boolean, default=False,
        help="automatic mixed precision (TAO's --use_amp; under MPI TF_ENABLE_AUTO_MIXED_PRECISION=1)",
    )


def training_gpus(args: argparse.Namespace, world: Optional[World]) -> int:
    """All GPUs training uses (MPI's world size, else --gpus); logs the global batch size.

    Under MPI the processes per node come from the step's literal `process_count_per_instance`, and
    --gpus from the pipeline input gpus_per_node: a pipeline component published for another shape
    (e.g. gpus_per_node changed in Designer) would train on other GPUs than the run reports, so stop.
    """
    if world is not None and world.local_size != args.gpus:
        raise StepError(
            "this step runs {} process(es) per node (distribution.process_count_per_instance) but "
            "gpus_per_node is {}: publish or submit the pipeline for that shape (tao-aml register/submit "
            "--set gpus_per_node={}) instead of changing the input alone".format(world.local_size, args.gpus, args.gpus)
        )
    gpus = world.size if world is not None else args.gpus
    LOG.info("global batch size %d (%d per GPU x %d GPUs)", args.batch_size * gpus, args.batch_size, gpus)
    return gpus


def scale_learning_rates(values: Dict[str, float], gpus: int) -> Dict[str, float]:
    """Linear scaling: TAO takes the batch size per GPU and leaves the learning rate as written."""
    return {path: value * gpus for path, value in values.items()}


def run_training(
    family: str,
    task_flags: Sequence[Tuple[str, tao.FlagValue]],
    results_dir: str,
    gpus: int,
    world: Optional[World],
    resume_from: Optional[str],
    amp: bool = False,
) -> None:
    """Resume when there is something to resume from, then start TAO training for this process."""
    if is_rank_zero(world):
        prepare_resume(results_dir, resume_from)
    argv, env = train_command(family, task_flags, gpus, world, amp)
    if world is not None:
        LOG.info("rank %d of %d (local rank %d) runs TAO's train runner directly", world.rank, world.size,
                 world.local_rank)
    tao.run(argv, results_dir, env)


def train_command(
    family: str, task_flags: Sequence[Tuple[str, tao.FlagValue]], gpus: int, world: Optional[World], amp: bool = False
) -> Tuple[List[str], Dict[str, str]]:
    """argv and extra environment that start TAO training in this process's situation."""
    if world is None:
        global_flags: List[Tuple[str, tao.FlagValue]] = [("--gpus", gpus), ("--use_amp", amp)]
        return tao.build_command(family, "train", task_flags, global_flags), {}
    # The same flags and the same safety checks as through the entrypoint, minus its global flags.
    runner_flags = tao.build_command(sys.executable, "train", task_flags)[2:]
    argv = [sys.executable, "-m", RUNNER_MODULE.format(family=family)] + runner_flags
    return argv, {"TF_ENABLE_AUTO_MIXED_PRECISION": "1" if amp else "0"}


def ckzip_problem(path: str, epoch: int) -> Optional[str]:
    """Why TAO cannot resume from a model.epoch-E.ckzip, or None.

    TAO 5.0 writes a plain zip of TF's `model.ckpt-E.*` files and resumes from the newest one by number,
    extracting it with zipfile and restoring `model.ckpt-E` (common/utilities/tlt_utils.py get_latest_checkpoint,
    get_tf_ckpt); a zip it cannot extract ends training with "The zipfile extracted was corrupt".
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC, as extraction does
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return "not a complete zip ({})".format(err)
    if bad is not None:
        return "member {} is damaged".format(bad)
    stem = "model.ckpt-{}".format(epoch)
    if stem + ".index" not in names or not any(n.startswith(stem + ".data-") for n in names):
        return "it holds no {0}.index and {0}.data-* (TF's checkpoint of that epoch)".format(stem)
    return None


class Checkpoints(NamedTuple):
    """The checkpoints of a results folder: the newest TAO can read, and the newer ones it could not."""

    epoch: Optional[int]
    names: List[str]
    unreadable: List[Tuple[str, str]]  # (file name, why), newest first


def find_checkpoints(folder: str) -> Optional[Checkpoints]:
    """The newest epoch whose every file TAO can read, skipping newer damaged ones; None without checkpoints."""
    if not os.path.isdir(folder):
        return None
    by_epoch: Dict[int, List[str]] = {}
    for name in os.listdir(folder):
        match = CHECKPOINT.match(name)
        if match:
            by_epoch.setdefault(int(match.group(1)), []).append(name)
    if not by_epoch:
        return None
    unreadable: List[Tuple[str, str]] = []
    for epoch in sorted(by_epoch, reverse=True):
        names = sorted(by_epoch[epoch])
        ckzip = "model.epoch-{}.ckzip".format(epoch)
        problem = ckzip_problem(os.path.join(folder, ckzip), epoch) if ckzip in names else \
            "no {} beside it: TAO resumes only from those".format(ckzip)
        if problem is None:
            return Checkpoints(epoch, names, unreadable)
        # The epoch's other files (bpnet's model.epoch-E.hdf5) go with it: TAO rewrites them from the earlier one.
        named = ckzip if ckzip in names else names[0]
        unreadable += [(named, problem)] + [(name, "of the same epoch") for name in names if name != named]
    return Checkpoints(None, [], unreadable)


def _set_aside(folder: str, names: Sequence[str]) -> str:
    aside = os.path.join(folder, SET_ASIDE)
    os.makedirs(aside, exist_ok=True)
    for name in names:
        os.replace(os.path.join(folder, name), os.path.join(aside, name))
    return aside


def prepare_resume(results_dir: str, resume_from: Optional[str]) -> Optional[int]:
    """Make TAO continue from the newest checkpoint it can read; returns the epoch it resumes after, if any.

    TAO resumes from the newest checkpoint in its results folder. After a preemption Azure ML
    restarts the job on the same output folder, which already holds them; a new job given
    `resume_from` (an earlier run's results) is seeded with that run's newest readable checkpoint.
    A damaged newer checkpoint (a node lost while writing it) would stop TAO: it is moved to
    unreadable_checkpoints/ with a warning, and TAO resumes from the one before, or starts afresh.
    """
    own = find_checkpoints(results_dir)
    if own is not None:
        for name, why in own.unreadable:
            LOG.warning("checkpoint %s in %s cannot be resumed from: %s", name, results_dir, why)
        if own.unreadable:
            aside = _set_aside(results_dir, [name for name, _ in own.unreadable])
            LOG.warning("moved %d damaged checkpoint file(s) to %s", len(own.unreadable), aside)
        if own.epoch is not None:
            LOG.info("resuming from checkpoint %s (epoch %d) already in %s", own.names[0], own.epoch, results_dir)
            return own.epoch
        LOG.warning("no checkpoint in %s can be resumed from: training starts again from epoch 0", results_dir)
    if not resume_from:
        return None
    seed = find_checkpoints(resume_from)
    if seed is None or seed.epoch is None:
        why = "; ".join("{}: {}".format(name, problem) for name, problem in seed.unreadable) if seed else ""
        raise StepError(
            "--resume_from {} holds no {}TAO checkpoint (model.epoch-N.*){}; connect the results folder "
            "of an earlier train or retrain step".format(resume_from, "readable " if why else "",
                                                          " ({})".format(why) if why else "")
        )
    for name, why in seed.unreadable:
        LOG.warning("checkpoint %s in %s cannot be resumed from: %s; taking an earlier one", name, resume_from, why)
    os.makedirs(results_dir, exist_ok=True)
    for name in seed.names:
        shutil.copy2(os.path.join(resume_from, name), os.path.join(results_dir, name))
    LOG.info("resuming from checkpoint %s (epoch %d) copied from %s", seed.names[0], seed.epoch, resume_from)
    return seed.epoch
