"""WIDER FACE to KITTI: letterboxed images and `face` labels for DetectNet_v2 (FaceNet).

Reads a WIDER FACE split (`WIDER_<split>/images/<event>/<name>.jpg` and
`wider_face_split/wider_face_<split>_bbx_gt.txt`) and writes what TAO's `kitti_config` reads:
`<out>/images/<event>__<name>.<ext>`, `<out>/labels/<event>__<name>.txt` and, last, `<out>/summary.json`.
A folder without summary.json is not a finished conversion: on failure this run removes what it wrote.

Each image is letterboxed to width x height (aspect kept, centred, black padding). With `--grayscale
true` (the default, as the pretrained FaceNet is trained on grayscale) the image is gray, written with
`--channels` 3 (gray replicated to three channels, as NVIDIA's FaceNet notebook writes it) or 1 (a
one-channel PNG, a third of the data). `--channels auto` (the default) writes 1 channel for `--split
train` and 3 otherwise: TAO reads the training split only in dataset_convert (the image size), the
trainer (`tf.image.decode_png(channels=3)`) and INT8 calibration (`convert("RGB")`), which see the same
three equal channels either way, whereas TAO Deploy's detectnet_v2 inference draws coloured boxes on
a validation image as the file decodes, which Pillow refuses on a one-channel image (docs/facenet.md, "The
WIDER → KITTI converter", lists every reader with its source). Source images are read as TAO's decoders read
them (formats/images.py): 16-bit gray scaled to 8 bits (not clipped to white), palette, CMYK and alpha
converted, EXIF orientation not applied (WIDER's boxes, like every TAO reader, refer to the stored
pixels). Boxes are clipped to the source image,
scaled and offset like the pixels, and written as KITTI lines
`face 0.00 0 0.00 x1 y1 x2 y2 0.00 0.00 0.00 0.00 0.00 0.00 0.00`. Dropped faces are counted by
reason: `invalid` (WIDER's invalid flag), `outside` (no overlap with the image) and `too_small`
(narrower or lower than --min_box_size output pixels, which includes WIDER's zero-size boxes).
Images left without a face keep an empty label file (negatives) unless `--keep_empty false`.

Speed and quality choices (benchmarks/README.md has the numbers, measured against the notebook's cv2 script):
- JPEG draft mode decodes straight to gray (or RGB) at the smallest DCT scale (1/2, 1/4, 1/8) that is
  still at least the letterboxed size: DCT scaling averages like a box filter, so nothing is aliased.
- Resize is OpenCV's INTER_CUBIC, as NVIDIA's notebook resizes (about 4x Pillow's BICUBIC here). After
  the DCT-scaled decode it never shrinks by 2 or more; when it would (a large non-JPEG source), it is
  INTER_AREA, which averages like the DCT scaling instead of aliasing.
- PNG is written here, not by Pillow: every row gets the PNG `Up` filter (NumPy), and one IDAT is
  deflated by ISA-L (`isal`, level 1) when it is installed, else by zlib (level 1). Pillow's own PNG
  writer tries five filters on every row, which costs more than the decode and resize together.
  Lossless either way: only the file bytes depend on the deflater, never the pixels.
  `--image_format jpg` writes quality-95 JPEGs (smaller, but lossy).
- Images are converted in a multiprocessing pool (every core by default), in ordered chunks, so
  the first bad image in annotation order is the one reported.
"""

import argparse
import functools
import json
import logging
import math
import multiprocessing
import os
import struct
import sys
import zlib
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from tao_aml.steps.cli_types import boolean, positive_int
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.data.formats import images
from tao_aml.steps.data.formats.images import READ_ERRORS
from tao_aml.steps.data.formats.kitti import check_class_names
from tao_aml.steps.data.formats.wider import Face, Record, parse_annotations

LOG = logging.getLogger("tao_aml.steps.data.wider_to_kitti")

