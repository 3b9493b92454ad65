"""detectnet_v2 export: the trained .hdf5 model to ONNX for TensorRT.

Writes <output_dir>/model.onnx, <output_dir>/labels.txt (class order for deployment) and status.json.
Engines are built by the gen_trt_engine step in the TAO Deploy environment.
"""

import argparse
import os
import sys
from typing import List, Optional

from .. import tao
from ..cli_types import name_list
from ..common import StepError, atomic_write_text, run_main
from ..model_files import find_model
from . import EXECUTABLE

ONNX_NAME = "model.onnx"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.export", description=__doc__)
    parser.add_argument("--model", required=True, help="folder holding the trained model")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--classes", type=name_list, required=True)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = find_model(args.model)
    os.makedirs(args.output_dir, exist_ok=True)
    onnx = os.path.join(args.output_dir, ONNX_NAME)
    if os.path.exists(onnx):
        # TAO refuses to overwrite; a rerun of this step on the same output starts clean.
        os.remove(onnx)
    tao.run(
        tao.build_command(EXECUTABLE, "export", [
            ("--model", model),
            ("--output_file", onnx),
            ("--key", args.key),
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    if not os.path.isfile(onnx):
        raise StepError("TAO export finished but wrote no {}".format(onnx))
    atomic_write_text(os.path.join(args.output_dir, "labels.txt"), "\n".join(args.classes) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
