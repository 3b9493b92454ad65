"""What a deployment of the exported model needs, written from the specs and export settings that made it.

- `detectnet_params`: the decoding parameters of a DetectNet_v2 model (tensor names and shapes read from
  model.onnx, the grid, TAO's bbox encoding, classes and the per-class clustering of the inference spec).
  The model card carries them; DeepStream, Triton and the Python decoder (tao_aml.serve) read them there.
- DeepStream nvinfer configs for the ONNX model and for the engine (DetectNet_v2), each saying where nvinfer
  cannot reproduce TAO's decoding, and for BodyPoseNet the
  bodypose2d nvinfer config with its post-processing file (deepstream_tao_apps' bodypose2d sample).
- A Triton model repository for the ONNX model, named after the model, with the TensorRT plan only when it
  can load where the model is served (the GPU family and TensorRT that built it).

TAO's decoding (nvidia_tao_deploy/cv/detectnet_v2/postprocessor.py BboxHandler, utils.py cluster_bboxes,
the same code as nvidia_tao_tf1/cv/detectnet_v2/postprocessor/): boxes are ltrb distances from each grid
cell centre (i * stride + 0.5, j * stride + 0.5) in units of 35 pixels; cells whose coverage is above
`coverage_threshold` are clustered per class with DBSCAN (1 - IoU distance, `dbscan_eps`, weighted
`dbscan_min_samples`), NMS (`nms_iou_threshold`, default 0.3; kept above `nms_confidence_threshold`,
default 0.1) or both (HYBRID); a cluster's confidence is its summed coverage and it is kept when at least
`dbscan_confidence_threshold` and taller than `minimum_bounding_box_height`.
"""

import logging
import os
import re
import shutil
import textwrap
from typing import Any, Dict, List, Optional, Tuple

from tao_aml.steps.asset import onnx_graph
from tao_aml.steps.common import StepError, atomic_write_text
from tao_aml.steps.deploy.engine_info import NETWORK_MODE
from tao_aml.steps.specs.prototext import Enum, Message

LOG = logging.getLogger("tao_aml.deploy_bundle")
# detectnet_v2 export (nvidia_tao_tf1/cv/detectnet_v2/export/exporter.py, keras2onnx route).
DN_INPUT, DN_COV, DN_BBOX = "input_1:0", "output_cov/Sigmoid:0", "output_bbox/BiasAdd:0"
# bpnet export -t tfonnx (deepstream_tao_apps bodypose2d_pgie_config: the blob names nvinfer reads).
BP_INPUT, BP_HEATMAP, BP_PAF = "input_1:0", "heatmap_out/BiasAdd:0", "conv2d_transpose_1/BiasAdd:0"
# TAO Deploy's BboxHandler defaults where the inference spec leaves a field at 0.
DEFAULT_NMS_IOU, DEFAULT_NMS_CONFIDENCE = 0.3, 0.1
DEFAULT_BBOX_SCALE, DEFAULT_BBOX_OFFSET = 35.0, 0.5
ALGORITHMS = ("dbscan", "nms", "hybrid")  # ClusteringConfig.ClusteringAlgorithm 0, 1, 2
# nvinfer cluster-mode for each (DeepStream Gst-nvinfer: 1 DBSCAN, 2 NMS, 3 DBSCAN + NMS hybrid).
CLUSTER_MODE = {"dbscan": 1, "nms": 2, "hybrid": 3}
# Compute capability of each GPU model of the Azure GPU sizes (src/tao_aml/azure/vm_sizes.py names them; NVIDIA's
# CUDA GPU list): a TensorRT plan loads only on the compute capability it was built for.
COMPUTE_CAPABILITY = {"T4": "7.5", "A10": "8.6", "A100": "8.0", "H100": "9.0"}
DEFAULT_SERVING_GPU = "T4"  # tao-aml deploy's default size, Standard_NC4as_T4_v3
# Triton releases whose TensorRT runs a TAO 5.0 plan (NVIDIA's framework support matrix).
TRITON_FOR_TENSORRT = {"8.5.3": "23.02 or 23.03"}
# Triton model names: a folder of the repository and a segment of /v2/models/<name>/infer.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# TAO's exports keep TensorFlow 1.15's names: an op name (tensorflow/python/framework/ops.py,
# _VALID_OP_NAME_REGEX) and the output index. Nothing in them needs escaping in protobuf text or nvinfer configs.
TENSOR_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_./-]*(:[0-9]+)?$")
# deepstream_tao_apps bodypose2d post-processing values the TAO specs do not carry (sample_bodypose2d_model_config).
BODYPOSE2D_FIXED = [("nmsWindowSize", 7), ("featUpsamplingFactor", 4), ("threshVectorCnt1", 8),
                    ("threshPartCnt", 4), ("threshHumanScore", 0.4), ("imageType", 8)]
