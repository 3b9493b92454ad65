"""Find the bpnet model in the folder an earlier step wrote.

bpnet train keeps every checkpoint (model.epoch-N.hdf5) next to the final bpnet_model.hdf5, so a
train or retrain output holds many models: the final one is taken. The export step writes two models
(tao/ and sdk_compatible/) and names in model_info.json the one TAO's evaluate and inference run.
Other producers leave one.
"""

import os

from tao_aml.steps.tao.model_files import find_model

FINAL = "bpnet_model.hdf5"
# The export step's two models: TAO's own (evaluate, inference) and the SDK-compatible one (DeepStream, Triton).
TAO_MODEL, SDK_COMPATIBLE = "tao", "sdk_compatible"


def final_model(folder: str, extensions: tuple = (".hdf5", ".tlt")) -> str:
    path = os.path.join(folder, FINAL)
    if os.path.isfile(path):
        return path
    return find_model(folder, extensions)
