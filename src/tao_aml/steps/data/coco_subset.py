"""Check the COCO 2017 keypoint data and write the annotation files the BodyPose steps read.

Reads <root>/annotations/person_keypoints_{train,val}2017.json (root: the download, or the user's
folder when --coco_data is given), checks each file's structure and that every image it lists is
in train2017/ or val2017/, and writes <output_dir>/annotations/ with the same two files, cut to the
first --limit images of each split when given (smoke runs). Images are not copied: later steps read
them where they are. summary.json counts images, persons and keypoint-labelled persons per split.
Both files are checked before either is written and summary.json is written last, so a failed run
leaves no summary.json (an earlier run's is removed first).
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import LOG, atomic_write_text, run_main
from tao_aml.steps.data import coco
from tao_aml.steps.data.formats.coco import load_keypoints

SUMMARY = "summary.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coco_subset", description=__doc__)
    parser.add_argument("--coco_root", required=True, help="extracted COCO 2017 download")
    parser.add_argument("--coco_data", default=None, help="COCO already in Azure ML; used instead of --coco_root")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--limit", type=positive_int, default=None, help="first N images of each split")
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    root = coco.data_root(args.coco_root, args.coco_data)
    # A failed run leaves no summary.json behind, not even an earlier run's.
    summary_path = os.path.join(args.output_dir, SUMMARY)
    if os.path.exists(summary_path):
        os.remove(summary_path)
    # Both splits are checked before either file is written.
    subsets = {}
    for split in sorted(coco.SPLITS):
        source = coco.annotation_file(root, split)
        subsets[split] = coco.first_images(load_keypoints(source), args.limit)
        coco.check_image_files(subsets[split], coco.images_dir(root, split), source)
    summary = {"coco_root": root, "limit": args.limit, "splits": {}}
    for split, data in subsets.items():
        atomic_write_text(os.path.join(args.output_dir, coco.SPLITS[split][1]), json.dumps(data, separators=(",", ":")))
        persons = [ann for ann in data["annotations"] if not ann["iscrowd"]]
        summary["splits"][split] = {
            "images": len(data["images"]),
            "persons": len(persons),
            "persons_with_keypoints": sum(1 for ann in persons if ann["num_keypoints"] > 0),
            "crowd_annotations": len(data["annotations"]) - len(persons),
        }
        LOG.info("%s: %s", split, summary["splits"][split])
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
