"""detectnet_v2 evaluate: mAP and per-class AP of a model on the validation TFRecords.

Writes TAO's status.json (KPIs under `kpi`) and specs/ (the spec TAO read) into --results_dir.
"""

import argparse
import sys
from typing import List, Optional

from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.experiment import (
    ROOT,
    add_dataset_arguments,
    add_model_arguments,
    set_common,
    set_datasets,
)
from tao_aml.steps.detectnet_v2.spec_files import add_spec_arguments, write_step_spec
from tao_aml.steps.secret_refs import model_key
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao import sweep_branch
from tao_aml.steps.tao.model_files import find_model


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

    spec = write_step_spec(args, ROOT, edit, args.results_dir)
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
    return sweep_branch.run(body, argv, inputs=("model",), outputs=("results_dir",))


if __name__ == "__main__":
    sys.exit(main())
