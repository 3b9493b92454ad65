"""The whole FaceNet pipeline runs locally from its YAML: `tao-aml rehearse` (real step code, TAO simulated)
on generated WIDER data; a provided data folder skips the download (real HTTP on 127.0.0.1).

Each step reads what the one before it wrote, through the bindings of pipeline_component.yml, so a
wrong folder layout or a misnamed output fails here rather than on a GPU node.
"""

import hashlib
import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from http_server import add_ngc_model
from tao_aml.cli import main
from tao_aml.local.local_run import LocalRunner, StepFailed
from tao_aml.local.rehearse import rehearse
from tao_aml.repo.pipelines import Pipeline, resolve_settings
from tao_aml.repo.profiles import profile_assignments
from tao_aml.simulate import environment_path, invocations, status_lines
from tao_aml.steps.detectnet_v2 import tf1_validator
from tao_aml.steps.specs import prototext
from tao_aml.steps.specs.spec_templates import SHIPPED
from wider_fixtures import make_wider_download, make_wider_zips, random_images

MODEL = "nvidia/tao/facenet:unpruned_v2.0"
# The smoke profile users run first, with smaller images; two epochs and INT8 so that resuming
# checkpoints and calibration are exercised too.
SMALL = profile_assignments(Pipeline.load("facenet"), "smoke") + [
    "image_width=160", "image_height=96", "train_epochs=2", "retrain_epochs=2", "engine_precision=int8",
]


@pytest.fixture
def served(http_server):
    zips = make_wider_zips(http_server.root, random_images(10, seed=3), random_images(5, seed=4))
    add_ngc_model(http_server, MODEL, {"model.tlt": b"pretrained weights"})
    # The download step checks each file against the sha256 and size it is given, as for the defaults.
    paths = list(zips.values())
    downloads = [
        "wider_urls=" + ",".join(http_server.url("/" + path.name) for path in paths),
        "wider_sha256=" + ",".join(hashlib.sha256(path.read_bytes()).hexdigest() for path in paths),
        "wider_sizes=" + ",".join(str(path.stat().st_size) for path in paths),
    ]
    return http_server, downloads


def runner(tmp_path: Path, server, assignments, data_inputs=None, **env) -> LocalRunner:
    pipeline = Pipeline.load("facenet")
    settings = resolve_settings(pipeline, SMALL + assignments)
    return LocalRunner(
        pipeline, settings, tmp_path / "run", data_inputs=data_inputs,
        env={"TAO_AML_NGC_API_BASE": server.base_url, "TAO_STANDIN_LOG": str(tmp_path / "tao.jsonl"), **env},
        path_for_environment=environment_path,
    )


def rehearsed(tmp_path: Path, assignments: list[str], **env: str) -> dict:
    """`tao-aml rehearse facenet` on generated WIDER data, 10 training and 5 validation images."""
    done = rehearse(Pipeline.load("facenet"), SMALL + assignments, {}, tmp_path / "rehearsal", sample=10,
                    progress=lambda line: None, env={"TAO_STANDIN_LOG": str(tmp_path / "tao.jsonl"), **env})
    return {step.name: step for step in done.runs}