BODYPOSE2D_CONNECTIONS = [(0, 1), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (2, 8), (8, 9), (9, 10),
                          (5, 11), (11, 12), (12, 13), (0, 14), (14, 16), (8, 11), (15, 17), (0, 15)]


# ----------------------------------------------------------------------------------- DetectNet_v2

def _number(tree: Message, path: str, default: float) -> float:
    value = tree.get(path) if tree.has(path) else default
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _algorithm(config: Message) -> str:
    value = config.get("clustering_algorithm") if config.has("clustering_algorithm") else Enum("DBSCAN")
    name = value.ident if isinstance(value, Enum) else ALGORITHMS[int(value)] if isinstance(value, int) else ""
    if name.lower() not in ALGORITHMS:
        raise StepError("clustering_algorithm {!r} is not one of DBSCAN, NMS, HYBRID".format(name))
    return name.lower()


def clustering(inference: Message, source: str) -> Dict[str, Dict[str, Any]]:
    """Per class: bbox_handler_config.classwise_bbox_handler_config[class].clustering_config, with TAO's defaults."""
    found: Dict[str, Dict[str, Any]] = {}
    for entry in inference.get_all("bbox_handler_config.classwise_bbox_handler_config"):
        if not isinstance(entry, Message) or not entry.has("key") or not entry.has("value.clustering_config"):
            continue
        config = entry.get("value.clustering_config")
        assert isinstance(config, Message)
        nms_iou = _number(config, "nms_iou_threshold", 0.0)
        nms_confidence = _number(config, "nms_confidence_threshold", 0.0)
        found[str(entry.get("key"))] = {
            "algorithm": _algorithm(config),
            "coverage_threshold": _number(config, "coverage_threshold", 0.0),
            "dbscan_eps": _number(config, "dbscan_eps", 0.0),
            "dbscan_min_samples": int(_number(config, "dbscan_min_samples", 0.0)),
            "dbscan_confidence_threshold": _number(config, "dbscan_confidence_threshold", 0.0),
            "minimum_bounding_box_height": _number(config, "minimum_bounding_box_height", 0.0),
            "nms_iou_threshold": nms_iou or DEFAULT_NMS_IOU,
            "nms_confidence_threshold": nms_confidence or DEFAULT_NMS_CONFIDENCE,
        }
    if not found:
        raise StepError("{}: no bbox_handler_config.classwise_bbox_handler_config with a clustering_config".format(
            source))
    return found


def _fixed(shape: Tuple[onnx_graph.Dim, ...], what: str, source: str) -> List[int]:
    dims = list(shape[1:])
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in dims):
        raise StepError("{}: {} has shape {}; expected [batch, fixed, fixed, fixed]".format(
            source, what, list(shape)))
    return [int(d) for d in dims]  # type: ignore[arg-type]


