"""What `detectnet_v2 prune` and `bpnet prune` share: TAO's magnet pruning flags and the run."""

import argparse
import os
from typing import List, Sequence, Tuple

from tao_aml.steps.common import StepError
from tao_aml.steps.secret_refs import add_model_key_arguments, model_key
from tao_aml.steps.tao import command as tao

PRUNED_NAME = "model_pruned.hdf5"
EQUALIZATION = ["union", "intersection", "arithmetic_mean", "geometric_mean"]


def add_prune_arguments(parser: argparse.ArgumentParser, default_threshold: float) -> None:
    parser.add_argument("--model", required=True, help="folder holding the trained model")
    parser.add_argument("--output_dir", required=True)
    add_model_key_arguments(parser)
    parser.add_argument("--pruning_threshold", type=float, default=default_threshold)
    parser.add_argument("--equalization_criterion", default="union", choices=EQUALIZATION)


def run_prune(
    family: str, model: str, args: argparse.Namespace, extra: Sequence[Tuple[str, tao.FlagValue]] = ()
) -> str:
    """Prune `model` into <output_dir>/model_pruned.hdf5 and return that path."""
    if not 0.0 <= args.pruning_threshold < 1.0:
        raise StepError("--pruning_threshold must be in [0, 1), got {}".format(args.pruning_threshold))
    os.makedirs(args.output_dir, exist_ok=True)
    pruned = os.path.join(args.output_dir, PRUNED_NAME)
    flags: List[Tuple[str, tao.FlagValue]] = [
        ("--model", model),
        ("--output_file", pruned),
        ("--key", model_key(args)),
        ("--results_dir", args.output_dir),
        ("--equalization_criterion", args.equalization_criterion),
        ("--pruning_threshold", args.pruning_threshold),
    ]
    tao.run(tao.build_command(family, "prune", flags + list(extra)), args.output_dir)
    if not os.path.isfile(pruned):
        raise StepError("TAO {} prune finished but wrote no {}".format(family, pruned))
    return pruned
