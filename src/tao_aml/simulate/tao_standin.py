"""Stand-ins for TAO 5.0 CLIs: `detectnet_v2`, `bpnet` (TF1 container) and `detectnet_v2` (TAO Deploy).

They parse a command line the way TAO 5.0 does (flag tables below are facts read from
NVIDIA/tao_tensorflow1_backend "TAO 5.0 Release" and NVIDIA/tao_deploy cfb4ecb "TAO 5.0 Release - Deploy"),
add the project's rules on top (task first, no abbreviations, no shell-unsafe values), check that every
input a flag or a spec names exists, and write the files TAO writes, so a pipeline can run end to end on
a machine without TAO and each step finds what the previous one wrote. Each task function names the NVIDIA
source file it follows, and each behaviour that differs from a plain reading cites it where it is coded.
Exports write real ONNX models with the tensor names and shapes of TAO 5.0's exports (onnx_models.py;
DetectNet_v2 with one planted box in the middle of the input); TAO Deploy parses that ONNX and its engine
placeholder (JSON) records the ONNX's tensors; calibration caches are TensorRT's text format; other model
files are JSON placeholders.

detectnet_v2 specs are parsed as protobuf's text_format does against TAO 5.0's schema, and the TF1 tasks
then run TAO's SpecValidator: both through the project's transcriptions (steps/detectnet_v2_schema.py,
steps/detectnet_v2/tf1_validator.py), so a mistake there is shared with the steps. status.json keeps
`categorical`, `graphical` and `kpi` on every line after a task sets them, as StatusLogger does.

Exit codes follow the launchers: argparse errors 2; a failed task makes the TF1 launcher `sys.exit(-1)`
(255) and the Deploy launcher `sys.exit(1)`. A SystemExit inside a TF1 task (TAO's spec validator calls
`sys.exit(1)`) is caught by the task's `__main__`, logged as FAILURE "... was interrupted" and ends with
exit 0 and "Execution status: PASS", exactly as TAO 5.0 does: callers must read status.json too. In TAO
Deploy nothing catches SystemExit (its monitor_status catches SystemError): a task that calls sys.exit(1)
leaves no FAILURE line (class Exited).

Model size and accuracy are simulated so that a pruning sweep has something to choose between (PRUNING
below; the figures are the simulation's, not TAO's): a model placeholder carries its parameter count and
the share pruning kept; prune removes more parameters the higher its threshold, (re)train passes the
count on, and TF1 evaluate scores a model that kept too little lower.

Environment: TAO_STANDIN_LOG (append one JSON line per invocation), TAO_STANDIN_FAIL_TASK (`task`,
`family:task` or `kind:family:task`: fail like TAO after the command line and inputs were checked),
TAO_STANDIN_FAIL_PRUNE_FROM=T (prune fails the same way when its threshold is T or higher: one branch of a
sweep), TAO_STANDIN_KILL_AFTER_EPOCHS=N (train dies with exit 137 after completing N epochs in this run).
"""

import argparse
import datetime
import glob
import json
import math
import os
import re
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable, Sequence
from typing import Any, TextIO

# ---------------------------------------------------------------------------------------------
# Flag tables: (option strings, argparse keywords, what must exist: "file" | "dir" | "path" | None)
# ---------------------------------------------------------------------------------------------
Flag = tuple[tuple[str, ...], dict[str, Any], str | None]
STORE_TRUE: dict[str, Any] = {"action": "store_true"}
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

TF1_GLOBAL: list[Flag] = [
    (("--num_processes", "-np"), {"type": int, "default": -1}, None),
    (("--gpus",), {"type": int, "default": 1}, None),
    (("--gpu_index",), {"type": int, "nargs": "+", "default": None}, None),
    (("--use_amp",), STORE_TRUE, None),
    (("--log_file",), {"type": str, "default": None}, None),
    (("--mpirun-arg",), {"type": str, "default": None}, None),
    (("--multi-node",), STORE_TRUE, None),
    (("--launch_cuda_blocking",), STORE_TRUE, None),
]
DEPLOY_GLOBAL: list[Flag] = [
    (("--gpu_index",), {"type": int, "default": 0}, None),
    (("--log_file",), {"type": str, "default": None}, None),
]

# nvidia_tao_tf1/cv/common/magnet_prune.py (detectnet_v2 prune): note --results_dir has no short form.
PRUNE_COMMON: list[Flag] = [
    (("-m", "--model"), {"type": str, "required": True}, "file"),
    (("-o", "--output_file"), {"type": str, "required": True}, None),
    (("-k", "--key"), {"type": str, "default": ""}, None),
    (("-n", "--normalizer"), {"type": str, "default": "max"}, None),
    (("-eq", "--equalization_criterion"), {"type": str, "default": "union"}, None),
    (("-pg", "--pruning_granularity"), {"type": int, "default": 8}, None),
    (("-pth", "--pruning_threshold"), {"type": float, "default": 0.1}, None),
    (("-nf", "--min_num_filters"), {"type": int, "default": 16}, None),
    (("-el", "--excluded_layers"), {"type": str, "nargs": "*", "default": []}, None),
    (("-v", "--verbose"), STORE_TRUE, None),
]

# nvidia_tao_tf1/cv/common/export/app.py (detectnet_v2 export; TensorRT flags hidden from --help).
DN_EXPORT: list[Flag] = [
    (("-m", "--model"), {"type": str, "required": True}, "file"),
    (("-k", "--key"), {"type": str, "default": ""}, None),
    (("-o", "--output_file"), {"type": str, "default": None}, None),
    (("--force_ptq",), STORE_TRUE, None),
    (("--cal_data_file",), {"type": str, "default": ""}, None),
    (("--cal_image_dir",), {"type": str, "default": ""}, None),
    (("--cal_json_file",), {"type": str, "default": ""}, None),
    (("--data_type",), {"type": str, "default": "fp32", "choices": ["fp32", "fp16", "int8"]}, None),
    (("-s", "--strict_type_constraints"), STORE_TRUE, None),
    (("--gen_ds_config",), STORE_TRUE, None),
    (("--cal_cache_file",), {"type": str, "default": "./cal.bin"}, None),
    (("--batches",), {"type": int, "default": 10}, None),
    (("--max_workspace_size",), {"type": int, "default": 2 << 30}, None),
    (("--max_batch_size",), {"type": int, "default": 1}, None),
    (("--batch_size",), {"type": int, "default": 16}, None),
    (("--min_batch_size",), {"type": int, "default": 1}, None),
    (("--opt_batch_size",), {"type": int, "default": 1}, None),
    (("--onnx_route",), {"type": str, "default": "keras2onnx"}, None),
    (("-e", "--experiment_spec"), {"type": str, "default": None}, "file"),
    (("--engine_file",), {"type": str, "default": None}, None),
    (("--static_batch_size",), {"type": int, "default": -1}, None),
    (("--target_opset",), {"type": int, "default": 12}, None),
    (("--results_dir",), {"type": str, "default": None}, None),
    (("-v", "--verbose"), STORE_TRUE, None),
]

DN_TF1: dict[str, list[Flag]] = {
    "dataset_convert": [
        (("-d", "--dataset_export_spec"), {"required": True}, "file"),
        (("-o", "--output_filename"), {"required": True}, None),
        (("-f", "--validation_fold"), {"type": int, "default": None}, None),
        (("-v", "--verbose"), STORE_TRUE, None),
        (("-r", "--results_dir"), {"type": str, "default": None}, None),
    ],
    "train": [
        (("-e", "--experiment_spec_file"), {"type": str, "default": None}, "file"),
        (("-r", "--results_dir"), {"type": str, "default": None}, None),
        (("-n", "--model_name"), {"type": str, "default": "model"}, None),
        (("-v", "--verbose"), STORE_TRUE, None),
        (("-k", "--key"), {"type": str, "default": ""}, None),
        (("--enable_determinism",), STORE_TRUE, None),
    ],
    "evaluate": [
        (("-e", "--experiment_spec"), {"type": str, "required": True}, "file"),
        (("-m", "--model_path"), {"type": str, "required": True}, "file"),
        (("-v", "--verbose"), STORE_TRUE, None),
        (("-r", "--results_dir"), {"type": str, "default": None}, None),
        (("--use_training_set",), STORE_TRUE, None),
        (("-k", "--key"), {"default": ""}, None),
        (("-f", "--framework"), {"choices": ["tlt", "tensorrt"], "default": "tlt"}, None),
        (("-i", "--image_dir"), {"type": str, "default": None}, "dir"),
        (("-l", "--label_dir"), {"type": str, "default": None}, "dir"),
        (("-b", "--batch_size"), {"type": int, "default": 1}, None),
    ],
    "prune": PRUNE_COMMON + [(("--results_dir",), {"type": str, "default": None}, None)],
    "inference": [
        (("-e", "--experiment_spec"), {"type": str, "required": True}, "file"),
        (("-i", "--image_dir"), {"type": str, "required": True}, "path"),
        (("-k", "--key"), {"type": str, "default": ""}, None),
        (("-r", "--results_dir"), {"type": str, "required": True}, None),
        (("-b", "--batch_size"), {"type": int, "default": None}, None),
        (("-m", "--model_path"), {"type": str, "default": None}, "file"),
        (("-v", "--verbosity"), STORE_TRUE, None),
    ],
    "export": DN_EXPORT,
    "calibration_tensorfile": [
        (("-e", "--experiment_spec_file"), {"type": str}, "file"),
        (("-o", "--output_path"), {"type": str}, None),
        (("-m", "--max_batches"), {"type": int, "default": -1}, None),
        (("-v", "--verbose"), STORE_TRUE, None),
        (("--use_validation_set",), STORE_TRUE, None),
    ],
}

BPNET_TF1: dict[str, list[Flag]] = {
    "dataset_convert": [
        (("-d", "--dataset_spec"), {"required": True}, "file"),
        (("-o", "--output_filename"), {"required": True}, None),
        (("-m", "--mode"), {"default": "train"}, None),
        (("-p", "--num_partitions"), {"type": int, "default": 1}, None),
        (("-s", "--num_shards"), {"type": int, "default": 0}, None),
        (("--generate_masks",), STORE_TRUE, None),
        (("--check_files",), STORE_TRUE, None),
        (("-r", "--results_dir"), {"type": str, "default": None}, None),
    ],
    "train": [
        (("-e", "--experiment_spec_file"), {"type": str, "default": None}, "file"),
        (("-r", "--results_dir"), {"type": str, "default": None}, None),
        (("-ll", "--log_level"), {"type": str, "choices": LOG_LEVELS, "default": "INFO"}, None),
        (("-k", "--key"), {"type": str, "default": ""}, None),
    ],
    "evaluate": [
        (("-i", "--inference_spec"), {"type": str, "default": None}, "file"),
        (("-m", "--model_filename"), {"type": str, "default": None}, "file"),
        (("--dataset",), {"type": str, "default": "coco", "choices": ["coco"]}, None),
        (("-d", "--dataset_spec"), {"required": True}, "file"),
        (("-k", "--key"), {"type": str, "default": ""}, None),
        (("--results_dir",), {"type": str, "default": None}, None),
        (("-ll", "--log_level"), {"type": str, "choices": LOG_LEVELS, "default": "INFO"}, None),
    ],
    "inference": [
        (("-i", "--inference_spec"), {"type": str, "default": None}, "file"),
        (("-m", "--model_filename"), {"type": str, "default": None}, "file"),
        (("--input_type",), {"type": str, "default": "image", "choices": ["image", "dir", "json"]}, None),
        (("--input",), {"type": str, "default": None}, "path"),
        (("--image_root_path",), {"type": str, "default": ""}, None),
        (("-k", "--key"), {"type": str, "default": ""}, None),
        (("--results_dir",), {"type": str, "default": None}, None),
        (("--dump_visualizations",), STORE_TRUE, None),
        (("-ll", "--log_level"), {"type": str, "choices": LOG_LEVELS, "default": "INFO"}, None),
    ],
    "prune": PRUNE_COMMON + [(("-r", "--results_dir"), {"type": str, "default": None}, None)],
    # nvidia_tao_tf1/cv/bpnet/scripts/export.py: its own table, -i and -d mean other things here.
    "export": [
        (("-m", "--model"), {"type": str, "required": True}, "file"),
        (("-k", "--key"), {"type": str, "default": ""}, None),
        (("-o", "--output_file"), {"type": str, "default": None}, None),
        (("--force_ptq",), STORE_TRUE, None),
        (("--cal_data_file",), {"type": str, "default": ""}, None),
        (("--cal_image_dir",), {"type": str, "default": ""}, None),
        (("--data_type",), {"type": str, "default": "fp32", "choices": ["fp32", "fp16", "int8"]}, None),
        (("-s", "--strict_type_constraints"), STORE_TRUE, None),
        (("--cal_cache_file",), {"type": str, "default": "./cal.bin"}, None),
        (("--batches",), {"type": int, "default": 10}, None),
        (("--max_workspace_size",), {"type": int, "default": 1 << 30}, None),
        (("--max_batch_size",), {"type": int, "default": 1}, None),
        (("--batch_size",), {"type": int, "default": 1}, None),
        (("-e", "--experiment_spec"), {"type": str, "default": None}, "file"),
        (("--engine_file",), {"type": str, "default": None}, None),
        (("--static_batch_size",), {"type": int, "default": -1}, None),
        (("-v", "--verbose"), STORE_TRUE, None),
        (("-d", "--input_dims"), {"type": str, "default": "256,256,3"}, None),
        (("--sdk_compatible_model",), STORE_TRUE, None),
        (("-u", "--upsample_ratio"), {"type": int, "default": 4}, None),
        (("-i", "--data_format"), {"choices": ["channels_last", "channels_first"], "type": str,
                                   "default": "channels_last"}, None),
        (("-t", "--backend"), {"choices": ["onnx", "uff", "tfonnx"], "type": str, "default": "onnx"}, None),
        (("--opt_batch_size",), {"type": int, "default": 1}, None),
        (("-r", "--results_dir"), {"type": str, "default": None}, None),
    ],
}

