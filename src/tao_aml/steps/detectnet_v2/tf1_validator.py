"""TAO 5.0's own spec validator for detectnet_v2 specs, ported to the project's spec trees.

TAO's `load_experiment_spec` / `load_inference_spec` (nvidia_tao_tf1/cv/detectnet_v2/spec_handler/
spec_loader.py) run `SpecValidator` (nvidia_tao_tf1/cv/common/spec_validator.py) with the tables of
spec_handler/constants.py, transcribed below. A spec it refuses makes TAO print "Spec file validation
failed", write FAILURE to status.json and exit 0, so a spec the project ships for later use by TAO must
pass it. The rules, as TAO applies them:
- a *message* field named in the required list of its parent is set (a repeated one has an entry);
- every scalar field whose *name* is in the value table is checked, set or not (an unset proto3 scalar
  is 0, 0.0, "" or false), wherever in the spec it sits; a repeated one item by item;
- map fields with scalar values are skipped; map fields with message values are checked value by value.
TAO builds the validator without its optional-check table, so those checks never run; neither do they here.
"""

import operator
from typing import Any, Callable, Dict, List, Sequence, Tuple

from tao_aml.steps.specs import detectnet_v2_schema
from tao_aml.steps.specs.prototext import Enum, Message

Check = Tuple[str, Any]

_OPS: Dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, "=": operator.eq, "<": operator.lt, "!=": operator.ne, ">=": operator.ge,
    "<=": operator.le, "in": lambda a, b: a in b, "%": lambda a, b: operator.mod(a, b) == 0,
}

TRAINVAL_VALUE_CHECK: Dict[str, Sequence[Check]] = {
    "arch": [("!=", ""), ("in", ["resnet", "vgg", "darknet", "mobilenet_v1", "mobilenet_v2", "squeezenet",
                                 "googlenet", "efficientnet_b0"])],
    "num_layers": [(">=", 0)], "scale": [(">", 0)], "offset": [(">=", 0)],
    "cov_center_x": [(">=", 0), ("<=", 1.0)], "cov_center_y": [(">=", 0), ("<=", 1.0)],
    "cov_radius_x": [(">=", 0), ("<=", 1.0)], "cov_radius_y": [(">=", 0), ("<=", 1.0)],
    "bbox_min_radius": [(">=", 0), ("<=", 1.0)], "deadzone_radius": [(">=", 0), ("<=", 1.0)],
    "batch_size_per_gpu": [(">", 0)], "num_epochs": [(">", 0)], "min_learning_rate": [(">", 0)],
    "max_learning_rate": [(">", 0)], "soft_start": [(">=", 0), ("<", 1.0)], "annealing": [(">=", 0), ("<", 1.0)],
    "validation_period_during_training": [(">", 0)], "first_validation_epoch": [(">", 0)],
    "minimum_height": [(">=", 0)], "minimum_width": [(">=", 0)], "maximum_height": [(">", 0)],
    "maximum_width": [(">", 0)], "batch_size": [(">", 0)], "weight": [(">=", 0.0)],
    "coverage_threshold": [(">=", 0.), ("<=", 1.0)], "minimum_bounding_box_height": [(">=", 0.)],
    "confidence_threshold": [(">=", 0), ("<=", 1.0)], "nms_iou_threshold": [(">=", 0), ("<=", 1.0)],
    "nms_confidence_threshold": [(">=", 0), ("<=", 1.0)], "dbscan_eps": [(">=", 0), ("<=", 1.0)],
    "dbscan_min_samples": [(">=", 0), ("<=", 1.0)], "neighborhood_size": [(">=", 0), ("<=", 1.0)],
    "dbscan_confidence_threshold": [(">=", 0), ("<=", 1.0)], "min_bbox_width": [(">=", 0.0)],
    "min_bbox_height": [(">=", 0.0)], "output_image_width": [(">", 0), ("%", 16)],
    "output_image_height": [(">", 0), ("%", 16)], "output_channel": [("in", [1, 3])],
    "hflip_probability": [(">=", 0), ("<=", 1.0)], "vflip_probability": [(">=", 0), ("<=", 1.0)],
    "zoom_min": [(">=", 0)], "zoom_max": [(">=", 0)], "translate_max_x": [(">=", 0)],
    "translate_max_y": [(">=", 0)], "color_shift_stddev": [(">=", 0.0), ("<=", 1.0)],
    "hue_rotation_max": [(">=", 0)], "saturation_shift_max": [(">=", 0), ("<=", 1.0)],
    "contrast_scale_max": [(">=", 0), ("<=", 1.0)], "contrast_center": [(">=", 0), ("<=", 1.0)],
    "tfrecords_path": [("!=", "")], "image_directory_path": [("!=", "")], "initial_exponent": [(">", 0.0)],
    "increment": [(">", 0.0)], "decrement": [(">", 0.0)], "epsilon": [(">", 0.0)], "beta1": [(">", 0.0)],
    "beta2": [(">", 0.0)], "name": [("!=", "")], "class_weight": [(">=", 0.0)],
    "coverage_foreground_weight": [(">=", 0.0)], "initial_weight": [(">=", 0.0)], "weight_target": [(">=", 0.0)],
}
TRAINVAL_REQUIRED: Dict[str, List[str]] = {
    "augmentation_config": ["preprocessing"],
    "bbox_rasterizer_config": ["target_class_config", "dead_zone_radius"],
    "target_class_config": ["cov_center_x", "cov_center_y", "cov_radius_x", "cov_radius_y", "bbox_min_radius"],
    "training_config": ["num_epochs", "learning_rate", "regularizer", "optimizer", "cost_scaling"],
    "optimizer": ["adam"], "adam": ["epsilon", "beta", "gamma"],
    "cost_scaling": ["initial_exponent", "increment, decrement"],
    "evaluation_config": ["minimum_detection_ground_truth_overlap", "evaluation_box_config"],
    "cost_function_config": ["target_classes"],
    "target_classes": ["name", "class_weights", "coverage_foreground_weight", "objectives"],
    "objectives": ["name"], "postprocessing_config": ["target_class_config"],
    "clustering_config": ["coverage_threshold"],
    "soft_start_annealing_schedule": ["min_learning_rate", "max_learning_rate", "soft_start", "annealing"],
    "early_stopping_annealing_schedule": ["min_learning_rate", "max_learning_rate", "soft_start_epochs",
                                          "annealing_epochs", "patience_steps"],
    "dataset_config": ["data_sources", "target_class_mapping"],
    "data_sources": ["tfrecords_path", "image_directory_path"],
    "model_config": ["objective_set", "arch"], "objective_set": ["bbox", "cov"], "bbox": ["scale", "offset"],
}
TRAINVAL_TOP = ["model_config", "training_config", "evaluation_config", "cost_function_config",
                "augmentation_config", "bbox_rasterizer_config", "postprocessing_config", "dataset_config"]

