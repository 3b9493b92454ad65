"""The Experiment spec (train, retrain, evaluate; TAO Deploy's engine steps): its root message, the flags
its edits read and the edits every TAO task over it needs."""

import argparse
import os
from typing import List, Optional

from tao_aml.steps.cli_types import name_list, positive_int
from tao_aml.steps.common import StepError
from tao_aml.steps.secret_refs import add_model_key_arguments
from tao_aml.steps.specs import spec_edit
from tao_aml.steps.specs.prototext import Message

ROOT = "Experiment"
TFRECORDS_GLOB = "tfrecords/*"


def add_dataset_arguments(parser: argparse.ArgumentParser, train_required: bool = True) -> None:
    parser.add_argument("--train_tfrecords", required=train_required, help="dataset_convert output (train)")
    parser.add_argument("--train_kitti", required=train_required, help="KITTI converter output (train)")
    parser.add_argument("--val_tfrecords", required=True, help="dataset_convert output (validation)")
    parser.add_argument("--val_kitti", required=True, help="KITTI converter output (validation)")


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """The network's input size and classes, which every detectnet_v2 spec edit sets."""
    parser.add_argument("--image_width", type=positive_int, required=True)
    parser.add_argument("--image_height", type=positive_int, required=True)
    parser.add_argument("--classes", type=name_list, required=True, help="comma-separated class names")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model's key (a .hdf5 model needs it; an engine does not) and its input size and classes."""
    add_model_key_arguments(parser)
    add_image_arguments(parser)


def tfrecords_pattern(folder: str) -> str:
    """The glob TAO reads for TFRecords that our dataset_convert step wrote into `folder`."""
    records = os.path.join(folder, os.path.dirname(TFRECORDS_GLOB))
    if not os.path.isdir(records) or not os.listdir(records):
        raise StepError(
            "{} has no TFRecords in {}/: connect the output of the dataset_convert step".format(
                folder, os.path.dirname(TFRECORDS_GLOB)
            )
        )
    return os.path.join(folder, TFRECORDS_GLOB)


def kitti_images(folder: str) -> str:
    """TAO joins a data source's image_directory_path with the image names in the TFRecords."""
    if not os.path.isdir(os.path.join(folder, "images")):
        raise StepError("{} has no images/ folder: connect the output of the KITTI converter".format(folder))
    return folder


def data_source(tfrecords_dir: str, kitti_dir: str) -> Message:
    source = Message()
    source.add("tfrecords_path", tfrecords_pattern(tfrecords_dir))
    source.add("image_directory_path", kitti_images(kitti_dir))
    return source


def set_datasets(tree: Message, train: Optional[List[str]], val: List[str]) -> None:
    """Point the spec at our TFRecords: one training source and a separate validation source.

    `train`/`val` are [tfrecords folder, KITTI folder]. Evaluation reads only the validation source,
    but TAO still builds the training loader, so a missing `train` reuses the validation data.
    """
    dataset = tree.get("dataset_config")
    dataset.remove("data_sources")
    dataset.add("data_sources", data_source(*(train or val)))
    # validation_fold and validation_data_source are one oneof in TAO's schema.
    dataset.remove("validation_fold")
    dataset.remove("validation_data_source")
    dataset.add("validation_data_source", data_source(*val))


def set_input_size(tree: Message, width: int, height: int) -> None:
    tree.set("augmentation_config.preprocessing.output_image_width", width)
    tree.set("augmentation_config.preprocessing.output_image_height", height)


def set_common(tree: Message, width: int, height: int, classes: List[str]) -> None:
    set_input_size(tree, width, height)
    spec_edit.set_classes(tree, classes)
