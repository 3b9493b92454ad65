"""BPNet specs made self-contained for the model asset (called by steps/asset/portable_specs.py).

Every absolute path becomes a file of the asset where the spec names one (the other specs, the pose config,
the model) or is emptied with a note; each inference spec must then load as TAO's inferencer loads it, with
its train spec, pose config and model, from the asset folder.
"""

import os
from typing import Any, Dict, List, Tuple

from tao_aml.steps.bpnet import specs
from tao_aml.steps.common import StepError, atomic_write_text


def _bpnet_root(tree: Dict[str, Any], path: str) -> str:
    if "model_path" in tree or "train_spec" in tree:
        return specs.INFER
    if "checkpoint_dir" in tree or "dataloader" in tree:
        return specs.TRAIN
    if "root_directory_path" in tree:
        return specs.COCO
    if "categories" in tree:
        return specs.POSE
    raise StepError("{}: not a bpnet train, inference, coco or pose config spec".format(path))


def _absolute_strings(value: Any, at: str) -> List[str]:
    if isinstance(value, str):
        return [at] if os.path.isabs(value) else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _absolute_strings(v, "{}.{}".format(at, k) if at else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _absolute_strings(v, "{}[{}]".format(at, i))]
    return []


def _in_asset(value: str, asset_dir: str) -> str:
    """The asset file a node path names: the longest tail of the path that is a file of the asset
    (/node/export/tao/model.engine -> tao/model.engine), or "" when none is."""
    parts = os.path.normpath(value).split(os.sep)
    for start in range(1, len(parts)):
        relative = "/".join(parts[start:])
        if os.path.isfile(os.path.join(asset_dir, relative)):
            return relative
    return ""


# bpnet fields naming a file that ships in the asset (specs beside each other, the pose config, the model).
BPNET_ASSET_FILES = ("train_spec", "inference_spec", "dataloader.pose_config.pose_config_path", "model_path")


def make_portable(path: str, asset_dir: str, origin: str) -> Tuple[str, str]:
    """Rewrite one bpnet spec in place (paths into the asset, or emptied); (its root, the note)."""
    tree = specs.load(path)
    root = _bpnet_root(tree, origin)
    emptied, kept = [], []
    for field in specs.PATH_FIELDS[root]:
        value = specs.get(tree, field)
        if value is None or not _absolute_strings(value, field):
            continue
        relative = _in_asset(str(value), asset_dir) if field in BPNET_ASSET_FILES else ""
        specs.put(tree, field, relative or None)
        (kept if relative else emptied).append(field)
    left = _absolute_strings(tree, "")
    problems = ["{} is still an absolute path".format(p) for p in left]
    problems += specs.problems(tree, root, resolve_paths=False)
    if problems:
        raise StepError("spec {} cannot ship with the model:\n  {}".format(origin, "\n  ".join(problems)))
    note = "paths relative to the model asset folder (run TAO there): {}; left empty (set them where you run " \
           "TAO): {}".format(", ".join(kept) or "none", ", ".join(emptied) or "none")
    text = specs.text(tree, path)
    if not path.endswith(".json"):
        text = "# Shipped with the model by tao-aml: {}.\n{}".format(note, text)
    atomic_write_text(path, text)
    return root, note if root != specs.POSE else "the pose config the model was trained with"


def check_loads(spec_folder: str, asset_dir: str, origins: Dict[str, str]) -> None:
    """Each shipped inference spec loads as `bpnet inference`/`evaluate` load it, run in the asset folder."""
    for name in sorted(os.listdir(spec_folder)):
        path = os.path.join(spec_folder, name)
        if not name.endswith((".yaml", ".yml")):
            continue
        tree = specs.load(path)
        if _bpnet_root(tree, path) != specs.INFER:
            continue
        problems = specs.inferencer_problems(tree, asset_dir, model_given=False)
        if problems:
            raise StepError("spec {}, as shipped with the model, would not load in TAO 5.0 bpnet:\n  {}".format(
                origins.get(name, path), "\n  ".join(problems)))
