"""TAO 5.0's detectnet_v2 spec schema, and checks of a spec tree against it.

The table is transcribed from the TAO 5.0 TF1 backend's .proto files
(nvidia_tao_tf1/cv/detectnet_v2/proto/*.proto and cv/common/proto/{wandb,clearml}_config.proto).
A field is written `type`, `repeated type` or `map<string, type>`; a type is a scalar, an enum of
ENUMS or a message of MESSAGES. Nested proto types are named `Outer.Inner`.

`validate` works anywhere (user side, CI). Inside the TAO container `validate_with_tao` also asks
TAO's own generated classes, which is the final word on what TAO will read.
"""

import importlib
import sys
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

from tao_aml.steps.common import StepError
from tao_aml.steps.specs.prototext import Enum, Message, Segment, Value, format_path, parse_path

_MESSAGES: Dict[str, Dict[str, str]] = {
    # experiment.proto
    "Experiment": {
        "random_seed": "uint32",
        "dataset_config": "DatasetConfig",
        "augmentation_config": "AugmentationConfig",
        "postprocessing_config": "PostProcessingConfig",
        "model_config": "ModelConfig",
        "evaluation_config": "EvaluationConfig",
        "cost_function_config": "CostFunctionConfig",
        "training_config": "TrainingConfig",
        "bbox_rasterizer_config": "BboxRasterizerConfig",
        "loss_mask_label_filter": "ObjectiveLabelFilter",
        "dataset_export_config": "repeated DatasetExportConfig",
    },
    # dataset_config.proto
    "DataSource": {
        "tfrecords_path": "string",
        "image_directory_path": "string",
        "source_weight": "float",
    },
    "DatasetConfig": {
        "data_sources": "repeated DataSource",
        "image_extension": "string",
        "target_class_mapping": "map<string, string>",
        "validation_fold": "uint32",
        "validation_data_source": "DataSource",
        "dataloader_mode": "DatasetConfig.DATALOADER_MODE",
        "sampling_mode": "DatasetConfig.SAMPLING_MODE",
    },
    # augmentation_config.proto
    "AugmentationConfig": {
        "preprocessing": "AugmentationConfig.Preprocessing",
        "spatial_augmentation": "AugmentationConfig.SpatialAugmentation",
        "color_augmentation": "AugmentationConfig.ColorAugmentation",
    },
    "AugmentationConfig.Preprocessing": {
        "output_image_width": "uint32",
        "output_image_height": "uint32",
        "output_image_min": "uint32",
        "output_image_max": "uint32",
        "enable_auto_resize": "bool",
        "output_image_channel": "uint32",
        "crop_left": "uint32",
        "crop_top": "uint32",
        "crop_right": "uint32",
        "crop_bottom": "uint32",
        "min_bbox_width": "float",
        "min_bbox_height": "float",
        "scale_width": "float",
        "scale_height": "float",
    },
    "AugmentationConfig.SpatialAugmentation": {
        "hflip_probability": "float",
        "vflip_probability": "float",
        "zoom_min": "float",
        "zoom_max": "float",
        "translate_max_x": "float",
        "translate_max_y": "float",
        "rotate_rad_max": "float",
        "rotate_probability": "float",
    },
    "AugmentationConfig.ColorAugmentation": {
        "color_shift_stddev": "float",
        "hue_rotation_max": "float",
        "saturation_shift_max": "float",
        "contrast_scale_max": "float",
        "contrast_center": "float",
    },
    # postprocessing_config.proto
    "ClusteringConfig": {
        "coverage_threshold": "float",
        "minimum_bounding_box_height": "int32",
        "clustering_algorithm": "ClusteringConfig.ClusteringAlgorithm",
        "dbscan_eps": "float",
        "dbscan_min_samples": "int32",  # a float in releases before 5.0
        "neighborhood_size": "int32",
        "dbscan_confidence_threshold": "float",
        "nms_iou_threshold": "float",
        "nms_confidence_threshold": "float",
    },
    "ConfidenceConfig": {
        "confidence_threshold": "float",
        "confidence_model_filename": "string",
        "normalization_mode": "string",
    },
    "PostProcessingConfig": {
        "target_class_config": "map<string, PostProcessingConfig.TargetClassConfig>",
    },
    "PostProcessingConfig.TargetClassConfig": {
        "clustering_config": "ClusteringConfig",
        "confidence_config": "ConfidenceConfig",
    },
    # model_config.proto
    "ModelConfig": {
        "pretrained_model_file": "string",
        "freeze_pretrained_layers": "bool",
        "allow_loaded_model_modification": "bool",
        "num_layers": "int32",
        "use_pooling": "bool",
        "use_batch_norm": "bool",
        "dropout_rate": "float",
        "activation": "ModelConfig.Activation",
        "objective_set": "ModelConfig.ObjectiveSet",
        "training_precision": "ModelConfig.TrainingPrecision",
        "freeze_bn": "bool",
        "freeze_blocks": "repeated float",
        "arch": "string",
        "load_graph": "bool",
        "all_projections": "bool",
    },
    "ModelConfig.Activation": {
        "activation_type": "string",
        "activation_parameters": "map<string, float>",
    },
    "ModelConfig.BboxObjective": {"input": "string", "scale": "float", "offset": "float"},
    "ModelConfig.CovObjective": {"input": "string"},
    "ModelConfig.ObjectiveSet": {"bbox": "ModelConfig.BboxObjective", "cov": "ModelConfig.CovObjective"},
    "ModelConfig.TrainingPrecision": {"backend_floatx": "ModelConfig.TrainingPrecision.BackendFloatx"},
    # evaluation_config.proto
    "EvaluationConfig": {
        "validation_period_during_training": "uint32",
        "first_validation_epoch": "uint32",
        "early_stopping_patience_steps": "uint32",
        "minimum_detection_ground_truth_overlap": "map<string, float>",
        "evaluation_box_config": "map<string, EvaluationConfig.EvaluationBoxConfig>",
        "average_precision_mode": "EvaluationConfig.AP_MODE",
    },
    "EvaluationConfig.EvaluationBoxConfig": {
        "minimum_height": "int32",
        "maximum_height": "int32",
        "minimum_width": "int32",
        "maximum_width": "int32",
    },
    # cost_function_config.proto
    "CostFunctionConfig": {
        "target_classes": "repeated CostFunctionConfig.TargetClass",
        "enable_autoweighting": "bool",
        "max_objective_weight": "float",
        "min_objective_weight": "float",
    },
    "CostFunctionConfig.TargetClass": {
        "name": "string",
        "class_weight": "float",
        "coverage_foreground_weight": "float",
        "objectives": "repeated CostFunctionConfig.TargetClass.Objective",
    },
    "CostFunctionConfig.TargetClass.Objective": {
        "name": "string",
        "initial_weight": "float",
        "weight_target": "float",
    },
    # training_config.proto and the configs it imports
    "TrainingConfig": {
        "batch_size_per_gpu": "uint32",
        "num_epochs": "uint32",
        "learning_rate": "LearningRateConfig",
        "regularizer": "RegularizerConfig",
        "optimizer": "OptimizerConfig",
        "cost_scaling": "CostScalingConfig",
        "checkpoint_interval": "uint32",
        "enable_qat": "bool",
        "visualizer": "VisualizerConfig",
    },
    "LearningRateConfig": {
        "soft_start_annealing_schedule": "SoftStartAnnealingScheduleConfig",
        "early_stopping_annealing_schedule": "EarlyStoppingAnnealingScheduleConfig",
    },
    "SoftStartAnnealingScheduleConfig": {
        "min_learning_rate": "float",
        "max_learning_rate": "float",
        "soft_start": "float",
        "annealing": "float",
    },
    "EarlyStoppingAnnealingScheduleConfig": {
        "min_learning_rate": "float",
        "max_learning_rate": "float",
        "soft_start_epochs": "uint32",
        "annealing_epochs": "uint32",
        "patience_steps": "uint32",
    },
    "RegularizerConfig": {"type": "RegularizerConfig.RegularizationType", "weight": "float"},
    "OptimizerConfig": {"adam": "AdamOptimizerConfig"},
    "AdamOptimizerConfig": {"epsilon": "float", "beta1": "float", "beta2": "float"},
    "CostScalingConfig": {
        "enabled": "bool",
        "initial_exponent": "double",
        "increment": "double",
        "decrement": "double",
    },
    "VisualizerConfig": {
        "enabled": "bool",
        "num_images": "uint32",
        "scalar_logging_frequency": "uint32",
        "infrequent_logging_frequency": "uint32",
        "target_class_config": "map<string, VisualizerConfig.TargetClassConfig>",
        "wandb_config": "WandBConfig",
        "clearml_config": "ClearMLConfig",
    },
    "VisualizerConfig.TargetClassConfig": {"coverage_threshold": "float"},
    "WandBConfig": {
        "enabled": "bool",
        "key": "string",
        "project": "string",
        "entity": "string",
        "reinit": "bool",
        "name": "string",
        "tags": "repeated string",
        "wandb_dir": "string",
        "notes": "string",
        "mode": "WandBConfig.MODE",
    },
    "ClearMLConfig": {
        "project": "string",
        "task": "string",
        "tags": "repeated string",
        "reuse_last_task_id": "bool",
        "continue_last_task": "bool",
        "deferred_init": "bool",
    },
    # bbox_rasterizer_config.proto
    "BboxRasterizerConfig": {
        "target_class_config": "map<string, BboxRasterizerConfig.TargetClassConfig>",
        "deadzone_radius": "float",
    },
    "BboxRasterizerConfig.TargetClassConfig": {
        "cov_center_x": "float",
        "cov_center_y": "float",
        "cov_radius_x": "float",
        "cov_radius_y": "float",
        "bbox_min_radius": "float",
    },
    # objective_label_filter.proto, label_filter.proto
    "ObjectiveLabelFilter": {
        "objective_label_filter_configs": "repeated ObjectiveLabelFilter.ObjectiveLabelFilterConfig",
        "mask_multiplier": "float",
        "preserve_ground_truth": "bool",
    },
    "ObjectiveLabelFilter.ObjectiveLabelFilterConfig": {
        "label_filter": "LabelFilter",
        "target_class_names": "repeated string",
        "objective_names": "repeated string",
    },
    "LabelFilter": {
        "bbox_dimensions_label_filter": "LabelFilter.BboxDimensionsLabelFilter",
        "bbox_crop_label_filter": "LabelFilter.BboxCropLabelFilter",
        "source_class_label_filter": "LabelFilter.SourceClassLabelFilter",
    },
    "LabelFilter.BboxDimensionsLabelFilter": {
        "min_width": "float",
        "min_height": "float",
        "max_width": "float",
        "max_height": "float",
    },
    "LabelFilter.BboxCropLabelFilter": {
        "crop_left": "float",
        "crop_right": "float",
        "crop_top": "float",
        "crop_bottom": "float",
    },
    "LabelFilter.SourceClassLabelFilter": {"source_class_names": "repeated string"},
    # dataset_export_config.proto, kitti_config.proto, coco_config.proto
    "DatasetExportConfig": {
        "coco_config": "COCOConfig",
        "kitti_config": "KITTIConfig",
        "sample_modifier_config": "DatasetExportConfig.SampleModifierConfig",
        "image_directory_path": "string",
        "target_class_mapping": "map<string, string>",
    },
    "DatasetExportConfig.SampleModifierConfig": {
        "filter_samples_containing_only": "repeated string",
        "dominant_target_classes": "repeated string",
        "minimum_target_class_imbalance": "map<string, float>",
        "num_duplicates": "uint32",
        "max_training_samples": "uint32",
        "source_to_target_class_mapping": "map<string, string>",
    },
    "KITTIConfig": {
        "root_directory_path": "string",
        "image_dir_name": "string",
        "label_dir_name": "string",
        "point_clouds_dir": "string",
        "calibrations_dir": "string",
        "kitti_sequence_to_frames_file": "string",
        "image_extension": "string",
        "num_partitions": "uint32",
        "num_shards": "uint32",
        "partition_mode": "string",
        "val_split": "float",
    },
    "COCOConfig": {
        "root_directory_path": "string",
        "img_dir_names": "repeated string",
        "annotation_files": "repeated string",
        "num_partitions": "uint32",
        "num_shards": "repeated uint32",
    },
    # inference.proto, inferencer_config.proto
    "Inference": {
        "inferencer_config": "InferencerConfig",
        "bbox_handler_config": "BboxHandlerConfig",
    },
    "InferencerConfig": {
        "tlt_config": "TLTConfig",
        "tensorrt_config": "TensorRTConfig",
        "input_nodes": "repeated string",
        "output_nodes": "repeated string",
        "batch_size": "int32",
        "image_height": "int32",
        "image_width": "int32",
        "image_channels": "int32",
        "gpu_index": "int32",
        "target_classes": "repeated string",
        "stride": "int32",
    },
    "TLTConfig": {"model": "string"},
    "TensorRTConfig": {
        "parser": "TensorRTConfig.Parser",
        "caffemodel": "string",
        "prototxt": "string",
        "uff_model": "string",
        "etlt_model": "string",
        "backend_data_type": "TensorRTConfig.BackendDataType",
        "save_engine": "bool",
        "trt_engine": "string",
        "calibrator_config": "CalibratorConfig",
    },
    "CalibratorConfig": {
        "calibration_cache": "string",
        "calibration_tensorfile": "string",
        "n_batches": "int32",
    },
    "BboxHandlerConfig": {
        "kitti_dump": "bool",
        "disable_overlay": "bool",
        "overlay_linewidth": "int32",
        "classwise_bbox_handler_config": "map<string, ClasswiseBboxHandlerConfig>",
        "postproc_classes": "repeated string",
        "wandb_config": "WandBConfig",
    },
    "ClasswiseBboxHandlerConfig": {
        "clustering_config": "ClusteringConfig",
        "confidence_model": "string",
        "output_map": "string",
        "bbox_color": "ClasswiseBboxHandlerConfig.BboxColor",
    },
    "ClasswiseBboxHandlerConfig.BboxColor": {"R": "int32", "G": "int32", "B": "int32"},
}

