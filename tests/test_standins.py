"""The TAO 5.0 stand-ins accept TAO's real command lines, write what TAO writes, and refuse the rest."""

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tao_aml.simulate import invocations, onnx_models, standin_env, status_lines

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
    path: Path, records: str, root: Path, model: Path, epochs: int = 4, load_graph: bool = False, qat: bool = False
) -> Path:
    """A complete TAO 5.0 FaceNet Experiment spec (NVIDIA's notebook values) that TAO's validator accepts."""
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
augmentation_config {{ preprocessing {{ output_image_width: 736 output_image_height: 416 output_image_channel: 3
  min_bbox_width: 1.0 min_bbox_height: 1.0 }} }}
postprocessing_config {{ target_class_config {{ key: "face" value {{ clustering_config {{
  coverage_threshold: 0.005 dbscan_eps: 0.3 dbscan_min_samples: 1 }} }} }} }}
model_config {{
  pretrained_model_file: "{model}"
  load_graph: {str(load_graph).lower()}
  num_layers: 18
  objective_set {{ bbox {{ scale: 35.0 offset: 0.5 }} cov {{ }} }}
  arch: "resnet"
}}
evaluation_config {{
  validation_period_during_training: 10
  first_validation_epoch: 1
  minimum_detection_ground_truth_overlap {{ key: "face" value: 0.5 }}
  evaluation_box_config {{ key: "face" value {{ minimum_height: 4 maximum_height: 9999 minimum_width: 4
    maximum_width: 9999 }} }}
}}
cost_function_config {{ target_classes {{ name: "face" class_weight: 1.0 coverage_foreground_weight: 0.05
  objectives {{ name: "cov" initial_weight: 1.0 weight_target: 1.0 }}
  objectives {{ name: "bbox" initial_weight: 10.0 weight_target: 10.0 }} }} }}
training_config {{
  batch_size_per_gpu: 2
  num_epochs: {epochs}
  enable_qat: {str(qat).lower()}
  checkpoint_interval: 1
  learning_rate {{ soft_start_annealing_schedule {{ min_learning_rate: 5e-06 max_learning_rate: 5e-04
    soft_start: 0.1 annealing: 0.7 }} }}
  regularizer {{ type: L1 weight: 3e-09 }}
  optimizer {{ adam {{ epsilon: 1e-08 beta1: 0.9 beta2: 0.999 }} }}
  cost_scaling {{ initial_exponent: 20.0 increment: 0.005 decrement: 1.0 }}
}}
bbox_rasterizer_config {{
  target_class_config {{ key: "face" value {{ cov_center_x: 0.5 cov_center_y: 0.5 cov_radius_x: 1.0
    cov_radius_y: 1.0 bbox_min_radius: 1.0 }} }}
  deadzone_radius: 0.4
}}
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


def exported_onnx(path: Path) -> Path:
    """A real ONNX model with the tensors of TAO 5.0's detectnet_v2 export (736x416, one class)."""
    onnx_models.save(onnx_models.detectnet_v2(736, 416, [onnx_models.Box(184, 104, 552, 312)]), str(path))
    return path


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
    # detectnet_v2 writes only model.epoch-E.ckzip per epoch (tfhooks/checkpoint_saver_hook.py).
    assert sorted(p.name for p in results.glob("model.epoch-*")) == [f"model.epoch-{e}.ckzip" for e in range(1, 5)]
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
            str(tmp_path / "pruned" / "model_pruned.hdf5"),
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
    pruned = tmp_path / "pruned" / "model_pruned.hdf5"
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
    onnx = exported_onnx(tmp_path / "model.onnx")
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
    onnx = exported_onnx(tmp_path / "model.onnx")
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
    # utils/image_batcher.py prints and calls sys.exit(1), which monitor_status does not catch: no FAILURE line.
    assert no_images.returncode == 1 and "No valid" in no_images.stdout
    assert status_lines(tmp_path / "g")[-1]["status"] == "STARTED"
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
    text = dn["spec"].read_text()
    spec.write_text(text[: text.index("bbox_rasterizer_config {")])  # the last message of the spec
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
    assert not (results / "weights" / "resnet18_detector.hdf5").exists()
    assert all(line["status"] != "SUCCESS" for line in status_lines(results))

    resumed = passed(train(tmp_path, dn["spec"], results))
    assert f"resuming from checkpoint {results / 'model.epoch-2.ckzip'}" in resumed.stdout
    lines = status_lines(results)
    second = lines[max(i for i, line in enumerate(lines) if line["status"] == "STARTED") :]
    assert [line["epoch"] for line in second if "epoch" in line] == [2, 3]
    assert second[-1]["status"] == "SUCCESS" and (results / "model.epoch-4.ckzip").is_file()
    assert [call["exit_code"] for call in invocations(tmp_path / "tao.jsonl")][-2:] == [137, 0]


