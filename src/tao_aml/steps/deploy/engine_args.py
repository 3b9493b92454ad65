"""What the TAO Deploy evaluate and inference steps share: their flags and the engine they run."""

import argparse

from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import StepError
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.detectnet_v2.experiment import add_image_arguments
from tao_aml.steps.detectnet_v2.spec_files import add_spec_arguments
from tao_aml.steps.tao.model_files import find_model


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    # An engine needs no key (TAO Deploy's evaluate and inference take none).
    add_image_arguments(parser)
    parser.add_argument("--engine", required=True, help="engine step output (model.engine, engine.json)")
    parser.add_argument("--results_dir", required=True)
    parser.add_argument("--batch_size", type=positive_int, default=1)


def engine_for(folder: str, batch_size: int) -> str:
    """The engine file of an engine step's output, refused when batch_size exceeds what it was built for."""
    engine = find_model(folder, (".engine",))
    info = engine_info.read_engine_info(folder)
    if batch_size > info["max_batch_size"]:
        raise StepError("--batch_size {} is larger than the engine's max_batch_size {}".format(
            batch_size, info["max_batch_size"]))
    return engine