def detectnet_graph(onnx_path: str) -> Dict[str, Any]:
    """Names and shapes of the DetectNet_v2 tensors in model.onnx; StepError naming the file otherwise."""
    graph = onnx_graph.read(onnx_path)
    inputs = [t.name for t in graph.inputs]
    outputs = sorted(t.name for t in graph.outputs)
    if inputs != [DN_INPUT] or outputs != sorted([DN_COV, DN_BBOX]):
        raise StepError("{} is not a TAO 5.0 DetectNet_v2 export: inputs {} and outputs {}, expected input {} and "
                        "outputs {}, {}".format(onnx_path, inputs, outputs, DN_INPUT, DN_COV, DN_BBOX))
    channels, height, width = _fixed(graph.inputs[0].shape, DN_INPUT, onnx_path)
    cov = graph.output(DN_COV)
    bbox = graph.output(DN_BBOX)
    assert cov is not None and bbox is not None
    classes, grid_h, grid_w = _fixed(cov.shape, DN_COV, onnx_path)
    bbox_dims = _fixed(bbox.shape, DN_BBOX, onnx_path)
    if bbox_dims != [4 * classes, grid_h, grid_w]:
        raise StepError("{}: {} has shape {}, expected [N, {}, {}, {}] for {}".format(
            onnx_path, DN_BBOX, list(bbox.shape), 4 * classes, grid_h, grid_w, DN_COV))
    if width % grid_w or height % grid_h or width // grid_w != height // grid_h:
        raise StepError("{}: input {}x{} is not a whole number of {}x{} grid cells".format(
            onnx_path, width, height, grid_w, grid_h))
    return {"input": DN_INPUT, "cov": DN_COV, "bbox": DN_BBOX, "channels": channels, "height": height,
            "width": width, "classes": classes, "grid_height": grid_h, "grid_width": grid_w,
            "stride": width // grid_w}


def detectnet_params(onnx_path: str, experiment: Message, inference: Message, inference_source: str,
                     grayscale: Optional[bool]) -> Dict[str, Any]:
    network = detectnet_graph(onnx_path)
    classes = [str(c) for c in inference.get_all("inferencer_config.target_classes")]
    if len(classes) != network["classes"]:
        raise StepError("{} lists {} target_classes ({}), the model {} has {} coverage channels".format(
            inference_source, len(classes), ", ".join(classes), onnx_path, network["classes"]))
    per_class = clustering(inference, inference_source)
    missing = [c for c in classes if c not in per_class and "default" not in per_class]
    if missing:
        raise StepError("{}: no clustering_config for class {} (and no 'default' entry)".format(
            inference_source, ", ".join(missing)))
    # TAO's inference (TF1 scripts/inference.py, TAO Deploy scripts/inference.py) and nvinfer's parser decode
    # with BboxHandler's fixed normalizer 35 and offset 0.5, whatever objective_set.bbox says.
    network["bbox_scale"], network["bbox_offset"] = DEFAULT_BBOX_SCALE, DEFAULT_BBOX_OFFSET
    trained = (_number(experiment, "model_config.objective_set.bbox.scale", DEFAULT_BBOX_SCALE),
               _number(experiment, "model_config.objective_set.bbox.offset", DEFAULT_BBOX_OFFSET))
    if trained != (DEFAULT_BBOX_SCALE, DEFAULT_BBOX_OFFSET):
        LOG.warning("the Experiment spec trains with objective_set.bbox scale %s and offset %s, but TAO's inference "
                    "and DeepStream decode with 35 and 0.5: their boxes will be off", trained[0], trained[1])
    return {
        "network": network,
        # Export's preprocessing (exporter.py set_data_preprocessing_parameters): RGB scaled by 1/255, no mean.
        "preprocessing": {"scale": 1.0 / 255.0, "color": "rgb", "grayscale": bool(grayscale), "letterbox": True},
        "classes": classes,
        "clustering": {c: per_class.get(c, per_class.get("default")) for c in classes},
    }


# nvinfer's detector post-processing as NVIDIA's source has it: nvdsinfer_context_impl_output_parsing.cpp
# (DetectPostprocessor: parseBoundingBox, clusterAndFillDetectionOutputDBSCAN/NMS/Hybrid, ATHR_THRESHOLD 60),
# nvdsinfer_dbscan.cpp (NvDsInferDBScan::clusterObjects; NVIDIA's Apache-2.0 copy in NVIDIA-ISAAC-ROS/
# isaac_ros_object_detection gxf_isaac_detectnet/gxf/deepstream_utils/nvdsinferutils/dbscan/) and
# gstnvinfer_meta_utils.cpp (detected-min-h on the box scaled to the source frame). Against TAO Deploy's
# utils.py cluster_bboxes and scripts/inference.py, what nvinfer cannot do, per clustering algorithm:
NVINFER_DIFFERENCES = {
    "dbscan": [
        "nvinfer reports a cluster's highest cell coverage as its confidence; TAO reports the summed coverage",
        "a core cell needs dbscan_min_samples of summed neighbour coverage in TAO, minBoxes neighbouring cells "
        "(itself included) in nvinfer: nvinfer also keeps a cluster whose cells number minBoxes but whose "
        "coverage sums to less",
        "nvinfer grows a cluster one step from its first cell and leaves out neighbours that are not core "
        "cells; TAO (scikit-learn's DBSCAN) joins every density-connected cell: equal when an object's cells "
        "lie within eps of each other",
        "nvinfer drops a cluster whose sqrt(box area) / (cells + 1) is above 60 (its ATHR filter, always on)",
        "nvinfer clips each cell's box to the frame before clustering, TAO only the clustered box",
        "detected-min-h applies to the box in the source frame's pixels: TAO's minimum_bounding_box_height "
        "applies in network pixels, so they agree when the frame is the network's size",
        "thresholds meet at their edges differently (coverage kept from pre-cluster-threshold up, TAO above "
        "coverage_threshold; eps strict in nvinfer; TAO's IoU adds 0.01 to the union)",
    ],
    "nms": [
        "TAO's NMS reports each kept box with the score at the box's original index of the score array its loop "
        "re-ordered (often another box's coverage, or 0) and TAO Deploy's inference drops boxes whose reported "
        "score is below dbscan_confidence_threshold; nvinfer reports each box's own coverage and has no such "
        "filter: its boxes equal TAO's only when dbscan_confidence_threshold is 0, and its confidences differ",
        "TAO's NMS IoU adds one pixel to widths and heights; nvinfer's does not",
        "nvinfer clips each cell's box to the frame before NMS, TAO only the kept box",
    ],
    "hybrid": [
        "nvinfer cannot reproduce TAO's HYBRID clustering: TAO runs NMS over the cells of the DBSCAN clusters "
        "whose summed coverage is at least dbscan_confidence_threshold and that are taller than "
        "minimum_bounding_box_height; nvinfer's hybrid mode runs NMS over every clustered cell (no "
        "dbscan-min-score, no height filter) and builds clusters as its DBSCAN mode does",
        "TAO's NMS scores and filters as its NMS mode does (another box's score, dropped below "
        "dbscan_confidence_threshold); nvinfer reports each box's own coverage",
    ],
}
# Where nvinfer reproduces TAO Deploy's boxes.
NVINFER_EQUAL = {
    "dbscan": "nvinfer reproduces TAO's boxes for objects whose cells lie within eps of each other and whose "
              "neighbourhoods reach dbscan_min_samples of coverage",
    "nms": "nvinfer reproduces TAO's boxes (not their confidences) when dbscan_confidence_threshold is 0",
    "hybrid": "nvinfer cannot reproduce TAO's boxes for HYBRID (below): use DBSCAN or NMS for DeepStream",
}


def nvinfer_class_attrs(config: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(key, value, what it is in TAO) of a [class-attrs-<i>] group for one class's clustering_config."""
    algorithm = config["algorithm"]
    attrs = [("pre-cluster-threshold", repr(config["coverage_threshold"]), "coverage_threshold")]
    if algorithm in ("dbscan", "hybrid"):
        attrs += [("eps", repr(config["dbscan_eps"]), "dbscan_eps"),
                  # utils.setup_dbscan_object: min_samples = max(int(dbscan_min_samples), 1)
                  ("minBoxes", str(max(int(config["dbscan_min_samples"]), 1)), "dbscan_min_samples")]
    if algorithm == "dbscan":
        attrs += [("dbscan-min-score", repr(config["dbscan_confidence_threshold"]),
                   "dbscan_confidence_threshold, on the cluster's summed coverage as in TAO"),
                  # nvinfer compares post-cluster-threshold with the cluster's HIGHEST cell coverage; TAO has
                  # no such filter, so it lets every cluster through.
                  ("post-cluster-threshold", "0.0", "none: TAO has no filter on a cluster's highest coverage"),
                  ("detected-min-h", str(int(config["minimum_bounding_box_height"])),
                   "minimum_bounding_box_height")]
    else:
        attrs += [("nms-iou-threshold", repr(config["nms_iou_threshold"]), "nms_iou_threshold"),
                  ("post-cluster-threshold", repr(config["nms_confidence_threshold"]), "nms_confidence_threshold")]
    return attrs


def deepstream_notes(params: Dict[str, Any]) -> Dict[str, Any]:
    """What the DeepStream configs reproduce of TAO's decoding and what they cannot (for the model card)."""
    algorithm = params["clustering"][params["classes"][0]]["algorithm"]
    return {"clustering": algorithm, "reproduces": NVINFER_EQUAL[algorithm],
            "differences": NVINFER_DIFFERENCES[algorithm]}


def deepstream_config_names(model: str) -> Dict[str, bool]:
    """{config file name: uses the engine} of a DetectNet_v2 model called `model`."""
    return {"config_infer_{}_onnx.txt".format(model): False, "config_infer_{}_engine.txt".format(model): True}


def deepstream_detectnet(params: Dict[str, Any], engine: Dict[str, Any], use_engine: bool, model: str) -> str:
    """A complete nvinfer config for the DetectNet_v2 ONNX model (nvinfer builds the engine) or the built engine."""
    net = params["network"]
    data_type = engine["data_type"]
    modes = {params["clustering"][c]["algorithm"] for c in params["classes"]}
    if len(modes) != 1:
        raise StepError("nvinfer has one cluster-mode for all classes; the inference spec mixes {}".format(
            ", ".join(sorted(modes))))
    notes = deepstream_notes(params)
    lines = [
        "# DeepStream Gst-nvinfer config of the TAO DetectNet_v2 model {} (classes: {}), written by tao-aml".format(
            model, ", ".join(params["classes"])),
        "# from the specs and export settings of this model. Paths are relative to this file (deepstream/).",
        "# Preprocessing as TAO's export declares it: RGB, scale 1/255, no offsets; images letterboxed",
        "# (maintain-aspect-ratio, symmetric padding) as the pipeline's converter did.",
    ]
    lines += textwrap.wrap("Clustering from the inference spec ({}): {}. Where nvinfer differs from TAO Deploy's "
                           "decoding (NVIDIA's nvdsinfer source against TAO Deploy's detectnet_v2 utils.py):".format(
                               notes["clustering"].upper(), notes["reproduces"]),
                           width=110, initial_indent="# ", subsequent_indent="# ")
    for text in notes["differences"]:
        lines += textwrap.wrap(text + ".", width=110, initial_indent="#  - ", subsequent_indent="#    ")
    lines += [
        "[property]",
        "gpu-id=0",
        "net-scale-factor={!r}".format(params["preprocessing"]["scale"]),
        "offsets=" + ";".join(["0.0"] * net["channels"]),
        "model-color-format={}".format(0 if net["channels"] == 3 else 2),
        "onnx-file=../model.onnx",
    ]
    if use_engine:
        lines.append("model-engine-file=../{}".format(engine["engine_file"]))
    lines += ["labelfile-path=../labels.txt"]
    if data_type == "int8" and engine.get("calibration_cache"):
        lines.append("int8-calib-file=../{}".format(engine["calibration_cache"]))
    lines += [
        "infer-dims={};{};{}".format(net["channels"], net["height"], net["width"]),
        "network-input-order=0",
        "batch-size={}".format(engine["max_batch_size"]),
        "network-mode={}".format(NETWORK_MODE[data_type]),
        "network-type=0",
        "num-detected-classes={}".format(len(params["classes"])),
        "process-mode=1",
        "gie-unique-id=1",
        "maintain-aspect-ratio=1",
        "symmetric-padding=1",
        "output-blob-names={};{}".format(net["bbox"], net["cov"]),
        "cluster-mode={}".format(CLUSTER_MODE[modes.pop()]),
    ]
    for index, name in enumerate(params["classes"]):
        lines += ["", "# class {}: {}".format(index, name), "[class-attrs-{}]".format(index)]
        for key, value, origin in nvinfer_class_attrs(params["clustering"][name]):
            lines += ["# {}".format(origin), "{}={}".format(key, value)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- BodyPoseNet

def bodypose_graph(onnx_path: str, input_shape: Any, engine: Dict[str, Any]) -> Dict[str, int]:
    """The network size of a bpnet export: its ONNX input is [batch, height, width, 3] with height and width
    dynamic (Input(shape=(None, None, 3)) in nvidia_tao_tf1/cv/bpnet/models), so the size is the engine's
    (engine.json input_dims, the export's -d), which the inference spec's input_shape must equal, as TAO's
    TensorRT inference requires; a fixed ONNX size must agree too."""
    graph = onnx_graph.read(onnx_path)
    inputs, outputs = [t.name for t in graph.inputs], sorted(t.name for t in graph.outputs)
    if inputs != [BP_INPUT] or outputs != sorted([BP_HEATMAP, BP_PAF]):
        raise StepError("{} is not a TAO 5.0 BodyPoseNet export: inputs {} and outputs {}, expected input {} and "
                        "outputs {}, {}".format(onnx_path, inputs, outputs, BP_INPUT, BP_HEATMAP, BP_PAF))
    shape = list(graph.inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3:
        raise StepError("{}: {} has shape {}; expected [batch, height, width, 3]".format(onnx_path, BP_INPUT, shape))
    if not (isinstance(input_shape, list) and len(input_shape) == 2
            and all(isinstance(v, int) and v > 0 for v in input_shape)):
        raise StepError("the inference spec's input_shape {!r} must be [height, width], the export size".format(
            input_shape))
    size = [d if isinstance(d, int) else None for d in shape[1:3]]
    if engine.get("input_dims"):
        size = list(engine["input_dims"][:2])
    if any(d is not None and d != v for d, v in zip(size, input_shape)):
        raise StepError("the inference spec's input_shape {} differs from the exported model's {}x{} ({})".format(
            input_shape, size[0], size[1], onnx_path))
    return {"height": input_shape[0], "width": input_shape[1], "channels": 3}


def deepstream_bodypose(onnx_path: str, engine: Dict[str, Any], infer_spec: Dict[str, Any],
                        pose_config: Dict[str, Any], onnx_file: str = "model.onnx") -> Dict[str, str]:
    """bodypose2d nvinfer config and post-processing file (deepstream_tao_apps' bodypose2d sample).

    `onnx_file` and the engine's file names are relative to the model folder, one level above the config."""
    net = bodypose_graph(onnx_path, infer_spec.get("input_shape"), engine)
    data_type, batch = engine["data_type"], engine["max_batch_size"]
    lines = [
        "# DeepStream bodypose2d nvinfer config written by tao-aml from the export settings of this model",
        "# (deepstream_tao_apps configs/nvinfer/bodypose2d_tao). Paths are relative to this file.",
        "[property]",
        "gpu-id=0",
        "onnx-file=../{}".format(onnx_file),
        "model-engine-file=../{}".format(engine["engine_file"]),
    ]
    if data_type == "int8" and engine.get("calibration_cache"):
        lines.append("int8-calib-file=../{}".format(engine["calibration_cache"]))
    lines += [
        "network-input-order=1",
        "infer-dims={};{};{}".format(net["channels"], net["height"], net["width"]),
        "batch-size={}".format(batch),
        "network-mode={}".format(NETWORK_MODE[data_type]),
        "num-detected-classes=1",
        "gie-unique-id=1",
        "output-blob-names={};{}".format(BP_PAF, BP_HEATMAP),
        "network-type=100",
        "output-tensor-meta=1",
        "process-mode=1",
        "net-scale-factor=0.00390625",
        "offsets=128.0;128.0;128.0",
        "model-color-format=0",
        "maintain-aspect-ratio=1",
        "symmetric-padding=1",
        "scaling-filter=1",
        "scaling-compute-hw=1",
        "", "[class-attrs-all]", "threshold=0.0",
    ]
    category = (pose_config.get("categories") or [{}])[0]
    skeleton = category.get("skeleton") or []
    post = ["# bodypose2d post-processing (deepstream_tao_apps sample_bodypose2d_model_config) written by tao-aml:",
            "# threshHeat and threshVectorScore from the inference spec (heatmap_threshold, paf_threshold),",
            "# batchSize = nvinfer batch-size, numJoints and jointEdges from the pose config (skeleton, 0-based);",
            "# the other values are NVIDIA's sample values."]
    post += ["{}={}".format(k, v) for k, v in BODYPOSE2D_FIXED[:2]]
    post += ["threshHeat={!r}".format(float(infer_spec.get("heatmap_threshold", 0.0))),
             "threshVectorScore={!r}".format(float(infer_spec.get("paf_threshold", 0.0)))]
    post += ["{}={}".format(k, v) for k, v in BODYPOSE2D_FIXED[2:]]
    post += ["batchSize={}".format(batch), "numJoints={}".format(int(category.get("num_joints", 18)))]
    post += ["jointEdges={}, {}".format(a - 1, b - 1) for a, b in skeleton]
    post += ["connections={}, {}".format(a, b) for a, b in BODYPOSE2D_CONNECTIONS]
    return {"config_infer_bodypose2d.txt": "\n".join(lines) + "\n",
            "bodypose2d_postprocess_config.txt": "\n".join(post) + "\n"}


# ----------------------------------------------------------------------------------- Triton

def inside(folder: str, name: str, what: str) -> str:
    """The path of `name` in `folder`, refused when it is absolute, climbs out with `..` or is a link leading out."""
    parts = name.replace("\\", "/").split("/")
    if not name or os.path.isabs(name) or ".." in parts:
        raise StepError("{} {!r} is not a file name inside {}".format(what, name, folder))
    base = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(base, name))
    if os.path.commonpath([base, path]) != base:
        raise StepError("{} {} is a link to {}, outside {}: only files inside the model folder are read".format(
            what, name, path, folder))
    return path


def _tensor_name(name: Any) -> str:
    if not isinstance(name, str) or not TENSOR_NAME.match(name):
        raise StepError("tensor name {!r} is not a TensorFlow tensor name (letters, digits, '.', '_', '-', '/', "
                        "then ':' and the output index)".format(name))
    return name


def _dimension(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise StepError("tensor dimension {!r} is not a whole number of at least 1".format(value))
    return str(value)


def _pbtxt_tensor(name: str, dims: List[int], nchw: bool) -> str:
    fields = ['    name: "{}"'.format(_tensor_name(name)), "    data_type: TYPE_FP32"]
    if nchw:
        fields.append("    format: FORMAT_NCHW")
    fields.append("    dims: [ {} ]".format(", ".join(_dimension(d) for d in dims)))
    return "  {\n" + "\n".join(fields) + "\n  }"


def triton_config(name: str, platform: str, params: Dict[str, Any], max_batch_size: int,
                  default_file: str) -> str:
    """config.pbtxt; every name and number in it checked, so that no value needs escaping in protobuf text."""
    net = params["network"]
    _dimension(max_batch_size)
    grid = [net["grid_height"], net["grid_width"]]
    outputs = [_pbtxt_tensor(net["bbox"], [4 * net["classes"]] + grid, False),
               _pbtxt_tensor(net["cov"], [net["classes"]] + grid, False)]
    return "\n".join([
        'name: "{}"'.format(name),
        'platform: "{}"'.format(platform),
        "max_batch_size: {}".format(max_batch_size),
        'default_model_filename: "{}"'.format(default_file),
        "input [\n{}\n]".format(_pbtxt_tensor(net["input"], [net["channels"], net["height"], net["width"]], True)),
        "output [\n{}\n]".format(",\n".join(outputs)),
        "instance_group [\n  {\n    kind: KIND_GPU\n    count: 1\n  }\n]",
        "dynamic_batching { }",
    ]) + "\n"


def plan_problem(engine: Optional[Dict[str, Any]], serving_gpu: str, serving_tensorrt: Optional[str]) -> Optional[str]:
    """Why the engine cannot be a Triton plan on `serving_gpu` with `serving_tensorrt`, or None."""
    if engine is None:
        return "the model has no TensorRT engine"
    built = engine.get("gpu") if isinstance(engine.get("gpu"), dict) else {}
    needs = "TensorRT {} (Triton {})".format(engine.get("tensorrt"),
                                            TRITON_FOR_TENSORRT.get(str(engine.get("tensorrt")), "of that TensorRT"))
    if not built.get("compute_capability"):
        return "engine.json does not record the GPU that built the engine"
    if built["compute_capability"] != COMPUTE_CAPABILITY.get(serving_gpu):
        return "the engine was built on {} (compute capability {}); the serving GPU {} is {}".format(
            built.get("name"), built["compute_capability"], serving_gpu, COMPUTE_CAPABILITY.get(serving_gpu, "unknown"))
    if serving_tensorrt is None:
        return ("the serving Triton's TensorRT is not known (Azure ML's no-code Triton deployment does not state "
                "its Triton release); the plan needs {}".format(needs))
    if serving_tensorrt != engine.get("tensorrt"):
        return "the serving Triton has TensorRT {}; the plan needs {}".format(serving_tensorrt, needs)
    return None


def triton_repository(model_dir: str, target: str, params: Dict[str, Any], engine: Optional[Dict[str, Any]],
                      with_plan: bool, model: str, serving_gpu: str = DEFAULT_SERVING_GPU,
                      serving_tensorrt: Optional[str] = None) -> Dict[str, Any]:
    """<target>/<model>/{config.pbtxt, 1/model.onnx} and, with_plan when the engine can run on the serving GPU
    and TensorRT (plan_problem), <target>/<model>_trt/{config.pbtxt, 1/model.plan}. Returns the card's
    `triton` section: the model names and whether the plan is there, or why not."""
    if not isinstance(model, str) or not MODEL_NAME.match(model):
        raise StepError("model name {!r} cannot name a Triton model (letters, digits, '.', '_', '-')".format(model))
    onnx = inside(model_dir, "model.onnx", "the ONNX model")
    if not os.path.isfile(onnx):
        raise StepError("{} has no model.onnx for the Triton repository".format(model_dir))
    batch = engine.get("max_batch_size") if engine else 1
    layout = [(model, "onnxruntime_onnx", "model.onnx", onnx)]
    problem = plan_problem(engine, serving_gpu, serving_tensorrt) if with_plan else "triton_plan is false"
    if problem is None:
        assert engine is not None
        plan = inside(model_dir, str(engine.get("engine_file") or ""), "the engine's engine_file")
        if not os.path.isfile(plan):
            raise StepError("{} has no TensorRT engine {} for the Triton plan".format(model_dir, engine["engine_file"]))
        layout.append((model + "_trt", "tensorrt_plan", "model.plan", plan))
    # Every config is written out in memory first: a bad name or number leaves no half-made repository.
    configs = [triton_config(name, platform, params, batch, file_name) for name, platform, file_name, _ in layout]
    for (name, _, file_name, source), config in zip(layout, configs):
        version = os.path.join(target, name, "1")
        os.makedirs(version, exist_ok=True)
        shutil.copy2(source, os.path.join(version, file_name))
        atomic_write_text(os.path.join(target, name, "config.pbtxt"), config)
    plan_info: Dict[str, Any] = {"included": problem is None, "reason": problem}
    if problem is None:
        assert engine is not None
        plan_info.update(gpu=serving_gpu, compute_capability=engine["gpu"]["compute_capability"],
                         tensorrt=engine.get("tensorrt"))
    return {"model": model, "models": [name for name, _, _, _ in layout], "plan": plan_info}
