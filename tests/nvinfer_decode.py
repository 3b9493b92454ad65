"""DeepStream's Gst-nvinfer detector post-processing for DetectNet_v2 outputs, driven by an nvinfer config file.

Read from NVIDIA's source (facts only, written anew here):
- nvdsinfer_context_impl_output_parsing.cpp (DeepStream 6.x, DetectPostprocessor): parseBoundingBox (cells
  y-major, coverage kept from pre-cluster-threshold up, box = (bbox - centre / 35) * 35 with centres
  i * ceil(net width / grid width) + 0.5, clipped to the frame before clustering, dropped when inverted);
  clusterAndFillDetectionOutputDBSCAN (DBSCAN when minBoxes > 0, ATHR filter on with threshold 60, then
  confidence < post-cluster-threshold dropped); clusterAndFillDetectionOutputNMS (stable sort by coverage,
  greedy NMS keeping IoU <= nms-iou-threshold, then kept when coverage > post-cluster-threshold);
  clusterAndFillDetectionOutputHybrid (DBSCAN's labelled cells, then NMS).
- nvdsinfer_dbscan.cpp, NvDsInferDBScan::clusterObjects (NVIDIA's Apache-2.0 copy in NVIDIA-ISAAC-ROS/
  isaac_ros_object_detection, gxf_isaac_detectnet/gxf/deepstream_utils/nvdsinferutils/dbscan/): distance
  1 - IoU, neighbours at distance < eps, a core cell has neighbours + 1 >= minBoxes, each unvisited core cell
  starts a cluster with its unvisited core neighbours (one step: neighbours' neighbours are not visited from
  it, non-core neighbours are left out); a cluster's box is the coverage-weighted mean, it is dropped when its
  summed coverage is below dbscan-min-score or sqrt(area) / (members + 1) > 60, and reports its MAX coverage.
- gstnvinfer_meta_utils.cpp attach_metadata_detector: a box lower than detected-min-h (in source-frame
  pixels; the tests use frames of the network's size) is dropped.
"""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BBOX_NORM, CENTRE_OFFSET, ATHR_THRESHOLD = 35.0, 0.5, 60.0
CLUSTER_MODES = {1: "dbscan", 2: "nms", 3: "hybrid"}


@dataclass
class Cell:
    left: float
    top: float
    width: float
    height: float
    confidence: float


def read_config(path: Path) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # nvinfer keys are case-sensitive (minBoxes)
    config.read_string(path.read_text())
    return config


