"""Small real ONNX models with the tensors TAO 5.0's exports have, for the stand-ins and the serving tests.

DetectNet_v2 (keras2onnx route of `detectnet_v2 export`, nvidia_tao_tf1/cv/detectnet_v2/export/exporter.py):
input `input_1:0` [N, 3, H, W] (RGB scaled 1/255), outputs `output_cov/Sigmoid:0` [N, classes, H/16, W/16] and
`output_bbox/BiasAdd:0` [N, 4 x classes, H/16, W/16]. BPNet (`bpnet export -t tfonnx`, channels_last): see
`bpnet`. The outputs are constant grids (what a test plants), broadcast over the batch, so decoding can be
checked to the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT = "input_1:0"
COV, BBOX = "output_cov/Sigmoid:0", "output_bbox/BiasAdd:0"
# nvidia_tao_tf1/cv/bpnet/models/bpnet_lite_model.py names the last stage's heads `heatmap_out` and `paf_out`
# (Conv2D, no activation: the tensor is <name>/BiasAdd); pb_to_onnx (cv/common/utilities/tlt_utils.py) adds ":0".
# The Conv2DTranspose of --sdk_compatible_model has Keras' default name (deepstream_tao_apps bodypose2d config).
HEATMAP, PAF, PAF_RAW = "heatmap_out/BiasAdd:0", "conv2d_transpose_1/BiasAdd:0", "paf_out/BiasAdd:0"
BPNET_STRIDE, BPNET_HEATMAPS, BPNET_PAFS = 8, 19, 38  # bpnet_18joints.json: 18 parts + background, 2 x 19 edges
STRIDE, BBOX_NORM, BBOX_OFFSET = 16, 35.0, 0.5


@dataclass(frozen=True)
class Box:
    """A box in network-input pixels, planted in the grid cells whose centres lie inside it."""

    x1: float
    y1: float
    x2: float
    y2: float
    cov: float = 0.95
    class_index: int = 0


def plant(width: int, height: int, boxes: list[Box], classes: int = 1,
          cells: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and bbox grids [1, C, Hg, Wg] that TAO's decoding turns back into `boxes`.

    Each cell (i, j) has the centre (i*16 + 0.5, j*16 + 0.5); its bbox channels hold the distances to the
    box edges divided by 35 (TAO's ltrb encoding). `cells` limits how many cells per box are set.
    """
    grid_w, grid_h = width // STRIDE, height // STRIDE
    cov = np.zeros((1, classes, grid_h, grid_w), np.float32)
    bbox = np.zeros((1, 4 * classes, grid_h, grid_w), np.float32)
    for box in boxes:
        placed = 0
        for j in range(grid_h):
            for i in range(grid_w):
                cx, cy = i * STRIDE + BBOX_OFFSET, j * STRIDE + BBOX_OFFSET
                if not (box.x1 < cx < box.x2 and box.y1 < cy < box.y2):
                    continue
                if cells is not None and placed >= cells:
                    continue
                c = box.class_index
                cov[0, c, j, i] = box.cov
                bbox[0, 4 * c:4 * c + 4, j, i] = [(cx - box.x1) / BBOX_NORM, (cy - box.y1) / BBOX_NORM,
                                                 (box.x2 - cx) / BBOX_NORM, (box.y2 - cy) / BBOX_NORM]
                placed += 1
        assert placed, f"no grid cell centre inside {box}"
    return cov, bbox


def _constant_outputs(input_info: onnx.ValueInfoProto, outputs: list[tuple[str, np.ndarray]],
                      reduce_axes: list[int]) -> onnx.ModelProto:
    """output = ReduceMean(input) * 0 + constant: real ops, dynamic batch, outputs fixed by the test."""
    nodes = [helper.make_node("ReduceMean", [INPUT], ["mean"], axes=reduce_axes, keepdims=1),
             helper.make_node("Mul", ["mean", "zero"], ["zeros"])]
    initializers = [numpy_helper.from_array(np.zeros((1,), np.float32), "zero")]
    infos = []
    for index, (name, value) in enumerate(outputs):
        const = f"grid_{index}"
        initializers.append(numpy_helper.from_array(value.astype(np.float32), const))
        nodes.append(helper.make_node("Add", ["zeros", const], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *value.shape[1:]]))
    graph = helper.make_graph(nodes, "tao_standin", [input_info], infos, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tao-aml-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def detectnet_v2(width: int, height: int, boxes: list[Box], classes: int = 1, cells: int | None = None,
                 output_names: tuple[str, str] = (COV, BBOX)) -> onnx.ModelProto:
    cov, bbox = plant(width, height, boxes, classes, cells)
    info = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 3, height, width])
    return _constant_outputs(info, [(output_names[0], cov), (output_names[1], bbox)], [1, 2, 3])


def bpnet_outputs(height: int, width: int, sdk_compatible: bool, upsample_ratio: int) -> list[tuple[str, list[int]]]:
    """(name, [h, w, c]) of `bpnet export`'s outputs, in TAO's order: PAF, then heatmap.

    nvidia_tao_tf1/cv/bpnet/utils/export_utils.py update_model keeps the last stage's heads (stride 8); only
    with sdk_compatible_model does it upsample the PAF by upsample_ratio with a Conv2DTranspose.
    """
    grid_h, grid_w = height // BPNET_STRIDE, width // BPNET_STRIDE
    paf = (PAF, [grid_h * upsample_ratio, grid_w * upsample_ratio, BPNET_PAFS]) if sdk_compatible \
        else (PAF_RAW, [grid_h, grid_w, BPNET_PAFS])
    return [paf, (HEATMAP, [grid_h, grid_w, BPNET_HEATMAPS])]


def bpnet(height: int, width: int, sdk_compatible: bool, upsample_ratio: int = 4) -> onnx.ModelProto:
    """The graph of `bpnet export -t tfonnx`, whose height and width are dynamic: the model's input is
    Input(shape=(None, None, 3)) (cv/bpnet/models/bpnet_lite_model.py, trainers/bpnet_trainer.py for the
    retrained model), the exporter never fixes it, and tf2onnx (tlt_utils.pb_to_onnx) keeps unknown dims
    as named ones; -d/--input_dims only shapes the TensorRT engine's profile. The constants here are the
    grids an input of height x width gives."""
    outputs = [(name, np.zeros([1, *shape], np.float32))
               for name, shape in bpnet_outputs(height, width, sdk_compatible, upsample_ratio)]
    info = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", "unk__0", "unk__1", 3])
    model = _constant_outputs(info, outputs, [1, 2, 3])
    for index, output in enumerate(model.graph.output):
        dims = output.type.tensor_type.shape.dim
        for axis in (1, 2):
            dims[axis].ClearField("dim_value")
            dims[axis].dim_param = f"unk__{2 + 2 * index + axis}"
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: str) -> str:
    onnx.save_model(model, path)
    return path
