"""bpnet export: the retrained model to ONNX, and a TensorRT engine built on this GPU.

INT8 calibrates on every image in <cal_images>/images (the coco_calibration output), in batches of
--cal_batch_size. Writes <output_dir>/model.onnx, model.engine, cal.bin and cal.tensorfile (INT8),
engine.json (precision, batch sizes), specs/ and status.json. TAO refuses to overwrite an export or a
calibration cache, so a rerun on the same output starts from a clean folder. The engine only runs on
the TensorRT version and GPU family that built it (TAO 5.0: TensorRT 8.5.3).
"""

import argparse
import os
import sys
from typing import List, Optional

from .. import deploy_bundle, tao
from ..cli_types import positive_int
from ..common import StepError, run_main
from . import EXECUTABLE
from .experiment import add_spec_arguments, write_model_specs
from .models import final_model

ONNX_NAME, ENGINE_NAME = "model.onnx", "model.engine"
CAL_CACHE_NAME, CAL_DATA_NAME = "cal.bin", "cal.tensorfile"
CAL_IMAGE_EXT = (".jpg", ".jpeg", ".png")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.export", description=__doc__)
    add_spec_arguments(parser, train_step=False)
    parser.add_argument("--model", required=True, help="folder holding the retrained model")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--input_height", type=positive_int, default=288)
    parser.add_argument("--input_width", type=positive_int, default=384)
    parser.add_argument("--data_type", choices=["fp32", "fp16", "int8"], default="int8")
    parser.add_argument("--cal_images", default=None, help="coco_calibration output (images/); INT8 only")
    parser.add_argument("--cal_batch_size", type=positive_int, default=1)
    parser.add_argument("--max_batch_size", type=positive_int, default=1)
    return parser


def calibration_images(folder: Optional[str]) -> List[str]:
    images = os.path.join(folder or "", "images")
    if not folder or not os.path.isdir(images):
        raise StepError("INT8 needs calibration images: --cal_images must hold images/ (the coco_calibration "
                        "output), got {}".format(folder))
    found = sorted(name for name in os.listdir(images) if name.lower().endswith(CAL_IMAGE_EXT))
    if not found:
        raise StepError("{} holds no .jpg or .png images to calibrate on".format(images))
    return found


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = final_model(args.model)
    int8 = args.data_type == "int8"
    batches = len(calibration_images(args.cal_images)) // args.cal_batch_size if int8 else None
    if int8 and not batches:
        raise StepError("--cal_batch_size {} is larger than the number of calibration images".format(
            args.cal_batch_size))
    os.makedirs(args.output_dir, exist_ok=True)
    for name in (ONNX_NAME, ENGINE_NAME, CAL_CACHE_NAME, CAL_DATA_NAME):
        if os.path.exists(os.path.join(args.output_dir, name)):
            os.remove(os.path.join(args.output_dir, name))
    written = write_model_specs(args, args.output_dir, model)
    out = {name: os.path.join(args.output_dir, name)
           for name in (ONNX_NAME, ENGINE_NAME, CAL_CACHE_NAME, CAL_DATA_NAME)}
    tao.run(
        tao.build_command(EXECUTABLE, "export", [
            ("--model", model),
            ("--output_file", out[ONNX_NAME]),
            ("--key", args.key),
            ("--experiment_spec", written["train"]),
            ("--input_dims", "{},{},3".format(args.input_height, args.input_width)),
            ("--backend", "tfonnx"),
            ("--data_format", "channels_last"),
            ("--data_type", args.data_type),
            ("--engine_file", out[ENGINE_NAME]),
            ("--cal_image_dir", os.path.join(args.cal_images, "images") if int8 else None),
            ("--cal_cache_file", out[CAL_CACHE_NAME] if int8 else None),
            ("--cal_data_file", out[CAL_DATA_NAME] if int8 else None),
            ("--batches", batches),
            ("--batch_size", args.cal_batch_size if int8 else None),
            ("--max_batch_size", args.max_batch_size),
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    for name in (ONNX_NAME, ENGINE_NAME):
        if not os.path.isfile(out[name]):
            raise StepError("TAO bpnet export finished but wrote no {}".format(out[name]))
    deploy_bundle.write_engine_info(args.output_dir, out[ENGINE_NAME], args.data_type, args.max_batch_size,
                                    out[CAL_CACHE_NAME] if int8 else None)


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
