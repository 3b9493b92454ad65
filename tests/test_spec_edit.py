"""TAO 5.0 detectnet_v2 schema checks, spec overrides, class lists, and the dict-tree variant."""

import re
import sys
import types
from pathlib import Path

import pytest

from tao_aml.steps.common import StepError
from tao_aml.steps.specs import detectnet_v2_schema as schema
from tao_aml.steps.specs.prototext import Enum, Message, format, parse
from tao_aml.steps.specs.spec_edit import (
    PATH_FIELDS,
    apply_dict_overrides,
    apply_overrides,
    parse_override,
    set_classes,
    set_inference_classes,
    yaml12_value,
)

SPECS = Path(__file__).resolve().parents[1] / "src" / "tao_aml" / "templates" / "facenet"
TEMPLATES = {
    "facenet_tfrecords_kitti_train.txt": "DatasetExportConfig",
    "facenet_tfrecords_kitti_val.txt": "DatasetExportConfig",
    "facenet_train_resnet18_kitti.txt": "Experiment",
    "facenet_retrain_resnet18_kitti.txt": "Experiment",
    "facenet_inference_kitti_tlt.txt": "Inference",
}


def template(name: str) -> Message:
    return parse((SPECS / name).read_text(encoding="utf-8"), name)


# ---------------------------------------------------------------- templates

def test_every_template_is_listed_here() -> None:
    assert sorted(p.name for p in SPECS.glob("*.txt")) == sorted(TEMPLATES)


@pytest.mark.parametrize("name, root", sorted(TEMPLATES.items()))
def test_templates_are_valid_and_hold_no_paths(name: str, root: str) -> None:
    tree = template(name)
    assert schema.validate(tree, root, name) == []
    for path in PATH_FIELDS[root]:
        assert tree.get_all(path) == [], f"{name} sets {path}; the step writes it at run time"
    assert "/workspace" not in (SPECS / name).read_text(encoding="utf-8")


def test_templates_hold_the_notebook_tunables() -> None:
    train = template("facenet_train_resnet18_kitti.txt")
    retrain = template("facenet_retrain_resnet18_kitti.txt")
    for tree in (train, retrain):
        assert tree.get("augmentation_config.preprocessing.output_image_width") == 736
        assert tree.get("augmentation_config.preprocessing.output_image_height") == 416
        assert tree.get("augmentation_config.preprocessing.output_image_channel") == 3
        assert tree.get("cost_function_config.target_classes.name") == "face"
        assert tree.get("model_config.load_graph") is True
    assert train.get("training_config.num_epochs") == 100
    assert retrain.get("training_config.num_epochs") == 50
    assert retrain.get("training_config.regularizer.type") == Enum("NO_REG")
    inference = template("facenet_inference_kitti_tlt.txt")
    assert inference.get_all("inferencer_config.target_classes") == ["face"]
    assert inference.get("inferencer_config.tlt_config") == Message()


@pytest.mark.parametrize("root, paths", sorted(PATH_FIELDS.items()))
def test_path_fields_are_string_fields_of_the_schema(root: str, paths: list[str]) -> None:
    for path in paths:
        assert schema.resolve(root, path).type == "string"


# ---------------------------------------------------------------- validate

def problems(text: str, root: str = "Experiment") -> list[str]:
    return schema.validate(parse(text), root, "spec.txt")


def test_unknown_field_lists_valid_names() -> None:
    assert problems('dataset_config { data_sources { tfrecords_pth: "x" } }') == [
        "spec.txt: dataset_config.data_sources[0].tfrecords_pth: unknown field of DataSource; "
        "valid fields: tfrecords_path, image_directory_path, source_weight"
    ]


def test_dbscan_min_samples_float_is_refused_as_tao_5_does() -> None:
    text = """postprocessing_config { target_class_config { key: "face" value {
                clustering_config { dbscan_min_samples: 0.03 } } } }"""
    assert problems(text) == [
        "spec.txt: postprocessing_config.target_class_config[0].value.clustering_config.dbscan_min_samples: "
        "expects int32, got float 0.03 (TAO 5.0 made it an integer; older specs used floats)"
    ]


