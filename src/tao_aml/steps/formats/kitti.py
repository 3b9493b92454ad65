"""KITTI object labels as TAO 5.0 DetectNet_v2 reads them, checked field by field.

A KITTI folder holds `images/<name><ext>` and `labels/<name>.txt`. Each label line describes one
object with the 15 fields of the KITTI devkit: class, truncation (0..1), occlusion (0, 1, 2 or 3),
alpha, the box x1 y1 x2 y2 in pixels, three dimensions, three location values and rotation_y. TAO's
converter (`kitti_converter_lib.py`) asserts exactly 15 fields, reads every field after the class as a
float, fails on an image without a label file, and silently drops boxes whose corners are not
top-left / bottom-right: each of those is refused here, with the file and line, before TAO starts.
An empty label file is an image without objects (a negative).
"""

import math
import os
from typing import Dict, List, NamedTuple

from ..common import StepError

FIELDS = ("class", "truncation", "occlusion", "alpha", "x1", "y1", "x2", "y2", "height", "width", "length",
          "x", "y", "z", "rotation_y")
OCCLUSION_VALUES = (0, 1, 2, 3)
# How many problems one error lists before it only counts the rest.
SHOWN_PROBLEMS = 10


class KittiObject(NamedTuple):
    class_name: str
    box: tuple  # x1, y1, x2, y2


def parse_line(path: str, line_no: int, text: str) -> KittiObject:
    """One label line; a problem raises StepError naming the file, the line and the field."""
    tokens = text.split()
    where = f"{path}:{line_no}"
    if len(tokens) != len(FIELDS):
        raise StepError(f"{where}: expected {len(FIELDS)} fields ({' '.join(FIELDS)}), got {len(tokens)}: "
                        f"{text.strip()!r}")
    values = {}
    for field, token in zip(FIELDS[1:], tokens[1:]):
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise StepError(f"{where}: field {field} is not a number: {token!r}")
        values[field] = value
    if not 0.0 <= values["truncation"] <= 1.0:
        raise StepError(f"{where}: field truncation is {tokens[1]}; it must be between 0 and 1")
    if values["occlusion"] not in OCCLUSION_VALUES:
        raise StepError(f"{where}: field occlusion is {tokens[2]}; it must be 0, 1, 2 or 3")
    x1, y1, x2, y2 = values["x1"], values["y1"], values["x2"], values["y2"]
    if x1 < 0 or y1 < 0:
        raise StepError(f"{where}: the box starts outside the image (x1 {tokens[4]}, y1 {tokens[5]}); "
                        "pixel coordinates are 0 or more")
    if not (x1 < x2 and y1 < y2):
        raise StepError(f"{where}: the box is empty or inverted (x1 {tokens[4]}, y1 {tokens[5]}, x2 {tokens[6]}, "
                        f"y2 {tokens[7]}); x2 must exceed x1 and y2 exceed y1 (TAO would drop it silently)")
    return KittiObject(tokens[0], (x1, y1, x2, y2))


def read_label_file(path: str) -> List[KittiObject]:
    """The objects of one label file; a problem raises StepError naming the file and line."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise StepError(f"cannot read label file {path}: {err}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise StepError(f"{path}:{line}: not UTF-8 text (byte {data[err.start:err.start + 1]!r}); KITTI label "
                        "files are plain text") from None
    return [parse_line(path, number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def check_folder(kitti_dir: str, image_extension: str, images: str = "images", labels: str = "labels") -> Dict:
    """Check every label file of a KITTI folder and that images and labels pair up one to one.

    Returns counts (`images`, `objects`, `objects_per_class`). Raises one StepError listing the first
    problems (file and line) and how many there are in all.
    """
    images_dir, labels_dir = os.path.join(kitti_dir, images), os.path.join(kitti_dir, labels)
    for folder in (images_dir, labels_dir):
        if not os.path.isdir(folder):
            raise StepError(f"{kitti_dir} has no {os.path.basename(folder)}/ folder: a KITTI folder holds "
                            f"{images}/ and {labels}/")
    stems = sorted(os.path.splitext(name)[0] for name in os.listdir(images_dir) if name.endswith(image_extension))
    label_names = set(os.listdir(labels_dir))
    problems: List[str] = []
    counts: Dict[str, int] = {}
    for stem in stems:
        if stem + ".txt" not in label_names:
            problems.append(f"{os.path.join(images_dir, stem + image_extension)} has no label file "
                            f"{os.path.join(labels_dir, stem + '.txt')}")
            continue
        try:
            for item in read_label_file(os.path.join(labels_dir, stem + ".txt")):
                counts[item.class_name] = counts.get(item.class_name, 0) + 1
        except StepError as err:
            problems.append(str(err))
    image_stems = set(stems)
    for name in sorted(label_names):
        stem, extension = os.path.splitext(name)
        if extension != ".txt":
            problems.append(f"{os.path.join(labels_dir, name)} is not a .txt label file")
        elif stem not in image_stems:
            problems.append(f"{os.path.join(labels_dir, name)} has no image "
                            f"{os.path.join(images_dir, stem + image_extension)}")
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        raise StepError("KITTI folder {} has {} problem(s):\n  {}{}".format(
            kitti_dir, len(problems), "\n  ".join(problems[:SHOWN_PROBLEMS]),
            f"\n  ... and {more} more" if more > 0 else ""))
    if not stems:
        raise StepError(f"{images_dir} holds no {image_extension} images")
    return {"images": len(stems), "objects": sum(counts.values()), "objects_per_class": counts}
