"""bpnet inference with visualizations on the first validation images.

Runs the model (a TensorRT engine from export, or a .hdf5/.tlt model) on the first --max_images
images the validation annotation file lists and writes TAO's images_annotated/ (skeletons drawn),
detections.json and status.json, plus inference_input.json (the list TAO read) and specs/.
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from tao_aml.steps.bpnet import EXECUTABLE
from tao_aml.steps.bpnet.experiment import (
    add_coco_arguments,
    add_input_size_arguments,
    add_spec_arguments,
    input_shape_edit,
    write_model_specs,
)
from tao_aml.steps.bpnet.models import inferencer_model
from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.data import coco
from tao_aml.steps.data.formats.coco import load_keypoints
from tao_aml.steps.secret_refs import add_model_key_arguments, model_key
from tao_aml.steps.tao import command as tao

INPUT_LIST = "inference_input.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.inference", description=__doc__)
    add_spec_arguments(parser, train_step=False)
    add_coco_arguments(parser, coco_spec=False)
    parser.add_argument("--model", required=True, help="folder holding the engine or model")
    parser.add_argument("--results_dir", required=True)
    add_model_key_arguments(parser)
    parser.add_argument("--max_images", type=positive_int, default=20)
    add_input_size_arguments(parser)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    edit_infer = input_shape_edit(args)
    model = inferencer_model(args)
    images = coco.images_dir(coco.data_root(args.coco_root, args.coco_data), "val")
    listed = load_keypoints(coco.annotation_file(args.annotations, "val"))["images"][: args.max_images]
    if not listed:
        raise StepError("the validation annotations in {} list no images".format(args.annotations))
    os.makedirs(args.results_dir, exist_ok=True)
    input_list = os.path.join(args.results_dir, INPUT_LIST)
    atomic_write_text(input_list, json.dumps(
        {"images": [{"full_image_path": image["file_name"]} for image in listed]}, indent=2) + "\n")
    written = write_model_specs(args, args.results_dir, model, edit_infer=edit_infer)
    tao.run(
        tao.build_command(EXECUTABLE, "inference", [
            ("--inference_spec", written["infer"]),
            ("--model_filename", model),
            ("--input_type", "json"),
            ("--input", input_list),
            ("--image_root_path", images),
            ("--key", model_key(args)),
            ("--results_dir", args.results_dir),
            ("--dump_visualizations", True),
        ]),
        args.results_dir,
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
