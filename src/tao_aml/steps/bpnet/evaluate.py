"""bpnet evaluate: COCO keypoint AP/AR of a model on the validation split.

Writes TAO's results.csv, detections_coco_format.json and status.json (KPIs under `kpi`) and
specs/ (the specs TAO read) into --results_dir. TAO runs the model on every image the validation
annotation file lists (the coco_subset output, so images_per_split shortens this step too).
"""

import argparse
import os
import sys
from typing import List, Optional

from .. import tao
from ..common import run_main
from . import EXECUTABLE, data_root
from .experiment import add_coco_arguments, add_spec_arguments, coco_links, write_coco_spec, write_model_specs
from .models import final_model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.evaluate", description=__doc__)
    add_spec_arguments(parser, train_step=False)
    add_coco_arguments(parser)
    parser.add_argument("--model", required=True, help="folder holding the model to evaluate")
    parser.add_argument("--results_dir", required=True)
    parser.add_argument("--key", required=True)
    return parser


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    model = final_model(args.model)
    root = data_root.build(coco_links(args))
    os.makedirs(args.results_dir, exist_ok=True)
    coco_spec = write_coco_spec(args, root, args.results_dir, [])
    written = write_model_specs(args, args.results_dir, model)
    tao.run(
        tao.build_command(EXECUTABLE, "evaluate", [
            ("--inference_spec", written["infer"]),
            ("--model_filename", model),
            ("--dataset_spec", coco_spec),
            ("--key", args.key),
            ("--results_dir", args.results_dir),
        ]),
        args.results_dir,
    )


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
