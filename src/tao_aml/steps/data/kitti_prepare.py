"""Your own KITTI data set: check it, split it, letterbox it to the network size, for DetectNet_v2.

Input: a folder with `images/` and `labels/` (KITTI: one `<name>.txt` per `<name>.png|.jpg|.jpeg`), and
optionally a second such folder for validation. Without one, `--val_fraction` of the images go to
validation, chosen by a hash of each image's name (deterministic: the same data always splits the same
way, and adding images never moves an old one to the other split).

Everything is checked before anything is written, and every problem is listed with its file and line.
Label lines are read as TAO 5.0's KITTI converter reads them (formats/kitti.py): real KITTI lines,
`DontCare` regions included, are accepted with any values; a line TAO refuses (not 15 fields, a field
that is not a number, a box corner TAO's int() stops on) is refused. Every label has its image and every
image its label; every image is decoded in full (a corrupt file fails here, not in training on the GPU);
every class listed in `--classes` (lower case: TAO lower-cases label classes and matches the spec's names
exactly) is present in the data. Objects of classes that are in the data but not listed are dropped and
counted per class in summary.json (and the log), so a data set can be trained on a subset of its
classes; `--unlisted error` refuses them instead.

Output: `<train_dir>` and `<val_dir>`, each `images/<name>.png`, `labels/<name>.txt` and, last,
`summary.json`. Images whose size is not `--width` x `--height` are letterboxed to it (aspect kept,
centred, black padding; boxes clipped to the image, scaled and offset like the pixels) with the FaceNet
converter's own geometry, resize and PNG writer (wider_to_kitti.py); RGB PNGs already at the size (without
EXIF) are copied as they are, other images are written as 8-bit RGB PNGs the way TAO's decoders read them
(formats/images.py: 16-bit gray scaled, palette, CMYK and alpha converted, EXIF orientation not applied).
Label lines keep their fields, with the class in lower case and the occlusion a whole number (TAO Deploy's
loader reads it with int()). An object TAO would skip silently in the written labels (outside its image,
empty, inverted, or under one whole pixel after TAO's integer truncation) is left out with a warning
naming its file and line, and counted in summary.json. A folder without summary.json is not a finished
preparation: on failure this step removes what it wrote.
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

from tao_aml.steps.cli_types import name_list, positive_int
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.data.formats import images as image_files
from tao_aml.steps.data.formats import kitti
from tao_aml.steps.data.formats.images import READ_ERRORS
from tao_aml.steps.data.formats.listing import problems_error, warn_listed
from tao_aml.steps.data.wider_to_kitti import Geometry, encode_png, letterbox_geometry, resize

LOG = logging.getLogger("tao_aml.steps.data.kitti_prepare")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SUMMARY_FILE = "summary.json"
OUTPUT_EXTENSION = ".png"
UNLISTED_CHOICES = ("drop", "error")
LEFT_OUT_REASONS = ("outside_image", "tao_would_skip")


class Item(NamedTuple):
    """One image of the source data with its label file, checked."""

    stem: str
    image: str
    label: str
    size: Tuple[int, int]
    objects: List[kitti.KittiObject]


class Written(NamedTuple):
    """What write_item wrote for one image."""

    objects_per_class: Dict[str, int]
    left_out: List[Tuple[str, str]]  # (reason in LEFT_OUT_REASONS, "file:line: what and why")


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1, got {}".format(text))
    return value


def in_validation(stem: str, val_fraction: float) -> bool:
    """Deterministic split: the first 8 bytes of sha256(name) as a number in [0, 1)."""
    digest = hashlib.sha256(stem.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64) < val_fraction


def scan(folder: str, limit: Optional[int] = None) -> List[Item]:
    """Every image/label pair of a KITTI folder, every line read and every image decoded; one error lists
    all problems."""
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
            objects = kitti.read_label_file(labels[stem])
        except StepError as err:
            problems.append(str(err))
            continue
        try:
            size = image_files.check_decodes(images[stem])
        except READ_ERRORS as err:
            problems.append("cannot decode image {}: {} (TAO would stop on it in training)".format(images[stem], err))
            continue
        items.append(Item(stem, images[stem], labels[stem], size, objects))
    if problems:
        raise problems_error("KITTI folder {}".format(folder), problems)
    if not items:
        raise StepError("{} holds no images ({})".format(images_dir, ", ".join(IMAGE_EXTENSIONS)))
    return items


def count_classes(items: List[Item]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for item in items:
        for found in item.objects:
            counts[found.class_name.lower()] = counts.get(found.class_name.lower(), 0) + 1
    return counts


def check_classes(classes: List[str], counts: Dict[str, int], where: str, unlisted: str) -> Dict[str, int]:
    """Listed classes must be in the data; returns the unlisted classes found (dropped), by count."""
    absent = [name for name in classes if name not in counts]
    if absent:
        raise StepError("class(es) {} listed in --classes are not in {} (its classes: {}); fix the list or the "
                        "data".format(", ".join(absent), where, ", ".join(
                            "{} ({})".format(k, v) for k, v in sorted(counts.items())) or "none"))
    extra = {name: count for name, count in sorted(counts.items()) if name not in classes}
    if extra and unlisted == "error":
        raise StepError("{} has objects of classes not in --classes: {}; list them or use --unlisted drop".format(
            where, ", ".join("{} ({} objects)".format(k, v) for k, v in extra.items())))
    for name, count in extra.items():
        LOG.warning("class %s (%d objects in %s) is not in --classes: its objects are dropped", name, count, where)
    return extra


def place_box(box: Tuple[float, ...], size: Tuple[int, int], geometry: Geometry) -> Optional[Tuple[float, ...]]:
    """The box clipped to its image (as TAO's data loader crops), scaled and offset like the pixels and
    rounded as it is written; None when nothing of it is inside the image."""
    src_width, src_height = size
    x1, y1 = max(box[0], 0.0), max(box[1], 0.0)
    x2, y2 = min(box[2], float(src_width)), min(box[3], float(src_height))
    if x1 >= x2 or y1 >= y2:
        return None
    # Multiply before dividing: one rounding, so x.xx5 values land on the right side.
    return tuple(round(value, 2) for value in (
        x1 * geometry.content_width / src_width + geometry.offset_x,
        y1 * geometry.content_height / src_height + geometry.offset_y,
        x2 * geometry.content_width / src_width + geometry.offset_x,
        y2 * geometry.content_height / src_height + geometry.offset_y,
    ))


def output_line(found: kitti.KittiObject, box: Tuple[float, ...]) -> str:
    """The KITTI line as written: class in lower case, occlusion a whole number, the new box, other fields kept."""
    tokens = list(found.tokens)
    tokens[0] = found.class_name.lower()
    tokens[2] = str(int(float(tokens[2])))
    tokens[4:8] = ["{:.2f}".format(v) for v in box]
    return " ".join(tokens)


def write_image(item: Item, image_path: str, width: int, height: int, geometry: Geometry) -> None:
    """Copy an RGB PNG already at the size (decoded by scan()); write anything else as an 8-bit RGB PNG."""
    try:
        with Image.open(item.image) as image:
            if (item.size == (width, height) and image.format == "PNG" and image.mode == "RGB"
                    and "exif" not in image.info):
                shutil.copyfile(item.image, image_path)
                return
            image.load()
            pixels = image_files.pixels(image, "RGB")
    except READ_ERRORS as err:
        raise StepError("cannot decode image {}: {}".format(item.image, err)) from None
    canvas = np.zeros((height, width, 3), np.uint8)
    x, y = geometry.offset_x, geometry.offset_y
    canvas[y:y + geometry.content_height, x:x + geometry.content_width] = resize(
        pixels, (geometry.content_width, geometry.content_height))
    with open(image_path, "wb") as handle:
        handle.write(encode_png(canvas))


def write_item(item: Item, out_dir: str, width: int, height: int, listed: List[str]) -> Written:
    geometry = letterbox_geometry(item.size[0], item.size[1], width, height)
    write_image(item, os.path.join(out_dir, "images", item.stem + OUTPUT_EXTENSION), width, height, geometry)
    out_lines = []
    kept: Dict[str, int] = {}
    left_out = []
    for found in item.objects:
        if found.class_name.lower() not in listed:
            continue
        where = "{}:{}: {}".format(item.label, found.line, found.class_name)
        x1, y1, x2, y2 = found.box
        if x1 >= x2 or y1 >= y2:
            left_out.append(("tao_would_skip", "{} {}".format(where, kitti.tao_skip_reason(found.box))))
            continue
        box = place_box(found.box, item.size, geometry)
        if box is None:
            left_out.append(("outside_image", "{} box ({}) has nothing inside its {}x{} image".format(
                where, " ".join(found.tokens[4:8]), *item.size)))
            continue
        reason = kitti.tao_skip_reason(box)
        if reason:
            left_out.append(("tao_would_skip", "{} written {}".format(where, reason)))
            continue
        out_lines.append(output_line(found, box))
        kept[found.class_name.lower()] = kept.get(found.class_name.lower(), 0) + 1
    with open(os.path.join(out_dir, "labels", item.stem + ".txt"), "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in out_lines))
    return Written(kept, left_out)


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


def write_split(out_dir: str, chosen: List[Item], args: argparse.Namespace, extra: Dict[str, int],
                split: str) -> None:
    """One output folder: images and labels, the left-out objects warned (file and line), summary.json last."""
    _clear(out_dir)
    for sub in ("images", "labels"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    per_class = dict.fromkeys(args.classes, 0)
    left_out: List[Tuple[str, str]] = []
    for item in chosen:
        written = write_item(item, out_dir, args.width, args.height, args.classes)
        for name, count in written.objects_per_class.items():
            per_class[name] += count
        left_out.extend(written.left_out)
    warn_listed(LOG, "{}: objects left out, as TAO would skip them silently".format(out_dir),
                [note for _, note in left_out])
    resized = sum(1 for item in chosen if item.size != (args.width, args.height))
    summary = {
        "images": len(chosen), "objects": sum(per_class.values()), "resized_images": resized,
        "width": args.width, "height": args.height, "classes": args.classes, "objects_per_class": per_class,
        "objects_left_out": {reason: sum(1 for r, _ in left_out if r == reason) for reason in LEFT_OUT_REASONS},
        "dropped_unlisted_classes": extra, "split": split, "image_extension": OUTPUT_EXTENSION,
    }
    atomic_write_text(os.path.join(out_dir, SUMMARY_FILE), json.dumps(summary, indent=2) + "\n")
    LOG.info("%s: %d images (%d letterboxed), objects per class %s", out_dir, len(chosen), resized, per_class)


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    kitti.check_class_names(args.classes)
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
    warn_listed(LOG, "classes written with capitals (TAO lower-cases them; the written labels are lower case)",
                kitti.capitalised_classes((i.label, o) for i in train + val for o in i.objects))
    train_counts, val_counts = count_classes(train), count_classes(val)
    dropped = check_classes(args.classes, train_counts, "the training data ({})".format(args.kitti_data), args.unlisted)
    val_dropped = {k: v for k, v in val_counts.items() if k not in args.classes}
    if val_dropped and args.unlisted == "error":
        raise StepError("the validation data has objects of classes not in --classes: {}".format(
            ", ".join("{} ({} objects)".format(k, v) for k, v in sorted(val_dropped.items()))))
    for name in args.classes:
        if name not in val_counts:
            LOG.warning("class %s has no object in the validation split: its AP will be 0", name)

    outputs = ((args.train_dir, train, dropped), (args.val_dir, val, val_dropped))
    try:
        for out_dir, chosen, extra in outputs:
            write_split(out_dir, chosen, args, extra, split)
    except BaseException:
        for out_dir, _, _ in outputs:
            _clear(out_dir)
        raise


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
