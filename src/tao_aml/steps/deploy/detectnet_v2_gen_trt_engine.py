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

from tao_aml.steps.cli_types import boolean, positive_int
from tao_aml.steps.common import StepError, run_main
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.experiment import ROOT, add_model_arguments, set_common
from tao_aml.steps.detectnet_v2.export import CAL_JSON_NAME
from tao_aml.steps.detectnet_v2.spec_files import add_spec_arguments, write_step_spec
from tao_aml.steps.secret_refs import model_key
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao.model_files import find_model

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
    parser.add_argument("--qat", type=boolean, default=False,
                        help="the model was retrained with QAT: INT8 from its tensor scales (cal.json of the "
                             "export), no calibration images")
    return parser


def int8_route(data_type: str, qat: bool) -> Optional[str]:
    """How TAO Deploy gets INT8 scales: `qat_scales` (cal.json) or `ptq_calibration` (images); None for fp32/fp16."""
    if data_type != "int8":
        return None
    return "qat_scales" if qat else "ptq_calibration"


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    onnx = find_model(args.onnx_model, (".onnx",))
    route = int8_route(args.data_type, args.qat)
    cal_images = os.path.join(args.cal_kitti, "images")
    cal_json = os.path.join(args.onnx_model, CAL_JSON_NAME)
    if args.qat and args.data_type != "int8":
        # TAO Deploy (engine/builder.py): "QAT model only supports data_type int8".
        raise StepError("qat is true but engine_precision is {}: a QAT model builds only INT8 engines "
                        "(TAO Deploy refuses others); set engine_precision=int8 or qat=false".format(args.data_type))
    if route == "qat_scales" and not os.path.isfile(cal_json):
        raise StepError("qat is true but {} does not exist: connect the export of the QAT-retrained model".format(
            cal_json))
    if route == "ptq_calibration" and not os.path.isdir(cal_images):
        raise StepError("INT8 calibration needs images: {} does not exist".format(cal_images))

    def edit(tree):
        set_common(tree, args.image_width, args.image_height, args.classes)
        # TAO Deploy's gen_trt_engine reads is_qat from training_config.enable_qat of this spec.
        tree.set("training_config.enable_qat", bool(args.qat))

    spec = write_step_spec(args, ROOT, edit, args.output_dir)
    engine = os.path.join(args.output_dir, ENGINE_NAME)
    int8 = route == "ptq_calibration"
    cache = os.path.join(args.output_dir, CAL_CACHE_NAME)
    if route == "qat_scales" and os.path.exists(cache):
        os.remove(cache)  # TAO Deploy writes the cache from cal.json and refuses an existing one
    tao.run(
        tao.build_command(EXECUTABLE, "gen_trt_engine", [
            ("--model_path", onnx),
            ("--key", model_key(args)),
            ("--experiment_spec", spec),
            ("--data_type", args.data_type),
            ("--cal_image_dir", cal_images if int8 else None),
            ("--cal_cache_file", cache if route else None),
            ("--cal_json_file", cal_json if route == "qat_scales" else None),
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
    engine_info.write_engine_info(args.output_dir, engine, args.data_type, args.max_batch_size,
                                  cache if route else None, int8_route=route)
    labels = os.path.join(args.onnx_model, "labels.txt")
    if os.path.isfile(labels):
        shutil.copy(labels, os.path.join(args.output_dir, "labels.txt"))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
