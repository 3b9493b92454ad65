"""Inputs with the quirks real data sets have, each named for what it shows (tests/test_real_world_data.py).

KITTI: NVIDIA's own DetectNet_v2 test labels, copied as data from NVIDIA/tao_tensorflow1_backend
`nvidia_tao_tf1/cv/detectnet_v2/dataio/tests/test_data/000000.txt`, `000001.txt` and `000012.txt` (real
KITTI lines: capitalised classes, `DontCare` regions with truncation -1, occlusion -1, alpha -10), and
label files with the other quirks of real sets: mixed-case classes, empty files, blank lines and CRLF,
boxes under one whole pixel after TAO's integer truncation, boxes crossing or outside the image border,
inverted boxes, numbers written as TAO's float() reads them.
WIDER FACE: an annotation file with invalid flags, zero-size boxes and a zero-count image followed by its
line of ten zeros. COCO: a crowd (iscrowd 1, uncompressed and compressed RLE, as the keypoint files and
other tools write them) and annotations whose num_keypoints disagrees with their labelled keypoints.
Images: 16-bit gray, palette, palette with transparency, CMYK, EXIF-rotated, grayscale, gray with alpha
and RGBA files, each with pixels whose 8-bit reading by TAO is known.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

# ------------------------------------------------------------------------------------------- KITTI

KITTI_SIZE = (1242, 375)  # the KITTI camera's image size (width, height)
NVIDIA_KITTI_LABELS = {
    "000000": "Pedestrian 0.00 0 -0.20 712.40 143.00 810.73 307.92 1.89 0.48 1.20 1.84 1.47 8.41 0.01\n",
    "000001": (
        "Truck 0.00 0 -1.57 599.41 156.40 629.75 189.25 2.85 2.63 12.34 0.47 1.49 69.44 -1.56\n"
        "Car 0.00 0 1.85 387.63 181.54 423.81 203.12 1.67 1.87 3.69 -16.53 2.39 58.49 1.57\n"
        "Cyclist 0.00 3 -1.65 676.60 163.95 688.98 193.93 1.86 0.60 2.02 4.59 1.32 45.84 -1.55\n"
        "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "DontCare -1 -1 -10 511.35 174.96 527.81 187.45 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "DontCare -1 -1 -10 532.37 176.35 542.68 185.27 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "DontCare -1 -1 -10 559.62 175.83 575.40 183.15 -1 -1 -1 -1000 -1000 -1000 -10\n"
    ),
    "000012": (
        "Car 0.00 0 -1.84 662.20 185.85 690.21 205.03 1.48 1.36 3.51 5.35 2.56 58.84 -1.75\n"
        "Van 0.00 0 1.70 448.07 177.14 481.60 206.41 2.50 2.20 5.78 -13.02 2.91 65.02 1.50\n"
        "DontCare -1 -1 -10 610.50 179.95 629.68 196.31 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "DontCare -1 -1 -10 582.97 182.70 594.78 191.05 -1 -1 -1 -1000 -1000 -1000 -10\n"
        "DontCare -1 -1 -10 600.36 185.59 608.36 192.69 -1 -1 -1 -1000 -1000 -1000 -10\n"
    ),
}
NVIDIA_KITTI_CLASSES = {"pedestrian": 1, "truck": 1, "car": 2, "cyclist": 1, "van": 1, "dontcare": 7}

TAIL = "1.50 1.60 3.70 1.00 1.50 20.00 -1.55"


def kitti_line(name: str, x1: str, y1: str, x2: str, y2: str, head: str = "0.00 0 0.00") -> str:
    return f"{name} {head} {x1} {y1} {x2} {y2} {TAIL}\n"


# Label files with the quirks of real sets, for an image of KITTI_SIZE; name -> text. The comments say
# what TAO 5.0's converter does with each object.
KITTI_QUIRKS = {
    "mixed_case_classes": kitti_line("Car", "10", "20", "110", "90") + kitti_line("car", "200", "20", "300", "90")
    + kitti_line("CAR", "400", "20", "500", "90"),  # all three read as `car`
    "empty_label_file": "",  # an image without objects
    "blank_lines_and_crlf": "\r\n" + kitti_line("Car", "10", "20", "110", "90").replace("\n", "\r\n") + "  \r\n",
    "sub_pixel_box": kitti_line("Pedestrian", "100.20", "50.00", "100.90", "80.00")  # int 100 == 100: skipped
    + kitti_line("Pedestrian", "300.00", "50.00", "340.00", "80.00"),  # kept
    "box_crossing_the_border": kitti_line("Car", "-3.50", "300.00", "40.00", "380.00"),  # clipped by TAO's loader
    "box_outside_the_image": kitti_line("Car", "1300.00", "20.00", "1400.00", "90.00")  # nothing inside the image
    + kitti_line("Car", "10", "20", "110", "90"),
    "inverted_box": kitti_line("Car", "110", "20", "10", "90") + kitti_line("Car", "10", "20", "110", "90"),
    "numbers_as_float_reads_them": kitti_line("Car", "1e1", "2.0E1", "110.", "+90", head="0 0.0 -0."),
}
# Objects written per quirk (class car / pedestrian listed) and left out because TAO would skip them.
KITTI_QUIRKS_KEPT = {"mixed_case_classes": 3, "empty_label_file": 0, "blank_lines_and_crlf": 1, "sub_pixel_box": 1,
                     "box_crossing_the_border": 1, "box_outside_the_image": 1, "inverted_box": 1,
                     "numbers_as_float_reads_them": 1}
KITTI_QUIRKS_LEFT_OUT = {"outside_image": 1, "tao_would_skip": 2}

# Lines TAO refuses (its converter stops): name -> (text, words of our error).
KITTI_REFUSED = {
    "fourteen_fields": ("Car 0.00 0 0.00 1 2 3 4 0 0 0 0 0 0\n", ["expected 15 fields", "got 14"]),
    "a_score_column": (kitti_line("Car", "1", "2", "30", "40").replace("\n", " 0.98\n"), ["got 16"]),
    "word_for_a_number": (kitti_line("Car", "left", "2", "30", "40"), ["field x1 is not a number: 'left'"]),
    "nan_corner": (kitti_line("Car", "1", "2", "nan", "40"), ["field x2 is 'nan'", "int()"]),
    "infinite_corner": (kitti_line("Car", "1", "2", "30", "inf"), ["field y2 is 'inf'", "int()"]),
    "nan_occlusion": (kitti_line("Car", "1", "2", "30", "40", head="0.00 nan 0.00"), ["field occlusion is 'nan'"]),
}


def write_kitti(root: Path, labels: dict[str, str], size: tuple[int, int] = KITTI_SIZE,
                image: Callable[[tuple[int, int]], Image.Image] | None = None, extension: str = ".png") -> Path:
    """`root/images/<name><extension>` (one per label file, `image(size)` or gray 90) and `root/labels/`."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name, text in labels.items():
        (image or (lambda s: Image.new("RGB", s, (90, 90, 90))))(size).save(root / "images" / f"{name}{extension}")
        (root / "labels" / f"{name}.txt").write_bytes(text.encode("utf-8"))
    return root


