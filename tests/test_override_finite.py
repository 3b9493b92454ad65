"""Spec overrides refuse numbers that parse as infinity or NaN, in every form (the checks had a hole there)."""

import pytest

from tao_aml.pipelines import Pipeline, SettingError, resolve_settings

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
