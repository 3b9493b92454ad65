"""Find the model file inside the folder an earlier step wrote.

Steps hand models to each other as folders (Azure ML ports are folders). Each producer leaves one
recognisable model: the NGC step names it in model_info.json, TAO train writes weights/<name>.hdf5,
prune and export write a single file at the top.
"""

import glob
import json
import os
from typing import List, Sequence

from tao_aml.steps.common import StepError

MODEL_INFO = "model_info.json"


def find_model(folder: str, extensions: Sequence[str] = (".hdf5", ".tlt")) -> str:
    """The one model file in `folder` with one of `extensions`; an error lists what was found."""
    if not os.path.isdir(folder):
        raise StepError("model folder {} does not exist".format(folder))
    info_path = os.path.join(folder, MODEL_INFO)
    if os.path.isfile(info_path):
        with open(info_path, encoding="utf-8") as handle:
            try:
                relative = json.load(handle)["model_file"]
            except (ValueError, KeyError, TypeError) as err:
                raise StepError("{}: no readable model_file entry ({})".format(info_path, err)) from None
        path = os.path.join(folder, relative)
        if not os.path.isfile(path):
            raise StepError("{} names model_file {!r}, which does not exist".format(info_path, relative))
        return path
    for pattern in ("weights/*", "*"):
        found = _with_extension(glob.glob(os.path.join(folder, pattern)), extensions)
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise StepError(
                "{} holds several models ({}); expected exactly one".format(
                    folder, ", ".join(os.path.relpath(p, folder) for p in found)
                )
            )
    raise StepError(
        "no model ({}) found in {} or its weights/ folder".format("/".join(extensions), folder)
    )


def model_folder(folder: str) -> str:
    """The folder of the model model_info.json names (a step that writes several models names the one
    the pipeline goes on with), else `folder` itself."""
    if not os.path.isfile(os.path.join(folder, MODEL_INFO)):
        return folder
    try:
        return os.path.dirname(find_model(folder))
    except StepError:
        return folder


def _with_extension(paths: List[str], extensions: Sequence[str]) -> List[str]:
    return sorted(p for p in paths if os.path.isfile(p) and p.endswith(tuple(extensions)))
