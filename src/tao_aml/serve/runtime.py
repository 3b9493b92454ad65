"""Run a DetectNet_v2 model asset on images: locally with onnxruntime, or through its Triton endpoint.

Both paths share everything but the forward pass: the model card's decoding parameters, the letterbox
preprocessing and the decoder of tao_aml.serve.detectnet_v2. Every input is checked before anything is
written (the model folder's files, the ONNX tensor names and shapes, every image), and the outputs are
written to a temporary folder that replaces the output folder's content only when all images are done.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

from tao_aml.serve import INSTALL
from tao_aml.serve.detectnet_v2 import Decoder, Detection, draw
from tao_aml.steps.asset.deploy_bundle import inside
from tao_aml.steps.common import StepError
from tao_aml.steps.data.http_client import printable, redact_url

MODEL_CARD = "model_card.json"
ONNX_MODEL = "model.onnx"
RESULTS = "detections.json"


class PredictError(RuntimeError):
    """Bad input (model folder, ONNX model, image) or a failing endpoint; the message names the file or URL."""


def load_card(model_dir: Path) -> dict[str, Any]:
    """model_card.json of a model folder, with every file it lists present."""
    path = model_dir / MODEL_CARD
    if not model_dir.is_dir():
        raise PredictError(f"{model_dir}: no such folder (give the model asset folder, e.g. as `az ml model "
                           "download` or a pipeline's model output wrote it)")
    if not path.is_file():
        raise PredictError(f"{model_dir} is not a model asset folder: it has no {MODEL_CARD}")
    try:
        inside(str(model_dir), MODEL_CARD, "the model card")
        card = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(card, dict):
            raise PredictError(f"{path} is not a model card: a JSON object is expected")
        files = card.get("files") or {}
        if not isinstance(files, (dict, list)):
            raise PredictError(f"{path}: files is not a list of file names")
        # A downloaded card names files: only ones inside the folder are looked at (no `..`, no link out).
        missing = sorted(name for name in files if not Path(inside(str(model_dir), str(name), "a file of the card"))
                         .is_file())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PredictError(f"{path} is not readable JSON: {err}") from None
    except StepError as err:
        raise PredictError(f"{path}: {err}") from None
    if missing:
        raise PredictError(f"the model asset {model_dir} lacks {', '.join(missing)} (listed in {path})")
    if not isinstance(card.get("postprocessing"), dict):
        raise PredictError(f"{path} has no postprocessing section: not a DetectNet_v2 (FaceNet) model asset")
    engine, triton = card.get("engine"), card.get("triton")
    if not isinstance(engine, (dict, type(None))) or not isinstance(triton, (dict, type(None))):
        raise PredictError(f"{path}: engine and triton must be JSON objects")
    return card


def load_images(paths: Sequence[Path]) -> list[Image.Image]:
    images = []
    for path in paths:
        if path.is_dir():
            raise PredictError(f"{path} is a folder: give its images, e.g. {path / '*.jpg'}")
        try:
            with Image.open(path) as image:
                image.load()
                images.append(image.copy())
        except FileNotFoundError:
            raise PredictError(f"image {path} does not exist") from None
        except (UnidentifiedImageError, OSError) as err:
            raise PredictError(f"{path} is not an image Pillow can read: {err}") from None
    return images


class Model(Protocol):
    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(coverage, bbox) outputs for an [N, 3, H, W] float32 batch."""


def onnx_in(model_dir: Path) -> Path:
    """The folder's model.onnx, read only when it is inside the folder (no link out), whatever the card lists."""
    try:
        return Path(inside(str(model_dir), ONNX_MODEL, "the ONNX model"))
    except StepError as err:
        raise PredictError(f"{model_dir}: {err}") from None


class LocalModel:
    """model.onnx with onnxruntime on the CPU; its tensors must be the card's."""

    def __init__(self, onnx_path: Path, decoder: Decoder) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise PredictError(f"tao-aml predict --local needs onnxruntime: {INSTALL}") from None
        try:
            self.session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable models
            raise PredictError(f"{onnx_path} is not an ONNX model onnxruntime can load: {err}") from None
        net = decoder.network
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = sorted(o.name for o in self.session.get_outputs())
        if inputs != [net["input"]] or outputs != sorted([net["cov"], net["bbox"]]):
            raise PredictError(f"{onnx_path} has inputs {inputs} and outputs {outputs}; the model card expects "
                               f"input {net['input']} and outputs {net['cov']}, {net['bbox']}")
        self.names = [net["cov"], net["bbox"]]
        self.input = net["input"]

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cov, bbox = self.session.run(self.names, {self.input: batch})
        return np.asarray(cov), np.asarray(bbox)


