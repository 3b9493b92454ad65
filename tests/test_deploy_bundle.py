"""The model asset's deployment files, cross-checked against the specs and export settings that made the model.

DeepStream configs are parsed as nvinfer reads them (INI key=value groups), Triton's config.pbtxt with Triton's
own schema (tritonclient) and against the ONNX model's tensors (onnx), the shipped specs with TAO's validator.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
from pathlib import Path

import onnx
import pytest
import yaml

from model_fixtures import NODE, bodypose_outputs, facenet_args, facenet_outputs
from standins import onnx_models
from tao_aml.cli import main
from tao_aml.steps import onnx_graph, portable_specs, prototext, register_model
from tao_aml.steps.common import StepError
from tao_aml.steps.detectnet_v2 import tf1_validator
from triton_schema import model_config_pb2, parse

ONNX_TYPES = {onnx.TensorProto.FLOAT: model_config_pb2.TYPE_FP32}


def nvinfer(path: Path) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # nvinfer keys are case-sensitive (minBoxes)
    config.read_string(path.read_text())
    return config


@pytest.fixture
def facenet(tmp_path: Path) -> dict[str, Path]:
    outputs = facenet_outputs(tmp_path, width=736, height=416, max_batch_size=16)
    assert register_model.main(facenet_args(outputs)) == 0
    return outputs


def test_the_onnx_reader_agrees_with_the_onnx_package(tmp_path: Path) -> None:
    path = onnx_models.save(onnx_models.detectnet_v2(736, 416, [onnx_models.Box(10, 10, 100, 100)]),
                            str(tmp_path / "m.onnx"))
    graph = onnx_graph.read(path)
    model = onnx.load(path)
    initializers = {i.name for i in model.graph.initializer}
    for mine, theirs in ((graph.inputs, [i for i in model.graph.input if i.name not in initializers]),
                         (graph.outputs, list(model.graph.output))):
        assert [t.name for t in mine] == [t.name for t in theirs]
        for tensor, info in zip(mine, theirs, strict=True):
            dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in info.type.tensor_type.shape.dim]
            assert list(tensor.shape) == dims and tensor.elem_type == "FLOAT"
    (tmp_path / "bad.onnx").write_bytes(b"\xff\xff\xff\xff not protobuf")
    with pytest.raises(StepError, match="bad.onnx is not an ONNX model"):
        onnx_graph.read(str(tmp_path / "bad.onnx"))


def test_nvinfer_configs_carry_the_inference_spec_and_export_settings(facenet: dict[str, Path]) -> None:
    model = facenet["out"]
    card = json.loads((model / "model_card.json").read_text())
    spec = prototext.parse((facenet["inference"] / "specs" / "facenet_inference_kitti_tlt.txt").read_text())
    clustering = spec.get('bbox_handler_config.classwise_bbox_handler_config["face"].value.clustering_config')
    engine = json.loads((facenet["engine"] / "engine.json").read_text())
    for name, uses_engine in (("config_infer_facenet_onnx.txt", False), ("config_infer_facenet_engine.txt", True)):
        config = nvinfer(model / "deepstream" / name)
        prop = config["property"]
        # Export and engine settings: 736x416x3 input, the engine's batch and precision, TAO's preprocessing.
        assert prop["infer-dims"] == "3;416;736" and prop["batch-size"] == str(engine["max_batch_size"]) == "16"
        assert prop["network-mode"] == "1" and prop["int8-calib-file"] == "../cal.bin"
        assert float(prop["net-scale-factor"]) == pytest.approx(1 / 255) and prop["offsets"] == "0.0;0.0;0.0"
        assert prop["model-color-format"] == "0" and prop["network-type"] == "0"
        assert prop["output-blob-names"] == "output_bbox/BiasAdd:0;output_cov/Sigmoid:0"
        assert prop["maintain-aspect-ratio"] == "1" and prop["symmetric-padding"] == "1"
        assert prop["num-detected-classes"] == "1" and prop["cluster-mode"] == "1"  # the spec's DBSCAN
        assert ("model-engine-file" in prop) is uses_engine
        # Every path resolves inside the asset, relative to the config.
        for key in ("onnx-file", "labelfile-path", "int8-calib-file") + (("model-engine-file",) if uses_engine else ()):
            assert (model / "deepstream" / prop[key]).resolve().is_file(), key
        assert (model / "labels.txt").read_text().split() == ["face"]
        attrs = config["class-attrs-0"]
        assert float(attrs["pre-cluster-threshold"]) == clustering.get("coverage_threshold")
        assert float(attrs["eps"]) == clustering.get("dbscan_eps")
        assert int(attrs["minBoxes"]) == clustering.get("dbscan_min_samples")
        assert float(attrs["dbscan-min-score"]) == clustering.get("dbscan_confidence_threshold")
        assert float(attrs["post-cluster-threshold"]) == clustering.get("dbscan_confidence_threshold")
        assert int(attrs["detected-min-h"]) == clustering.get("minimum_bounding_box_height")
    assert card["deepstream"] == ["config_infer_facenet_engine.txt", "config_infer_facenet_onnx.txt"]


def test_nms_in_the_inference_spec_is_nvinfer_cluster_mode_2(tmp_path: Path) -> None:
    outputs = facenet_outputs(tmp_path, clustering={"clustering_algorithm": "NMS", "nms_iou_threshold": 0.45,
                                                    "nms_confidence_threshold": 0.3})
    assert register_model.main(facenet_args(outputs)) == 0
    config = nvinfer(outputs["out"] / "deepstream" / "config_infer_facenet_onnx.txt")
    assert config["property"]["cluster-mode"] == "2"
    attrs = config["class-attrs-0"]
    assert float(attrs["nms-iou-threshold"]) == 0.45 and float(attrs["post-cluster-threshold"]) == 0.3


def test_triton_config_parses_with_tritons_schema_and_matches_the_onnx_model(facenet: dict[str, Path]) -> None:
    repository = facenet["out"] / "triton"
    assert sorted(p.name for p in repository.iterdir()) == ["facenet"]
    config = parse((repository / "facenet" / "config.pbtxt").read_text())
    assert config.name == "facenet" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 16
    assert config.default_model_filename == "model.onnx"
    model = onnx.load(str(repository / "facenet" / "1" / "model.onnx"))
    initializers = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    for configured, graph in ((list(config.input), graph_inputs), (list(config.output), list(model.graph.output))):
        by_name = {t.name: t for t in graph}
        assert sorted(c.name for c in configured) == sorted(by_name)
        for tensor in configured:
            info = by_name[tensor.name].type.tensor_type
            # Triton's dims leave out the batch dimension (max_batch_size > 0); the ONNX batch is dynamic.
            assert not info.shape.dim[0].HasField("dim_value")
            assert list(tensor.dims) == [d.dim_value for d in info.shape.dim[1:]]
            assert tensor.data_type == ONNX_TYPES[info.elem_type]
    assert config.input[0].format == model_config_pb2.ModelInput.FORMAT_NCHW
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


def test_the_tensorrt_plan_is_added_on_request(tmp_path: Path) -> None:
    outputs = facenet_outputs(tmp_path)
    assert register_model.main(facenet_args(outputs, "--triton_plan", "true")) == 0
    plan = parse((outputs["out"] / "triton" / "facenet_trt" / "config.pbtxt").read_text())
    assert plan.platform == "tensorrt_plan" and plan.default_model_filename == "model.plan"
    assert (outputs["out"] / "triton" / "facenet_trt" / "1" / "model.plan").read_bytes() == \
        (outputs["engine"] / "model.engine").read_bytes()
    assert json.loads((outputs["out"] / "model_card.json").read_text())["triton"]["models"] == [
        "facenet", "facenet_trt"]


def test_tao_aml_triton_lays_out_a_repository_from_a_downloaded_asset(facenet: dict[str, Path], tmp_path: Path,
                                                                      capsys) -> None:
    target = tmp_path / "repo"
    assert main(["triton", str(facenet["out"]), "--output-dir", str(target)]) == 0
    assert (target / "facenet" / "config.pbtxt").read_text() == \
        (facenet["out"] / "triton" / "facenet" / "config.pbtxt").read_text()
    assert "tritonserver --model-repository" in capsys.readouterr().out
    assert main(["triton", str(facenet["out"]), "--output-dir", str(target)]) == 2  # not empty: nothing overwritten
    (facenet["out"] / "model.onnx").unlink()
    assert main(["triton", str(facenet["out"]), "--output-dir", str(tmp_path / "other")]) == 2
    assert "lacks model.onnx" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_bodypose2d_config_and_post_processing_match_the_export(tmp_path: Path) -> None:
    outputs = bodypose_outputs(tmp_path, max_batch_size=4)
    assert register_model.main(["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--specs",
                                str(outputs["inference"]), "--output_dir", str(outputs["out"])]) == 0
    folder = outputs["out"] / "deepstream"
    prop = nvinfer(folder / "config_infer_bodypose2d.txt")["property"]
    assert prop["infer-dims"] == "3;288;384" and prop["network-input-order"] == "1"
    assert prop["batch-size"] == "4" and prop["network-mode"] == "1" and prop["network-type"] == "100"
    assert prop["output-blob-names"] == "conv2d_transpose_1/BiasAdd:0;heatmap_out/BiasAdd:0"
    assert prop["net-scale-factor"] == "0.00390625" and prop["offsets"] == "128.0;128.0;128.0"
    assert prop["output-tensor-meta"] == "1" and prop["maintain-aspect-ratio"] == "1"
    lines = [line for line in (folder / "bodypose2d_postprocess_config.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    values: dict[str, list[str]] = {}
    for line in lines:
        key, value = line.split("=", 1)
        values.setdefault(key, []).append(value)
    infer = yaml.safe_load((outputs["inference"] / "specs" / "infer_spec_retrained_strict.yaml").read_text())
    assert float(values["threshHeat"][0]) == infer["heatmap_threshold"]
    assert float(values["threshVectorScore"][0]) == infer["paf_threshold"]
    assert values["batchSize"] == [prop["batch-size"]] and values["numJoints"] == ["18"]
    assert values["jointEdges"][:2] == ["1, 8", "8, 9"] and len(values["jointEdges"]) == 19


def test_an_inference_spec_for_another_size_is_refused(tmp_path: Path, caplog) -> None:
    outputs = bodypose_outputs(tmp_path)
    spec = outputs["inference"] / "specs" / "infer_spec_retrained_strict.yaml"
    spec.write_text(spec.read_text().replace("- 384", "- 320"))
    with caplog.at_level(logging.ERROR):
        assert register_model.main(["--export", str(outputs["export"]), "--engine", str(outputs["engine"]),
                                    "--specs", str(outputs["inference"]), "--output_dir", str(outputs["out"])]) == 2
    assert "input_shape [288, 320] differs from the exported model's 288x384" in caplog.records[-1].getMessage()
    assert list(outputs["out"].iterdir()) == []  # nothing assembled, not even a partial folder


def test_shipped_specs_are_node_free_and_pass_taos_validator(facenet: dict[str, Path]) -> None:
    specs = facenet["out"] / "specs"
    for name in ("facenet_retrain_resnet18_kitti.txt", "facenet_inference_kitti_tlt.txt"):
        text = (specs / name).read_text()
        assert NODE not in text and "/mnt/" not in text
        tree = prototext.parse(text, name)
        root = portable_specs.detectnet_root(tree)
        assert tf1_validator.validate(tree, root, name) == []
    experiment = prototext.parse((specs / "facenet_retrain_resnet18_kitti.txt").read_text())
    assert experiment.get("dataset_config.data_sources.tfrecords_path") == "data/tfrecords_train/tfrecords/*"
    assert not experiment.has("model_config.pretrained_model_file")
    notes = json.loads((facenet["out"] / "model_card.json").read_text())["spec_notes"]
    assert "pretrained_model_file is left empty" in notes["facenet_retrain_resnet18_kitti.txt"]
    readme = (facenet["out"] / "README.md").read_text()
    assert "pretrained_model_file is left empty" in readme and "| face | dbscan | 0.004 |" in readme


def test_taos_validator_refuses_what_tao_refuses() -> None:
    """The engine step's spec before this change had no data_sources: TAO prints FAILURE for it."""
    template = Path(portable_specs.__file__).parents[1] / "templates" / "facenet" / "facenet_retrain_resnet18_kitti.txt"
    tree = prototext.parse(template.read_text(), str(template))
    assert tf1_validator.validate(tree, "Experiment", "x") == [
        "x: Experiment.dataset_config.data_sources should be set in experiment spec file."]
    tree.set("augmentation_config.preprocessing.output_image_width", 730)
    tree.set("postprocessing_config.target_class_config[\"face\"].value.clustering_config.dbscan_eps", 1.5)
    problems = tf1_validator.validate(tree, "Experiment", "x")
    assert "x: Experiment.augmentation_config.preprocessing.output_image_width should be % 16. Wrong value: 730" \
        in problems
    assert any("dbscan_eps should be <= 1.0. Wrong value: 1.5" in p for p in problems)


