"""engine.json: what the engine-building steps (detectnet_v2 gen_trt_engine, bpnet export) record beside a
TensorRT engine - precision, batch size, calibration cache, input dims, TensorRT and the GPU that built it -
and what the engine evaluation, the model asset and its Triton plan check against.
"""

import json
import os
import re
import subprocess
from typing import Any, Dict, List, Optional

from tao_aml.steps.common import StepError, atomic_write_text, read_json

ENGINE_INFO = "engine.json"
NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}  # the precisions, numbered as nvinfer's network-mode


def read_engine_info(folder: str) -> Dict[str, Any]:
    """engine.json, which the engine-building steps write beside the engine (precision, batch sizes)."""
    path = os.path.join(folder, ENGINE_INFO)
    info = read_json(path, "{} has no {} (written by the engine step with the engine's settings)".format(
        folder, ENGINE_INFO))
    if not isinstance(info, dict) or info.get("data_type") not in NETWORK_MODE or \
            not isinstance(info.get("max_batch_size"), int):
        raise StepError("{}: expected data_type (fp32/fp16/int8) and max_batch_size".format(path))
    return info


def building_gpu() -> Optional[Dict[str, str]]:
    """Name and compute capability of the GPU this step runs on (nvidia-smi), None where there is none."""
    try:
        answer = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    name, _, capability = (answer.strip().splitlines() or [""])[0].rpartition(",")
    if not name.strip() or not re.match(r"^\d+\.\d+$", capability.strip()):
        return None
    return {"name": name.strip(), "compute_capability": capability.strip()}


def write_engine_info(folder: str, engine: str, data_type: str, max_batch_size: int,
                      calibration_cache: Optional[str], int8_route: Optional[str] = None,
                      gpu: Optional[Dict[str, str]] = None, input_dims: Optional[List[int]] = None) -> None:
    """engine.json beside the engine, with the GPU that built it (`gpu`, else this machine's, else null) and,
    for a model whose ONNX size is dynamic (bpnet), the engine's input dims (height, width, channels)."""
    info = {"engine_file": os.path.basename(engine), "data_type": data_type, "max_batch_size": max_batch_size,
            "input_dims": input_dims,
            "int8_route": int8_route,
            "calibration_cache": os.path.basename(calibration_cache) if calibration_cache else None,
            "tensorrt": "8.5.3", "built_with": "TAO 5.0 (nvcr.io/nvidia/tao/tao-toolkit:5.0.0-deploy or -tf1.15.5)",
            "gpu": gpu or building_gpu()}
    atomic_write_text(os.path.join(folder, ENGINE_INFO), json.dumps(info, indent=2) + "\n")