class TritonModel:
    """The model behind a Triton HTTP endpoint (KServe v2 protocol, binary tensor data extension)."""

    def __init__(self, base_url: str, model_name: str, decoder: Decoder, key: str | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PredictError(f"{base_url!r} is not an http(s) URL")
        self.url = f"{parts.scheme}://{parts.netloc}/v2/models/{model_name}/infer"
        self.headers = dict(headers or {})
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.network, self.timeout = decoder.network, timeout

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        data = np.ascontiguousarray(batch, dtype="<f4").tobytes()
        names = [self.network["cov"], self.network["bbox"]]
        header = json.dumps({
            "inputs": [{"name": self.network["input"], "shape": list(batch.shape), "datatype": "FP32",
                        "parameters": {"binary_data_size": len(data)}}],
            "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in names],
        }).encode("utf-8")
        request = urllib.request.Request(self.url, data=header + data, method="POST", headers=dict(
            self.headers, **{"Content-Type": "application/octet-stream",
                             "Inference-Header-Content-Length": str(len(header))}))
        try:
            with _NO_REDIRECTS.open(request, timeout=self.timeout) as response:
                body = response.read()
                json_length = response.headers.get("Inference-Header-Content-Length")
        except _Redirected as err:
            raise PredictError(f"{self.url} answered {err.code}, a redirect to {redact_url(err.target)}: not "
                               "followed (the endpoint key is sent to the endpoint only)") from None
        except urllib.error.HTTPError as err:
            detail = printable(err.read().decode("utf-8", "replace"), 300)
            raise PredictError(f"{self.url} answered {err.code}: {detail}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise PredictError(f"{self.url} cannot be reached: {printable(str(err))}") from None
        return self._outputs(body, json_length, names)

    def _outputs(self, body: bytes, json_length: str | None, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The named outputs of a v2 inference response; any other answer is one PredictError naming the URL."""
        try:
            split = int(json_length) if json_length is not None else len(body)
            if not 0 < split <= len(body):
                raise ValueError(f"Inference-Header-Content-Length {split} for a body of {len(body)} bytes")
            answer = json.loads(body[:split])
            found, offset = {}, split
            for output in answer["outputs"]:
                shape = [int(d) for d in output["shape"]]
                size = (output.get("parameters") or {}).get("binary_data_size")
                if size is not None:
                    if int(size) % 4 or offset + int(size) > len(body):
                        raise ValueError(f"binary_data_size {size} does not fit the FP32 data sent")
                    values = np.frombuffer(body[offset:offset + int(size)], dtype="<f4")
                    offset += int(size)
                else:
                    values = np.asarray(output["data"], dtype=np.float32)
                if values.size != int(np.prod(shape)):
                    raise ValueError(f"output {output.get('name')} has {values.size} values for shape {shape}")
                found[output["name"]] = values.reshape(shape)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            # json's errors are ValueErrors; a JSON body of another shape fails on the first field it lacks.
            raise PredictError(f"{self.url} answered something that is not a v2 inference response: "
                               f"{printable(str(err))}") from None
        absent = [name for name in names if name not in found]
        if absent:
            raise PredictError(f"{self.url} returned no {', '.join(absent)}")
        return found[names[0]], found[names[1]]


class _Redirected(urllib.error.HTTPError):
    def __init__(self, request: urllib.request.Request, code: int, headers: Any, target: str) -> None:
        super().__init__(request.full_url, code, "redirect not followed", headers, None)
        self.target = target


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect to any host with the request's headers, the endpoint key among them."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        raise _Redirected(req, code, headers, newurl)


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects)


@dataclass
class Prediction:
    image: Path
    detections: list[Detection]


def predict(model: Model, decoder: Decoder, paths: Sequence[Path], output_dir: Path,
            batch_size: int = 1) -> list[Prediction]:
    """Boxes for every image, written as <output_dir>/detections.json, <name>.json and annotated <name>.jpg."""
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise PredictError("two images have the same name; their outputs would overwrite each other: "
                           + ", ".join(sorted({n for n in names if names.count(n) > 1})))
    images = load_images(paths)
    predictions: list[Prediction] = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        arrays, geometry = zip(*(decoder.preprocess(image) for image in chunk), strict=True)
        cov, bbox = model.infer(np.stack(arrays).astype(np.float32))
        for offset, found in enumerate(decoder.decode(cov, bbox, list(geometry))):
            predictions.append(Prediction(paths[start + offset], found))
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".predict-", dir=output_dir))
    try:
        summary = []
        for prediction, image in zip(predictions, images, strict=True):
            entry = {"image": str(prediction.image), "detections": [d.as_dict() for d in prediction.detections]}
            summary.append(entry)
            (staging / f"{prediction.image.stem}.json").write_text(json.dumps(entry, indent=2) + "\n")
            draw(image, prediction.detections).save(staging / f"{prediction.image.stem}.jpg", quality=90)
        (staging / RESULTS).write_text(json.dumps(summary, indent=2) + "\n")
        for item in staging.iterdir():
            os.replace(item, output_dir / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return predictions
