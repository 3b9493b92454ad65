"""detectnet_v2 export: the trained .hdf5 model to ONNX for TensorRT.

Writes <output_dir>/model.onnx, <output_dir>/labels.txt (class order for deployment) and status.json.
Engines are built by the gen_trt_engine step in the TAO Deploy environment.
"""

import argparse
import os
import sys
from typing import List, Optional

from tao_aml.steps.cli_types import boolean, name_list
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.secret_refs import add_model_key_arguments, model_key
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao.model_files import find_model

ONNX_NAME = "model.onnx"
# TAO 5.0 TF1 export (nvidia_tao_tf1/cv/common/export/app.py `--cal_json_file`, "Dictionary containing tensor
# scale for QAT models"): keras_exporter.py writes {"tensor_scales": {...}} there when the model has QAT scales.
CAL_JSON_NAME = "cal.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.export", description=__doc__)
    parser.add_argument("--model", required=True, help="folder holding the trained model")
    parser.add_argument("--output_dir", required=True)
    add_model_key_arguments(parser)
    parser.add_argument("--classes", type=name_list, required=True)
    parser.add_argument("--qat", type=boolean, default=False,
                        help="the model was retrained with QAT: also write its tensor scales to cal.json")
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = find_model(args.model)
    os.makedirs(args.output_dir, exist_ok=True)
    onnx = os.path.join(args.output_dir, ONNX_NAME)
    cal_json = os.path.join(args.output_dir, CAL_JSON_NAME)
    for stale in (onnx, cal_json):
        if os.path.exists(stale):
            # TAO refuses to overwrite; a rerun of this step on the same output starts clean.
            os.remove(stale)
    tao.run(
        tao.build_command(EXECUTABLE, "export", [
            ("--model", model),
            ("--output_file", onnx),
            ("--key", model_key(args)),
            ("--cal_json_file", cal_json if args.qat else None),
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    if not os.path.isfile(onnx):
        raise StepError("TAO export finished but wrote no {}".format(onnx))
    if args.qat and not os.path.isfile(cal_json):
        raise StepError("TAO export of a QAT model wrote no tensor scales {}: was the model retrained with "
                        "training_config.enable_qat true?".format(cal_json))
    atomic_write_text(os.path.join(args.output_dir, "labels.txt"), "\n".join(args.classes) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
