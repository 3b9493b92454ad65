"""DetectNet_v2 decoding and `tao-aml predict`, on small ONNX models with FaceNet's tensors and planted boxes.

The coverage and bbox grids of each model are built from known boxes (tao_aml/simulate/onnx_models.py: TAO's ltrb
encoding around each cell centre); decoding them with the model card's parameters must give the boxes back
to the pixel, with the inference spec's thresholds honoured.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
from azure.ai.ml.entities import ManagedOnlineEndpoint
from PIL import Image

from azure_recorder import FakeAzure, FakeMLClient, fake_azure  # noqa: F401  (fixture)
from model_fixtures import detectnet_v2_outputs, facenet_args, facenet_outputs
from tao_aml.cli import main
from tao_aml.serve.detectnet_v2 import Decoder, dbscan_labels
from tao_aml.serve.runtime import PredictError, TritonModel, load_card
from tao_aml.simulate import onnx_models
from tao_aml.simulate.onnx_models import Box
from tao_aml.steps.asset import register_model

W, H = 160, 96
DBSCAN = {"algorithm": "dbscan", "coverage_threshold": 0.004, "dbscan_eps": 0.15, "dbscan_min_samples": 1,
          "dbscan_confidence_threshold": 0.9, "minimum_bounding_box_height": 4, "nms_iou_threshold": 0.3,
          "nms_confidence_threshold": 0.1}


def params(clustering: dict | None = None, classes: tuple[str, ...] = ("face",)) -> dict:
    return {"network": {"input": onnx_models.INPUT, "cov": onnx_models.COV, "bbox": onnx_models.BBOX, "channels": 3,
                        "height": H, "width": W, "classes": len(classes), "grid_height": H // 16,
                        "grid_width": W // 16, "stride": 16, "bbox_scale": 35.0, "bbox_offset": 0.5},
            "preprocessing": {"scale": 1 / 255, "color": "rgb", "grayscale": False, "letterbox": True},
            "classes": list(classes), "clustering": {c: dict(DBSCAN, **(clustering or {})) for c in classes}}


def run_model(tmp_path: Path, boxes: list[Box], classes: int = 1, cells: int | None = None) -> tuple:
    path = onnx_models.save(onnx_models.detectnet_v2(W, H, boxes, classes, cells), str(tmp_path / "m.onnx"))
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return tuple(session.run([onnx_models.COV, onnx_models.BBOX], {onnx_models.INPUT: np.zeros((1, 3, H, W),
                                                                                              np.float32)}))


def as_boxes(found) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [(d.label, round(d.score, 4), round(d.x1, 3), round(d.y1, 3), round(d.x2, 3), round(d.y2, 3))
            for d in found]


def test_planted_boxes_come_back_to_the_pixel_with_summed_coverage(tmp_path: Path) -> None:
    cov, bbox = run_model(tmp_path, [Box(20, 10, 70, 60, cov=0.5), Box(100.25, 30, 150, 90.5, cov=0.95)])
    [found] = Decoder(params()).decode(cov, bbox)
    # 9 cells inside the first box (coverage 0.5 each: 4.5), 12 inside the second (0.95 each: 11.4).
    assert as_boxes(found) == [("face", 11.4, 100.25, 30.0, 150.0, 90.5), ("face", 4.5, 20.0, 10.0, 70.0, 60.0)]


def test_the_inference_specs_thresholds_are_honoured(tmp_path: Path) -> None:
    cov, bbox = run_model(tmp_path, [Box(20, 10, 70, 60, cov=0.5), Box(100, 30, 150, 90, cov=0.6)], cells=2)
    both = [("face", 1.2, 100.0, 30.0, 150.0, 90.0), ("face", 1.0, 20.0, 10.0, 70.0, 60.0)]
    # Two cells each: 1.0 and 1.2 summed coverage, both at least dbscan_confidence_threshold 0.9.
    assert as_boxes(Decoder(params()).decode(cov, bbox)[0]) == both
    assert as_boxes(Decoder(params({"dbscan_confidence_threshold": 1.1})).decode(cov, bbox)[0]) == both[:1]
    # DBSCAN's core points need summed coverage >= dbscan_min_samples (TAO passes coverage as sample weight).
    assert as_boxes(Decoder(params({"dbscan_min_samples": 2, "dbscan_confidence_threshold": 0.0}))
                    .decode(cov, bbox)[0]) == []
    # Cells at or below coverage_threshold never reach clustering.
    assert as_boxes(Decoder(params({"coverage_threshold": 0.5})).decode(cov, bbox)[0]) == both[:1]
    # A cluster not taller than minimum_bounding_box_height is dropped (heights 50 and 60).
    assert as_boxes(Decoder(params({"minimum_bounding_box_height": 50})).decode(cov, bbox)[0]) == both[:1]
    assert as_boxes(Decoder(params({"minimum_bounding_box_height": 59.9})).decode(cov, bbox)[0]) == both[:1]
    assert as_boxes(Decoder(params({"minimum_bounding_box_height": 61})).decode(cov, bbox)[0]) == []


def test_nms_and_hybrid_keep_one_box_per_object(tmp_path: Path) -> None:
    cov, bbox = run_model(tmp_path, [Box(20, 10, 70, 60, cov=0.8)])
    nms = Decoder(params({"algorithm": "nms", "dbscan_confidence_threshold": 0.0})).decode(cov, bbox)[0]
    assert as_boxes(nms) == [("face", 0.8, 20.0, 10.0, 70.0, 60.0)]  # identical cells: one survives, its coverage
    assert Decoder(params({"algorithm": "nms", "nms_confidence_threshold": 0.85,
                           "dbscan_confidence_threshold": 0.0})).decode(cov, bbox) == [[]]
    hybrid = Decoder(params({"algorithm": "hybrid", "dbscan_confidence_threshold": 0.5})).decode(cov, bbox)[0]
    assert as_boxes(hybrid) == [("face", 0.8, 20.0, 10.0, 70.0, 60.0)]


def cell(cov: np.ndarray, bbox: np.ndarray, i: int, j: int, coverage: float, box: tuple) -> None:
    """Cell (i, j) of class 0 predicts `box` with `coverage` (TAO's ltrb encoding around the cell centre)."""
    cx, cy = i * 16 + 0.5, j * 16 + 0.5
    cov[0, 0, j, i] = coverage
    bbox[0, :4, j, i] = [(cx - box[0]) / 35, (cy - box[1]) / 35, (box[2] - cx) / 35, (box[3] - cy) / 35]


def test_nms_reports_what_taos_nms_reports() -> None:
    """TAO Deploy's utils.get_keep_indices and cluster_with_nms, worked by hand. Cells x-major (TAO transposes the
    grid): A (2, 1) 0.6, B (2, 2) 0.9, C (3, 1) 0.3 on one object, D (7, 3) 0.5 on another. The loop swaps B to
    position 0 (order B A C D), zeroes A and C, swaps D to position 1 (order B D C A): scores 0.9 0.5 0 0. It keeps
    positions 0 and 1, the original indices 1 (B) and 3 (D), and reads their confidences at positions 1 and 3 of
    the re-ordered scores: B is reported at 0.5, D at 0."""
    cov, bbox = np.zeros((1, 1, H // 16, W // 16), np.float32), np.zeros((1, 4, H // 16, W // 16), np.float32)
    for i, j, coverage, box in ((2, 1, 0.6, (21, 11, 71, 61)), (2, 2, 0.9, (20, 10, 70, 60)),
                                (3, 1, 0.3, (19, 9, 69, 59)), (7, 3, 0.5, (100, 30, 150, 90))):
        cell(cov, bbox, i, j, coverage, box)
    nms = {"algorithm": "nms", "nms_confidence_threshold": 0.1, "dbscan_confidence_threshold": 0.0}
    assert as_boxes(Decoder(params(nms)).decode(cov, bbox)[0]) == [("face", 0.5, 20.0, 10.0, 70.0, 60.0),
                                                                  ("face", 0.0, 100.0, 30.0, 150.0, 90.0)]
    # TAO Deploy's inference drops what is reported below dbscan_confidence_threshold: D, whose coverage is 0.5.
    strict = dict(nms, dbscan_confidence_threshold=0.3)
    assert as_boxes(Decoder(params(strict)).decode(cov, bbox)[0]) == [("face", 0.5, 20.0, 10.0, 70.0, 60.0)]


def test_dbscan_labels_like_scikit_learn() -> None:
    """Core points by summed weight; border points go to the first cluster that reaches them; -1 is noise."""
    distances = np.array([[0, .1, .9, .9, .9], [.1, 0, .1, .9, .9], [.9, .1, 0, .9, .9], [.9, .9, .9, 0, .1],
                          [.9, .9, .9, .1, 0]])
    weights = np.array([0.2, 0.2, 0.2, 0.3, 0.05])
    # Point 1 sees 0, 1, 2 (0.6 >= 0.5): core. 0 and 2 see 0.4: border points of 1's cluster. 3, 4: 0.35: noise.
    assert list(dbscan_labels(distances, weights, 0.15, 0.5)) == [0, 0, 0, -1, -1]
    assert list(dbscan_labels(distances, weights, 0.15, 0.3)) == [0, 0, 0, 1, 1]


def test_two_classes_decode_from_their_own_channels(tmp_path: Path) -> None:
    cov, bbox = run_model(tmp_path, [Box(20, 10, 70, 60, cov=0.5), Box(100, 30, 150, 90, cov=0.5, class_index=1)],
                          classes=2)
    [found] = Decoder(params(classes=("face", "mask"))).decode(cov, bbox)
    assert sorted((d.label, round(d.x1), round(d.y2)) for d in found) == [("face", 20, 60), ("mask", 100, 90)]


def test_boxes_map_back_through_the_letterbox(tmp_path: Path) -> None:
    """A 320 x 96 image is letterboxed to 160 x 48 at y 24: network y 30..60 is image y 12..72, x doubles."""
    cov, bbox = run_model(tmp_path, [Box(20, 30, 70, 60)])
    decoder = Decoder(params())
    _, geometry = decoder.preprocess(Image.new("RGB", (320, 96)))
    [found] = decoder.decode(cov, bbox, [geometry])
    assert as_boxes(found) == [("face", 5.7, 40.0, 12.0, 140.0, 72.0)]


@pytest.fixture
def asset(tmp_path: Path) -> Path:
    """A FaceNet model asset as the pipeline assembles it, with one face planted at (20, 10)-(70, 60)."""
    outputs = facenet_outputs(tmp_path / "steps", W, H, boxes=[Box(20, 10, 70, 60)])
    assert register_model.main(facenet_args(outputs)) == 0
    return outputs["out"]


def image(path: Path, size: tuple[int, int] = (W, H)) -> Path:
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def test_predict_local_writes_boxes_and_annotated_images(asset: Path, tmp_path: Path, capsys) -> None:
    images = [image(tmp_path / "a.png"), image(tmp_path / "b.jpg", (320, 192))]
    out = tmp_path / "out"
    assert main(["predict", "--local", str(asset), *map(str, images), "--output-dir", str(out),
                 "--batch-size", "2"]) == 0
    found = json.loads((out / "detections.json").read_text())
    assert [f["detections"][0]["box"] for f in found] == [[20.0, 10.0, 70.0, 60.0], [40.0, 20.0, 140.0, 120.0]]
    assert json.loads((out / "a.json").read_text()) == found[0]
    with Image.open(out / "b.jpg") as annotated:
        assert annotated.size == (320, 192)
        assert annotated.getpixel((40, 70))[1] > 200  # the box's green edge
    assert "a.png: face" in capsys.readouterr().out


def test_bad_input_is_named_and_nothing_is_written(asset: Path, tmp_path: Path, capsys) -> None:
    good, out = image(tmp_path / "a.png"), tmp_path / "out"
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["predict", "--local", str(asset), str(good), str(tmp_path / "notes.txt"), "--output-dir",
                 str(out)]) == 2
    assert f"{tmp_path / 'notes.txt'} is not an image" in capsys.readouterr().err and not out.exists()
    # A model whose outputs have other names than TAO's export.
    other = tmp_path / "other.onnx"
    onnx_models.save(onnx_models.detectnet_v2(W, H, [Box(20, 10, 70, 60)], output_names=("cov", "bbox")), str(other))
    other.replace(asset / "model.onnx")
    assert main(["predict", "--local", str(asset), str(good), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{asset / 'model.onnx'} has inputs ['input_1:0'] and outputs ['bbox', 'cov']" in err and not out.exists()
    # A model asset missing a file its card lists.
    (asset / "labels.txt").unlink()
    assert main(["predict", "--local", str(asset), str(good), "--output-dir", str(out)]) == 2
    assert f"the model asset {asset} lacks labels.txt" in capsys.readouterr().err and not out.exists()


def test_the_card_decoder_refuses_outputs_of_another_shape(asset: Path) -> None:
    decoder = Decoder(load_card(asset)["postprocessing"])
    with pytest.raises(ValueError, match=r"output_cov/Sigmoid:0 has shape \[1, 1, 5, 10\]"):
        decoder.decode(np.zeros((1, 1, 5, 10), np.float32), np.zeros((1, 4, 5, 10), np.float32))
    with pytest.raises(PredictError, match="not an http"):
        TritonModel("ftp://host", "facenet", decoder)


class TritonStandIn(BaseHTTPRequestHandler):
    """Triton's HTTP v2 `infer` with the binary tensor extension, answering with onnxruntime on model.onnx."""

    session: onnxruntime.InferenceSession
    seen: list[dict]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        split = int(self.headers["Inference-Header-Content-Length"])
        request = json.loads(body[:split])
        self.seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "request": request})
        if self.path != "/v2/models/tao-facenet/infer":  # the pipeline's model_name names the Triton model
            self.send_error(404, "unknown model")
            return
        [tensor] = request["inputs"]
        batch = np.frombuffer(body[split:], dtype="<f4").reshape(tensor["shape"])
        names = [o["name"] for o in request["outputs"]]
        values = self.session.run(names, {tensor["name"]: batch})
        blobs = [np.ascontiguousarray(v, dtype="<f4").tobytes() for v in values]
        header = json.dumps({"model_name": "tao-facenet", "outputs": [
            {"name": n, "datatype": "FP32", "shape": list(v.shape), "parameters": {"binary_data_size": len(b)}}
            for n, v, b in zip(names, values, blobs, strict=True)]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Inference-Header-Content-Length", str(len(header)))
        self.send_header("Content-Length", str(len(header) + sum(map(len, blobs))))
        self.end_headers()
        self.wfile.write(header + b"".join(blobs))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def triton(asset: Path):  # type: ignore[no-untyped-def]
    handler = type("Handler", (TritonStandIn,), {
        "session": onnxruntime.InferenceSession(str(asset / "triton" / "tao-facenet" / "1" / "model.onnx"),
                                                providers=["CPUExecutionProvider"]), "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.seen
    server.shutdown()
    server.server_close()


def test_predict_through_the_endpoint_decodes_like_the_local_path(asset: Path, tmp_path: Path, triton, config,
                                                                 fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    base, seen = triton
    fake_azure.scoring_base = base  # the endpoint tao-aml deploy made answers here
    FakeMLClient(fake_azure, "credential").online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="faces", auth_mode="key"))
    fake_azure.endpoint_keys["faces"] = "secret-key"
    images = [image(tmp_path / "a.png"), image(tmp_path / "b.png")]
    assert main(["predict", "--endpoint", "faces", "--model-dir", str(asset), *map(str, images), "--output-dir",
                 str(tmp_path / "remote"), "--batch-size", "2", "--config", str(config)]) == 0
    assert main(["predict", "--local", str(asset), *map(str, images), "--output-dir", str(tmp_path / "local")]) == 0
    remote = json.loads((tmp_path / "remote" / "detections.json").read_text())
    assert [r["detections"] for r in remote] == [
        r["detections"] for r in json.loads((tmp_path / "local" / "detections.json").read_text())]
    assert remote[0]["detections"][0]["box"] == [20.0, 10.0, 70.0, 60.0]
    [call] = seen
    assert call["auth"] == "Bearer secret-key" and call["request"]["inputs"][0]["shape"] == [2, 3, H, W]
    assert ("online_endpoints.get_keys", "faces") in fake_azure.calls
    assert "secret-key" not in capsys.readouterr().out


def test_an_endpoint_that_is_not_there_is_a_workspace_error(asset: Path, tmp_path: Path, config,
                                                           fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert main(["predict", "--endpoint", "nothere", "--model-dir", str(asset), str(image(tmp_path / "a.png")),
                 "--config", str(config)]) == 3
    assert "endpoint nothere not found" in capsys.readouterr().err


def test_predict_names_the_classes_of_a_model_of_your_own(tmp_path: Path, capsys) -> None:
    outputs = detectnet_v2_outputs(tmp_path / "steps", boxes=[Box(20, 10, 70, 60, class_index=0),
                                                               Box(100, 20, 140, 90, class_index=1)])
    assert register_model.main(["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--specs",
                                str(outputs["inference"]), "--model_name", "parking-lot", "--output_dir",
                                str(outputs["out"])]) == 0
    assert main(["predict", "--local", str(outputs["out"]), str(image(tmp_path / "lot.png")), "--output-dir",
                 str(tmp_path / "out")]) == 0
    [found] = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert sorted((d["label"], d["box"]) for d in found["detections"]) == [
        ("car", [20.0, 10.0, 70.0, 60.0]), ("pedestrian", [100.0, 20.0, 140.0, 90.0])]
    out = capsys.readouterr().out
    assert "model parking-lot: classes car, pedestrian" in out and "face" not in out


def test_predicts_help_is_not_about_faces(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "face" not in capsys.readouterr().out.lower()