# Values in number order; every enum here numbers its values 0, 1, 2, ...
ENUMS: Dict[str, Tuple[str, ...]] = {
    "DatasetConfig.DATALOADER_MODE": ("MULTISOURCE", "LEGACY", "DEFAULT"),
    "DatasetConfig.SAMPLING_MODE": ("USER_DEFINED", "PROPORTIONAL", "UNIFORM"),
    "ClusteringConfig.ClusteringAlgorithm": ("DBSCAN", "NMS", "HYBRID"),
    "ModelConfig.TrainingPrecision.BackendFloatx": ("FLOAT32", "FLOAT16", "INVALID"),
    "EvaluationConfig.AP_MODE": ("SAMPLE", "INTEGRATE"),
    "RegularizerConfig.RegularizationType": ("NO_REG", "L1", "L2"),
    "WandBConfig.MODE": ("ONLINE", "OFFLINE", "DISABLED"),
    "TensorRTConfig.Parser": ("ETLT", "UFF", "CAFFE"),
    "TensorRTConfig.BackendDataType": ("FP32", "FP16", "INT8"),
}

# message -> oneof name -> its fields (at most one of them may be set)
ONEOFS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "DatasetConfig": {"dataset_split_type": ("validation_fold", "validation_data_source")},
    "DatasetExportConfig": {"convert_config_type": ("coco_config", "kitti_config")},
    "LearningRateConfig": {"learning_rate": ("soft_start_annealing_schedule",
                                             "early_stopping_annealing_schedule")},
    "OptimizerConfig": {"optimizer": ("adam",)},
    "LabelFilter": {"label_filter_params": ("bbox_dimensions_label_filter", "bbox_crop_label_filter",
                                            "source_class_label_filter")},
    "InferencerConfig": {"model_config_type": ("tlt_config", "tensorrt_config")},
}