def test_bpnet_specs_ship_with_paths_inside_the_asset_or_empty(tmp_path: Path) -> None:
    outputs = bodypose_outputs(tmp_path)
    assert register_model.main(["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--specs",
                                str(outputs["inference"]), "--output_dir", str(outputs["out"])]) == 0
    train = yaml.safe_load((outputs["out"] / "specs" / "bpnet_retrain_m1_coco.yaml").read_text())
    assert train["inference_spec"] == "specs/infer_spec_retrained_strict.yaml"
    assert train["pretrained_weights"] is None and train["checkpoint_dir"] is None
    assert train["dataloader"]["dataset_config"]["root_data_path"] is None
    for path in (outputs["out"] / "specs").iterdir():
        assert not any(os.path.isabs(word) for word in path.read_text().split() if word.startswith("/")), path


def test_an_export_with_other_tensor_names_is_refused_naming_the_file(tmp_path: Path, caplog) -> None:
    outputs = facenet_outputs(tmp_path)
    onnx_models.save(onnx_models.detectnet_v2(160, 96, [onnx_models.Box(40, 24, 120, 72)],
                                              output_names=("scores", "boxes")), str(outputs["export"] / "model.onnx"))
    with caplog.at_level(logging.ERROR):
        assert register_model.main(facenet_args(outputs)) == 2
    message = caplog.records[-1].getMessage()
    assert f"{outputs['export'] / 'model.onnx'} is not a TAO 5.0 DetectNet_v2 export" in message
    assert "outputs ['boxes', 'scores']" in message and list(outputs["out"].iterdir()) == []


