"""Estimated GPU-hours: the dry run prints them per step, and the report prints the measured ones beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.render import rest_body
from tao_aml.azure.submit import build_job
from tao_aml.repo import gpu_time
from tao_aml.steps.asset import report

REPO = Path(__file__).resolve().parents[1]


def hours(settings: list[str], serverless: bool = False) -> dict[str, float | None]:
    return {step.name: step.gpu_hours for step in build_job("facenet", settings, serverless=serverless).steps}


def test_estimates_follow_epochs_images_precision_gpus_and_size() -> None:
    base = hours(["use_amp=false"])
    fixed = gpu_time.TABLE["tao_detectnet_v2_train"].fixed_s / 3600
    assert hours(["use_amp=false", "train_epochs=160"])["train"] - fixed == pytest.approx(2 * (base["train"] - fixed),
                                                                                         abs=0.002)
    assert hours(["use_amp=true"])["train"] < base["train"]
    cut = hours(["use_amp=false", "images_per_split=100"])["train"] - fixed
    assert cut == pytest.approx((base["train"] - fixed) * 100 / 12_880, abs=0.002)
    two = hours(["use_amp=false", "gpus_per_node=2", "gpu_compute=a100-x2"])["train"]  # a cluster of the user's own
    assert two > base["train"]  # shared at a loss
    t4 = hours(["use_amp=false", "gpu_instance_type=Standard_NC4as_T4_v3"], serverless=True)["train"]
    assert t4 == pytest.approx(base["train"] / gpu_time.GPU_SPEED["T4 16 GB"], rel=0.01)
    assert base["download_wider"] is None and base["report"] is None  # CPU steps hold no GPU


def test_every_gpu_component_has_an_estimate() -> None:
    for name in ("facenet", "bodypose", "detectnet_v2"):
        for step in build_job(name, []).steps:
            if step.compute_input == "gpu_compute":
                assert step.gpu_hours is not None, (name, step.name, step.component)


def test_the_report_step_receives_the_estimates(tmp_path: Path) -> None:
    built = build_job("facenet", [], out_dir=tmp_path)
    sent = rest_body(built.job)["properties"]["jobs"]["main"]["inputs"]["gpu_hours_estimate"]["value"]
    parsed = report.estimates(sent)
    by_step = {step.name: step.gpu_hours for step in built.steps}
    assert parsed["train"] == by_step["train"] and parsed["retrained_evaluation"] == by_step["evaluate_retrained"]
    assert set(parsed) == {"pretrained_evaluation", "train", "trained_evaluation", "prune", "retrain",
                           "retrained_evaluation", "export", "engine", "engine_evaluation", "inference"}


def test_dry_run_prints_the_estimates_and_their_total(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert submit(REPO, tmp_path, "facenet", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "tao_detectnet_v2_train, on gpu-cluster, 1 node x 1 GPU, 80 epochs, ~" in out and " GPU-h\n" in out
    assert "estimated GPU-hours used: " in out and "src/tao_aml/repo/gpu_time.py" in out


def test_report_prints_measured_beside_estimated(tmp_path: Path) -> None:
    train = tmp_path / "train"
    train.mkdir()
    (train / "status.json").write_text("\n".join(json.dumps(line) for line in [
        {"date": "1/1/2026", "time": "10:00:00", "status": "STARTED", "message": "Starting"},
        {"date": "1/1/2026", "time": "10:00:00", "status": "RUNNING", "epoch": 0, "max_epoch": 1,
         "time_per_epoch": "0:30:00"},
        {"date": "1/1/2026", "time": "11:00:00", "status": "SUCCESS", "message": "done"}]) + "\n")
    (train / "step_metrics.json").write_text(json.dumps({"family": "detectnet_v2", "task": "train",
                                                          "metrics": {"train/duration_s": 3600.0}}))
    out = tmp_path / "report"
    assert report.main(["--train", str(train), "--output_dir", str(out), "--gpu_hours_estimate", "train=0.5"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["time"]["train"]["estimated_gpu_hours"] == 0.5
    markdown = (out / "report.md").read_text()
    assert "| estimated GPU-hours | measured / estimated |" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| train |"))
    assert "| 0.5 |" in row and row.endswith(f"| {data['time']['train']['gpu_hours'] / 0.5:.2f}x |")


def test_a_malformed_estimate_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        report.build_parser().parse_args(["--output_dir", str(tmp_path), "--gpu_hours_estimate", "train=lots"])
    assert "'train=lots' is not STAGE=HOURS" in capsys.readouterr().err


def test_a_user_data_set_is_estimated_from_images_per_split_or_an_assumed_size() -> None:
    def train(settings):
        return {s.name: s.gpu_hours for s in build_job("detectnet_v2", ["use_amp=false", *settings]).steps}["train"]
    fixed = gpu_time.TABLE["tao_detectnet_v2_train"].fixed_s / 3600
    assumed, cut = train([]) - fixed, train(["images_per_split=100"]) - fixed
    assert cut == pytest.approx(assumed * 100 / gpu_time.ASSUMED_USER_IMAGES["train"], abs=0.002)
