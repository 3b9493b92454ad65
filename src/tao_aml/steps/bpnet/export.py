"""bpnet export: the retrained model to ONNX twice, each with a TensorRT engine built on this GPU.

TAO's own tools and NVIDIA's deployment SDKs need different graphs of the same model
(nvidia_tao_tf1/cv/bpnet/utils/export_utils.py update_model):
- tao/: the plain export, the last stage's heatmap and PAF heads at stride 8. `bpnet evaluate` and
  `bpnet inference` run this engine; they refuse the other one (BpNetInferencer asserts both heads
  share one grid, "use --sdk_compatible_model only for deployment").
- sdk_compatible/: `--sdk_compatible_model`, the PAF upsampled by --upsample_ratio (TAO's default, 4)
  into conv2d_transpose_1/BiasAdd:0, as DeepStream's bodypose2d and Triton take it.
Each folder holds model.onnx, model.engine, engine.json (precision, batch sizes) and for INT8 cal.bin
(calibrated on every image in <cal_images>/images, the coco_calibration output, in batches of
--cal_batch_size; tao/cal.tensorfile holds them preprocessed, for both). The output also holds
model_info.json (naming tao/model.engine, the model the next steps evaluate), specs/ and status.json.
The engines only run on the TensorRT version and GPU family that built them (TAO 5.0: TensorRT 8.5.3).
"""

import argparse
import json
import os
import shutil
import sys
from typing import List, Optional

from tao_aml.steps.bpnet import EXECUTABLE
from tao_aml.steps.bpnet.experiment import add_spec_arguments, write_model_specs
from tao_aml.steps.bpnet.models import SDK_COMPATIBLE, TAO_MODEL, final_model
from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.secret_refs import add_model_key_arguments, model_key
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao.model_files import MODEL_INFO

ONNX_NAME, ENGINE_NAME = "model.onnx", "model.engine"
CAL_CACHE_NAME, CAL_DATA_NAME = "cal.bin", "cal.tensorfile"
CAL_IMAGE_EXT = ("jpg", "jpeg", "png")
UPSAMPLE_RATIO = 4  # bpnet export's default --upsample_ratio; DeepStream's featUpsamplingFactor expects it


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.export", description=__doc__)
    add_spec_arguments(parser, train_step=False)
    parser.add_argument("--model", required=True, help="folder holding the retrained model")
    parser.add_argument("--output_dir", required=True)
    add_model_key_arguments(parser)
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
    # TAO takes a file whose extension is exactly one of these (base_exporter.py generate_tensor_file).
    found = sorted(name for name in os.listdir(images) if name.split(".")[-1] in CAL_IMAGE_EXT)
    if not found:
        raise StepError("{} holds no .jpg, .jpeg or .png images to calibrate on (TAO takes lower-case "
                        "extensions only)".format(images))
    return found


def export(args: argparse.Namespace, model: str, train_spec: str, sdk_compatible: bool,
           batches: Optional[int]) -> None:
    """One `bpnet export` into its own folder: TAO refuses to overwrite an export, and it would calibrate
    from an existing cache instead of the images (base_calibrator.py), which holds no scale for the
    SDK-compatible model's extra layer; so each export has its own cache.

    INT8: the first export writes the calibration tensorfile from the images; the second calibrates
    from that file (BaseExporter.get_calibrator reads an existing tensorfile instead of the images).
    """
    folder = os.path.join(args.output_dir, SDK_COMPATIBLE if sdk_compatible else TAO_MODEL)
    os.makedirs(folder)
    out = {name: os.path.join(folder, name) for name in (ONNX_NAME, ENGINE_NAME, CAL_CACHE_NAME)}
    out[CAL_DATA_NAME] = os.path.join(args.output_dir, TAO_MODEL, CAL_DATA_NAME)
    int8 = batches is not None
    tao.run(
        tao.build_command(EXECUTABLE, "export", [
            ("--model", model),
            ("--output_file", out[ONNX_NAME]),
            ("--key", model_key(args)),
            ("--experiment_spec", train_spec),
            ("--input_dims", "{},{},3".format(args.input_height, args.input_width)),
            ("--backend", "tfonnx"),
            ("--data_format", "channels_last"),
            ("--sdk_compatible_model", sdk_compatible),
            ("--upsample_ratio", UPSAMPLE_RATIO if sdk_compatible else None),
            ("--data_type", args.data_type),
            ("--engine_file", out[ENGINE_NAME]),
            ("--cal_image_dir", os.path.join(args.cal_images, "images") if int8 else None),
            ("--cal_cache_file", out[CAL_CACHE_NAME] if int8 else None),
            ("--cal_data_file", out[CAL_DATA_NAME] if int8 else None),
            ("--batches", batches),
            ("--batch_size", args.cal_batch_size if int8 else None),
            ("--max_batch_size", args.max_batch_size),
            # Both exports log to the step's one status.json (TAO appends to it).
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    for name in (ONNX_NAME, ENGINE_NAME):
        if not os.path.isfile(out[name]):
            raise StepError("TAO bpnet export finished but wrote no {}".format(out[name]))
    # TAO builds the engine for max(--batch_size, --max_batch_size) (BpNetExporter.export).
    max_batch = max(args.cal_batch_size, args.max_batch_size) if int8 else args.max_batch_size
    engine_info.write_engine_info(folder, out[ENGINE_NAME], args.data_type, max_batch,
                                  out[CAL_CACHE_NAME] if int8 else None,
                                  input_dims=[args.input_height, args.input_width, 3])


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = final_model(args.model)
    int8 = args.data_type == "int8"
    batches = len(calibration_images(args.cal_images)) // args.cal_batch_size if int8 else None
    if int8 and not batches:
        raise StepError("--cal_batch_size {} is larger than the number of calibration images".format(
            args.cal_batch_size))
    os.makedirs(args.output_dir, exist_ok=True)
    # A rerun on the same output starts from clean folders: TAO refuses to overwrite an export and would
    # reuse a stale calibration cache.
    for name in (TAO_MODEL, SDK_COMPATIBLE):
        shutil.rmtree(os.path.join(args.output_dir, name), ignore_errors=True)
    if os.path.exists(os.path.join(args.output_dir, MODEL_INFO)):  # written last, when both exports are there
        os.remove(os.path.join(args.output_dir, MODEL_INFO))
    written = write_model_specs(args, args.output_dir, model)
    # One step runs both exports: one node start and container pull instead of two, the images are
    # read for calibration once, and each export gets its own folder, as TAO will not overwrite one.
    for sdk_compatible in (False, True):
        export(args, model, written["train"], sdk_compatible, batches)
    # The model the pipeline evaluates and runs next (model_files.find_model reads this).
    atomic_write_text(os.path.join(args.output_dir, MODEL_INFO), json.dumps(
        {"model_file": "{}/{}".format(TAO_MODEL, ENGINE_NAME),
         "models": {TAO_MODEL: "bpnet evaluate and inference (heads at stride 8)",
                    SDK_COMPATIBLE: "DeepStream bodypose2d and Triton (--sdk_compatible_model)"}}, indent=2) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