# ------------------------------------------------------------------------------------------- images

def gradient(size: tuple[int, int]) -> np.ndarray:
    """A horizontal 0..65535 ramp (height, width), as a 16-bit sensor image looks."""
    width, height = size
    return np.tile(np.linspace(0, 0xFFFF, width).astype(np.uint16), (height, 1))


def sixteen_bit_gray(size: tuple[int, int]) -> Image.Image:
    return Image.fromarray(gradient(size))  # Pillow: mode I;16, saved as a 16-bit gray PNG


def palette(size: tuple[int, int]) -> Image.Image:
    colours = np.zeros((size[1], size[0], 3), np.uint8)
    colours[:, : size[0] // 2] = (200, 30, 40)
    colours[:, size[0] // 2:] = (20, 160, 220)
    return Image.fromarray(colours).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)


def palette_with_transparency(size: tuple[int, int]) -> Image.Image:
    image = palette(size)
    image.info["transparency"] = 0
    return image


def cmyk(size: tuple[int, int]) -> Image.Image:
    return Image.new("CMYK", size, (0, 128, 255, 30))


def grayscale(size: tuple[int, int]) -> Image.Image:
    return Image.fromarray((gradient(size) >> 8).astype(np.uint8), "L")


def gray_with_alpha(size: tuple[int, int]) -> Image.Image:
    return Image.merge("LA", (grayscale(size), Image.new("L", size, 40)))


def rgba(size: tuple[int, int]) -> Image.Image:
    return Image.new("RGBA", size, (10, 200, 30, 0))  # fully transparent: TAO strips alpha, keeps the colour


def exif_rotated_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG stored `size` wide whose EXIF says "rotate 90° clockwise to display" (Orientation 6), as phones
    write them; its left half is dark, its right half bright."""
    pixels = np.full((size[1], size[0], 3), 220, np.uint8)
    pixels[:, : size[0] // 2] = 30
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


# name -> (file extension, writer of the file at a size, the 8-bit RGB pixels TAO reads from it)
IMAGE_MODES: dict[str, tuple[str, Callable[[Path, tuple[int, int]], None]]] = {
    "sixteen_bit_gray": (".png", lambda path, size: sixteen_bit_gray(size).save(path)),
    "palette": (".png", lambda path, size: palette(size).save(path)),
    "palette_with_transparency": (".png", lambda path, size: palette_with_transparency(size).save(path)),
    "cmyk": (".jpg", lambda path, size: cmyk(size).save(path, quality=95)),
    "exif_rotated": (".jpg", lambda path, size: path.write_bytes(exif_rotated_jpeg(size))),
    "grayscale": (".png", lambda path, size: grayscale(size).save(path)),
    "gray_with_alpha": (".png", lambda path, size: gray_with_alpha(size).save(path)),
    "rgba": (".png", lambda path, size: rgba(size).save(path)),
}


def tao_pixels(path: Path) -> np.ndarray:
    """What TAO's readers see in a file: TensorFlow keeps the high byte of 16-bit samples (png_io.cc), and
    Pillow's convert("RGB") (TAO Deploy, TF1 inference) does the rest; no reader applies EXIF orientation."""
    with Image.open(path) as image:
        if image.mode in ("I;16", "I;16B", "I"):
            high = (np.asarray(image).astype(np.int64) >> 8).astype(np.uint8)
            return np.repeat(high[:, :, None], 3, axis=2)
        return np.asarray(image.convert("RGB"))


def corrupt_png(path: Path, size: tuple[int, int]) -> None:
    """A PNG whose image data has one byte changed: the header and size read fine, the IDAT checksum fails."""
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        buffer, "PNG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"IDAT") + 40
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def truncated_jpeg(path: Path, size: tuple[int, int]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 60, 30)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


# ------------------------------------------------------------------------------------------- WIDER

# Annotation lines as the real wider_face_<split>_bbx_gt.txt writes them (a trailing space on face lines).
WIDER_QUIRKS = {
    # image (rel path, size, writer) -> face lines
    ("0--Parade/0_Parade_invalid_and_zero_size.jpg", (400, 300), "rgb"): [
        "100 50 80 100 0 0 0 0 0 0 ",  # kept
        "10 10 40 40 2 0 0 1 0 0 ",  # flagged invalid
        "300 100 0 20 0 0 0 0 0 0 ",  # zero width, as WIDER has
        "200 200 0 0 0 0 0 0 0 0 ",  # zero size
    ],
    ("1--Handshaking/1_Handshaking_zero_count.jpg", (320, 240), "rgb"): [],  # count 0, then ten zeros
}


def write_wider(root: Path, extra_images: dict[str, tuple[str, tuple[int, int]]] | None = None) -> tuple[Path, Path]:
    """`root/images/...` and `root/wider_face_train_bbx_gt.txt` with WIDER_QUIRKS plus one image per
    IMAGE_MODES name in `extra_images` (name -> (mode name, size)), each with one face; returns both paths."""
    images_dir = root / "images"
    lines = []
    for (rel_path, size, _), faces in WIDER_QUIRKS.items():
        path = images_dir / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (150, 120, 100)).save(path, quality=95)
        lines += [rel_path, str(len(faces))] + (faces or ["0 0 0 0 0 0 0 0 0 0 "])
    for name, (mode, size) in (extra_images or {}).items():
        extension, write = IMAGE_MODES[mode]
        rel_path = f"2--Modes/{name}{extension}"
        (images_dir / rel_path).parent.mkdir(parents=True, exist_ok=True)
        write(images_dir / rel_path, size)
        lines += [rel_path, "1", f"{size[0] // 4} {size[1] // 4} {size[0] // 2} {size[1] // 2} 0 0 0 0 0 0 "]
    annotations = root / "wider_face_train_bbx_gt.txt"
    annotations.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return images_dir, annotations


