"""The register_model step: what goes into the model folder and its model card (it registers nothing)."""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from model_fixtures import NODE, bodypose_outputs, engine_spec, facenet_args, facenet_outputs
from tao_aml.steps.asset import register_model
from tao_aml.steps.bpnet import specs as bpnet_specs
from tao_aml.steps.detectnet_v2 import tf1_validator
from tao_aml.steps.specs import detectnet_v2_schema, prototext
from tao_aml.steps.tao import tracking

MODEL_FILES = {"model.onnx", "model.engine", "cal.bin", "engine.json"}


@pytest.fixture
def outputs(tmp_path: Path) -> dict[str, Path]:
    """BodyPose's export output (tao/ and sdk_compatible/ models, specs/ with the node's paths) and a run report."""
    found = bodypose_outputs(tmp_path)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text(json.dumps({
        "accuracy": [{"model": "pretrained", "metric": "eval/AP_0.50-0.95_all", "value": 0.4},
                     {"model": "pruned + retrained", "metric": "eval/AP_0.50-0.95_all", "value": 0.48123}],
        "parameters": {"before_pruning": 3000000.0, "after_pruning": 1200000.0, "pruning_ratio": 0.4},
        "sizes": {"exported onnx": {"file": "tao/model.onnx", "size_mb": 1.1, "stage": "export"},
                  "trained model": {"file": "m.hdf5", "size_mb": 3.0, "stage": "train"}}}))
    return dict(found, report=report)


def args(outputs: dict[str, Path], *extra: str) -> list[str]:
    return ["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--report", str(outputs["report"]),
            "--output_dir", str(outputs["out"]), *extra]


