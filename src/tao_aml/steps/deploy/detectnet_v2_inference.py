"""TAO Deploy detectnet_v2 inference: the TensorRT engine draws boxes on images and writes KITTI labels.

TAO Deploy 5.0 (nvidia_tao_deploy/cv/detectnet_v2/scripts/inference.py) reads target_classes, batch_size
and the classwise clustering of the Inference spec and takes the engine from -m. Writes
<results_dir>/images_annotated/, labels/, status.json and specs/ (the spec TAO read).
"""

import argparse
import sys
from typing import List, Optional

from tao_aml.steps.common import run_main
from tao_aml.steps.deploy.engine_args import add_engine_arguments, engine_for
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.inference_spec import ROOT, image_folder, set_input
from tao_aml.steps.detectnet_v2.spec_files import write_step_spec
from tao_aml.steps.specs import spec_edit
from tao_aml.steps.tao import command as tao


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.engine_inference", description=__doc__)
    add_engine_arguments(parser)
    parser.add_argument("--images", required=True, help="folder of images, or a KITTI folder with images/")
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    engine = engine_for(args.engine, args.batch_size)
    images = image_folder(args.images)

    def edit(tree):
        # The engine comes from -m: the spec names no .hdf5 model (tlt_config stays empty).
        tree.remove("inferencer_config.tlt_config.model")
        set_input(tree, args.image_width, args.image_height, args.batch_size)
        spec_edit.set_inference_classes(tree, args.classes)

    spec = write_step_spec(args, ROOT, edit, args.results_dir)
    tao.run(
        tao.build_command(EXECUTABLE, "inference", [
            ("--experiment_spec", spec),
            ("--model_path", engine),
            ("--image_dir", images),
            ("--batch_size", args.batch_size),
            ("--results_dir", args.results_dir),
        ]),
        args.results_dir,
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
