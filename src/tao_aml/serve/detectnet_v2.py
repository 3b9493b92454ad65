"""DetectNet_v2 decoding, written once: the local `tao-aml predict`, the endpoint client and scoring code use it.

The parameters come from the model card (model_card.json `postprocessing`, written by the register_model
step from the specs the pipeline used). The formulas are TAO's (nvidia_tao_deploy/cv/detectnet_v2/
postprocessor.py and utils.py, the same code as the TF1 backend's detectnet_v2/postprocessor/):

- grid: cell (i, j) of the W x H output grid has the centre (i * stride + offset, j * stride + offset);
  the bbox channels (l, t, r, b) give x1 = cx - l * scale, y1 = cy - t * scale, x2 = cx + r * scale,
  y2 = cy + b * scale (scale 35 and offset 0.5: the fixed BboxHandler normalizer of TAO's inference);
- cells with coverage > coverage_threshold are clustered per class (cells taken x-major, as TAO
  transposes the grid): DBSCAN on 1 - IoU (IoU with TAO's +0.01 in the denominator, eps + 1e-12,
  core points by summed coverage >= dbscan_min_samples, scikit-learn's labelling order), a cluster's box
  the coverage-weighted mean of its cells, its score their summed coverage, kept when taller than
  minimum_bounding_box_height and at least dbscan_confidence_threshold; NMS (TAO's pixel IoU with +1,
  highest coverage first, boxes kept above nms_confidence_threshold); or HYBRID, NMS over the cells of
  the DBSCAN clusters. As in TAO, NMS reports each kept box with the score found at the box's original
  index in the score array its loop had re-ordered (often another box's coverage, or 0; see _nms);
- as TAO's inference writes labels, boxes below dbscan_confidence_threshold are dropped, boxes are
  sorted by score, clipped to the network input and mapped back to the source image.

TAO calls that score the box's confidence; a DBSCAN score is not one: it is the summed coverage of the
cluster's cells (TAO's aggregate_cov model), often above 1. So a Detection names it `score` and says what
it is (SCORES), and nothing here calls it a confidence.

Preprocessing matches how the pipeline made the training images: letterboxed to the network size
(aspect kept, centred, black padding), grayscale replicated to 3 channels when the model was trained so,
RGB scaled by 1/255 (TAO's export preprocessing), NCHW float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw


class DecodeError(ValueError):
    """Outputs or parameters that cannot be decoded; the message names what is wrong."""


# What a box's score is, by clustering algorithm (see the module's docstring and _nms).
SCORES = {
    "dbscan": "summed coverage",  # of the cluster's grid cells: not a probability, often above 1
    "nms": "coverage",  # of a grid cell (0 to 1), read where TAO's NMS reads it
    "hybrid": "coverage",
}


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float
    score_is: str  # SCORES[algorithm]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 6), "score_is": self.score_is,
                "box": [round(v, 3) for v in (self.x1, self.y1, self.x2, self.y2)]}


@dataclass(frozen=True)
class Letterbox:
    """Where a source image sits inside the network input: scale and offsets (the converter's geometry)."""

    source_width: int
    source_height: int
    scale_x: float
    scale_y: float
    offset_x: int
    offset_y: int

    def to_source(self, x: float, y: float) -> tuple[float, float]:
        sx = min(max((x - self.offset_x) / self.scale_x, 0.0), float(self.source_width))
        sy = min(max((y - self.offset_y) / self.scale_y, 0.0), float(self.source_height))
        return sx, sy


def letterbox(image: Image.Image, width: int, height: int, grayscale: bool) -> tuple[np.ndarray, Letterbox]:
    """The network input [3, H, W] float32 for one image and the geometry to map boxes back."""
    from tao_aml.steps.data.wider_to_kitti import letterbox_geometry

    geometry = letterbox_geometry(image.width, image.height, width, height)
    content = image.convert("L" if grayscale else "RGB").convert("RGB")
    if (content.width, content.height) != (geometry.content_width, geometry.content_height):
        content = content.resize((geometry.content_width, geometry.content_height), Image.BILINEAR)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(content, (geometry.offset_x, geometry.offset_y))
    array = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return array, Letterbox(image.width, image.height, geometry.content_width / image.width,
                            geometry.content_height / image.height, geometry.offset_x, geometry.offset_y)


# ---------------------------------------------------------------------------------- TAO's clustering

def _iou_matrix(boxes: np.ndarray) -> np.ndarray:
    """utils.iou_vectorized: IoU of every pair, +0.01 in the denominator."""
    left, top, right, bottom = boxes.T
    w = np.maximum(0, np.minimum(right[:, None], right[None, :]) - np.maximum(left[:, None], left[None, :]))
    h = np.maximum(0, np.minimum(bottom[:, None], bottom[None, :]) - np.maximum(top[:, None], top[None, :]))
    inter = w * h
    areas = (right - left) * (bottom - top)
    return inter / (areas[:, None] + areas[None, :] - inter + 0.01)


def dbscan_labels(distances: np.ndarray, weights: np.ndarray, eps: float, min_samples: float) -> np.ndarray:
    """scikit-learn's DBSCAN(metric="precomputed").fit_predict(distances, sample_weight=weights).

    Neighbours are the points within eps (inclusive, the point itself among them); a point is a core
    point when its neighbours' weights sum to at least min_samples; clusters grow depth-first from each
    unlabelled core point in index order (sklearn/cluster/_dbscan_inner.pyx); -1 is noise.
    """
    neighbours = [np.flatnonzero(row <= eps) for row in distances]
    core = np.array([weights[n].sum() >= min_samples for n in neighbours])
    labels = np.full(len(weights), -1)
    label = 0
    for start in range(len(weights)):
        if labels[start] != -1 or not core[start]:
            continue
        stack, i = [], start
        while True:
            if labels[i] == -1:
                labels[i] = label
                if core[i]:
                    stack.extend(int(v) for v in neighbours[i] if labels[v] == -1)
            if not stack:
                break
            i = stack.pop()
        label += 1
    return labels


def _dbscan(boxes: np.ndarray, covs: np.ndarray, config: dict[str, Any]) -> list[tuple[np.ndarray, float]]:
    """utils.cluster_with_dbscan (IOU criterion, confidence model aggregate_cov)."""
    labels = dbscan_labels(1.0 - _iou_matrix(boxes), covs, config["dbscan_eps"] + 1e-12,
                           max(int(config["dbscan_min_samples"]), 1))
    found = []
    for label in np.unique(labels[labels >= 0]):
        w = covs[labels == label]
        mean = np.sum((boxes[labels == label].T * (w / w.sum())).T, axis=0)
        score = float(w.sum())
        if mean[3] - mean[1] <= config["minimum_bounding_box_height"]:
            continue
        if score >= config["dbscan_confidence_threshold"]:
            found.append((mean, score))
    return found


def _nms(boxes: np.ndarray, covs: np.ndarray, config: dict[str, Any]) -> list[tuple[np.ndarray, float]]:
    """utils.cluster_with_nms over utils.get_keep_indices, method 4 (plain NMS), step for step.

    TAO's loop moves the highest remaining score to position i by swapping rows (ties keep the row in
    place), zeroes the scores of later rows whose IoU (TAO's +1 pixel convention) is above
    nms_iou_threshold, and keeps the original indices of the rows whose final score is above
    nms_confidence_threshold. cluster_with_nms then reads each kept box's score at its ORIGINAL index
    of the score array the loop re-ordered in place: the score of whatever row ended there, often another
    box's or 0. TAO Deploy reports (and, below dbscan_confidence_threshold, drops) boxes by that number;
    so does this decoder.
    """
    scores = covs.copy()  # threshold_bboxes gave TAO its own copy, which the loop re-orders in place
    order = np.arange(len(scores))
    left, top, right, bottom = boxes.T
    areas = (right - left + 1) * (bottom - top + 1)
    for i in range(len(scores)):
        later = slice(i + 1, None)
        if i != len(scores) - 1:
            best = i + 1 + int(np.argmax(scores[later]))
            if scores[i] < scores[best]:
                for array in (scores, order, areas):
                    array[[i, best]] = array[[best, i]]
        me, rest = order[i], order[later]
        w = np.maximum(0.0, np.minimum(right[me], right[rest]) - np.maximum(left[me], left[rest]) + 1)
        h = np.maximum(0.0, np.minimum(bottom[me], bottom[rest]) - np.maximum(top[me], top[rest]) + 1)
        overlap = w * h / (areas[i] + areas[later] - w * h)
        scores[later] = np.where(overlap > config["nms_iou_threshold"], 0.0, scores[later])
    kept = order[scores > config["nms_confidence_threshold"]]
    return [(boxes[k], float(scores[k])) for k in kept]


def cluster(boxes: np.ndarray, covs: np.ndarray, config: dict[str, Any]) -> list[tuple[np.ndarray, float]]:
    algorithm = config["algorithm"]
    if algorithm == "dbscan":
        return _dbscan(boxes, covs, config)
    if algorithm == "nms":
        return _nms(boxes, covs, config)
    if algorithm == "hybrid":
        candidates = _dbscan_members(boxes, covs, config)
        # cluster_with_hybrid hands NMS the clusters' cells as float32 arrays.
        if not len(candidates):
            return []
        return _nms(boxes[candidates].astype(np.float32), covs[candidates].astype(np.float32), config)
    raise DecodeError(f"clustering algorithm {algorithm!r} is not dbscan, nms or hybrid")


def _dbscan_members(boxes: np.ndarray, covs: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    """utils.cluster_with_hybrid: the cells of the DBSCAN clusters that survive DBSCAN's filters."""
    labels = dbscan_labels(1.0 - _iou_matrix(boxes), covs, config["dbscan_eps"] + 1e-12,
                           max(int(config["dbscan_min_samples"]), 1))
    members = []
    for label in np.unique(labels[labels >= 0]):
        inside = np.flatnonzero(labels == label)
        w = covs[inside]
        mean = np.sum((boxes[inside].T * (w / w.sum())).T, axis=0)
        if mean[3] - mean[1] > config["minimum_bounding_box_height"] and w.sum() >= \
                config["dbscan_confidence_threshold"]:
            members.extend(int(i) for i in inside)
    return np.array(members, dtype=int)


# ---------------------------------------------------------------------------------- the decoder

NETWORK_KEYS = ("input", "cov", "bbox", "width", "height", "stride", "bbox_scale", "bbox_offset", "grid_width",
                "grid_height")


class Decoder:
    """Decodes DetectNet_v2 outputs with the parameters of a model card."""

    def __init__(self, postprocessing: dict[str, Any]) -> None:
        try:
            self.network = postprocessing["network"]
            self.classes: list[str] = list(postprocessing["classes"])
            self.clustering: dict[str, dict[str, Any]] = postprocessing["clustering"]
            self.preprocessing = postprocessing["preprocessing"]
        except (KeyError, TypeError) as err:
            raise DecodeError(f"the model card's postprocessing section lacks {err}") from None
        absent = [k for k in NETWORK_KEYS if k not in self.network]
        if absent:
            raise DecodeError(f"the model card's postprocessing.network lacks {', '.join(absent)}")
        missing = [c for c in self.classes if c not in self.clustering]
        if missing:
            raise DecodeError(f"the model card has no clustering parameters for {', '.join(missing)}")

    @property
    def input_size(self) -> tuple[int, int]:
        return int(self.network["width"]), int(self.network["height"])

    def preprocess(self, image: Image.Image) -> tuple[np.ndarray, Letterbox]:
        width, height = self.input_size
        return letterbox(image, width, height, bool(self.preprocessing.get("grayscale")))

    def _check(self, cov: np.ndarray, bbox: np.ndarray) -> None:
        grid = (int(self.network["grid_height"]), int(self.network["grid_width"]))
        classes = len(self.classes)
        if cov.ndim != 4 or cov.shape[1:] != (classes, *grid):
            raise DecodeError(f"{self.network['cov']} has shape {list(cov.shape)}, expected [N, {classes}, "
                              f"{grid[0]}, {grid[1]}]")
        if bbox.shape != (cov.shape[0], 4 * classes, *grid):
            raise DecodeError(f"{self.network['bbox']} has shape {list(bbox.shape)}, expected "
                              f"[{cov.shape[0]}, {4 * classes}, {grid[0]}, {grid[1]}]")

    def grid_boxes(self, bbox: np.ndarray) -> np.ndarray:
        """[4, H, W] ltrb channels of one class -> [W*H, 4] boxes in network pixels, x-major like TAO."""
        stride, offset, scale = float(self.network["stride"]), float(self.network["bbox_offset"]), \
            float(self.network["bbox_scale"])
        transposed = bbox.astype(np.float64).transpose(0, 2, 1)  # (4, W, H), as TAO's trt_output_process_fn
        cx = (np.arange(transposed.shape[1]) * stride + offset)[:, None]
        cy = (np.arange(transposed.shape[2]) * stride + offset)[None, :]
        boxes = np.stack([cx - transposed[0] * scale, cy - transposed[1] * scale,
                          cx + transposed[2] * scale, cy + transposed[3] * scale])
        return boxes.reshape(4, -1).T

    def decode(self, cov: np.ndarray, bbox: np.ndarray,
               geometry: Sequence[Letterbox | None] | None = None) -> list[list[Detection]]:
        """Detections per image of a batch; boxes in source-image pixels when `geometry` is given."""
        self._check(cov, bbox)
        width, height = self.input_size
        results = []
        for n in range(cov.shape[0]):
            found: list[Detection] = []
            for c, name in enumerate(self.classes):
                config = self.clustering[name]
                covs = cov[n, c].astype(np.float64).T.reshape(-1)  # x-major, as the boxes
                boxes = self.grid_boxes(bbox[n, 4 * c:4 * c + 4])
                keep = covs > config["coverage_threshold"]
                if not keep.any():
                    continue
                for box, score in cluster(boxes[keep], covs[keep], config):
                    if score < config["dbscan_confidence_threshold"]:
                        continue  # TAO's draw_bbox/labels filter
                    x1 = min(max(0.0, float(box[0])), width)
                    y1 = min(max(0.0, float(box[1])), height)
                    x2 = max(min(float(box[2]), width), x1)
                    y2 = max(min(float(box[3]), height), y1)
                    where = geometry[n] if geometry is not None else None
                    if where is not None:
                        (x1, y1), (x2, y2) = where.to_source(x1, y1), where.to_source(x2, y2)
                    found.append(Detection(name, score, x1, y1, x2, y2, SCORES[config["algorithm"]]))
            results.append(sorted(found, key=lambda d: -d.score))
        return results


def draw(image: Image.Image, detections: Sequence[Detection]) -> Image.Image:
    """A copy of `image` with the boxes and their labels drawn (green, as TAO's default bbox_color)."""
    canvas = image.convert("RGB")
    pen = ImageDraw.Draw(canvas)
    for d in detections:
        pen.rectangle((d.x1, d.y1, d.x2, d.y2), outline=(0, 255, 0), width=2)
        pen.text((d.x1 + 2, max(d.y1 - 12, 0)), f"{d.label} {d.score:.2f}", fill=(0, 255, 0))
    return canvas