@pytest.mark.parametrize(
    "text, root, problem",
    [
        ('training_config { num_epochs: "10" }', "Experiment",
         "training_config.num_epochs: expects uint32, got string '10'"),
        ("training_config { num_epochs: 1.0 }", "Experiment",
         "training_config.num_epochs: expects uint32, got float 1.0"),
        ("training_config { num_epochs: -1 }", "Experiment",
         "training_config.num_epochs: expects uint32, -1 is out of range"),
        ('augmentation_config { spatial_augmentation { zoom_min: "0.5" } }', "Experiment",
         "augmentation_config.spatial_augmentation.zoom_min: expects float, got string '0.5'"),
        ("augmentation_config { spatial_augmentation { zoom_min: true } }", "Experiment",
         "augmentation_config.spatial_augmentation.zoom_min: expects float, got bool true"),
        ("model_config { arch: resnet }", "Experiment",
         "model_config.arch: expects string (a quoted text), got identifier resnet"),
        ("model_config { load_graph: 2 }", "Experiment",
         "model_config.load_graph: expects bool (true or false), got integer 2"),
        ("model_config { num_layers { x: 1 } }", "Experiment",
         "model_config.num_layers: expects int32, got a message { ... }"),
        ("model_config: 3", "Experiment",
         "model_config: is a message (ModelConfig): write model_config { ... }, not a value (integer 3)"),
        ("evaluation_config { average_precision_mode: AVERAGE }", "Experiment",
         "evaluation_config.average_precision_mode: expects enum EvaluationConfig.AP_MODE, one of SAMPLE, "
         "INTEGRATE; got identifier AVERAGE"),
        ('evaluation_config { average_precision_mode: "SAMPLE" }', "Experiment",
         "evaluation_config.average_precision_mode: expects enum EvaluationConfig.AP_MODE, one of SAMPLE, "
         "INTEGRATE; got string 'SAMPLE'"),
        ("training_config { num_epochs: 1 num_epochs: 2 }", "Experiment",
         "training_config.num_epochs: set more than once, but TrainingConfig.num_epochs is not repeated"),
        ('kitti_config { root_directory_path: "a" } coco_config { root_directory_path: "b" }',
         "DatasetExportConfig",
         "DatasetExportConfig: coco_config and kitti_config are both set, but they are alternatives (oneof "
         "convert_config_type); keep one"),
        ("dataset_config { validation_fold: 0 validation_data_source { } }", "Experiment",
         "dataset_config: validation_fold and validation_data_source are both set, but they are alternatives "
         "(oneof dataset_split_type); keep one"),
        ('inferencer_config { tlt_config { model: "m" } tensorrt_config { trt_engine: "e" } }', "Inference",
         "inferencer_config: tlt_config and tensorrt_config are both set, but they are alternatives "
         "(oneof model_config_type); keep one"),
        ('evaluation_config { minimum_detection_ground_truth_overlap { key: "face" value: 0.5 } '
         'minimum_detection_ground_truth_overlap { key: "face" value: 0.7 } }', "Experiment",
         "evaluation_config.minimum_detection_ground_truth_overlap[1]: key 'face' already appears in "
         "minimum_detection_ground_truth_overlap[0]"),
        ('bbox_handler_config { classwise_bbox_handler_config { key: "face" value: 1 } }', "Inference",
         "bbox_handler_config.classwise_bbox_handler_config[0].value: is a message "
         "(ClasswiseBboxHandlerConfig): write value { ... }, not a value (integer 1)"),
    ],
)
def test_each_kind_of_problem(text: str, root: str, problem: str) -> None:
    assert problems(text, root) == ["spec.txt: " + problem]


def test_accepted_spellings() -> None:
    text = """
      training_config { num_epochs: 10 learning_rate { soft_start_annealing_schedule { soft_start: 1 } } }
      model_config { load_graph: 1 freeze_blocks: [0, 1] training_precision { backend_floatx: 1 } }
      evaluation_config { average_precision_mode: SAMPLE }
    """
    assert problems(text) == []


def test_validate_reports_every_problem_and_refuses_unknown_root() -> None:
    found = problems("random_seed: -1 bogus: 1 model_config { arch: 1 }")
    assert len(found) == 3
    with pytest.raises(StepError, match="unknown spec root 'Train'; expected one of Experiment, "
                                        "DatasetExportConfig, Inference"):
        schema.validate(Message(), "Train", "x")


# ---------------------------------------------------------------- coerce and overrides

