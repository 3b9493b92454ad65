"""TAO's status records and printed lines, as the stable metric names the README lists."""

import pytest

from tao_aml.steps.tao.metrics import TaskMetrics, duration_seconds, metric_name


def test_detectnet_training_hook_line() -> None:
    # task_progress_monitor_hook.write_status_json: numbers, epoch counted from 0.
    record = {"epoch": 3, "max_epoch": 80, "time_per_epoch": "0:01:02.500000", "eta": "1:20:00",
              "date": "1/2/2026", "time": "3:4:5", "status": "RUNNING", "verbosity": "INFO",
              "graphical": {"loss": 0.0123, "learning_rate": 5e-06}}
    assert TaskMetrics("train").from_record(record) == (
        {"train/loss": 0.0123, "train/learning_rate": 5e-06, "train/time_per_epoch_s": 62.5}, 3)


def test_keras_status_logger_line_with_strings() -> None:
    # cv/common/callbacks/loggers.py TAOStatusLogger: values are strings, epoch counted from 1.
    record = {"epoch": 2, "max_epoch": 10, "time_per_epoch": "1 day, 0:00:01", "status": "RUNNING",
              "graphical": {"loss": "0.5", "learning_rate": "0.001", "accuracy": "nan"},
              "kpi": {"mAP": "0.25"}}
    metrics, step = TaskMetrics("train").from_record(record)
    assert step == 2
    assert metrics == {"train/loss": 0.5, "train/learning_rate": 0.001, "train/time_per_epoch_s": 86401.0,
                       "train/mAP": 0.25}


def test_detectnet_evaluation_kpi_and_per_class_ap() -> None:
    record = {"status": "RUNNING", "message": "Evaluation metrics generated.",
              "kpi": {"validation cost": 0.0001, "mean average precision": 81.5},
              "categorical": {"average_precision": {"face": 81.5, "mask:on": 12.0}}}
    assert TaskMetrics("evaluate").from_record(record)[0] == {
        "eval/validation_cost": 0.0001, "eval/mAP": 81.5, "eval/AP_face": 81.5, "eval/AP_mask-on": 12.0}


def test_bpnet_evaluation_kpi() -> None:
    record = {"status": "RUNNING", "kpi": {"AP_0.50:0.95_all": 0.51, "AP_0.5": 0.77, "AR_0.50:0.95_large": 0.6}}
    assert TaskMetrics("evaluate").from_record(record)[0] == {
        "eval/AP_0.50-0.95_all": 0.51, "eval/AP_0.5": 0.77, "eval/AR_0.50-0.95_large": 0.6}


def test_detectnet_prune_kpi_gives_counts_before_and_after() -> None:
    record = {"kpi": {"pruning_ratio": 0.25, "size": 3.2, "param_count": 0.25}}  # millions, as get_num_params
    assert TaskMetrics("prune").from_record(record)[0] == {
        "prune/pruning_ratio": 0.25, "prune/model_size_mb": 3.2, "prune/param_count_after": 250000.0,
        "prune/param_count_before": 1000000.0}


def test_bpnet_prune_prints_its_counts() -> None:
    task = TaskMetrics("prune")
    lines = ["2026-01-01 INFO: Number of params in original model): 1000\n",
             "INFO: Number of params in pruned model): 400\n",
             "INFO: Pruning ratio (pruned model / original model): 0.4\n", "Execution status: PASS\n"]
    assert [task.from_output(text) for text in lines] == [
        {"prune/param_count_before": 1000.0}, {"prune/param_count_after": 400.0}, {"prune/pruning_ratio": 0.4}, {}]


def test_lines_without_metrics_give_none() -> None:
    assert TaskMetrics("train").from_record({"status": "STARTED", "message": "Starting"}) == ({}, 0)
    assert TaskMetrics("evaluate").from_record({"kpi": "not a dict", "categorical": []}) == ({}, 0)


@pytest.mark.parametrize("text,seconds", [("0:00:01", 1.0), ("12:34:56.5", 45296.5), ("2 days, 0:00:00", 172800.0),
                                          ("3.5", 3.5), ("soon", None)])
def test_durations(text: str, seconds) -> None:
    assert duration_seconds(text) == seconds


def test_names_are_safe_for_mlflow() -> None:
    assert metric_name("AP_0.50:0.95_all") == "AP_0.50-0.95_all"
    assert metric_name("my class (big)") == "my class _big_"
