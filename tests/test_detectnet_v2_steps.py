"""detectnet_v2 steps refuse bad input before TAO starts, and build TAO's command line by its rules."""

from pathlib import Path

import pytest
from PIL import Image

from tao_aml.simulate import invocations, use_standins
from tao_aml.steps.common import StepError
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.detectnet_v2 import dataset_convert, evaluate, prune, train
from tao_aml.steps.specs.spec_templates import SHIPPED
from tao_aml.steps.tao import command as tao

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "src" / "tao_aml" / "templates" / "facenet"


@pytest.fixture
def data(tmp_path: Path, monkeypatch) -> dict[str, Path]:
    """Folders laid out as the converter, dataset_convert and NGC steps leave them."""
    use_standins(monkeypatch.setenv, "tf1")
    folders = {}
    for split in ("train", "val"):
        kitti = tmp_path / f"kitti_{split}"
        (kitti / "images").mkdir(parents=True)
        (kitti / "labels").mkdir()
        Image.new("RGB", (160, 96)).save(kitti / "images" / "a.png")
        (kitti / "labels" / "a.txt").write_text("face 0.00 0 0.00 1 1 20 20 0 0 0 0 0 0 0\n")
        records = tmp_path / f"tfrecords_{split}"
        assert dataset_convert.main([
            "--spec_dir", str(SPECS), "--spec_file", f"facenet_tfrecords_kitti_{split}.txt",
            "--kitti_dir", str(kitti), "--output_dir", str(records),
        ]) == 0
        folders[f"{split}_kitti"], folders[f"{split}_tfrecords"] = kitti, records
    model = tmp_path / "pretrained"
    model.mkdir()
    (model / "model.tlt").write_bytes(b"weights")
    folders["model"] = model
    return folders


def train_args(data: dict[str, Path], results: Path, *extra: str) -> list[str]:
    return [
        "--spec_dir", str(SPECS), "--spec_file", "facenet_train_resnet18_kitti.txt",
        "--train_tfrecords", str(data["train_tfrecords"]), "--train_kitti", str(data["train_kitti"]),
        "--val_tfrecords", str(data["val_tfrecords"]), "--val_kitti", str(data["val_kitti"]),
        "--pretrained_model", str(data["model"]), "--results_dir", str(results),
        "--model_name", "resnet18_detector", "--key", "nvidia_tlt", "--image_width", "160",
        "--image_height", "96", "--classes", "face", "--epochs", "2", "--batch_size", "4", *extra,
    ]


def test_train_runs_tao_with_full_flags_and_task_first(data, tmp_path, monkeypatch) -> None:
    log = tmp_path / "tao.jsonl"
    monkeypatch.setenv("TAO_STANDIN_LOG", str(log))
    assert train.main(train_args(data, tmp_path / "results", "--gpus", "2")) == 0
    argv = invocations(log)[0]["argv"]
    assert argv[1] == "train"
    assert all(not a.startswith("-") or a.startswith("--") for a in argv[2:])
    assert argv[argv.index("--gpus") + 1] == "2"
    spec = (tmp_path / "results" / "specs" / "facenet_train_resnet18_kitti.txt").read_text()
    assert f'tfrecords_path: "{data["train_tfrecords"]}/tfrecords/*"' in spec
    assert "batch_size_per_gpu: 4" in spec


@pytest.mark.parametrize(
    "override, message",
    [
        ("training_config.batch_size_per_gpuu=4", "batch_size_per_gpuu"),
        ("training_config.num_epochs=1.5", "training_config.num_epochs"),
        ("postprocessing_config.target_class_config[face].clustering_config.dbscan_min_samples=0.03",
         "dbscan_min_samples"),
        ("model_config.pretrained_model_file=/elsewhere/model.tlt", "is a path the step writes at run time"),
    ],
)
def test_bad_override_is_refused_before_tao_starts(data, tmp_path, monkeypatch, caplog, override, message) -> None:
    log = tmp_path / "tao.jsonl"
    monkeypatch.setenv("TAO_STANDIN_LOG", str(log))
    assert train.main(train_args(data, tmp_path / "results", "--overrides", override)) == 2
    assert message in caplog.text
    assert invocations(log) == []