@pytest.mark.parametrize(
    "path, raw, value",
    [
        ("training_config.batch_size_per_gpu", "16", 16),
        ("random_seed", " 7 ", 7),
        ("training_config.learning_rate.soft_start_annealing_schedule.min_learning_rate", "5e-7", 5e-07),
        ("augmentation_config.spatial_augmentation.zoom_min", "1", 1.0),
        ("model_config.load_graph", "False", False),
        ("training_config.enable_qat", "true", True),
        ("evaluation_config.average_precision_mode", "SAMPLE", Enum("SAMPLE")),
        ("model_config.arch", " resnet", " resnet"),
        ("model_config.freeze_blocks", "[0, 1.5]", [0.0, 1.5]),
        ("model_config.freeze_blocks", "[]", []),
        ("postprocessing_config.target_class_config[face].value.clustering_config.dbscan_min_samples",
         "2", 2),
    ],
)
def test_coerce(path: str, raw: str, value: object) -> None:
    assert schema.coerce("Experiment", path, raw) == value


@pytest.mark.parametrize(
    "path, raw, message",
    [
        ("training_config.num_epochs", "1.5",
         "training_config.num_epochs=1.5: expected a whole number for uint32"),
        ("training_config.num_epochs", "-2",
         "training_config.num_epochs=-2: expected a whole number from 0 to 4294967295 for uint32"),
        ("postprocessing_config.target_class_config.value.clustering_config.dbscan_min_samples", "0.03",
         "postprocessing_config.target_class_config.value.clustering_config.dbscan_min_samples=0.03: "
         "expected a whole number for int32"),
        ("augmentation_config.spatial_augmentation.zoom_min", "big",
         "augmentation_config.spatial_augmentation.zoom_min=big: expected a number such as 0.5 or 5e-06 "
         "for float"),
        ("augmentation_config.spatial_augmentation.zoom_min", "nan",
         "augmentation_config.spatial_augmentation.zoom_min=nan: expected a number such as 0.5 or 5e-06 "
         "for float"),
        ("model_config.load_graph", "yes", "model_config.load_graph=yes: expected true or false for bool"),
        ("evaluation_config.average_precision_mode", "sample",
         "evaluation_config.average_precision_mode=sample: expected one of SAMPLE, INTEGRATE for enum "
         "EvaluationConfig.AP_MODE (SAMPLE, INTEGRATE)"),
        ("model_config.objective_set", "1",
         "model_config.objective_set is a message ModelConfig.ObjectiveSet, not a value; set one of its "
         "fields: bbox, cov"),
        ("training_config.batch_size", "1",
         "training_config.batch_size: batch_size is not a field of training_config (TrainingConfig); valid "
         "fields: batch_size_per_gpu, num_epochs, learning_rate, regularizer, optimizer, cost_scaling, "
         "checkpoint_interval, enable_qat, visualizer"),
        ("training_config.num_epochs.x", "1",
         "training_config.num_epochs.x: training_config.num_epochs is a uint32, not a message, so it has no "
         "field x"),
        ("model_config[0].arch", "x", "model_config[0].arch: model_config is not repeated, so it takes no "
                                      "[index] or [key]"),
        ("model_config.freeze_blocks", "[1, 2", "model_config.freeze_blocks=[1, 2: a list must end with ']'"),
    ],
)
def test_coerce_errors_name_path_and_expected_type(path: str, raw: str, message: str) -> None:
    with pytest.raises(StepError) as err:
        schema.coerce("Experiment", path, raw)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("training_config.batch_size_per_gpu=16", ("training_config.batch_size_per_gpu", "16")),
        (" a.b[0].c = x=y ", ("a.b[0].c", " x=y ")),
        ("model_config.arch=", ("model_config.arch", "")),
    ],
)
def test_parse_override(text: str, expected: object) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("training_config.batch_size_per_gpu", "expected <field path>=<value>"),
        ("=16", "expected <field path>=<value>"),
        ("training config.x=1", "bad field path 'training config.x'"),
        ("a..b=1", "bad field path 'a..b'"),
    ],
)
def test_parse_override_errors(text: str, message: str) -> None:
    with pytest.raises(StepError) as err:
        parse_override(text)
    assert str(err.value).startswith(f"override {text!r}: {message}")


