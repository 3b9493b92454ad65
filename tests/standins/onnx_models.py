"""Small real ONNX models with the tensors TAO 5.0's exports have, for the stand-ins and the serving tests.

DetectNet_v2 (keras2onnx route of `detectnet_v2 export`, nvidia_tao_tf1/cv/detectnet_v2/export/exporter.py):
input `input_1:0` [N, 3, H, W] (RGB scaled 1/255), outputs `output_cov/Sigmoid:0` [N, classes, H/16, W/16] and
`output_bbox/BiasAdd:0` [N, 4 x classes, H/16, W/16]. BPNet (`bpnet export -t tfonnx`, channels_last):
input `input_1:0` [N, H, W, 3], outputs `heatmap_out/BiasAdd:0` [N, H/8, W/8, 19] and
`conv2d_transpose_1/BiasAdd:0` [N, H/2, W/2, 38]. The outputs are constant grids (what a test plants),
broadcast over the batch, so decoding can be checked to the pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT = "input_1:0"
COV, BBOX = "output_cov/Sigmoid:0", "output_bbox/BiasAdd:0"
HEATMAP, PAF = "heatmap_out/BiasAdd:0", "conv2d_transpose_1/BiasAdd:0"
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


def bpnet(height: int, width: int) -> onnx.ModelProto:
    heatmap = np.zeros((1, height // 8, width // 8, 19), np.float32)
    paf = np.zeros((1, height // 2, width // 2, 38), np.float32)
    info = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", height, width, 3])
    return _constant_outputs(info, [(HEATMAP, heatmap), (PAF, paf)], [1, 2, 3])


def save(model: onnx.ModelProto, path: str) -> str:
    onnx.save_model(model, path)
    return path
