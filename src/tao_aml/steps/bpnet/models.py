"""Find the bpnet model in the folder an earlier step wrote.

bpnet train keeps every checkpoint (model.epoch-N.hdf5) next to the final bpnet_model.hdf5, so a
train or retrain output holds many models: the final one is taken. Other producers leave one.
"""

import os

from ..model_files import find_model

FINAL = "bpnet_model.hdf5"


def final_model(folder: str, extensions: tuple = (".hdf5", ".tlt")) -> str:
    path = os.path.join(folder, FINAL)
    if os.path.isfile(path):
        return path
    return find_model(folder, extensions)
