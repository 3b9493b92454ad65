"""What users run today to turn WIDER FACE into KITTI for FaceNet, and how the converter step's output compares.

NVIDIA's TAO FaceNet notebook converts with a cv2 script (`convert_wider_to_kitti.py` beside
`notebooks/tao_launcher_starter_kit/facenet/facenet.ipynb` in NVIDIA/tao_tutorials). `convert` does what
it does, written afresh here: one process, one image at a time; `cv2.imread` (BGR), `cv2.resize` of the
colour image to int(w * scale) x int(h * scale) with INTER_CUBIC, pasted on a black canvas at
((W - nw) // 2, (H - nh) // 2), `cv2.cvtColor` to gray, replicated to 3 channels, `cv2.imwrite` PNG at
OpenCV's default settings. Its labels map each face's corners with the same scale and offset, truncate
them to whole pixels and clamp them to the canvas, and keep every face (WIDER's invalid ones too).

`compare` checks the converter step's folder against it: the letterboxed area and every box within 1 px
(the notebook's boxes taken before its truncation, clipped to the image as the step clips them), and the
format and channel count of every image. Used by benchmarks/bench_wider_to_kitti.py and by
tests/test_wider_to_kitti.py.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageStat

TOLERANCE = 1.0  # pixels
LABEL_ROUNDING = 0.005  # the step writes boxes to 2 decimals
BLACK = 24  # gray levels up to this are padding
# A face whose clipped box is narrower or lower than this may fall either side of the step's
# --min_box_size 1 within the tolerance: it may be dropped.
AMBIGUOUS_SIZE = 1.0 + 2 * TOLERANCE


@dataclass
class NotebookFace:
    exact: tuple[float, float, float, float]  # the notebook's mapping before int(): dx + x * scale, ...
    written: tuple[int, ...]  # what its label file holds: x1 y1 x2 y2
    invalid: bool


@dataclass
class NotebookImage:
    name: str  # WIDER's relative path
    content: tuple[int, int, int, int]  # letterboxed area: left, top, right, bottom
    faces: list[NotebookFace]


def read_annotations(path: Path) -> list[tuple[str, list[list[float]]]]:
    """(image path, faces of ten numbers) per image; a count of 0 is followed by one line of zeros."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    records, index = [], 0
    while index < len(lines):
        name, count = lines[index], int(lines[index + 1])
        faces = [[float(v) for v in lines[index + 2 + k].split()] for k in range(count)]
        records.append((name, faces))
        index += 2 + max(count, 1)
    return records


def flat_name(rel_path: str) -> str:
    """The step's output name; the notebook writes the base name alone, unique in the generated sets."""
    return rel_path.rsplit(".", 1)[0].replace("/", "__")


def convert(images_dir: Path, annotations: Path, out: Path, width: int = 736, height: int = 416) -> list[NotebookImage]:
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    results = []
    for name, faces in read_annotations(annotations):
        image = cv2.imread(str(images_dir / name))
        source_height, source_width = image.shape[:2]
        scale = min(width / source_width, height / source_height)
        nw, nh = int(source_width * scale), int(source_height * scale)
        dx, dy = (width - nw) // 2, (height - nh) // 2
        canvas = np.zeros((height, width, 3), np.uint8)
        canvas[dy:dy + nh, dx:dx + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_CUBIC)
        gray = cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)
        base = name.split("/")[-1].rsplit(".", 1)[0]
        cv2.imwrite(str(out / "images" / f"{base}.png"), np.repeat(gray[:, :, None], 3, axis=-1))
        mapped, lines = [], []
        for x, y, w, h, *flags in faces:
            exact = (dx + x * scale, dy + y * scale, dx + (x + w) * scale, dy + (y + h) * scale)
            written = tuple(min(max(int(v), 0), limit) for v, limit in zip(exact, (width, height) * 2, strict=True))
            mapped.append(NotebookFace(exact, written, bool(flags[3])))
            lines.append("face 0 {} 0 {} {} {} {} 0 0 0 0 0 0 0\n".format(int(flags[4]), *written))
        (out / "labels" / f"{base}.txt").write_text("".join(lines))
        results.append(NotebookImage(name, (dx, dy, dx + nw, dy + nh), mapped))
    return results


# ---------------------------------------------------------------------------------------------
# The converter step's output against the notebook's


