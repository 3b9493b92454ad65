"""The TAO 5.0 stand-ins accept TAO's real command lines, write what TAO writes, and refuse the rest."""

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from standins import invocations, standin_env, status_lines

KEY = "nvidia_tlt"
FRAMES = ["000001", "000002", "000003", "000004"]


def run(tmp_path: Path, kind: str, family: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run a stand-in found on PATH, the way a step runs TAO."""
    return subprocess.run(
        [family, *args],
        env=standin_env(kind, log=tmp_path / "tao.jsonl", **env),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def passed(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Execution status: PASS" in result.stdout
    return result


# --- detectnet_v2 data and specs --------------------------------------------------------------
def kitti(root: Path) -> Path:
    """A tiny KITTI folder: image/*.png and label/*.txt with one face each."""
    for name in FRAMES:
        (root / "image").mkdir(parents=True, exist_ok=True)
        (root / "label").mkdir(exist_ok=True)
        Image.new("RGB", (64, 48)).save(root / "image" / f"{name}.png")
        (root / "label" / f"{name}.txt").write_text(
            "face 0.00 0 0.00 4.00 5.00 30.00 40.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00\n"
        )
    return root


def export_spec(path: Path, root: Path, shards: int = 2) -> Path:
    path.write_text(f"""kitti_config {{
  root_directory_path: "{root}"
  image_dir_name: "image"
  label_dir_name: "label"
  image_extension: ".png"
  partition_mode: "random"
  num_partitions: 2
  val_split: 0
  num_shards: {shards}
}}
image_directory_path: "{root}"
""")
    return path


def experiment_spec(
    path: Path, records: str, root: Path, model: Path, epochs: int = 4, load_graph: bool = False
) -> Path:
    path.write_text(f"""random_seed: 42
dataset_config {{
  data_sources {{
    tfrecords_path: "{records}"
    image_directory_path: "{root}"
  }}
  image_extension: "png"
  target_class_mapping {{ key: "face" value: "face" }}
  validation_data_source {{
    tfrecords_path: "{records}"
    image_directory_path: "{root}"
  }}
}}
augmentation_config {{ preprocessing {{ output_image_width: 736 output_image_height: 416 }} }}
postprocessing_config {{ target_class_config {{ key: "face" value {{ clustering_config {{
  coverage_threshold: 0.005 dbscan_eps: 0.3 dbscan_min_samples: 1 }} }} }} }}
model_config {{
  pretrained_model_file: "{model}"
  load_graph: {str(load_graph).lower()}
  num_layers: 18
  arch: "resnet"
}}
evaluation_config {{ validation_period_during_training: 10 first_validation_epoch: 1 }}
cost_function_config {{ target_classes {{ name: "face" class_weight: 1.0 }} }}
training_config {{
  batch_size_per_gpu: 2
  num_epochs: {epochs}
  checkpoint_interval: 1
  learning_rate {{ soft_start_annealing_schedule {{ min_learning_rate: 5e-06 max_learning_rate: 5e-04
    soft_start: 0.1 annealing: 0.7 }} }}
}}
bbox_rasterizer_config {{ deadzone_radius: 0.4 }}
""")
    return path


def inference_spec(path: Path, model: Path) -> Path:
    path.write_text(f"""inferencer_config {{
  target_classes: "face"
  image_width: 736
  image_height: 416
  image_channels: 3
  batch_size: 1
  tlt_config {{ model: "{model}" }}
}}
bbox_handler_config {{
  kitti_dump: true
  disable_overlay: false
  classwise_bbox_handler_config {{ key: "face" value {{ output_map: "face" }} }}
}}
""")
    return path


@pytest.fixture()
def dn(tmp_path: Path) -> dict[str, Path]:
    """Dataset, converted TFRecords, pretrained model and train spec of a FaceNet-shaped run."""
    root = kitti(tmp_path / "data" / "training")
    pretrained = tmp_path / "facenet" / "model.tlt"
    pretrained.parent.mkdir()
    pretrained.write_bytes(b"encrypted")
    passed(
        run(
            tmp_path,
            "tf1",
            "detectnet_v2",
            "dataset_convert",
            "--dataset_export_spec",
            str(export_spec(tmp_path / "convert.txt", root)),
            "--output_filename",
            str(tmp_path / "tfrecords" / "train"),
            "--results_dir",
            str(tmp_path / "convert"),
        )
    )
    spec = experiment_spec(tmp_path / "train.txt", str(tmp_path / "tfrecords" / "train*"), root, pretrained)
    return {"root": root, "pretrained": pretrained, "spec": spec}


def train(tmp_path: Path, spec: Path, results: Path, **env: str) -> subprocess.CompletedProcess:
    return run(
        tmp_path,
        "tf1",
        "detectnet_v2",
        "train",
        "--experiment_spec_file",
        str(spec),
        "--results_dir",
        str(results),
        "--key",
        KEY,
        "--model_name",
        "resnet18_detector",
        "--gpus",
        "2",
        "--gpu_index",
        "0",
        "1",
        "--use_amp",
        **env,
    )


# --- detectnet_v2, TF1 container ---------------------------------------------------------------
def test_dataset_convert_writes_tao_shard_names_listing_frames(tmp_path: Path, dn: dict[str, Path]) -> None:
    # val_split 0 leaves fold 0 empty and TAO drops empty folds, so the data lands in fold 000 of 002.
    shards = sorted(p.name for p in (tmp_path / "tfrecords").iterdir())
    assert shards == [
        "train-fold-000-of-002-shard-00000-of-00002",
        "train-fold-000-of-002-shard-00001-of-00002",
    ]
    frames = [f["id"] for s in shards for f in json.loads((tmp_path / "tfrecords" / s).read_text())["frames"]]
    assert sorted(frames) == [f"image/{name}" for name in FRAMES]
    lines = status_lines(tmp_path / "convert")
    assert lines[0]["status"] == "STARTED" and lines[-1]["status"] == "SUCCESS"


def test_dataset_convert_refuses_labels_that_are_not_kitti(tmp_path: Path) -> None:
    root = kitti(tmp_path / "data")
    (root / "label" / "000002.txt").write_text("face 4 5 30 40\n")
    result = run(
        tmp_path,
        "tf1",
        "detectnet_v2",
        "dataset_convert",
        "--dataset_export_spec",
        str(export_spec(tmp_path / "c.txt", root)),
        "--output_filename",
        str(tmp_path / "tf" / "x"),
        "--results_dir",
        str(tmp_path / "r"),
    )
    assert result.returncode == 255 and "15 fields" in result.stderr
    assert status_lines(tmp_path / "r")[-1]["status"] == "FAILURE"


def test_facenet_chain_train_evaluate_prune_retrain_infer_export(tmp_path: Path, dn: dict[str, Path]) -> None:
    results = tmp_path / "train"
    out = passed(train(tmp_path, dn["spec"], results)).stdout
    assert "resuming" not in out
    assert (results / "weights" / "resnet18_detector.hdf5").is_file()
    assert sorted(p.name for p in results.glob("model.epoch-*")) == sorted(
        f"model.epoch-{e}.{x}" for e in range(1, 5) for x in ("ckzip", "hdf5")
    )
    lines = status_lines(results)
    assert [line["status"] for line in lines][0] == "STARTED" and lines[-1]["status"] == "SUCCESS"
    running = [line for line in lines if "epoch" in line]
    assert [line["epoch"] for line in running] == [0, 1, 2, 3]
    assert {"max_epoch", "time_per_epoch", "eta"} <= set(running[0])
    assert set(running[0]["graphical"]) == {"loss", "learning_rate"}

    model = results / "weights" / "resnet18_detector.hdf5"
    passed(
        run(
            tmp_path,
            "tf1",
            "detectnet_v2",
            "evaluate",
            "--experiment_spec",
            str(dn["spec"]),
            "--model_path",
            str(model),
            "--results_dir",
            str(tmp_path / "eval"),
            "--key",
            KEY,
        )
    )
    metrics = [line for line in status_lines(tmp_path / "eval") if "kpi" in line][0]
    assert set(metrics["kpi"]) == {"validation cost", "mean average precision"}
    assert set(metrics["categorical"]["average_precision"]) == {"face"}

    passed(
        run(
            tmp_path,
            "tf1",
            "detectnet_v2",
            "prune",
            "--model",
            str(model),
            "--output_file",
            str(tmp_path / "pruned" / "model_pruned"),
            "--equalization_criterion",
            "union",
            "--pruning_threshold",
            "0.0000052",
            "--key",
            KEY,
            "--results_dir",
            str(tmp_path / "prune"),
        )
    )
    pruned = tmp_path / "pruned" / "model_pruned.hdf5"  # TAO appends .hdf5
    assert pruned.is_file() and status_lines(tmp_path / "prune")[-1]["status"] == "SUCCESS"

    retrain = experiment_spec(
        tmp_path / "retrain.txt", str(tmp_path / "tfrecords" / "train*"), dn["root"], pruned, load_graph=True
    )
    passed(train(tmp_path, retrain, tmp_path / "retrain"))

    passed(
        run(
            tmp_path,
            "tf1",
            "detectnet_v2",
            "inference",
            "--experiment_spec",
            str(inference_spec(tmp_path / "infer.txt", model)),
            "--image_dir",
            str(dn["root"] / "image"),
            "--results_dir",
            str(tmp_path / "infer"),
            "--key",
            KEY,
        )
    )
    assert sorted(p.name for p in (tmp_path / "infer" / "images_annotated").iterdir()) == [
        f"{n}.png" for n in FRAMES
    ]
    label = (tmp_path / "infer" / "labels" / "000001.txt").read_text().split()
    assert len(label) == 16 and label[0] == "face"

    onnx = tmp_path / "export" / "model.onnx"
    export = (
        "export",
        "--model",
        str(model),
        "--output_file",
        str(onnx),
        "--key",
        KEY,
        "--experiment_spec",
        str(dn["spec"]),
        "--gen_ds_config",
        "--results_dir",
        str(tmp_path / "export"),
    )
    passed(run(tmp_path, "tf1", "detectnet_v2", *export))
    assert onnx.is_file() and (onnx.parent / "labels.txt").read_text() == "face\n"
    assert (onnx.parent / "nvinfer_config.txt").is_file()
    again = run(tmp_path, "tf1", "detectnet_v2", *export)
    assert again.returncode == 255 and "already exists" in again.stderr


def test_deploy_builds_int8_engine_from_spec_images_then_infers_and_evaluates(
    tmp_path: Path, dn: dict[str, Path]
) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_text("onnx")
    engine, cache = tmp_path / "trt" / "model.engine", tmp_path / "trt" / "cal.bin"
    passed(
        run(
            tmp_path,
            "deploy",
            "detectnet_v2",
            "gen_trt_engine",
            "--model_path",
            str(onnx),
            "--experiment_spec",
            str(dn["spec"]),
            "--data_type",
            "int8",
            "--batches",
            "2",
            "--batch_size",
            "2",
            "--max_batch_size",
            "2",
            "--engine_file",
            str(engine),
            "--cal_cache_file",
            str(cache),
            "--results_dir",
            str(tmp_path / "gen"),
        )
    )
    assert engine.is_file() and cache.is_file()
    assert [line["status"] for line in status_lines(tmp_path / "gen")] == ["STARTED", "SUCCESS"]

    passed(
        run(
            tmp_path,
            "deploy",
            "detectnet_v2",
            "inference",
            "--model_path",
            str(engine),
            "--experiment_spec",
            str(inference_spec(tmp_path / "infer.txt", onnx)),
            "--image_dir",
            str(dn["root"] / "image"),
            "--results_dir",
            str(tmp_path / "trt_infer"),
        )
    )
    assert len(list((tmp_path / "trt_infer" / "labels").glob("*.txt"))) == len(FRAMES)
    passed(
        run(
            tmp_path,
            "deploy",
            "detectnet_v2",
            "evaluate",
            "--model_path",
            str(engine),
            "--experiment_spec",
            str(dn["spec"]),
            "--image_dir",
            str(dn["root"] / "image"),
            "--label_dir",
            str(dn["root"] / "label"),
            "--results_dir",
            str(tmp_path / "trt_eval"),
        )
    )
    assert set(json.loads((tmp_path / "trt_eval" / "results.json").read_text())) == {"AP_face"}


def test_deploy_int8_refuses_missing_calibration_cache_flag_and_images(
    tmp_path: Path, dn: dict[str, Path]
) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_text("onnx")
    base = (
        "gen_trt_engine",
        "--model_path",
        str(onnx),
        "--experiment_spec",
        str(dn["spec"]),
        "--data_type",
        "int8",
        "--engine_file",
        str(tmp_path / "e.engine"),
        "--results_dir",
        str(tmp_path / "g"),
    )
    no_cache = run(tmp_path, "deploy", "detectnet_v2", *base)
    assert no_cache.returncode == 1 and "--cal_cache_file" in no_cache.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = run(
        tmp_path,
        "deploy",
        "detectnet_v2",
        *base,
        "--cal_cache_file",
        str(tmp_path / "c.bin"),
        "--cal_image_dir",
        str(empty),
    )
    assert no_images.returncode == 1 and "No valid" in no_images.stderr
    assert not (tmp_path / "e.engine").exists()


# --- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--experiment_spec", "S"], "abbreviated flag --experiment_spec"),
        (["-e", "S", "--gpus", "1", "-np", "1", "--gpu_ind", "0"], "abbreviated flag --gpu_ind"),
        (["-e", "S", "-r", "/tmp/a b"], "contains ' '"),
        (["-e", "S", "-k", "k$y"], "contains '$'"),
        (["-e", "S", "-k", "a;b"], "contains ';'"),
        (["-e", "S", "-r", "/tmp/x*"], "contains '*'"),
        (["-e", "S", "--gpus", "two"], "invalid int value"),
        (["-e", "S", "--bogus"], "unrecognized arguments"),
        (["-e", "S", "--gpus", "2", "--gpu_index", "0"], "number of GPU indices"),
    ],
)
def test_train_command_line_refusals(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(tmp_path, "tf1", "detectnet_v2", "train", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Execution status: FAIL" in result.stdout


@pytest.mark.parametrize(
    ("kind", "family", "args", "message"),
    [
        ("tf1", "detectnet_v2", ["--gpus", "1", "train", "-e", "S"], "must be the first argument"),
        ("tf1", "detectnet_v2", ["evaluate", "-e", "S"], "required: -m/--model_path"),
        ("tf1", "detectnet_v2", ["evaluate", "-e", "S", "-m", "M", "-f", "onnx"], "invalid choice: 'onnx'"),
        ("tf1", "detectnet_v2", ["evaluate", "-e", "S", "-m", "M", "--gpus", "2"], "only 1 GPU"),
        ("tf1", "detectnet_v2", ["evaluate", "-e", "S", "-m", "M", "--use_amp"], "AMP"),
        ("tf1", "detectnet_v2", ["evaluate", "-e", "S", "-m", "M", "-n", "x"], "would read it as -np"),
        ("tf1", "detectnet_v2", ["prune", "-m", "M", "-o", "O", "-r", "R"], "unrecognized arguments: -r"),
        ("tf1", "detectnet_v2", ["gen_trt_engine", "-m", "M"], "must be the first argument"),
        ("deploy", "detectnet_v2", ["gen_trt_engine", "-m", "M", "-e", "S"], "required: -r/--results_dir"),
        (
            "deploy",
            "detectnet_v2",
            ["inference", "-m", "M", "-e", "S", "-r", "R", "--gpus", "1"],
            "unrecognized",
        ),
        # TAO Deploy 5.0 evaluate and inference on engines (nvidia_tao_deploy/cv/detectnet_v2/scripts/): no key,
        # no framework switch, -r required.
        ("deploy", "detectnet_v2", ["evaluate", "-m", "M", "-e", "S", "-r", "R", "-k", "x"], "unrecognized"),
        ("deploy", "detectnet_v2", ["evaluate", "-m", "M", "-e", "S", "-r", "R", "-f", "tensorrt"], "unrecognized"),
        ("deploy", "detectnet_v2", ["evaluate", "-m", "M", "-e", "S", "-l", "L"], "required: -r/--results_dir"),
        ("deploy", "detectnet_v2", ["evaluate", "-m", "M", "-e", "S", "-r", "R", "-b", "two"], "invalid int"),
        ("deploy", "detectnet_v2", ["inference", "-m", "M", "-e", "S", "-r", "R", "--batch", "2"], "abbreviated"),
        ("tf1", "bpnet", ["inference", "--input_type", "video"], "invalid choice: 'video'"),
        ("tf1", "bpnet", ["evaluate", "--results_d", "R"], "abbreviated flag --results_d"),
    ],
)
def test_command_line_refusals(tmp_path: Path, kind: str, family: str, args: list[str], message: str) -> None:
    result = run(tmp_path, kind, family, *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert invocations(tmp_path / "tao.jsonl")[-1]["ok"] is False


def test_missing_input_file_fails_the_task_like_tao(tmp_path: Path, dn: dict[str, Path]) -> None:
    result = run(
        tmp_path,
        "tf1",
        "detectnet_v2",
        "evaluate",
        "-e",
        str(dn["spec"]),
        "-m",
        str(tmp_path / "none.hdf5"),
        "-r",
        str(tmp_path / "eval"),
    )
    assert result.returncode == 255 and "Execution status: FAIL" in result.stdout
    assert "none.hdf5" in status_lines(tmp_path / "eval")[-1]["message"]


def test_relative_or_missing_spec_paths_are_named(tmp_path: Path, dn: dict[str, Path]) -> None:
    relative = experiment_spec(tmp_path / "rel.txt", "tfrecords/train*", dn["root"], dn["pretrained"])
    result = train(tmp_path, relative, tmp_path / "r1")
    assert result.returncode == 255 and "dataset_config.data_sources[0].tfrecords_path" in result.stderr
    gone = experiment_spec(
        tmp_path / "gone.txt", str(tmp_path / "tfrecords" / "train*"), dn["root"], tmp_path / "missing.tlt"
    )
    result = train(tmp_path, gone, tmp_path / "r2")
    assert result.returncode == 255 and "model_config.pretrained_model_file" in result.stderr


def test_encrypted_model_needs_the_key(tmp_path: Path, dn: dict[str, Path]) -> None:
    result = run(tmp_path, "tf1", "detectnet_v2", "train", "-e", str(dn["spec"]), "-r", str(tmp_path / "r"))
    assert result.returncode == 255 and "-k/--key must be given" in result.stderr


def test_spec_missing_a_required_message_is_logged_as_failure_with_exit_zero(
    tmp_path: Path, dn: dict[str, Path]
) -> None:
    # TAO 5.0's spec validator calls sys.exit(1); train's main catches it: PASS, yet FAILURE in status.json.
    spec = tmp_path / "partial.txt"
    spec.write_text(dn["spec"].read_text().replace("bbox_rasterizer_config { deadzone_radius: 0.4 }", ""))
    result = train(tmp_path, spec, tmp_path / "r")
    assert result.returncode == 0 and "Execution status: PASS" in result.stdout
    last = status_lines(tmp_path / "r")[-1]
    assert last["status"] == "FAILURE" and last["message"] == "Training was interrupted"


# --- resume, failure and kill switches --------------------------------------------------------
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path: Path, dn: dict[str, Path]) -> None:
    results = tmp_path / "train"
    killed = train(tmp_path, dn["spec"], results, TAO_STANDIN_KILL_AFTER_EPOCHS="2")
    assert killed.returncode == 137 and "Execution status" not in killed.stdout
    assert sorted(p.name for p in results.glob("model.epoch-*.ckzip")) == [
        "model.epoch-1.ckzip",
        "model.epoch-2.ckzip",
    ]
    assert not (results / "weights").exists()
    assert all(line["status"] != "SUCCESS" for line in status_lines(results))

    resumed = passed(train(tmp_path, dn["spec"], results))
    assert f"resuming from checkpoint {results / 'model.epoch-2.ckzip'}" in resumed.stdout
    lines = status_lines(results)
    second = lines[max(i for i, line in enumerate(lines) if line["status"] == "STARTED") :]
    assert [line["epoch"] for line in second if "epoch" in line] == [2, 3]
    assert second[-1]["status"] == "SUCCESS" and (results / "model.epoch-4.hdf5").is_file()
    assert [call["exit_code"] for call in invocations(tmp_path / "tao.jsonl")][-2:] == [137, 0]


@pytest.mark.parametrize("selector", ["train", "detectnet_v2:train", "tf1:detectnet_v2:train"])
def test_fail_switch_fails_like_tao(tmp_path: Path, dn: dict[str, Path], selector: str) -> None:
    result = train(tmp_path, dn["spec"], tmp_path / "r", TAO_STANDIN_FAIL_TASK=selector)
    assert result.returncode == 255 and "Traceback" in result.stderr
    assert "Execution status: FAIL" in result.stdout
    last = status_lines(tmp_path / "r")[-1]
    assert last["status"] == "FAILURE" and "TAO_STANDIN_FAIL_TASK" in last["message"]
    assert not (tmp_path / "r" / "weights").exists()


def test_fail_switch_in_tao_deploy_exits_1(tmp_path: Path, dn: dict[str, Path]) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_text("onnx")
    result = run(
        tmp_path,
        "deploy",
        "detectnet_v2",
        "gen_trt_engine",
        "--model_path",
        str(onnx),
        "--experiment_spec",
        str(dn["spec"]),
        "--engine_file",
        str(tmp_path / "e.engine"),
        "--results_dir",
        str(tmp_path / "g"),
        TAO_STANDIN_FAIL_TASK="deploy:detectnet_v2:gen_trt_engine",
    )
    assert result.returncode == 1 and not (tmp_path / "e.engine").exists()
    assert status_lines(tmp_path / "g")[-1]["status"] == "FAILURE"


def test_fail_switch_for_another_task_leaves_this_one_alone(tmp_path: Path, dn: dict[str, Path]) -> None:
    passed(train(tmp_path, dn["spec"], tmp_path / "r", TAO_STANDIN_FAIL_TASK="bpnet:train"))


def test_invocation_log_records_every_call(tmp_path: Path, dn: dict[str, Path]) -> None:
    passed(train(tmp_path, dn["spec"], tmp_path / "r"))
    calls = invocations(tmp_path / "tao.jsonl")
    assert [(c["family"], c["task"], c["ok"]) for c in calls] == [
        ("detectnet_v2", "dataset_convert", True),
        ("detectnet_v2", "train", True),
    ]
    assert calls[-1]["argv"][1:3] == ["train", "--experiment_spec_file"] and calls[-1]["cwd"] == str(tmp_path)


def test_log_file_receives_the_task_output(tmp_path: Path, dn: dict[str, Path]) -> None:
    log = tmp_path / "logs" / "train.log"
    result = passed(
        run(
            tmp_path,
            "tf1",
            "detectnet_v2",
            "train",
            "-e",
            str(dn["spec"]),
            "-r",
            str(tmp_path / "r"),
            "-k",
            KEY,
            "--log_file",
            str(log),
        )
    )
    assert "Epoch 3/4" in log.read_text() and "Epoch" not in result.stdout


# --- bpnet -----------------------------------------------------------------------------------
@pytest.fixture()
def coco(tmp_path: Path) -> dict[str, Path]:
    """A two-image COCO tree, its coco_spec.json, pose config and pretrained model."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split in ("train2017", "val2017"):
        (root / split).mkdir()
        images, anns = [], []
        for i in (1, 2):
            Image.new("RGB", (64, 48)).save(root / split / f"00000000000{i}.jpg")
            images.append({"id": i, "file_name": f"00000000000{i}.jpg", "width": 64, "height": 48})
            anns.append(
                {
                    "id": i,
                    "image_id": i,
                    "category_id": 1,
                    "iscrowd": 0,
                    "area": 2000.0,
                    "bbox": [1, 1, 40, 40],
                    "num_keypoints": 10,
                    "keypoints": [1, 1, 2] * 17,
                    "segmentation": [[1, 1, 40, 1, 40, 40]],
                }
            )
        (root / "annotations" / f"person_keypoints_{split}.json").write_text(
            json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]})
        )
    spec = {
        "dataset": "coco",
        "root_directory_path": str(root),
        "train_data": {
            "images_root_dir_path": "train2017",
            "mask_root_dir_path": "train_mask2017",
            "annotation_root_dir_path": "annotations/person_keypoints_train2017.json",
        },
        "test_data": {
            "images_root_dir_path": "val2017",
            "mask_root_dir_path": "val_mask2017",
            "annotation_root_dir_path": "annotations/person_keypoints_val2017.json",
        },
        "duplicate_data_with_each_person_as_center": True,
        "categories": [{"name": "person", "num_joints": 17}],
        "data_filtering_params": {
            "min_acceptable_height": 32,
            "min_acceptable_width": 32,
            "min_acceptable_kpts": 5,
            "min_acceptable_interperson_dist_ratio": 0.3,
        },
    }
    (tmp_path / "coco_spec.json").write_text(json.dumps(spec))
    (tmp_path / "bpnet_18joints.json").write_text("{}")
    (tmp_path / "model.tlt").write_bytes(b"encrypted")
    return {"root": root, "spec": tmp_path / "coco_spec.json"}


def bpnet_specs(tmp_path: Path, coco: dict[str, Path], root_data_path: str) -> tuple[Path, Path]:
    import yaml

    train_spec, infer_spec = tmp_path / "bpnet_train.yaml", tmp_path / "infer.yaml"
    infer_spec.write_text(
        yaml.safe_dump(
            {
                "model_path": str(tmp_path / "model.tlt"),
                "train_spec": str(train_spec),
                "input_shape": [256, 256],
            }
        )
    )
    train_spec.write_text(
        yaml.safe_dump(
            {
                "__class_name__": "BpNetTrainer",
                "checkpoint_dir": str(tmp_path / "unused"),
                "checkpoint_n_epoch": 2,
                "num_epoch": 4,
                "pretrained_weights": str(tmp_path / "model.tlt"),
                "load_graph": False,
                "inference_spec": str(infer_spec),
                "dataloader": {
                    "pose_config": {"pose_config_path": str(tmp_path / "bpnet_18joints.json")},
                    "dataset_config": {
                        "root_data_path": root_data_path,
                        "train_records_folder_path": str(tmp_path / "records"),
                        "train_records_path": ["train-fold-000-of-001"],
                        "val_records_folder_path": str(tmp_path / "records"),
                        "val_records_path": ["val-fold-000-of-001"],
                        "dataset_specs": {"coco": str(coco["spec"])},
                    },
                },
                "optimizer": {"learning_rate_schedule": {"learning_rate": 2e-5}},
            }
        )
    )
    return train_spec, infer_spec


def test_bpnet_chain(tmp_path: Path, coco: dict[str, Path]) -> None:
    for mode, name in (("train", "train"), ("test", "val")):
        args = [
            "dataset_convert",
            "-m",
            mode,
            "-o",
            str(tmp_path / "records" / name),
            "-r",
            str(tmp_path / "conv"),
            "-d",
            str(coco["spec"]),
        ]
        passed(run(tmp_path, "tf1", "bpnet", *args, *(["--generate_masks"] if mode == "train" else [])))
    assert (coco["root"] / "train_mask2017" / "000000000001.jpg").is_file()
    records = json.loads((tmp_path / "records" / "train-fold-000-of-001").read_text())["records"]
    assert records[0]["image_path"] == "train2017/000000000001.jpg"

    train_spec, infer_spec = bpnet_specs(tmp_path, coco, str(coco["root"]) + "/")
    # Validation records point at val masks that were never generated: the loader would not find them.
    refused = run(
        tmp_path, "tf1", "bpnet", "train", "-e", str(train_spec), "-r", str(tmp_path / "t"), "-k", KEY
    )
    assert refused.returncode == 255 and "val_mask2017" in refused.stderr
    passed(
        run(
            tmp_path,
            "tf1",
            "bpnet",
            "dataset_convert",
            "-m",
            "test",
            "-o",
            str(tmp_path / "records" / "val"),
            "-r",
            str(tmp_path / "conv"),
            "-d",
            str(coco["spec"]),
            "--generate_masks",
        )
    )

    results = tmp_path / "t"
    passed(run(tmp_path, "tf1", "bpnet", "train", "-e", str(train_spec), "-r", str(results), "-k", KEY))
    assert sorted(p.name for p in results.glob("model.epoch-*.hdf5")) == [
        "model.epoch-2.hdf5",
        "model.epoch-4.hdf5",
    ]
    assert (results / "bpnet_model.hdf5").is_file() and status_lines(results)[-1]["status"] == "SUCCESS"

    model = str(results / "bpnet_model.hdf5")
    passed(
        run(
            tmp_path,
            "tf1",
            "bpnet",
            "evaluate",
            "--inference_spec",
            str(infer_spec),
            "--model_filename",
            model,
            "--dataset_spec",
            str(coco["spec"]),
            "--results_dir",
            str(tmp_path / "ev"),
            "-k",
            KEY,
        )
    )
    assert (tmp_path / "ev" / "results.csv").is_file()
    assert "AP_0.50:0.95_all" in [line for line in status_lines(tmp_path / "ev") if "kpi" in line][0]["kpi"]

    passed(
        run(
            tmp_path,
            "tf1",
            "bpnet",
            "inference",
            "--inference_spec",
            str(infer_spec),
            "--model_filename",
            model,
            "--input_type",
            "dir",
            "--input",
            str(coco["root"] / "val2017"),
            "--results_dir",
            str(tmp_path / "inf"),
            "--dump_visualizations",
            "-k",
            KEY,
        )
    )
    assert len(json.loads((tmp_path / "inf" / "detections.json").read_text())["images"]) == 2
    assert (tmp_path / "inf" / "images_annotated" / "0.png").is_file()

    passed(
        run(
            tmp_path,
            "tf1",
            "bpnet",
            "prune",
            "-m",
            model,
            "-o",
            str(tmp_path / "pruned.hdf5"),
            "-eq",
            "union",
            "-pth",
            "0.2",
            "-k",
            KEY,
            "-r",
            str(tmp_path / "pr"),
        )
    )
    export = [
        "export",
        "-m",
        str(tmp_path / "pruned.hdf5"),
        "-o",
        str(tmp_path / "bpnet.onnx"),
        "-k",
        KEY,
        "-t",
        "tfonnx",
        "-d",
        "288,384,3",
        "-e",
        str(train_spec),
        "-r",
        str(tmp_path / "ex"),
    ]
    passed(run(tmp_path, "tf1", "bpnet", *export))
    again = run(tmp_path, "tf1", "bpnet", *export)
    assert again.returncode == 255 and "already exists" in again.stderr


def test_bpnet_root_data_path_must_end_with_slash(tmp_path: Path, coco: dict[str, Path]) -> None:
    train_spec, _ = bpnet_specs(tmp_path, coco, str(coco["root"]))
    result = run(
        tmp_path, "tf1", "bpnet", "train", "-e", str(train_spec), "-r", str(tmp_path / "t"), "-k", KEY
    )
    assert result.returncode == 255 and "must end with '/'" in result.stderr


def test_bpnet_results_dir_is_needed(tmp_path: Path, coco: dict[str, Path]) -> None:
    result = run(
        tmp_path,
        "tf1",
        "bpnet",
        "dataset_convert",
        "-m",
        "train",
        "-o",
        str(tmp_path / "x"),
        "-d",
        str(coco["spec"]),
    )
    assert result.returncode == 255 and "NoneType" in result.stderr


def test_deploy_evaluate_and_inference_refuse_what_tao_deploy_refuses(tmp_path: Path, dn: dict[str, Path]) -> None:
    """A batch larger than the engine's, fewer labelled images than a batch, a file that is no engine."""
    engine = tmp_path / "model.engine"
    engine.write_text(json.dumps({"kind": "engine", "data_type": "int8", "max_batch_size": 2}))
    evaluate = ("evaluate", "-m", str(engine), "-e", str(dn["spec"]), "-i", str(dn["root"] / "image"), "-l",
                str(dn["root"] / "label"), "-r", str(tmp_path / "ev"))
    big = run(tmp_path, "deploy", "detectnet_v2", *evaluate, "-b", "3")
    assert big.returncode == 1 and "bigger (3) than engine max batch size (2)" in big.stderr
    (dn["root"] / "label" / "000004.txt").unlink()
    for name in FRAMES[1:3]:
        (dn["root"] / "label" / f"{name}.txt").unlink()
    few = run(tmp_path, "deploy", "detectnet_v2", *evaluate, "-b", "2")  # one labelled image left
    assert few.returncode == 1 and "batch size too large" in few.stderr
    passed(run(tmp_path, "deploy", "detectnet_v2", *evaluate, "-b", "1"))
    assert json.loads((tmp_path / "ev" / "results.json").read_text()) == {"AP_face": 0.49}  # INT8 engine
    (tmp_path / "not.engine").write_text("onnx")
    wrong = run(tmp_path, "deploy", "detectnet_v2", "inference", "-m", str(tmp_path / "not.engine"), "-e",
                str(inference_spec(tmp_path / "i.txt", engine)), "-i", str(dn["root"] / "image"), "-b", "1",
                "-r", str(tmp_path / "in"))
    assert wrong.returncode == 1 and "is not a TensorRT engine" in wrong.stderr