@pytest.mark.parametrize("selector", ["train", "detectnet_v2:train", "tf1:detectnet_v2:train"])
def test_fail_switch_fails_like_tao(tmp_path: Path, dn: dict[str, Path], selector: str) -> None:
    result = train(tmp_path, dn["spec"], tmp_path / "r", TAO_STANDIN_FAIL_TASK=selector)
    assert result.returncode == 255 and "Traceback" in result.stderr
    assert "Execution status: FAIL" in result.stdout
    last = status_lines(tmp_path / "r")[-1]
    assert last["status"] == "FAILURE" and "TAO_STANDIN_FAIL_TASK" in last["message"]
    assert list((tmp_path / "r" / "weights").iterdir()) == []


def test_fail_switch_in_tao_deploy_exits_1(tmp_path: Path, dn: dict[str, Path]) -> None:
    onnx = exported_onnx(tmp_path / "model.onnx")
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
COCO_PARTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
              "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
              "right_knee", "left_ankle", "right_ankle"]


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
        "categories": [{"name": "person", "num_joints": 17, "keypoints": COCO_PARTS}],
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
                    # BpNetExporter reads it (bpnet export); the shipped templates' values.
                    "normalization_params": {"image_scale": [256.0, 256.0, 256.0], "image_offset": [0.5, 0.5, 0.5]},
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


# --- behaviours read from NVIDIA's source ----------------------------------------------------------------
def convert(tmp_path: Path, root: Path, out: str = "x") -> subprocess.CompletedProcess:
    return run(tmp_path, "tf1", "detectnet_v2", "dataset_convert", "--dataset_export_spec",
               str(export_spec(tmp_path / "c.txt", root, shards=0)), "--output_filename", str(tmp_path / "tf" / out),
               "--results_dir", str(tmp_path / "r"))


def test_dataset_convert_reads_kitti_labels_as_kitti_converter_lib(tmp_path: Path) -> None:
    # kitti_converter_lib._add_targets: DontCare lines and mixed-case classes pass; a box under one pixel after
    # int() truncation is skipped and listed in <output>_warning.json (dataset_converter_lib._save_log_warnings).
    root = kitti(tmp_path / "data")
    (root / "label" / "000001.txt").write_text(
        "Face 0.00 0 0.00 4.00 5.00 30.00 40.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00\n"
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "face 0.00 0 0.00 10.20 5.00 10.90 40.00 0.00 0.00 0.00 0.00 0.00 0.00 0.00\n"
    )
    (root / "label" / "000002.txt").write_text("")
    passed(convert(tmp_path, root))
    frames = {f["id"]: f for f in json.loads((tmp_path / "tf" / "x-fold-000-of-002").read_text())["frames"]}
    assert frames["image/000001"]["classes"] == ["face", "dontcare"]
    assert frames["image/000002"]["classes"] == [] and frames["image/000001"]["width"] == 64
    warning = json.loads((tmp_path / "tf" / "x_warning.json").read_text())
    assert warning == {f"{root / 'label' / '000001.txt'}_2": [10, 5, 10, 40]}
    lines = status_lines(tmp_path / "r")
    assert [line["message"] for line in lines if line["status"] == "SUCCESS"] == [
        "TFRecords generation complete.", "Dataset convert finished successfully."]
    # StatusLogger keeps kpi and categorical once set: the last line carries both.
    assert lines[-1]["kpi"] == {"num_images": 4}
    assert lines[-1]["categorical"] == {"num_objects": {"face": 3, "dontcare": 1}}


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("face 0.00 0 0.00 4 5 30 40 0 0 0 0 0 0\n", "only 15 fields"),
        ("face 0.00 zero 0.00 4 5 30 40 0 0 0 0 0 0 0\n", "could not convert string to float: 'zero'"),
    ],
)
def test_dataset_convert_refuses_what_float_and_the_15_field_assert_refuse(
    tmp_path: Path, label: str, message: str
) -> None:
    root = kitti(tmp_path / "data")
    (root / "label" / "000003.txt").write_text(label)
    result = convert(tmp_path, root)
    assert result.returncode == 255 and message in result.stderr and "000003.txt line 1" in result.stderr