DROP_REASONS = ("invalid", "outside", "too_small")
SKIP_REASONS = ("missing", "unreadable", "no_faces")
SUMMARY_FILE = "summary.json"
# Joins the event folder and the file name: WIDER names never contain it, so flat names stay unique.
FLAT_SEPARATOR = "__"
# Shrinking by at least this much is INTER_AREA (antialiased) rather than INTER_CUBIC.
AREA_SHRINK = 2.0
JPEG_QUALITY = 95
EXTENSIONS = {"png": ".png", "jpg": ".jpg"}
CHANNELS_CHOICES = ("auto", "1", "3")

# PNG: 8 bits per sample, colour type 0 (gray) or 2 (RGB), every row Up-filtered (PNG spec, 9.2).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPES = {1: 0, 3: 2}
PNG_FILTER_UP = 2
DEFLATE_LEVEL = 1
try:  # ISA-L's deflate (the `isal` package, in the tao_data image) is about 3x zlib's at level 1.
    from isal import isal_zlib
except ImportError:  # pragma: no cover - depends on the environment
    isal_zlib = None
DEFLATERS = {"zlib": lambda data: zlib.compress(data, DEFLATE_LEVEL)}
if isal_zlib is not None:
    DEFLATERS["isal"] = lambda data: isal_zlib.compress(data, DEFLATE_LEVEL)
# Which deflater writes the PNGs: only the bytes of the files depend on it, never their pixels.
DEFLATE = "isal" if "isal" in DEFLATERS else "zlib"


class Geometry(NamedTuple):
    """Where the scaled source image sits on the output canvas."""

    offset_x: int
    offset_y: int
    content_width: int
    content_height: int


class Settings(NamedTuple):
    images_dir: str
    output_dir: str
    width: int
    height: int
    grayscale: bool
    class_name: str
    image_format: str
    min_box_size: float
    keep_empty: bool
    channels: int = 3  # of the written images: 1 only for gray


class ImageResult(NamedTuple):
    written: bool
    faces_kept: int
    dropped: Dict[str, int]  # faces dropped, by reason (DROP_REASONS)
    skip_reason: Optional[str]  # one of SKIP_REASONS
    problem: str  # what was wrong with the source image, for the message or the summary


# ---------------------------------------------------------------------------------------------
# Names (the annotation file itself is read and checked by formats/wider.py)


def flat_name(rel_path: str) -> str:
    """`0--Parade/0_Parade_x_1.jpg` -> `0--Parade__0_Parade_x_1`: one folder, unique names."""
    return os.path.splitext(rel_path)[0].replace("/", FLAT_SEPARATOR)


def check_unique_names(annotations: str, records: Sequence[Record]) -> None:
    seen: Dict[str, Record] = {}
    for record in records:
        name = flat_name(record.rel_path)
        if name in seen:
            first = seen[name]
            raise StepError(
                f"{annotations}: lines {first.line} ({first.rel_path}) and {record.line} ({record.rel_path}) "
                f"would both be written as {name}"
            )
        seen[name] = record


# ---------------------------------------------------------------------------------------------
# Geometry and labels


def letterbox_geometry(src_width: int, src_height: int, width: int, height: int) -> Geometry:
    """Scale to fit width x height with the aspect kept, centred (padding split evenly, odd pixel last)."""
    scale = min(width / src_width, height / src_height)
    content_width = min(width, max(1, int(round(src_width * scale))))
    content_height = min(height, max(1, int(round(src_height * scale))))
    return Geometry(
        (width - content_width) // 2,
        (height - content_height) // 2,
        content_width,
        content_height,
    )


def map_face(
    face: Face, src_width: int, src_height: int, geometry: Geometry, min_box_size: float
) -> Tuple[Optional[Tuple[float, float, float, float]], Optional[str]]:
    """The face's box on the output canvas, or None and the reason it is dropped."""
    if face.invalid:
        return None, "invalid"
    x1 = max(face.x1, 0.0)
    y1 = max(face.y1, 0.0)
    x2 = min(face.x1 + face.width, float(src_width))
    y2 = min(face.y1 + face.height, float(src_height))
    if face.width > 0 and face.height > 0 and (x2 <= x1 or y2 <= y1):
        return None, "outside"
    # Multiply before dividing: one rounding, so x.xx5 values land on the right side.
    box = (
        x1 * geometry.content_width / src_width + geometry.offset_x,
        y1 * geometry.content_height / src_height + geometry.offset_y,
        x2 * geometry.content_width / src_width + geometry.offset_x,
        y2 * geometry.content_height / src_height + geometry.offset_y,
    )
    if box[2] - box[0] < min_box_size or box[3] - box[1] < min_box_size:
        return None, "too_small"
    return box, None


