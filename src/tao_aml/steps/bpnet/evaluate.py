"""bpnet evaluate: COCO keypoint AP/AR of a model on the validation split.

Writes TAO's results.csv, detections_coco_format.json and status.json (KPIs under `kpi`) and
specs/ (the specs TAO read) into --results_dir. TAO runs the model on every image the validation
annotation file lists (the coco_subset output, so images_per_split shortens this step too).

The model may be the TensorRT engine of the export step: TAO 5.0's BpNetInferencer runs a `.engine`
with TensorRT (nvidia_tao_tf1/cv/bpnet/inferencer/bpnet_inferencer.py), single scale, padded input,
at the engine's input shape: give the export size with --input_height/--input_width.
"""

import argparse
import os
import sys
from typing import List, Optional

from tao_aml.steps.bpnet import EXECUTABLE, data_root
from tao_aml.steps.bpnet.experiment import (
    add_coco_arguments,
    add_input_size_arguments,
    add_spec_arguments,
    coco_links,
    input_shape_edit,
    write_coco_spec,
    write_model_specs,
)
from tao_aml.steps.bpnet.models import inferencer_model
from tao_aml.steps.secret_refs import add_model_key_arguments, model_key
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao import sweep_branch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.evaluate", description=__doc__)
    add_spec_arguments(parser, train_step=False)
    add_coco_arguments(parser)
    parser.add_argument("--model", required=True, help="folder holding the model to evaluate")
    parser.add_argument("--results_dir", required=True)
    add_model_key_arguments(parser)
    add_input_size_arguments(parser)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    edit_infer = input_shape_edit(args)
    model = inferencer_model(args)
    root = data_root.build(coco_links(args))
    os.makedirs(args.results_dir, exist_ok=True)
    coco_spec = write_coco_spec(args, root, args.results_dir, [])
    written = write_model_specs(args, args.results_dir, model, edit_infer=edit_infer)
    tao.run(
        tao.build_command(EXECUTABLE, "evaluate", [
            ("--inference_spec", written["infer"]),
            ("--model_filename", model),
            ("--dataset_spec", coco_spec),
            ("--key", model_key(args)),
            ("--results_dir", args.results_dir),
        ]),
        args.results_dir,
    )


def main(argv: Optional[List[str]] = None) -> int:
    return sweep_branch.run(body, argv, inputs=("model",), outputs=("results_dir",))


if __name__ == "__main__":
    sys.exit(main())
