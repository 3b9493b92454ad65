"""Make the specs shipped in a model asset self-contained: no path of the node that wrote them.

Each spec a step saved names the paths of its own node (mounts, local data roots). In the model asset
those paths mean nothing, so every path field is rewritten: to a file of the asset where the spec
refers to one (the model, another spec), to a relative data path with the layout the pipeline used
(`data/...`), or left empty with a note. The result is then checked as the tool that would read it
checks it: detectnet_v2 Experiment and Inference specs against TAO 5.0's schema and TAO's own validator
(tf1_validator; TAO Deploy parses the same schema), bpnet specs against the project's TAO rules and each
bpnet inference spec as TAO's inferencer loads it, with its train spec, pose config and model, from the
asset folder.
"""

import os
from typing import Any, Dict, List, Tuple

from . import detectnet_v2_schema, prototext
from .bpnet import specs as bpnet_specs
from .common import StepError, atomic_write_text
from .detectnet_v2 import tf1_validator
from .prototext import Message

# Relative data paths a shipped Experiment spec names: the layout of the pipeline's own outputs.
DATA_SOURCES = {
    "data_sources": ("data/tfrecords_train/tfrecords/*", "data/kitti_train"),
    "validation_data_source": ("data/tfrecords_val/tfrecords/*", "data/kitti_val"),
}
EXPERIMENT_NOTE = ("dataset paths are relative to the folder TAO runs in (data/tfrecords_<split>/tfrecords/* "
                   "and data/kitti_<split>, as the pipeline laid them out); model_config.pretrained_model_file "
                   "is left empty (the model it started from is not in this asset): set both before training")
INFERENCE_NOTE = ("inferencer_config.tlt_config.model is left empty: give the model with -m "
                  "(TAO Deploy: -m model.engine)")


def detectnet_root(tree: Message) -> str:
    names = {name for name, _ in tree.fields}
    if "inferencer_config" in names:
        return "Inference"
    if names & {"dataset_config", "model_config", "training_config"}:
        return "Experiment"
    return "DatasetExportConfig"


def _detectnet(path: str, origin: str) -> Tuple[str, str]:
    with open(path, encoding="utf-8") as handle:
        tree = prototext.parse(handle.read(), path)
    root = detectnet_root(tree)
    if root == "Experiment":
        dataset = tree.get("dataset_config") if tree.has("dataset_config") else None
        if isinstance(dataset, Message):
            for field, (records, images) in DATA_SOURCES.items():
                if field == "validation_data_source" and not dataset.values(field):
                    continue
                dataset.remove(field)
                source = Message()
                source.add("tfrecords_path", records)
                source.add("image_directory_path", images)
                dataset.add(field, source)
        tree.remove("model_config.pretrained_model_file")
        note = EXPERIMENT_NOTE
    elif root == "Inference":
        tree.remove("inferencer_config.tlt_config.model")
        note = INFERENCE_NOTE
    else:
        raise StepError("{}: only Experiment and Inference specs go into a model asset".format(origin))
    problems = detectnet_v2_schema.validate(tree, root, origin) + tf1_validator.validate(tree, root, origin)
    if problems:
        raise StepError("spec {}, as shipped with the model, would be refused by TAO 5.0:\n  {}".format(
            origin, "\n  ".join(problems)))
    header = "# Shipped with the model by tao-aml: {}.\n".format(note)
    atomic_write_text(path, header + prototext.format(tree))
    return root, note


def _bpnet_root(tree: Dict[str, Any], path: str) -> str:
    if "model_path" in tree or "train_spec" in tree:
        return bpnet_specs.INFER
    if "checkpoint_dir" in tree or "dataloader" in tree:
        return bpnet_specs.TRAIN
    if "root_directory_path" in tree:
        return bpnet_specs.COCO
    if "categories" in tree:
        return bpnet_specs.POSE
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


def _bpnet(path: str, asset_dir: str, origin: str) -> Tuple[str, str]:
    tree = bpnet_specs.load(path)
    root = _bpnet_root(tree, origin)
    emptied, kept = [], []
    for field in bpnet_specs.PATH_FIELDS[root]:
        value = bpnet_specs.get(tree, field)
        if value is None or not _absolute_strings(value, field):
            continue
        relative = _in_asset(str(value), asset_dir) if field in BPNET_ASSET_FILES else ""
        bpnet_specs.put(tree, field, relative or None)
        (kept if relative else emptied).append(field)
    left = _absolute_strings(tree, "")
    problems = ["{} is still an absolute path".format(p) for p in left]
    problems += bpnet_specs.problems(tree, root, resolve_paths=False)
    if problems:
        raise StepError("spec {} cannot ship with the model:\n  {}".format(origin, "\n  ".join(problems)))
    note = "paths relative to the model asset folder (run TAO there): {}; left empty (set them where you run " \
           "TAO): {}".format(", ".join(kept) or "none", ", ".join(emptied) or "none")
    text = bpnet_specs.text(tree, path)
    if not path.endswith(".json"):
        text = "# Shipped with the model by tao-aml: {}.\n{}".format(note, text)
    atomic_write_text(path, text)
    return root, note if root != bpnet_specs.POSE else "the pose config the model was trained with"


def _bpnet_loads(spec_folder: str, asset_dir: str, origins: Dict[str, str]) -> None:
    """Each shipped inference spec loads as `bpnet inference`/`evaluate` load it, run in the asset folder."""
    for name in sorted(os.listdir(spec_folder)):
        path = os.path.join(spec_folder, name)
        if not name.endswith((".yaml", ".yml")):
            continue
        tree = bpnet_specs.load(path)
        if _bpnet_root(tree, path) != bpnet_specs.INFER:
            continue
        problems = bpnet_specs.inferencer_problems(tree, asset_dir, model_given=False)
        if problems:
            raise StepError("spec {}, as shipped with the model, would not load in TAO 5.0 bpnet:\n  {}".format(
                origins.get(name, path), "\n  ".join(problems)))


def make_portable(spec_folder: str, asset_dir: str, origins: Dict[str, str]) -> Dict[str, str]:
    """Rewrite every spec in `spec_folder` in place; {file name: what was done to its paths}.

    `origins` names the file each spec was copied from, for the error messages."""
    notes: Dict[str, str] = {}
    if not os.path.isdir(spec_folder):
        return notes
    for name in sorted(os.listdir(spec_folder)):
        path = os.path.join(spec_folder, name)
        origin = origins.get(name, path)
        if name.endswith(".txt"):
            notes[name] = _detectnet(path, origin)[1]
        elif name.endswith((".yaml", ".yml", ".json")):
            notes[name] = _bpnet(path, asset_dir, origin)[1]
    _bpnet_loads(spec_folder, asset_dir, origins)
    return notes
