"""The registration step: what goes into the model folder, and when it is registered."""

import hashlib
import json
import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tao_aml.steps import register_model, tracking


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Path]:
    export, engine, report = tmp_path / "export", tmp_path / "engine", tmp_path / "report"
    for folder in (export, engine / "specs", report):
        folder.mkdir(parents=True)
    (export / "model.onnx").write_bytes(b"onnx")
    (export / "labels.txt").write_text("person\n")
    (export / "status.json").write_text('{"status": "SUCCESS"}\n')
    (export / "step_metrics.json").write_text(json.dumps({"family": "bpnet", "metrics": {}}))
    (engine / "model.engine").write_bytes(b"engine")
    (engine / "cal.bin").write_bytes(b"cal")
    (engine / "specs" / "infer.yaml").write_text("model_path: x\n")
    (report / "report.json").write_text(json.dumps({
        "accuracy": [{"model": "pretrained", "metric": "eval/AP_0.50-0.95_all", "value": 0.4},
                     {"model": "pruned + retrained", "metric": "eval/AP_0.50-0.95_all", "value": 0.48123}],
        "parameters": {"before_pruning": 3000000.0, "after_pruning": 1200000.0, "pruning_ratio": 0.4},
        "sizes": {"exported onnx": {"file": "model.onnx", "size_mb": 1.1, "stage": "export"},
                  "trained model": {"file": "m.hdf5", "size_mb": 3.0, "stage": "train"}}}))
    return {"export": export, "engine": engine, "report": report, "out": tmp_path / "model"}


def args(outputs: dict[str, Path], *extra: str) -> list[str]:
    return ["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--report", str(outputs["report"]),
            "--output_dir", str(outputs["out"]), *extra]


def test_assembles_the_deployable_files_and_a_model_card_without_a_store(outputs, monkeypatch, caplog) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    tracking.reset()
    with caplog.at_level(logging.WARNING):
        assert register_model.main(args(outputs, "--model_name", "bodypose")) == 0
    out = outputs["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "cal.bin", "labels.txt", "model.engine", "model.onnx", "model_card.json", "specs"]
    card = json.loads((out / "model_card.json").read_text())
    assert set(card["files"]) == {"cal.bin", "labels.txt", "model.engine", "model.onnx", "specs/infer.yaml"}
    assert card["files"]["model.onnx"]["sha256"] == hashlib.sha256(b"onnx").hexdigest()
    assert card["family"] == "bpnet" and card["registered_version"] is None
    assert card["tags"] == {"accuracy_metric": "eval/AP_0.50-0.95_all", "accuracy": "0.4812",
                            "accuracy_of": "pruned + retrained", "pretrained_accuracy": "0.4",
                            "parameters_before_pruning": "3e+06", "parameters_after_pruning": "1.2e+06",
                            "parameters_pruning_ratio": "0.4", "exported_onnx_mb": "1.1"}
    assert any("assembled" in r.getMessage() and "not registered" in r.getMessage() for r in caplog.records)


def test_registers_through_mlflow_with_metric_tags(outputs, tmp_path: Path, monkeypatch) -> None:
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tracking.reset()
    assert register_model.main(args(outputs, "--model_name", "bodypose")) == 0
    tracking.reset()
    [version] = MlflowClient(store).search_model_versions("name='bodypose'")
    assert version.tags["accuracy"] == "0.4812" and version.tags["family"] == "bpnet"
    assert json.loads((outputs["out"] / "model_card.json").read_text())["registered_version"] == "1"


def test_an_export_folder_without_a_model_is_refused(outputs, caplog) -> None:
    (outputs["export"] / "model.onnx").unlink()
    with caplog.at_level(logging.ERROR):
        assert register_model.main(args(outputs)) == 2
    assert "holds no exported model" in caplog.records[-1].getMessage()
