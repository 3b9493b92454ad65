"""The one code path for spec edits: user overrides, class lists, and the dict-tree (YAML/JSON) variant.

Steps and the user-side submitter both call these, so an override refused here is refused before
anything is submitted, with the same message a step would give.
"""

import math
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml

from tao_aml.steps.common import StepError
from tao_aml.steps.data.formats.kitti import check_class_names
from tao_aml.steps.specs import detectnet_v2_schema as schema
from tao_aml.steps.specs.prototext import Message, entry_key, format_path, parse_path

# Fields of each root that hold paths; the steps write them at run time (indexes left out).
PATH_FIELDS: Dict[str, List[str]] = {
    "DatasetExportConfig": [
        "kitti_config.root_directory_path",
        "image_directory_path",
    ],
    "Experiment": [
        "dataset_config.data_sources.tfrecords_path",
        "dataset_config.data_sources.image_directory_path",
        "dataset_config.validation_data_source.tfrecords_path",
        "dataset_config.validation_data_source.image_directory_path",
        "model_config.pretrained_model_file",
    ],
    "Inference": [
        "inferencer_config.tlt_config.model",
    ],
}

_OVERRIDE = re.compile(r"\s*([^=\s][^=]*?)\s*=(.*)$", re.DOTALL)


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 core-schema scalars: decimal integers and numbers (exponent allowed), true/false, null.

    PyYAML reads YAML 1.1, where `010` is 8, `1:30` is 90, `0b11` is 3 and `yes` is true, while `1e-5` is
    text: here those stay text (then refused as a number) and `1e-5` is a number."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers
            if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^[-+]?[0-9]+$", "-+0123456789"),
    ("float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
              r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
):
    _Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:" + _tag, re.compile(_pattern), list(_first))


def _int12(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    return int(loader.construct_scalar(node))  # decimal: PyYAML's own constructor reads 010 as octal


_Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _int12)


def yaml12_value(text: str) -> Any:
    """`text` read as a YAML 1.2 value (a number, true/false, null, a list or mapping of them, or text)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # a SafeLoader: no Python objects


def parse_override(text: str) -> Tuple[str, str]:
    """`training_config.batch_size_per_gpu=16` -> (path, raw text); StepError on bad syntax."""
    match = _OVERRIDE.match(text)
    if not match:
        raise StepError(
            f"override {text!r}: expected <field path>=<value>, e.g. training_config.batch_size_per_gpu=16"
        )
    path, raw = match.group(1), match.group(2)
    try:
        parse_path(path)
    except StepError as err:
        raise StepError(f"override {text!r}: {err}") from None
    return path, raw


def _without_indexes(path: str) -> str:
    """`a[0].b[car].c` -> `a.b.c`."""
    return re.sub(r"\[[^\]]*\]", "", path)


# ---------------------------------------------------------------- protobuf-text specs

def apply_overrides(msg: Message, root: str, overrides: List[str], source: str) -> None:
    """Apply `path=value` overrides to a spec tree, typed by TAO 5.0's schema for `root`.

    A field missing from the template but known to the schema is created (with the messages on the
    way); a repeated scalar without an index takes a list `[a, b]` (or one value) that replaces it.
    """
    for override in overrides:
        path, raw = parse_override(override)
        if _without_indexes(path) in PATH_FIELDS.get(root, []):
            raise StepError(f"{source}: override {override!r}: {path} is a path the step writes at run time; "
                            "connect a different input instead")
        try:
            _apply(msg, root, path, raw)
        except StepError as err:
            raise StepError(f"{source}: override {override!r}: {err}") from None


def _apply(msg: Message, root: str, path: str, raw: str) -> None:
    field = schema.resolve(root, path)
    value = schema.coerce(root, path, raw)
    last = parse_path(path)[-1]
    if field.repeated and last.index is None and last.key is None:
        values = value if isinstance(value, list) else [value]
        parent_path = format_path(parse_path(path)[:-1])
        parent = _ensure(msg, parent_path) if parent_path else msg
        parent.replace(last.name, values)
        return
    if isinstance(value, list):
        raise StepError(f"{path} holds one value, not a list")
    msg.set(path, value)


def _ensure(msg: Message, path: str) -> Message:
    """The message at `path`, created (with the ones on the way) when absent."""
    if not msg.has(path):
        msg.set(path, Message())
    found = msg.get(path)
    if not isinstance(found, Message):
        raise StepError(f"{path} is a value, not a message")
    return found


# ---------------------------------------------------------------- class lists

class _Section:
    """A class-keyed repeated field: the path of its parent message, its name, the field keying it."""

    def __init__(self, parent: str, name: str, key_field: str = "key") -> None:
        self.parent, self.name, self.key_field = parent, name, key_field


# Every Experiment section with one entry per class (target_class_mapping is handled on its own).
_EXPERIMENT_SECTIONS = [
    _Section("cost_function_config", "target_classes", key_field="name"),
    _Section("postprocessing_config", "target_class_config"),
    _Section("evaluation_config", "minimum_detection_ground_truth_overlap"),
    _Section("evaluation_config", "evaluation_box_config"),
    _Section("bbox_rasterizer_config", "target_class_config"),
    _Section("training_config.visualizer", "target_class_config"),
]


def _check_classes(classes: List[str]) -> None:
    if not classes:
        raise StepError("the class list is empty: give at least one class name")
    for name in classes:
        if not isinstance(name, str) or not name.strip():
            raise StepError(f"class names must be non-empty text, got {name!r} in {classes}")
    check_class_names(classes)
    duplicates = sorted({name for name in classes if classes.count(name) > 1})
    if duplicates:
        raise StepError(f"class names must be unique; repeated: {', '.join(duplicates)}")


def _set_section(
    tree: Message, section: _Section, classes: List[str],
    on_clone: Optional[Callable[[Message, str], None]] = None,
) -> None:
    """Entries for exactly `classes`, in that order: kept when the template has one, else a clone of
    the template's first entry renamed to the class. A section absent from the template is left out."""
    if not tree.has(section.parent):
        return
    parent = tree.get(section.parent)
    if not isinstance(parent, Message):
        raise StepError(f"{section.parent} is a value, not a message")
    entries = [entry for entry in parent.values(section.name) if isinstance(entry, Message)]
    if not entries:
        raise StepError(
            f"{section.parent}.{section.name} has no entry to copy for the classes {', '.join(classes)}; "
            "the template must hold one entry (for its first class)"
        )
    by_key = {entry_key(entry): entry for entry in entries}
    result = []
    for name in classes:
        entry = by_key.get(name)
        if entry is None:
            entry = entries[0].copy()
            entry.set(section.key_field, name)
            if on_clone is not None:
                on_clone(entry, name)
        result.append(entry)
    parent.replace(section.name, result)


