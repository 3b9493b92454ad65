"""detectnet_v2 inference: draw boxes on images and write KITTI labels.

Writes <results_dir>/images_annotated/, <results_dir>/labels/ (TAO's layout), status.json and
specs/ (the spec TAO read).
"""

import argparse
import sys
from typing import List, Optional

from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import run_main
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.experiment import add_model_arguments
from tao_aml.steps.detectnet_v2.inference_spec import ROOT, image_folder, set_input
from tao_aml.steps.detectnet_v2.spec_files import add_spec_arguments, write_step_spec
from tao_aml.steps.secret_refs import model_key
from tao_aml.steps.specs import spec_edit
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao.model_files import find_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.inference", description=__doc__)
    add_spec_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--images", required=True, help="folder of images, or a KITTI folder with images/")
    parser.add_argument("--model", required=True, help="folder holding the model")
    parser.add_argument("--results_dir", required=True)
    parser.add_argument("--batch_size", type=positive_int, default=1)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = find_model(args.model)
    images = image_folder(args.images)

    def edit(tree):
        tree.set("inferencer_config.tlt_config.model", model)
        set_input(tree, args.image_width, args.image_height, args.batch_size)
        # TAO writes labels/ only when asked to; the pipeline hands them on.
        tree.set("bbox_handler_config.kitti_dump", True)
        spec_edit.set_inference_classes(tree, args.classes)

    spec = write_step_spec(args, ROOT, edit, args.results_dir)
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
