"""The whole BodyPose pipeline runs locally from its YAML: `tao-aml rehearse` (real step code, TAO simulated)
on generated COCO data; the other tests download from a real HTTP server on 127.0.0.1.

Each step reads what the one before it wrote, through the bindings of pipeline_component.yml; the
bpnet stand-in resolves every image and mask path of the TFRecords as root_data_path + path, so a
data root that does not find both the (read-only) images and the (converter-written) masks fails here.
"""

import json
from pathlib import Path

import pytest
import yaml

from coco_fixtures import make_coco, make_coco_zips
from http_server import add_ngc_model
from tao_aml.local.local_run import LocalRunner, StepFailed
from tao_aml.local.rehearse import rehearse
from tao_aml.repo.pipelines import Pipeline, SettingError, resolve_settings
from tao_aml.repo.profiles import profile_assignments
from tao_aml.simulate import environment_path, invocations, status_lines
from tao_aml.steps.specs.spec_templates import SHIPPED

MODEL = "nvidia/tao/bodyposenet:trainable_v1.0"
# The smoke profile users run first, with INT8 (calibration exercised) on fewer images than the test set holds.
SMALL = profile_assignments(Pipeline.load("bodypose"), "smoke") + ["calibration_images=3", "engine_precision=int8"]


@pytest.fixture
def served(http_server):
    zips = make_coco_zips(http_server.root, train=8, val=4)
    add_ngc_model(http_server, MODEL, {"model.tlt": b"pretrained weights"})
    # The download step checks each file against the size it is given, as for the defaults.
    downloads = [
        "coco_urls=" + ",".join(http_server.url("/" + name) for name in zips),
        "coco_sizes=" + ",".join(str(path.stat().st_size) for path in zips.values()),
    ]
    return http_server, downloads


def runner(tmp_path: Path, server, assignments, data_inputs=None, **env) -> LocalRunner:
    pipeline = Pipeline.load("bodypose")
    settings = resolve_settings(pipeline, SMALL + assignments)
    # Each bpnet step builds its node-local data root of links under TMPDIR.
    (tmp_path / "node_tmp").mkdir()
    return LocalRunner(
        pipeline, settings, tmp_path / "run", data_inputs=data_inputs,
        env={"TAO_AML_NGC_API_BASE": server.base_url, "TAO_STANDIN_LOG": str(tmp_path / "tao.jsonl"),
             "TMPDIR": str(tmp_path / "node_tmp"), **env},
        path_for_environment=environment_path,
    )