def test_apply_overrides_of_each_type_and_creation() -> None:
    tree = template("facenet_train_resnet18_kitti.txt")
    apply_overrides(tree, "Experiment", [
        "training_config.batch_size_per_gpu=16",
        "training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate=1e-4",
        "model_config.freeze_bn=true",
        "training_config.regularizer.type=L2",
        "model_config.arch=resnet",
        "postprocessing_config.target_class_config[face].value.clustering_config.dbscan_eps=0.2",
        "model_config.freeze_blocks=[0, 1]",
        "training_config.visualizer.num_images=3",
        "dataset_config.data_sources.source_weight=1",
    ], "--overrides")
    assert tree.get("training_config.batch_size_per_gpu") == 16
    assert tree.get("training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate") == 1e-4
    assert tree.get("model_config.freeze_bn") is True
    assert tree.get("training_config.regularizer.type") == Enum("L2")
    assert tree.get("postprocessing_config.target_class_config[face].value.clustering_config") == Message(
        [("clustering_algorithm", Enum("DBSCAN")), ("dbscan_confidence_threshold", 0.9),
         ("coverage_threshold", 0.004), ("dbscan_eps", 0.2), ("dbscan_min_samples", 1),
         ("minimum_bounding_box_height", 4)]
    )
    assert tree.get_all("model_config.freeze_blocks") == [0.0, 1.0]
    # absent in the template, known to the schema: created, with the messages on the way
    assert tree.get("training_config.visualizer") == Message([("num_images", 3)])
    assert tree.get("dataset_config.data_sources.source_weight") == 1.0
    assert schema.validate(tree, "Experiment", "t") == []
    assert "  batch_size_per_gpu: 16\n" in format(tree)


def test_apply_overrides_on_repeated_scalars() -> None:
    tree = template("facenet_inference_kitti_tlt.txt")
    apply_overrides(tree, "Inference", ["inferencer_config.target_classes=[face, 'mask']"], "o")
    assert tree.get_all("inferencer_config.target_classes") == ["face", "mask"]
    apply_overrides(tree, "Inference", ["inferencer_config.target_classes[1]=person"], "o")
    assert tree.get_all("inferencer_config.target_classes") == ["face", "person"]
    apply_overrides(tree, "Inference", ["inferencer_config.target_classes=face"], "o")
    assert tree.get_all("inferencer_config.target_classes") == ["face"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("training_config.num_epoch=3",
         "src: override 'training_config.num_epoch=3': training_config.num_epoch: num_epoch is not a "
         "field of training_config (TrainingConfig); valid fields: batch_size_per_gpu, num_epochs,"),
        ("trainig_config.num_epochs=3",
         "src: override 'trainig_config.num_epochs=3': trainig_config.num_epochs: trainig_config is not a "
         "field of Experiment; valid fields: random_seed, dataset_config,"),
        ("training_config.num_epochs=ten",
         "src: override 'training_config.num_epochs=ten': training_config.num_epochs=ten: expected a whole "
         "number for uint32"),
        ("cost_function_config.target_classes[person].class_weight=2",
         "src: override 'cost_function_config.target_classes[person].class_weight=2': "
         "cost_function_config.target_classes[person].class_weight: target_classes has no entry with key "
         '"person"; keys present: "face"'),
        ("cost_function_config.target_classes.objectives.initial_weight=2",
         "src: override 'cost_function_config.target_classes.objectives.initial_weight=2': "
         "cost_function_config.target_classes.objectives.initial_weight: objectives is repeated (2 entries "
         "here); say which one with [index]"),
        ("model_config.num_layers=[18]",
         "src: override 'model_config.num_layers=[18]': model_config.num_layers=[18]: expected a whole "
         "number"),
    ],
)
def test_apply_overrides_errors(override: str, message: str) -> None:
    tree = template("facenet_train_resnet18_kitti.txt")
    with pytest.raises(StepError) as err:
        apply_overrides(tree, "Experiment", [override], "src")
    assert str(err.value).startswith(message)


# ---------------------------------------------------------------- classes

CLASS_SECTIONS = [
    ("cost_function_config.target_classes", "name"),
    ("postprocessing_config.target_class_config", "key"),
    ("evaluation_config.minimum_detection_ground_truth_overlap", "key"),
    ("evaluation_config.evaluation_box_config", "key"),
    ("bbox_rasterizer_config.target_class_config", "key"),
]