def kitti_line(class_name: str, box: Tuple[float, float, float, float]) -> str:
    """KITTI: class, truncation, occlusion, alpha, x1 y1 x2 y2, 3 dimensions, 3 location, rotation_y."""
    return "{} 0.00 0 0.00 {:.2f} {:.2f} {:.2f} {:.2f} 0.00 0.00 0.00 0.00 0.00 0.00 0.00".format(
        class_name, *box
    )


# ---------------------------------------------------------------------------------------------
# PNG writing


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def encode_png(pixels: np.ndarray, channels: Optional[int] = None, deflate: Optional[str] = None) -> bytes:
    """A lossless 8-bit PNG of gray (H, W) or RGB (H, W, 3) pixels, gray as RGB with `channels` 3.

    Every row gets the Up filter (each byte minus the one above it), which suits letterboxed photos:
    padding rows filter to zeros, and gray replicated to RGB keeps three equal bytes per pixel. One IDAT.
    """
    height, width = pixels.shape[:2]
    bands = 1 if pixels.ndim == 2 else pixels.shape[2]
    channels = channels or bands
    samples = pixels.reshape(height, width * bands)
    if channels != bands:
        samples = np.repeat(samples, channels, axis=1)
    # The image data: each row is its filter type byte, then the row minus the row above (modulo 256).
    rows = np.empty((height, 1 + samples.shape[1]), np.uint8)
    rows[:, 0] = PNG_FILTER_UP
    rows[0, 1:] = samples[0]
    np.subtract(samples[1:], samples[:-1], out=rows[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, PNG_COLOR_TYPES[channels], 0, 0, 0)
    data = DEFLATERS[deflate or DEFLATE](rows)
    return b"".join(
        (PNG_SIGNATURE, _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", data), _png_chunk(b"IEND", b""))
    )


# ---------------------------------------------------------------------------------------------
# Resizing (OpenCV)

_OPENCV: List[Any] = []


def opencv() -> Any:
    """cv2, one thread per process (the pool works on several images at once); imported on first use.

    Imported here rather than with the module, so that letterbox_geometry's users (tao_aml.serve) need no
    OpenCV; the step imports it before starting its workers, which then share the loaded module.
    """
    if not _OPENCV:
        try:
            import cv2
        except ImportError as err:
            raise StepError("the converter resizes with OpenCV: install opencv-python-headless (the tao_data "
                            "image has it): {}".format(err)) from None
        cv2.setNumThreads(1)
        _OPENCV.append(cv2)
    return _OPENCV[0]


def resize(pixels: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """`pixels` resized to `size` (width, height): INTER_CUBIC, or INTER_AREA when shrinking by AREA_SHRINK."""
    height, width = pixels.shape[:2]
    if (width, height) == tuple(size):
        return pixels
    cv2 = opencv()
    shrink = min(width / size[0], height / size[1])
    return cv2.resize(pixels, tuple(size), interpolation=cv2.INTER_AREA if shrink >= AREA_SHRINK else cv2.INTER_CUBIC)


# ---------------------------------------------------------------------------------------------
# One image (runs in the worker processes)


def output_paths(settings: Settings, name: str) -> Tuple[str, str]:
    return (
        os.path.join(settings.output_dir, "images", name + EXTENSIONS[settings.image_format]),
        os.path.join(settings.output_dir, "labels", name + ".txt"),
    )


def convert_image(settings: Settings, record: Record) -> ImageResult:
    source = os.path.join(settings.images_dir, *record.rel_path.split("/"))
    where = f"{source} (annotation line {record.line})"

    def skipped(reason: str, problem: str) -> ImageResult:
        return ImageResult(False, 0, dict.fromkeys(DROP_REASONS, 0), reason, problem)

    mode = "L" if settings.grayscale else "RGB"
    try:
        images.verify(source)
        image = Image.open(source)
    except FileNotFoundError:
        return skipped("missing", f"image {where} does not exist")
    except READ_ERRORS as err:
        return skipped("unreadable", f"cannot read image {where}: {err}")
    with image:
        src_width, src_height = image.size
        geometry = letterbox_geometry(src_width, src_height, settings.width, settings.height)
        lines = []
        dropped = dict.fromkeys(DROP_REASONS, 0)
        for face in record.faces:
            box, reason = map_face(face, src_width, src_height, geometry, settings.min_box_size)
            if box is None:
                dropped[str(reason)] += 1
            else:
                lines.append(kitti_line(settings.class_name, box))
        if not lines and not settings.keep_empty:
            return ImageResult(False, 0, dropped, "no_faces", "")
        size = (geometry.content_width, geometry.content_height)
        try:
            # Decode at the smallest JPEG DCT scale that still covers `size` (no-op for other formats).
            image.draft(mode, size)
            image.load()
            pixels = images.pixels(image, mode)  # 16-bit, palette, CMYK, alpha as TAO reads them
        except READ_ERRORS as err:
            return skipped("unreadable", f"cannot read image {where}: {err}")

    canvas = np.zeros((settings.height, settings.width) + pixels.shape[2:], np.uint8)
    x, y = geometry.offset_x, geometry.offset_y
    canvas[y:y + geometry.content_height, x:x + geometry.content_width] = resize(pixels, size)
    image_path, label_path = output_paths(settings, flat_name(record.rel_path))
    if settings.image_format == "png":
        with open(image_path, "wb") as handle:
            handle.write(encode_png(canvas, settings.channels))
    else:
        if canvas.ndim == 2 and settings.channels == 3:
            canvas = np.repeat(canvas[:, :, None], 3, axis=2)
        Image.fromarray(canvas).save(image_path, format="JPEG", quality=JPEG_QUALITY)
    with open(label_path, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
    return ImageResult(True, len(lines), dropped, None, "")


# ---------------------------------------------------------------------------------------------
# The whole split


def default_workers() -> int:
    """Cores this process may use (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _results(settings: Settings, records: Sequence[Record], workers: int) -> Iterator[ImageResult]:
    work = functools.partial(convert_image, settings)
    if workers == 1:
        for record in records:
            yield work(record)
        return
    # Ordered, chunked: few round trips, and results come back in annotation order. A chunk is at most
    # 8 images (about 50 ms of work), so that at the end no worker waits long for another's last chunk.
    chunksize = max(1, min(8, len(records) // (workers * 8)))
    with multiprocessing.Pool(workers) as pool:  # leaving the block terminates the workers
        yield from pool.imap(work, records, chunksize)


def _prepare_output(settings: Settings, records: Sequence[Record]) -> None:
    """Refuse files of another conversion (TAO would train on them); retrying the same one is fine."""
    summary = os.path.join(settings.output_dir, SUMMARY_FILE)
    if os.path.exists(summary):
        os.remove(summary)
    planned = {path for record in records for path in output_paths(settings, flat_name(record.rel_path))}
    for folder in ("images", "labels"):
        path = os.path.join(settings.output_dir, folder)
        os.makedirs(path, exist_ok=True)
        foreign = sorted(name for name in os.listdir(path) if os.path.join(path, name) not in planned)
        if foreign:
            raise StepError(
                "output folder {} already holds {} file(s) this conversion would not write (e.g. {}); "
                "give an empty output folder".format(path, len(foreign), ", ".join(foreign[:3]))
            )


def _remove_outputs(settings: Settings, records: Sequence[Record]) -> None:
    for record in records:
        for path in output_paths(settings, flat_name(record.rel_path)):
            if os.path.exists(path):
                os.remove(path)
    for folder in ("images", "labels"):
        path = os.path.join(settings.output_dir, folder)
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)


def convert(settings: Settings, records: Sequence[Record], workers: int, skip_bad_images: bool) -> Dict:
    """Convert `records`, write summary.json last and return the summary; on failure leave no output."""
    summary: Dict = {
        "images": len(records),
        "images_written": 0,
        "images_empty": 0,
        "images_skipped": dict.fromkeys(SKIP_REASONS, 0),
        "faces": sum(len(record.faces) for record in records),
        "faces_kept": 0,
        "faces_dropped": dict.fromkeys(DROP_REASONS, 0),
        "skipped_images": [],
        "settings": {
            "width": settings.width,
            "height": settings.height,
            "grayscale": settings.grayscale,
            "channels": settings.channels,
            "class_name": settings.class_name,
            "image_format": settings.image_format,
            "min_box_size": settings.min_box_size,
            "keep_empty": settings.keep_empty,
        },
    }
    progress_every = max(1, len(records) // 10)
    opencv()  # a clear error before any output; forked workers inherit the loaded module
    _prepare_output(settings, records)
    results = _results(settings, records, workers)
    try:
        for done, result in enumerate(results, 1):
            record = records[done - 1]
            if result.skip_reason in ("missing", "unreadable"):
                if not skip_bad_images:
                    raise StepError(result.problem + " (--skip_bad_images true counts such images instead)")
                LOG.warning("skipping: %s", result.problem)
                # Listed so that the user can look at them; images without faces are only counted.
                summary["skipped_images"].append(
                    {"image": record.rel_path, "line": record.line, "reason": result.skip_reason}
                )
            if result.skip_reason:
                summary["images_skipped"][result.skip_reason] += 1
            if result.written:
                summary["images_written"] += 1
                summary["images_empty"] += int(result.faces_kept == 0)
            summary["faces_kept"] += result.faces_kept
            for reason, count in result.dropped.items():
                summary["faces_dropped"][reason] += count
            if done % progress_every == 0:
                LOG.info("converted %d/%d images", done, len(records))
        if summary["images_written"] == 0:
            raise StepError(
                "no image was written: {} of {} skipped ({}); check --images_dir {}".format(
                    sum(summary["images_skipped"].values()), len(records),
                    _counts(summary["images_skipped"]), settings.images_dir,
                )
            )
        text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
        atomic_write_text(os.path.join(settings.output_dir, SUMMARY_FILE), text)
    except BaseException:
        results.close()  # stops the workers before their files are removed
        _remove_outputs(settings, records)
        raise
    return summary


def _counts(counts: Dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in counts.items())


# ---------------------------------------------------------------------------------------------
# Finding the split in a WIDER download folder


def find_split(wider_root: str, split: str) -> Tuple[str, str]:
    """(images dir, annotation file) in the folder the three zips were extracted into.

    The zips may have been extracted into the folder itself or into one folder below it.
    """
    if not os.path.isdir(wider_root):
        raise StepError(f"--wider_root {wider_root} is not a folder")
    bases = [wider_root] + sorted(
        os.path.join(wider_root, name)
        for name in os.listdir(wider_root)
        if os.path.isdir(os.path.join(wider_root, name))
    )
    wanted = (
        (os.path.join("WIDER_" + split, "images"), os.path.isdir),
        (os.path.join("wider_face_split", f"wider_face_{split}_bbx_gt.txt"), os.path.isfile),
    )
    found = []
    for relative, exists in wanted:
        matches = [os.path.join(base, relative) for base in bases if exists(os.path.join(base, relative))]
        if not matches:
            raise StepError(
                "{} not found: looked for {} and {}; {} holds: {}".format(
                    relative,
                    os.path.join(wider_root, relative),
                    os.path.join(wider_root, "*", relative),
                    wider_root,
                    ", ".join(sorted(os.listdir(wider_root))) or "nothing",
                )
            )
        found.append(matches[0])
    return found[0], found[1]


# ---------------------------------------------------------------------------------------------
# Command line


def class_name_type(text: str) -> str:
    # A KITTI line is split on whitespace: a class name must be one token.
    if not text or text.split() != [text]:
        raise argparse.ArgumentTypeError(f"expected one word without spaces, got {text!r}")
    try:
        check_class_names([text])
    except StepError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wider_to_kitti", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_argument_group("source: --images_dir and --annotations, or --wider_root and --split")
    source.add_argument("--images_dir", help="a WIDER_<split>/images folder")
    source.add_argument("--annotations", help="its wider_face_<split>_bbx_gt.txt")
    source.add_argument("--wider_root", help="folder the WIDER zips were extracted into")
    source.add_argument("--split", choices=("train", "val"), help="which split of --wider_root")
    source.add_argument(
        "--wider_data",
        help="WIDER data already in place, laid out like --wider_root; when given it is read instead of --wider_root",
    )
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--width", type=positive_int, default=736)
    parser.add_argument("--height", type=positive_int, default=416)
    parser.add_argument("--grayscale", type=boolean, default=True,
                        help="gray images (default true, as FaceNet was trained)")
    parser.add_argument("--channels", choices=CHANNELS_CHOICES, default="auto",
                        help="channels of a gray image: 3 (gray replicated) or 1; auto (default): 1 for "
                             "--split train, which only TAO's converter, trainer and calibration read, else 3")
    parser.add_argument("--class_name", type=class_name_type, default="face")
    parser.add_argument("--image_format", choices=sorted(EXTENSIONS), default="png")
    parser.add_argument("--min_box_size", type=positive_float, default=1.0,
                        help="drop boxes narrower or lower than this, in output pixels (default 1)")
    parser.add_argument("--keep_empty", type=boolean, default=True,
                        help="write images without a kept face, with an empty label file, as negatives")
    parser.add_argument("--skip_bad_images", type=boolean, nargs="?", const=True, default=False,
                        help="count missing or unreadable images in the summary instead of failing")
    parser.add_argument("--limit", type=positive_int,
                        help="convert only the first N images in annotation order (smoke runs)")
    parser.add_argument("--workers", type=positive_int, default=None, help="processes (default: every core)")
    return parser


def resolve_source(args: argparse.Namespace) -> Tuple[str, str]:
    if args.wider_data:
        # The pipeline always connects the download step's folder; data the user provided wins.
        if not args.split:
            raise StepError("--wider_data needs --split train or --split val")
        LOG.info("reading WIDER data from --wider_data %s", args.wider_data)
        return find_split(args.wider_data, args.split)
    if args.wider_root:
        if args.images_dir or args.annotations:
            raise StepError("give either --wider_root and --split, or --images_dir and --annotations")
        if not args.split:
            raise StepError("--wider_root needs --split train or --split val")
        return find_split(args.wider_root, args.split)
    if not (args.images_dir and args.annotations):
        raise StepError("give --images_dir and --annotations, or --wider_root and --split")
    if args.split:
        raise StepError("--split goes with --wider_root (--images_dir and --annotations name the split)")
    if not os.path.isdir(args.images_dir):
        raise StepError(f"--images_dir {args.images_dir} is not a folder")
    return args.images_dir, args.annotations


def output_channels(choice: str, grayscale: bool, split: Optional[str]) -> int:
    """Channels of the written images: colour is always 3; gray is 1 or 3 (auto: 1 for the train split)."""
    if not grayscale:
        if choice == "1":
            raise StepError("--channels 1 needs --grayscale true: colour images have 3 channels")
        return 3
    if choice == "auto":
        return 1 if split == "train" else 3
    return int(choice)


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    images_dir, annotations = resolve_source(args)
    records = parse_annotations(annotations)
    if args.limit:
        records = records[: args.limit]
    check_unique_names(annotations, records)
    settings = Settings(
        images_dir, args.output_dir, args.width, args.height, args.grayscale, args.class_name,
        args.image_format, args.min_box_size, args.keep_empty,
        output_channels(args.channels, args.grayscale, args.split),
    )
    workers = min(args.workers or default_workers(), len(records))
    LOG.info("converting %d images from %s with %d worker(s) to %s (%s, %d channel(s)%s)", len(records),
             images_dir, workers, args.output_dir, settings.image_format, settings.channels,
             ", deflate: " + DEFLATE if settings.image_format == "png" else "")
    summary = convert(settings, records, workers, args.skip_bad_images)
    LOG.info(
        "done: %d images, %d written (%d without faces), skipped: %s; faces kept %d, dropped: %s",
        summary["images"], summary["images_written"], summary["images_empty"],
        _counts(summary["images_skipped"]), summary["faces_kept"], _counts(summary["faces_dropped"]),
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
