"""bpnet prune: remove filters whose norm falls under a threshold (TAO 5.0 notebook: union, 0.2).

Writes <output_dir>/model_pruned.hdf5 and TAO's status.json.
"""

import argparse
import os
import sys
from typing import List, Optional

from .. import tao
from ..common import StepError, run_main
from . import EXECUTABLE
from .models import final_model

PRUNED_NAME = "model_pruned.hdf5"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.prune", description=__doc__)
    parser.add_argument("--model", required=True, help="folder holding the trained model")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--pruning_threshold", type=float, default=0.2)
    parser.add_argument(
        "--equalization_criterion", default="union",
        choices=["union", "intersection", "arithmetic_mean", "geometric_mean"],
    )
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    if not 0.0 <= args.pruning_threshold < 1.0:
        raise StepError("--pruning_threshold must be in [0, 1), got {}".format(args.pruning_threshold))
    model = final_model(args.model)
    os.makedirs(args.output_dir, exist_ok=True)
    pruned = os.path.join(args.output_dir, PRUNED_NAME)
    tao.run(
        tao.build_command(EXECUTABLE, "prune", [
            ("--model", model),
            ("--output_file", pruned),
            ("--key", args.key),
            ("--results_dir", args.output_dir),
            ("--equalization_criterion", args.equalization_criterion),
            ("--pruning_threshold", args.pruning_threshold),
        ]),
        args.output_dir,
    )
    if not os.path.isfile(pruned):
        raise StepError("TAO bpnet prune finished but wrote no {}".format(pruned))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