@dataclass
class Comparison:
    images: int = 0
    boxes_matched: int = 0
    faces_invalid: int = 0  # flagged invalid by WIDER: the step drops them, the notebook keeps them
    faces_tiny: int = 0  # clipped to under AMBIGUOUS_SIZE px: either may be right
    faces_tiny_dropped: int = 0
    max_box_difference: float = 0.0
    max_content_difference: int = 0
    channels: dict[int, int] = field(default_factory=dict)  # channel count -> images
    formats: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.images} images, {self.boxes_matched} boxes matched (largest difference "
                f"{self.max_box_difference:.2f} px, letterboxed area {self.max_content_difference} px), "
                f"{self.faces_invalid} invalid faces dropped, {self.faces_tiny_dropped} of {self.faces_tiny} "
                f"faces under {AMBIGUOUS_SIZE:g} px dropped; formats {self.formats}, channels {self.channels}")


def _clip(box: tuple[float, ...], area: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    left, top, right, bottom = area
    x1, y1, x2, y2 = box
    return (min(max(x1, left), right), min(max(y1, top), bottom),
            min(max(x2, left), right), min(max(y2, top), bottom))


def read_step_boxes(path: Path) -> list[tuple[float, float, float, float]]:
    return [tuple(float(v) for v in line.split()[4:8]) for line in path.read_text().splitlines() if line.strip()]


def compare(notebook: list[NotebookImage], step_out: Path, channels: int, image_format: str = "PNG") -> Comparison:
    """Box by box, in annotation order; the letterboxed area from the pixels; format and channels."""
    result = Comparison()
    extension = {"PNG": ".png", "JPEG": ".jpg"}[image_format]
    for image in notebook:
        name = flat_name(image.name)
        result.images += 1
        with Image.open(step_out / "images" / f"{name}{extension}") as written:
            bands = len(written.getbands())
            result.channels[bands] = result.channels.get(bands, 0) + 1
            result.formats[written.format] = result.formats.get(written.format, 0) + 1
            if written.format != image_format or bands != channels or written.size != (736, 416):
                result.problems.append(f"{name}: {written.format} {written.mode} {written.size}, expected "
                                       f"{image_format} with {channels} channel(s), 736x416")
            if bands == 3 and image_format == "PNG":
                red, green, blue = written.split()
                if not red.tobytes() == green.tobytes() == blue.tobytes():
                    result.problems.append(f"{name}: three channels that are not the same gray")
            # The generated photos never come near black; JPEG's ringing spills a few gray levels into the padding.
            content = written.convert("L").point(lambda v: 255 if v > BLACK else 0).getbbox()
        difference = max(abs(a - b) for a, b in zip(content, image.content, strict=True))
        result.max_content_difference = max(result.max_content_difference, difference)
        if difference > TOLERANCE:
            result.problems.append(f"{name}: letterboxed area {content}, the notebook's {image.content}")
        boxes = read_step_boxes(step_out / "labels" / f"{name}.txt")
        index = 0
        for number, face in enumerate(image.faces, 1):
            if face.invalid:
                result.faces_invalid += 1
                continue
            expected = _clip(face.exact, image.content)
            tiny = min(expected[2] - expected[0], expected[3] - expected[1]) < AMBIGUOUS_SIZE
            result.faces_tiny += tiny
            if index < len(boxes):
                gap = max(abs(a - b) for a, b in zip(boxes[index], expected, strict=True))
                if gap <= TOLERANCE + LABEL_ROUNDING:
                    result.max_box_difference = max(result.max_box_difference, gap)
                    result.boxes_matched += 1
                    index += 1
                    continue
            if tiny:
                result.faces_tiny_dropped += 1
            else:
                result.problems.append(f"{name}: face {number}, the notebook's {face.written} (clipped "
                                       f"{tuple(round(v, 2) for v in expected)}), has no box within "
                                       f"{TOLERANCE:g} px in the step's labels {boxes[index:index + 1]}")
        if index < len(boxes):
            result.problems.append(f"{name}: the step wrote {len(boxes) - index} box(es) the notebook has no "
                                   f"face for, from {boxes[index]}")
    return result


def psnr(notebook_out: Path, step_out: Path, notebook: list[NotebookImage]) -> tuple[float, float]:
    """PSNR of the step's images against the notebook's, in gray: overall and for the least similar one."""
    errors = []
    for image in notebook:
        base = image.name.split("/")[-1].rsplit(".", 1)[0]
        step_files = list((step_out / "images").glob(f"{flat_name(image.name)}.*"))
        with Image.open(notebook_out / "images" / f"{base}.png") as a, Image.open(step_files[0]) as b:
            errors.append(ImageStat.Stat(ImageChops.difference(a.convert("L"), b.convert("L"))).rms[0] ** 2)

    def db(mse: float) -> float:
        return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)

    return db(sum(errors) / len(errors)), db(max(errors))


def bytes_per_image(folder: Path) -> float:
    names = os.listdir(folder)
    return sum((folder / name).stat().st_size for name in names) / max(1, len(names))
