"""bpnet dataset_convert: COCO keypoints of one split into TFRecords and loss masks.

Reads the images where they are (no copy) through a local data root (data_root.py); the masks of
unlabelled people and crowds (TAO uses every core for them) go to <output_dir>/<split mask dir>/,
the TFRecords to <output_dir>/tfrecords/, the coco spec TAO read to <output_dir>/specs/, and
dataset.json records what was written for the train step. Needs no GPU: run it on CPU compute.
"""

import argparse
import json
import os
import sys
from typing import List, Optional

from tao_aml.steps.bpnet import EXECUTABLE, data_root
from tao_aml.steps.bpnet.experiment import add_coco_arguments, add_spec_dir_argument, coco_links, write_coco_spec
from tao_aml.steps.cli_types import override_list
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.tao import command as tao

TFRECORDS = "tfrecords"
MANIFEST = "dataset.json"
# bpnet dataset_convert reads train_data in mode `train` and test_data in any other mode.
MODES = {"train": "train", "val": "test"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.dataset_convert", description=__doc__)
    add_coco_arguments(parser)
    add_spec_dir_argument(parser, "--coco_spec_file")
    parser.add_argument("--split", required=True, choices=sorted(MODES))
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--overrides", type=override_list, default=[], help="coco spec overrides 'a.b=1;...'")
    return parser


def records(output_dir: str) -> List[str]:
    """The TFRecord files a dataset_convert output holds, as train_records_path lists them."""
    folder = os.path.join(output_dir, TFRECORDS)
    found = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if not found:
        raise StepError("{} holds no TFRecords in {}/: connect the output of the bpnet dataset_convert step".format(
            output_dir, TFRECORDS))
    return found


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    masks = os.path.join(args.output_dir, data_root.MASKS[args.split])
    os.makedirs(masks, exist_ok=True)
    root = data_root.build(coco_links(args, {args.split: masks}))
    spec = write_coco_spec(args, root, args.output_dir, args.overrides)
    os.makedirs(os.path.join(args.output_dir, TFRECORDS), exist_ok=True)
    tao.run(
        tao.build_command(EXECUTABLE, "dataset_convert", [
            ("--dataset_spec", spec),
            ("--output_filename", os.path.join(args.output_dir, TFRECORDS, args.split)),
            ("--mode", MODES[args.split]),
            ("--generate_masks", True),
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    atomic_write_text(os.path.join(args.output_dir, MANIFEST), json.dumps({
        "split": args.split, "records": records(args.output_dir), "masks": data_root.MASKS[args.split],
        "images": data_root.IMAGES[args.split]}, indent=2) + "\n")


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
