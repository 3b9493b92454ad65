"""The register_model step: what goes into the model folder and its model card (it registers nothing)."""

import hashlib
import json
import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from model_fixtures import bodypose_outputs
from tao_aml.steps import register_model, tracking


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Path]:
    """BodyPose's export output (ONNX, engine, engine.json, specs/ with the node's paths) and a run report."""
    found = bodypose_outputs(tmp_path)
    report = tmp_path / "report"
    report.mkdir()
    (found["export"] / "labels.txt").write_text("person\n")
    (report / "report.json").write_text(json.dumps({
        "accuracy": [{"model": "pretrained", "metric": "eval/AP_0.50-0.95_all", "value": 0.4},
                     {"model": "pruned + retrained", "metric": "eval/AP_0.50-0.95_all", "value": 0.48123}],
        "parameters": {"before_pruning": 3000000.0, "after_pruning": 1200000.0, "pruning_ratio": 0.4},
        "sizes": {"exported onnx": {"file": "model.onnx", "size_mb": 1.1, "stage": "export"},
                  "trained model": {"file": "m.hdf5", "size_mb": 3.0, "stage": "train"}}}))
    return dict(found, report=report)


def args(outputs: dict[str, Path], *extra: str) -> list[str]:
    return ["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--report", str(outputs["report"]),
            "--output_dir", str(outputs["out"]), *extra]


def test_assembles_the_deployable_files_and_a_model_card_with_name_and_tags(outputs) -> None:
    assert register_model.main(args(outputs, "--model_name", "tao-bodypose")) == 0
    out = outputs["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "cal.bin", "deepstream", "engine.json", "labels.txt", "model.engine", "model.onnx",
        "model_card.json", "specs"]
    card = json.loads((out / "model_card.json").read_text())
    assert set(card["files"]) == {
        "README.md", "cal.bin", "engine.json", "labels.txt", "model.engine", "model.onnx",
        "deepstream/bodypose2d_postprocess_config.txt", "deepstream/config_infer_bodypose2d.txt",
        "specs/bpnet_retrain_m1_coco.yaml", "specs/infer_spec_retrained_strict.yaml"}
    onnx = (outputs["export"] / "model.onnx").read_bytes()
    assert card["files"]["model.onnx"]["sha256"] == hashlib.sha256(onnx).hexdigest()
    assert card["name"] == "tao-bodypose" and card["family"] == "bpnet" and card["tao_version"] == "5.0.0"
    # Exactly the tags `tao-aml model register` gives the model asset.
    assert card["tags"] == {"accuracy_metric": "eval/AP_0.50-0.95_all", "accuracy": "0.4812",
                            "accuracy_of": "pruned + retrained", "pretrained_accuracy": "0.4",
                            "parameters_before_pruning": "3e+06", "parameters_after_pruning": "1.2e+06",
                            "parameters_pruning_ratio": "0.4", "exported_onnx_mb": "1.1",
                            "family": "bpnet", "tao_version": "5.0.0"}
    assert set(card) == {"name", "family", "tao_version", "graph", "engine", "deepstream", "spec_notes", "tags",
                         "files"}


def test_registers_nothing_even_with_a_tracking_store(outputs, tmp_path: Path, monkeypatch) -> None:
    """The step only assembles; registration is `tao-aml model register` after the job (no MLflow route)."""
    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tracking.reset()
    assert register_model.main(args(outputs, "--model_name", "tao-bodypose")) == 0
    tracking.reset()
    assert MlflowClient(store).search_registered_models() == []
    assert (outputs["out"] / "model_card.json").is_file()


def test_without_a_name_or_report_the_card_has_no_name_and_only_family_tags(outputs) -> None:
    assert register_model.main(["--export", str(outputs["export"]), "--output_dir", str(outputs["out"])]) == 0
    card = json.loads((outputs["out"] / "model_card.json").read_text())
    assert card["name"] is None and card["tags"] == {"family": "bpnet", "tao_version": "5.0.0"}
    # BodyPose's export folder holds the engine too; without --engine no DeepStream config is written.
    assert set(card["files"]) == {"README.md", "cal.bin", "engine.json", "labels.txt", "model.engine", "model.onnx"}


def test_an_export_folder_without_a_model_is_refused(outputs, caplog) -> None:
    (outputs["export"] / "model.onnx").unlink()
    with caplog.at_level(logging.ERROR):
        assert register_model.main(args(outputs)) == 2
    assert "holds no exported model" in caplog.records[-1].getMessage()