def test_assembles_both_models_and_a_model_card_with_name_and_tags(outputs) -> None:
    assert register_model.main(args(outputs, "--model_name", "tao-bodypose")) == 0
    out = outputs["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "deepstream", "model_card.json", "sdk_compatible", "specs", "tao"]
    card = json.loads((out / "model_card.json").read_text())
    assert set(card["files"]) == {"README.md", *(f"{m}/{f}" for m in ("tao", "sdk_compatible") for f in MODEL_FILES),
                                  "deepstream/bodypose2d_postprocess_config.txt",
                                  "deepstream/config_infer_bodypose2d.txt", "specs/bpnet_retrain_m1_coco.yaml",
                                  "specs/infer_spec_retrained_strict.yaml", "specs/bpnet_18joints.json"}
    for name in ("tao", "sdk_compatible"):
        onnx = (outputs["export"] / name / "model.onnx").read_bytes()
        assert card["files"][f"{name}/model.onnx"]["sha256"] == hashlib.sha256(onnx).hexdigest()
    # Each model says what it is for; the card's graph and engine are the deployable (SDK-compatible) ones.
    models = card["models"]
    assert [t["name"] for t in models["tao"]["graph"]["outputs"]] == ["paf_out/BiasAdd:0", "heatmap_out/BiasAdd:0"]
    assert card["graph"] == models["sdk_compatible"]["graph"]
    assert [t["shape"] for t in card["graph"]["outputs"]] == [["N", "unk__3", "unk__4", 38],
                                                              ["N", "unk__5", "unk__6", 19]]
    assert card["engine"]["engine_file"] == "sdk_compatible/model.engine"
    assert models["tao"]["engine"]["calibration_cache"] == "tao/cal.bin"
    assert "bpnet evaluate and inference" in models["tao"]["use"] and "DeepStream" in models["sdk_compatible"]["use"]
    readme = (out / "README.md").read_text()
    assert "- `tao/`: for TAO's bpnet evaluate and inference" in readme
    assert card["name"] == "tao-bodypose" and card["family"] == "bpnet" and card["tao_version"] == "5.0.0"
    # Exactly the tags `tao-aml model register` gives the model asset.
    assert card["tags"] == {"accuracy_metric": "eval/AP_0.50-0.95_all", "accuracy": "0.4812",
                            "accuracy_of": "pruned + retrained", "pretrained_accuracy": "0.4",
                            "parameters_before_pruning": "3e+06", "parameters_after_pruning": "1.2e+06",
                            "parameters_pruning_ratio": "0.4", "exported_onnx_mb": "1.1",
                            "family": "bpnet", "tao_version": "5.0.0"}
    assert set(card) == {"name", "family", "tao_version", "graph", "engine", "models", "deepstream", "spec_notes",
                         "tags", "files"}


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
    # Without --engine and --specs no spec is copied, so no DeepStream config is written.
    assert set(card["files"]) == {"README.md", *(f"{m}/{f}" for m in ("tao", "sdk_compatible") for f in MODEL_FILES)}


def test_an_export_folder_without_both_models_is_refused(outputs, caplog) -> None:
    shutil.rmtree(outputs["export"] / "sdk_compatible")
    with caplog.at_level(logging.ERROR):
        assert register_model.main(args(outputs)) == 2
    message = caplog.records[-1].getMessage()
    assert "sdk_compatible/model.onnx: connect the bpnet export step's output" in message
    assert list(outputs["out"].iterdir()) == []


def test_an_sdk_compatible_model_in_place_of_taos_is_refused(outputs, caplog) -> None:
    """bpnet evaluate and inference refuse the upsampled PAF (BpNetInferencer.infer)."""
    shutil.copyfile(outputs["export"] / "sdk_compatible" / "model.onnx", outputs["export"] / "tao" / "model.onnx")
    with caplog.at_level(logging.ERROR):
        assert register_model.main(args(outputs)) == 2
    assert "tao/model.onnx of" in caplog.records[-1].getMessage()
    assert "has the SDK-compatible output conv2d_transpose_1/BiasAdd:0" in caplog.records[-1].getMessage()


def test_the_detectnet_experiment_ships_as_the_retrain_step_trained_it(tmp_path: Path) -> None:
    """The engine step's Experiment is the template's (epochs 50, batch 32, no validation data): the retrain
    step's own copy replaces it, and loads as TF1's spec loader and TAO Deploy's schema read it."""
    outputs = facenet_outputs(tmp_path)
    tree = prototext.parse(engine_spec(160, 96))
    tree.set("training_config.num_epochs", 80)
    tree.set("training_config.batch_size_per_gpu", 16)
    for field, split in (("data_sources", "train"), ("validation_data_source", "val")):
        source = prototext.Message()
        source.add("tfrecords_path", f"{NODE}/tfrecords_{split}/tfrecords/*")
        source.add("image_directory_path", f"{NODE}/kitti_{split}")
        tree.get("dataset_config").add(field, source)
    retrained = tmp_path / "retrain"
    (retrained / "specs").mkdir(parents=True)
    (retrained / "specs" / "facenet_retrain_resnet18_kitti.txt").write_text(prototext.format(tree))
    assert register_model.main(facenet_args(outputs, "--trained_model", str(retrained))) == 0
    specs = outputs["out"] / "specs"
    assert sorted(p.name for p in specs.iterdir()) == ["facenet_inference_kitti_tlt.txt",
                                                       "facenet_retrain_resnet18_kitti.txt"]
    shipped = prototext.parse((specs / "facenet_retrain_resnet18_kitti.txt").read_text())
    assert shipped.get("training_config.num_epochs") == 80 and shipped.get("training_config.batch_size_per_gpu") == 16
    assert shipped.get("dataset_config.validation_data_source.tfrecords_path") == "data/tfrecords_val/tfrecords/*"
    assert shipped.get("dataset_config.data_sources.image_directory_path") == "data/kitti_train"
    assert tf1_validator.validate(shipped, "Experiment", "x") == []
    assert detectnet_v2_schema.validate(shipped, "Experiment", "x") == []


def test_a_trained_model_without_its_experiment_is_refused(tmp_path: Path, caplog) -> None:
    outputs = facenet_outputs(tmp_path)
    (tmp_path / "retrain" / "specs").mkdir(parents=True)
    with caplog.at_level(logging.ERROR):
        assert register_model.main(facenet_args(outputs, "--trained_model", str(tmp_path / "retrain"))) == 2
    assert "holds no Experiment spec in specs/: connect the retrain step's output" in caplog.records[-1].getMessage()


def test_bodypose_specs_ship_with_the_pose_config_and_load_from_the_asset_folder(outputs, caplog) -> None:
    """TAO opens train_spec, pose_config_path and model_path as written: relative to where it runs."""
    assert register_model.main(args(outputs)) == 0
    out = outputs["out"]
    train = yaml.safe_load((out / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    assert train["dataloader"]["pose_config"]["pose_config_path"] == "specs/bpnet_18joints.json"
    infer = yaml.safe_load((out / "specs" / "infer_spec_retrained_strict.yaml").read_text())
    assert (infer["model_path"], infer["train_spec"]) == ("tao/model.engine", "specs/bpnet_retrain_m1_coco.yaml")
    assert bpnet_specs.inferencer_problems(infer, str(out), model_given=False) == []
    # Run anywhere else, the same spec does not load.
    assert bpnet_specs.inferencer_problems(infer, str(out / "specs"), model_given=True) == [
        f"train_spec 'specs/bpnet_retrain_m1_coco.yaml' is not a file (from {out / 'specs'})"]


def test_a_bodypose_asset_without_its_pose_config_is_refused(outputs, caplog) -> None:
    for folder in (outputs["export"], outputs["inference"]):
        (folder / "specs" / "bpnet_18joints.json").unlink()
    with caplog.at_level(logging.ERROR):
        assert register_model.main(args(outputs, "--specs", str(outputs["inference"]))) == 2
    assert "bpnet_18joints.json) is not among its specs" in caplog.records[-1].getMessage()
    assert list(outputs["out"].iterdir()) == []


def test_a_pruning_sweep_goes_into_the_card_its_readme_and_the_threshold_tag(outputs) -> None:
    from test_report import SWEEP

    report = json.loads((outputs["report"] / "report.json").read_text())
    (outputs["report"] / "report.json").write_text(json.dumps(dict(report, sweep=SWEEP)))
    assert register_model.main(args(outputs, "--model_name", "tao-bodypose")) == 0
    card = json.loads((outputs["out"] / "model_card.json").read_text())
    sweep = card["pruning_sweep"]
    assert sweep["thresholds"] == [0.05, 0.2, 0.6] and sweep["max_map_drop"] == 0.03
    assert sweep["chosen"] == SWEEP["chosen"] and sweep["unpruned"] == SWEEP["unpruned"]
    assert [(b["branch"], b["status"], b["value"], b["parameters"], b["model_bytes"]) for b in sweep["branches"]] == [
        (1, "ok", 0.49, 2_100_000, 8_400_000), (2, "ok", 0.48, 1_200_000, 4_800_000), (3, "failed", None, None, None)]
    assert sweep["branches"][2]["reason"] == "prune: TAO bpnet prune failed (exit 255)"
    assert card["tags"]["pruning_threshold"] == "0.2"
    readme = (outputs["out"] / "README.md").read_text()
    assert ("This model was pruned with threshold 0.2, chosen among 3 thresholds tried (0.05, 0.2, 0.6): the fewest "
            "parameters (1,200,000) of the 2 branches within max_map_drop 0.03 AP points. max_map_drop 0.03 AP "
            "points.") in readme
    assert "| 0.2 (chosen) | 0.48 | 1,200,000 | 4.8 | ok |" in readme
    assert "| 0.6 | - | - | - | failed: prune: TAO bpnet prune failed (exit 255) |" in readme


def test_without_a_sweep_the_card_has_no_pruning_sweep(outputs) -> None:
    assert register_model.main(args(outputs, "--model_name", "tao-bodypose")) == 0
    card = json.loads((outputs["out"] / "model_card.json").read_text())
    assert "pruning_sweep" not in card and "pruning_threshold" not in card["tags"]
    assert "Pruning sweep" not in (outputs["out"] / "README.md").read_text()