def test_dataset_convert_refuses_an_image_pil_cannot_open(tmp_path: Path) -> None:
    root = kitti(tmp_path / "data")
    (root / "image" / "000002.png").write_bytes(b"not a png")
    result = convert(tmp_path, root)
    assert result.returncode == 255 and "UnidentifiedImageError" in result.stderr


def test_train_keeps_kpi_on_later_lines_and_makes_weights_first(tmp_path: Path, dn: dict[str, Path]) -> None:
    passed(train(tmp_path, dn["spec"], tmp_path / "r"))
    lines = status_lines(tmp_path / "r")
    assert lines[-1]["status"] == "SUCCESS" and set(lines[-1]["kpi"]) == {"size", "param_count"}
    assert "graphical" in lines[-1]  # TaskProgressMonitorHook set it on the logger


@pytest.mark.parametrize(
    ("old", "new", "exit_code", "message"),
    [
        # spec_loader.validate_spec (constants.py: output_image_width % 16): FAILURE, yet exit 0.
        ("output_image_width: 736", "output_image_width: 730", 0, "Training was interrupted"),
        # spec_loader: TRAINVAL_REQUIRED_MSG_DICT["training_config"] has "optimizer".
        ("optimizer { adam { epsilon: 1e-08 beta1: 0.9 beta2: 0.999 } }", "", 0, "Training was interrupted"),
        # text_format.Merge: an unknown field is a ParseError, the task fails.
        ("random_seed: 42", "random_seed: 42\nno_such_field: 1", 255, "ParseError"),
    ],
)
def test_train_refuses_what_tao_spec_loader_refuses(
    tmp_path: Path, dn: dict[str, Path], old: str, new: str, exit_code: int, message: str
) -> None:
    spec = tmp_path / "bad.txt"
    assert old in dn["spec"].read_text()
    spec.write_text(dn["spec"].read_text().replace(old, new))
    result = train(tmp_path, spec, tmp_path / "r")
    assert result.returncode == exit_code
    last = status_lines(tmp_path / "r")[-1]
    assert last["status"] == "FAILURE" and message in last["message"] + result.stderr
    assert not (tmp_path / "r" / "weights" / "resnet18_detector.hdf5").exists()


def trained(tmp_path: Path, dn: dict[str, Path], qat: bool = False, name: str = "trained") -> Path:
    spec = experiment_spec(tmp_path / f"{name}.txt", str(tmp_path / "tfrecords" / "train*"), dn["root"],
                           dn["pretrained"], qat=qat)
    passed(train(tmp_path, spec, tmp_path / name))
    return tmp_path / name / "weights" / "resnet18_detector.hdf5"


