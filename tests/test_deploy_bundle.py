"""The model asset's deployment files, cross-checked against the specs and export settings that made the model.

DeepStream configs are parsed as nvinfer reads them (INI key=value groups), Triton's config.pbtxt with Triton's
own schema (tritonclient) and against the ONNX model's tensors (onnx), the shipped specs with TAO's validator.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

import nvinfer_decode
from model_fixtures import NODE, bodypose_outputs, detectnet_v2_outputs, facenet_args, facenet_outputs
from tao_aml.cli import main
from tao_aml.serve.detectnet_v2 import Decoder
from tao_aml.simulate import onnx_models
from tao_aml.steps.asset import onnx_graph, register_model
from tao_aml.steps.common import StepError
from tao_aml.steps.detectnet_v2 import tf1_validator
from tao_aml.steps.detectnet_v2.portable_spec import detectnet_root
from tao_aml.steps.specs import prototext
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
    for name, uses_engine in (("config_infer_tao-facenet_onnx.txt", False),
                              ("config_infer_tao-facenet_engine.txt", True)):
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
        # nvinfer compares post-cluster-threshold with a cluster's highest cell coverage: TAO has no such filter.
        assert float(attrs["post-cluster-threshold"]) == 0.0
        assert int(attrs["detected-min-h"]) == clustering.get("minimum_bounding_box_height")
    assert card["deepstream"] == ["config_infer_tao-facenet_engine.txt", "config_infer_tao-facenet_onnx.txt"]


def test_nms_in_the_inference_spec_is_nvinfer_cluster_mode_2(tmp_path: Path) -> None:
    outputs = facenet_outputs(tmp_path, clustering={"clustering_algorithm": "NMS", "nms_iou_threshold": 0.45,
                                                    "nms_confidence_threshold": 0.3})
    assert register_model.main(facenet_args(outputs)) == 0
    config = nvinfer(outputs["out"] / "deepstream" / "config_infer_tao-facenet_onnx.txt")
    assert config["property"]["cluster-mode"] == "2"
    attrs = config["class-attrs-0"]
    assert float(attrs["nms-iou-threshold"]) == 0.45 and float(attrs["post-cluster-threshold"]) == 0.3


def check_triton_model(folder: Path, onnx_path: Path, max_batch_size: int) -> model_config_pb2.ModelConfig:
    """config.pbtxt parses with Triton's schema and declares the ONNX model's tensors (the plan is built from it)."""
    config = parse((folder / "config.pbtxt").read_text())
    assert config.name == folder.name and config.max_batch_size == max_batch_size
    assert (folder / "1" / config.default_model_filename).is_file()
    model = onnx.load(str(onnx_path))
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
    return config


def test_triton_config_parses_with_tritons_schema_and_matches_the_onnx_model(facenet: dict[str, Path]) -> None:
    repository = facenet["out"] / "triton"
    assert sorted(p.name for p in repository.iterdir()) == ["tao-facenet"]  # the pipeline's model_name
    config = check_triton_model(repository / "tao-facenet", repository / "tao-facenet" / "1" / "model.onnx", 16)
    assert config.platform == "onnxruntime_onnx" and config.default_model_filename == "model.onnx"


def own_classes(tmp_path: Path, *extra: str, gpu: dict | None = None, size: tuple[int, int] = (160, 96),
                **clustering: object) -> dict[str, Path]:
    """A DetectNet_v2 model of your own classes (car, pedestrian) named parking-lot, engine built on `gpu`."""
    outputs = detectnet_v2_outputs(tmp_path, width=size[0], height=size[1], clustering=clustering or None)
    info = json.loads((outputs["engine"] / "engine.json").read_text())
    (outputs["engine"] / "engine.json").write_text(json.dumps(dict(info, gpu=gpu)))
    assert register_model.main(["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--specs",
                                str(outputs["inference"]), "--model_name", "parking-lot", "--output_dir",
                                str(outputs["out"]), *extra]) == 0
    return outputs


A100 = {"name": "NVIDIA A100 80GB PCIe", "compute_capability": "8.0"}
T4 = {"name": "Tesla T4", "compute_capability": "7.5"}


def test_a_model_of_your_own_classes_is_named_by_the_pipeline_everywhere(tmp_path: Path) -> None:
    outputs = own_classes(tmp_path)
    model = outputs["out"]
    card = json.loads((model / "model_card.json").read_text())
    assert card["triton"]["models"] == ["parking-lot"] and card["triton"]["model"] == "parking-lot"
    assert sorted(p.name for p in (model / "triton").iterdir()) == ["parking-lot"]
    check_triton_model(model / "triton" / "parking-lot", model / "model.onnx", 4)
    assert card["deepstream"] == ["config_infer_parking-lot_engine.txt", "config_infer_parking-lot_onnx.txt"]
    config = nvinfer(model / "deepstream" / "config_infer_parking-lot_onnx.txt")
    assert config["property"]["num-detected-classes"] == "2" and "class-attrs-1" in config
    assert (model / "labels.txt").read_text().split() == ["car", "pedestrian"] == card["postprocessing"]["classes"]
    text = "".join(p.read_text() for p in model.rglob("*") if p.suffix in (".txt", ".pbtxt", ".json", ".md"))
    assert "facenet" not in text.lower() and "face" not in (model / "deepstream").joinpath(
        "config_infer_parking-lot_engine.txt").read_text()


def test_a_plan_built_on_another_gpu_family_stays_out_of_the_triton_model(tmp_path: Path) -> None:
    """Built on the training A100, served on the default T4: the Triton model is the ONNX model alone."""
    outputs = own_classes(tmp_path, "--triton_plan", "true", gpu=A100)
    card = json.loads((outputs["out"] / "model_card.json").read_text())
    assert card["triton"]["models"] == ["parking-lot"] and not card["triton"]["plan"]["included"]
    reason = "the engine was built on NVIDIA A100 80GB PCIe (compute capability 8.0); the serving GPU T4 is 7.5"
    assert card["triton"]["plan"]["reason"] == reason
    assert f"no TensorRT plan, because {reason}." in (outputs["out"] / "README.md").read_text()


@pytest.mark.parametrize("gpu, extra, reason", [
    (T4, (), "the serving Triton's TensorRT is not known (Azure ML's no-code Triton deployment does not state its "
             "Triton release); the plan needs TensorRT 8.5.3 (Triton 23.02 or 23.03)"),
    (T4, ("--serving_tensorrt", "10.3.0"), "the serving Triton has TensorRT 10.3.0; the plan needs TensorRT 8.5.3 "
                                           "(Triton 23.02 or 23.03)"),
    (None, ("--serving_tensorrt", "8.5.3"), "engine.json does not record the GPU that built the engine"),
], ids=["unknown TensorRT", "other TensorRT", "unknown GPU"])
def test_a_plan_that_may_not_load_stays_out_with_the_reason(tmp_path: Path, gpu, extra, reason) -> None:
    outputs = own_classes(tmp_path, "--triton_plan", "true", *extra, gpu=gpu)
    plan = json.loads((outputs["out"] / "model_card.json").read_text())["triton"]["plan"]
    assert plan == {"included": False, "reason": reason}
    assert sorted(p.name for p in (outputs["out"] / "triton").iterdir()) == ["parking-lot"]


def test_a_plan_for_the_serving_gpu_and_tensorrt_goes_in(tmp_path: Path) -> None:
    outputs = own_classes(tmp_path, "--triton_plan", "true", "--serving_gpu", "A100", "--serving_tensorrt", "8.5.3",
                          gpu=A100)
    repository = outputs["out"] / "triton"
    card = json.loads((outputs["out"] / "model_card.json").read_text())
    assert card["triton"]["models"] == ["parking-lot", "parking-lot_trt"]
    assert card["triton"]["plan"] == {"included": True, "reason": None, "gpu": "A100", "compute_capability": "8.0",
                                      "tensorrt": "8.5.3"}
    plan = check_triton_model(repository / "parking-lot_trt", outputs["out"] / "model.onnx", 4)
    assert plan.platform == "tensorrt_plan" and plan.default_model_filename == "model.plan"
    assert (repository / "parking-lot_trt" / "1" / "model.plan").read_bytes() == \
        (outputs["engine"] / "model.engine").read_bytes()
    assert "loads only on A100 GPUs (compute capability 8.0) in a Triton with TensorRT 8.5.3" in \
        (outputs["out"] / "README.md").read_text()


def test_tao_aml_triton_lays_out_a_repository_from_a_downloaded_asset(facenet: dict[str, Path], tmp_path: Path,
                                                                      capsys) -> None:
    target = tmp_path / "repo"
    assert main(["triton", str(facenet["out"]), "--output-dir", str(target)]) == 0
    assert (target / "tao-facenet" / "config.pbtxt").read_text() == \
        (facenet["out"] / "triton" / "tao-facenet" / "config.pbtxt").read_text()
    assert "tritonserver --model-repository" in capsys.readouterr().out
    assert main(["triton", str(facenet["out"]), "--output-dir", str(target)]) == 2  # not empty: nothing overwritten
    (facenet["out"] / "model.onnx").unlink()
    assert main(["triton", str(facenet["out"]), "--output-dir", str(tmp_path / "other")]) == 2
    assert "lacks model.onnx" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_tao_aml_triton_plan_only_for_the_gpu_family_that_built_it(tmp_path: Path, capsys) -> None:
    model = own_classes(tmp_path, gpu=A100)["out"]
    assert main(["triton", str(model), "--output-dir", str(tmp_path / "t4"), "--plan"]) == 2
    assert "no TensorRT plan for T4 GPUs: the engine was built on NVIDIA A100 80GB PCIe (compute capability 8.0)" in \
        capsys.readouterr().err
    assert not (tmp_path / "t4").exists()
    assert main(["triton", str(model), "--output-dir", str(tmp_path / "a100"), "--plan", "--gpu", "A100"]) == 0
    assert "model.plan loads only on A100 GPUs in a Triton with TensorRT 8.5.3" in capsys.readouterr().out
    check_triton_model(tmp_path / "a100" / "parking-lot_trt", model / "model.onnx", 4)


# ------------------------------------------------------------------ DeepStream against TAO Deploy, box for box

W, H = 480, 272  # a 30 x 17 grid


@dataclass(frozen=True)
class Planted:
    """An object as a trained DetectNet_v2 sees it: the cells whose centres lie in the middle third of its box
    light up, coverage `peak` at the middle falling by `fall` towards the edge of that third, each cell's box a
    pixel or two off the object's."""

    klass: int
    box: tuple[float, float, float, float]
    peak: float
    fall: float = 0.3


