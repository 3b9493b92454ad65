"""bpnet spec rules and step inputs: each broken rule or bad input is refused before TAO starts."""

import json
from pathlib import Path

import pytest
import yaml

from coco_fixtures import make_coco
from standins import invocations, use_standins
from tao_aml.spec_check import check_spec
from tao_aml.steps.bpnet import dataset_convert, export, inference, specs, train
from tao_aml.steps.spec_templates import SHIPPED

SPECS = Path(__file__).resolve().parents[1] / "src" / "tao_aml" / "templates" / "bodypose"
TRAIN_SPEC = SPECS / "bpnet_train_m1_coco.yaml"


def test_templates_pass_and_hold_no_paths() -> None:
    for name, root in (("bpnet_train_m1_coco.yaml", specs.TRAIN), ("bpnet_retrain_m1_coco.yaml", specs.TRAIN),
                       ("infer_spec.yaml", specs.INFER), ("infer_spec_retrained_strict.yaml", specs.INFER),
                       ("coco_spec.json", specs.COCO)):
        assert check_spec(SPECS / name, root) == []


@pytest.mark.parametrize("overrides, message", [
    (["num_epoch=7"], "num_epoch 7 is not a multiple of checkpoint_n_epoch 5"),
    (["checkpoint_n_epoch=0"], "must be whole numbers of at least 1"),
    (["num_epoch=2.5"], "expected a whole number, like the template's 20"),
    (["dataloader.batch_sise=4"], "batch_sise is not a field of dataloader; valid fields: __class_name__, batch_size"),
    (["inference_spec=/x.yaml"], "inference_spec is a path the step writes at run time"),
    (["dataloader.dataset_config.train_records_path=[a]"], "train_records_path is a path the step writes"),
])
def test_train_template_overrides_are_checked_offline(overrides, message) -> None:
    found = check_spec(TRAIN_SPEC, specs.TRAIN, overrides)
    assert len(found) == 1 and message in found[0]


def test_a_template_with_an_absolute_path_is_refused(tmp_path: Path) -> None:
    spec = yaml.safe_load(TRAIN_SPEC.read_text())
    spec["pretrained_weights"] = "/workspace/model.tlt"
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    assert "holds absolute paths in pretrained_weights" in check_spec(tmp_path / "t.yaml", specs.TRAIN)[0]


def written_train_spec(tmp_path: Path, root: str, coco_root: str, records: list) -> dict:
    (tmp_path / "records").mkdir(exist_ok=True)
    (tmp_path / "records" / "train-fold-000-of-001").write_text("")
    (tmp_path / "coco.json").write_text(json.dumps({"root_directory_path": coco_root}))
    (tmp_path / "infer.yaml").write_text("input_shape: [1, 1]\n")
    spec = yaml.safe_load(TRAIN_SPEC.read_text())
    spec["inference_spec"] = str(tmp_path / "infer.yaml")
    spec["dataloader"]["pose_config"]["pose_config_path"] = str(SPECS / "bpnet_18joints.json")
    dataset = spec["dataloader"]["dataset_config"]
    dataset.update(root_data_path=root, train_records_folder_path=str(tmp_path / "records"),
                   train_records_path=records, dataset_specs={"coco": str(tmp_path / "coco.json")})
    return spec


@pytest.mark.parametrize("root, coco_root, records, message", [
    ("/data", "/data", ["train-fold-000-of-001"], "root_data_path '/data' must end with '/'"),
    ("/data/", "/other/", ["train-fold-000-of-001"], "root_data_path '/data/' differs from root_directory_path"),
    ("/data/", "/data/", ["train-fold-001-of-002"], "names train-fold-001-of-002 which dataset_convert did not write"),
    ("/data/", "/data/", [], "train_records_path is empty"),
])
def test_run_time_rules(tmp_path: Path, root, coco_root, records, message) -> None:
    found = specs.problems(written_train_spec(tmp_path, root, coco_root, records), specs.TRAIN, resolve_paths=True)
    assert len(found) == 1 and message in found[0]


def test_run_time_rules_need_paths_that_resolve(tmp_path: Path) -> None:
    spec = written_train_spec(tmp_path, "/d/", "/d/", ["train-fold-000-of-001"])
    spec["dataloader"]["pose_config"]["pose_config_path"] = str(tmp_path / "nowhere.json")
    found = specs.problems(spec, specs.TRAIN, resolve_paths=True)
    assert found == ["dataloader.pose_config.pose_config_path '{}' does not resolve to a file on this node".format(
        tmp_path / "nowhere.json")]
    assert specs.problems({"input_shape": [288, 384], "train_spec": None}, specs.INFER, True) == [
        "train_spec None does not resolve to a file on this node"]


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    root = make_coco(tmp_path / "coco", train=4, val=2)
    return root


