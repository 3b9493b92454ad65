"""What the TAO Deploy evaluate and inference steps share: their flags and the engine they run."""

import argparse

from .. import deploy_bundle
from ..cli_types import name_list, positive_int
from ..common import StepError
from ..model_files import find_model
from .spec_files import add_spec_arguments


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    # An engine needs no key (TAO Deploy's evaluate and inference take none).
    parser.add_argument("--image_width", type=positive_int, required=True)
    parser.add_argument("--image_height", type=positive_int, required=True)
    parser.add_argument("--classes", type=name_list, required=True, help="comma-separated class names")
    parser.add_argument("--engine", required=True, help="engine step output (model.engine, engine.json)")
    parser.add_argument("--results_dir", required=True)
    parser.add_argument("--batch_size", type=positive_int, default=1)


def engine_for(folder: str, batch_size: int) -> str:
    """The engine file of an engine step's output, refused when batch_size exceeds what it was built for."""
    engine = find_model(folder, (".engine",))
    info = deploy_bundle.read_engine_info(folder)
    if batch_size > info["max_batch_size"]:
        raise StepError("--batch_size {} is larger than the engine's max_batch_size {}".format(
            batch_size, info["max_batch_size"]))
    return engine
