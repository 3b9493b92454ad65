"""detectnet_v2 dataset_convert: a KITTI folder (images/, labels/) into TFRecords.

Writes <output_dir>/tfrecords/ (the shards), <output_dir>/specs/ (the spec TAO read)
and TAO's <output_dir>/status.json. Needs no GPU: meant for the CPU compute.
"""

import argparse
import os
import sys
from typing import List, Optional

from tao_aml.steps.common import LOG, StepError, run_main
from tao_aml.steps.data.formats import kitti
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.experiment import TFRECORDS_GLOB
from tao_aml.steps.detectnet_v2.spec_files import add_spec_arguments, write_step_spec
from tao_aml.steps.tao import command as tao

ROOT = "DatasetExportConfig"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.dataset_convert", description=__doc__)
    add_spec_arguments(parser)
    parser.add_argument("--kitti_dir", required=True, help="folder with images/ and labels/")
    parser.add_argument("--output_dir", required=True)
    return parser


def image_extension(images_dir: str) -> str:
    """TAO reads one image extension per data set; take it from what the converter wrote."""
    extensions = {os.path.splitext(name)[1] for name in os.listdir(images_dir)}
    if len(extensions) != 1:
        raise StepError(
            "{} must hold images of one type, found extensions: {}".format(
                images_dir, ", ".join(sorted(extensions)) or "none (empty folder)"
            )
        )
    return extensions.pop()


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    images = os.path.join(args.kitti_dir, "images")
    if not os.path.isdir(images) or not os.path.isdir(os.path.join(args.kitti_dir, "labels")):
        raise StepError("{} must contain images/ and labels/ (the KITTI converter's output)".format(args.kitti_dir))
    extension = image_extension(images)
    # TAO's converter would stop with a traceback, or drop boxes silently: every label is checked first.
    found = kitti.check_folder(args.kitti_dir, extension)
    LOG.info("%s: %d images, %d objects %s", args.kitti_dir, found["images"], found["objects"],
             found["objects_per_class"])

    def edit(tree):
        tree.set("kitti_config.root_directory_path", args.kitti_dir)
        tree.set("kitti_config.image_dir_name", "images")
        tree.set("kitti_config.label_dir_name", "labels")
        tree.set("kitti_config.image_extension", extension)
        tree.set("image_directory_path", args.kitti_dir)

    spec = write_step_spec(args, ROOT, edit, args.output_dir)
    records = os.path.join(args.output_dir, os.path.dirname(TFRECORDS_GLOB))
    os.makedirs(records, exist_ok=True)
    tao.run(
        tao.build_command(EXECUTABLE, "dataset_convert", [
            ("--dataset_export_spec", spec),
            ("--output_filename", os.path.join(records, "kitti")),
            ("--results_dir", args.output_dir),
        ]),
        args.output_dir,
    )
    if not os.listdir(records):
        raise StepError("TAO dataset_convert wrote no TFRecords into {}".format(records))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