ROOTS = ("Experiment", "DatasetExportConfig", "Inference")

# Where TAO's generated classes live inside the TAO 5.0 TF1 container.
_TAO_CLASSES = {
    "Experiment": ("nvidia_tao_tf1.cv.detectnet_v2.proto.experiment_pb2", "Experiment"),
    "DatasetExportConfig": ("nvidia_tao_tf1.cv.detectnet_v2.proto.dataset_export_config_pb2",
                            "DatasetExportConfig"),
    "Inference": ("nvidia_tao_tf1.cv.detectnet_v2.proto.inference_pb2", "Inference"),
}

_INTS = {"int32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1),
         "int64": (-2 ** 63, 2 ** 63 - 1), "uint64": (0, 2 ** 64 - 1)}
_FLOATS = ("float", "double")
FLOAT32_MAX = 3.4028234663852886e38


class Field(NamedTuple):
    name: str
    type: str  # a scalar (int32, float, bool, string, ...), an enum of ENUMS or a message of MESSAGES
    repeated: bool

    @property
    def kind(self) -> str:
        if self.type in ENUMS:
            return "enum"
        if self.type in MESSAGES:
            return "message"
        return "scalar"

    def describe(self) -> str:
        label = "repeated " if self.repeated else ""
        if self.kind == "enum":
            return f"{label}enum {self.type} ({', '.join(ENUMS[self.type])})"
        if self.kind == "message" and is_map_entry(self.type):
            entry = MESSAGES[self.type]
            return f"map<{entry['key'].type}, {entry['value'].type}>"
        if self.kind == "message":
            return f"{label}message {self.type}"
        return label + self.type


