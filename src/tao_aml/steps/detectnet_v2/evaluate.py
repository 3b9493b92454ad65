"""detectnet_v2 evaluate: mAP and per-class AP of a model on the validation TFRecords.

Writes TAO's status.json (KPIs under `kpi`) and specs/ (the spec TAO read) into --results_dir.
"""

import argparse
import os
import sys
from typing import List, Optional

from .. import tao
from ..common import run_main
from ..model_files import find_model
from ..secret_refs import model_key
from . import EXECUTABLE
from .experiment import set_common, set_datasets
from .spec_files import add_spec_arguments, spec_copy_path, write_spec
from .train import ROOT, add_dataset_arguments, add_model_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.evaluate", description=__doc__)
    add_spec_arguments(parser)
    add_dataset_arguments(parser, train_required=False)
    add_model_arguments(parser)
    parser.add_argument("--model", required=True, help="folder holding the model to evaluate")
    parser.add_argument("--results_dir", required=True)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = find_model(args.model)
    train = [args.train_tfrecords, args.train_kitti] if args.train_tfrecords and args.train_kitti else None

    def edit(tree):
        set_datasets(tree, train, [args.val_tfrecords, args.val_kitti])
        set_common(tree, args.image_width, args.image_height, args.classes)

    os.makedirs(args.results_dir, exist_ok=True)
    spec = write_spec(
        args.spec_dir, args.spec_file, ROOT, edit, args.overrides,
        spec_copy_path(args.results_dir, args.spec_file),
    )
    tao.run(
        tao.build_command(EXECUTABLE, "evaluate", [
            ("--experiment_spec", spec),
            ("--model_path", model),
            ("--key", model_key(args)),
            ("--results_dir", args.results_dir),
        ]),
        args.results_dir,
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