def _parse(cov: np.ndarray, bbox: np.ndarray, klass: int, width: int, height: int, threshold: float) -> list[Cell]:
    grid_h, grid_w = cov.shape[1:]
    stride_x, stride_y = -(-width // grid_w), -(-height // grid_h)
    cells = []
    for h in range(grid_h):
        for w in range(grid_w):
            confidence = float(cov[klass, h, w])
            if confidence < threshold:
                continue
            cx, cy = (w * stride_x + CENTRE_OFFSET) / BBOX_NORM, (h * stride_y + CENTRE_OFFSET) / BBOX_NORM
            x1 = (float(bbox[4 * klass, h, w]) - cx) * -BBOX_NORM
            y1 = (float(bbox[4 * klass + 1, h, w]) - cy) * -BBOX_NORM
            x2 = (float(bbox[4 * klass + 2, h, w]) + cx) * BBOX_NORM
            y2 = (float(bbox[4 * klass + 3, h, w]) + cy) * BBOX_NORM
            x1, x2 = (min(v, width - 1) if v >= width else max(v, 0.0) for v in (x1, x2))
            y1, y2 = (min(v, height - 1) if v >= height else max(v, 0.0) for v in (y1, y2))
            if x2 - x1 < 0 or y2 - y1 < 0:
                continue
            cells.append(Cell(x1, y1, x2 - x1, y2 - y1, confidence))
    return cells


def _iou(a: Cell, b: Cell) -> float:
    w = max(0.0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    h = max(0.0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    union = a.width * a.height + b.width * b.height - w * h
    return w * h / union if union else 0.0


def _dbscan_labels(cells: list[Cell], eps: float, min_boxes: int) -> list[int]:
    n = len(cells)
    neighbours: list[list[int] | None] = [None] * n
    visited, labels, cluster = [False] * n, [-1] * n, 0

    def find(i: int) -> list[int]:
        if neighbours[i] is None:
            neighbours[i] = [j for j in range(n) if j != i and 1.0 - _iou(cells[i], cells[j]) < eps]
        return neighbours[i]  # type: ignore[return-value]

    for seed in range(n):
        if visited[seed]:
            continue
        visited[seed] = True
        first = list(find(seed))  # the loop bound is fixed before neighbours are joined
        if len(first) + 1 < min_boxes:
            continue
        labels[seed] = cluster
        for j in first:
            if not visited[j]:
                visited[j] = True
                if len(find(j)) + 1 >= min_boxes:
                    labels[j] = cluster
        cluster += 1
    return labels


def _dbscan(cells: list[Cell], eps: float, min_boxes: int, min_score: float) -> list[Cell]:
    labels = _dbscan_labels(cells, eps, min_boxes)
    found = []
    for label in sorted({v for v in labels if v >= 0}):
        members = [c for c, v in zip(cells, labels, strict=True) if v == label]
        total = sum(c.confidence for c in members)
        if total < min_score:
            continue
        box = [sum(c.confidence * getattr(c, k) for c in members) / total for k in ("left", "top", "width", "height")]
        if math.sqrt(box[2] * box[3]) / (len(members) + 1) > ATHR_THRESHOLD:
            continue
        found.append(Cell(*box, max(c.confidence for c in members)))
    return found


def _nms(cells: list[Cell], iou_threshold: float, post: float) -> list[Cell]:
    order = sorted(range(len(cells)), key=lambda i: -cells[i].confidence)  # stable
    kept: list[int] = []
    for i in order:
        if all(_iou(cells[i], cells[k]) <= iou_threshold for k in kept):
            kept.append(i)
    return [cells[i] for i in kept if cells[i].confidence > post]


def decode(config_path: Path, cov: np.ndarray, bbox: np.ndarray) -> list[tuple[int, float, float, float, float, float]]:
    """(class index, confidence, x1, y1, x2, y2) for one image's [C, H, W] coverage and [4C, H, W] bbox grids,
    as nvinfer decodes them with the config file at `config_path` (source frame = network input)."""
    config = read_config(config_path)
    prop = config["property"]
    _, height, width = (int(v) for v in prop["infer-dims"].split(";"))
    mode = CLUSTER_MODES[int(prop["cluster-mode"])]
    found = []
    for klass in range(int(prop["num-detected-classes"])):
        attrs = config[f"class-attrs-{klass}"]
        cells = _parse(cov, bbox, klass, width, height, float(attrs["pre-cluster-threshold"]))
        post = float(attrs["post-cluster-threshold"])
        if mode == "dbscan":
            boxes = [c for c in _dbscan(cells, float(attrs["eps"]), int(attrs["minBoxes"]),
                                        float(attrs["dbscan-min-score"])) if c.confidence >= post]
        elif mode == "nms":
            boxes = _nms(cells, float(attrs["nms-iou-threshold"]), post)
        else:
            labels = _dbscan_labels(cells, float(attrs["eps"]), int(attrs["minBoxes"]))
            boxes = _nms([c for c, v in zip(cells, labels, strict=True) if v != -1],
                         float(attrs["nms-iou-threshold"]), post)
        min_height = int(attrs.get("detected-min-h", "0"))
        found += [(klass, c.confidence, c.left, c.top, c.left + c.width, c.top + c.height) for c in boxes
                  if c.height >= min_height]
    return found