def test_prune_output_without_hdf5_fails_after_writing_it(tmp_path: Path, dn: dict[str, Path]) -> None:
    # magnet_prune.py appends .hdf5 to save, then sizes args.output_file as given: FileNotFoundError.
    model = trained(tmp_path, dn)
    base = ("prune", "-m", str(model), "-k", KEY, "--results_dir", str(tmp_path / "p"))
    bare = run(tmp_path, "tf1", "detectnet_v2", *base, "-o", str(tmp_path / "pruned"))
    assert bare.returncode == 255 and "Model file wasn't found" in bare.stderr
    assert (tmp_path / "pruned.hdf5").is_file()
    passed(run(tmp_path, "tf1", "detectnet_v2", *base, "-o", str(tmp_path / "ok.hdf5")))
    lines = status_lines(tmp_path / "p")
    assert "STARTED" not in {line["status"] for line in lines}  # magnet_prune writes no STARTED line
    assert set(lines[-1]["kpi"]) == {"pruning_ratio", "size", "param_count"}


def test_inference_names_labels_by_output_map_and_needs_a_default(tmp_path: Path, dn: dict[str, Path]) -> None:
    model = trained(tmp_path, dn)
    spec = inference_spec(tmp_path / "i.txt", model)
    spec.write_text(spec.read_text().replace('output_map: "face"', 'output_map: "person_face"'))
    infer = ("inference", "-e", str(spec), "-i", str(dn["root"] / "image"), "-r", str(tmp_path / "o"), "-k", KEY)
    passed(run(tmp_path, "tf1", "detectnet_v2", *infer))
    assert (tmp_path / "o" / "labels" / "000001.txt").read_text().split()[0] == "person_face"
    spec.write_text(spec.read_text().replace('key: "face"', 'key: "car"'))
    result = run(tmp_path, "tf1", "detectnet_v2", *infer)
    assert result.returncode == 255 and "please mention a default class" in result.stderr
    (dn["root"] / "image" / "000004.png").write_bytes(b"broken")
    spec.write_text(spec.read_text().replace('key: "car"', 'key: "face"'))
    broken = run(tmp_path, "tf1", "detectnet_v2", *infer)
    assert broken.returncode == 255 and "cannot identify image file" in broken.stderr


def test_export_gen_ds_config_writes_base_ds_config_lines(tmp_path: Path, dn: dict[str, Path]) -> None:
    model = trained(tmp_path, dn)
    onnx = tmp_path / "out" / "model.onnx"
    export = ("export", "-m", str(model), "-k", KEY, "-o", str(onnx), "--gen_ds_config")
    refused = run(tmp_path, "tf1", "detectnet_v2", *export)
    assert refused.returncode == 255 and "Experiment spec wasn't loaded" in refused.stderr
    onnx.unlink()  # written before the labels were asked for
    passed(run(tmp_path, "tf1", "detectnet_v2", *export, "-e", str(dn["spec"]), "--results_dir", str(tmp_path / "r")))
    config = dict(line.split("=", 1) for line in (onnx.parent / "nvinfer_config.txt").read_text().splitlines())
    assert config == {"net-scale-factor": str(1 / 255), "offsets": "0.0;0.0;0.0", "infer-dims": "3;416;736",
                      "tlt-model-key": KEY, "network-type": "0", "num-detected-classes": "1",
                      "model-color-format": "0", "maintain-aspect-ratio": "0", "output-tensor-meta": "0"}
    assert (onnx.parent / "labels.txt").read_text() == "face\n"
    lines = status_lines(tmp_path / "r")
    assert lines[0]["message"] == "Building exporter object."  # run_export writes no STARTED line
    assert [line["message"] for line in lines[-2:]] == ["Export complete.", "Export finished successfully."]
    assert {"param_count", "size"} <= set(lines[-2])


