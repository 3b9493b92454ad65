"""detectnet_v2 inference: draw boxes on images and write KITTI labels.

Writes <results_dir>/images_annotated/, <results_dir>/labels/ (TAO's layout), status.json and
specs/ (the spec TAO read).
"""

import argparse
import os
import sys
from typing import List, Optional

from .. import spec_edit, tao
from ..cli_types import positive_int
from ..common import StepError, run_main
from ..model_files import find_model
from ..secret_refs import model_key
from . import EXECUTABLE
from .spec_files import add_spec_arguments, spec_copy_path, write_spec
from .train import add_model_arguments

ROOT = "Inference"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.inference", description=__doc__)
    add_spec_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--images", required=True, help="folder of images, or a KITTI folder with images/")
    parser.add_argument("--model", required=True, help="folder holding the model")
    parser.add_argument("--results_dir", required=True)
    parser.add_argument("--batch_size", type=positive_int, default=1)
    return parser


def image_folder(folder: str) -> str:
    nested = os.path.join(folder, "images")
    found = nested if os.path.isdir(nested) else folder
    if not os.path.isdir(found) or not os.listdir(found):
        raise StepError("{} holds no images to run inference on".format(folder))
    return found


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = find_model(args.model)
    images = image_folder(args.images)

    def edit(tree):
        tree.set("inferencer_config.tlt_config.model", model)
        tree.set("inferencer_config.image_width", args.image_width)
        tree.set("inferencer_config.image_height", args.image_height)
        tree.set("inferencer_config.batch_size", args.batch_size)
        # TAO writes labels/ only when asked to; the pipeline hands them on.
        tree.set("bbox_handler_config.kitti_dump", True)
        spec_edit.set_inference_classes(tree, args.classes)

    os.makedirs(args.results_dir, exist_ok=True)
    spec = write_spec(
        args.spec_dir, args.spec_file, ROOT, edit, args.overrides,
        spec_copy_path(args.results_dir, args.spec_file),
    )
    tao.run(
        tao.build_command(EXECUTABLE, "inference", [
            ("--experiment_spec", spec),
            ("--image_dir", images),
            ("--model_path", model),
            ("--key", model_key(args)),
            ("--results_dir", args.results_dir),
            ("--batch_size", args.batch_size),
        ]),
        args.results_dir,
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