def test_missing_tfrecords_names_the_folder(data, tmp_path, caplog) -> None:
    for shard in (data["val_tfrecords"] / "tfrecords").iterdir():
        shard.unlink()
    args = [
        "--spec_dir", str(SPECS), "--spec_file", "facenet_train_resnet18_kitti.txt",
        "--val_tfrecords", str(data["val_tfrecords"]), "--val_kitti", str(data["val_kitti"]),
        "--model", str(data["model"]), "--results_dir", str(tmp_path / "r"), "--key", "k",
        "--image_width", "160", "--image_height", "96", "--classes", "face",
    ]
    assert evaluate.main(args) == 2
    assert f"{data['val_tfrecords']} has no TFRecords in tfrecords/" in caplog.text


def test_model_folder_with_two_models_is_refused(data, tmp_path, caplog) -> None:
    (data["model"] / "other.hdf5").write_bytes(b"x")
    args = ["--model", str(data["model"]), "--output_dir", str(tmp_path / "p"), "--key", "k",
            "--pruning_threshold", "0.1"]
    assert prune.main(args) == 2
    assert "holds several models (model.tlt, other.hdf5)" in caplog.text


def test_prune_threshold_out_of_range(data, tmp_path, caplog) -> None:
    args = ["--model", str(data["model"]), "--output_dir", str(tmp_path / "p"), "--key", "k",
            "--pruning_threshold", "1.5"]
    assert prune.main(args) == 2
    assert "--pruning_threshold must be in [0, 1)" in caplog.text


@pytest.mark.parametrize("value", ["/data/my images", "k$y", "a;b", "x`y`", "*.png"])
def test_values_tao_would_mangle_are_refused(value: str) -> None:
    with pytest.raises(StepError, match="unquoted bash -c"):
        tao.build_command("detectnet_v2", "train", [("--results_dir", value)])


def test_key_is_masked_in_refusals_and_logs() -> None:
    with pytest.raises(StepError) as err:
        tao.build_command("detectnet_v2", "train", [("--key", "s3cret key")])
    assert "s3cret" not in str(err.value)
    argv = tao.build_command("detectnet_v2", "train", [("--key", "s3cret"), ("--enable_determinism", True)])
    assert argv == ["detectnet_v2", "train", "--key", "s3cret", "--enable_determinism"]
    assert "s3cret" not in tao.printable(argv)


def test_short_flags_are_not_built() -> None:
    with pytest.raises(ValueError, match="spelled in full"):
        tao.build_command("detectnet_v2", "train", [("-k", "x")])


def test_tao_not_on_path_says_which_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StepError, match="must run in the TAO 5.0 environment"):
        tao.run(["detectnet_v2", "train"], str(tmp_path))


def test_without_spec_dir_the_shipped_template_is_read(tmp_path, monkeypatch, caplog) -> None:
    use_standins(monkeypatch.setenv, "tf1")
    kitti = tmp_path / "kitti"
    (kitti / "images").mkdir(parents=True)
    (kitti / "labels").mkdir()
    Image.new("RGB", (160, 96)).save(kitti / "images" / "a.png")
    (kitti / "labels" / "a.txt").write_text("face 0.00 0 0.00 1 1 20 20 0 0 0 0 0 0 0\n")
    args = ["--spec_file", "facenet_tfrecords_kitti_val.txt", "--kitti_dir", str(kitti)]
    caplog.set_level("INFO")
    assert dataset_convert.main([*args, "--output_dir", str(tmp_path / "shipped")]) == 0
    assert f"from template {SHIPPED}/facenet/facenet_tfrecords_kitti_val.txt" in caplog.text
    assert (tmp_path / "shipped" / "specs" / "facenet_tfrecords_kitti_val.txt").is_file()
    # A connected specs folder wins over the shipped one.
    edited = tmp_path / "edited"
    edited.mkdir()
    template = (SPECS / "facenet_tfrecords_kitti_val.txt").read_text()
    (edited / "facenet_tfrecords_kitti_val.txt").write_text(template.replace("val_split: 10", "val_split: 20"))
    assert dataset_convert.main([*args, "--spec_dir", str(edited), "--output_dir", str(tmp_path / "own")]) == 0
    assert f"from template {edited}/facenet_tfrecords_kitti_val.txt" in caplog.text
    assert "val_split: 20" in (tmp_path / "own" / "specs" / "facenet_tfrecords_kitti_val.txt").read_text()