def test_bodypose_pipeline_end_to_end(tmp_path: Path) -> None:
    """`tao-aml rehearse bodypose` on generated COCO data: 8 training and 4 validation images."""
    done = rehearse(Pipeline.load("bodypose"), [*SMALL, "train.optimizer.momentum=0.8"], {}, tmp_path / "rehearsal",
                    sample=8, progress=lambda line: None, env={"TAO_STANDIN_LOG": str(tmp_path / "tao.jsonl")})
    steps = {step.name: step for step in done.runs}

    calls = invocations(tmp_path / "tao.jsonl")
    assert [(c["family"], c["task"]) for c in calls] == [
        ("bpnet", "dataset_convert"), ("bpnet", "dataset_convert"), ("bpnet", "train"), ("bpnet", "evaluate"),
        ("bpnet", "prune"), ("bpnet", "train"), ("bpnet", "evaluate"), ("bpnet", "export"), ("bpnet", "export"),
        ("bpnet", "evaluate"), ("bpnet", "inference"),
    ]
    assert all(c["ok"] for c in calls)
    modes = [c["argv"][c["argv"].index("--mode") + 1] for c in calls if c["task"] == "dataset_convert"]
    assert modes == ["train", "test"]
    # No specs connected: every step that reads a template ran without --spec_dir and read the shipped one.
    for name in ("tfrecords_train", "tfrecords_val", "train", "evaluate_trained", "retrain", "evaluate_retrained",
                 "export", "inference"):
        assert "--spec_dir" not in steps[name].command
        assert f"from template {SHIPPED}/bodypose/" in steps[name].log.read_text(), name

    subset = json.loads((steps["coco_subset"].outputs["annotations"] / "summary.json").read_text())
    assert subset["splits"]["train"] == {"images": 8, "persons": 8, "persons_with_keypoints": 6,
                                         "crowd_annotations": 2}

    # Masks are written to the converter's output, images stay in the download (never copied).
    train_set = steps["tfrecords_train"].outputs["dataset"]
    manifest = json.loads((train_set / "dataset.json").read_text())
    assert manifest["records"] == ["train-fold-000-of-001"]
    assert len(list((train_set / "train_mask2017").iterdir())) == 6  # images with any person
    assert not list(train_set.rglob("train2017"))

    trained = steps["train"].outputs["results"]
    assert (trained / "bpnet_model.hdf5").is_file()
    spec = yaml.safe_load((trained / "specs" / "bpnet_train_m1_coco.yaml").read_text())
    dataset = spec["dataloader"]["dataset_config"]
    coco_spec = json.loads((trained / "specs" / "coco_spec.json").read_text())
    assert dataset["root_data_path"] == coco_spec["root_directory_path"] and dataset["root_data_path"].endswith("/")
    assert dataset["train_records_folder_path"] == str(train_set / "tfrecords")
    assert dataset["train_records_path"] == ["train-fold-000-of-001"]
    assert spec["num_epoch"] == 5 and spec["dataloader"]["batch_size"] == 2 and spec["optimizer"]["momentum"] == 0.8
    assert spec["pretrained_weights"].endswith("model.tlt")
    assert spec["dataloader"]["pose_config"]["pose_config_path"] == str(trained / "specs" / "bpnet_18joints.json")
    infer = yaml.safe_load((trained / "specs" / "infer_spec.yaml").read_text())
    assert spec["inference_spec"] == str(trained / "specs" / "infer_spec.yaml")
    assert infer["train_spec"] == str(trained / "specs" / "bpnet_train_m1_coco.yaml")
    assert [line["status"] for line in status_lines(trained)][-1] == "SUCCESS"

    retrained = steps["retrain"].outputs["results"]
    retrain_spec = yaml.safe_load((retrained / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    assert retrain_spec["load_graph"] is True
    assert retrain_spec["pretrained_weights"] == str(steps["prune"].outputs["pruned"] / "model_pruned.hdf5")
    assert "momentum" in retrain_spec["optimizer"] and retrain_spec["optimizer"]["momentum"] == 0.9

    for name in ("evaluate_trained", "evaluate_retrained"):
        results = steps[name].outputs["results"]
        assert (results / "results.csv").is_file()
        assert status_lines(results)[-2]["kpi"]["AP_0.5"] == 0.5

    calibration = steps["calibration"].outputs["calibration"]
    chosen = json.loads((calibration / "calibration.json").read_text())
    assert chosen["qualifying_images"] == 4 and len(chosen["images"]) == 3
    assert sorted(p.name for p in (calibration / "images").iterdir()) == chosen["images"]

    # Two exports of the retrained model: TAO's (evaluate, inference) and the SDK-compatible one (DeepStream).
    exported = steps["export"].outputs["exported"]
    assert {"model.onnx", "model.engine", "cal.bin", "cal.tensorfile"} <= {p.name for p in (exported / "tao").iterdir()}
    assert {"model.onnx", "model.engine", "cal.bin"} <= {p.name for p in (exported / "sdk_compatible").iterdir()}
    export_calls = [c["argv"] for c in calls if c["task"] == "export"]
    for argv in export_calls:
        assert argv[argv.index("--input_dims") + 1] == "288,384,3" and argv[argv.index("--batches") + 1] == "3"
    assert ["--sdk_compatible_model" in argv for argv in export_calls] == [False, True]

    # TAO 5.0 bpnet evaluate runs TAO's engine (BpNetInferencer takes a .engine) at its input shape.
    engine_call = [c["argv"] for c in calls if c["task"] == "evaluate"][-1]
    assert engine_call[engine_call.index("--model_filename") + 1] == str(exported / "tao" / "model.engine")
    engine_spec = yaml.safe_load((steps["evaluate_engine"].outputs["results"] / "specs"
                                  / "infer_spec_retrained_strict.yaml").read_text())
    assert engine_spec["input_shape"] == [288, 384]

    report_json = json.loads((steps["report"].outputs["report"] / "report.json").read_text())
    assert [row["model"] for row in report_json["accuracy"]] == ["trained", "pruned + retrained"]
    assert report_json["engine_check"] == {"metric": "eval/AP_0.50-0.95_all", "model": "pruned + retrained",
                                           "model_value": 0.5, "engine_value": 0.5, "drop": 0.0, "precision": "int8"}
    assert "gpu_hours" in report_json["time"]["train"]
    model = steps["register_model"].outputs["model"]
    card = json.loads((model / "model_card.json").read_text())
    assert card["tags"]["engine_precision"] == "int8" and card["tags"]["engine_accuracy"] == "0.5"
    assert {"deepstream/config_infer_bodypose2d.txt", "deepstream/bodypose2d_postprocess_config.txt",
            "README.md", "tao/model.onnx", "tao/model.engine", "sdk_compatible/model.onnx",
            "sdk_compatible/model.engine", "specs/bpnet_18joints.json"} <= set(card["files"])
    # DeepStream runs the SDK-compatible model, TAO's inference spec names TAO's engine.
    deepstream = (model / "deepstream" / "config_infer_bodypose2d.txt").read_text()
    assert "onnx-file=../sdk_compatible/model.onnx" in deepstream
    assert [t["name"] for t in card["graph"]["outputs"]] == ["conv2d_transpose_1/BiasAdd:0", "heatmap_out/BiasAdd:0"]
    shipped = load_like_bpnet_inference(model, "specs/infer_spec_retrained_strict.yaml")
    assert shipped["model_path"] == "tao/model.engine" and shipped["train_spec"] == "specs/bpnet_retrain_m1_coco.yaml"
    # The train spec in the asset holds what the retrain step trained with, not the template's values.
    as_trained = yaml.safe_load((retrained / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    shipped_train = yaml.safe_load((model / shipped["train_spec"]).read_text())
    for key in ("num_epoch", "checkpoint_n_epoch", "dataloader.batch_size", "optimizer", "model"):
        assert lookup(shipped_train, key) == lookup(as_trained, key), key
    assert as_trained["num_epoch"] == 5
    for spec in (model / "specs").iterdir():
        assert str(tmp_path) not in spec.read_text(), spec
    inference = steps["inference"].outputs["results"]
    assert len(list((inference / "images_annotated").iterdir())) == 4
    strict = yaml.safe_load((inference / "specs" / "infer_spec_retrained_strict.yaml").read_text())
    assert strict["input_shape"] == [288, 384] and strict["model_path"] == str(exported / "tao" / "model.engine")

    for step in steps.values():
        assert "--key nvidia_tlt" not in step.log.read_text()


def lookup(tree: dict, dotted: str) -> object:
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def load_like_bpnet_inference(folder: Path, infer_spec: str) -> dict:
    """Load an inference spec as `bpnet inference` does when run in `folder` (nvidia_tao_tf1/cv/bpnet/scripts/
    inference.py, inferencer/bpnet_inferencer.py, dataloaders/pose_config.py): every path opened as written."""
    infer = yaml.safe_load((folder / infer_spec).read_text())
    assert infer["train_spec"].endswith(".yaml")  # io_utils.load_yaml_file checks the extension
    train = yaml.safe_load((folder / infer["train_spec"]).read_text())
    assert (folder / infer["model_path"]).is_file()
    assert train["model"]["data_format"] == "channels_last"
    normalization = train["dataloader"]["normalization_params"]
    assert len(normalization["image_scale"]) == len(normalization["image_offset"]) == 3
    image_dims, target_shape = train["dataloader"]["image_config"]["image_dims"], \
        train["dataloader"]["pose_config"]["target_shape"]
    assert image_dims["height"] // target_shape[0] == 8  # the model's stride
    pose = json.loads((folder / train["dataloader"]["pose_config"]["pose_config_path"]).read_text())
    person = [c for c in pose["categories"] if c["name"] == "person"][0]
    assert person["num_joints"] == len(person["keypoints"]) == 18 and len(person["skeleton"]) == 19
    return infer


def test_images_per_split_limits_every_step_that_reads_coco(tmp_path: Path, served) -> None:
    server, downloads = served
    run = runner(tmp_path, server, [*downloads, "images_per_split=2"])
    steps = {s.name: s for s in run.run(only=["download_coco", "coco_subset", "tfrecords_val"])}
    val = json.loads((steps["coco_subset"].outputs["annotations"] / "annotations" /
                      "person_keypoints_val2017.json").read_text())
    assert [image["file_name"] for image in val["images"]] == ["000000001001.jpg", "000000001002.jpg"]
    assert len(list((steps["tfrecords_val"].outputs["dataset"] / "val_mask2017").iterdir())) == 1


def test_provided_coco_data_skips_the_download(tmp_path: Path, served) -> None:
    server, _ = served
    coco = make_coco(tmp_path / "mine", train=4, val=2)
    run = runner(tmp_path, server, ["coco_urls=http://127.0.0.1:9/unreachable.zip"], data_inputs={"coco_data": coco})
    steps = {s.name: s for s in run.run(only=["download_coco", "coco_subset"])}
    summary = json.loads((steps["coco_subset"].outputs["annotations"] / "summary.json").read_text())
    assert summary["coco_root"] == str(coco) and summary["splits"]["val"]["images"] == 2
    assert not [r for r in server.requests if r.path.endswith(".zip")]


def test_a_failing_tao_task_stops_the_pipeline_with_its_message(tmp_path: Path, served) -> None:
    server, downloads = served
    run = runner(tmp_path, server, downloads, TAO_STANDIN_FAIL_TASK="bpnet:prune")
    with pytest.raises(StepFailed) as failure:
        run.run()
    assert failure.value.step == "prune"
    assert "bpnet prune failed" in failure.value.log.read_text()


def test_epochs_not_a_multiple_of_checkpoint_interval_fail_before_tao(tmp_path: Path, served) -> None:
    server, downloads = served
    run = runner(tmp_path, server, [*downloads, "train_epochs=7"])
    with pytest.raises(StepFailed) as failure:
        run.run()
    assert failure.value.step == "train"
    assert "num_epoch 7 is not a multiple of checkpoint_n_epoch 5" in failure.value.log.read_text()
    assert "train" not in [c["task"] for c in invocations(tmp_path / "tao.jsonl")]


def test_an_override_breaking_a_tao_rule_is_refused_offline() -> None:
    pipeline = Pipeline.load("bodypose")
    with pytest.raises(SettingError) as refused:
        resolve_settings(pipeline, ["train.num_epoch=7"])
    assert "num_epoch 7 is not a multiple of checkpoint_n_epoch 5" in str(refused.value)
    with pytest.raises(SettingError) as refused:
        resolve_settings(pipeline, ["retrain.dataloader.dataset_config.root_data_path=/data/"])
    assert "root_data_path is a path the step writes at run time" in str(refused.value)
    assert resolve_settings(pipeline, ["inference.heatmap_threshold=0.2"]).inputs == {
        "inference_overrides": "heatmap_threshold=0.2"}
