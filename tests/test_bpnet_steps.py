"""bpnet spec rules and step inputs: each broken rule or bad input is refused before TAO starts."""

import json
from pathlib import Path

import pytest
import yaml

from coco_fixtures import make_coco
from tao_aml.repo.spec_check import check_spec
from tao_aml.simulate import invocations, use_standins
from tao_aml.steps.bpnet import dataset_convert, export, inference, specs, train
from tao_aml.steps.specs.spec_templates import SHIPPED

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
    use_standins(monkeypatch.setenv, "tf1", tmp_path / "tao.jsonl")
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
    use_standins(monkeypatch.setenv, "tf1", tmp_path / "tao.jsonl")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bpnet_model.hdf5").write_text("weights")
    caplog.set_level("INFO")
    code = export.main(["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file",
                        "bpnet_retrain_m1_coco.yaml", "--model", str(tmp_path / "model"), "--output_dir",
                        str(tmp_path / "out"), "--key", "k", "--data_type", "fp16"])
    assert code == 0, caplog.text
    for name in ("infer_spec_retrained_strict.yaml", "bpnet_retrain_m1_coco.yaml"):
        assert f"from template {SHIPPED}/bodypose/{name}" in caplog.text
    assert f"{SHIPPED}/bodypose/bpnet_18joints.json" in caplog.text
    train_spec = yaml.safe_load((tmp_path / "out" / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    # The pose config travels with the specs that name it.
    copied = tmp_path / "out" / "specs" / "bpnet_18joints.json"
    assert train_spec["dataloader"]["pose_config"]["pose_config_path"] == str(copied)
    assert copied.read_text() == (SPECS / "bpnet_18joints.json").read_text()
    assert [call["task"] for call in invocations(tmp_path / "tao.jsonl")] == ["export", "export"]


def export_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file", "bpnet_retrain_m1_coco.yaml",
            "--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "out"), "--key", "k", *extra]


def test_export_writes_taos_model_and_the_sdk_compatible_one(tmp_path: Path, monkeypatch, caplog) -> None:
    """bpnet export twice: without --sdk_compatible_model for TAO's evaluate and inference, with it for
    DeepStream and Triton; INT8 calibrates the second from the tensorfile the first wrote."""
    import numpy as np
    import onnx
    import onnxruntime

    use_standins(monkeypatch.setenv, "tf1", tmp_path / "tao.jsonl")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bpnet_model.hdf5").write_text("weights")
    (tmp_path / "cal" / "images").mkdir(parents=True)
    for index in range(4):
        (tmp_path / "cal" / "images" / f"{index}.jpg").write_bytes(b"jpeg")
    assert export.main(export_argv(tmp_path, "--cal_images", str(tmp_path / "cal"), "--cal_batch_size", "2")) == 0
    out = tmp_path / "out"
    calls = [call["argv"] for call in invocations(tmp_path / "tao.jsonl")]
    assert ["--sdk_compatible_model" in argv for argv in calls] == [False, True]
    assert "--upsample_ratio" not in calls[0] and calls[1][calls[1].index("--upsample_ratio") + 1] == "4"
    assert [argv[argv.index("--cal_data_file") + 1] for argv in calls] == [str(out / "tao" / "cal.tensorfile")] * 2
    assert [argv[argv.index("--output_file") + 1] for argv in calls] == [
        str(out / "tao" / "model.onnx"), str(out / "sdk_compatible" / "model.onnx")]
    # The ONNX height and width are dynamic, as TAO's are; run at the export size, the heads come out at
    # stride 8, the SDK-compatible PAF upsampled x4.
    shapes = {}
    for name in ("tao", "sdk_compatible"):
        model = onnx.load(str(out / name / "model.onnx"))
        assert [d.dim_value or d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim][3] == 3
        session = onnxruntime.InferenceSession(str(out / name / "model.onnx"), providers=["CPUExecutionProvider"])
        results = session.run(None, {"input_1:0": np.zeros((1, 288, 384, 3), np.float32)})
        shapes[name] = [(o.name, list(r.shape)) for o, r in zip(session.get_outputs(), results, strict=True)]
        info = json.loads((out / name / "engine.json").read_text())
        assert info["engine_file"] == "model.engine" and info["max_batch_size"] == 2
        assert info["input_dims"] == [288, 384, 3] and (out / name / "cal.bin").is_file()
    assert shapes == {"tao": [("paf_out/BiasAdd:0", [1, 36, 48, 38]), ("heatmap_out/BiasAdd:0", [1, 36, 48, 19])],
                      "sdk_compatible": [("conv2d_transpose_1/BiasAdd:0", [1, 144, 192, 38]),
                                         ("heatmap_out/BiasAdd:0", [1, 36, 48, 19])]}
    assert json.loads((out / "model_info.json").read_text())["model_file"] == "tao/model.engine"
    # A rerun on the same output starts clean (TAO would refuse the existing exports and caches).
    assert export.main(export_argv(tmp_path, "--cal_images", str(tmp_path / "cal"), "--cal_batch_size", "2")) == 0


def test_steps_after_export_run_taos_model_with_the_spec_it_was_trained_with(tmp_path: Path, coco: Path,
                                                                             monkeypatch) -> None:
    """evaluate and inference take tao/model.engine (model_info.json) and the train spec the export passed on,
    which is the retrain step's (its epochs and overrides), not the template."""
    use_standins(monkeypatch.setenv, "tf1", tmp_path / "tao.jsonl")
    retrained = tmp_path / "model"
    (retrained / "specs").mkdir(parents=True)
    (retrained / "bpnet_model.hdf5").write_text("weights")
    as_trained = yaml.safe_load((SPECS / "bpnet_retrain_m1_coco.yaml").read_text())
    as_trained["num_epoch"], as_trained["dataloader"]["batch_size"] = 35, 3
    as_trained["dataloader"]["pose_config"]["pose_config_path"] = "/other/node/specs/bpnet_18joints.json"
    (retrained / "specs" / "bpnet_retrain_m1_coco.yaml").write_text(yaml.safe_dump(as_trained))
    (retrained / "specs" / "bpnet_18joints.json").write_text((SPECS / "bpnet_18joints.json").read_text())
    assert export.main(export_argv(tmp_path, "--data_type", "fp16", "--train_overrides", "num_epoch=10")) == 0
    out = tmp_path / "out"
    passed_on = yaml.safe_load((out / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    assert (passed_on["num_epoch"], passed_on["dataloader"]["batch_size"]) == (35, 3)
    assert passed_on["dataloader"]["pose_config"]["pose_config_path"] == str(out / "specs" / "bpnet_18joints.json")
    code = inference.main(["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file",
                           "bpnet_retrain_m1_coco.yaml", "--coco_root", str(coco), "--annotations", str(coco),
                           "--model", str(out), "--results_dir", str(tmp_path / "inference"), "--key", "k",
                           "--input_height", "288", "--input_width", "384"])
    assert code == 0
    argv = invocations(tmp_path / "tao.jsonl")[-1]["argv"]
    assert argv[argv.index("--model_filename") + 1] == str(out / "tao" / "model.engine")
    used = yaml.safe_load((tmp_path / "inference" / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    assert used["num_epoch"] == 35


def test_taos_inferencer_refuses_the_sdk_compatible_engine(tmp_path: Path, coco: Path, monkeypatch, caplog) -> None:
    use_standins(monkeypatch.setenv, "tf1", tmp_path / "tao.jsonl")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bpnet_model.hdf5").write_text("weights")
    assert export.main(export_argv(tmp_path, "--data_type", "fp16")) == 0
    (tmp_path / "out" / "model_info.json").write_text('{"model_file": "sdk_compatible/model.engine"}')
    code = inference.main(["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file",
                           "bpnet_retrain_m1_coco.yaml", "--coco_root", str(coco), "--annotations", str(coco),
                           "--model", str(tmp_path / "out"), "--results_dir", str(tmp_path / "inference"),
                           "--key", "k", "--input_height", "288", "--input_width", "384"])
    assert code != 0 and "use --sdk_compatible_model only for deployment" in caplog.text


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


def test_inference_on_an_engine_needs_its_input_size(tmp_path: Path, caplog) -> None:
    """bpnet inference runs the engine through the same inferencer as evaluate: refused without its size too."""
    import logging

    from tao_aml.steps.bpnet import inference

    exported = tmp_path / "export"
    exported.mkdir()
    (exported / "model.engine").write_text("engine")
    argv = ["--spec_file", "infer_spec_retrained_strict.yaml", "--train_spec_file", "bpnet_retrain_m1_coco.yaml",
            "--coco_root", str(tmp_path / "coco"), "--annotations", str(tmp_path / "ann"), "--model", str(exported),
            "--key", "nvidia_tlt", "--results_dir", str(tmp_path / "r")]
    with caplog.at_level(logging.ERROR):
        assert inference.main(argv) == 2
        assert "is a TensorRT engine: give its input size" in caplog.records[-1].getMessage()
    assert not (tmp_path / "r").exists()
