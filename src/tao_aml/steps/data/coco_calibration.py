"""Pick INT8 calibration images from the COCO training split and copy just those.

An image qualifies when at least one non-crowd person in it has at least --min_keypoints labelled
keypoints (NVIDIA's sample_calibration_images.py rule). --num_images of them are drawn with a
seeded generator, so the same seed and annotations give the same images. Writes
<output_dir>/images/ (the folder bpnet export reads with --cal_image_dir) and calibration.json
(the chosen file names, the seed, how many qualified). Every chosen image is checked before any is
copied; they are copied into a temporary folder renamed to images/ when all are there, and
calibration.json is written last, so a failed run leaves neither.
"""

import argparse
import json
import os
import random
import shutil
import sys
from typing import List, Optional

from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import LOG, StepError, atomic_write_text, run_main
from tao_aml.steps.data import coco
from tao_aml.steps.data.formats.coco import load_keypoints

IMAGES = "images"
PARTIAL = ".images.partial"
RECORD = "calibration.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coco_calibration", description=__doc__)
    parser.add_argument("--coco_root", required=True, help="extracted COCO 2017 download")
    parser.add_argument("--coco_data", default=None, help="COCO already in Azure ML; used instead of --coco_root")
    parser.add_argument("--annotations", required=True,
                        help="folder with annotations/person_keypoints_train2017.json (the coco_subset output)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_images", type=positive_int, default=2000)
    parser.add_argument("--min_keypoints", type=positive_int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    # A failed run leaves no calibration.json, not even an earlier run's.
    record = os.path.join(args.output_dir, RECORD)
    if os.path.exists(record):
        os.remove(record)
    root = coco.data_root(args.coco_root, args.coco_data)
    source = coco.annotation_file(args.annotations, "train")
    candidates = coco.well_labelled_images(load_keypoints(source), args.min_keypoints)
    if not candidates:
        raise StepError("{}: no image has a person with at least {} labelled keypoints".format(
            source, args.min_keypoints))
    if len(candidates) < args.num_images:
        LOG.warning("only %d images qualify for calibration; using all of them, not %d",
                    len(candidates), args.num_images)
    names = sorted(image["file_name"] for image in candidates)
    chosen = sorted(random.Random(args.seed).sample(names, min(args.num_images, len(names))))
    images = coco.images_dir(root, "train")
    missing = [name for name in chosen if not os.path.isfile(os.path.join(images, name))]
    if missing:
        raise StepError("{} names {} image(s) not in {}, e.g. {}".format(
            source, len(missing), images, ", ".join(missing[:3])))
    target = os.path.join(args.output_dir, IMAGES)
    partial = os.path.join(args.output_dir, PARTIAL)
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        for name in chosen:
            shutil.copyfile(os.path.join(images, name), os.path.join(partial, name))
    except OSError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise StepError("cannot copy calibration images from {}: {}".format(images, err)) from None
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    atomic_write_text(record, json.dumps({
        "images": chosen, "seed": args.seed, "min_keypoints": args.min_keypoints,
        "qualifying_images": len(candidates), "annotations": source}, indent=2) + "\n")
    LOG.info("copied %d calibration images into %s", len(chosen), target)


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