def test_facenet_pipeline_end_to_end(tmp_path: Path) -> None:
    store = (tmp_path / "mlruns").as_uri()
    steps = rehearsed(tmp_path, ["train.training_config.checkpoint_interval=1"], MLFLOW_TRACKING_URI=store)

    assert list(steps)[:2] == ["download_wider", "convert_train"]
    calls = [(c["kind"], c["task"]) for c in invocations(tmp_path / "tao.jsonl")]
    assert calls == [
        ("tf1", "dataset_convert"), ("tf1", "dataset_convert"), ("tf1", "evaluate"), ("tf1", "train"),
        ("tf1", "evaluate"), ("tf1", "prune"), ("tf1", "train"), ("tf1", "evaluate"), ("tf1", "inference"),
        ("tf1", "export"), ("deploy", "gen_trt_engine"), ("deploy", "evaluate"), ("deploy", "inference"),
    ]
    assert all(c["ok"] for c in invocations(tmp_path / "tao.jsonl"))
    # No specs connected: every step that reads a template ran without --spec_dir and read the shipped one.
    for name in ("tfrecords_train", "tfrecords_val", "evaluate_pretrained", "train", "evaluate_trained", "retrain",
                 "evaluate_retrained", "inference", "engine", "evaluate_engine", "inference_engine"):
        assert "--spec_dir" not in steps[name].command
        assert f"from template {SHIPPED}/facenet/" in steps[name].log.read_text(), name

    kitti = steps["convert_val"].outputs["kitti"]
    summary = json.loads((kitti / "summary.json").read_text())
    assert summary["images"] == 5
    assert len(list((kitti / "labels").iterdir())) == len(list((kitti / "images").iterdir())) == 5

    trained = steps["train"].outputs["results"]
    assert (trained / "weights" / "resnet18_detector.hdf5").is_file()
    spec = (trained / "specs" / "facenet_train_resnet18_kitti.txt").read_text()
    assert str(steps["tfrecords_train"].outputs["tfrecords"] / "tfrecords" / "*") in spec
    assert "output_image_width: 160" in spec and "num_epochs: 2" in spec and "checkpoint_interval: 1" in spec
    assert str(steps["pretrained"].outputs["model_dir"] / "facenet_vunpruned_v2.0" / "model.tlt") in spec
    assert [line["status"] for line in status_lines(trained)][-1] == "SUCCESS"

    retrained = steps["retrain"].outputs["results"]
    assert (retrained / "weights" / "resnet18_detector_pruned.hdf5").is_file()
    retrain_spec = (retrained / "specs" / "facenet_retrain_resnet18_kitti.txt").read_text()
    assert str(steps["prune"].outputs["pruned"] / "model_pruned.hdf5") in retrain_spec

    inference = steps["inference"].outputs["results"]
    assert len(list((inference / "labels").iterdir())) == 5
    assert (steps["export"].outputs["onnx"] / "model.onnx").is_file()
    engine = steps["engine"].outputs["engine"]
    assert (engine / "model.engine").is_file() and (engine / "cal.bin").is_file()
    assert (engine / "labels.txt").read_text() == "face\n"
    # TAO Deploy ran the engine on every validation image, with its own flags (the stand-in checked them).
    deploy = {c["task"]: c["argv"] for c in invocations(tmp_path / "tao.jsonl") if c["kind"] == "deploy"}
    assert deploy["evaluate"][deploy["evaluate"].index("--image_dir") + 1] == str(kitti / "images")
    assert deploy["evaluate"][deploy["evaluate"].index("--label_dir") + 1] == str(kitti / "labels")
    assert "--key" not in deploy["evaluate"] and "--key" not in deploy["inference"]
    assert len(list((steps["inference_engine"].outputs["results"] / "labels").iterdir())) == 5

    # The key reaches TAO but no step log shows it.
    for step in steps.values():
        assert "--key nvidia_tlt" not in step.log.read_text()

    assert_observed(store, steps)


def assert_observed(store: str, steps: dict) -> None:
    """Live metrics in MLflow (one run per step), the run report and the assembled model."""
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("tao-aml").experiment_id])
    by_output = {run.data.tags.get("tao_aml.results_dir"): run for run in runs}
    train = by_output[str(steps["train"].outputs["results"])]
    assert [(m.step, m.value) for m in client.get_metric_history(train.info.run_id, "train/loss")] == [
        (0, 1.0), (1, 0.5)]
    for name in ("evaluate_pretrained", "evaluate_trained", "evaluate_retrained"):
        metrics = by_output[str(steps[name].outputs["results"])].data.metrics
        assert metrics["eval/mAP"] == 50.0 and metrics["eval/AP_face"] == 50.0
    pruned = by_output[str(steps["prune"].outputs["pruned"])].data.metrics
    assert pruned["prune/pruning_ratio"] == 0.5 and pruned["prune/param_count_before"] == 11_200_000
    assert by_output[str(steps["export"].outputs["onnx"])].data.metrics["export/model_size_mb"] > 0
    assert by_output[str(steps["engine"].outputs["engine"])].data.metrics["engine/engine_size_mb"] > 0
    inference = by_output[str(steps["inference"].outputs["results"])]
    assert [a.path for a in client.list_artifacts(inference.info.run_id, "previews")] == [
        "previews/images", "previews/preview_grid.jpg"]
    assert len(client.list_artifacts(inference.info.run_id, "previews/images")) == 5

    report = json.loads((steps["report"].outputs["report"] / "report.json").read_text())
    assert [(row["model"], row["metric"], row["value"]) for row in report["accuracy"]] == [
        ("pretrained", "eval/mAP", 50.0), ("trained", "eval/mAP", 50.0), ("pruned + retrained", "eval/mAP", 50.0)]
    assert report["parameters"] == {"before_pruning": 11_200_000, "after_pruning": 5_600_000, "pruning_ratio": 0.5}
    assert report["sizes"]["exported onnx"]["file"] == "model.onnx"
    assert report["sizes"]["engine engine"]["file"] == "model.engine"
    assert report["time"]["train"]["epochs"] == 2 and report["time"]["train"]["time_per_epoch_s"] == 1.0
    markdown = (steps["report"].outputs["report"] / "report.md").read_text()
    assert "| pruned + retrained | eval/mAP | 50 |" in markdown and "preview_grid.jpg" in markdown

    model = steps["register_model"].outputs["model"]
    card = json.loads((model / "model_card.json").read_text())
    assert {"model.onnx", "model.engine", "cal.bin", "labels.txt"} <= set(card["files"])
    assert "specs/facenet_inference_kitti_tlt.txt" in card["files"]
    assert card["tags"]["accuracy"] == "50" and card["family"] == "detectnet_v2"
    # The name and tags `tao-aml model register` gives the asset; the step itself registers nothing.
    assert card["name"] == "tao-facenet" and card["tags"]["accuracy_metric"] == "eval/mAP"
    assert card["tags"]["parameters_after_pruning"] == "5.6e+06" and card["tags"]["family"] == "detectnet_v2"
    # The engine's mAP (TAO Deploy's AP fraction, in percent like the .hdf5 model's) and precision become tags.
    assert report["engine_check"] == {"metric": "eval/mAP", "model": "pruned + retrained", "model_value": 50.0,
                                      "engine_value": 49.0, "drop": 1.0, "precision": "int8",
                                      "int8_route": "ptq_calibration"}
    assert "| eval/mAP | 50 | 49 | 1 |" in markdown
    assert "INT8 route: post-training calibration (PTQ) on training images" in markdown
    assert {k: card["tags"][k] for k in ("engine_accuracy", "engine_accuracy_drop", "engine_precision")} == {
        "engine_accuracy": "49", "engine_accuracy_drop": "1", "engine_precision": "int8"}
    # DeepStream and Triton files are named after the pipeline input model_name.
    assert {"README.md", "deepstream/config_infer_tao-facenet_onnx.txt",
            "deepstream/config_infer_tao-facenet_engine.txt", "triton/tao-facenet/config.pbtxt",
            "triton/tao-facenet/1/model.onnx", "engine.json"} <= set(card["files"])
    # No spec in the asset names a path of the node that wrote it.
    for spec in (model / "specs").iterdir():
        assert str(steps["train"].outputs["results"].parents[1]) not in spec.read_text(), spec
    # The Experiment spec ships as the retrain step trained with it, and passes TF1's spec loader.
    shipped = prototext.parse((model / "specs" / "facenet_retrain_resnet18_kitti.txt").read_text())
    trained_with = (steps["retrain"].outputs["results"] / "specs" / "facenet_retrain_resnet18_kitti.txt").read_text()
    for field in ("training_config.num_epochs", "training_config.batch_size_per_gpu"):
        assert shipped.get(field) == prototext.parse(trained_with).get(field), field
    assert shipped.get("dataset_config.validation_data_source.tfrecords_path") == "data/tfrecords_val/tfrecords/*"
    assert tf1_validator.validate(shipped, "Experiment", "shipped") == []
    assert client.search_registered_models() == []
    assert_predicts(model, steps["convert_val"].outputs["kitti"] / "images", steps["report"].outputs["report"])


