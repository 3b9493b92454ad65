"""The run report from recorded BodyPoseNet step outputs (FaceNet's is checked in test_facenet_pipeline.py)."""

import json
import logging
from pathlib import Path

import pytest

from tao_aml.steps.asset import report
from tao_aml.steps.tao import tracking

BPNET_KPI = ["AP_0.50:0.95_all", "AP_0.5", "AP_0.75", "AP_0.50:0.95_medium", "AP_0.50:0.95_large",
             "AR_0.50:0.95_all", "AR_0.5", "AR_0.75", "AR_0.50:0.95_medium", "AR_0.50:0.95_large"]


def status(folder: Path, *records: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "status.json").write_text("".join(json.dumps(r) + "\n" for r in records))


def evaluation(folder: Path, ap: float, kpi_in_status: bool) -> None:
    values = {name: ap + i / 100 for i, name in enumerate(BPNET_KPI)}
    kpi = {"kpi": values} if kpi_in_status else {}
    status(folder, {"date": "1/2/2026", "time": "4:0:0", "status": "STARTED", "message": "Starting Evaluation."},
           dict({"date": "1/2/2026", "time": "4:1:30", "status": "RUNNING"}, **kpi),
           {"date": "1/2/2026", "time": "4:2:0", "status": "SUCCESS", "message": "Evaluation finished successfully."})
    # COCODataset.dump_coco_results_summary (cv/bpnet/dataio/coco_dataset.py): pandas' table, one stat a row.
    rows = [f"{i},{name[:2]},{iou},{area},20,{values[name]}"
            for i, (name, (iou, area)) in enumerate(zip(BPNET_KPI, 2 * [("0.50:0.95", "all"), ("0.50", "all"),
                                                                     ("0.75", "all"), ("0.50:0.95", "medium"),
                                                                     ("0.50:0.95", "large")], strict=True))]
    (folder / "results.csv").write_text(",metric,IoU,area,maxDets,score\n" + "\n".join(rows) + "\n")


def training(folder: Path, epochs: int, start_minute: int) -> None:
    # bpnet trains with Keras: TAOStatusLogger writes strings, epochs counted from 1.
    lines = [{"date": "1/2/2026", "time": f"3:{start_minute}:0", "status": "STARTED", "message": "Starting"}]
    for epoch in range(1, epochs + 1):
        lines.append({"date": "1/2/2026", "time": f"3:{start_minute + epoch}:0", "status": "RUNNING",
                      "epoch": epoch, "max_epoch": epochs, "time_per_epoch": f"0:01:0{epoch}",
                      "graphical": {"loss": str(1 / epoch), "learning_rate": "2e-05"}})
    lines.append({"date": "1/2/2026", "time": f"3:{start_minute + epochs}:30", "status": "SUCCESS",
                  "message": "BPnet training experimenent finished successfully."})
    status(folder, *lines)
    for epoch in range(1, epochs + 1):
        (folder / f"model.epoch-{epoch}.hdf5").write_bytes(b"c" * 1000)
    (folder / "bpnet_model.hdf5").write_bytes(b"m" * 3_000_000)


@pytest.fixture
def bpnet_outputs(tmp_path: Path) -> dict[str, Path]:
    out = {port: tmp_path / port for port, _, _ in report.STAGES}
    evaluation(out["pretrained_evaluation"], 0.40, kpi_in_status=True)
    training(out["train"], 2, 0)
    evaluation(out["trained_evaluation"], 0.50, kpi_in_status=True)
    # bpnet prune writes no kpi; tao.run recorded the counts TAO printed in step_metrics.json.
    status(out["prune"], {"status": "SUCCESS", "message": "Pruning finished successfully."})
    (out["prune"] / "model_pruned.hdf5").write_bytes(b"p" * 1_200_000)
    (out["prune"] / "step_metrics.json").write_text(json.dumps({"task": "prune", "family": "bpnet", "metrics": {
        "prune/param_count_before": 3_000_000, "prune/param_count_after": 1_200_000, "prune/pruning_ratio": 0.4,
        "prune/duration_s": 12.5}}))
    training(out["retrain"], 3, 20)
    evaluation(out["retrained_evaluation"], 0.48, kpi_in_status=False)  # results.csv only
    status(out["export"], {"status": "SUCCESS", "message": "Export finished successfully."})
    for name, size in (("model.onnx", 1_100_000), ("model.engine", 2_000_000), ("cal.bin", 4000)):
        (out["export"] / name).write_bytes(b"e" * size)
    (out["export"] / "engine.json").write_text(json.dumps({"engine_file": "model.engine", "data_type": "int8",
                                                           "max_batch_size": 1}))
    evaluation(out["engine_evaluation"], 0.47, kpi_in_status=True)  # bpnet evaluate of the export's engine
    del out["engine"]  # bpnet builds its engine in export: no engine step
    return out


