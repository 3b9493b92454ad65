"""bpnet prune: remove filters whose norm falls under a threshold (TAO 5.0 notebook: union, 0.2).

Writes <output_dir>/model_pruned.hdf5 and TAO's status.json.
"""

import argparse
import sys
from typing import List, Optional

from tao_aml.steps.bpnet import EXECUTABLE
from tao_aml.steps.bpnet.models import final_model
from tao_aml.steps.tao import sweep_branch
from tao_aml.steps.tao.pruning import add_prune_arguments, run_prune


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.prune", description=__doc__)
    add_prune_arguments(parser, default_threshold=0.2)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    run_prune(EXECUTABLE, final_model(args.model), args)


def main(argv: Optional[List[str]] = None) -> int:
    return sweep_branch.run(body, argv, inputs=("model",), outputs=("output_dir",))


if __name__ == "__main__":
    sys.exit(main())