def _set_class_mapping(tree: Message, path: str, classes: List[str]) -> None:
    """Keep the mapping entries whose target is one of `classes`; map each unmapped class to itself."""
    if not tree.has(path):
        return
    parent = tree.get(path)
    if not isinstance(parent, Message):
        raise StepError(f"{path} is a value, not a message")
    kept = [entry for entry in parent.values("target_class_mapping")
            if isinstance(entry, Message) and entry.values("value")
            and entry.values("value")[0] in classes]
    targets = {entry.values("value")[0] for entry in kept}
    added = [Message([("key", name), ("value", name)]) for name in classes if name not in targets]
    parent.replace("target_class_mapping", kept + added)


def set_classes(experiment: Message, classes: List[str]) -> None:
    """Make every class-keyed section of an Experiment spec list exactly `classes`, in that order."""
    _check_classes(classes)
    _set_class_mapping(experiment, "dataset_config", classes)
    for section in _EXPERIMENT_SECTIONS:
        _set_section(experiment, section, classes)


def set_inference_classes(inference: Message, classes: List[str]) -> None:
    """The Inference spec's classes: inferencer_config.target_classes (network order) and one
    classwise_bbox_handler_config per class (a new one reads the class's own output map)."""
    _check_classes(classes)
    _ensure(inference, "inferencer_config").replace("target_classes", list(classes))

    def point_output_map(entry: Message, name: str) -> None:
        if entry.has("value.output_map"):
            entry.set("value.output_map", name)

    _set_section(inference, _Section("bbox_handler_config", "classwise_bbox_handler_config"),
                 classes, point_output_map)
    handler = inference.get_all("bbox_handler_config")
    if handler and isinstance(handler[0], Message) and handler[0].values("postproc_classes"):
        handler[0].replace("postproc_classes", list(classes))


# ---------------------------------------------------------------- YAML / JSON specs

def apply_dict_overrides(tree: Dict[str, Any], overrides: List[str], source: str) -> None:
    """Apply `path=value` overrides to a YAML/JSON spec: the field must exist in the template and
    the new value must have the existing value's type (an int is fine where a float is)."""
    for override in overrides:
        path, raw = parse_override(override)
        try:
            _apply_dict(tree, path, raw)
        except StepError as err:
            raise StepError(f"{source}: override {override!r}: {err}") from None


def _apply_dict(tree: Dict[str, Any], path: str, raw: str) -> None:
    node: Any = tree
    segments = parse_path(path)
    for depth, segment in enumerate(segments):
        here = format_path(segments[: depth + 1])
        if not isinstance(node, dict):
            raise StepError(f"{format_path(segments[:depth])} is not a section, so it has no {segment.name}")
        if segment.name not in node:
            raise StepError(
                f"{segment.name} is not a field of {format_path(segments[:depth]) or 'the spec'}; "
                f"valid fields: {', '.join(str(key) for key in node) or 'none'}"
            )
        if segment.key is not None:
            raise StepError(f"{here}: YAML/JSON lists take an [index], not a [key]")
        container, slot = node, segment.name
        node = node[segment.name]
        if segment.index is not None:
            if not isinstance(node, list):
                raise StepError(f"{here}: {segment.name} is not a list, so it takes no [index]")
            if segment.index >= len(node):
                raise StepError(f"{here}: {segment.name} has {len(node)} items, so index {segment.index} "
                                "does not exist")
            container, slot = node, segment.index
            node = node[segment.index]
    container[slot] = _typed_like(node, raw, path)