DN_DEPLOY: dict[str, list[Flag]] = {
    "gen_trt_engine": [
        (("-m", "--model_path"), {"type": str, "required": True}, "file"),
        (("-k", "--key"), {"type": str}, None),
        # Required, yet read only when an engine is built or the data type is int8 (gen_trt_engine.py).
        (("-e", "--experiment_spec"), {"type": str, "required": True}, None),
        (("--data_type",), {"type": str, "default": "fp32", "choices": ["fp32", "fp16", "int8"]}, None),
        # A missing folder is ImageBatcher's "No valid ... images found" (deploy_calibration).
        (("--cal_image_dir",), {"type": str, "default": ""}, None),
        (("--cal_data_file",), {"type": str, "default": ""}, None),
        (("--cal_cache_file",), {"type": str, "default": None}, None),
        (("--cal_json_file",), {"type": str, "default": None}, None),
        (("--engine_file",), {"type": str, "default": None}, None),
        (("--max_batch_size",), {"type": int, "default": 1}, None),
        (("--min_batch_size",), {"type": int, "default": 1}, None),
        (("--opt_batch_size",), {"type": int, "default": 1}, None),
        (("--batch_size",), {"type": int, "default": 1}, None),
        (("--batches",), {"type": int, "default": 10}, None),
        (("--max_workspace_size",), {"type": int, "default": 2}, None),
        (("-s", "--strict_type_constraints"), STORE_TRUE, None),
        (("--force_ptq",), STORE_TRUE, None),
        (("-v", "--verbose"), STORE_TRUE, None),
        (("-r", "--results_dir"), {"type": str, "required": True}, None),
    ],
    "inference": [
        (("-i", "--image_dir"), {"type": str, "default": None}, "dir"),
        (("-e", "--experiment_spec"), {"type": str, "required": True}, "file"),
        (("-m", "--model_path"), {"type": str, "required": True}, "file"),
        (("-b", "--batch_size"), {"type": int, "default": None}, None),
        (("-r", "--results_dir"), {"type": str, "required": True}, None),
    ],
    "evaluate": [
        (("-i", "--image_dir"), {"type": str, "default": None}, "dir"),
        (("-e", "--experiment_spec"), {"type": str, "required": True}, "file"),
        (("-m", "--model_path"), {"type": str, "required": True}, "file"),
        (("-l", "--label_dir"), {"type": str}, "dir"),
        (("-b", "--batch_size"), {"type": int, "default": 1}, None),
        (("-r", "--results_dir"), {"type": str, "required": True}, None),
    ],
}

TASKS: dict[tuple[str, str], dict[str, list[Flag]]] = {
    ("tf1", "detectnet_v2"): DN_TF1,
    ("tf1", "bpnet"): BPNET_TF1,
    ("deploy", "detectnet_v2"): DN_DEPLOY,
}
GLOBALS = {"tf1": TF1_GLOBAL, "deploy": DEPLOY_GLOBAL}
FAIL_EXIT = {"tf1": 255, "deploy": 1}  # TF1 launcher: sys.exit(-1); Deploy launcher: sys.exit(1)
KILLED_EXIT = 137

# TAO's launcher runs `bash -c '<task> <args>'` with the arguments re-joined unquoted.
UNSAFE = re.compile(r"[\s'\"$;&|<>()\[\]{}*?`\\]")
DN_IMAGE_EXT = (".jpg", ".png", ".jpeg", ".ppm")  # detectnet_v2/utilities/constants.py
DEPLOY_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".JPEG", ".JPG", ".PNG")  # tao_deploy constants.py
BPNET_IMAGE_EXT = ("jpg", "jpeg", "png")  # bpnet_inferencer.py valid_image_ext
BPNET_KPI_KEYS = ["AP_0.50:0.95_all", "AP_0.5", "AP_0.75", "AP_0.50:0.95_medium", "AP_0.50:0.95_large",
                  "AR_0.50:0.95_all", "AR_0.5", "AR_0.75", "AR_0.50:0.95_medium", "AR_0.50:0.95_large"]


class UsageError(Exception):
    """A command line argparse (or the launcher) refuses: exit 2 before the task starts."""


class TaskError(Exception):
    """The task raised: FAILURE in status.json, a traceback on stderr, the launcher reports FAIL."""


class Interrupted(Exception):
    """The task hit SystemExit (TAO's spec validator): FAILURE "... was interrupted", yet exit 0."""


class Exited(Exception):
    """The task called sys.exit(1) where nothing catches it (TAO Deploy's monitor_status catches SystemError,
    not SystemExit): the message on stdout, no FAILURE line, the launcher reports FAIL."""