# ------------------------------------------------------------------------------------------- COCO

def compressed_rle(counts: list[int]) -> str:
    """COCO's compressed RLE string (cocoapi maskApi.c rleToString): each count, from the third on as the
    difference to the count two before, in 5-bit groups with a continuation bit, offset by 48."""
    out = []
    for index, value in enumerate(counts):
        value -= counts[index - 2] if index > 2 else 0
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            out.append(chr((group | 0x20 if more else group) + 48))
    return "".join(out)


def crowd_rle(ann_id: int, image_id: int, size: tuple[int, int], compressed: bool = False) -> dict:
    """A crowd region as COCO's keypoint files hold it: iscrowd 1, RLE segmentation (column-major counts of
    0s and 1s over height x width), no keypoints; `compressed`: the string form other tools write."""
    width, height = size
    runs = [height * 2, height * 3, height * (width - 5)]
    counts: list[int] | str = compressed_rle(runs) if compressed else runs
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 1, "area": float(height * 3),
            "bbox": [2.0, 0.0, 3.0, float(height)], "num_keypoints": 0, "keypoints": [0] * 51,
            "segmentation": {"counts": counts, "size": [height, width]}}


def inconsistent_num_keypoints(annotation: dict, stated: int) -> dict:
    """`annotation` with num_keypoints set to `stated`, whatever its keypoints label (other tools do this)."""
    return dict(annotation, num_keypoints=stated)


def add_coco_quirks(root: Path, split: str = "train") -> dict[str, int]:
    """Into a make_coco() folder's `split` file: crowds with uncompressed and compressed RLE on image 0, and
    num_keypoints stated as 3 on the 10-keypoint person of image 1 and as 8 on the 6-keypoint person of
    image 3. Returns {"crowds": n, "disagreeing": n}."""
    path = root / "annotations" / f"person_keypoints_{split}2017.json"
    data = json.loads(path.read_text())
    images = data["images"]
    size = (images[0]["width"], images[0]["height"])
    next_id = max(ann["id"] for ann in data["annotations"]) + 1
    data["annotations"] += [crowd_rle(next_id, images[0]["id"], size),
                            crowd_rle(next_id + 1, images[0]["id"], size, compressed=True)]
    stated = {images[1]["id"]: {10: 3}, images[3]["id"]: {6: 8}}
    for index, ann in enumerate(data["annotations"]):
        change = stated.get(ann["image_id"], {})
        if ann["num_keypoints"] in change:
            data["annotations"][index] = inconsistent_num_keypoints(ann, change[ann["num_keypoints"]])
    path.write_text(json.dumps(data))
    return {"crowds": 2, "disagreeing": 2}