def test_max_engine_accuracy_drop_needs_the_reports_engine_check(tmp_path: Path, caplog) -> None:
    outputs = facenet_outputs(tmp_path, engine_check={})
    with caplog.at_level(logging.ERROR):
        assert register_model.main(facenet_args(outputs, "--max_engine_accuracy_drop", "1")) == 2
    assert "needs the run report's engine_check" in caplog.records[-1].getMessage()
    within = facenet_outputs(tmp_path / "ok")  # drop 0.75 points
    assert register_model.main(facenet_args(within, "--max_engine_accuracy_drop", "1")) == 0
    assert json.loads((within["out"] / "model_card.json").read_text())["tags"]["engine_accuracy_drop"] == "0.75"


def test_a_spec_tao_would_refuse_is_named_by_the_step_output_it_came_from(tmp_path: Path, caplog) -> None:
    outputs = facenet_outputs(tmp_path)
    spec = outputs["engine"] / "specs" / "facenet_retrain_resnet18_kitti.txt"
    spec.write_text(spec.read_text().replace("num_epochs: 50", "num_epochs: 0"))
    with caplog.at_level(logging.ERROR):
        assert register_model.main(facenet_args(outputs)) == 2
    message = caplog.records[-1].getMessage()
    assert f"spec {spec}, as shipped with the model, would be refused by TAO 5.0" in message
    assert "training_config.num_epochs should be > 0. Wrong value: 0" in message
    assert list(outputs["out"].iterdir()) == []