def keys(tree: Message, path: str, key_field: str) -> list[str]:
    return [entry.get(key_field) for entry in tree.get_all(path)]


def test_set_classes_one_to_two_clones_the_first_class() -> None:
    tree = template("facenet_train_resnet18_kitti.txt")
    face_cost = tree.find_keyed("cost_function_config.target_classes", "face", "name")
    set_classes(tree, ["face", "mask"])
    for path, key_field in CLASS_SECTIONS:
        assert keys(tree, path, key_field) == ["face", "mask"], path
    mapping = [(e.get("key"), e.get("value")) for e in tree.get_all("dataset_config.target_class_mapping")]
    assert mapping == [("face", "face"), ("mask", "mask")]
    mask_cost = tree.find_keyed("cost_function_config.target_classes", "mask", "name")
    assert mask_cost is not None and face_cost is not None
    assert mask_cost.items()[1:] == face_cost.items()[1:]  # same tunables, new name
    mask_post = tree.find_keyed("postprocessing_config.target_class_config", "mask")
    assert mask_post is not None and mask_post.get("value.clustering_config.dbscan_eps") == 0.15
    assert schema.validate(tree, "Experiment", "t") == []
    # the sections stay where the template had them
    assert [n for n, _ in tree.get("evaluation_config").items()] == [
        "validation_period_during_training", "first_validation_epoch",
        "minimum_detection_ground_truth_overlap", "minimum_detection_ground_truth_overlap",
        "evaluation_box_config", "evaluation_box_config",
        "average_precision_mode"]


def test_set_classes_renames_and_drops() -> None:
    tree = template("facenet_train_resnet18_kitti.txt")
    set_classes(tree, ["face", "mask"])
    tree.set("cost_function_config.target_classes[mask].class_weight", 3.0)
    set_classes(tree, ["mask", "person"])
    for path, key_field in CLASS_SECTIONS:
        assert keys(tree, path, key_field) == ["mask", "person"], path
    assert tree.get("cost_function_config.target_classes[mask].class_weight") == 3.0  # kept, not re-cloned
    assert tree.get("cost_function_config.target_classes[person].class_weight") == 1.0  # cloned from "mask"
    assert keys(tree, "dataset_config.target_class_mapping", "key") == ["mask", "person"]


def test_set_classes_keeps_many_to_one_mapping_and_visualizer() -> None:
    tree = parse("""
      dataset_config { target_class_mapping { key: "car" value: "car" }
                       target_class_mapping { key: "van" value: "car" }
                       target_class_mapping { key: "cyclist" value: "bicycle" } }
      training_config { visualizer { target_class_config { key: "car" value { coverage_threshold: 0.1 } } } }
    """)
    set_classes(tree, ["car", "person"])
    mapping = [(e.get("key"), e.get("value")) for e in tree.get_all("dataset_config.target_class_mapping")]
    assert mapping == [("car", "car"), ("van", "car"), ("person", "person")]
    assert keys(tree, "training_config.visualizer.target_class_config", "key") == ["car", "person"]


@pytest.mark.parametrize(
    "classes, message",
    [
        ([], "the class list is empty: give at least one class name"),
        (["face", " "], "class names must be non-empty text, got ' ' in ['face', ' ']"),
        (["face", "mask", "face"], "class names must be unique; repeated: face"),
    ],
)
def test_set_classes_refuses_bad_lists(classes: list[str], message: str) -> None:
    with pytest.raises(StepError) as err:
        set_classes(template("facenet_train_resnet18_kitti.txt"), classes)
    assert str(err.value) == message


def test_set_classes_needs_an_entry_to_clone() -> None:
    with pytest.raises(StepError) as err:
        set_classes(parse("postprocessing_config { }"), ["face"])
    assert str(err.value) == ("postprocessing_config.target_class_config has no entry to copy for the "
                              "classes face; the template must hold one entry (for its first class)")