def _typed_like(old: Any, raw: str, path: str) -> Any:
    if isinstance(old, dict):
        raise StepError(f"{path} is a section; set one of its fields: {', '.join(str(k) for k in old)}")
    if isinstance(old, list):
        try:
            new = yaml12_value(raw)
        except yaml.YAMLError:
            new = None
        if not isinstance(new, list):
            raise StepError(f"{path}={raw}: expected a list such as [1, 2], like the template's {old!r}")
        kinds = {_kind(item) for item in old}
        if len(kinds) == 1 and old:
            for item in new:
                _check_kind(old[0], item, path, raw)
        return _finite(new, path, raw)
    text = raw.strip()
    if old is None:
        return _typed_null(path, raw)
    if isinstance(old, bool):
        if text.lower() not in ("true", "false"):
            raise StepError(f"{path}={raw}: expected true or false, like the template's {old}")
        return text.lower() == "true"
    if isinstance(old, int):
        if not re.match(r"[+-]?\d+$", text):
            raise StepError(f"{path}={raw}: expected a whole number, like the template's {old}")
        return int(text)
    if isinstance(old, float):
        if not re.match(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", text):
            raise StepError(f"{path}={raw}: expected a number, like the template's {old}")
        if not math.isfinite(float(text)):  # 1.0e999 matches and is infinity
            raise StepError(f"{path}={raw}: expected a finite number, like the template's {old}")
        return float(text)
    return raw


# Fields a BodyPose template leaves null that a user may set: whole numbers of at least 1 (a null gives
# no type to check against). Null path fields are the steps' (refused before this). Read from
# NVIDIA/tao_tensorflow1_backend, nvidia_tao_tf1/cv/bpnet/.
_NULL_FIELDS: Dict[str, str] = {
    # inferencer/bpnet_inferencer.py: output_blobs[output_stage_to_use - 1]; null means the last stage.
    "output_stage_to_use": "a stage number of at least 1",
}
# Null fields an override may not set, and why.
_NULL_REFUSED: Dict[str, str] = {
    # dataloaders/processors/augmentation.py: AugmentationConfig.__init__ takes it into **kwargs and
    # builds the identity parameters from its own defaults.
    "dataloader.augmentation_config.identity_spatial_aug_params":
        "TAO 5.0 bpnet ignores it (augmentation.py builds the identity parameters from its defaults)",
    # trainers/bpnet_trainer.py writes num_epoch x steps per epoch over a SoftstartAnnealing schedule's.
    "optimizer.learning_rate_schedule.last_step":
        "TAO 5.0 bpnet sets it itself to num_epoch x steps per epoch (trainers/bpnet_trainer.py)",
    # trainers/bpnet_trainer.py: set_grad_weights_dict(lr_mult) after the optimizer is built.
    "optimizer.grad_weights_dict":
        "TAO 5.0 bpnet replaces it with its stage-wise multipliers (use_stagewise_lr_multipliers) or none",
    # trainers/bpnet_trainer.py reads it only with is_finetune_exp, from the node's file system.
    "finetuning_config.checkpoint_path":
        "a checkpoint path on the GPU node, which a user cannot know; resume with the resume_from input",
}


def _typed_null(path: str, raw: str) -> Any:
    """A value for a field the template leaves null, typed by _NULL_FIELDS; other null fields are refused."""
    field = _without_indexes(path)
    if field in _NULL_REFUSED:
        raise StepError(f"{path} cannot be overridden: {_NULL_REFUSED[field]}")
    if field not in _NULL_FIELDS:
        raise StepError(f"{path} is null in the template, so no type is known to check a value against; "
                        f"null fields that take overrides: {', '.join(_NULL_FIELDS)}")
    try:
        value = yaml12_value(raw)
    except yaml.YAMLError:
        value = raw
    if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise StepError(f"{path}={raw}: expected {_NULL_FIELDS[field]}, or null")
    return value


def _finite(value: Any, path: str, raw: str) -> Any:
    """`value`, refused when it holds YAML's .inf or .nan (or 1.0e+999) anywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        raise StepError(f"{path}={raw}: {value!r} is not a finite number")
    for item in value if isinstance(value, list) else value.values() if isinstance(value, dict) else ():
        _finite(item, path, raw)
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, float) else "int"
    return type(value).__name__


def _check_kind(example: Any, item: Any, path: str, raw: str) -> None:
    old, new = _kind(example), _kind(item)
    if old == new or (old == "number" and new == "int"):
        return
    raise StepError(f"{path}={raw}: {item!r} is a {new}, but the template's items are {old}s "
                    f"(like {example!r})")