def _compile() -> Dict[str, Dict[str, Field]]:
    """Expand the table: resolve `repeated` and turn each map<K, V> into a repeated entry message."""
    compiled: Dict[str, Dict[str, Field]] = {}
    for message, fields in _MESSAGES.items():
        compiled[message] = {}
        for name, spec in fields.items():
            if spec.startswith("map<"):
                key, value = (part.strip() for part in spec[4:-1].split(","))
                entry = f"{message}.{name}Entry"
                compiled[entry] = {"key": Field("key", key, False), "value": Field("value", value, False)}
                compiled[message][name] = Field(name, entry, True)
            elif spec.startswith("repeated "):
                compiled[message][name] = Field(name, spec[len("repeated "):], True)
            else:
                compiled[message][name] = Field(name, spec, False)
    return compiled


MESSAGES = _compile()


def is_map_entry(message: str) -> bool:
    return message.endswith("Entry") and set(MESSAGES[message]) == {"key", "value"}


def field_names(message: str) -> str:
    return ", ".join(MESSAGES[message])


def _check_root(root: str) -> None:
    if root not in ROOTS:
        raise StepError(f"unknown spec root {root!r}; expected one of {', '.join(ROOTS)}")


def resolve(root: str, path: Union[str, List[Segment]]) -> Field:
    """The schema field a path names; StepError listing the valid names where a name is unknown."""
    _check_root(root)
    segments = parse_path(path) if isinstance(path, str) else path
    shown = path if isinstance(path, str) else format_path(path)
    message, field = root, None
    for depth, segment in enumerate(segments):
        if field is not None:
            if field.kind != "message":
                raise StepError(f"{shown}: {format_path(segments[:depth])} is a {field.describe()}, "
                                "not a message, so it has no field " + segment.name)
            message = field.type
        if segment.name not in MESSAGES[message]:
            raise StepError(
                f"{shown}: {segment.name} is not a field of {_where(segments[:depth], message)}; "
                f"valid fields: {field_names(message)}"
            )
        field = MESSAGES[message][segment.name]
        if (segment.index is not None or segment.key is not None) and not field.repeated:
            raise StepError(f"{shown}: {segment.name} is not repeated, so it takes no [index] or [key]")
    if field is None:
        raise StepError("empty field path")
    return field