def assert_predicts(model: Path, images: Path, out: Path) -> None:
    """The assembled asset runs with `tao-aml predict --local`: the stand-in export's planted face is found."""
    image = sorted(images.iterdir())[0]
    assert main(["predict", "--local", str(model), str(image), "--output-dir", str(out / "predictions")]) == 0
    [found] = json.loads((out / "predictions" / "detections.json").read_text())
    [face] = found["detections"]
    # Planted at the middle half of the 160 x 96 network input; the validation images have that size.
    assert face["label"] == "face" and face["box"] == pytest.approx([40.0, 24.0, 120.0, 72.0], abs=1e-3)


def test_a_failing_tao_task_stops_the_pipeline_with_its_message(tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as failure:
        rehearsed(tmp_path, [], TAO_STANDIN_FAIL_TASK="prune")
    assert failure.value.step == "prune"
    log = failure.value.log.read_text()
    assert "detectnet_v2 prune failed" in log
    assert "last" in log and "lines of TAO's output" in log
def test_provided_wider_data_skips_the_download(tmp_path: Path, served) -> None:
    server, _ = served
    wider = make_wider_download(tmp_path / "wider", random_images(4, seed=5), random_images(3, seed=6))
    run = runner(tmp_path, server, ["wider_urls=http://127.0.0.1:9/unreachable.zip"],
                 data_inputs={"wider_data": wider})
    steps = {s.name: s for s in run.run(only=["download_wider", "convert_train", "convert_val"])}
    manifest = json.loads((steps["download_wider"].outputs["output_dir"] / "download_manifest.json").read_text())
    assert manifest["downloads"] == []
    summary = json.loads((steps["convert_val"].outputs["kitti"] / "summary.json").read_text())
    assert summary["images"] == 3
    assert not [r for r in server.requests if r.path.endswith(".zip")]




def test_an_engine_that_loses_more_than_max_engine_map_drop_stops_before_the_model(tmp_path: Path) -> None:
    """The stand-in INT8 engine scores 49 against the .hdf5 model's 50: a limit of 0.5 points fails the run."""
    with pytest.raises(StepFailed) as failure:
        rehearsed(tmp_path, ["max_engine_map_drop=0.5"])
    assert failure.value.step == "register_model"
    assert "scores eval/mAP 49, 1 below the pruned + retrained model's 50" in failure.value.log.read_text()
    run = tmp_path / "rehearsal" / "run"
    assert json.loads((run / "report" / "report" / "report.json").read_text())["engine_check"]["drop"] == 1.0
    assert not (run / "register_model" / "model" / "model_card.json").exists()
