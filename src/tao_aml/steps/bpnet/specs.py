"""bpnet spec trees (YAML train/retrain and inference specs, JSON coco spec) and TAO's rules on them.

The steps (inside the TAO container) and `tao-aml` (offline, on the user's machine) both load a
template, refuse overrides of the paths a step writes, apply the user's overrides with
spec_edit.apply_dict_overrides and run `problems()`: one rule code, so a rule broken by an
override fails before anything is submitted, with the message the step would give.
"""

import json
import logging
import os
from typing import Any, Callable, Dict, List

import yaml

from tao_aml.steps.common import StepError, atomic_write_text
from tao_aml.steps.specs import spec_edit

LOG = logging.getLogger("tao_aml.bpnet.specs")

TRAIN, INFER, COCO, POSE = "bpnet_train", "bpnet_infer", "bpnet_coco", "bpnet_pose_config"
DATASET = "dataloader.dataset_config."

# Fields holding paths: the steps write them at run time, for the node that reads them.
PATH_FIELDS: Dict[str, List[str]] = {
    TRAIN: [
        "checkpoint_dir", "pretrained_weights", "inference_spec", "dataloader.pose_config.pose_config_path",
        DATASET + "root_data_path", DATASET + "train_records_folder_path", DATASET + "train_records_path",
        DATASET + "val_records_folder_path", DATASET + "val_records_path", DATASET + "dataset_specs.coco",
    ],
    INFER: ["model_path", "train_spec"],
    COCO: ["root_directory_path"] + [
        split + "." + key for split in ("train_data", "test_data")
        for key in ("images_root_dir_path", "mask_root_dir_path", "annotation_root_dir_path")
    ],
    POSE: [],
}

Tree = Dict[str, Any]


def load(path: str) -> Tree:
    """A YAML (.yaml/.yml) or JSON (.json) spec as a tree; its top level must be a mapping."""
    if not os.path.isfile(path):
        raise StepError("spec template {} does not exist".format(path))
    with open(path, encoding="utf-8") as handle:
        try:
            tree = json.load(handle) if path.endswith(".json") else yaml.safe_load(handle)
        except (ValueError, yaml.YAMLError) as err:
            raise StepError("{} cannot be parsed: {}".format(path, err)) from None
    if not isinstance(tree, dict):
        raise StepError("{}: expected a mapping of fields at the top level".format(path))
    return tree


def text(tree: Tree, path: str) -> str:
    if path.endswith(".json"):
        return json.dumps(tree, indent=4) + "\n"
    return yaml.safe_dump(tree, default_flow_style=False, sort_keys=False)


