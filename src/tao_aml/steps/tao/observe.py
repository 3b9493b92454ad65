"""Watch one TAO task for tao.run: live metrics from status.json and output, then sizes and previews.

Started before TAO, so every status line is reported while training runs, not after. When the task
ends it also records the sizes of the files the command line names (prune and export outputs,
engines, calibration caches), logs inference previews, and leaves every metric it reported in
<results>/step_metrics.json, so the run report finds them with or without MLflow.
"""

import json
import logging
import os
import threading
import time
from typing import Dict, Optional, Sequence

from tao_aml.steps.common import atomic_write_text
from tao_aml.steps.tao import previews, tracking
from tao_aml.steps.tao.metrics import Metrics, TaskMetrics
from tao_aml.steps.tao.status_follow import Record, StatusFollower

LOG = logging.getLogger("tao_aml.observe")

STEP_METRICS = "step_metrics.json"
# Files a task's flags name, by the metric their size goes to (same flags in both families).
SIZE_FLAGS = {"--output_file": "model_size_mb", "--engine_file": "engine_size_mb",
              "--cal_cache_file": "cal_cache_size_mb", "--model": "input_model_size_mb",
              "--model_path": "input_model_size_mb"}
SIZE_TASKS = ("prune", "export", "gen_trt_engine")


def task_of(argv: Sequence[str]) -> str:
    """`detectnet_v2 train ...` -> train; `python -m nvidia_tao_tf1.cv.bpnet.scripts.train ...` -> train."""
    if len(argv) > 2 and argv[1] == "-m":
        return argv[2].rsplit(".", 1)[-1]
    return argv[1] if len(argv) > 1 else "task"


def family_of(argv: Sequence[str]) -> str:
    if len(argv) > 2 and argv[1] == "-m":
        parts = argv[2].split(".")
        return parts[2] if len(parts) > 2 else argv[2]
    return os.path.basename(argv[0])


def flag_value(argv: Sequence[str], flag: str) -> Optional[str]:
    for index, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[index + 1]
    return None


class TaskObserver:
    def __init__(self, argv: Sequence[str], results_dir: str, tracker: Optional[tracking.Tracker] = None,
                 interval: float = 1.0) -> None:
        self.argv = list(argv)
        self.results_dir = results_dir
        self.task, self.family = task_of(argv), family_of(argv)
        self.tracker = tracker or tracking.tracker()
        self.metrics = TaskMetrics(self.task)
        self.reported: Dict[str, float] = {}
        self._lock = threading.Lock()
        self._started = time.time()
        self.follower = StatusFollower(os.path.join(results_dir, "status.json"), self._record, interval)

    def start(self) -> None:
        self.tracker.set_tags({"tao_aml.family": self.family, "tao_aml.task": self.task,
                               "tao_aml.results_dir": os.path.abspath(self.results_dir)})
        self.follower.start()

    def stop(self) -> None:
        """Report the status lines TAO wrote last; call once TAO has exited."""
        self.follower.stop()

    def _record(self, record: Record) -> None:
        found, step = self.metrics.from_record(record)
        self._report(found, step)

    def output(self, line: str) -> None:
        """A line TAO printed: prune's parameter counts are printed, not always in status.json."""
        self._report(self.metrics.from_output(line), 0)

    def _report(self, found: Metrics, step: int) -> None:
        if not found:
            return
        with self._lock:
            self.reported.update(found)
        self.tracker.log_metrics(found, step)

    def finish(self, succeeded: bool) -> None:
        """Sizes and previews after success; step_metrics.json either way."""
        if succeeded:
            self._log_guarded(self._log_sizes)
            if self.task == "inference":
                self._log_guarded(lambda: previews.log_previews(self.tracker, self.results_dir))
        stage = self.metrics.stage
        self._report({stage + "/duration_s": round(time.time() - self._started, 3)}, 0)
        if tracking.reporting_rank():
            self._log_guarded(self._write_summary)
        if not succeeded:
            self.tracker.end(failed=True)

    def _log_sizes(self) -> None:
        if self.task not in SIZE_TASKS:
            return
        sizes = {}
        for flag, name in SIZE_FLAGS.items():
            path = flag_value(self.argv, flag)
            if path and os.path.isfile(path):
                sizes["{}/{}".format(self.metrics.stage, name)] = round(os.path.getsize(path) / 1e6, 6)
        self._report(sizes, 0)

    def _write_summary(self) -> None:
        write_step_metrics(self.results_dir, self.task, self.family, self.reported)

    @staticmethod
    def _log_guarded(action) -> None:  # type: ignore[no-untyped-def]
        try:
            action()
        except Exception:  # what happened is reported, never made to fail the step
            LOG.warning("could not record what the task produced", exc_info=True)


def write_step_metrics(results_dir: str, task: str, family: str, metrics: Metrics) -> None:
    """<results>/step_metrics.json: what a step reported, which the run report reads."""
    summary = {"task": task, "family": family, "metrics": dict(sorted(metrics.items()))}
    atomic_write_text(os.path.join(results_dir, STEP_METRICS), json.dumps(summary, indent=2) + "\n")


def add_step_metrics(results_dir: str, task: str, family: str, metrics: Metrics) -> None:
    """Metrics a step found after TAO ended, added to the step_metrics.json its task wrote."""
    path = os.path.join(results_dir, STEP_METRICS)
    recorded: Metrics = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            summary = json.load(handle)
        task, family, recorded = summary.get("task", task), summary.get("family", family), summary.get("metrics", {})
    write_step_metrics(results_dir, task, family, dict(recorded, **metrics))
