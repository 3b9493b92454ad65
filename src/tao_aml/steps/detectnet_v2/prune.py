"""detectnet_v2 prune: remove filters whose norm falls under a threshold.

Writes <output_dir>/model_pruned.hdf5 and TAO's status.json.
"""

import argparse
import sys
from typing import List, Optional

from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.tao import sweep_branch
from tao_aml.steps.tao.model_files import find_model
from tao_aml.steps.tao.pruning import add_prune_arguments, run_prune


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.prune", description=__doc__)
    add_prune_arguments(parser, default_threshold=0.1)
    parser.add_argument("--normalizer", default="max", choices=["max", "L2"])
    parser.add_argument("--pruning_granularity", type=int, default=8)
    parser.add_argument("--min_num_filters", type=int, default=16)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    run_prune(EXECUTABLE, find_model(args.model), args, [
        ("--normalizer", args.normalizer),
        ("--pruning_granularity", args.pruning_granularity),
        ("--min_num_filters", args.min_num_filters),
    ])


def main(argv: Optional[List[str]] = None) -> int:
    return sweep_branch.run(body, argv, inputs=("model",), outputs=("output_dir",))


if __name__ == "__main__":
    sys.exit(main())