def _where(segments: List[Segment], message: str) -> str:
    return f"{format_path(segments)} ({message})" if segments else message


# ---------------------------------------------------------------- validate

def _type_problem(field: Field, value: Value) -> Optional[str]:
    """Why `value` cannot be `field`'s type, or None when it can (as protobuf's text parser decides)."""
    if field.kind == "message":
        return None if isinstance(value, Message) else (
            f"is a message ({field.type}): write {field.name} {{ ... }}, not a value ({_show(value)})")
    if isinstance(value, Message):
        return f"expects {field.describe()}, got a message {{ ... }}"
    if field.kind == "enum":
        names = ENUMS[field.type]
        if isinstance(value, Enum) and value.ident in names:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
            return None
        return f"expects enum {field.type}, one of {', '.join(names)}; got {_show(value)}"
    if field.type in _INTS:
        if isinstance(value, int) and not isinstance(value, bool):
            low, high = _INTS[field.type]
            return None if low <= value <= high else f"expects {field.type}, {value} is out of range"
        extra = " (TAO 5.0 made it an integer; older specs used floats)" \
            if field.name == "dbscan_min_samples" and isinstance(value, float) else ""
        return f"expects {field.type}, got {_show(value)}{extra}"
    if field.type in _FLOATS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        return f"expects {field.type}, got {_show(value)}"
    if field.type == "bool":
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return None
        return f"expects bool (true or false), got {_show(value)}"
    if isinstance(value, str):
        return None
    return f"expects {field.type} (a quoted text), got {_show(value)}"


def _show(value: Value) -> str:
    if isinstance(value, bool):
        return f"bool {'true' if value else 'false'}"
    if isinstance(value, Enum):
        return f"identifier {value.ident}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    return "a message"


def validate(msg: Message, root: str, source: str) -> List[str]:
    """Every way `msg` breaks TAO 5.0's `root` schema, each as `source: field.path: problem`."""
    _check_root(root)
    problems: List[str] = []
    _validate(msg, root, [], source, problems)
    return problems