def grid(objects: list[Planted], classes: int = 2, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Coverage [C, 17, 30] and bbox [4C, 17, 30] of one image; elsewhere coverage below 0.003 and junk boxes."""
    rng = np.random.default_rng(seed)
    cov = rng.uniform(0.0, 0.003, (classes, H // 16, W // 16)).astype(np.float32)
    bbox = rng.normal(0.0, 0.5, (4 * classes, H // 16, W // 16)).astype(np.float32)
    for planted in objects:
        x1, y1, x2, y2 = planted.box
        half_w, half_h = (x2 - x1) / 6, (y2 - y1) / 6
        for j in range(H // 16):
            for i in range(W // 16):
                cx, cy = i * 16 + 0.5, j * 16 + 0.5
                dx, dy = abs(cx - (x1 + x2) / 2) / half_w, abs(cy - (y1 + y2) / 2) / half_h
                if max(dx, dy) > 1:
                    continue
                cov[planted.klass, j, i] = planted.peak * (1 - planted.fall * max(dx, dy))
                e1, f1, e2, f2 = np.array(planted.box) + rng.normal(0.0, 1.0, 4)
                bbox[4 * planted.klass:4 * planted.klass + 4, j, i] = [(cx - e1) / 35, (cy - f1) / 35,
                                                                       (e2 - cx) / 35, (f2 - cy) / 35]
    return cov, bbox


PARKING_LOT = [Planted(0, (40, 30, 140, 110), 0.9), Planted(0, (300, 40, 396, 136), 0.6),
               Planted(1, (200, 60, 240, 200), 0.8), Planted(1, (367, 100, 466, 244), 0.45, fall=0.2)]
# The last pedestrian as nine cells at 0.45 each (summed: 4.05).
FLAT = PARKING_LOT[:3] + [Planted(1, (367, 100, 466, 244), 0.45, fall=0.0)]
LONE = Planted(0, (190, 78, 227, 115), 0.95, fall=0.0)  # one cell: (208.5, 96.5) is the only centre in its middle


def tao_boxes(model: Path, cov: np.ndarray, bbox: np.ndarray) -> list[tuple]:
    """TAO Deploy's decoding (tao_aml.serve.detectnet_v2, checked against TAO Deploy's utils.py in test_serve)."""
    card = json.loads((model / "model_card.json").read_text())
    classes = card["postprocessing"]["classes"]
    [found] = Decoder(card["postprocessing"]).decode(cov[None], bbox[None])
    return sorted((classes.index(d.label), d.score, d.x1, d.y1, d.x2, d.y2) for d in found)


def corners(found: list[tuple]) -> list[tuple]:
    return sorted((f[0], *(round(v, 2) for v in f[2:])) for f in found)


def test_dbscan_in_deepstream_gives_taos_boxes(tmp_path: Path) -> None:
    model = own_classes(tmp_path, size=(W, H))["out"]
    config = model / "deepstream" / "config_infer_parking-lot_engine.txt"
    cov, bbox = grid(FLAT)
    tao, deepstream = tao_boxes(model, cov, bbox), sorted(nvinfer_decode.decode(config, cov, bbox))
    assert len(tao) == 4 and corners(deepstream) == corners(tao)
    # Confidence: TAO's summed coverage, nvinfer's highest cell coverage (as the config says).
    by_box = sorted(zip(corners(tao), tao, strict=True)), sorted(zip(corners(deepstream), deepstream, strict=True))
    for (_, t), (_, d) in zip(*by_box, strict=True):
        assert t[1] > d[1] and d[1] in cov.ravel()
    # The former mapping, post-cluster-threshold = dbscan_confidence_threshold, compared 0.9 with each cluster's
    # strongest cell and lost every object here, the pedestrian of nine cells at 0.45 (4.05 summed) among them.
    assert sum(1 for v in cov[1].ravel() if abs(v - 0.45) < 1e-6) == 9
    former = tmp_path / "former.txt"
    former.write_text(config.read_text().replace("post-cluster-threshold=0.0", "post-cluster-threshold=0.9"))
    assert nvinfer_decode.decode(former, cov, bbox) == []


def test_deepstreams_dbscan_differs_where_its_config_says(tmp_path: Path) -> None:
    """A lone cell at 0.95: a cluster of one for nvinfer (minBoxes 1, 0.95 >= dbscan-min-score 0.9); for TAO not
    a core point (0.95 summed coverage < dbscan_min_samples 1), so noise."""
    model = own_classes(tmp_path, size=(W, H))["out"]
    config = model / "deepstream" / "config_infer_parking-lot_onnx.txt"
    assert "nvinfer also keeps a cluster whose cells number minBoxes but whose coverage sums to less" in \
        " ".join(line.lstrip("# ") for line in config.read_text().splitlines())
    cov, bbox = grid([LONE])
    assert tao_boxes(model, cov, bbox) == []
    [(klass, confidence, *box)] = nvinfer_decode.decode(config, cov, bbox)
    assert (klass, confidence) == (0, pytest.approx(0.95)) and box == pytest.approx(LONE.box, abs=4)


def test_nms_in_deepstream_gives_taos_boxes_when_dbscan_confidence_threshold_is_0(tmp_path: Path) -> None:
    model = own_classes(tmp_path, size=(W, H), clustering_algorithm="NMS", nms_iou_threshold=0.3,
                        nms_confidence_threshold=0.2, dbscan_confidence_threshold=0.0)["out"]
    config = model / "deepstream" / "config_infer_parking-lot_onnx.txt"
    attrs = nvinfer(config)["class-attrs-1"]
    assert nvinfer(config)["property"]["cluster-mode"] == "2" and float(attrs["post-cluster-threshold"]) == 0.2
    cov, bbox = grid(PARKING_LOT)
    tao, deepstream = tao_boxes(model, cov, bbox), nvinfer_decode.decode(config, cov, bbox)
    assert len(tao) == 4 and corners(deepstream) == corners(tao)  # each object's strongest cell
    # nvinfer reports each box's own coverage; TAO the score at the box's original index of its re-ordered array.
    own = sorted(d[1] for d in deepstream)
    assert all(c in cov.ravel() for c in own) and sorted(t[1] for t in tao) != own
    assert all(t[1] in own + [0.0] for t in tao)


def test_nms_with_a_dbscan_confidence_threshold_drops_boxes_deepstream_keeps_as_the_config_says(
        tmp_path: Path) -> None:
    model = own_classes(tmp_path, size=(W, H), clustering_algorithm="NMS", dbscan_confidence_threshold=0.5)["out"]
    config = model / "deepstream" / "config_infer_parking-lot_engine.txt"
    text = " ".join(line.lstrip("# ") for line in config.read_text().splitlines())
    assert "its boxes equal TAO's only when dbscan_confidence_threshold is 0" in text
    cov, bbox = grid(PARKING_LOT)
    assert tao_boxes(model, cov, bbox) == [] and len(nvinfer_decode.decode(config, cov, bbox)) == 4


def test_the_hybrid_config_says_deepstream_cannot_reproduce_tao(tmp_path: Path) -> None:
    model = own_classes(tmp_path, size=(W, H), clustering_algorithm="HYBRID", dbscan_confidence_threshold=1.0)["out"]
    config = model / "deepstream" / "config_infer_parking-lot_onnx.txt"
    text = " ".join(line.lstrip("# ") for line in config.read_text().splitlines())
    assert "nvinfer cannot reproduce TAO's boxes for HYBRID" in text
    assert nvinfer(config)["property"]["cluster-mode"] == "3"
    assert "dbscan-min-score" not in nvinfer(config)["class-attrs-0"]  # nvinfer's hybrid mode has none
    readme = (model / "README.md").read_text()
    assert "## DeepStream and TAO" in readme and "nvinfer cannot reproduce TAO's HYBRID clustering" in readme
    # TAO keeps only clusters with 1.0 of summed coverage for NMS; nvinfer runs NMS over every clustered cell.
    cov, bbox = grid([LONE])
    assert tao_boxes(model, cov, bbox) == [] and len(nvinfer_decode.decode(config, cov, bbox)) == 1


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
        root = detectnet_root(tree)
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
    template = Path(prototext.__file__).parents[2] / "templates" / "facenet" / "facenet_retrain_resnet18_kitti.txt"
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