def test_train_refuses_a_dataset_without_tfrecords(tmp_path: Path, coco: Path, caplog, monkeypatch) -> None:
    use_standins(monkeypatch, "tf1", tmp_path / "tao.jsonl")
    (tmp_path / "empty").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.tlt").write_text("weights")
    code = train.main(["--spec_dir", str(SPECS), "--spec_file", TRAIN_SPEC.name, "--infer_spec_file",
                       "infer_spec.yaml", "--coco_root", str(coco), "--annotations", str(coco),
                       "--train_dataset", str(tmp_path / "empty"), "--val_dataset", str(tmp_path / "empty"),
                       "--pretrained_model", str(tmp_path / "model"), "--results_dir", str(tmp_path / "r"),
                       "--key", "k", "--epochs", "5", "--batch_size", "1"])
    assert code == 2
    assert "holds no TFRecords in tfrecords/: connect the output of the bpnet dataset_convert step" in caplog.text
    assert invocations(tmp_path / "tao.jsonl") == []


def test_dataset_convert_refuses_missing_annotations(tmp_path: Path, coco: Path, caplog) -> None:
    code = dataset_convert.main(["--coco_root", str(coco), "--annotations", str(tmp_path), "--spec_dir",
                                 str(SPECS), "--split", "train", "--output_dir", str(tmp_path / "out")])
    assert code == 2 and "has no annotations/person_keypoints_train2017.json" in caplog.text


def test_export_int8_needs_calibration_images(tmp_path: Path, caplog) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bpnet_model.hdf5").write_text("weights")
    code = export.main(["--spec_dir", str(SPECS), "--spec_file", "infer_spec_retrained_strict.yaml",
                        "--train_spec_file", "bpnet_retrain_m1_coco.yaml", "--model", str(tmp_path / "model"),
                        "--output_dir", str(tmp_path / "out"), "--key", "k"])
    assert code == 2 and "INT8 needs calibration images: --cal_images must hold images/" in caplog.text


def test_inference_needs_both_input_dimensions(tmp_path: Path, coco: Path, caplog) -> None:
    code = inference.main(["--spec_dir", str(SPECS), "--spec_file", "infer_spec.yaml", "--train_spec_file",
                           TRAIN_SPEC.name, "--coco_root", str(coco), "--annotations", str(coco), "--model",
                           str(tmp_path), "--results_dir", str(tmp_path / "r"), "--key", "k",
                           "--input_height", "288"])
    assert code == 2 and "give both --input_height and --input_width, or neither" in caplog.text


def test_without_spec_dir_every_template_comes_from_the_shipped_folder(tmp_path: Path, monkeypatch, caplog) -> None:
    use_standins(monkeypatch, "tf1", tmp_path / "tao.jsonl")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bpnet_model.hdf5").write_text("weights")
    caplog.set_level("INFO")
    code = export.main(["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file",
                        "bpnet_retrain_m1_coco.yaml", "--model", str(tmp_path / "model"), "--output_dir",
                        str(tmp_path / "out"), "--key", "k", "--data_type", "fp16"])
    assert code == 0, caplog.text
    for name in ("infer_spec_retrained_strict.yaml", "bpnet_retrain_m1_coco.yaml"):
        assert f"from template {SHIPPED}/bodypose/{name}" in caplog.text
    train_spec = yaml.safe_load((tmp_path / "out" / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    assert train_spec["dataloader"]["pose_config"]["pose_config_path"] == f"{SHIPPED}/bodypose/bpnet_18joints.json"
    assert [call["task"] for call in invocations(tmp_path / "tao.jsonl")] == ["export"]


def test_dataset_convert_finds_the_folder_by_its_coco_spec(tmp_path: Path, coco: Path, caplog) -> None:
    code = dataset_convert.main(["--coco_root", str(coco), "--annotations", str(coco), "--coco_spec_file",
                                 "coco_spec_2014.json", "--split", "train", "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert f"spec template coco_spec_2014.json not found in the templates shipped in {SHIPPED}" in caplog.text
    assert "bodypose/: README.md, bpnet_18joints.json, bpnet_retrain_m1_coco.yaml," in caplog.text


def test_evaluating_an_engine_needs_its_input_size(tmp_path: Path, caplog) -> None:
    """TAO 5.0 bpnet evaluate runs a .engine at the engine's own shape: the step asks for it before TAO starts."""
    import logging

    from tao_aml.steps.bpnet import evaluate

    exported = tmp_path / "export"
    exported.mkdir()
    (exported / "model.engine").write_text("engine")
    (exported / "model.onnx").write_text("onnx")
    base = ["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file", "bpnet_retrain_m1_coco.yaml",
            "--coco_root", str(tmp_path / "coco"), "--annotations", str(tmp_path / "ann"), "--model", str(exported),
            "--key", "nvidia_tlt", "--results_dir", str(tmp_path / "r")]
    with caplog.at_level(logging.ERROR):
        assert evaluate.main(base) == 2
        assert "is a TensorRT engine: give its input size" in caplog.records[-1].getMessage()
        assert evaluate.main([*base, "--input_height", "288"]) == 2
        assert "give both --input_height and --input_width" in caplog.records[-1].getMessage()
