"""Your own KITTI data set: check it, split it, letterbox it to the network size, for DetectNet_v2.

Input: a folder with `images/` and `labels/` (KITTI: one `<name>.txt` per `<name>.png|.jpg|.jpeg`), and
optionally a second such folder for validation. Without one, `--val_fraction` of the images go to
validation, chosen by a hash of each image's name (deterministic: the same data always splits the same
way, and adding images never moves an old one to the other split).

Everything is checked before anything is written, and every problem is listed with its file and line:
each label line (formats/kitti.py: 15 fields, numbers, box corners), every label has its image and every
image its label, every box inside its image, every class listed in `--classes` present in the data.
Objects of classes that are in the data but not listed are dropped and counted per class in
summary.json (and the log), so a data set can be trained on a subset of its classes; `--unlisted error`
refuses them instead.

Output: `<train_dir>` and `<val_dir>`, each `images/<name>.png`, `labels/<name>.txt` and, last,
`summary.json`. Images whose size is not `--width` x `--height` are letterboxed to it (aspect kept,
centred, black padding; boxes scaled and offset like the pixels) with the FaceNet converter's own
geometry, resize and PNG writer (wider_to_kitti.py); images already at the size are copied as they are
(PNG) or re-encoded to PNG. A folder without summary.json is not a finished preparation: on failure
this step removes what it wrote.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np
from PIL import Image

from .cli_types import name_list, positive_int
from .common import StepError, atomic_write_text, run_main
from .formats.kitti import SHOWN_PROBLEMS, read_label_file
from .formats.wider import Face
from .wider_to_kitti import READ_ERRORS, encode_png, letterbox_geometry, map_face, resize

LOG = logging.getLogger("tao_aml.steps.kitti_prepare")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SUMMARY_FILE = "summary.json"
OUTPUT_EXTENSION = ".png"
UNLISTED_CHOICES = ("drop", "error")


class Item(NamedTuple):
    """One image of the source data with its label file, checked."""

    stem: str
    image: str
    label: str
    size: Tuple[int, int]
    lines: List[Tuple[int, str, str]]  # (line number, class, line text) of every object


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1, got {}".format(text))
    return value


def in_validation(stem: str, val_fraction: float) -> bool:
    """Deterministic split: the first 8 bytes of sha256(name) as a number in [0, 1)."""
    digest = hashlib.sha256(stem.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64) < val_fraction


def _problems_error(where: str, problems: List[str]) -> StepError:
    more = len(problems) - SHOWN_PROBLEMS
    return StepError("{} has {} problem(s):\n  {}{}".format(
        where, len(problems), "\n  ".join(problems[:SHOWN_PROBLEMS]),
        "\n  ... and {} more".format(more) if more > 0 else ""))


def scan(folder: str, limit: Optional[int] = None) -> List[Item]:
    """Every image/label pair of a KITTI folder, every line and box checked; one error lists all problems."""
    images_dir, labels_dir = os.path.join(folder, "images"), os.path.join(folder, "labels")
    for sub in (images_dir, labels_dir):
        if not os.path.isdir(sub):
            raise StepError("{} has no {}/ folder: your data needs images/ and labels/ (KITTI layout)".format(
                folder, os.path.basename(sub)))
    images: Dict[str, str] = {}
    problems: List[str] = []
    for name in sorted(os.listdir(images_dir)):
        stem, extension = os.path.splitext(name)
        if extension.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem in images:
            problems.append("{} and {} have the same name: one label file cannot belong to both".format(
                images[stem], os.path.join(images_dir, name)))
            continue
        images[stem] = os.path.join(images_dir, name)
    labels = {}
    for name in sorted(os.listdir(labels_dir)):
        stem, extension = os.path.splitext(name)
        if extension != ".txt":
            problems.append("{} is not a .txt label file".format(os.path.join(labels_dir, name)))
        else:
            labels[stem] = os.path.join(labels_dir, name)
    for stem in sorted(set(labels) - set(images)):
        problems.append("label {} has no image {}/{}{{{}}}".format(
            labels[stem], images_dir, stem, ",".join(IMAGE_EXTENSIONS)))
    for stem in sorted(set(images) - set(labels)):
        problems.append("image {} has no label file {}".format(images[stem], os.path.join(labels_dir, stem + ".txt")))
    stems = sorted(set(images) & set(labels))
    if limit:
        stems = stems[:limit]
    items = []
    for stem in stems:
        try:
            objects = read_label_file(labels[stem])
        except StepError as err:
            problems.append(str(err))
            continue
        try:
            with Image.open(images[stem]) as image:
                width, height = image.size
        except READ_ERRORS as err:
            problems.append("cannot read image {}: {}".format(images[stem], err))
            continue
        with open(labels[stem], encoding="utf-8") as handle:
            texts = [(number, line) for number, line in enumerate(handle.read().splitlines(), 1) if line.strip()]
        lines = []
        for (number, text), item in zip(texts, objects):
            x1, y1, x2, y2 = item.box
            if x2 > width or y2 > height:
                problems.append("{}:{}: the box ({} {} {} {}) of class {} reaches outside its image {} ({}x{})".format(
                    labels[stem], number, x1, y1, x2, y2, item.class_name, images[stem], width, height))
            lines.append((number, item.class_name, text))
        items.append(Item(stem, images[stem], labels[stem], (width, height), lines))
    if problems:
        raise _problems_error("KITTI folder {}".format(folder), problems)
    if not items:
        raise StepError("{} holds no images ({})".format(images_dir, ", ".join(IMAGE_EXTENSIONS)))
    return items


def count_classes(items: List[Item]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for item in items:
        for _, name, _ in item.lines:
            counts[name.lower()] = counts.get(name.lower(), 0) + 1
    return counts


def check_classes(classes: List[str], counts: Dict[str, int], where: str, unlisted: str) -> Dict[str, int]:
    """Listed classes must be in the data; returns the unlisted classes found (dropped), by count."""
    listed = [name.lower() for name in classes]
    absent = [name for name in listed if name not in counts]
    if absent:
        raise StepError("class(es) {} listed in --classes are not in {} (its classes: {}); fix the list or the "
                        "data".format(", ".join(absent), where, ", ".join(
                            "{} ({})".format(k, v) for k, v in sorted(counts.items())) or "none"))
    extra = {name: count for name, count in sorted(counts.items()) if name not in listed}
    if extra and unlisted == "error":
        raise StepError("{} has objects of classes not in --classes: {}; list them or use --unlisted drop".format(
            where, ", ".join("{} ({} objects)".format(k, v) for k, v in extra.items())))
    for name, count in extra.items():
        LOG.warning("class %s (%d objects in %s) is not in --classes: its objects are dropped", name, count, where)
    return extra


def relabel(text: str, box: Tuple[float, float, float, float]) -> str:
    """The KITTI line with its box replaced, every other field kept."""
    tokens = text.split()
    tokens[4:8] = ["{:.2f}".format(v) for v in box]
    return " ".join(tokens)


def write_item(item: Item, out_dir: str, width: int, height: int, listed: List[str]) -> int:
    src_width, src_height = item.size
    image_path = os.path.join(out_dir, "images", item.stem + OUTPUT_EXTENSION)
    geometry = letterbox_geometry(src_width, src_height, width, height)
    same = (src_width, src_height) == (width, height)
    if same and item.image.lower().endswith(OUTPUT_EXTENSION):
        shutil.copyfile(item.image, image_path)
    else:
        try:
            with Image.open(item.image) as image:
                pixels = np.asarray(image.convert("RGB"))
        except READ_ERRORS as err:
            raise StepError("cannot read image {}: {}".format(item.image, err)) from None
        canvas = np.zeros((height, width, 3), np.uint8)
        x, y = geometry.offset_x, geometry.offset_y
        canvas[y:y + geometry.content_height, x:x + geometry.content_width] = resize(
            pixels, (geometry.content_width, geometry.content_height))
        with open(image_path, "wb") as handle:
            handle.write(encode_png(canvas))
    out_lines = []
    for number, name, text in item.lines:
        if name.lower() not in listed:
            continue
        tokens = text.split()
        x1, y1, x2, y2 = (float(t) for t in tokens[4:8])
        box, reason = map_face(Face(x1, y1, x2 - x1, y2 - y1, False), src_width, src_height, geometry, 0.0)
        if box is None:  # cannot happen after scan(); kept as a guard
            raise StepError("{}:{}: box dropped ({})".format(item.label, number, reason))
        out_lines.append(relabel(text, box))
    with open(os.path.join(out_dir, "labels", item.stem + ".txt"), "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in out_lines))
    return len(out_lines)


def _clear(out_dir: str) -> None:
    for sub in ("images", "labels"):
        shutil.rmtree(os.path.join(out_dir, sub), ignore_errors=True)
    summary = os.path.join(out_dir, SUMMARY_FILE)
    if os.path.exists(summary):
        os.remove(summary)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kitti_prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kitti_data", required=True, help="folder with images/ and labels/")
    parser.add_argument("--val_data", default=None, help="validation folder with images/ and labels/ (optional)")
    parser.add_argument("--val_fraction", type=fraction, default=0.2,
                        help="share of --kitti_data's images for validation when --val_data is not given")
    parser.add_argument("--classes", type=name_list, required=True, help="comma-separated classes to train")
    parser.add_argument("--unlisted", choices=UNLISTED_CHOICES, default="drop",
                        help="objects of classes not in --classes: dropped and counted (default) or an error")
    parser.add_argument("--width", type=positive_int, required=True)
    parser.add_argument("--height", type=positive_int, required=True)
    parser.add_argument("--limit", type=positive_int, default=None, help="first N images of each folder (smoke runs)")
    parser.add_argument("--train_dir", required=True)
    parser.add_argument("--val_dir", required=True)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    items = scan(args.kitti_data, args.limit)
    if args.val_data:
        train, val = items, scan(args.val_data, args.limit)
        split = "given"
    else:
        if args.val_fraction <= 0:
            raise StepError("no --val_data given and --val_fraction is 0: validation needs images")
        train = [i for i in items if not in_validation(i.stem, args.val_fraction)]
        val = [i for i in items if in_validation(i.stem, args.val_fraction)]
        split = "val_fraction {}".format(args.val_fraction)
        if not train or not val:
            raise StepError("val_fraction {} of {} images leaves the {} split empty; give more images or "
                            "another fraction".format(args.val_fraction, len(items), "train" if not train else "val"))
    listed = [name.lower() for name in args.classes]
    train_counts, val_counts = count_classes(train), count_classes(val)
    dropped = check_classes(args.classes, train_counts, "the training data ({})".format(args.kitti_data), args.unlisted)
    val_dropped = {k: v for k, v in val_counts.items() if k not in listed}
    if val_dropped and args.unlisted == "error":
        raise StepError("the validation data has objects of classes not in --classes: {}".format(
            ", ".join("{} ({} objects)".format(k, v) for k, v in sorted(val_dropped.items()))))
    for name in listed:
        if name not in val_counts:
            LOG.warning("class %s has no object in the validation split: its AP will be 0", name)

    outputs = ((args.train_dir, train, train_counts, dropped), (args.val_dir, val, val_counts, val_dropped))
    try:
        for out_dir, chosen, counts, extra in outputs:
            _clear(out_dir)
            for sub in ("images", "labels"):
                os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
            kept = sum(write_item(item, out_dir, args.width, args.height, listed) for item in chosen)
            resized = sum(1 for item in chosen if item.size != (args.width, args.height))
            summary = {
                "images": len(chosen), "objects": kept, "resized_images": resized,
                "width": args.width, "height": args.height, "classes": args.classes,
                "objects_per_class": {name: counts.get(name, 0) for name in listed},
                "dropped_unlisted_classes": extra, "split": split, "image_extension": OUTPUT_EXTENSION,
            }
            atomic_write_text(os.path.join(out_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
            LOG.info("%s: %d images (%d letterboxed), objects per class %s", out_dir, len(chosen), resized,
                     summary["objects_per_class"])
    except BaseException:
        for out_dir, _, _, _ in outputs:
            _clear(out_dir)
        raise


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