def test_set_inference_classes() -> None:
    tree = template("facenet_inference_kitti_tlt.txt")
    set_inference_classes(tree, ["face", "mask"])
    assert tree.get_all("inferencer_config.target_classes") == ["face", "mask"]
    handlers = tree.get_all("bbox_handler_config.classwise_bbox_handler_config")
    assert [h.get("key") for h in handlers] == ["face", "mask"]
    assert [h.get("value.output_map") for h in handlers] == ["face", "mask"]
    assert handlers[1].get("value.clustering_config.dbscan_eps") == 0.15
    assert schema.validate(tree, "Inference", "t") == []
    with_postproc = parse('bbox_handler_config { postproc_classes: "a" '
                          'classwise_bbox_handler_config { key: "a" value { output_map: "a" } } }')
    set_inference_classes(with_postproc, ["b"])
    assert with_postproc.get_all("bbox_handler_config.postproc_classes") == ["b"]
    assert with_postproc.get_all("inferencer_config.target_classes") == ["b"]


# ---------------------------------------------------------------- YAML / JSON trees

def bpnet_like() -> dict[str, object]:
    return {
        "checkpoint_n_epoch": 5,
        "optimizer": {"__class_name__": "WeightedMomentumOptimizer", "lr": 2.0e-5, "momentum": 0.9,
                      "learning_rate_schedule": {"last_step": None}},
        "output_stage_to_use": None,
        "use_amp": False,
        "model": {"stages": 6, "heat_channels": 19},
        "dataloader": {"image_dims": [368, 368, 3], "scales": [0.5, 1.0], "pose_config": {"x": None}},
        "stages": [{"kernel": 3}, {"kernel": 7}],
    }


def test_apply_dict_overrides_of_each_type() -> None:
    tree = bpnet_like()
    apply_dict_overrides(tree, [
        "checkpoint_n_epoch=10", "optimizer.lr=1e-4", "optimizer.momentum=1", "use_amp=True",
        "optimizer.__class_name__=Adam", "dataloader.image_dims=[288, 384, 3]", "dataloader.scales=[1, 1.5]",
        "stages[1].kernel=5", "output_stage_to_use=3",
    ], "train.yaml")
    assert tree["checkpoint_n_epoch"] == 10
    assert tree["optimizer"] == {"__class_name__": "Adam", "lr": 1e-4, "momentum": 1.0,
                                 "learning_rate_schedule": {"last_step": None}}
    assert tree["output_stage_to_use"] == 3
    assert isinstance(tree["optimizer"]["momentum"], float)
    assert tree["use_amp"] is True
    assert tree["dataloader"]["image_dims"] == [288, 384, 3]
    assert tree["dataloader"]["scales"] == [1, 1.5]
    assert tree["stages"] == [{"kernel": 3}, {"kernel": 5}]


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.learning_rate=1",
         "learning_rate is not a field of optimizer; valid fields: __class_name__, lr, momentum"),
        ("num_epoch=1", "num_epoch is not a field of the spec; valid fields: checkpoint_n_epoch, optimizer,"),
        ("checkpoint_n_epoch=2.5", "checkpoint_n_epoch=2.5: expected a whole number, like the template's 5"),
        ("optimizer.lr=fast", "optimizer.lr=fast: expected a number, like the template's 2e-05"),
        ("use_amp=1", "use_amp=1: expected true or false, like the template's False"),
        ("dataloader.image_dims=368", "dataloader.image_dims=368: expected a list such as [1, 2], like the "
                                      "template's [368, 368, 3]"),
        ("dataloader.image_dims=[1.5, 2]", "dataloader.image_dims=[1.5, 2]: 1.5 is a number, but the "
                                           "template's items are ints (like 368)"),
        ("model=1", "model is a section; set one of its fields: stages, heat_channels"),
        ("stages[2].kernel=1", "stages[2]: stages has 2 items, so index 2 does not exist"),
        ("model[0]=1", "model[0]: model is not a list, so it takes no [index]"),
        ("use_amp.x=1", "use_amp is not a section, so it has no x"),
    ],
)
def test_apply_dict_overrides_errors(override: str, message: str) -> None:
    with pytest.raises(StepError) as err:
        apply_dict_overrides(bpnet_like(), [override], "train.yaml")
    assert str(err.value).startswith(f"train.yaml: override {override!r}: {message}")


# ---------------------------------------------------------------- TAO's own schema

TAO_MODULES = [module for module, _ in schema._TAO_CLASSES.values()]


