"""Where a step's metrics and artifacts go: the job's MLflow run, or only this step's log.

In an Azure ML job, MLFLOW_TRACKING_URI and MLFLOW_RUN_ID name the job's own run (azureml-mlflow
handles the `azureml://` store), so metrics appear on the step in Studio. Elsewhere, a run is made in
the store MLFLOW_TRACKING_URI names (MLFLOW_EXPERIMENT_NAME, default `tao-aml`). With no store set, or
without mlflow installed, metrics are only logged as text: a warning says so once. Under MPI only
rank 0 reports (TAO's own master rank is the only one that writes status.json). A failing store
never fails the step: the first error is reported, later ones are not.
"""

import atexit
import logging
import os
import time
from typing import Any, Dict, Mapping, Optional

LOG = logging.getLogger("tao_aml.tracking")

DEFAULT_EXPERIMENT = "tao-aml"


def reporting_rank(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Rank 0 of an MPI job, or a process not started by mpirun."""
    return (os.environ if environ is None else environ).get("OMPI_COMM_WORLD_RANK", "0") == "0"


class Tracker:
    """One process's MLflow run; every method is a no-op when MLflow is off."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None, run_name: str = "tao-aml step") -> None:
        self.environ = os.environ if environ is None else environ
        self.run_name = run_name
        self.client: Any = None
        self.run_id: Optional[str] = None
        self.owns_run = False
        self._failed_once = False
        self._started = False

    @property
    def active(self) -> bool:
        self._start()
        return self.run_id is not None

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        env = self.environ
        if not reporting_rank(env):
            return
        if not env.get("MLFLOW_TRACKING_URI") and not env.get("MLFLOW_RUN_ID"):
            LOG.warning("MLflow: no tracking store set (MLFLOW_TRACKING_URI); metrics go to this log only")
            return
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            LOG.warning("MLflow: the mlflow package is not installed; metrics go to this log only")
            return
        try:
            self.client = MlflowClient(tracking_uri=env.get("MLFLOW_TRACKING_URI") or None)
            if env.get("MLFLOW_RUN_ID"):
                self.run_id = env["MLFLOW_RUN_ID"]  # the Azure ML job's run: the service ends it
            else:
                run = self.client.create_run(self._experiment_id(), run_name=self.run_name)
                self.run_id, self.owns_run = run.info.run_id, True
        except Exception as err:
            self._warn(err)
            self.run_id = None

    def _experiment_id(self) -> str:
        if self.environ.get("MLFLOW_EXPERIMENT_ID"):
            return self.environ["MLFLOW_EXPERIMENT_ID"]
        name = self.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        experiment = self.client.get_experiment_by_name(name)
        return experiment.experiment_id if experiment else self.client.create_experiment(name)

    def _warn(self, err: Exception) -> None:
        if not self._failed_once:
            LOG.warning("MLflow: %s: %s (further MLflow errors are not reported)", type(err).__name__, err)
            self._failed_once = True

    def log_metrics(self, metrics: Dict[str, float], step: int = 0) -> None:
        if not metrics:
            return
        LOG.info("metrics (step %d): %s", step, " ".join("{}={:g}".format(k, v) for k, v in sorted(metrics.items())))
        if not self.active:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        try:
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])
        except Exception as err:
            self._warn(err)

    def set_tags(self, tags: Dict[str, str]) -> None:
        if not self.active:
            return
        from mlflow.entities import RunTag

        try:
            self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        except Exception as err:
            self._warn(err)

    def log_artifact(self, path: str, artifact_path: Optional[str] = None) -> None:
        if not self.active:
            return
        try:
            if os.path.isdir(path):
                self.client.log_artifacts(self.run_id, path, artifact_path)
            else:
                self.client.log_artifact(self.run_id, path, artifact_path)
        except Exception as err:
            self._warn(err)

    def end(self, failed: bool = False) -> None:
        """Close a run this process made (an Azure ML job's run is closed by the service)."""
        if self.owns_run and self.run_id is not None:
            try:
                self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
            except Exception as err:
                self._warn(err)
            self.owns_run = False


_TRACKER: Optional[Tracker] = None


def tracker() -> Tracker:
    """The process's tracker, made on first use and closed at exit (FAILED if a step marked it so)."""
    global _TRACKER
    if _TRACKER is None:
        _TRACKER = Tracker()
        atexit.register(_TRACKER.end)
    return _TRACKER


def reset() -> None:
    """Close and forget the process's tracker (tests run several steps in one process)."""
    global _TRACKER
    if _TRACKER is not None:
        _TRACKER.end()
    _TRACKER = None