def test_export_int8_follows_qat_and_cal_json_file(tmp_path: Path, dn: dict[str, Path]) -> None:
    # keras_exporter.py export: a QAT model's scales go to --cal_json_file and, for int8, straight into the
    # calibration cache (even without --engine_file), refusing an existing cache; a plain model writes neither.
    qat = trained(tmp_path, dn, qat=True)
    cache, scales = tmp_path / "cal.bin", tmp_path / "cal.json"
    export = ("export", "-m", str(qat), "-k", KEY, "--data_type", "int8", "--cal_cache_file", str(cache),
              "--cal_json_file", str(scales))
    passed(run(tmp_path, "tf1", "detectnet_v2", *export, "-o", str(tmp_path / "q.onnx")))
    assert cache.read_text().startswith("TRT-8503-EntropyCalibration2\n")
    assert set(json.loads(scales.read_text())["tensor_scales"]) >= {"input_1"}
    again = run(tmp_path, "tf1", "detectnet_v2", *export, "-o", str(tmp_path / "q2.onnx"))
    assert again.returncode == 255 and "A pre-existing cache file exists" in again.stderr
    model = trained(tmp_path, dn, name="plain")
    plain = model.parent
    fp32 = ("export", "-m", str(model), "-k", KEY, "--cal_json_file", str(plain / "cal.json"))
    passed(run(tmp_path, "tf1", "detectnet_v2", *fp32, "-o", str(plain / "m.onnx")))
    assert not (plain / "cal.json").exists()
    # Without -e an INT8 calibrator needs a tensorfile, made from batches x batch_size images.
    int8 = ("export", "-m", str(model), "-k", KEY, "--data_type", "int8", "--cal_image_dir", str(dn["root"] / "image"),
            "--cal_data_file", str(plain / "cal.tensor"), "--batches", "1")
    few = run(tmp_path, "tf1", "detectnet_v2", *int8, "-o", str(plain / "a.onnx"))  # --batch_size defaults to 16
    assert few.returncode == 255 and "Not enough number of images provided: 4 < 16" in few.stderr
    passed(run(tmp_path, "tf1", "detectnet_v2", *int8, "--batch_size", "4", "-o", str(plain / "b.onnx")))
    assert (plain / "cal.tensor").is_file() and not (plain / "cal.bin").exists()  # no engine, no cache


def test_calibration_tensorfile_refuses_more_batches_than_the_data(tmp_path: Path, dn: dict[str, Path]) -> None:
    base = ("calibration_tensorfile", "-e", str(dn["spec"]), "-o", str(tmp_path / "t.tensor"))
    result = run(tmp_path, "tf1", "detectnet_v2", *base, "-m", "3")  # 4 frames, batch_size_per_gpu 2
    assert result.returncode == 255 and "contains 2 minibatches, while the requested amount is 3" in result.stderr
    passed(run(tmp_path, "tf1", "detectnet_v2", *base, "-m", "2"))


def gen_trt_engine(tmp_path: Path, spec: Path, *args: str) -> subprocess.CompletedProcess:
    return run(tmp_path, "deploy", "detectnet_v2", "gen_trt_engine", "-m", str(exported_onnx(tmp_path / "m.onnx")),
               "-e", str(spec), "-r", str(tmp_path / "g"), *args)


