"""KITTI object labels as TAO 5.0 DetectNet_v2 reads them: what it accepts, refuses and silently drops.

A KITTI folder holds `images/<name><ext>` and `labels/<name>.txt`. Each label line describes one
object with the 15 fields of the KITTI devkit: class, truncation, occlusion, alpha, the box x1 y1 x2 y2
in pixels, three dimensions, three location values and rotation_y. TAO's converter
(`nvidia_tao_tf1/cv/detectnet_v2/dataio/kitti_converter_lib.py`, `_add_targets`) reads the lines of a
label file that are not blank, splits them on whitespace, reads every field after the class with
`float()`, asserts 15 fields, truncates the box corners with `int()`, and checks no range: real KITTI's
`DontCare -1 -1 -10 x1 y1 x2 y2 -1 -1 -1 -1000 -1000 -1000 -10` regions are ordinary objects to it. So:
- accepted: every line TAO accepts, whatever its values (an empty file is an image without objects);
- refused, with file and line: a field count other than 15, a field `float()` refuses, and a box corner
  or occlusion that `int()` refuses (NaN, infinite), which stop TAO's converter (it reads the occlusion
  only of the objects it keeps; a non-finite occlusion is refused here on any object);
- warned, with file and line (`tao_skip_reason`): an object TAO skips with a debug-level log line only,
  because `int(x1) < int(x2) and int(y1) < int(y2)` fails (empty, inverted, or under one whole pixel
  after the truncation), and a class written with capitals, which TAO reads lower-cased
  (`label[0].lower()`): a spec must name classes in lower case (`check_class_names`).
TAO's converter also fails on an image without a label file; a label file without an image, or a file
that is not `.txt`, is refused here too, so that nothing in the folder is silently left out.
"""

import logging
import math
import os
from typing import Dict, Iterable, List, NamedTuple, Sequence, Tuple

from tao_aml.steps.common import StepError
from tao_aml.steps.data.formats.listing import problems_error, warn_listed

LOG = logging.getLogger("tao_aml.steps.data.formats.kitti")
FIELDS = ("class", "truncation", "occlusion", "alpha", "x1", "y1", "x2", "y2", "height", "width", "length",
          "x", "y", "z", "rotation_y")
BOX = slice(4, 8)
OCCLUSION = 2


class KittiObject(NamedTuple):
    line: int  # 1-based line of the label file
    class_name: str  # as written
    box: tuple  # x1, y1, x2, y2 as floats
    tokens: tuple  # the 15 fields as written

    @property
    def tao_class(self) -> str:
        """The class as TAO's converter reads it (ASCII letters lower-cased: it lower-cases UTF-8 bytes)."""
        return self.class_name.encode("utf-8").lower().decode("utf-8")


def tao_skip_reason(box: Sequence[float]) -> str:
    """Why TAO's converter would skip an object with this box ('' when it keeps it): it truncates each
    corner with int() and keeps the object only when int(x1) < int(x2) and int(y1) < int(y2)."""
    x1, y1, x2, y2 = (int(value) for value in box)
    if x1 < x2 and y1 < y2:
        return ""
    return ("box ({}) is {} after TAO's integer truncation (int: x1 {}, y1 {}, x2 {}, y2 {}); TAO skips it "
            "silently".format(" ".join("{:g}".format(v) for v in box),
                              "empty or inverted" if box[0] >= box[2] or box[1] >= box[3] else
                              "under one whole pixel", x1, y1, x2, y2))


def parse_line(path: str, line_no: int, text: str) -> KittiObject:
    """One label line as TAO reads it; what TAO refuses raises StepError naming the file, line and field."""
    tokens = tuple(text.split())
    where = "{}:{}".format(path, line_no)
    if len(tokens) != len(FIELDS):
        raise StepError("{}: expected {} fields ({}), got {}: {!r} (TAO asserts 15)".format(
            where, len(FIELDS), " ".join(FIELDS), len(tokens), text.strip()))
    values = []
    for field, token in zip(FIELDS[1:], tokens[1:]):
        try:
            values.append(float(token))
        except ValueError:
            raise StepError("{}: field {} is not a number: {!r}".format(where, field, token)) from None
    box = tuple(values[3:7])
    for field, token, value in zip(FIELDS[BOX], tokens[BOX], box):
        if not math.isfinite(value):
            raise StepError("{}: field {} is {!r}; TAO truncates box corners with int(), which stops on it".format(
                where, field, token))
    if not math.isfinite(values[OCCLUSION - 1]):
        raise StepError("{}: field occlusion is {!r}; TAO reads it with int(), which stops on it".format(
            where, tokens[OCCLUSION]))
    return KittiObject(line_no, tokens[0], box, tokens)