def test_bpnet_report(tmp_path: Path, bpnet_outputs: dict[str, Path]) -> None:
    built = report.build_report({k: str(v) for k, v in bpnet_outputs.items()}, "BodyPoseNet", str(tmp_path / "r"),
                                training_gpus=8)
    on_disk = json.loads((tmp_path / "r" / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(built))
    assert [(row["model"], row["metric"], row["value"]) for row in on_disk["accuracy"]] == [
        ("pretrained", "eval/AP_0.50-0.95_all", 0.40), ("trained", "eval/AP_0.50-0.95_all", 0.50),
        ("pruned + retrained", "eval/AP_0.50-0.95_all", 0.48)]
    assert on_disk["accuracy"][2]["metrics"]["eval/AR_0.50-0.95_large"] == pytest.approx(0.57)
    assert on_disk["parameters"] == {"before_pruning": 3_000_000, "after_pruning": 1_200_000, "pruning_ratio": 0.4}
    sizes = {what: (info["file"], info["size_mb"]) for what, info in on_disk["sizes"].items()}
    assert sizes == {"trained model": ("bpnet_model.hdf5", 3.0), "pruned model": ("model_pruned.hdf5", 1.2),
                     "retrained model": ("bpnet_model.hdf5", 3.0), "exported calibration cache": ("cal.bin", 0.004),
                     "exported engine": ("model.engine", 2.0), "exported onnx": ("model.onnx", 1.1)}
    # GPU-hours: wall time x 8 GPUs (2 nodes x 4) for train and retrain, x 1 for every other stage.
    assert on_disk["time"]["train"] == {"duration_s": 150.0, "epochs": 2, "time_per_epoch_s": 61.5,
                                        "gpu_hours": 0.3333}
    assert on_disk["time"]["retrain"]["epochs"] == 3
    assert on_disk["time"]["prune"] == {"duration_s": 12.5, "gpu_hours": 0.0035}
    assert on_disk["time"]["pretrained_evaluation"] == {"duration_s": 120.0, "gpu_hours": 0.0333}
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert markdown.startswith("# BodyPoseNet\n")
    assert "| pruned + retrained | eval/AP_0.50-0.95_all | 0.48 |" in markdown
    assert "| before pruning | 3,000,000 |" in markdown and "| exported engine | model.engine | 2 |" in markdown
    assert "| train | 150 | 2 | 61.5 | 0.3333 |" in markdown
    # The engine beside the .hdf5 model it was built from, on the same metric; its precision from engine.json.
    assert on_disk["engine_check"] == {"metric": "eval/AP_0.50-0.95_all", "model": "pruned + retrained",
                                       "model_value": 0.48, "engine_value": 0.47, "drop": 0.01, "precision": "int8"}
    assert "| metric | pruned + retrained | engine (int8) | drop |" in markdown
    assert "| eval/AP_0.50-0.95_all | 0.48 | 0.47 | 0.01 |" in markdown


def test_newest_checkpoint_stands_in_for_a_missing_final_model(tmp_path: Path, bpnet_outputs) -> None:
    (bpnet_outputs["train"] / "bpnet_model.hdf5").unlink()
    stage = report.read_stage(str(bpnet_outputs["train"]), "train")
    assert stage["files"]["model"]["file"] == "model.epoch-2.hdf5"


def test_report_step_needs_a_stage_and_existing_folders(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.reset()
    with caplog.at_level(logging.ERROR):
        assert report.main(["--output_dir", str(tmp_path / "r")]) == 2
        assert report.main(["--train", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "r")]) == 2
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "no stage folders given", f"stage folder {tmp_path / 'missing'} does not exist"]


def test_report_step_logs_the_report_to_mlflow(tmp_path: Path, bpnet_outputs, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tracking.reset()
    assert report.main(["--retrained_evaluation", str(bpnet_outputs["retrained_evaluation"]),
                        "--output_dir", str(tmp_path / "r")]) == 0
    tracking.reset()
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("tao-aml").experiment_id])
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "report")) == [
        "report/report.json", "report/report.md"]


def test_results_csv_is_read_by_the_names_tao_gives_the_stats(tmp_path: Path) -> None:
    evaluation(tmp_path, 0.48, kpi_in_status=False)
    read = report.results_csv(str(tmp_path))
    assert sorted(read) == sorted(BPNET_KPI)
    assert float(read["AP_0.50:0.95_all"]) == pytest.approx(0.48)
    assert float(read["AR_0.50:0.95_large"]) == pytest.approx(0.57)


def test_results_csv_without_tao_rows_is_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "results.csv").write_text("AP,AR\n0.5,0.6\n")
    with caplog.at_level(logging.WARNING):
        assert report.results_csv(str(tmp_path)) == {}
    assert "results.csv holds no rows" in caplog.text