def test_deploy_gen_trt_engine_follows_qat_data_type_and_cal_json(tmp_path: Path, dn: dict[str, Path]) -> None:
    qat = experiment_spec(tmp_path / "qat.txt", "/x*", dn["root"], dn["pretrained"], qat=True)
    engine = str(tmp_path / "e.engine")
    fp16 = gen_trt_engine(tmp_path, qat, "--engine_file", engine, "--data_type", "fp16")
    assert fp16.returncode == 1 and "QAT model only supports data_type int8 but fp16" in fp16.stderr
    no_json = gen_trt_engine(tmp_path, qat, "--engine_file", engine, "--data_type", "int8")
    assert no_json.returncode == 1 and "Calibration JSON file is required for QAT" in no_json.stderr
    scales = tmp_path / "cal.json"
    scales.write_text(json.dumps({"tensor_scales": {"input_1:0": 1.0}}))
    cache = tmp_path / "cal.bin"
    qat_args = ("--engine_file", engine, "--data_type", "int8", "--cal_json_file", str(scales), "--cal_cache_file",
                str(cache))
    passed(gen_trt_engine(tmp_path, qat, *qat_args))
    assert cache.read_text().startswith("TRT-8503-EntropyCalibration2\ninput_1:0: ")
    built = json.loads(Path(engine).read_text())
    assert built["qat"] and built["inputs"] == {"input_1:0": ["N", 3, 416, 736]}
    assert set(built["outputs"]) == {"output_cov/Sigmoid:0", "output_bbox/BiasAdd:0"}
    again = gen_trt_engine(tmp_path, qat, *qat_args)
    assert again.returncode == 1 and "A pre-existing cache file exists" in again.stderr
    # --force_ptq switches QAT off: TensorRT calibrates, and an existing cache is simply read.
    passed(gen_trt_engine(tmp_path, qat, *qat_args, "--force_ptq"))
    # Neither an engine nor INT8: nothing is built and the spec is not even read.
    passed(gen_trt_engine(tmp_path, tmp_path / "no_such_spec_is_read.txt"))


def test_deploy_gen_trt_engine_refuses_a_file_tensorrt_cannot_parse(tmp_path: Path, dn: dict[str, Path]) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("onnx")
    result = run(tmp_path, "deploy", "detectnet_v2", "gen_trt_engine", "-m", str(bad), "-e", str(dn["spec"]),
                 "--engine_file", str(tmp_path / "e.engine"), "-r", str(tmp_path / "g"))
    # engine_builder.create_network: "Failed to load ONNX file" and sys.exit(1), which monitor_status lets by.
    assert result.returncode == 1 and "Failed to load ONNX file" in result.stdout
    assert status_lines(tmp_path / "g")[-1]["status"] == "STARTED" and not (tmp_path / "e.engine").exists()


def test_deploy_int8_needs_a_full_batch_of_calibration_images(tmp_path: Path, dn: dict[str, Path]) -> None:
    # ImageBatcher(exact_batches=True): fewer images than one batch is "Not enough images to create batches".
    args = ("--engine_file", str(tmp_path / "e.engine"), "--data_type", "int8", "--cal_cache_file",
            str(tmp_path / "c.bin"), "--cal_image_dir", str(dn["root"] / "image"))
    result = gen_trt_engine(tmp_path, dn["spec"], *args, "--batch_size", "8")
    assert result.returncode == 1 and "Not enough images to create batches" in result.stderr
    passed(gen_trt_engine(tmp_path, dn["spec"], *args, "--batch_size", "4"))