def _validate(msg: Message, message: str, at: List[Segment], source: str, problems: List[str]) -> None:
    schema = MESSAGES[message]
    seen: Dict[str, int] = {}
    keys: Dict[Tuple[str, str], int] = {}
    for name, value in msg.fields:
        count = seen.get(name, 0)
        seen[name] = count + 1
        field = schema.get(name)
        here = at + [Segment(name, count if field is not None and field.repeated else None)]
        where = f"{source}: {format_path(here)}"
        if field is None:
            problems.append(f"{where}: unknown field of {message}; valid fields: {field_names(message)}")
            continue
        if not field.repeated and count == 1:
            problems.append(f"{where}: set more than once, but {message}.{name} is not repeated")
        problem = _type_problem(field, value)
        if problem:
            problems.append(f"{where}: {problem}")
        elif isinstance(value, Message):
            _validate(value, field.type, here, source, problems)
            key = value.values("key") if is_map_entry(field.type) else []
            if len(key) == 1 and isinstance(key[0], str):
                first = keys.setdefault((name, key[0]), count)
                if first != count:
                    problems.append(f"{where}: key {key[0]!r} already appears in {name}[{first}]")
    for oneof, members in ONEOFS.get(message, {}).items():
        present = [member for member in members if member in seen]
        if len(present) > 1:
            problems.append(
                f"{source}: {format_path(at) or message}: {' and '.join(present)} are both set, but they are "
                f"alternatives (oneof {oneof}); keep one"
            )


def validate_with_tao(text: str, root: str, source: str) -> List[str]:
    """Parse `text` with TAO's own generated schema, as TAO does; [] when TAO is not importable."""
    _check_root(root)
    module_name, class_name = _TAO_CLASSES[root]
    try:
        text_format = importlib.import_module("google.protobuf.text_format")
        message_class = getattr(importlib.import_module(module_name), class_name)
    except ImportError:
        return []
    try:
        text_format.Merge(text, message_class())
    except text_format.ParseError as err:
        return [f"{source}: TAO 5.0's {root} schema refuses it: {err}"]
    return []


# ---------------------------------------------------------------- user overrides

def coerce(root: str, path: str, raw: str) -> Union[Value, List[Value]]:
    """Turn an override's text into the value `path` holds; a list `[a, b]` for a repeated scalar."""
    field = resolve(root, path)
    if field.kind == "message":
        raise StepError(
            f"{path} is a {field.describe()}, not a value; set one of its fields: {field_names(field.type)}"
        )
    text = raw.strip()
    last = parse_path(path)[-1]
    if field.repeated and last.index is None and last.key is None and text.startswith("["):
        if not text.endswith("]"):
            raise StepError(f"{path}={raw}: a list must end with ']'")
        items = [item.strip() for item in text[1:-1].split(",")] if text[1:-1].strip() else []
        return [_coerce_one(field, path, _unquote(item)) for item in items]
    return _coerce_one(field, path, raw if field.type == "string" else text)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _coerce_one(field: Field, path: str, text: str) -> Value:
    def refuse(expected: str) -> StepError:
        return StepError(f"{path}={text}: expected {expected} for {field.describe()}")

    if field.kind == "enum":
        if text not in ENUMS[field.type]:
            raise refuse("one of " + ", ".join(ENUMS[field.type]))
        return Enum(text)
    if field.type in _INTS:
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isdigit() or not digits.isascii():
            raise refuse("a whole number")
        value = int(text)
        low, high = _INTS[field.type]
        if not low <= value <= high:
            raise refuse(f"a whole number from {low} to {high}")
        return value
    if field.type in _FLOATS:
        try:
            if text.lower().lstrip("+-") in ("inf", "infinity", "nan") or "_" in text:
                raise ValueError(text)
            number = float(text)
        except ValueError:
            raise refuse("a number such as 0.5 or 5e-06") from None
        # 1e999 parses as infinity, and a float32 field turns anything beyond its range into one.
        if abs(number) > (FLOAT32_MAX if field.type == "float" else sys.float_info.max):
            raise refuse(f"a finite number (at most {FLOAT32_MAX:.7g} for float)")
        return number
    if field.type == "bool":
        if text.lower() not in ("true", "false"):
            raise refuse("true or false")
        return text.lower() == "true"
    return text
