"""How long each step runs, before it runs: estimated GPU-hours per GPU step and hours per CPU step, from
tables of per-image times (run_cost.py turns them into billed VM-hours and a price).

NVIDIA publishes no training or inference times for DetectNet_v2 FaceNet or BPNet BodyPoseNet on a GPU
the cloud rents (shared/facts/tao5.md, "Reference numbers": only TensorRT INT8 inference FPS on T4 and
Jetson). So every training figure below is a GUESS, marked as such, scaled from those inference numbers and
the usual 3-4x cost of a training step over inference. The run report prints the measured GPU-hours
of each stage next to these estimates: correct the table from real runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tao_aml.azure import vm_sizes


@dataclass(frozen=True)
class StepCost:
    """Seconds of one step (a GPU step: on one A100 80 GB at fp32): per image per pass, plus a fixed part."""

    per_image_s: float
    split: str | None  # which images it reads: "train", "val", "calibration", ...; None for fixed-cost steps
    epochs_input: str | None = None  # the step input holding the number of passes
    fixed_s: float = 0.0
    source: str = "guess"


# Keyed by component name. FaceNet: TensorRT INT8 runs 1,703 FPS on a T4 (NGC model card); fp32 TensorFlow
# training at 736x416 is guessed at ~250 images/s on an A100. BodyPoseNet: no figure published; its multi-stage
# VGG-like network at 368x368 is guessed ~5x slower per image than FaceNet's ResNet-18.
TABLE: dict[str, StepCost] = {
    "tao_detectnet_v2_train": StepCost(0.004, "train", "epochs", 120.0, "guess (~250 img/s on A100, fp32)"),
    "tao_detectnet_v2_evaluate": StepCost(0.002, "val", None, 60.0, "guess (~500 img/s)"),
    "tao_detectnet_v2_inference": StepCost(0.003, "val", None, 60.0, "guess (~330 img/s, drawing included)"),
    "tao_detectnet_v2_prune": StepCost(0.0, None, None, 120.0, "guess"),
    "tao_detectnet_v2_export": StepCost(0.0, None, None, 180.0, "guess"),
    "tao_detectnet_v2_gen_trt_engine": StepCost(0.0, None, None, 600.0, "guess (INT8 calibration and build)"),
    # TensorRT itself is fast (1,703 FPS INT8 on a T4); TAO Deploy's Python loader (PIL resize) at batch 1 is not.
    "tao_detectnet_v2_evaluate_engine": StepCost(0.005, "val", None, 60.0, "guess (~200 img/s, loader-bound)"),
    "tao_detectnet_v2_inference_engine": StepCost(0.008, "val", None, 60.0, "guess (~125 img/s, drawing included)"),
    "tao_bpnet_train": StepCost(0.02, "train", "epochs", 120.0, "guess (~50 img/s on A100, fp32)"),
    "tao_bpnet_evaluate": StepCost(0.05, "val", None, 60.0, "guess (multi-scale inference)"),
    "tao_bpnet_inference": StepCost(0.0, None, None, 120.0, "guess (20 images)"),
    "tao_bpnet_prune": StepCost(0.0, None, None, 120.0, "guess"),
    "tao_bpnet_export": StepCost(0.01, "calibration", None, 600.0, "guess (ONNX, INT8 calibration, engine)"),
}
# Images per split of the full data sets, and the pipeline input that cuts them.
DATASET_IMAGES: dict[str, dict[str, int]] = {
    "facenet": {"train": 12_880, "val": 3_226},  # WIDER FACE (facts/tao5.md)
    "bodypose": {"train": 64_115, "val": 2_693},  # COCO 2017 images with a person annotation (approximate)
}
# Pipelines on the user's own data: the size is unknown before the data step runs, so the estimate ASSUMES
# a data set the size of KITTI's object training set (7,481 images, split 80/20 as val_fraction 0.2 does)
# unless images_per_split is given (then that many per split). Marked "assumed" wherever it is printed.
USER_DATASET_PIPELINES = {"detectnet_v2"}
ASSUMED_USER_IMAGES: dict[str, int] = {"train": 5_985, "val": 1_496}
CALIBRATION_INPUT = "calibration_images"
LIMIT_INPUT = "images_per_split"
# Image counts a CPU step reads: both splits; the whole archive (a download ignores images_per_split); or the
# split its own `split` input names (both when it has none).
ALL_SPLITS, DOWNLOAD, STEP_SPLIT = "train+val", "download", "the step's split input"
# CPU steps, keyed by component, in seconds on the CPU cluster's Standard_D4s_v3 (4 vCPUs): all GUESSES, from
# the container start-up, a download of ~150 KB per image and the per-image work each step does. They are
# small next to the GPU steps; the run report's timings correct them.
CPU_TABLE: dict[str, StepCost] = {
    "tao_download_archives": StepCost(0.03, DOWNLOAD, None, 120.0, "guess (download and unzip)"),
    "tao_wider_to_kitti": StepCost(0.02, STEP_SPLIT, None, 60.0, "guess (letterbox resize)"),
    "tao_kitti_prepare": StepCost(0.02, ALL_SPLITS, None, 60.0, "guess (label checks, letterbox resize)"),
    "tao_detectnet_v2_dataset_convert": StepCost(0.01, ALL_SPLITS, None, 120.0, "guess (TFRecords)"),
    "tao_coco_subset": StepCost(0.001, ALL_SPLITS, None, 120.0, "guess (annotation filter)"),
    "tao_bpnet_dataset_convert": StepCost(0.05, STEP_SPLIT, None, 120.0, "guess (TFRecords with masks)"),
    "tao_coco_calibration": StepCost(0.01, "calibration", None, 60.0, "guess"),
    "tao_ngc_model": StepCost(0.0, None, None, 300.0, "guess (NGC download)"),
    "tao_run_report": StepCost(0.0, None, None, 60.0, "guess"),
    # A pruning sweep's selection: reads and copies folders as the report does (a sweep's branch steps use their
    # own components' rows: retrain_2 is a tao_detectnet_v2_train step as retrain is).
    "tao_select_model": StepCost(0.0, None, None, 60.0, "guess (as the report)"),
    "tao_register_model": StepCost(0.0, None, None, 120.0, "guess"),
}
# Throughput relative to an A100 80 GB: a guess from the GPUs' fp32/TF32 tensor rates.
GPU_SPEED = {"A100 80 GB": 1.0, "A100 40 GB": 0.95, "H100 NVL 94 GB": 1.8, "H100 80 GB": 2.0,
             "A10 24 GB": 0.4, "T4 16 GB": 0.2}
AMP_SPEEDUP = 1.5  # guess: NVIDIA says AMP speeds training up; by how much for these networks is not published
MULTI_GPU_EFFICIENCY = 0.9  # guess: Horovod all-reduce per extra GPU


def images(pipeline: str, split: str, values: dict[str, Any]) -> int:
    if split == "calibration":
        return int(values.get(CALIBRATION_INPUT) or 0)
    if split in (ALL_SPLITS, DOWNLOAD):
        # A download fetches the whole archive whatever images_per_split keeps.
        cut = {} if split == DOWNLOAD else values
        return sum(images(pipeline, one, cut) for one in ("train", "val"))
    limit = values.get(LIMIT_INPUT)
    if pipeline in USER_DATASET_PIPELINES:
        return int(limit) if limit else ASSUMED_USER_IMAGES.get(split, 0)
    full = DATASET_IMAGES.get(pipeline, {}).get(split, 0)
    return min(full, int(limit)) if limit else full


def _gpu_seconds(pipeline: str, cost: StepCost, step_inputs: dict[str, Any], values: dict[str, Any],
                 gpus: int, gpu_size: str | None, amp: bool) -> float:
    """GPU-seconds of one step, summed over its GPUs."""
    # Every GPU of the step is held for its fixed part; the per-image work is shared out, at some loss.
    gpu_seconds = cost.fixed_s * gpus
    if cost.split:
        passes = int(step_inputs.get(cost.epochs_input) or 1) if cost.epochs_input else 1
        work = images(pipeline, cost.split, values) * passes * cost.per_image_s
        if cost.epochs_input and amp:
            work /= AMP_SPEEDUP
        gpu_seconds += work / (MULTI_GPU_EFFICIENCY if gpus > 1 else 1.0)
    known = vm_sizes.GPU_SIZES.get(gpu_size or "")
    speed = GPU_SPEED.get(known[1], 1.0) if known else 1.0
    return gpu_seconds / speed


def estimate(pipeline: str, component: str, step_inputs: dict[str, Any], values: dict[str, Any],
             gpus: int, gpu_size: str | None, amp: bool) -> float | None:
    """Estimated GPU-hours of one step (None for a step the table does not know)."""
    cost = TABLE.get(component)
    if cost is None:
        return None
    return round(_gpu_seconds(pipeline, cost, step_inputs, values, gpus, gpu_size, amp) / 3600.0, 3)


def wall_hours(pipeline: str, component: str, step_inputs: dict[str, Any], values: dict[str, Any],
               gpus: int, gpu_size: str | None, amp: bool) -> float | None:
    """Estimated hours from a step's start to its end: what each of its VMs is billed for (None: not known)."""
    if component in TABLE:
        return _gpu_seconds(pipeline, TABLE[component], step_inputs, values, gpus, gpu_size, amp) / max(gpus, 1) / 3600
    cost = CPU_TABLE.get(component)
    if cost is None:
        return None
    split = str(step_inputs.get("split") or ALL_SPLITS) if cost.split == STEP_SPLIT else cost.split
    return (cost.fixed_s + (images(pipeline, split, values) * cost.per_image_s if split else 0.0)) / 3600.0