def get(tree: Tree, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(tree: Tree, dotted: str, value: Any) -> None:
    """Set a field the step owns; the sections on the way are created when the template lacks them."""
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------- rules

def problems(tree: Tree, root: str, resolve_paths: bool, data: bool = True) -> List[str]:
    """Every broken TAO rule of a spec. With resolve_paths (on the node, after the step wrote the
    paths) every path must also resolve here; without (offline templates) paths are not looked at.
    `data=False` is for a train spec read only for its model settings (evaluate, inference, export)."""
    if root == TRAIN:
        return _train_problems(tree, resolve_paths, data)
    if root == POSE:
        return pose_config_problems(tree)
    return {INFER: _infer_problems, COCO: _coco_problems}[root](tree, resolve_paths)


def _train_problems(tree: Tree, resolve_paths: bool, data: bool) -> List[str]:
    found = []
    epochs, every = tree.get("num_epoch"), tree.get("checkpoint_n_epoch")
    if not _positive_int(epochs) or not _positive_int(every):
        found.append("num_epoch ({!r}) and checkpoint_n_epoch ({!r}) must be whole numbers of at least 1".format(
            epochs, every))
    elif epochs % every:
        found.append("num_epoch {} is not a multiple of checkpoint_n_epoch {}: TAO 5.0 bpnet refuses it "
                     "(set num_epoch to a multiple, or change checkpoint_n_epoch)".format(epochs, every))
    if not resolve_paths:
        return found
    for field in ("inference_spec", "dataloader.pose_config.pose_config_path"):
        found += _missing_file(tree, field)
    if not data:
        return found
    if tree.get("load_graph") and not tree.get("pretrained_weights"):
        found.append("load_graph is true but pretrained_weights is not set: retraining needs the pruned model")
    found += _missing_file(tree, DATASET + "dataset_specs.coco")
    if tree.get("pretrained_weights"):
        found += _missing_file(tree, "pretrained_weights")
    root = get(tree, DATASET + "root_data_path")
    if not isinstance(root, str) or not root.endswith("/"):
        found.append("{}root_data_path {!r} must end with '/': the loader concatenates it with the "
                     "relative image and mask paths in the TFRecords".format(DATASET, root))
    coco_path = get(tree, DATASET + "dataset_specs.coco")
    if isinstance(coco_path, str) and os.path.isfile(coco_path):
        coco_root = load(coco_path).get("root_directory_path")
        if coco_root != root:
            found.append("{}root_data_path {!r} differs from root_directory_path {!r} of {}: images and "
                         "masks would be looked up under another root than dataset_convert wrote".format(
                             DATASET, root, coco_root, coco_path))
    found += _records_problems(tree, "train", required=True)
    found += _records_problems(tree, "val", required=False)
    return found


def _records_problems(tree: Tree, split: str, required: bool) -> List[str]:
    folder = get(tree, DATASET + split + "_records_folder_path")
    names = get(tree, DATASET + split + "_records_path")
    if not names:
        return ["{}{}_records_path is empty".format(DATASET, split)] if required else []
    if not isinstance(names, list):
        return ["{}{}_records_path must be a list of TFRecord file names".format(DATASET, split)]
    if not isinstance(folder, str) or not os.path.isdir(folder):
        return ["{}{}_records_folder_path {!r} is not a folder".format(DATASET, split, folder)]
    missing = [name for name in names if not os.path.isfile(os.path.join(folder, str(name)))]
    if missing:
        return ["{}{}_records_path names {} which dataset_convert did not write into {} (it holds: {})".format(
            DATASET, split, ", ".join(map(str, missing)), folder, ", ".join(sorted(os.listdir(folder))) or "nothing")]
    return []


def _infer_problems(tree: Tree, resolve_paths: bool) -> List[str]:
    found = []
    shape = tree.get("input_shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(_positive_int(v) for v in shape)):
        found.append("input_shape {!r} must be [height, width]".format(shape))
    if resolve_paths:
        found += _missing_file(tree, "train_spec")
        if tree.get("model_path"):
            found += _missing_file(tree, "model_path")
    return found


def _coco_problems(tree: Tree, resolve_paths: bool) -> List[str]:
    found = []
    for split in ("train_data", "test_data"):
        if not isinstance(tree.get(split), dict):
            found.append("{} must be a section with images_root_dir_path, mask_root_dir_path and "
                         "annotation_root_dir_path".format(split))
    if not any(isinstance(c, dict) and c.get("name") == "person" for c in tree.get("categories") or []):
        found.append("categories has no 'person' entry (TAO reads the skeleton from it)")
    if resolve_paths:
        root = tree.get("root_directory_path")
        if not isinstance(root, str) or not root.endswith("/") or not os.path.isdir(root):
            found.append("root_directory_path {!r} must be an existing folder ending in '/'".format(root))
    return found


def pose_config_problems(tree: Tree) -> List[str]:
    """What BpNetPoseConfig (nvidia_tao_tf1/cv/bpnet/dataloaders/pose_config.py) fails on: the first
    'person' category, num_joints equal to its keypoints, 1-based skeleton joint pairs."""
    person = [c for c in tree.get("categories") or [] if isinstance(c, dict) and c.get("name") == "person"]
    if not person:
        return ["categories has no 'person' entry (TAO reads the skeleton from it)"]
    joints, keypoints = person[0].get("num_joints"), person[0].get("keypoints")
    if not isinstance(keypoints, list) or joints != len(keypoints):
        return ["person num_joints {!r} differs from the number of keypoints".format(joints)]
    skeleton, edge_names = person[0].get("skeleton"), person[0].get("skeleton_edge_names")
    if not isinstance(skeleton, list) or not isinstance(edge_names, list):
        return ["person needs skeleton and skeleton_edge_names lists"]
    if not all(isinstance(e, list) and len(e) == 2 and all(isinstance(j, int) and 1 <= j <= joints for j in e)
               for e in skeleton):
        return ["person skeleton must hold pairs of joint numbers 1..{}".format(joints)]
    return []


# What BpNetInferencer.__init__ reads from the train spec (nvidia_tao_tf1/cv/bpnet/inferencer/bpnet_inferencer.py).
INFERENCER_READS = ("model.data_format", "dataloader.normalization_params.image_scale",
                    "dataloader.normalization_params.image_offset", "dataloader.pose_config.target_shape",
                    "dataloader.image_config.image_dims.height", "dataloader.image_config.image_dims.width",
                    "dataloader.pose_config.pose_config_path")


def inferencer_problems(infer: Tree, cwd: str, model_given: bool) -> List[str]:
    """Load an inference spec as `bpnet inference` / `evaluate` do, run in `cwd` (TAO opens every path as
    given, relative ones from where it runs): scripts/inference.py loads `train_spec` with load_yaml_file
    (the file must exist and end in .yaml), takes `model_path` unless -m is given, and BpNetInferencer and
    BpNetPoseConfig read the fields of INFERENCER_READS and the pose config JSON."""

    def resolve(value: Any) -> str:
        return os.path.join(cwd, str(value))

    found = _infer_problems(infer, resolve_paths=False)
    train_spec = infer.get("train_spec")
    if not isinstance(train_spec, str) or not os.path.isfile(resolve(train_spec)):
        return found + ["train_spec {!r} is not a file (from {})".format(train_spec, cwd)]
    if os.path.splitext(train_spec)[1] != ".yaml":
        found.append("train_spec {!r}: TAO's load_yaml_file takes only a .yaml file".format(train_spec))
    if not model_given and not (isinstance(infer.get("model_path"), str) and os.path.isfile(
            resolve(infer["model_path"]))):
        found.append("model_path {!r} is not a file (from {}); give the model with -m".format(
            infer.get("model_path"), cwd))
    train = load(resolve(train_spec))
    missing = [field for field in INFERENCER_READS if get(train, field) is None]
    if missing:
        return found + ["{} (train_spec) does not set {}: TAO's inferencer reads them".format(
            train_spec, ", ".join(missing))]
    pose = get(train, "dataloader.pose_config.pose_config_path")
    if not isinstance(pose, str) or not os.path.isfile(resolve(pose)):
        return found + ["{} (train_spec): pose_config_path {!r} is not a file (from {})".format(train_spec, pose, cwd)]
    return found + ["{}: {}".format(pose, p) for p in pose_config_problems(load(resolve(pose)))]


def _missing_file(tree: Tree, field: str) -> List[str]:
    value = get(tree, field)
    if not isinstance(value, str) or not os.path.isfile(value):
        return ["{} {!r} does not resolve to a file on this node".format(field, value)]
    return []


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ------------------------------------------------------------------------------ templates -> specs

def refuse_path_overrides(root: str, overrides: List[str], source: str) -> None:
    for override in overrides:
        path, _ = spec_edit.parse_override(override)
        if path.split("[", 1)[0] in PATH_FIELDS[root]:
            raise StepError("{}: override {!r}: {} is a path the step writes at run time; connect a "
                            "different input instead".format(source, override, path))


def template_problems(template: str, root: str, overrides: List[str]) -> List[str]:
    """Offline check of a template with the user's overrides: parse, override, rules (no paths)."""
    try:
        tree = load(template)
        absolute = [field for field in PATH_FIELDS[root]
                    if isinstance(get(tree, field), str) and os.path.isabs(get(tree, field))]
        if absolute:
            return ["{} holds absolute paths in {}: templates hold tunables only, the steps write "
                    "paths at run time".format(template, ", ".join(absolute))]
        refuse_path_overrides(root, overrides, "overrides")
        spec_edit.apply_dict_overrides(tree, overrides, "overrides")
    except StepError as err:
        return [str(err)]
    return ["{}: {}".format(template, problem) for problem in problems(tree, root, resolve_paths=False)]


def write(template: str, root: str, edit: Callable[[Tree], None], overrides: List[str],
          out_path: str, check: bool = True) -> str:
    """Template -> the step's edits -> the user's overrides -> `out_path` -> TAO's rules.

    `check=False` defers the rules to `check_written`, for specs that name each other.
    """
    tree = load(template)
    edit(tree)
    refuse_path_overrides(root, overrides, "--overrides")
    spec_edit.apply_dict_overrides(tree, overrides, "--overrides")
    atomic_write_text(out_path, text(tree, out_path))
    LOG.info("wrote %s spec %s from template %s", root, out_path, template)
    if check:
        check_written(out_path, root)
    return out_path


def check_written(path: str, root: str, data: bool = True) -> None:
    found = problems(load(path), root, resolve_paths=True, data=data)
    if found:
        raise StepError("spec {} breaks TAO 5.0 bpnet's rules:\n  {}".format(path, "\n  ".join(found)))
