"""Spec overrides and `--set` values are read as the GPU node reads them: finite, YAML 1.2 numbers, typed nulls."""

import pytest

from tao_aml.repo.pipelines import Pipeline, SettingError, resolve_settings

RATE = "train.training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate"


@pytest.mark.parametrize(("pipeline", "override", "message"), [
    ("facenet", f"{RATE}=1e999", "max_learning_rate=1e999: expected a finite number (at most 3.402823e+38 for float)"),
    # Finite as a double, infinite once TAO stores it in the float32 field.
    ("facenet", f"{RATE}=1e39", "max_learning_rate=1e39: expected a finite number"),
    ("bodypose", "train.optimizer.learning_rate_schedule.base_learning_rate=1.0e999",
     "base_learning_rate=1.0e999: expected a finite number, like the template's 2e-05"),
    ("bodypose", "train.dataloader.normalization_params.image_scale=[.inf, 256.0, 256.0]",
     "image_scale=[.inf, 256.0, 256.0]: inf is not a finite number"),
    ("bodypose", "train.dataloader.normalization_params.image_offset=[0.5, .nan, 0.5]", "nan is not a finite number"),
])
def test_infinite_and_nan_overrides_are_refused_offline(pipeline: str, override: str, message: str) -> None:
    with pytest.raises(SettingError) as refused:
        resolve_settings(Pipeline.load(pipeline), [override])
    assert message in str(refused.value)


def test_large_finite_values_still_pass() -> None:
    settings = resolve_settings(Pipeline.load("facenet"), [f"{RATE}=3e38"])
    assert settings.inputs["train_overrides"].endswith("max_learning_rate=3e38")


@pytest.mark.parametrize(("assignment", "message"), [
    # YAML 1.1 would read these as 8, 90 and 3 (or 10 epochs as the text "1e1"): YAML 1.2 reads numbers.
    ("train_epochs=1:30", "'1:30' is not an integer"),
    ("train_epochs=0b11", "'0b11' is not an integer"),
    ("grayscale=yes", "'yes' is not a boolean"),
    ("train.training_config.num_epochs=1:30", "num_epochs=1:30: expected a whole number"),
    # Refused on the node, so refused here: a path the step writes, a ';' that makes a second override.
    ("train.model_config.pretrained_model_file=/elsewhere.tlt", "is a path the step writes at run time"),
    ("train.model_config.arch=resnet;training_config.num_epochs=3", "a ';' in a value would split it"),
    ("train.model_config.arch=x'; touch /tmp/owned; echo '", "\"'\" is not allowed in any input value"),
])
def test_settings_are_read_as_the_node_reads_them(assignment: str, message: str) -> None:
    with pytest.raises(SettingError) as refused:
        resolve_settings(Pipeline.load("facenet"), [assignment])
    assert message in str(refused.value)


@pytest.mark.parametrize(("assignment", "name", "value"), [
    ("train_epochs=010", "train_epochs", 10), ("pruning_threshold=1e-5", "pruning_threshold", 1e-5),
    ("pruning_threshold=1", "pruning_threshold", 1.0),
])
def test_numbers_are_decimal(assignment: str, name: str, value: float) -> None:
    assert resolve_settings(Pipeline.load("facenet"), [assignment]).inputs[name] == value


def test_bodypose_null_fields_take_their_tao_type() -> None:
    refused_override = "inference.output_stage_to_use=abc"
    with pytest.raises(SettingError, match="expected a stage number of at least 1, or null"):
        resolve_settings(Pipeline.load("bodypose"), [refused_override])
    settings = resolve_settings(Pipeline.load("bodypose"), ["inference.output_stage_to_use=3"])
    assert settings.inputs["inference_overrides"] == "output_stage_to_use=3"