def test_a_spec_file_shipped_nowhere_is_refused_with_what_is_shipped(data, tmp_path, caplog) -> None:
    args = train_args(data, tmp_path / "results")
    args[:4] = ["--spec_file", "facenet_train_resnet34_kitti.txt"]
    assert train.main(args) == 2
    assert f"template facenet_train_resnet34_kitti.txt not found in the templates shipped in {SHIPPED}" in caplog.text
    assert "facenet/: README.md, facenet_inference_kitti_tlt.txt," in caplog.text
    assert "or connect the specs input (--spec_dir)" in caplog.text


@pytest.fixture
def engine(tmp_path: Path, monkeypatch) -> Path:
    """An engine step output: the stand-in's engine and the engine.json the step writes."""

    folder = tmp_path / "engine"
    folder.mkdir()
    (folder / "model.engine").write_text('{"kind": "engine", "data_type": "fp16", "max_batch_size": 2}')
    engine_info.write_engine_info(str(folder), str(folder / "model.engine"), "fp16", 2, None)
    use_standins(monkeypatch.setenv, "deploy", tmp_path / "tao.jsonl")
    return folder


def engine_args(data: dict[str, Path], engine: Path, results: Path, *extra: str) -> list[str]:
    return ["--spec_dir", str(SPECS), "--spec_file", "facenet_retrain_resnet18_kitti.txt", "--engine", str(engine),
            "--kitti", str(data["val_kitti"]), "--image_width", "160", "--image_height", "96", "--classes", "face",
            "--results_dir", str(results), *extra]


def test_engine_evaluate_reports_taos_ap_fractions_in_percent(data, engine, tmp_path) -> None:
    import json

    from tao_aml.steps.deploy import detectnet_v2_evaluate as engine_evaluate

    results = tmp_path / "ev"
    assert engine_evaluate.main(engine_args(data, engine, results)) == 0
    [call] = invocations(tmp_path / "tao.jsonl")
    assert call["kind"] == "deploy" and call["argv"][1] == "evaluate" and call["ok"]
    assert call["argv"][call["argv"].index("--batch_size") + 1] == "1"
    metrics = json.loads((results / "step_metrics.json").read_text())["metrics"]
    assert metrics["eval/mAP"] == 50.0 and metrics["eval/AP_face"] == 50.0  # TAO Deploy wrote 0.5
    assert json.loads((results / "engine.json").read_text())["data_type"] == "fp16"


def test_engine_steps_refuse_what_tao_deploy_would_not_run(data, engine, tmp_path, caplog) -> None:
    import logging
    import shutil

    from tao_aml.steps.deploy import detectnet_v2_evaluate as engine_evaluate
    from tao_aml.steps.deploy import detectnet_v2_inference as engine_inference

    with caplog.at_level(logging.ERROR):
        assert engine_evaluate.main(engine_args(data, engine, tmp_path / "a", "--batch_size", "3")) == 2
        assert "larger than the engine's max_batch_size 2" in caplog.records[-1].getMessage()
        assert engine_evaluate.main(engine_args(data, engine, tmp_path / "b", "--batch_size", "2")) == 2
        assert "holds 1 labelled images, fewer than --batch_size 2" in caplog.records[-1].getMessage()
        shutil.rmtree(data["val_kitti"] / "labels")
        assert engine_evaluate.main(engine_args(data, engine, tmp_path / "c")) == 2
        assert "has no labels/ folder" in caplog.records[-1].getMessage()
        (engine / "engine.json").unlink()
        assert engine_inference.main([
            "--spec_dir", str(SPECS), "--spec_file", "facenet_inference_kitti_tlt.txt", "--engine", str(engine),
            "--images", str(data["val_kitti"]), "--image_width", "160", "--image_height", "96", "--classes", "face",
            "--results_dir", str(tmp_path / "d")]) == 2
        assert "has no engine.json" in caplog.records[-1].getMessage()
    assert invocations(tmp_path / "tao.jsonl") == []  # TAO never started