def test_validate_with_tao_outside_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in TAO_MODULES:
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules makes that import fail
    assert [schema.validate_with_tao("not { a spec", root, "x") for root in schema.ROOTS] == [[], [], []]
    with pytest.raises(StepError, match="unknown spec root 'Spec'"):
        schema.validate_with_tao("", "Spec", "x")


@pytest.mark.parametrize("missing", TAO_MODULES + ["google.protobuf.text_format"])
def test_validate_with_tao_is_silent_when_not_importable(
    fake_tao: dict[str, type], monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    bad = "inferencer_config { bogus: 1 } training_config { num_epochs: 1.5 } kitti_config { x: 1 }"
    assert all(schema.validate_with_tao(bad, root, "x") for root in schema.ROOTS)  # importable: refused
    monkeypatch.setitem(sys.modules, missing, None)
    module_root = {module: root for root, (module, _) in schema._TAO_CLASSES.items()}
    roots = [module_root[missing]] if missing in module_root else list(schema.ROOTS)
    for root in roots:
        assert schema.validate_with_tao(bad, root, "x") == []


def protobuf_classes_from_table() -> dict[str, type]:
    """Real protobuf message classes built from our own table, standing in for TAO's _pb2 modules."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory

    types_by_name = {
        "double": "TYPE_DOUBLE", "float": "TYPE_FLOAT", "int32": "TYPE_INT32", "uint32": "TYPE_UINT32",
        "int64": "TYPE_INT64", "uint64": "TYPE_UINT64", "bool": "TYPE_BOOL", "string": "TYPE_STRING",
    }
    proto = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="tao_aml_test_dnv2.proto", package="t", syntax="proto3")
    flat = {name: name.replace(".", "_") for name in schema.MESSAGES}
    built = {}
    for name, fields in schema.MESSAGES.items():
        message = file.message_type.add(name=flat[name])
        built[name] = message
        oneofs = schema.ONEOFS.get(name, {})
        for oneof in oneofs:
            message.oneof_decl.add(name=oneof)
        for number, field in enumerate(fields.values(), start=1):
            entry = message.field.add(name=field.name, number=number, json_name=field.name,
                                      label=proto.LABEL_REPEATED if field.repeated else proto.LABEL_OPTIONAL)
            if field.kind == "message":
                entry.type, entry.type_name = proto.TYPE_MESSAGE, ".t." + flat[field.type]
            elif field.kind == "enum":
                owner, enum = field.type.rsplit(".", 1)
                entry.type, entry.type_name = proto.TYPE_ENUM, f".t.{flat[owner]}.{enum}"
            else:
                entry.type = getattr(proto, types_by_name[field.type])
            for index, members in enumerate(oneofs.values()):
                if field.name in members:
                    entry.oneof_index = index
    for enum_name, values in schema.ENUMS.items():
        owner, enum = enum_name.rsplit(".", 1)
        enum_type = built[owner].enum_type.add(name=enum)
        for number, value in enumerate(values):
            enum_type.value.add(name=value, number=number)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {root: message_factory.GetMessageClass(pool.FindMessageTypeByName("t." + root))
            for root in schema.ROOTS}


@pytest.fixture
def fake_tao(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    classes = protobuf_classes_from_table()
    for root, (module_name, class_name) in schema._TAO_CLASSES.items():
        module = types.ModuleType(module_name)
        setattr(module, class_name, classes[root])
        monkeypatch.setitem(sys.modules, module_name, module)
    return classes


@pytest.mark.parametrize("name, root", sorted(TEMPLATES.items()))
def test_real_protobuf_reads_our_output_as_we_do(fake_tao: dict[str, type], name: str, root: str) -> None:
    from google.protobuf import text_format

    tree = template(name)
    if root == "Experiment":
        set_classes(tree, ["face", "mask"])
        apply_overrides(tree, root, ["training_config.learning_rate.soft_start_annealing_schedule."
                                     "min_learning_rate=5.2e-06", "model_config.freeze_blocks=[0, 1]"], "o")
    written = format(tree)
    assert schema.validate_with_tao(written, root, name) == []
    read = text_format.Merge(written, fake_tao[root]())
    # and the other way: protobuf's own writer's text is read by our parser and passes our checks
    assert schema.validate(parse(text_format.MessageToString(read)), root, name) == []
    if root == "Experiment":
        assert read.training_config.learning_rate.soft_start_annealing_schedule.min_learning_rate == \
            pytest.approx(5.2e-06, rel=1e-7)
        assert [c.name for c in read.cost_function_config.target_classes] == ["face", "mask"]


def test_real_protobuf_refuses_what_validate_refuses(fake_tao: dict[str, type]) -> None:
    text = ('postprocessing_config { target_class_config { key: "face" value { clustering_config { '
            'dbscan_min_samples: 0.03 } } } }')
    assert schema.validate(parse(text), "Experiment", "s")
    found = schema.validate_with_tao(text, "Experiment", "s")
    assert len(found) == 1
    assert found[0].startswith("s: TAO 5.0's Experiment schema refuses it: 1:")
    assert "dbscan_min_samples" in found[0]


# ---------------------------------------------------------------- YAML 1.2 numbers, null fields

@pytest.mark.parametrize(("text", "value"), [
    ("010", 10), ("-3", -3), ("1e-5", 1e-5), ("2.e-5", 2e-5), (".5", 0.5), ("true", True), ("null", None),
    # YAML 1.1 reads these as 8, 90, 3, 16, 8, True and 1000: in 1.2 they are text.
    ("1:30", "1:30"), ("0b11", "0b11"), ("0x10", "0x10"), ("0o10", "0o10"), ("yes", "yes"), ("1_000", "1_000"),
    ("[1, 010, 1e3]", [1, 10, 1000.0]),
])
def test_yaml12_value(text: str, value: object) -> None:
    read = yaml12_value(text)
    assert read == value and type(read) is type(value)


@pytest.mark.parametrize(("override", "message"), [
    ("dataloader.image_dims=[1:30, 368, 3]", "'1:30' is a str, but the template's items are ints"),
    ("dataloader.image_dims=[0b11, 368, 3]", "'0b11' is a str, but the template's items are ints"),
    ("dataloader.scales=[1e-5, 010]", None),
    ("optimizer.learning_rate_schedule.last_step=288100", "TAO 5.0 bpnet sets it itself"),
    ("output_stage_to_use=0", "output_stage_to_use=0: expected a stage number of at least 1, or null"),
    ("output_stage_to_use=1:30", "expected a stage number of at least 1"),
    ("dataloader.pose_config.x=abc", "dataloader.pose_config.x is null in the template, so no type is known"),
])
def test_dict_override_numbers_are_yaml12_and_null_fields_typed(override: str, message: str | None) -> None:
    tree = bpnet_like()
    if message is None:
        apply_dict_overrides(tree, [override], "train.yaml")
        assert tree["dataloader"]["scales"] == [1e-5, 10]
        return
    with pytest.raises(StepError, match=re.escape(message)):
        apply_dict_overrides(tree, [override], "train.yaml")


def test_null_fields_tao_ignores_are_refused() -> None:
    tree = {"dataloader": {"augmentation_config": {"identity_spatial_aug_params": None}},
            "finetuning_config": {"checkpoint_path": None}, "optimizer": {"grad_weights_dict": None}}
    with pytest.raises(StepError, match="replaces it with its stage-wise multipliers"):
        apply_dict_overrides(tree, ["optimizer.grad_weights_dict={conv1/kernel: 0.5}"], "train.yaml")
    with pytest.raises(StepError, match="TAO 5.0 bpnet ignores it"):
        apply_dict_overrides(tree, ["dataloader.augmentation_config.identity_spatial_aug_params={zoom_prob: 1}"],
                             "train.yaml")
    with pytest.raises(StepError, match="resume with the resume_from input"):
        apply_dict_overrides(tree, ["finetuning_config.checkpoint_path=/x.ckzip"], "train.yaml")


def test_step_owned_paths_are_refused_by_apply_overrides() -> None:
    """The same refusal offline (spec_check) and on the node (spec_files): apply_overrides holds it."""
    tree = parse('model_config { pretrained_model_file: "/a" }')
    with pytest.raises(StepError, match="model_config.pretrained_model_file is a path the step writes at run time"):
        apply_overrides(tree, "Experiment", ["model_config.pretrained_model_file=/elsewhere.tlt"], "overrides")
    with pytest.raises(StepError, match="is a path the step writes"):
        apply_overrides(tree, "Experiment", ["dataset_config.data_sources[0].tfrecords_path=/x"], "overrides")
