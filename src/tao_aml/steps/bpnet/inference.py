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

from .. import coco, tao
from ..cli_types import positive_int
from ..common import StepError, atomic_write_text, run_main
from ..formats.coco import load_keypoints
from ..secret_refs import add_model_key_arguments, model_key
from . import EXECUTABLE, specs
from .experiment import add_coco_arguments, add_spec_arguments, write_model_specs
from .models import final_model

INPUT_LIST = "inference_input.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.inference", description=__doc__)
    add_spec_arguments(parser, train_step=False)
    add_coco_arguments(parser, coco_spec=False)
    parser.add_argument("--model", required=True, help="folder holding the engine or model")
    parser.add_argument("--results_dir", required=True)
    add_model_key_arguments(parser)
    parser.add_argument("--max_images", type=positive_int, default=20)
    parser.add_argument("--input_height", type=positive_int, default=None,
                        help="network input height (an engine's export size); the template's when not given")
    parser.add_argument("--input_width", type=positive_int, default=None)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    if (args.input_height is None) != (args.input_width is None):
        raise StepError("give both --input_height and --input_width, or neither")
    model = final_model(args.model, (".engine", ".hdf5", ".tlt"))
    images = coco.images_dir(coco.data_root(args.coco_root, args.coco_data), "val")
    listed = load_keypoints(coco.annotation_file(args.annotations, "val"))["images"][: args.max_images]
    if not listed:
        raise StepError("the validation annotations in {} list no images".format(args.annotations))
    os.makedirs(args.results_dir, exist_ok=True)
    input_list = os.path.join(args.results_dir, INPUT_LIST)
    atomic_write_text(input_list, json.dumps(
        {"images": [{"full_image_path": image["file_name"]} for image in listed]}, indent=2) + "\n")

    def edit_infer(tree: specs.Tree) -> None:
        if args.input_height is not None:
            tree["input_shape"] = [args.input_height, args.input_width]

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
