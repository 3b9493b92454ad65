"""TAO Deploy detectnet_v2 gen_trt_engine: a TensorRT engine from the exported ONNX model.

Runs in the TAO Deploy environment on the GPU the engine is meant for (an engine only loads on the
TensorRT version and GPU family that built it). INT8 calibrates on --cal_batches x --cal_batch_size
training images. Writes <output_dir>/model.engine, cal.bin (INT8), engine.json (precision, batch sizes),
the spec TAO read, labels.txt and status.json.
"""

import argparse
import os
import shutil
import sys
from typing import List, Optional

from .. import deploy_bundle, tao
from ..cli_types import positive_int
from ..common import StepError, run_main
from ..model_files import find_model
from . import EXECUTABLE
from .experiment import set_common
from .spec_files import add_spec_arguments, spec_copy_path, write_spec
from .train import ROOT, add_model_arguments

ENGINE_NAME = "model.engine"
CAL_CACHE_NAME = "cal.bin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.gen_trt_engine", description=__doc__)
    add_spec_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--onnx_model", required=True, help="folder holding the exported model.onnx")
    parser.add_argument("--cal_kitti", required=True, help="KITTI folder whose images/ calibrate INT8")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--data_type", choices=["fp32", "fp16", "int8"], default="int8")
    parser.add_argument("--cal_batches", type=positive_int, default=10)
    parser.add_argument("--cal_batch_size", type=positive_int, default=8)
    parser.add_argument("--max_batch_size", type=positive_int, default=16)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    onnx = find_model(args.onnx_model, (".onnx",))
    cal_images = os.path.join(args.cal_kitti, "images")
    if args.data_type == "int8" and not os.path.isdir(cal_images):
        raise StepError("INT8 calibration needs images: {} does not exist".format(cal_images))

    def edit(tree):
        set_common(tree, args.image_width, args.image_height, args.classes)

    os.makedirs(args.output_dir, exist_ok=True)
    spec = write_spec(
        args.spec_dir, args.spec_file, ROOT, edit, args.overrides,
        spec_copy_path(args.output_dir, args.spec_file),
    )
    engine = os.path.join(args.output_dir, ENGINE_NAME)
    int8 = args.data_type == "int8"
    tao.run(
        tao.build_command(EXECUTABLE, "gen_trt_engine", [
            ("--model_path", onnx),
            ("--key", args.key),
            ("--experiment_spec", spec),
            ("--data_type", args.data_type),
            ("--cal_image_dir", cal_images if int8 else None),
            ("--cal_cache_file", os.path.join(args.output_dir, CAL_CACHE_NAME) if int8 else None),
            ("--batches", args.cal_batches if int8 else None),
            ("--batch_size", args.cal_batch_size if int8 else None),
            ("--max_batch_size", args.max_batch_size),
            ("--engine_file", engine),
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    if not os.path.isfile(engine):
        raise StepError("TAO gen_trt_engine finished but wrote no {}".format(engine))
    deploy_bundle.write_engine_info(args.output_dir, engine, args.data_type, args.max_batch_size,
                                    os.path.join(args.output_dir, CAL_CACHE_NAME) if int8 else None)
    labels = os.path.join(args.onnx_model, "labels.txt")
    if os.path.isfile(labels):
        shutil.copy(labels, os.path.join(args.output_dir, "labels.txt"))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