def test_deploy_evaluate_reads_labels_as_tao_deploy_kitti_loader(tmp_path: Path, dn: dict[str, Path]) -> None:
    engine = tmp_path / "model.engine"
    engine.write_text(json.dumps({"kind": "engine", "data_type": "fp16", "max_batch_size": 2}))
    evaluate = ("evaluate", "-m", str(engine), "-e", str(dn["spec"]), "-i", str(dn["root"] / "image"), "-l",
                str(dn["root"] / "label"), "-r", str(tmp_path / "ev"))
    # Lines under 9 fields and unmapped classes (DontCare) are skipped before anything is parsed.
    (dn["root"] / "label" / "000001.txt").write_text(
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\nface 0 0\n")
    passed(run(tmp_path, "deploy", "detectnet_v2", *evaluate))
    # _load_gt_label reads the occlusion of a mapped class with int(): "0.00" is a ValueError.
    (dn["root"] / "label" / "000002.txt").write_text("Face 0.00 0.00 0.00 4 5 30 40 0 0 0 0 0 0 0\n")
    result = run(tmp_path, "deploy", "detectnet_v2", *evaluate)
    assert result.returncode == 1 and "invalid literal for int() with base 10: '0.00'" in result.stderr
    # A target_class_mapping value that is no target class: dl.classes[...] raises KeyError.
    spec = tmp_path / "mapped.txt"
    spec.write_text(dn["spec"].read_text().replace('value: "face" }', 'value: "person" }', 1))
    mapped = run(tmp_path, "deploy", "detectnet_v2", *evaluate[:4], str(spec), *evaluate[5:])
    assert mapped.returncode == 1 and "KeyError: 'person'" in mapped.stderr


def test_bpnet_dataset_spec_keys_are_looked_up_like_coco_dataset(tmp_path: Path, coco: dict[str, Path]) -> None:
    spec = json.loads(coco["spec"].read_text())
    convert = ("dataset_convert", "-m", "train", "-o", str(tmp_path / "rec" / "train"), "-r", str(tmp_path / "c"),
               "-d", str(coco["spec"]))
    del spec["data_filtering_params"]["min_acceptable_interperson_dist_ratio"]
    coco["spec"].write_text(json.dumps(spec))
    missing = run(tmp_path, "tf1", "bpnet", *convert)
    assert missing.returncode == 255 and "min_acceptable_interperson_dist_ratio" in missing.stderr
    spec["data_filtering_params"]["min_acceptable_interperson_dist_ratio"] = 0.3
    spec["categories"][0]["keypoints"] = COCO_PARTS[:-1]
    coco["spec"].write_text(json.dumps(spec))
    mismatch = run(tmp_path, "tf1", "bpnet", *convert)
    assert mismatch.returncode == 255 and "num_joints and the number of keypoints are not matching" in mismatch.stderr


def test_bpnet_main_persons_skip_people_close_to_an_earlier_one(tmp_path: Path, coco: dict[str, Path]) -> None:
    # COCODataset._parse_annotation: a centre within ratio x size of an earlier main person is no main person;
    # duplicate_data_with_each_person_as_center writes one record per main person.
    annotations = coco["root"] / "annotations" / "person_keypoints_train2017.json"
    data = json.loads(annotations.read_text())
    near = dict(data["annotations"][0], id=10, bbox=[3, 3, 40, 40])  # 2 px from person 1, size 40 x 0.3
    far = dict(data["annotations"][0], id=11, bbox=[20, 5, 40, 40])  # 19 px away
    data["annotations"] += [near, far]
    annotations.write_text(json.dumps(data))
    passed(run(tmp_path, "tf1", "bpnet", "dataset_convert", "-m", "train", "-o", str(tmp_path / "rec" / "train"),
               "-r", str(tmp_path / "c"), "-d", str(coco["spec"])))
    records = json.loads((tmp_path / "rec" / "train-fold-000-of-001").read_text())["records"]
    assert [r["image_id"] for r in records] == [1, 1, 2]


def test_bpnet_inference_keeps_unread_images_without_keypoints(tmp_path: Path, coco: dict[str, Path]) -> None:
    # BpNetInferencer.run: a wrong extension or an image cv2 cannot read is skipped, not fatal, and stays in
    # detections.json without keypoints.
    _, infer_spec = bpnet_specs(tmp_path, coco, str(coco["root"]) + "/")
    images = tmp_path / "images"
    images.mkdir()
    Image.new("RGB", (32, 32)).save(images / "good.jpg")
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    (images / "notes.txt").write_text("x")
    passed(run(tmp_path, "tf1", "bpnet", "inference", "--inference_spec", str(infer_spec), "--input_type", "dir",
               "--input", str(images), "--results_dir", str(tmp_path / "out"), "-k", KEY, "--dump_visualizations"))
    detections = json.loads((tmp_path / "out" / "detections.json").read_text())
    entries = {e["full_image_path"]: e for e in detections["images"]}
    assert set(entries) == {"good.jpg", "broken.jpg", "notes.txt"}
    assert "keypoints" in entries["good.jpg"] and "keypoints" not in entries["broken.jpg"]
    annotated = [p.name for p in (tmp_path / "out" / "images_annotated").iterdir()]
    assert annotated == [f"{entries['good.jpg']['viz_id']}.png"]


def test_bpnet_evaluate_writes_results_csv_as_pandas_does(tmp_path: Path, coco: dict[str, Path]) -> None:
    _, infer_spec = bpnet_specs(tmp_path, coco, str(coco["root"]) + "/")
    passed(run(tmp_path, "tf1", "bpnet", "evaluate", "--inference_spec", str(infer_spec), "--dataset_spec",
               str(coco["spec"]), "--results_dir", str(tmp_path / "ev"), "-k", KEY))
    rows = (tmp_path / "ev" / "results.csv").read_text().splitlines()
    # COCODataset.dump_coco_results_summary: DataFrame(columns=[metric, IoU, area, maxDets, score]).to_csv
    assert rows[0] == ",metric,IoU,area,maxDets,score" and len(rows) == 11
    assert rows[1] == "0,AP,0.50:0.95,all,20,0.5" and rows[5] == "4,AP,0.50:0.95,large,20,0.5"
    assert rows[7] == "6,AR,0.50,all,20,0.5"


def test_dataset_convert_stops_on_an_occlusion_int_refuses_only_for_kept_objects(tmp_path: Path) -> None:
    root = kitti(tmp_path / "data")
    # A skipped (sub-pixel) object's occlusion is never read; a kept one's goes through int().
    (root / "label" / "000001.txt").write_text("face 0.00 nan 0.00 4.2 5 4.9 40 0 0 0 0 0 0 0\n")
    passed(convert(tmp_path, root))
    (root / "label" / "000001.txt").write_text("face 0.00 inf 0.00 4 5 30 40 0 0 0 0 0 0 0\n")
    result = convert(tmp_path, root, out="y")
    assert result.returncode == 255 and "OverflowError" in result.stderr and "000001.txt line 1" in result.stderr


def test_inference_with_a_tensorrt_config_is_refused_as_not_emulated(tmp_path: Path, dn: dict[str, Path]) -> None:
    spec = inference_spec(tmp_path / "i.txt", dn["pretrained"])
    spec.write_text(spec.read_text().replace(f'tlt_config {{ model: "{dn["pretrained"]}" }}',
                                             'tensorrt_config { trt_engine: "/x.engine" }'))
    result = run(tmp_path, "tf1", "detectnet_v2", "inference", "-e", str(spec), "-i", str(dn["root"] / "image"),
                 "-r", str(tmp_path / "o"), "-k", KEY)
    assert result.returncode == 255 and "tensorrt_config" in result.stderr


def test_bpnet_annotation_without_a_key_coco_dataset_reads_is_refused(tmp_path: Path, coco: dict[str, Path]) -> None:
    annotations = coco["root"] / "annotations" / "person_keypoints_val2017.json"  # loaded whatever the mode
    data = json.loads(annotations.read_text())
    del data["annotations"][1]["num_keypoints"]
    annotations.write_text(json.dumps(data))
    result = run(tmp_path, "tf1", "bpnet", "dataset_convert", "-m", "train", "-o", str(tmp_path / "rec" / "train"),
                 "-r", str(tmp_path / "c"), "-d", str(coco["spec"]))
    assert result.returncode == 255 and "has no num_keypoints" in result.stderr


def test_deploy_inference_fails_on_an_image_pil_cannot_open(tmp_path: Path, dn: dict[str, Path]) -> None:
    engine = tmp_path / "model.engine"
    engine.write_text(json.dumps({"kind": "engine", "data_type": "fp32", "max_batch_size": 1}))
    (dn["root"] / "image" / "000003.png").write_bytes(b"broken")
    result = run(tmp_path, "deploy", "detectnet_v2", "inference", "-m", str(engine), "-e",
                 str(inference_spec(tmp_path / "i.txt", engine)), "-i", str(dn["root"] / "image"), "-r",
                 str(tmp_path / "o"))
    assert result.returncode == 1 and "cannot identify image file" in result.stderr
