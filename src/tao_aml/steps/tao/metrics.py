"""What TAO reports, as metrics with stable names (the list is in docs/troubleshooting.md, "Live metrics").

One mapping for every family: TAO's StatusLogger writes the same record shapes for detectnet_v2 and
bpnet (nvidia_tao_tf1/cv/common/logging/logging.py).

- a RUNNING line with `epoch` -> `train/loss`, `train/learning_rate`, `train/time_per_epoch_s`
  (any other `graphical` value -> `train/<name>`), with the epoch as the metric's step;
- `kpi` -> `<stage>/<name>`: `mean average precision` -> `mAP`, `validation cost` -> `validation_cost`,
  `size` -> `model_size_mb`, bpnet's `AP_0.50:0.95_all` -> `AP_0.50-0.95_all` (MLflow refuses `:`);
- `categorical.average_precision.<class>` -> `<stage>/AP_<class>`;
- prune: `pruning_ratio`, `param_count_after` (TAO's `param_count`), `param_count_before`.
  A kpi `param_count` is in millions (nvidia_tao_tf1/cv/common/utils.py get_num_params: count_params()/1e6,
  written by magnet_prune.py and detectnet_v2's train.py); the metric is the plain count. bpnet's prune
  prints plain counts (bpnet/scripts/prune.py "Number of params in ... model").
`<stage>` is `train` (train and retrain), `eval`, `prune`, `export`, `engine` or the task's name.
"""

import math
import re
from typing import Dict, Optional, Tuple

Metrics = Dict[str, float]

STAGES = {"train": "train", "evaluate": "eval", "prune": "prune", "export": "export",
          "gen_trt_engine": "engine", "inference": "inference", "dataset_convert": "data"}
KPI_NAMES = {"mean average precision": "mAP", "validation cost": "validation_cost", "size": "model_size_mb"}
STAGE_KPI_NAMES = {("prune", "param_count"): "param_count_after"}
KPI_UNITS = {"param_count": 1e6}  # the kpi's unit in plain counts (get_num_params)
# Printed by bpnet/scripts/prune.py only (bpnet writes no prune kpi; detectnet_v2 writes the kpi, no lines).
OUTPUT_PATTERNS = [
    (re.compile(r"Number of params in original model\)?:\s*([0-9.eE+-]+)"), "param_count_before"),
    (re.compile(r"Number of params in pruned model\)?:\s*([0-9.eE+-]+)"), "param_count_after"),
    (re.compile(r"Pruning ratio \(pruned model / original model\):\s*([0-9.eE+-]+)"), "pruning_ratio"),
]
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_name(name: str) -> str:
    """A name MLflow and Azure ML accept: letters, digits, `_ - . / space`; `:` becomes `-`."""
    return _UNSAFE_NAME.sub("_", name.replace(":", "-")).strip()


def number(value: object) -> Optional[float]:
    """TAO writes numbers as numbers or strings ("0.0123"); anything else, or NaN/inf, is no metric."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def duration_seconds(text: object) -> Optional[float]:
    """str(datetime.timedelta): "0:01:02.5" or "2 days, 3:04:05"."""
    match = re.match(r"^\s*(?:(-?\d+) days?, )?(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)\s*$", str(text))
    if not match:
        return number(text)
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def stage_of(task: str) -> str:
    return STAGES.get(task, metric_name(task))


class TaskMetrics:
    """Turns one TAO task's status records and output lines into (metrics, step) pairs."""

    def __init__(self, task: str) -> None:
        self.stage = stage_of(task)
        self.epoch = 0

    def kpi_name(self, key: str) -> str:
        name = STAGE_KPI_NAMES.get((self.stage, key)) or KPI_NAMES.get(key) or metric_name(key)
        return "{}/{}".format(self.stage, name)

    def from_record(self, record: Dict[str, object]) -> Tuple[Metrics, int]:
        found: Metrics = {}
        if "epoch" in record and number(record["epoch"]) is not None:
            self.epoch = int(number(record["epoch"]) or 0)
            graphical = record.get("graphical")
            for key, value in (graphical.items() if isinstance(graphical, dict) else ()):
                self._put(found, "train/" + metric_name(key), value)
            if "time_per_epoch" in record:
                self._put(found, "train/time_per_epoch_s", duration_seconds(record["time_per_epoch"]))
        kpi = record.get("kpi")
        for key, value in (kpi.items() if isinstance(kpi, dict) else ()):
            converted = number(value)
            if converted is not None and key in KPI_UNITS:
                value = round(converted * KPI_UNITS[key])
            self._put(found, self.kpi_name(key), value)
        categorical = record.get("categorical")
        per_class = categorical.get("average_precision") if isinstance(categorical, dict) else None
        for name, value in (per_class.items() if isinstance(per_class, dict) else ()):
            self._put(found, "{}/AP_{}".format(self.stage, metric_name(str(name))), value)
        self._derive(found)
        return found, self.epoch

    def from_output(self, line: str) -> Metrics:
        found: Metrics = {}
        for pattern, name in OUTPUT_PATTERNS:
            match = pattern.search(line)
            if match:
                self._put(found, "{}/{}".format(self.stage, name), match.group(1))
        return found

    def _derive(self, found: Metrics) -> None:
        """TAO's detectnet_v2 prune reports the pruned count and the ratio; the original follows."""
        after, ratio = found.get("prune/param_count_after"), found.get("prune/pruning_ratio")
        if self.stage == "prune" and after and ratio:
            found["prune/param_count_before"] = float(round(after / ratio))

    @staticmethod
    def _put(found: Metrics, name: str, value: object) -> None:
        converted = number(value)
        if converted is not None:
            found[name] = converted
