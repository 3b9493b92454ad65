"""Find the bpnet model in the folder an earlier step wrote.

bpnet train keeps every checkpoint (model.epoch-N.hdf5) next to the final bpnet_model.hdf5, so a
train or retrain output holds many models: the final one is taken. The export step writes two models
(tao/ and sdk_compatible/) and names in model_info.json the one TAO's evaluate and inference run.
Other producers leave one.
"""

import argparse
import os

from tao_aml.steps.common import StepError
from tao_aml.steps.tao.model_files import find_model

FINAL = "bpnet_model.hdf5"
# The export step's two models: TAO's own (evaluate, inference) and the SDK-compatible one (DeepStream, Triton).
TAO_MODEL, SDK_COMPATIBLE = "tao", "sdk_compatible"


def final_model(folder: str, extensions: tuple = (".hdf5", ".tlt")) -> str:
    path = os.path.join(folder, FINAL)
    if os.path.isfile(path):
        return path
    return find_model(folder, extensions)


def inferencer_model(args: argparse.Namespace) -> str:
    """The engine or model `bpnet evaluate` and `bpnet inference` run (their --model folder).

    TAO 5.0's BpNetInferencer runs a `.engine` at the inference spec's input_shape, [256, 256] unless set
    (nvidia_tao_tf1/cv/bpnet/inferencer/bpnet_inferencer.py), and TensorRT then fails on an engine built for
    another size: an engine needs its export size, --input_height and --input_width.
    """
    model = final_model(args.model, (".engine", ".hdf5", ".tlt"))
    if model.endswith(".engine") and args.input_height is None:
        raise StepError("{} is a TensorRT engine: give its input size with --input_height and --input_width"
                        .format(model))
    return model

