"""tao.run reports TAO's epochs to a real MLflow store (local file store) while TAO is still running.

The fake TAO below writes status.json the way TAO does and, after each epoch's line, waits until that
epoch's loss is in the MLflow store: if metrics were only logged after TAO ended, it would give up.
"""

import json
import logging
import os
import stat
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao import tracking

FAKE_TRAIN = """#!{python}
import json, sys, time
from mlflow.tracking import MlflowClient

results = sys.argv[sys.argv.index("--results_dir") + 1]
client = MlflowClient("{uri}")

def logged(epoch):
    experiment = client.get_experiment_by_name("tao-aml")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return any(m.step == epoch for run in runs for m in client.get_metric_history(run.info.run_id, "train/loss"))

with open(results + "/status.json", "a") as status:
    status.write(json.dumps({{"status": "STARTED", "message": "Starting DetectNet_v2 Training job"}}) + "\\n")
    for epoch in range(3):
        line = json.dumps({{"date": "1/2/2026", "time": "3:4:5", "status": "RUNNING", "epoch": epoch,
                           "max_epoch": 3, "time_per_epoch": "0:00:0%d" % (epoch + 1), "eta": "0:00:05",
                           "graphical": {{"loss": 1.0 / (epoch + 1), "learning_rate": 0.001 * (epoch + 1)}}}})
        status.write(line[:20])  # TAO midway through a line: nothing is reported yet
        status.flush()
        time.sleep(0.05)
        status.write(line[20:] + "\\n")
        status.write("{{truncated by a crash\\n")
        status.flush()
        deadline = time.time() + 15
        while not logged(epoch):
            if time.time() > deadline:
                print("epoch %d never reached MLflow while training ran" % epoch)
                sys.exit(3)
            time.sleep(0.05)
        print("INFO: Epoch %d/3" % epoch, flush=True)
    status.write(json.dumps({{"status": "SUCCESS", "message": "DetectNet_v2 training job complete."}}) + "\\n")
print("Execution status: PASS")
"""


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> str:
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    tracking.reset()
    yield uri
    tracking.reset()


def fake_tao(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def only_run(uri: str):
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tao-aml").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_epochs_reach_mlflow_while_training_runs(tmp_path: Path, store: str, monkeypatch, caplog) -> None:
    fake_tao(tmp_path / "bin", "detectnet_v2", FAKE_TRAIN.format(python=sys.executable, uri=store))
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    results = tmp_path / "results"
    results.mkdir()
    with caplog.at_level(logging.WARNING):
        tao.run(["detectnet_v2", "train", "--results_dir", str(results)], str(results))
    tracking.reset()

    client, run = only_run(store)
    def history(name: str) -> list[tuple[int, float]]:
        return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))

    assert history("train/loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert history("train/learning_rate") == [(0, 0.001), (1, 0.002), (2, pytest.approx(0.003))]
    assert history("train/time_per_epoch_s") == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert run.info.status == "FINISHED"
    assert run.data.tags["tao_aml.task"] == "train" and run.data.tags["tao_aml.family"] == "detectnet_v2"
    assert sum("malformed" in r.getMessage() for r in caplog.records) == 3
    recorded = json.loads((results / "step_metrics.json").read_text())
    assert recorded["metrics"]["train/loss"] == pytest.approx(1 / 3) and "train/duration_s" in recorded["metrics"]


FAKE_PRUNE = """#!{python}
import json, sys
out = sys.argv[sys.argv.index("--output_file") + 1]
open(out, "wb").write(b"x" * 2000)
print("INFO: Number of params in original model): 1000")
print("INFO: Number of params in pruned model): 400")
print("INFO: Pruning ratio (pruned model / original model): 0.4")
print("Execution status: PASS")
"""


def test_bpnet_prune_counts_and_sizes_are_logged(tmp_path: Path, store: str, monkeypatch) -> None:
    fake_tao(tmp_path / "bin", "bpnet", FAKE_PRUNE.format(python=sys.executable))
    monkeypatch.setenv("PATH", str(tmp_path / "bin") + os.pathsep + os.environ["PATH"])
    (tmp_path / "model.hdf5").write_bytes(b"y" * 5000)
    out = tmp_path / "pruned"
    out.mkdir()
    tao.run(["bpnet", "prune", "--model", str(tmp_path / "model.hdf5"), "--output_file", str(out / "p.hdf5"),
             "--results_dir", str(out)], str(out))
    tracking.reset()
    client, run = only_run(store)
    metrics = run.data.metrics
    assert metrics["prune/param_count_before"] == 1000 and metrics["prune/param_count_after"] == 400
    assert metrics["prune/pruning_ratio"] == 0.4
    assert metrics["prune/model_size_mb"] == 0.002 and metrics["prune/input_model_size_mb"] == 0.005


def test_without_a_tracking_store_metrics_go_to_the_log_once_warned(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    tracker = tracking.Tracker()
    with caplog.at_level(logging.INFO):
        tracker.log_metrics({"eval/mAP": 50.0})
        tracker.log_metrics({"eval/mAP": 51.0})
        tracker.log_artifact(str(tmp_path))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no tracking store" in m for m in messages) == 1
    assert "metrics (step 0): eval/mAP=50" in messages


def test_without_mlflow_installed_a_single_warning(monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)  # import fails as on a bare workstation
    tracker = tracking.Tracker({"MLFLOW_TRACKING_URI": "file:///nowhere"})
    with caplog.at_level(logging.WARNING):
        tracker.log_metrics({"train/loss": 1.0})
        tracker.set_tags({"a": "b"})
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "MLflow: the mlflow package is not installed; metrics go to this log only"]


def test_only_rank_zero_reports(tmp_path: Path) -> None:
    tracker = tracking.Tracker({"MLFLOW_TRACKING_URI": (tmp_path / "m").as_uri(), "OMPI_COMM_WORLD_RANK": "1"})
    tracker.log_metrics({"train/loss": 1.0})
    assert not tracker.active and not (tmp_path / "m").exists()