def label_lines(path: str) -> List[str]:
    """The lines of a label file as TAO's `readlines()` sees them (universal newlines), UTF-8 checked."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise StepError("cannot read label file {}: {}".format(path, err)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise StepError("{}:{}: not UTF-8 text (byte {!r}); KITTI label files are plain text".format(
            path, line, data[err.start:err.start + 1])) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read_label_file(path: str) -> List[KittiObject]:
    """The objects of one label file (blank lines skipped, as TAO does); a refusal names the file and line."""
    return [parse_line(path, number, line) for number, line in enumerate(label_lines(path), 1) if line.strip()]


def check_class_names(classes: Iterable[str]) -> None:
    """Refuse class names with capitals: TAO lower-cases the classes of the labels (TF1's converter,
    TAO Deploy's loader) and matches the spec's `target_class_mapping` keys exactly, so a spec class
    `Car` never meets a label (NVIDIA's DetectNet_v2 docs: mAP 0)."""
    upper = [name for name in classes if name != name.lower()]
    if upper:
        raise StepError("class name(s) {} have capitals: TAO reads KITTI classes lower-cased and matches the "
                        "spec's class names exactly, so they would never match; write them in lower case ({}); "
                        "the labels may keep any case".format(", ".join(upper), ", ".join(n.lower() for n in upper)))


def capitalised_classes(located: Iterable[Tuple[str, KittiObject]]) -> List[str]:
    """One note per class spelled with capitals, from (label file, object) pairs: where it first occurs
    and what TAO reads."""
    first: Dict[str, str] = {}
    for path, item in located:
        if item.class_name != item.class_name.lower() and item.class_name not in first:
            first[item.class_name] = "{}:{}".format(path, item.line)
    return ["{}: class {!r} is read by TAO as {!r}".format(where, name, name.lower()) for name, where in
            first.items()]


def check_folder(kitti_dir: str, image_extension: str, images: str = "images", labels: str = "labels") -> Dict:
    """Check every label file of a KITTI folder that TAO reads as it is, and that images and labels pair up.

    Returns counts (`images`, `objects` TAO keeps, `objects_per_class` as TAO names them, `skipped_by_tao`).
    Raises one StepError listing the first problems (file and line) and how many there are in all; logs
    a warning (file and line) for each object TAO would skip silently and each class spelled with capitals.
    """
    images_dir, labels_dir = os.path.join(kitti_dir, images), os.path.join(kitti_dir, labels)
    for folder in (images_dir, labels_dir):
        if not os.path.isdir(folder):
            raise StepError("{} has no {}/ folder: a KITTI folder holds {}/ and {}/".format(
                kitti_dir, os.path.basename(folder), images, labels))
    stems = sorted(os.path.splitext(name)[0] for name in os.listdir(images_dir) if name.endswith(image_extension))
    label_names = set(os.listdir(labels_dir))
    problems: List[str] = []
    skipped: List[str] = []
    counts: Dict[str, int] = {}
    located: List[Tuple[str, KittiObject]] = []
    for stem in stems:
        label = os.path.join(labels_dir, stem + ".txt")
        if stem + ".txt" not in label_names:
            problems.append("{} has no label file {}".format(os.path.join(images_dir, stem + image_extension), label))
            continue
        try:
            found = read_label_file(label)
        except StepError as err:
            problems.append(str(err))
            continue
        for item in found:
            located.append((label, item))
            reason = tao_skip_reason(item.box)
            if reason:
                skipped.append("{}:{}: {} {}".format(label, item.line, item.class_name, reason))
            else:
                counts[item.tao_class] = counts.get(item.tao_class, 0) + 1
    image_stems = set(stems)
    for name in sorted(label_names):
        stem, extension = os.path.splitext(name)
        if extension != ".txt":
            problems.append("{} is not a .txt label file".format(os.path.join(labels_dir, name)))
        elif stem not in image_stems:
            problems.append("{} has no image {}".format(os.path.join(labels_dir, name),
                                                        os.path.join(images_dir, stem + image_extension)))
    if problems:
        raise problems_error("KITTI folder {}".format(kitti_dir), problems)
    if not stems:
        raise StepError("{} holds no {} images".format(images_dir, image_extension))
    warn_listed(LOG, "objects TAO's converter would skip silently", skipped)
    warn_listed(LOG, "classes written with capitals (TAO lower-cases them)", capitalised_classes(located))
    return {"images": len(stems), "objects": sum(counts.values()), "objects_per_class": counts,
            "skipped_by_tao": len(skipped)}