class Killed(Exception):
    """TAO_STANDIN_KILL_AFTER_EPOCHS reached: the process vanishes as if OOM-killed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# ---------------------------------------------------------------------------------------------
# status.json, like nvidia_tao_tf1/cv/common/logging/logging.py StatusLogger
# ---------------------------------------------------------------------------------------------
class Status:
    """StatusLogger (and TAO Deploy's copy, nvidia_tao_deploy/cv/common/logging/status_logging.py).

    `categorical`, `graphical` and `kpi` are attributes of the logger there: once a task sets one, every later
    line carries it (e.g. train's "Model saved." kpi is on its SUCCESS line too).
    """

    def __init__(self) -> None:
        self.path: str | None = None
        self.sticky: dict[str, Any] = {}

    def open(self, results_dir: str | None, append: bool = True) -> None:
        """Start logging to <results_dir>/status.json; without a results dir TAO logs nowhere."""
        if not results_dir:
            return
        os.makedirs(results_dir, exist_ok=True)
        self.path = os.path.join(os.path.realpath(results_dir), "status.json")
        if not append:
            open(self.path, "w").close()

    def write(self, status: str = "RUNNING", message: str | None = None,
              data: dict[str, Any] | None = None, **extra: Any) -> None:
        if self.path is None:
            return
        now = datetime.datetime.now()
        record = dict(data or {})
        record["date"] = f"{now.month}/{now.day}/{now.year}"
        record["time"] = f"{now.hour}:{now.minute}:{now.second}"
        record["status"] = status
        record["verbosity"] = "INFO"
        if message:
            record["message"] = message
        self.sticky.update(extra)
        for name in ("categorical", "graphical", "kpi"):
            if self.sticky.get(name):
                record[name] = self.sticky[name]
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


class Ctx:
    """One invocation: parsed flags, where the task's output goes, the status file."""

    def __init__(self, kind: str, family: str, task: str, args: argparse.Namespace, out: TextIO) -> None:
        self.kind, self.family, self.task, self.args, self.out = kind, family, task, args, out
        self.status = Status()

    def start(self, results_dir: str | None, message: str | None, append: bool = True) -> None:
        """Open status.json, log STARTED (unless the task writes none), then check the inputs flags name
        (TAO fails on them at run time)."""
        self.status.open(results_dir, append)
        if message:
            self.status.write("STARTED", message)
        for names, _, kind in TASKS[(self.kind, self.family)][self.task]:
            value = getattr(self.args, names[-1].lstrip("-").replace("-", "_"))
            if kind and value:
                need(value, "/".join(names), kind)

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def maybe_fail(self) -> None:
        """TAO_STANDIN_FAIL_TASK: fail here, after the inputs were checked, as a crash inside TAO would."""
        wanted = os.environ.get("TAO_STANDIN_FAIL_TASK", "")
        names = {self.task, f"{self.family}:{self.task}",
                 f"{self.kind}:{self.family}:{self.task}"}
        if wanted and wanted in names:
            raise TaskError(f"Simulated failure of {self.family} {self.task} "
                            f"(TAO_STANDIN_FAIL_TASK={wanted})")


# ---------------------------------------------------------------------------------------------
# PRUNING: simulated parameter counts and accuracy (the simulation's figures, not TAO's)
# ---------------------------------------------------------------------------------------------
# Parameters of an unpruned model, and the threshold that prunes half of them: the TAO 5.0 notebooks'
# (-pth 0.0000052 DetectNet_v2/FaceNet, 0.2 BodyPoseNet), which are the pipelines' defaults.
UNPRUNED_PARAMS = {"detectnet_v2": 11_200_000, "bpnet": 4_900_000}
HALF_PRUNED_AT = {"detectnet_v2": 0.0000052, "bpnet": 0.2}
MIN_KEPT = 0.05  # min_num_filters (-nf) keeps some filters in every layer, however high the threshold
FULL_ACCURACY_FROM = 0.4  # a retrained model that kept at least this share of parameters loses no accuracy
WEIGHT_BYTES = 0.004  # a model file's bytes per parameter: a thousandth of float32 weights, so files stay small


def kept_share(family: str, threshold: float) -> float:
    """The share of parameters pruning keeps: all at 0, half at the notebook's threshold, fewer above it."""
    if threshold <= 0:
        return 1.0
    return max(MIN_KEPT, 1.0 / (1.0 + math.sqrt(threshold / HALF_PRUNED_AT[family])))


def model_facts(path: str | None, family: str) -> dict[str, Any]:
    """Parameter count and kept share of a model placeholder; an unpruned model's for any other file (NGC's)."""
    content: Any = None
    if path and os.path.isfile(path):
        try:
            with open(path) as handle:
                content = json.load(handle)
        except (OSError, ValueError):
            content = None
    facts = {"param_count": UNPRUNED_PARAMS[family], "kept_share": 1.0}
    if isinstance(content, dict):
        facts.update({k: content[k] for k in facts if isinstance(content.get(k), (int, float))})
    return facts


def accuracy_factor(facts: dict[str, Any]) -> float:
    """What a model's accuracy is multiplied by: 1 until too few parameters are left to retrain well."""
    return min(1.0, float(facts["kept_share"]) / FULL_ACCURACY_FROM) ** 0.5


# ---------------------------------------------------------------------------------------------
# Checks shared by tasks
# ---------------------------------------------------------------------------------------------
def need(path: str, what: str, kind: str = "file") -> str:
    ok = {"file": os.path.isfile, "dir": os.path.isdir, "path": os.path.exists}[kind](path)
    if not ok:
        raise TaskError(f"{what} {path!r} does not exist (expected a {kind})")
    return path


def spec_path(value: Any, field: str, kind: str = "path") -> str:
    """A path written in a spec: TAO joins relative ones to a data root, the project never relies on that."""
    if value in (None, ""):
        raise TaskError(f"spec field {field} is not set")
    value = str(value)
    if not os.path.isabs(value):
        raise TaskError(f"spec field {field} = {value!r} is a relative path; write an absolute path")
    return need(value, f"spec field {field}", kind)


def need_key(model: str, key: str | None, flag: str = "-k/--key") -> None:
    """Encrypted models (.tlt, .etlt) cannot be read without the key."""
    if model.endswith((".tlt", ".etlt")) and not key:
        raise TaskError(f"{model} is encrypted: {flag} must be given")


def placeholder(path: str, content: dict[str, Any]) -> None:
    """A JSON file in place of a model; one with a parameter count is WEIGHT_BYTES per parameter long (PRUNING)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if "param_count" in content:
        content = dict(content, weights="0" * int(content["param_count"] * WEIGHT_BYTES))
    with open(path, "w") as handle:
        json.dump(dict(content, standin=True), handle, indent=1)


def write_ckzip(results_dir: str, epoch: int, kind: str) -> None:
    """model.epoch-E.ckzip as TAO 5.0 writes it: a plain zip of TF's `model.ckpt-E.*` files and `checkpoint`
    (detectnet_v2/tfhooks/checkpoint_saver_hook.py _save_encrypted_checkpoint; bpnet uses the same hook)."""
    stem = f"model.ckpt-{epoch}"
    with zipfile.ZipFile(os.path.join(results_dir, f"model.epoch-{epoch}.ckzip"), "w") as archive:
        for member in (f"{stem}.index", f"{stem}.data-00000-of-00001", f"{stem}.meta"):
            archive.writestr(member, json.dumps({"kind": kind, "epoch": epoch, "standin": True}))
        archive.writestr("checkpoint", f'model_checkpoint_path: "{stem}"\n')


def resume_checkpoint(path: str) -> None:
    """TAO extracts the newest ckzip and stops when it cannot (common/utilities/tlt_utils.py get_tf_ckpt,
    extract_checkpoint_file: the TAO < 5.0 decryption fallback fails on a damaged zip as well)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("bad CRC")
    except (OSError, zipfile.BadZipFile, EOFError):
        raise TaskError("The zipfile extracted was corrupt. Please check your key or delete the latest `*.ckzip` "
                        "and re-run the command.") from None


def read_placeholder(path: str, expected: str) -> dict[str, Any]:
    try:
        with open(path) as handle:
            content = json.load(handle)
    except (OSError, ValueError):
        raise TaskError(f"{path} is not a {expected} written by dataset_convert") from None
    if not isinstance(content, dict) or content.get("kind") != expected:
        raise TaskError(f"{path} is not a {expected} written by dataset_convert")
    return content


def load_proto(path: str) -> Any:
    """Read protobuf text with the project's reader (imported here: bpnet runs without it)."""
    from tao_aml.steps.specs import prototext

    with open(path) as handle:
        try:
            return prototext.parse(handle.read(), path)
        except prototext.StepError as err:
            raise TaskError(f"cannot parse {path} as protobuf text: {err}") from None


def pget(message: Any, dotted: str) -> Any:
    """A field of a protobuf-text message, or None when the spec does not set it."""
    return message.get(dotted) if message.has(dotted) else None


def prepeated(message: Any, dotted: str) -> list[Any]:
    return message.get_all(dotted)


def images_in(folder: str, extensions: Sequence[str], recursive: bool = False) -> list[str]:
    if recursive:
        found = [p for p in glob.glob(os.path.join(folder, "**", "*"), recursive=True)
                 if os.path.isfile(p) and os.path.splitext(p)[1] in extensions]
    else:
        found = [os.path.join(folder, n) for n in os.listdir(folder)
                 if os.path.splitext(n)[1].lower() in extensions]
    return sorted(found)


def shard_partitions(partitions: list[list[Any]], num_shards: int) -> list[list[list[Any]]]:
    """TAO's _shard: empty partitions are dropped, so later folds are renumbered (a real TAO quirk)."""
    num_shards = max(num_shards, 1)
    result = []
    for partition in partitions:
        if not partition:
            continue
        size = len(partition) // num_shards
        result.append([partition[i * size:(i + 1) * size if i + 1 < num_shards else len(partition)]
                       for i in range(num_shards)])
    return result


def record_name(prefix: str, fold: int, folds: int, shard: int, shards: int) -> str:
    name = prefix
    if folds != 0:
        name = f"{name}-fold-{fold:03d}-of-{folds:03d}"
    if shards != 0:
        name = f"{name}-shard-{shard:05d}-of-{shards:05d}"
    return name


def train_epochs(ctx: Ctx, results_dir: str, num_epochs: int, interval: int, learning_rate: float,
                 checkpoint: Callable[[int], None]) -> None:
    """Resume from the newest model.epoch-E.ckzip, log one RUNNING line per epoch, checkpoint, maybe die."""
    done = [int(m.group(1)) for m in (re.match(r"model\.epoch-(\d+)\.ckzip$", n)
                                      for n in os.listdir(results_dir)) if m]
    start = max(done) if done else 0
    if done:
        resume_checkpoint(os.path.join(results_dir, f"model.epoch-{start}.ckzip"))
        ctx.say("INFO: resuming from checkpoint {}".format(
            os.path.join(results_dir, f"model.epoch-{start}.ckzip")))
    kill_after = int(os.environ.get("TAO_STANDIN_KILL_AFTER_EPOCHS", "0") or 0)
    for epoch in range(start, num_epochs):
        # TaskProgressMonitorHook logs at the first step of each epoch, epochs counted from 0.
        loss = round(1.0 / (epoch + 1), 6)
        ctx.status.write("RUNNING", data={
            "epoch": epoch, "max_epoch": num_epochs, "time_per_epoch": "0:00:01",
            "eta": str(datetime.timedelta(seconds=num_epochs - epoch))},
            graphical={"loss": loss, "learning_rate": str(learning_rate)})
        ctx.say(f"INFO: Epoch {epoch}/{num_epochs}: loss: {loss:0.5f} learning rate: {learning_rate}")
        finished = epoch + 1
        if finished % interval == 0 or finished == num_epochs:
            checkpoint(finished)
        if kill_after and finished - start >= kill_after and finished < num_epochs:
            raise Killed()


# ---------------------------------------------------------------------------------------------
# detectnet_v2 (TF1)
# ---------------------------------------------------------------------------------------------
def dn_spec(path: str, root: str, validate: bool) -> Any:
    """A detectnet_v2 spec as TAO reads it.

    protobuf's text_format.Merge refuses an unknown field or a value of the wrong type (ParseError: the task
    fails); the schema is the project's transcription of TAO 5.0's .proto files (steps/specs/detectnet_v2_schema.py).
    With `validate`, TF1's load_experiment_spec / load_inference_spec (spec_handler/spec_loader.py) then run
    SpecValidator with the tables of spec_handler/constants.py (transcribed in tf1_validator.py): a refusal
    is logged and sys.exit(1), which the task's __main__ turns into FAILURE "... was interrupted", exit 0.
    TAO Deploy's proto/utils.py load_proto only parses (validate=False).
    """
    spec = load_proto(path)
    from tao_aml.steps.detectnet_v2 import tf1_validator
    from tao_aml.steps.specs import detectnet_v2_schema

    problems = detectnet_v2_schema.validate(spec, root, path)
    if problems:
        raise TaskError("google.protobuf.text_format.ParseError: " + "; ".join(problems))
    problems = tf1_validator.validate(spec, root, path) if validate else []
    if problems:
        raise Interrupted("Spec file validation failed.\n" + "\n".join(problems))
    return spec


def dn_data_sources(spec: Any, use_training_set: bool = False) -> tuple[list[str], list[str]]:
    """Check dataset_config the way build_data_source_lists does; return training and validation frames."""
    ext = pget(spec, "dataset_config.image_extension")
    if not ext:
        raise TaskError("spec field dataset_config.image_extension is not set")

    def frames(records: list[str], images: str, field: str) -> list[str]:
        paths = []
        for record in records:
            for frame in read_placeholder(record, "detectnet_v2-tfrecord")["frames"]:
                image = os.path.join(images, frame["id"]) + "." + ext
                need(image, "image of frame {} in {} ({}.image_directory_path)".format(
                    frame["id"], record, field))
                paths.append(image)
        return paths

    def source(proto: Any, field: str) -> tuple[list[str], str]:
        pattern = str(pget(proto, "tfrecords_path") or "")
        if not os.path.isabs(pattern):
            raise TaskError(f"spec field {field}.tfrecords_path = {pattern!r} is not an absolute pattern")
        files = sorted(glob.glob(pattern))
        if not files:
            raise TaskError(f"No files match pattern {pattern} ({field}.tfrecords_path)")
        images = spec_path(pget(proto, "image_directory_path"), field + ".image_directory_path", "dir")
        return files, images

    sources = prepeated(spec, "dataset_config.data_sources")
    if not sources:
        raise TaskError("spec has no dataset_config.data_sources")
    fold = pget(spec, "dataset_config.validation_fold")
    train, val = [], []
    for i, proto in enumerate(sources):
        field = f"dataset_config.data_sources[{i}]"
        files, images = source(proto, field)
        if fold is not None:
            marker = f"fold-{int(fold):03d}"
            val += frames([f for f in files if marker in f], images, field)
            files = [f for f in files if marker not in f]
        train += frames(files, images, field)
    if pget(spec, "dataset_config.validation_data_source") is not None:
        files, images = source(pget(spec, "dataset_config.validation_data_source"),
                               "dataset_config.validation_data_source")
        val = frames(files, images, "dataset_config.validation_data_source")
    if not train:
        raise TaskError(f"no training frames: every TFRecord matched the validation fold {fold}")
    if fold is not None and not val:
        raise TaskError(f"no TFRecord of validation fold {fold} among dataset_config.data_sources")
    return train, (train if use_training_set else val)


def dn_target_classes(spec: Any) -> list[str]:
    return [str(pget(c, "name")) for c in prepeated(spec, "cost_function_config.target_classes")]


def dn_dataset_convert(ctx: Ctx) -> None:
    """scripts/dataset_convert.py, dataio/build_converter.py, kitti_converter_lib.py, dataset_converter_lib.py."""
    a = ctx.args
    ctx.start(a.results_dir, "Starting Object Detection Dataset Convert.", append=False)
    spec = dn_spec(a.dataset_export_spec, "DatasetExportConfig", validate=False)
    if pget(spec, "kitti_config") is None:
        raise TaskError("stand-in: only kitti_config dataset export specs are emulated")
    ctx.status.write("STARTED", "Instantiating a kitti converter")
    field = "kitti_config.root_directory_path"
    root = spec_path(pget(spec, field), field, "dir")
    names = {}
    for field in ("image_dir_name", "label_dir_name"):
        names[field] = str(pget(spec, "kitti_config." + field) or "")
        if not names[field]:
            raise TaskError(f"spec field kitti_config.{field} is not set")
        need(os.path.join(root, names[field]), "kitti_config.root_directory_path + " + field, "dir")
    image_dir = os.path.join(root, names["image_dir_name"])
    label_dir = os.path.join(root, names["label_dir_name"])
    extension = str(pget(spec, "kitti_config.image_extension") or ".png")
    mode = str(pget(spec, "kitti_config.partition_mode") or "")
    folds = int(pget(spec, "kitti_config.num_partitions") or 0)
    shards = int(pget(spec, "kitti_config.num_shards") or 0)
    ctx.status.write(message="Generating partitions")
    if mode == "random":
        if folds != 2:
            raise TaskError(f"Invalid number of partitions ({folds}) for random split mode.")
        val_split = float(pget(spec, "kitti_config.val_split") or 0) / 100.0
        if not 0 <= val_split < 1:
            raise TaskError("Validation split must satisfy the criteria, 0 <= val_split < 100. ")
        # _partition: names ending in image_extension (case-sensitive), sorted, first val_split to fold 0.
        ids = [os.path.splitext(n)[0] for n in sorted(os.listdir(image_dir)) if n.endswith(extension)]
        num_val = int(val_split * len(ids))
        partitions = [ids[:num_val], ids[num_val:]]
    elif mode == "sequence":
        sequence_file = pget(spec, "kitti_config.kitti_sequence_to_frames_file")
        if not sequence_file:
            raise TaskError("Kitti sequence to frames file is required for sequence wise paritioning.")
        with open(need(os.path.join(root, str(sequence_file)), "kitti_sequence_to_frames_file")) as handle:
            sequences = json.load(handle)
        if folds > 1:
            partitions = [[] for _ in range(folds)]
            for i, (_, ids) in enumerate(sorted(sequences.items(), key=lambda kv: (-len(kv[1]), kv[0]))):
                partitions[i % folds].extend(ids)
            partitions = partitions[::-1]
        else:
            partitions = [[frame for ids in sequences.values() for frame in ids]]
    else:
        raise TaskError("Unknown partition mode. Please stick to either random or sequence")
    ctx.status.write(message=f"Total number of images: {sum(map(len, partitions))}",
                     kpi={"num_images": sum(map(len, partitions))})
    ctx.maybe_fail()
    counts: dict[str, int] = {}
    skipped: dict[str, list[int]] = {}
    for fold, partition in enumerate(shard_partitions(partitions, shards)):
        for shard, ids in enumerate(partition):
            ctx.status.write(message=f"Writing partition {fold}, shard {shard}")
            frames = []
            for frame_id in ids:
                width, height = dn_image_size(os.path.join(image_dir, frame_id + extension))
                classes = dn_kitti_objects(os.path.join(label_dir, frame_id + ".txt"), skipped)
                for name in classes:
                    counts[name] = counts.get(name, 0) + 1
                # _example_proto: frame/id is image_dir_name joined with the frame id.
                frames.append({"id": os.path.join(names["image_dir_name"], frame_id), "width": width,
                               "height": height, "classes": classes})
            placeholder(record_name(a.output_filename, fold, folds, shard, shards),
                        {"kind": "detectnet_v2-tfrecord", "frames": frames})
    ctx.say(f"Wrote the following numbers of objects: {counts}")
    ctx.status.write(message="Cumulative object statistics", categorical={"num_objects": counts})
    ctx.status.write("SUCCESS", "TFRecords generation complete.")
    if skipped:
        # _save_log_warnings: the objects _add_targets skipped, {"<label file>_<index>": [x1, y1, x2, y2]}.
        with open(f"{a.output_filename}_warning.json", "w") as handle:
            json.dump(skipped, handle, indent=2)
    ctx.status.write("SUCCESS", "Dataset convert finished successfully.")


def dn_image_size(path: str) -> tuple[int, int]:
    """_get_image_size: PIL's Image.open(...).size (the header only; a file PIL cannot identify fails)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(need(path, "image")) as image:
            return image.size
    except UnidentifiedImageError as err:
        raise TaskError(f"PIL.UnidentifiedImageError: {err}") from None


def dn_kitti_objects(label_file: str, skipped: dict[str, list[int]]) -> list[str]:
    """The classes of the objects kitti_converter_lib._add_targets keeps from one label file.

    Every field after the class goes through float() (so DontCare's -1 -1 -10 ... lines pass), then each
    line must have 15 fields (an assert); classes are lower-cased; a box whose corners, truncated with int(),
    fail x1 < x2 and y1 < y2 is skipped with a debug log and noted in `skipped` (TAO's log_warning, keyed by
    labels.index(label): the first identical line's index).
    """
    with open(need(label_file, "KITTI label file")) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    labels = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        try:
            labels.append([fields[0]] + [float(x) for x in fields[1:]])
        except ValueError as err:
            raise TaskError(f"ValueError: {err} ({label_file} line {number})") from None
    classes = []
    for number, label in enumerate(labels, 1):
        if len(label) != 15:
            raise TaskError(f"AssertionError: Ground truth kitti labels should have only 15 fields. "
                            f"({label_file} line {number})")
        try:
            x1, y1, x2, y2 = (int(v) for v in label[4:8])
            if x1 < x2 and y1 < y2:
                int(label[2])  # occlusion, of the objects kept only
        except (ValueError, OverflowError) as err:  # int() of nan or inf
            raise TaskError(f"{type(err).__name__}: {err} ({label_file} line {number})") from None
        if not (x1 < x2 and y1 < y2):
            skipped[f"{label_file}_{labels.index(label)}"] = [x1, y1, x2, y2]
            continue
        classes.append(label[0].lower())
    return classes


def dn_model(path: str, key: str, flag: str = "-m") -> None:
    if not path.endswith((".tlt", ".hdf5")):
        raise TaskError(f"Invalid model file extension. {path} ({flag})")
    need_key(path, key)


def dn_train(ctx: Ctx) -> None:
    a = ctx.args
    if a.experiment_spec_file is None or a.results_dir is None:
        raise UsageError("stand-in: pass -e and -r; TAO would fall back to a built-in KITTI spec "
                         "and ~/experiments")
    results_dir = os.path.realpath(a.results_dir)
    ctx.start(results_dir, "Starting DetectNet_v2 Training job")
    # run_experiment: get_weights_dir (training/utilities.py) makes <results_dir>/weights before anything else.
    os.makedirs(os.path.join(results_dir, "weights"), exist_ok=True)
    # run_experiment: load_experiment_spec(config_path, merge_from_default=False, validation_schema="train_val")
    spec = dn_spec(a.experiment_spec_file, "Experiment", validate=True)
    num_epochs = int(pget(spec, "training_config.num_epochs"))
    dn_data_sources(spec)
    pretrained = pget(spec, "model_config.pretrained_model_file")
    facts = model_facts(pretrained, "detectnet_v2")  # retrain: the pruned model's size
    if pretrained:
        dn_model(spec_path(pretrained, "model_config.pretrained_model_file", "file"), a.key,
                 "model_config.pretrained_model_file")
    elif str(pget(spec, "model_config.load_graph")).lower() == "true":
        raise TaskError("model_config.load_graph is true but no pretrained_model_file is set")
    ctx.maybe_fail()
    with open(os.path.join(results_dir, "experiment_spec.txt"), "w") as handle, \
            open(a.experiment_spec_file) as source:
        handle.write(source.read())
    ctx.status.write(message="Running training loop.")
    interval = int(pget(spec, "training_config.checkpoint_interval") or 10)
    learning_rate = float(pget(
        spec, "training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate") or 0.0)

    def checkpoint(epoch: int) -> None:
        # Only the ckzip per epoch (tfhooks/checkpoint_saver_hook.py); the model is weights/<name>.hdf5 at the
        # end (scripts/train.py), no per-epoch .hdf5.
        write_ckzip(results_dir, epoch, "detectnet_v2-checkpoint")

    train_epochs(ctx, results_dir, num_epochs, interval, learning_rate, checkpoint)
    ctx.status.write(message="Training loop completed.")
    ctx.status.write(message="Saving trained model.")
    weights = os.path.join(results_dir, "weights", a.model_name + ".hdf5")
    placeholder(weights, {"kind": "detectnet_v2-model", "epochs": num_epochs, **facts,
                          # training_config.enable_qat: TAO converts the model to QAT (QDQ nodes, tensor scales).
                          "qat": str(pget(spec, "training_config.enable_qat")).lower() == "true",
                          "classes": dn_target_classes(spec), "input": [
                              int(pget(spec, "augmentation_config.preprocessing.output_image_channel") or 3),
                              int(pget(spec, "augmentation_config.preprocessing.output_image_height")),
                              int(pget(spec, "augmentation_config.preprocessing.output_image_width"))]})
    # scripts/train.py: s_logger.kpi = {"size": ..., "param_count": gridbox_model.num_params} on "Model saved.",
    # in millions (model/detectnet_model.py num_params -> cv/common/utils.py get_num_params: count_params()/1e6).
    ctx.status.write(message="Model saved.", kpi={"size": os.path.getsize(weights) / 1e6,
                                                  "param_count": facts["param_count"] / 1e6})
    ctx.status.write(message="Training op complete.")
    ctx.status.write("SUCCESS", "DetectNet_v2 training job complete.")


def dn_evaluate(ctx: Ctx) -> None:
    a = ctx.args
    ctx.start(a.results_dir, "Starting DetectNet_v2 Evaluation", append=False)
    spec = dn_spec(a.experiment_spec, "Experiment", validate=True)  # scripts/evaluate.py: "train_val"
    if a.framework == "tlt":
        dn_model(a.model_path, a.key)
    if a.image_dir is None:
        _, frames = dn_data_sources(spec, a.use_training_set)
        if not frames:
            raise TaskError("no validation data: set dataset_config.validation_data_source "
                            "or validation_fold")
    elif a.label_dir is None:
        raise TaskError("-i/--image_dir needs -l/--label_dir")
    ctx.maybe_fail()
    classes = dn_target_classes(spec)
    value = round(50.0 * accuracy_factor(model_facts(a.model_path, "detectnet_v2")), 4)  # PRUNING
    ap = {name: value for name in classes}
    ctx.say(f"Validation cost: 0.000100\nMean average_precision (in %): {value:0.4f}")
    for name in sorted(ap):
        ctx.say(f"{name} {ap[name]:0.4f}")
    ctx.status.write(message="Evaluation metrics generated.",
                     categorical={"average_precision": ap},
                     kpi={"validation cost": 0.0001, "mean average precision": value})
    ctx.status.write("SUCCESS", "Evaluation finished successfully.")


def prune(ctx: Ctx, results_dir: str | None, started: str | None) -> tuple[str, int, int]:
    """The steps detectnet_v2 (cv/common/magnet_prune.py run_pruning) and bpnet (cv/bpnet/scripts/prune.py)
    share: option asserts, model_io (cv/common/utils.py, utilities/tlt_utils.py), output with .hdf5 appended.
    Returns the output and the parameter counts before and after (PRUNING: the higher -pth, the fewer)."""
    a = ctx.args
    ctx.start(results_dir, started, append=True)
    if a.equalization_criterion not in ("arithmetic_mean", "geometric_mean", "union", "intersection"):
        raise TaskError("Equalization criterion are [arithmetic_mean, geometric_mean, union, intersection].")
    if a.normalizer not in ("L2", "max"):
        raise TaskError("normalizer options are [L2, max].")
    dn_model(a.model, a.key)
    ctx.maybe_fail()
    fail_from = os.environ.get("TAO_STANDIN_FAIL_PRUNE_FROM", "")
    if fail_from and a.pruning_threshold >= float(fail_from):
        raise TaskError(f"Simulated failure of {ctx.family} prune at -pth {a.pruning_threshold} "
                        f"(TAO_STANDIN_FAIL_PRUNE_FROM={fail_from})")
    facts = model_facts(a.model, ctx.family)
    kept = facts["kept_share"] * kept_share(ctx.family, a.pruning_threshold)
    before = int(facts["param_count"])
    after = max(1, round(before * kept_share(ctx.family, a.pruning_threshold)))
    output = a.output_file if a.output_file.endswith(".hdf5") else a.output_file + ".hdf5"
    placeholder(output, {"kind": f"{ctx.family}-model", "pruned_from": os.path.abspath(a.model),
                         "threshold": a.pruning_threshold, "param_count": after, "kept_share": kept})
    return output, before, after


def prune_log(ctx: Ctx, name: str, line: int, message: str) -> None:
    """A line of the prune scripts' logger: basicConfig(format='%(asctime)s [TAO Toolkit] [%(levelname)s]
    %(name)s %(lineno)d: %(message)s') in magnet_prune.py run_pruning and cv/bpnet/scripts/prune.py; the
    entrypoint runs `python <script>` (common/entrypoint/entrypoint.py), so bpnet's logger is __main__."""
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    ctx.say(f"{now} [TAO Toolkit] [INFO] {name} {line}: {message}")


def dn_prune(ctx: Ctx) -> None:
    """magnet_prune.py run_pruning: no STARTED line; kpi on the ratio line; SUCCESS from scripts/prune.py."""
    a = ctx.args
    _, before, after = prune(ctx, a.results_dir, None)
    # logger.info of the ratio (count_params() after / before), then the kpi line with the same message.
    ratio = after / before
    prune_log(ctx, "nvidia_tao_tf1.cv.common.magnet_prune", 224,
              f"Pruning ratio (pruned model / original model): {ratio}")
    # s_logger.kpi = {..., "size": get_model_file_size(args.output_file)}: the -o value as given, so an -o
    # without .hdf5 fails here, after the .hdf5 was written ("Model file wasn't found at ..."); "param_count":
    # get_num_params(pruned_model), in millions (cv/common/utils.py: count_params()/1e6).
    if not os.path.exists(a.output_file):
        raise TaskError(f"FileNotFoundError: Model file wasn't found at {a.output_file}")
    ctx.status.write(message=f"Pruning ratio (pruned model / original model): {ratio}",
                     kpi={"pruning_ratio": ratio, "size": os.path.getsize(a.output_file) / 1e6,
                          "param_count": after / 1e6})
    ctx.status.write("SUCCESS", "Pruning finished successfully.")


def dn_inference(ctx: Ctx) -> None:
    """scripts/inference.py inference_wrapper_batch, postprocessor/bbox_handler.py BboxHandler."""
    a = ctx.args
    ctx.start(a.results_dir, "Starting DetectNet_v2 Inference", append=False)
    spec = dn_spec(a.experiment_spec, "Inference", validate=True)  # load_experiment_spec(..., "inference")
    classes = [str(c) for c in prepeated(spec, "inferencer_config.target_classes")]
    handlers = {str(pget(e, "key")): e for e in prepeated(spec, "bbox_handler_config.classwise_bbox_handler_config")}
    if pget(spec, "inferencer_config.tensorrt_config") is not None:
        raise TaskError("stand-in: inferencer_config.tensorrt_config (TRTInferencer) is not emulated")
    # inference_wrapper_batch: -m replaces tlt_config.model; build_inferencer loads it with the key.
    model = a.model_path or pget(spec, "inferencer_config.tlt_config.model")
    field = "-m" if a.model_path else "inferencer_config.tlt_config.model"
    if not a.model_path:
        spec_path(model, field, "file")
    dn_model(str(model), a.key, field)
    if os.path.isfile(a.image_dir):
        names, root = [os.path.basename(a.image_dir)], os.path.dirname(a.image_dir)
    else:
        root = a.image_dir
        names = sorted(n for n in os.listdir(root) if os.path.splitext(n)[1].lower() in DN_IMAGE_EXT)
    ctx.maybe_fail()
    # cluster_detections: a class without its own clustering parameters falls back to "default" or fails.
    deploy_cluster_params(classes, list(handlers), "bbox_handler_config.classwise_bbox_handler_config")
    overlay = str(pget(spec, "bbox_handler_config.disable_overlay")).lower() != "true"
    kitti = str(pget(spec, "bbox_handler_config.kitti_dump")).lower() == "true"
    # render_single_image_output: a class with its own handler is written as its output_map.
    label = classes[0]
    if label in handlers and pget(handlers[label], "value.output_map"):
        label = str(pget(handlers[label], "value.output_map"))
    from PIL import Image

    for name in names:
        image = Image.open(os.path.join(root, name)).convert("RGB")  # inference_wrapper_batch
        if overlay:
            os.makedirs(os.path.join(a.results_dir, "images_annotated"), exist_ok=True)
            image.save(os.path.join(a.results_dir, "images_annotated", name))
        if kitti:  # one label file per image, empty when nothing was detected
            os.makedirs(os.path.join(a.results_dir, "labels"), exist_ok=True)
            with open(os.path.join(a.results_dir, "labels", os.path.splitext(name)[0] + ".txt"), "w") as f:
                f.write(dn_kitti_line(label))
    ctx.status.write("SUCCESS", "Inference finished successfully.")


def dn_kitti_line(name: str) -> str:
    """render_single_image_output (TF1) and DetectNetInferencer.draw_bbox (TAO Deploy): 16 fields, the
    box with 3 decimals, the confidence last."""
    return name + " 0.00 0 0.00 10.000 10.000 50.000 50.000 0.00 0.00 0.00 0.00 0.00 0.00 0.00 0.900\n"


def export_output(ctx: Ctx, extension: str) -> str:
    a = ctx.args
    output = a.output_file or f"{os.path.splitext(a.model)[0]}.{extension}"
    if ctx.family == "detectnet_v2" and extension not in output:
        output = f"{output}.{extension}"
    if ctx.family == "bpnet" and not output.endswith(extension):
        output = f"{output}.{extension}"
    if os.path.exists(output):
        raise TaskError(f"Default output file {output} already exists")
    return output


# TensorRT 8.5.3 (the TAO 5.0 containers): the header of an EntropyCalibrator2 cache, base_exporter.py
# _calibration_cache_from_dict and TAO Deploy engine/builder.py calibration_cache_from_dict write it so.
CAL_CACHE_HEADER = "TRT-8503-EntropyCalibration2\n"
# What the stand-ins' QAT models hold as tensor scales (keras_exporter.py load_model -> tensor_scale_dict).
QAT_SCALES = {"input_1": 1.0, "output_cov/Sigmoid": 0.99, "output_bbox/BiasAdd": 12.5}


def calibration_cache(path: str, scales: dict[str, float] | None) -> None:
    """A calibration cache: from QAT scales (refusing an existing file, as both writers assert), or what
    TensorRT's calibrator writes after calibrating (one line per tensor, the scale in hex)."""
    if scales is not None and os.path.exists(path):
        raise TaskError("AssertionError: A pre-existing cache file exists. Please delete this file and re-run export.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    lines = [f"{tensor}: {struct.unpack('i', struct.pack('f', scale / 127.0))[0]:x}"
             for tensor, scale in (scales or {"input_1": 1.0}).items()]
    with open(path, "w") as handle:
        handle.write(CAL_CACHE_HEADER + "".join(line + "\n" for line in lines))


def dn_int8_calibrator(ctx: Ctx, spec: Any | None, input_dims: tuple[int, int, int]) -> None:
    """DetectNetExporter.get_calibrator (detectnet_v2/export/exporter.py): with -e, DetectNetCalibrator reads
    the spec's training data; without, a tensorfile: --cal_data_file, generated when absent from
    --cal_image_dir (base_exporter.py generate_tensor_file: batches x batch_size images named *.jpg, *.jpeg,
    *.png, case-sensitive) or, when that folder does not exist, from random tensors."""
    a = ctx.args
    if spec is not None:
        dn_data_sources(spec)
        return
    if os.path.exists(a.cal_data_file):
        return
    if os.path.exists(a.cal_image_dir):
        wanted = a.batches * a.batch_size
        found = [n for n in os.listdir(a.cal_image_dir) if n.split(".")[-1] in ("jpg", "jpeg", "png")]
        if len(found) < wanted:
            raise TaskError(f"ValueError: Not enough number of images provided: {len(found)} < {wanted}")
    else:
        ctx.say("Generating a tensorfile with random tensor images.")
    if not a.cal_data_file:
        raise TaskError("FileNotFoundError: [Errno 2] No such file or directory: '' (--cal_data_file)")
    placeholder(a.cal_data_file, {"kind": "tensorfile", "shape": [a.batch_size, *input_dims],
                                  "batches": a.batches})


def dn_export(ctx: Ctx) -> None:
    """detectnet_v2/scripts/export.py -> cv/common/export/app.py run_export -> KerasExporter.export
    (cv/common/export/keras_exporter.py) with DetectNetExporter (detectnet_v2/export/exporter.py)."""
    a = ctx.args
    ctx.start(a.results_dir, None)  # run_export writes no STARTED line
    dn_model(a.model, a.key)
    output = export_output(ctx, "onnx")
    ctx.status.write(message="Building exporter object.")
    # DetectNetExporter.__init__: load_experiment_spec(..., validation_schema="train_val") when -e is given.
    spec = dn_spec(a.experiment_spec, "Experiment", validate=True) if a.experiment_spec else None
    ctx.maybe_fail()
    ctx.status.write(message="Exporting the model.")
    ctx.status.write(message="Using input nodes: ['input_1']")
    ctx.status.write(message="Using output nodes: ['output_cov/Sigmoid', 'output_bbox/BiasAdd']")
    channels, height, width, classes = dn_model_shape(a.model)
    if channels != 3:
        raise TaskError(f"stand-in: only 3-channel models are emulated ({a.model} has {channels})")
    from tao_aml.simulate import onnx_models  # needs onnx: the rehearse extra

    # The ONNX graph is the same whatever --data_type: the precision only matters to the engine and cache.
    box = onnx_models.Box(width * 0.25, height * 0.25, width * 0.75, height * 0.75)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    onnx_models.save(onnx_models.detectnet_v2(width, height, [box], classes), output)
    scales = QAT_SCALES if dn_model_qat(a.model) else None
    # --cal_json_file: written only when the model has QAT tensor scales, whatever --data_type.
    if a.cal_json_file and scales:
        os.makedirs(os.path.dirname(os.path.abspath(a.cal_json_file)), exist_ok=True)
        with open(a.cal_json_file, "w") as handle:
            json.dump({"tensor_scales": scales}, handle, indent=4)
    cal_cache = os.path.realpath(a.cal_cache_file)
    qat_int8 = a.data_type == "int8" and scales is not None and not a.force_ptq
    if a.data_type == "int8":  # with or without --engine_file
        if qat_int8:
            calibration_cache(cal_cache, scales)
        else:
            dn_int8_calibrator(ctx, spec, (channels, height, width))
            ctx.status.write(message="Calibration takes time especially if number of batches is large.")
    if a.gen_ds_config:
        if spec is None:
            raise TaskError("AttributeError: Experiment spec wasn't loaded. To get class labels please provide "
                            "the experiment spec file using the -e option.")
        labels = dn_target_classes(spec)
        folder = os.path.dirname(output)
        if labels:
            with open(os.path.join(folder, "labels.txt"), "w") as handle:
                handle.write("".join(name + "\n" for name in labels))
        # BaseDSConfig (cv/common/types/base_ds_config.py) __str__: key=value lines, no blob names for ONNX.
        config = {"net-scale-factor": 1.0 / 255.0, "offsets": "0.0;0.0;0.0",
                  "infer-dims": f"{channels};{height};{width}", "tlt-model-key": a.key, "network-type": 0}
        if labels:
            config["num-detected-classes"] = len(labels)
        config.update({"model-color-format": 0, "maintain-aspect-ratio": 0, "output-tensor-meta": 0})
        with open(os.path.join(folder, "nvinfer_config.txt"), "w") as handle:
            handle.write("".join(f"{key}={value}\n" for key, value in config.items()))
    size = os.path.getsize(output)
    if a.engine_file is not None:
        if a.data_type == "int8" and not qat_int8 and not os.path.exists(cal_cache):
            calibration_cache(cal_cache, None)  # TensorRT's calibrator writes it while building
        placeholder(a.engine_file, {"kind": "engine", "data_type": a.data_type,
                                    "max_batch_size": max(a.batch_size, a.max_batch_size)})
        size = os.path.getsize(a.engine_file)
    ctx.status.write("SUCCESS", "Export complete.", data={"param_count": 1, "size": size / 1e6})
    ctx.status.write("SUCCESS", "Export finished successfully.")


def dn_model_qat(path: str) -> bool:
    """Whether the model train wrote was trained with training_config.enable_qat (QAT scales in it)."""
    try:
        with open(path) as handle:
            return bool(json.load(handle).get("qat"))
    except (OSError, ValueError):
        return False


def dn_model_shape(path: str) -> tuple[int, int, int, int]:
    """(channels, height, width, classes) that train recorded in the model (through prune, to its source)."""
    try:
        with open(path) as handle:
            content = json.load(handle)
    except (OSError, ValueError):
        raise TaskError(f"stand-in: {path} is not a model written by the stand-ins' train") from None
    if "input" in content:
        channels, height, width = content["input"]
        return channels, height, width, len(content["classes"])
    if "pruned_from" in content:
        return dn_model_shape(content["pruned_from"])
    raise TaskError(f"stand-in: {path} records no input shape")


def dn_calibration_tensorfile(ctx: Ctx) -> None:
    """detectnet_v2/scripts/calibration_tensorfile.py: the spec's training (or validation) images, at most
    --max_batches batches of training_config.batch_size_per_gpu (-1: all), into a new TensorFile."""
    a = ctx.args
    if not a.experiment_spec_file or not a.output_path:
        raise UsageError("stand-in: pass -e and -o")
    ctx.start(None, None)
    spec = dn_spec(a.experiment_spec_file, "Experiment", validate=True)
    train, val = dn_data_sources(spec)
    frames = val if a.use_validation_set else train
    available = len(frames) // int(pget(spec, "training_config.batch_size_per_gpu"))
    batches = available if a.max_batches == -1 else a.max_batches
    if batches > available:
        raise TaskError(f"ValueError: The dataset contains {available} minibatches, while the requested amount "
                        f"is {batches}.")
    if os.path.exists(a.output_path):
        raise TaskError("A previously generated tensorfile already exists in the output path.")
    ctx.maybe_fail()
    placeholder(a.output_path, {"kind": "tensorfile", "batches": batches})


# ---------------------------------------------------------------------------------------------
# detectnet_v2 (TAO Deploy)
# ---------------------------------------------------------------------------------------------
def deploy_start(ctx: Ctx, mode: str) -> None:
    ctx.start(ctx.args.results_dir, f"Starting detectnet_v2 {mode}.")


def deploy_onnx(path: str) -> dict[str, Any]:
    """DetectNetEngineBuilder.create_network (cv/detectnet_v2/engine_builder.py): TensorRT's ONNX parser reads
    the file ("Failed to load ONNX file" and sys.exit(1) when it cannot); the engine keeps its tensors."""
    import onnx  # the rehearse extra, like the exports' real ONNX models

    try:
        model = onnx.load(path)
    except Exception:  # noqa: BLE001 - any unreadable file is a parse failure to TensorRT
        raise Exited(f"Failed to load ONNX file: {os.path.realpath(path)}") from None

    def dims(info: Any) -> list[Any]:
        return [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]

    return {"inputs": {i.name: dims(i) for i in model.graph.input},
            "outputs": {o.name: dims(o) for o in model.graph.output}}


def deploy_calibration(ctx: Ctx, spec: Any, network: dict[str, Any]) -> None:
    """DetectNetEngineBuilder.set_calibrator for a non-QAT INT8 engine (TAO Deploy 5.0)."""
    a = ctx.args
    if a.cal_cache_file is None:
        # EngineCalibrator(None) then os.path.exists(None).
        raise TaskError("TypeError: stat: path should be string, bytes, os.PathLike or integer, not NoneType "
                        "(--cal_cache_file not given)")
    if a.cal_data_file:
        # TensorfileCalibrator; generate_tensor_file lists images with image.split('.')[-1] in
        # VALID_IMAGE_EXTENSIONS, whose entries carry the dot, so no image ever matches.
        if not os.path.exists(a.cal_data_file) and a.cal_image_dir and os.path.exists(a.cal_image_dir):
            raise TaskError(f"ValueError: Not enough number of images provided: 0 < {a.batches * a.batch_size}")
        return
    if os.path.exists(a.cal_cache_file):
        return  # the cache is read, no image is needed
    # gen_trt_engine.py: --cal_image_dir, else every data_sources[].image_directory_path of the spec.
    inputs = [a.cal_image_dir] if a.cal_image_dir else [
        str(pget(s, "image_directory_path")) for s in prepeated(spec, "dataset_config.data_sources")]
    # utils/image_batcher.py ImageBatcher: **/* with a suffix in VALID_IMAGE_EXTENSIONS (cv/common/constants.py).
    images = [p for d in inputs if os.path.isdir(d) for p in images_in(d, DEPLOY_IMAGE_EXT, recursive=True)]
    if not images:
        raise Exited("No valid {} images found in {}".format("/".join(DEPLOY_IMAGE_EXT),
                                                            inputs[0] if a.cal_image_dir else inputs))
    if min(len(images), a.batches * a.batch_size) < a.batch_size:  # exact_batches
        raise TaskError("ValueError: Not enough images to create batches")


def deploy_gen_trt_engine(ctx: Ctx) -> None:
    """cv/detectnet_v2/scripts/gen_trt_engine.py, engine/builder.py create_engine (TAO Deploy 5.0)."""
    a = ctx.args
    deploy_start(ctx, "gen_trt_engine")
    # utils/decoding.py decode_model: the extension picks the parser; .etlt needs the key to decrypt.
    if not a.model_path.endswith(("etlt", "onnx", "uff")):
        raise TaskError("TAO Deploy gen_trt_engine action accepts either .onnx, .uff or .etlt file extension")
    need_key(a.model_path, a.key)
    if a.engine_file is None and a.data_type != "int8":
        ctx.maybe_fail()  # nothing to build: the spec is not even read
        ctx.status.write("SUCCESS", "Gen_trt_engine finished successfully.")
        return
    spec = dn_spec(a.experiment_spec, "Experiment", validate=False)  # proto/utils.py load_proto: parse only
    network = deploy_onnx(a.model_path) if a.model_path.endswith("onnx") else {}
    # is_qat = experiment_spec.training_config.enable_qat; EngineBuilder: force_ptq switches it off.
    is_qat = str(pget(spec, "training_config.enable_qat")).lower() == "true" and not a.force_ptq
    if is_qat and a.data_type != "int8":
        raise TaskError(f"ValueError: QAT model only supports data_type int8 but {a.data_type} was provided.")
    scales = None
    if is_qat:  # calibration_cache_from_dict
        if a.cal_json_file is None or not os.path.exists(a.cal_json_file):
            raise TaskError(f"FileNotFoundError: Calibration JSON file is required for QAT but {a.cal_json_file} "
                            "does not exist.")
        with open(a.cal_json_file) as handle:
            scales = json.load(handle)["tensor_scales"]
    elif a.data_type == "int8":
        deploy_calibration(ctx, spec, network)
    ctx.maybe_fail()
    if a.data_type == "int8" and a.cal_cache_file is not None and (is_qat or not os.path.exists(a.cal_cache_file)):
        calibration_cache(a.cal_cache_file, scales)
    if a.engine_file is not None:  # without it the engine goes to a temporary file
        placeholder(a.engine_file, {"kind": "engine", "data_type": a.data_type, "qat": is_qat,
                                    "max_batch_size": a.max_batch_size, **network})
    ctx.status.write("SUCCESS", "Gen_trt_engine finished successfully.")


def deploy_engine(path: str) -> dict[str, Any]:
    """The engine placeholder gen_trt_engine wrote; TensorRT cannot deserialize anything else."""
    with open(path) as handle:
        try:
            content = json.load(handle)
        except ValueError:
            content = None
    if not isinstance(content, dict) or content.get("kind") != "engine":
        raise TaskError(f"{path} is not a TensorRT engine (build one with gen_trt_engine)")
    return content


def deploy_batch(engine: dict[str, Any], batch_size: int) -> None:
    """DetectNetInferencer.infer: a batch larger than the engine's profile is refused."""
    if batch_size > engine["max_batch_size"]:
        raise TaskError(f"image_paths list bigger ({batch_size}) than engine max batch size "
                        f"({engine['max_batch_size']})")


def deploy_cluster_params(classes: list[str], configured: list[str], field: str) -> None:
    """BboxHandler.cluster_detections: a class without clustering parameters needs a 'default' entry."""
    missing = [c for c in classes if c not in configured and "default" not in configured]
    if missing:
        raise TaskError(f"If the class-wise cluster params for an object isn't there then please mention a "
                        f"default class. ({field} has no {', '.join(missing)})")


def deploy_images(image_dir: str, label_dir: str | None) -> list[str]:
    """dataloader/kitti.py KITTILoader._add_source: os.listdir order, images by lower-cased extension, each
    with <name>.txt in label_dir unless inference."""
    labels = set(os.listdir(label_dir)) if label_dir else None
    return [os.path.join(image_dir, n) for n in os.listdir(image_dir)
            if n.lower().endswith(tuple(e.lower() for e in DEPLOY_IMAGE_EXT))
            and (labels is None or os.path.splitext(n)[0] + ".txt" in labels)]


def deploy_batches(images: list[str], batch: int) -> list[str]:
    """KITTILoader: n_batches = len // batch_size (asserted > 0); a last partial batch is never read."""
    if len(images) // batch == 0:
        raise TaskError("AssertionError: empty image dir or batch size too large!")
    return images[: len(images) // batch * batch]


def deploy_gt_label(path: str, class_mapping: dict[str, str]) -> None:
    """KITTILoader._load_gt_label: lines of under 9 fields and unmapped (lower-cased) classes are skipped;
    the rest need an int() occlusion and float() corners."""
    with open(path, encoding="utf-8") as handle:
        entries = handle.read().strip().split("\n")
    for number, entry in enumerate(entries, 1):
        items = entry.strip().split()
        if len(items) < 9 or items[0].lower() not in class_mapping:
            continue
        try:
            int(items[2])
            [float(x) for x in items[4:8]]
        except ValueError as err:
            raise TaskError(f"ValueError: {err} ({path} line {number})") from None


def deploy_inference(ctx: Ctx) -> None:
    """cv/detectnet_v2/scripts/inference.py (TAO Deploy 5.0)."""
    a = ctx.args
    deploy_start(ctx, "inference")
    spec = dn_spec(a.experiment_spec, "Inference", validate=False)
    classes = [str(c) for c in prepeated(spec, "inferencer_config.target_classes")]
    if not classes:
        raise TaskError("inferencer_config.target_classes is empty")
    configured = [str(pget(e, "key")) for e in prepeated(spec, "bbox_handler_config.classwise_bbox_handler_config")]
    engine = deploy_engine(a.model_path)
    batch = a.batch_size or int(pget(spec, "inferencer_config.batch_size") or 0)
    deploy_batch(engine, batch)
    if a.image_dir is None:
        raise TaskError("stand-in: pass -i/--image_dir (TAO's KITTI loader would list the working directory)")
    images = deploy_batches(deploy_images(a.image_dir, None), max(batch, 1))
    # BboxHandler.cluster_detections, on the first batch.
    deploy_cluster_params(classes, configured, "bbox_handler_config.classwise_bbox_handler_config")
    ctx.maybe_fail()
    from PIL import Image

    os.makedirs(os.path.join(a.results_dir, "images_annotated"), exist_ok=True)
    os.makedirs(os.path.join(a.results_dir, "labels"), exist_ok=True)
    for image in images:
        name = os.path.basename(image)
        Image.open(image).save(os.path.join(a.results_dir, "images_annotated", name))  # drawn on as read
        with open(os.path.join(a.results_dir, "labels", os.path.splitext(name)[0] + ".txt"), "w") as f:
            f.write(dn_kitti_line(classes[0]))
    ctx.status.write("SUCCESS", "Inference finished successfully.")


# AP a stand-in engine scores, by precision: INT8 loses a point against the .hdf5 model's 50 %.
DEPLOY_AP = {"fp32": 0.5, "fp16": 0.5, "int8": 0.49}


def deploy_evaluate(ctx: Ctx) -> None:
    """cv/detectnet_v2/scripts/evaluate.py (TAO Deploy 5.0): results.json {"AP_<class>": fraction}."""
    a = ctx.args
    deploy_start(ctx, "evaluation")
    spec = dn_spec(a.experiment_spec, "Experiment", validate=False)
    classes = dn_target_classes(spec)
    if not classes:
        raise TaskError("cost_function_config.target_classes is empty: TAO Deploy reads the classes there")
    configured = [str(pget(e, "key")) for e in prepeated(spec, "postprocessing_config.target_class_config")]
    mapping = {str(pget(e, "key")).lower(): str(pget(e, "value")) for e in
               prepeated(spec, "dataset_config.target_class_mapping")}
    # dl.class_mapping = {key.lower(): dl.classes[str(val.lower())]}, dl.classes keyed by target class names.
    unknown = sorted({v.lower() for v in mapping.values()} - set(classes))
    if unknown:
        raise TaskError(f"KeyError: {unknown[0]!r} (a target_class_mapping value that is not a "
                        "cost_function_config.target_classes name)")
    engine = deploy_engine(a.model_path)
    batch = a.batch_size or int(pget(spec, "training_config.batch_size_per_gpu") or 0)
    deploy_batch(engine, batch)
    if a.image_dir is None or a.label_dir is None:
        raise TaskError("-i/--image_dir and -l/--label_dir are needed: the KITTI loader reads both")
    images = deploy_batches(deploy_images(a.image_dir, a.label_dir), max(batch, 1))
    deploy_cluster_params(classes, configured, "postprocessing_config.target_class_config")
    from PIL import Image

    for image in images:
        Image.open(image).convert("RGB")  # KITTILoader._load_gt_image
        deploy_gt_label(os.path.join(a.label_dir, os.path.splitext(os.path.basename(image))[0] + ".txt"), mapping)
    ctx.maybe_fail()
    results = {"AP_" + name: DEPLOY_AP[engine["data_type"]] for name in classes}
    with open(os.path.join(a.results_dir, "results.json"), "w") as handle:
        json.dump(results, handle)
    ctx.say(f"{'':<14}{'mAP':<6}{round(sum(results.values()) / len(results), 3)}")
    ctx.status.write("SUCCESS", "Evaluation finished successfully.")


# ---------------------------------------------------------------------------------------------
# bpnet (TF1)
# ---------------------------------------------------------------------------------------------
def bp_start(ctx: Ctx, results_dir: str | None, flag: str, message: str) -> str:
    if not results_dir:
        # TAO 5.0 bpnet joins None into the status file path and dies with a TypeError.
        raise TaskError(f"expected str, bytes or os.PathLike object, not NoneType ({flag} not given)")
    ctx.start(results_dir, message)
    return results_dir


def bp_load(path: str) -> Any:
    import yaml  # only bpnet specs need PyYAML

    with open(path) as handle:
        if path.endswith(".json"):
            return json.load(handle)
        return yaml.safe_load(handle)


def bp_get(spec: Any, dotted: str) -> Any:
    node = spec
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def bp_coco_spec(path: str) -> dict[str, Any]:
    """The dataset spec as COCODataset.__init__ (cv/bpnet/dataio/coco_dataset.py) and COCOConverter read it:
    plain key lookups (a missing key is a KeyError), the 'person' category's num_joints equal to its keypoints,
    and both annotation files loaded whatever the mode."""
    spec = bp_load(path)
    root = spec_path(spec.get("root_directory_path"), "root_directory_path", "dir")
    keys = ["dataset", "duplicate_data_with_each_person_as_center"] + [
        "data_filtering_params." + k for k in ("min_acceptable_kpts", "min_acceptable_width",
                                               "min_acceptable_height", "min_acceptable_interperson_dist_ratio")]
    for split in ("train_data", "test_data"):
        keys += [f"{split}.{k}" for k in ("images_root_dir_path", "mask_root_dir_path", "annotation_root_dir_path")]
    missing = [k for k in keys if bp_get(spec, k) is None]
    if missing:
        raise TaskError(f"KeyError: coco spec {path} has no {', '.join(missing)}")
    person = [c for c in spec.get("categories") or [] if isinstance(c, dict) and c.get("name") == "person"]
    if not person:
        raise TaskError(f"IndexError: coco spec {path} has no 'person' entry in categories")
    if person[0].get("num_joints") != len(person[0].get("keypoints") or []):
        raise TaskError("AssertionError: num_joints and the number of keypoints are not matching! "
                        "Please check dataset_spec config")
    for split in ("train_data", "test_data"):
        need(os.path.join(root, spec[split]["annotation_root_dir_path"]),
             f"coco spec {split}.annotation_root_dir_path")
    return spec


def bp_main_persons(anns: list[dict[str, Any]], limits: dict[str, Any]) -> list[dict[str, Any]]:
    """COCODataset._parse_annotation: the stated num_keypoints (not the visible ones counted) and the area
    against the limits, then no centre closer than ratio x the size of an earlier main person. TAO appends
    that size from the image's LAST annotation (`img_anns[p]` after the loop), which is modelled too."""
    main, previous = [], []
    last = anns[-1]["bbox"]
    for ann in anns:
        if ann["num_keypoints"] < limits["min_acceptable_kpts"]:
            continue
        if ann["area"] < limits["min_acceptable_width"] * limits["min_acceptable_height"]:
            continue
        x, y, w, h = ann["bbox"]
        centre = (x + w / 2, y + h / 2)
        if any(math.dist(centre, c) < size * limits["min_acceptable_interperson_dist_ratio"]
               for c, size in previous):
            continue
        main.append(ann)
        previous.append((centre, max(last[2], last[3])))
    return main


def bp_annotations(spec: dict[str, Any], split: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(images with person annotations and their main persons, all images) like COCODataset.load_dataset."""
    with open(os.path.join(spec["root_directory_path"], spec[split]["annotation_root_dir_path"])) as handle:
        coco = json.load(handle)
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for number, ann in enumerate(coco.get("annotations", [])):
        missing = [k for k in ("image_id", "bbox", "iscrowd", "area", "segmentation", "num_keypoints", "keypoints")
                   if k not in ann]
        if missing:
            raise TaskError(f"KeyError: annotation {number} of {spec[split]['annotation_root_dir_path']} has no "
                            f"{', '.join(missing)}")
        by_image.setdefault(ann["image_id"], []).append(ann)
    data = []
    for image in coco["images"]:
        anns = by_image.get(image["id"], [])
        if anns:  # "If no keypoint labeling in this image, skip it"
            data.append({"image": image, "main_persons": bp_main_persons(anns, spec["data_filtering_params"])})
    return data, coco["images"]


def bp_dataset_convert(ctx: Ctx) -> None:
    a = ctx.args
    bp_start(ctx, a.results_dir, "-r/--results_dir", "Starting Dataset convert.")
    if not a.dataset_spec.endswith((".json", ".yaml")):
        raise TaskError("Experiment spec file extension not supported.")
    spec = bp_coco_spec(a.dataset_spec)
    split = "train_data" if a.mode == "train" else "test_data"
    # COCOConverter: COCODataset(dataset_spec, parse_annotations=True) parses both files whatever the mode.
    data = {s: bp_annotations(spec, s)[0] for s in ("train_data", "test_data")}[split]
    root = spec["root_directory_path"]
    images_rel, masks_rel = spec[split]["images_root_dir_path"], spec[split]["mask_root_dir_path"]
    ctx.maybe_fail()
    if a.generate_masks:
        from PIL import Image

        for point in data:
            mask = os.path.join(root, masks_rel, point["image"]["file_name"])
            os.makedirs(os.path.dirname(mask), exist_ok=True)
            Image.new("L", (point["image"]["width"], point["image"]["height"])).save(mask)
    records = []
    for point in data:
        entry = {"image_id": point["image"]["id"],
                 "image_path": os.path.join(images_rel, point["image"]["file_name"]),
                 "mask_path": os.path.join(masks_rel, point["image"]["file_name"])}
        if a.check_files and not all(os.path.exists(os.path.join(root, entry[k]))
                                     for k in ("image_path", "mask_path")):
            ctx.say(f"WARNING: Skipping data point. Image or mask doesn't exist: {entry['image_path']}")
            continue
        copies = len(point["main_persons"]) if spec.get("duplicate_data_with_each_person_as_center") else 1
        records += [entry] * min(copies, len(point["main_persons"]))
    partitions = [records[i::a.num_partitions] for i in range(a.num_partitions)] \
        if a.num_partitions > 1 else [records]
    if os.path.dirname(a.output_filename):
        os.makedirs(os.path.dirname(a.output_filename), exist_ok=True)
    for fold, partition in enumerate(shard_partitions(partitions, a.num_shards)):
        for shard, items in enumerate(partition):
            placeholder(record_name(a.output_filename, fold, a.num_partitions, shard, a.num_shards),
                        {"kind": "bpnet-tfrecord", "records": items})
    ctx.status.write("SUCCESS", "Dataset convert finished successfully.")


def bp_train_spec(spec: Any, key: str) -> dict[str, Any]:
    """Check the path keys of a bpnet train/retrain spec (facts/tao5.md) and the records they name."""
    n_epoch, every = bp_get(spec, "num_epoch"), bp_get(spec, "checkpoint_n_epoch")
    if not isinstance(n_epoch, int) or not isinstance(every, int) or every <= 0 or n_epoch % every:
        raise TaskError(f"Checkpoint_n_epoch should be a divisor of num_epoch ({n_epoch} / {every})")
    pretrained = bp_get(spec, "pretrained_weights")
    if pretrained:
        need_key(spec_path(pretrained, "pretrained_weights", "file"), key)
    elif bp_get(spec, "load_graph"):
        raise TaskError("Load graph is True, please specify pretrained model to use to load the graph.")
    spec_path(bp_get(spec, "inference_spec"), "inference_spec", "file")
    spec_path(bp_get(spec, "dataloader.pose_config.pose_config_path"),
              "dataloader.pose_config.pose_config_path", "file")
    config = "dataloader.dataset_config."
    root = spec_path(bp_get(spec, config + "root_data_path"), config + "root_data_path", "dir")
    if not root.endswith("/"):
        raise TaskError(f"{config}root_data_path = {root!r} must end with '/': the loader concatenates "
                        "it with the relative paths stored in the TFRecords")
    coco = bp_coco_spec(spec_path(bp_get(spec, config + "dataset_specs.coco"),
                                  config + "dataset_specs.coco", "file"))
    if os.path.join(coco["root_directory_path"], "") != root:
        raise TaskError("{}root_data_path {!r} differs from the coco spec's root_directory_path {!r}".format(
            config, root, coco["root_directory_path"]))
    for split in ("train", "val"):
        names = bp_get(spec, config + split + "_records_path") or []
        if split == "train" and not names:
            raise TaskError(f"{config}train_records_path is empty")
        if not names:
            continue
        folder = spec_path(bp_get(spec, config + split + "_records_folder_path"),
                           config + split + "_records_folder_path", "dir")
        for name in names:
            record = need(os.path.join(folder, name), f"{config}{split}_records_path entry")
            for item in read_placeholder(record, "bpnet-tfrecord")["records"]:
                for field in ("image_path", "mask_path"):
                    need(root + item[field], f"{field} of {record} (root_data_path + path)")
    return spec


def bp_train(ctx: Ctx) -> None:
    a = ctx.args
    if a.experiment_spec_file is None:
        raise UsageError("stand-in: pass -e; TAO's default spec path only exists inside the container")
    spec = bp_load(a.experiment_spec_file)
    results_dir = a.results_dir or bp_get(spec, "checkpoint_dir")
    bp_start(ctx, results_dir, "-r or checkpoint_dir", "Starting BPnet training.")
    bp_train_spec(spec, a.key)
    ctx.maybe_fail()
    learning_rate = bp_get(spec, "optimizer.learning_rate_schedule.learning_rate") or 0.0
    facts = model_facts(bp_get(spec, "pretrained_weights"), "bpnet")  # retrain: the pruned model's size

    def checkpoint(epoch: int) -> None:
        write_ckzip(results_dir, epoch, "bpnet-checkpoint")
        placeholder(os.path.join(results_dir, f"model.epoch-{epoch}.hdf5"),
                    {"kind": "bpnet-checkpoint", "epoch": epoch, **facts})

    train_epochs(ctx, results_dir, spec["num_epoch"], spec["checkpoint_n_epoch"], learning_rate, checkpoint)
    shutil.copyfile(os.path.join(results_dir, "model.epoch-{}.hdf5".format(spec["num_epoch"])),
                    os.path.join(results_dir, "bpnet_model.hdf5"))
    ctx.status.write(message="BPnet training loop finished.")
    shutil.copyfile(a.experiment_spec_file, os.path.join(results_dir, "experiment_spec.yaml"))
    ctx.status.write("SUCCESS", "BPnet training experimenent finished successfully.")


def bp_infer_spec(ctx: Ctx) -> tuple[dict[str, Any], str]:
    a = ctx.args
    if a.inference_spec is None:
        raise UsageError("stand-in: pass -i/--inference_spec; TAO's default only exists inside the container")
    spec = bp_load(a.inference_spec)
    spec_path(spec.get("train_spec"), "train_spec", "file")
    model = a.model_filename or spec_path(spec.get("model_path"), "model_path", "file")
    need_key(model, a.key)
    if model.endswith(".engine"):
        # BpNetInferencer runs a .engine with TensorRT at the engine's own input shape.
        engine = deploy_engine(model)
        height, width, _ = engine["input_dims"]
        if spec.get("input_shape") != [height, width]:
            raise TaskError(f"TRT execution failed. Please ensure that the `input_shape` {spec.get('input_shape')} "
                            f"matches the engine's {[height, width]}")
        # BpNetInferencer.infer asserts heatmap and PAF share height and width: an --sdk_compatible_model
        # export (PAF upsampled) fails there, "(Hint: use --sdk_compatible_model only for deployment)".
        grids = {tuple(shape[:2]) for shape in engine.get("outputs", {}).values()}
        if len(grids) > 1:
            raise TaskError(f"Model outputs are not as expected: {engine['outputs']}; the heatmaps and part "
                            "affinity maps should have the same height and width. Ensure the model has been "
                            "exported correctly. (Hint: use --sdk_compatible_model only for deployment)")
    return spec, model


def bp_evaluate(ctx: Ctx) -> None:
    a = ctx.args
    if a.results_dir is None:
        raise UsageError("stand-in: pass --results_dir; TAO's default is /workspace/tlt-experiments/bpnet/")
    coco = bp_coco_spec(a.dataset_spec)
    _, model = bp_infer_spec(ctx)
    bp_start(ctx, a.results_dir, "--results_dir", "Starting Evaluation.")
    need(os.path.join(coco["root_directory_path"], coco["test_data"]["images_root_dir_path"]),
         "coco spec test_data.images_root_dir_path", "dir")
    _, images = bp_annotations(coco, "test_data")
    ctx.maybe_fail()
    with open(os.path.join(a.results_dir, "detections_coco_format.json"), "w") as handle:
        json.dump([{"image_id": image["id"], "category_id": 1, "keypoints": [0] * 51, "score": 0.5}
                   for image in images], handle, indent=2)
    kpi = {name: round(0.5 * accuracy_factor(model_facts(model, "bpnet")), 4) for name in BPNET_KPI_KEYS}  # PRUNING
    # COCODataset.dump_coco_results_summary: pandas' to_csv of COCOeval's 10 keypoint stats, one row each,
    # with the index column: ",metric,IoU,area,maxDets,score" then "0,AP,0.50:0.95,all,20,<AP>" ...
    rows = [(("AP", "AR")[i // 5], ("0.50:0.95", "0.50", "0.75", "0.50:0.95", "0.50:0.95")[i % 5],
             ("all", "all", "all", "medium", "large")[i % 5], 20, value) for i, value in enumerate(kpi.values())]
    with open(os.path.join(a.results_dir, "results.csv"), "w") as handle:
        handle.write(",metric,IoU,area,maxDets,score\n")
        handle.write("".join(f"{i},{','.join(str(v) for v in row)}\n" for i, row in enumerate(rows)))
    ctx.status.write(message="Evaluation metrics generated.", kpi=kpi)
    ctx.status.write("SUCCESS", "Evaluation finished successfully.")


def bp_inference(ctx: Ctx) -> None:
    """cv/bpnet/scripts/inference.py and BpNetInferencer.run (cv/bpnet/inferencer/bpnet_inferencer.py)."""
    a = ctx.args
    bp_start(ctx, a.results_dir, "--results_dir", "Starting inference.")
    if a.input is None:
        raise TaskError("--input is needed")
    root = a.image_root_path
    results: dict[str, Any] = {}
    if a.input_type == "image":
        paths: list[Any] = [need(a.input, "--input")]
    elif a.input_type == "dir":
        paths, root = os.listdir(need(a.input, "--input", "dir")), a.input  # listdir order, unsorted
    else:
        with open(need(a.input, "--input")) as handle:
            content = json.load(handle)
        # run(): a list of paths (the notebook's form), or a dict whose "images" it updates in place.
        if isinstance(content, list):
            paths = content
        elif isinstance(content, dict) and content.get("images") is not None:
            results, paths = content, []
        else:
            raise TaskError("Verify input json format!")
    if paths:
        results["images"] = [{"full_image_path": path} for path in paths]
    bp_infer_spec(ctx)
    ctx.maybe_fail()
    from PIL import Image

    for index, entry in enumerate(results["images"]):
        full = os.path.join(root, entry["full_image_path"])
        if full.split(".")[-1].lower() not in BPNET_IMAGE_EXT:
            continue  # left in detections.json without keypoints
        try:
            image = Image.open(full)
            image.load()
        except OSError:
            ctx.say(f"ERROR: Error reading image: {full}")  # cv2.imread gave None: skipped, not fatal
            continue
        entry.update(keypoints=[], scores=[])
        if a.dump_visualizations:
            entry["viz_id"] = index
            os.makedirs(os.path.join(a.results_dir, "images_annotated"), exist_ok=True)
            image.convert("RGB").save(os.path.join(a.results_dir, "images_annotated", f"{index}.png"))
    with open(os.path.join(a.results_dir, "detections.json"), "w") as handle:  # dump_results
        json.dump(results, handle, indent=2)
    ctx.status.write("SUCCESS", "Inference finished successfully.")


def bp_prune(ctx: Ctx) -> None:
    if not ctx.args.results_dir:
        raise TaskError("expected str, bytes or os.PathLike object, not NoneType "
                        "(-r/--results_dir not given)")
    # cv/bpnet/scripts/prune.py: STARTED "Starting pruning.", no kpi line: the counts and ratio are logger
    # lines only (count_params() of both models); SUCCESS from its main.
    _, before, after = prune(ctx, ctx.args.results_dir, "Starting pruning.")
    for line, message in ((191, f"Number of params in original model): {before}"),
                          (193, f"Number of params in pruned model): {after}"),
                          (195, f"Pruning ratio (pruned model / original model): {after / before}")):
        prune_log(ctx, "__main__", line, message)
    ctx.status.write("SUCCESS", "Pruning finished successfully.")


def bp_check_calibration(ctx: Ctx) -> None:
    """INT8 calibration of `bpnet export` (nvidia_tao_tf1/cv/core/export/base_exporter.py get_calibrator and
    generate_tensor_file; cv/common/export/base_calibrator.py): an existing --cal_data_file is used as is;
    else it is written from --cal_image_dir (n_batches x batch_size images picked at random among the
    files whose extension is exactly jpg, jpeg or png), or from random tensors when that folder does not
    exist. An existing --cal_cache_file is read instead of calibrating ("Calibration file exists ...
    Reading this cache."): TAO refuses an existing cache only for QAT models, which BPNet does not have."""
    a = ctx.args
    if a.data_type != "int8":
        return
    if os.path.isfile(os.path.realpath(a.cal_cache_file)):
        ctx.say(f"WARNING: Calibration file exists at {os.path.realpath(a.cal_cache_file)}. Reading this cache.")
    if a.cal_data_file and os.path.exists(a.cal_data_file):
        read_placeholder(a.cal_data_file, "tensorfile")
        return
    if not a.cal_data_file:
        raise TaskError("[Errno 2] No such file or directory: '' (the calibration tensorfile, --cal_data_file)")
    if not os.path.exists(a.cal_image_dir):
        ctx.say("Generating a tensorfile with random tensor images. This may work well as a profiling tool, "
                "however, it may result in inaccurate results at inference.")
        placeholder(a.cal_data_file, {"kind": "tensorfile", "images": 0, "random": True})
        return
    images = [name for name in os.listdir(a.cal_image_dir) if name.split(".")[-1] in BPNET_IMAGE_EXT]
    if len(images) < a.batches * a.batch_size:
        raise TaskError(f"Not enough number of images provided: {len(images)} < {a.batches * a.batch_size}")
    placeholder(a.cal_data_file, {"kind": "tensorfile", "images": a.batches * a.batch_size})


def bp_export(ctx: Ctx) -> None:
    """nvidia_tao_tf1/cv/bpnet/scripts/export.py run_export, BpNetExporter (cv/bpnet/exporter/bpnet_exporter.py)."""
    a = ctx.args
    bp_start(ctx, a.results_dir, "-r/--results_dir", "Starting export.")
    try:
        dims = [int(i) for i in a.input_dims.split(",")]
    except ValueError:
        raise TaskError(f"invalid literal for int() in -d/--input_dims {a.input_dims!r}") from None
    if len(dims) != 3:
        raise TaskError("Input dims need to have three values.")
    need_key(a.model, a.key)
    # run_export: "Default output file ... already exists" for an existing output, whatever the flags.
    output = export_output(ctx, "uff" if a.backend == "uff" else "onnx")
    if a.experiment_spec is None:
        # BpNetExporter.__init__ loads the spec unconditionally (io_utils.load_yaml_file(None) fails).
        raise TaskError("stat: path should be string, bytes, os.PathLike or integer, not NoneType (-e not given)")
    spec = bp_load(need(a.experiment_spec, "-e/--experiment_spec"))
    # BpNetExporter.__init__ reads the normalization it builds the calibrator's preprocessing from.
    if bp_get(spec, "dataloader") is None or "normalization_params" not in spec["dataloader"]:
        raise TaskError(f"KeyError: 'normalization_params' (dataloader of {a.experiment_spec})")
    bp_check_calibration(ctx)
    ctx.maybe_fail()
    from tao_aml.simulate import onnx_models  # needs onnx: the rehearse extra

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    # export_utils.update_model: the last stage's raw heads, or with --sdk_compatible_model the PAF upsampled
    # by --upsample_ratio (Conv2DTranspose); the engine is built from that same graph.
    sdk = bool(a.sdk_compatible_model)
    onnx_models.save(onnx_models.bpnet(dims[0], dims[1], sdk, a.upsample_ratio), output)
    if a.engine_file is not None:  # save_engine = engine_file is not None (run_export)
        if a.data_type == "int8":
            placeholder(os.path.realpath(a.cal_cache_file), {"kind": "calibration-cache"})
        placeholder(a.engine_file, {
            "kind": "engine", "data_type": a.data_type,
            # BpNetExporter.export: max_batch_size = max(batch_size, max_batch_size).
            "max_batch_size": max(a.batch_size, a.max_batch_size), "input_dims": dims,
            "outputs": dict(onnx_models.bpnet_outputs(dims[0], dims[1], sdk, a.upsample_ratio))})
    ctx.status.write("SUCCESS", "Export finished successfully.")


BEHAVIOURS: dict[tuple[str, str, str], Callable[[Ctx], None]] = {
    ("tf1", "detectnet_v2", "dataset_convert"): dn_dataset_convert,
    ("tf1", "detectnet_v2", "train"): dn_train,
    ("tf1", "detectnet_v2", "evaluate"): dn_evaluate,
    ("tf1", "detectnet_v2", "prune"): dn_prune,
    ("tf1", "detectnet_v2", "inference"): dn_inference,
    ("tf1", "detectnet_v2", "export"): dn_export,
    ("tf1", "detectnet_v2", "calibration_tensorfile"): dn_calibration_tensorfile,
    ("tf1", "bpnet", "dataset_convert"): bp_dataset_convert,
    ("tf1", "bpnet", "train"): bp_train,
    ("tf1", "bpnet", "evaluate"): bp_evaluate,
    ("tf1", "bpnet", "inference"): bp_inference,
    ("tf1", "bpnet", "prune"): bp_prune,
    ("tf1", "bpnet", "export"): bp_export,
    ("deploy", "detectnet_v2", "gen_trt_engine"): deploy_gen_trt_engine,
    ("deploy", "detectnet_v2", "inference"): deploy_inference,
    ("deploy", "detectnet_v2", "evaluate"): deploy_evaluate,
}
# Each task's __main__ catches SystemExit (the spec validator's sys.exit(1)) and logs this FAILURE.
INTERRUPTED = {"train": "Training was interrupted", "evaluate": "Evaluation was interrupted",
               "inference": "Inference was interrupted", "export": "Export was interrupted",
               "prune": "Pruning was interrupted", "dataset_convert": "Dataset convert was interrupted"}


# ---------------------------------------------------------------------------------------------
# Command line: launcher rules, then argparse with the task's table
# ---------------------------------------------------------------------------------------------
def build_parser(kind: str, family: str, task: str) -> _Parser:
    parser = _Parser(prog=f"{family} {task}", allow_abbrev=False, add_help=False)
    for names, keywords, _ in GLOBALS[kind] + TASKS[(kind, family)][task]:
        parser.add_argument(*names, **keywords)
    return parser


def check_command_line(kind: str, family: str, argv: Sequence[str]) -> tuple[str, argparse.Namespace]:
    tasks = TASKS[(kind, family)]
    if len(argv) < 2 or argv[1] not in tasks:
        found = [a for a in argv[1:] if a in tasks]
        raise UsageError("the task must be the first argument (TAO 5.0's launcher reads argv[1] only); "
                         "got {!r}{}; tasks: {}".format(argv[1] if len(argv) > 1 else None,
                                                        f", task {found[0]!r} found later" if found else "",
                                                        ", ".join(sorted(tasks))))
    task = argv[1]
    table = GLOBALS[kind] + tasks[task]
    options = [name for names, _, _ in table for name in names]
    for arg in argv[2:]:
        name = arg.split("=", 1)[0]
        if arg.startswith("-") and not re.match(r"^-\d", arg) and name not in options:
            longer = [o for o in options if o.startswith(name)]
            if longer:
                raise UsageError(f"abbreviated flag {name} (TAO 5.0 would read it as "
                                 f"{' or '.join(longer)}); spell flags in full")
    for arg in argv[2:]:
        match = UNSAFE.search(arg)
        if match:
            raise UsageError(f"value {arg!r} contains {match.group(0)!r}: TAO 5.0's launcher re-joins "
                             "arguments into an unquoted bash -c string")
    args = build_parser(kind, family, task).parse_args(list(argv[2:]))
    if kind == "tf1":
        if args.gpus < 1:
            raise UsageError("At least 1 GPU required to run any task.")
        if args.gpus > 1 and task != "train":
            raise UsageError(f"Please use only 1 GPU for the task {task}. Only the following tasks are "
                             "supported to run with multiple GPUs, ['train']")
        if args.gpu_index is not None and len(set(args.gpu_index)) != args.gpus:
            raise UsageError(f"The number of GPUs ({args.gpus}) must be the same as the number of GPU "
                             f"indices ({args.gpu_index}) provided.")
        if args.num_processes > 1 and args.gpus <= 1:
            raise UsageError("Number of GPUs must be > 1 for data parallelized training(np > 1).")
        if args.use_amp and task != "train":
            raise UsageError("AMP is currently supported only for training.")
    return task, args


def log_invocation(record: dict[str, Any]) -> None:
    path = os.environ.get("TAO_STANDIN_LOG")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def main(kind: str, family: str, argv: Sequence[str], extra: dict[str, Any] | None = None) -> int:
    record: dict[str, Any] = {"argv": list(argv), "cwd": os.getcwd(), "kind": kind, "family": family,
                              "task": argv[1] if len(argv) > 1 else None, "ok": False, "error": None,
                              **(extra or {})}
    try:
        task, args = check_command_line(kind, family, argv)
        if args.log_file:
            os.makedirs(os.path.dirname(os.path.realpath(args.log_file)), exist_ok=True)
        out = open(args.log_file, "a") if args.log_file else sys.stdout
        ctx = Ctx(kind, family, task, args, out)
        try:
            BEHAVIOURS[(kind, family, task)](ctx)
        finally:
            if out is not sys.stdout:
                out.close()
    except UsageError as err:
        record["error"] = str(err)
        sys.stderr.write(f"usage: {family} ...\n{family}: error: {err}\n")
        print("Execution status: FAIL")
        code = 2
    except Interrupted as err:
        ctx.say(f"Spec validation: {err}")
        ctx.status.write("FAILURE", INTERRUPTED.get(task, "Task was interrupted"), data={"Error": "1"})
        record["error"] = str(err)
        print("Execution status: PASS")
        code = 0
    except Exited as err:
        record["error"] = str(err)
        print(err)
        print("Execution status: FAIL")
        code = FAIL_EXIT[kind]
    except Killed:
        record["error"] = "killed after TAO_STANDIN_KILL_AFTER_EPOCHS"
        log_invocation(dict(record, exit_code=KILLED_EXIT))
        sys.stdout.flush()
        os._exit(KILLED_EXIT)
    except (TaskError, OSError, ValueError) as err:
        record["error"] = str(err)
        ctx.status.write("FAILURE", str(err))
        sys.stderr.write(f"Traceback (most recent call last):\n  File \"{task}\", in main\n"
                         f"{type(err).__name__}: {err}\n")
        print("Execution status: FAIL")
        code = FAIL_EXIT[kind]
    else:
        record["ok"] = True
        print("Execution status: PASS")
        code = 0
    log_invocation(dict(record, exit_code=code))
    return code


def run_script(kind: str, family: str) -> None:
    """Entry point of the thin executables."""
    sys.exit(main(kind, family, sys.argv))


# Flags the entrypoint strips before the runner sees its arguments (cv/common/entrypoint/entrypoint.py).
ENTRYPOINT_ONLY = ("--gpus", "--gpu_index", "--use_amp", "--log_file", "-np", "--num_processes",
                   "--multi-node", "--mpirun-arg")


def run_runner(family: str) -> None:
    """`python -m nvidia_tao_tf1.cv.<family>.scripts.train ...`, as each MPI process runs it.

    The runner's own parser knows no entrypoint flags, the entrypoint's environment must be there,
    and only Horovod's rank 0 writes checkpoints, the model and status.json.
    """
    argv = [family, "train", *sys.argv[1:]]
    stray = [arg for arg in sys.argv[1:] if arg.split("=", 1)[0] in ENTRYPOINT_ONLY]
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    record: dict[str, Any] = {"argv": argv, "cwd": os.getcwd(), "kind": "tf1", "family": family, "task": "train",
                              "runner": True, "rank": rank, "ok": False, "error": None}
    amp = os.environ.get("TF_ENABLE_AUTO_MIXED_PRECISION")
    record["amp"] = amp == "1"
    if stray or amp not in ("0", "1"):
        record["error"] = (f"unrecognized arguments: {' '.join(stray)}" if stray
                           else "TF_ENABLE_AUTO_MIXED_PRECISION is not 0 or 1 (the entrypoint always sets one)")
        log_invocation(dict(record, exit_code=2))
        sys.stderr.write(f"train: error: {record['error']}\n")
        sys.exit(2)
    if rank != 0:
        check_command_line("tf1", family, argv)
        log_invocation(dict(record, ok=True, exit_code=0))
        sys.exit(0)
    sys.exit(main("tf1", family, argv, {"runner": True, "rank": 0, "amp": record["amp"]}))