INFERENCE_VALUE_CHECK: Dict[str, Sequence[Check]] = {
    "batch_size": [(">", 0)], "image_height": [(">", 0)], "image_width": [(">", 0)],
    "image_channels": [("in", [1, 3])], "calibration_cache": [("!=", "")],
    "coverage_threshold": [(">=", 0.), ("<=", 1.0)], "minimum_bounding_box_height": [(">=", 0.)],
}
INFERENCE_REQUIRED: Dict[str, List[str]] = {
    "inferencer_config": ["model_config_type", "batch_size", "image_height", "image_width", "image_channels",
                          "target_classes"],
    "tlt_config": ["model"], "calibrator_config": ["calibration_cache"],
    "bbox_handler_config": ["classwise_bbox_handler_config", "confidence_model", "output_map", "bbox_color",
                            "clustering_config"],
}
INFERENCE_TOP = ["inferencer_config", "bbox_handler_config"]

# spec root -> (top-level required messages, required messages by field name, value checks by field name)
SCHEMAS = {
    "Experiment": (TRAINVAL_TOP, TRAINVAL_REQUIRED, TRAINVAL_VALUE_CHECK),
    "Inference": (INFERENCE_TOP, INFERENCE_REQUIRED, INFERENCE_VALUE_CHECK),
}


def validate(tree: Message, root: str, source: str) -> List[str]:
    """What TAO 5.0's validator would refuse in `tree` (an Experiment or Inference spec), as messages."""
    top, required, checks = SCHEMAS[root]
    problems: List[str] = []
    _message(tree, root, top, required, checks, root, problems)
    return ["{}: {}".format(source, problem) for problem in problems]


def _default(kind: str, type_name: str) -> Any:
    if kind == "enum":
        return 0
    if type_name == "string":
        return ""
    if type_name == "bool":
        return False
    return 0


def _scalar(value: Any) -> Any:
    """An enum identifier compares by its number in TAO (protobuf returns ints for enums)."""
    return value.ident if isinstance(value, Enum) else value


def _message(msg: Message, message: str, required_here: List[str], required: Dict[str, List[str]],
             checks: Dict[str, Sequence[Check]], where: str, problems: List[str]) -> None:
    for name, field in detectnet_v2_schema.MESSAGES[message].items():
        values = msg.values(name)
        if field.kind == "message":
            if name in required_here and not values:
                problems.append("{}.{} should be set in experiment spec file.".format(where, name))
            if detectnet_v2_schema.is_map_entry(field.type):
                entry = detectnet_v2_schema.MESSAGES[field.type]["value"]
                if entry.kind != "message":
                    continue  # ScalarMapContainer: TAO leaves it to protobuf
                nested = [v.values("value")[0] for v in values if isinstance(v, Message) and v.values("value")]
                nested_type = entry.type
            else:
                nested, nested_type = values, field.type
            for index, value in enumerate(nested):
                if isinstance(value, Message):
                    label = "{}.{}[{}]".format(where, name, index) if field.repeated else "{}.{}".format(where, name)
                    _message(value, nested_type, required.get(name, []), required, checks, label, problems)
            continue
        if name not in checks:
            continue
        items = values if field.repeated else (values[-1:] or [_default(field.kind, field.type)])
        for value in items:
            for op, limit in checks[name]:
                if not _OPS[op](_scalar(value), limit):
                    problems.append("{}.{} should be {} {}. Wrong value: {!r}".format(
                        where, name, op, limit, _scalar(value)))
