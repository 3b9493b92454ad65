"""The Inference spec both detectnet_v2 inference steps write (TAO's of the .hdf5 model, TAO Deploy's of
the engine): its root message, the images they run on and the inferencer settings they both make."""

import os

from tao_aml.steps.common import StepError
from tao_aml.steps.specs.prototext import Message

ROOT = "Inference"


def image_folder(folder: str) -> str:
    nested = os.path.join(folder, "images")
    found = nested if os.path.isdir(nested) else folder
    if not os.path.isdir(found) or not os.listdir(found):
        raise StepError("{} holds no images to run inference on".format(folder))
    return found


def set_input(tree: Message, width: int, height: int, batch_size: int) -> None:
    """The network input size and the batch the inferencer runs."""
    tree.set("inferencer_config.image_width", width)
    tree.set("inferencer_config.image_height", height)
    tree.set("inferencer_config.batch_size", batch_size)