# sweep.json as the select_model step writes it (issue 22): three thresholds, one of them failed.
SWEEP = {
    "metric": "eval/AP_0.50-0.95_all", "unit": "AP points", "max_map_drop": 0.03,
    "unpruned": {"value": 0.50, "parameters": 3_000_000},
    "branches": [
        {"branch": 1, "threshold": 0.05, "status": "ok", "reason": None, "value": 0.49, "parameters": 2_100_000,
         "model_bytes": 8_400_000, "drop": 0.01, "within_limit": True},
        {"branch": 2, "threshold": 0.2, "status": "ok", "reason": None, "value": 0.48, "parameters": 1_200_000,
         "model_bytes": 4_800_000, "drop": 0.02, "within_limit": True},
        {"branch": 3, "threshold": 0.6, "status": "failed", "reason": "prune: TAO bpnet prune failed (exit 255)",
         "value": None, "parameters": None, "model_bytes": None, "drop": None, "within_limit": None}],
    "chosen": {"branch": 2, "threshold": 0.2,
               "why": "the fewest parameters (1,200,000) of the 2 branches within max_map_drop 0.03 AP points"},
}


@pytest.fixture
def sweep_folder(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "sweep.json").write_text(json.dumps(SWEEP))
    Image.new("RGB", (64, 48), (255, 255, 255)).save(folder / "sweep.png")
    return folder


def test_report_of_a_sweep_has_the_table_the_choice_and_the_plot(tmp_path: Path, bpnet_outputs, sweep_folder,
                                                                  monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tracking.reset()
    out = tmp_path / "r"
    assert report.main(["--retrained_evaluation", str(bpnet_outputs["retrained_evaluation"]),
                        "--sweep", str(sweep_folder), "--output_dir", str(out)]) == 0
    tracking.reset()
    assert json.loads((out / "report.json").read_text())["sweep"] == SWEEP
    assert (out / "sweep.png").read_bytes() == (sweep_folder / "sweep.png").read_bytes()
    markdown = (out / "report.md").read_text()
    assert ("| model | pruning threshold | eval/AP_0.50-0.95_all | drop (AP points) | parameters | model (MB) | "
            "status |") in markdown
    assert "| unpruned | - | 0.5 | - | 3,000,000 | - | - |" in markdown
    assert "| branch 1 | 0.05 | 0.49 | 0.01 | 2,100,000 | 8.4 | ok |" in markdown
    assert "| branch 2 (chosen) | 0.2 | 0.48 | 0.02 | 1,200,000 | 4.8 | ok |" in markdown
    assert "| branch 3 | 0.6 | - | - | - | - | failed: prune: TAO bpnet prune failed (exit 255) |" in markdown
    assert ("Chosen: branch 2, pruning threshold 0.2: the fewest parameters (1,200,000) of the 2 branches within "
            "max_map_drop 0.03 AP points") in markdown
    assert "max_map_drop: 0.03 AP points." in markdown
    assert "Left out: branch 3 (threshold 0.6): prune: TAO bpnet prune failed (exit 255)." in markdown
    assert "![eval/AP_0.50-0.95_all against model size](sweep.png)" in markdown
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("tao-aml").experiment_id])
    assert [a.path for a in client.list_artifacts(run.info.run_id, "sweep")] == ["sweep/sweep.png"]
    assert "report/sweep.png" in [a.path for a in client.list_artifacts(run.info.run_id, "report")]


def test_report_without_a_sweep_says_nothing_of_one(tmp_path: Path, bpnet_outputs) -> None:
    report.build_report({k: str(v) for k, v in bpnet_outputs.items()}, "BodyPoseNet", str(tmp_path / "r"))
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["report.json", "report.md"]
    assert "sweep" not in json.loads((tmp_path / "r" / "report.json").read_text())
    assert "sweep" not in (tmp_path / "r" / "report.md").read_text().lower()


@pytest.mark.parametrize("content, error", [
    (None, "holds no sweep.json (connect the select_model step's sweep output)"),
    ("{not json", "sweep.json is not JSON"),
    (json.dumps({"branches": []}), "has no branches list and chosen branch"),
])
def test_a_sweep_folder_without_a_readable_sweep_is_refused_and_nothing_is_written(
        tmp_path: Path, bpnet_outputs, content, error, caplog) -> None:
    folder = tmp_path / "sweep"
    folder.mkdir()
    if content is not None:
        (folder / "sweep.json").write_text(content)
    with caplog.at_level(logging.ERROR):
        assert report.main(["--train", str(bpnet_outputs["train"]), "--sweep", str(folder),
                            "--output_dir", str(tmp_path / "r")]) == 2
    assert error in caplog.text and "Traceback" not in caplog.text
    assert not (tmp_path / "r").exists()


def test_a_sweep_without_its_plot_is_reported_with_a_warning(tmp_path: Path, bpnet_outputs, sweep_folder,
                                                             caplog) -> None:
    (sweep_folder / "sweep.png").unlink()
    with caplog.at_level(logging.WARNING):
        report.build_report({"train": str(bpnet_outputs["train"])}, "t", str(tmp_path / "r"), sweep=str(sweep_folder))
    assert f"--sweep {sweep_folder} holds no sweep.png" in caplog.text
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "| branch 2 (chosen) |" in markdown and "](sweep.png)" not in markdown
