"""The pruning sweep's selection step (steps/asset/select_model.py) and the branch-failure protocol
(steps/tao/sweep_branch.py), on stage folders shaped as the prune, train and evaluate steps write them."""

import json
import logging
import math
from pathlib import Path

import pytest
from PIL import Image

from tao_aml.steps.asset import select_model
from tao_aml.steps.common import StepError
from tao_aml.steps.detectnet_v2 import evaluate as dn_evaluate
from tao_aml.steps.detectnet_v2 import prune as dn_prune
from tao_aml.steps.detectnet_v2 import train as dn_train
from tao_aml.steps.tao import sweep_branch, tracking
from tao_aml.steps.tao.sweep_branch import MARKER
from test_detectnet_v2_steps import SPECS, data, train_args  # noqa: F401  (data is a fixture)

REPO = Path(__file__).resolve().parents[1]
BPNET_KPI = ["AP_0.50:0.95_all", "AP_0.5", "AP_0.75", "AP_0.50:0.95_medium", "AP_0.50:0.95_large",
             "AR_0.50:0.95_all", "AR_0.5", "AR_0.75", "AR_0.50:0.95_medium", "AR_0.50:0.95_large"]


def status(folder: Path, *records: dict) -> None:
    """StatusLogger's status.json (nvidia_tao_tf1/cv/common/logging/logging.py): one JSON object a line."""
    folder.mkdir(parents=True, exist_ok=True)
    stamped = [dict({"date": "1/2/2026", "time": f"4:{i}:0", "verbosity": "INFO"}, **r) for i, r in enumerate(records)]
    (folder / "status.json").write_text("".join(json.dumps(r) + "\n" for r in stamped))


def evaluation(folder: Path, family: str, value: float) -> None:
    """An evaluate step's results: detectnet_v2's kpi "mean average precision" (scripts/evaluate.py), bpnet's
    COCOeval stats as kpi and results.csv (cv/bpnet/scripts/evaluate.py, COCODataset.dump_coco_results_summary)."""
    if family == "detectnet_v2":
        kpi = {"validation cost": 0.0001, "mean average precision": value}
        status(folder, {"status": "STARTED", "message": "Starting DetectNet_v2 Evaluation"},
               {"status": "RUNNING", "message": "Evaluation metrics generated.",
                "categorical": {"average_precision": {"face": value}}, "kpi": kpi},
               {"status": "SUCCESS", "message": "Evaluation finished successfully.", "kpi": kpi})
        return
    values = {name: value + i / 100 for i, name in enumerate(BPNET_KPI)}
    status(folder, {"status": "STARTED", "message": "Starting Evaluation."},
           {"status": "RUNNING", "message": "Evaluation metrics generated.", "kpi": values},
           {"status": "SUCCESS", "message": "Evaluation finished successfully.", "kpi": values})
    rows = [f"{i},{name[:2]},{iou},{area},20,{values[name]}" for i, (name, (iou, area)) in enumerate(zip(
        BPNET_KPI, 2 * [("0.50:0.95", "all"), ("0.50", "all"), ("0.75", "all"), ("0.50:0.95", "medium"),
                        ("0.50:0.95", "large")], strict=True))]
    (folder / "results.csv").write_text(",metric,IoU,area,maxDets,score\n" + "\n".join(rows) + "\n")


def pruned(folder: Path, family: str, before: int, after: int) -> None:
    """A prune step's output: model_pruned.hdf5, status.json (detectnet_v2: cv/common/magnet_prune.py's kpi, whose
    param_count is get_num_params, in millions (cv/common/utils.py); bpnet/scripts/prune.py: none) and the counts
    in step_metrics.json, which the run report and the selection read."""
    kpi = {"pruning_ratio": after / before, "size": after * 4 / 1e6, "param_count": after / 1e6}
    records = [{"status": "RUNNING", "message": "Pruning ratio (pruned model / original model): x", "kpi": kpi},
               {"status": "SUCCESS", "message": "Pruning finished successfully.", "kpi": kpi}]
    if family == "bpnet":
        records = [{"status": "STARTED", "message": "Starting pruning."},
                   {"status": "SUCCESS", "message": "Pruning finished successfully."}]
    status(folder, *records)
    (folder / "model_pruned.hdf5").write_bytes(b"p" * 1000)
    (folder / "step_metrics.json").write_text(json.dumps({"task": "prune", "family": family, "metrics": {
        "prune/param_count_before": before, "prune/param_count_after": after, "prune/pruning_ratio": after / before,
        "prune/duration_s": 12.0}}))


def retrained(folder: Path, family: str, model_bytes: int) -> None:
    """A retrain output: detectnet_v2 weights/<model_name>.hdf5 and a ckzip per epoch; bpnet bpnet_model.hdf5
    beside its model.epoch-N.hdf5 checkpoints (bpnet_trainer.py)."""
    status(folder, {"status": "STARTED", "message": "Starting"},
           {"status": "RUNNING", "epoch": 1, "max_epoch": 1, "graphical": {"loss": "0.1"}},
           {"status": "SUCCESS", "message": "training finished"})
    (folder / "specs").mkdir()
    (folder / "specs" / "retrain.txt").write_text("spec\n")
    if family == "detectnet_v2":
        (folder / "weights").mkdir()
        (folder / "weights" / "resnet18_detector.hdf5").write_bytes(b"m" * model_bytes)
        (folder / "model.epoch-1.ckzip").write_bytes(b"c" * 10)
    else:
        (folder / "bpnet_model.hdf5").write_bytes(b"m" * model_bytes)
        (folder / "model.epoch-1.hdf5").write_bytes(b"c" * 10)


UNPRUNED_PARAMS = 11_000_000


def branch(root: Path, k: int, family: str, value: float | None, parameters: int,
           model_bytes: int = 4_000_000) -> list[str]:
    """Branch k's three folders, and the command-line flags that connect them."""
    folders = {port: root / f"{port}_{k}" for port in select_model.PORTS}
    pruned(folders["pruned"], family, UNPRUNED_PARAMS, parameters)
    retrained(folders["retrained"], family, model_bytes)
    if value is None:  # evaluated, but TAO wrote no metric
        status(folders["evaluation"], {"status": "SUCCESS", "message": "Evaluation finished successfully."})
    else:
        evaluation(folders["evaluation"], family, value)
    return [f"--threshold_{k}", str(0.1 * k)] + [arg for port, folder in folders.items()
                                                  for arg in (f"--{port}_{k}", str(folder))]


def outputs(root: Path) -> list[str]:
    return [arg for flag in ("model_dir", "pruned_dir", "evaluation_dir", "sweep_dir")
            for arg in (f"--{flag}", str(root / "out" / flag))]


def sweep_args(root: Path, family: str, unpruned: float, branches: list[tuple], limit: float | None) -> list[str]:
    evaluation(root / "unpruned", family, unpruned)
    args = ["--unpruned_evaluation", str(root / "unpruned")]
    if limit is not None:
        args += ["--max_map_drop", str(limit)]
    for k, spec in enumerate(branches, 1):
        args += branch(root, k, family, *spec)
    return args + outputs(root)


def written(root: Path) -> dict:
    return json.loads((root / "out" / "sweep_dir" / "sweep.json").read_text())


@pytest.fixture(autouse=True)
def no_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv(sweep_branch.BRANCH_VARIABLE, raising=False)
    tracking.reset()
    yield
    tracking.reset()


def test_smallest_model_within_the_limit_is_chosen_and_copied(tmp_path: Path) -> None:
    args = sweep_args(tmp_path, "detectnet_v2", 82.0, [(81.9, 9_000_000), (81.0, 5_000_000), (79.0, 2_000_000)],
                      limit=1.0)
    assert select_model.main(args) == 0
    sweep = written(tmp_path)
    assert (sweep["metric"], sweep["unit"], sweep["max_map_drop"]) == ("mAP", "percentage points", 1.0)
    assert sweep["unpruned"] == {"value": 82.0, "parameters": UNPRUNED_PARAMS}
    assert [(b["branch"], b["status"], b["value"], b["parameters"], b["model_bytes"], b["drop"], b["within_limit"])
            for b in sweep["branches"]] == [(1, "ok", 81.9, 9_000_000, 4_000_000, 0.1, True),
                                            (2, "ok", 81.0, 5_000_000, 4_000_000, 1.0, True),
                                            (3, "ok", 79.0, 2_000_000, 4_000_000, 3.0, False)]
    assert sweep["chosen"]["branch"] == 2 and sweep["chosen"]["threshold"] == pytest.approx(0.2)
    assert sweep["chosen"]["why"] == ("the smallest model, by parameters (5,000,000) then file size (4 MB), of the 2 "
                                      "branches whose mAP is at most 1 percentage points below the unpruned model's "
                                      "82 (its drop: 1)")
    # The chosen branch's folders, whole, as the model, pruned and evaluation outputs.
    for port, flag in select_model.OUTPUTS.items():
        source, copy = tmp_path / f"{port}_2", tmp_path / "out" / flag
        assert sorted(p.relative_to(source) for p in source.rglob("*")) == \
            sorted(p.relative_to(copy) for p in copy.rglob("*"))
        assert all((copy / p.relative_to(source)).read_bytes() == p.read_bytes()
                   for p in source.rglob("*") if p.is_file())
    markdown = (tmp_path / "out" / "sweep_dir" / "sweep.md").read_text()  # the run report's table (report.py)
    assert "| model | pruning threshold | mAP | drop (percentage points) | parameters | model (MB) | status |" \
        in markdown
    assert "| unpruned | - | 82 | - | 11,000,000 | - | - |" in markdown
    assert "| branch 2 (chosen) | 0.2 | 81 | 1 | 5,000,000 | 4 | ok |" in markdown
    assert "| branch 3 | 0.3 | 79 | 3 | 2,000,000 | 4 | ok |" in markdown
    assert "Chosen: branch 2, pruning threshold 0.2: the smallest model, by parameters" in markdown
    assert "![mAP against model size](sweep.png)" in markdown
    with Image.open(tmp_path / "out" / "sweep_dir" / "sweep.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 600


@pytest.mark.parametrize("branches, chosen", [
    # equal parameters: the smaller file; equal files too: the higher metric; all equal: the lower branch
    ([(81.5, 5_000_000, 4_000_000), (81.2, 5_000_000, 3_000_000)], 2),
    ([(81.2, 5_000_000, 3_000_000), (81.5, 5_000_000, 3_000_000)], 2),
    ([(81.5, 5_000_000, 3_000_000), (81.5, 5_000_000, 3_000_000)], 1),
    # ties in drop do not matter: the fewest parameters wins
    ([(81.5, 6_000_000, 3_000_000), (81.5, 5_000_000, 3_000_000)], 2),
])
def test_ties_within_the_limit(tmp_path: Path, branches, chosen: int) -> None:
    assert select_model.main(sweep_args(tmp_path, "detectnet_v2", 82.0, branches, limit=1.0)) == 0
    assert written(tmp_path)["chosen"]["branch"] == chosen


def test_without_max_map_drop_the_most_accurate_is_chosen(tmp_path: Path) -> None:
    # BodyPose: AP as status.json and results.csv give it (0 to 1); ties: fewer parameters, smaller file.
    branches = [(0.48, 3_000_000), (0.51, 4_000_000), (0.51, 3_500_000), (0.51, 3_500_000, 3_000_000)]
    assert select_model.main(sweep_args(tmp_path, "bpnet", 0.52, branches, limit=None)) == 0
    sweep = written(tmp_path)
    assert (sweep["metric"], sweep["unit"], sweep["max_map_drop"]) == ("AP", "AP points", None)
    assert sweep["chosen"]["branch"] == 4
    assert [b["within_limit"] for b in sweep["branches"]] == [None] * 4
    assert sweep["branches"][3]["drop"] == pytest.approx(0.01)
    assert sweep["branches"][3]["model_bytes"] == 3_000_000  # bpnet_model.hdf5, not a checkpoint beside it
    assert sweep["chosen"]["why"] == "the highest AP (0.51) of the 4 branches with a metric (max_map_drop is not set)"
    assert (tmp_path / "out" / "model_dir" / "bpnet_model.hdf5").stat().st_size == 3_000_000


def test_none_within_the_limit_fails_naming_the_closest_and_the_failed(tmp_path: Path, caplog) -> None:
    args = sweep_args(tmp_path, "detectnet_v2", 82.0,
                      [(79.0, 2_000_000), (80.3, 5_000_000), (81.9, 9_000_000), (None, 8_000_000)], limit=1.0)
    # branch 3 failed in its retrain step; its evaluation passed the marker on (sweep_branch)
    marker = json.dumps({"branch": 3, "step": "tao_aml.steps.detectnet_v2.train", "error": "TAO detectnet_v2 train "
                         "failed (exit code 255): out of memory"})
    for port in ("retrained", "evaluation"):
        (tmp_path / f"{port}_3" / MARKER).write_text(marker)
    with caplog.at_level(logging.ERROR):
        assert select_model.main(args) == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "\n" not in error
    assert "closest is branch 2 (threshold 0.2) with a drop of 1.7" in error
    assert "branch 3 (failed: detectnet_v2.train: TAO detectnet_v2 train failed (exit code 255): out of memory)" \
        in error
    assert f"branch 4 (no metric: {tmp_path / 'evaluation_4'} holds no finite eval/mAP)" in error
    # nothing that looks like a chosen model or a finished sweep
    assert not (tmp_path / "out").exists()


def test_a_failed_branch_is_named_and_left_out(tmp_path: Path, caplog) -> None:
    args = sweep_args(tmp_path, "detectnet_v2", 82.0, [(81.8, 5_000_000), (81.9, 2_000_000)], limit=1.0)
    (tmp_path / "pruned_2" / MARKER).write_text(json.dumps(
        {"branch": 2, "step": "tao_aml.steps.detectnet_v2.prune", "error": "threshold too high"}))
    with caplog.at_level(logging.WARNING):
        assert select_model.main(args) == 0
    sweep = written(tmp_path)
    assert sweep["chosen"]["branch"] == 1
    failed = sweep["branches"][1]
    assert (failed["status"], failed["reason"], failed["value"], failed["within_limit"]) == (
        "failed", "detectnet_v2.prune: threshold too high", None, None)
    assert "branch 2 (threshold 0.2) left out: failed: detectnet_v2.prune: threshold too high" in caplog.text
    assert "| branch 2 | 0.2 | - | - | - | - | failed: detectnet_v2.prune: threshold too high |" in \
        (tmp_path / "out" / "sweep_dir" / "sweep.md").read_text()


def test_nan_metric_is_no_metric(tmp_path: Path) -> None:
    args = sweep_args(tmp_path, "detectnet_v2", 82.0, [(81.0, 5_000_000), (81.5, 2_000_000)], limit=None)
    # json.dumps writes float("nan") as NaN, which Python's json (and so StatusLogger's reader) reads back
    evaluation(tmp_path / "evaluation_2", "detectnet_v2", math.nan)
    assert "NaN" in (tmp_path / "evaluation_2" / "status.json").read_text()
    assert select_model.main(args) == 0
    sweep = written(tmp_path)
    assert sweep["chosen"]["branch"] == 1
    assert (sweep["branches"][1]["status"], sweep["branches"][1]["value"]) == ("no metric", None)


@pytest.mark.parametrize("given, message", [
    (["--threshold_2", "0.3"], "branch 2: --threshold_2 is given without --pruned_2 and --retrained_2 and "
                               "--evaluation_2"),
    (["--pruned_1", "p", "--retrained_1", "r", "--evaluation_1", "e"], "branch 1: --pruned_1 is given without "
                                                                        "--threshold_1"),
    ([], "no branch given"),
])
def test_bad_input_is_one_clear_line(tmp_path: Path, caplog, given: list[str], message: str) -> None:
    evaluation(tmp_path / "unpruned", "detectnet_v2", 82.0)
    with caplog.at_level(logging.ERROR):
        assert select_model.main(["--unpruned_evaluation", str(tmp_path / "unpruned"), *given,
                                  *outputs(tmp_path)]) == 2
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR][0].startswith(message)
    assert not (tmp_path / "out").exists()


def test_max_map_drop_needs_the_unpruned_metric(tmp_path: Path) -> None:
    args = sweep_args(tmp_path, "detectnet_v2", 82.0, [(81.0, 5_000_000)], limit=1.0)
    status(tmp_path / "unpruned", {"status": "SUCCESS", "message": "Evaluation finished successfully."})
    with pytest.raises(StepError, match="the unpruned model's evaluation has no eval/mAP"):
        select_model.body(args)


def test_sweep_is_plotted_and_logged_to_mlflow(tmp_path: Path, monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    tracking.reset()
    args = sweep_args(tmp_path, "detectnet_v2", 82.0, [(81.9, 9_000_000), (81.0, 5_000_000)], limit=1.0)
    assert select_model.main(args) == 0
    tracking.reset()
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("tao-aml").experiment_id])
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id, "sweep")) == [
        "sweep/sweep.md", "sweep/sweep.png"]
    (tmp_path / "download").mkdir()
    png = client.download_artifacts(run.info.run_id, "sweep/sweep.png", str(tmp_path / "download"))
    with Image.open(png) as plot:
        assert plot.format == "PNG"
    [(step, value)] = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "sweep/branch_2/mAP")]
    assert (step, value) == (2, 81.0)
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "sweep/parameters")] == [
        (1, 9_000_000), (2, 5_000_000)]
    assert run.data.metrics["sweep/chosen_branch"] == 2 and run.data.metrics["sweep/unpruned/mAP"] == 82.0


def test_component_has_a_slot_for_every_branch_the_step_reads() -> None:
    from azure.ai.ml import load_component

    component = load_component(REPO / "components" / "report" / "select_model" / "component.yml")
    assert component.name == "tao_select_model" and component.tags["family"] == "report"
    slots = {f"{port}_{k}" for k in range(1, select_model.SELECT_SLOTS + 1)
             for port in ("threshold",) + select_model.PORTS}
    assert set(component.inputs) == slots | {"unpruned_evaluation", "max_map_drop"}
    assert all(component.inputs[name].optional for name in slots | {"max_map_drop"})
    assert set(component.outputs) == {"model", "pruned", "evaluation", "sweep"}
    parser_flags = {a.dest for a in select_model.build_parser()._actions} - {"help"}
    assert parser_flags == set(component.inputs) | {"model_dir", "pruned_dir", "evaluation_dir", "sweep_dir"}


def test_a_sweep_of_the_real_steps_on_the_tao_standins(data, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    """FaceNet's prune -> retrain -> evaluate per threshold, each step wrapped as the pipeline's branch nodes run
    it (TAO_AML_SWEEP_BRANCH); branch 2's prune fails inside TAO and its retrain and evaluation pass that on."""
    common = ["--spec_dir", str(SPECS), "--spec_file", "facenet_retrain_resnet18_kitti.txt",
              "--val_tfrecords", str(data["val_tfrecords"]), "--val_kitti", str(data["val_kitti"]),
              "--key", "nvidia_tlt", "--image_width", "160", "--image_height", "96", "--classes", "face"]
    trained = tmp_path / "trained"
    assert dn_train.main(train_args(data, trained)) == 0
    assert dn_evaluate.main(common + ["--model", str(trained), "--results_dir", str(tmp_path / "unpruned")]) == 0
    args = ["--unpruned_evaluation", str(tmp_path / "unpruned")]
    for k, threshold in enumerate(("0.0000052", "0.00001", "0.00002"), 1):
        monkeypatch.setenv(sweep_branch.BRANCH_VARIABLE, str(k))
        monkeypatch.setenv("TAO_STANDIN_FAIL_TASK", "prune" if k == 2 else "")
        folders = {port: tmp_path / f"{port}_{k}" for port in select_model.PORTS}
        assert sweep_branch.run(dn_prune.body, [
            "--model", str(trained), "--output_dir", str(folders["pruned"]), "--key", "nvidia_tlt",
            "--pruning_threshold", threshold], inputs=("model",), outputs=("output_dir",)) == 0
        retrain = train_args(data, folders["retrained"])
        retrain[retrain.index("--pretrained_model") + 1] = str(folders["pruned"])
        retrain[retrain.index("--spec_file") + 1] = "facenet_retrain_resnet18_kitti.txt"
        assert sweep_branch.run(dn_train.body, retrain, inputs=("pretrained_model",), outputs=("results_dir",)) == 0
        assert sweep_branch.run(dn_evaluate.body, common + [
            "--model", str(folders["retrained"]), "--results_dir", str(folders["evaluation"])],
            inputs=("model",), outputs=("results_dir",)) == 0
        args += [f"--threshold_{k}", threshold] + [a for port, f in folders.items() for a in (f"--{port}_{k}", str(f))]
    monkeypatch.delenv(sweep_branch.BRANCH_VARIABLE)
    assert not (tmp_path / "retrained_2" / "weights").exists()  # the retrain of a failed prune did not run
    assert select_model.main(args + outputs(tmp_path)) == 0
    sweep = written(tmp_path)
    ok = [b for b in sweep["branches"] if b["status"] == "ok"]
    assert [b["branch"] for b in ok] == [1, 3]
    assert all(b["value"] is not None and b["parameters"] > 0 and b["model_bytes"] > 0 for b in ok)
    assert sweep["metric"] == "mAP" and sweep["unpruned"]["value"] is not None
    assert sweep["branches"][1]["status"] == "failed"
    assert sweep["branches"][1]["reason"].startswith("detectnet_v2.prune: detectnet_v2 prune failed")
    chosen = sweep["chosen"]["branch"]
    assert chosen in (1, 3)
    assert (tmp_path / "out" / "model_dir" / "weights" / "resnet18_detector.hdf5").read_bytes() == \
        (tmp_path / f"retrained_{chosen}" / "weights" / "resnet18_detector.hdf5").read_bytes()


# ---------------------------------------------------------------------------------------------
# sweep_branch: a failing branch step leaves BRANCH_FAILED.json and exits 0
# ---------------------------------------------------------------------------------------------
def failing_body(argv):
    raise StepError("TAO detectnet_v2 prune failed (exit code 255)\n--- last 2 lines of TAO's output ---\na\nb")


def branch_argv(tmp_path: Path) -> list[str]:
    (tmp_path / "model").mkdir(exist_ok=True)
    return ["--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "out"),
            "--results_dir", str(tmp_path / "results"), "--model_name", "unrelated"]


def run_branch(tmp_path: Path, body) -> int:
    return sweep_branch.run(body, branch_argv(tmp_path), inputs=("model",), outputs=("output_dir", "results_dir"))


def test_failing_branch_writes_the_marker_to_every_output_and_exits_0(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(sweep_branch.BRANCH_VARIABLE, "3")
    assert run_branch(tmp_path, failing_body) == 0
    for folder in ("out", "results"):
        assert json.loads((tmp_path / folder / MARKER).read_text()) == {
            "branch": 3, "step": __name__, "error": "TAO detectnet_v2 prune failed (exit code 255)"}
    assert "sweep branch 3 failed; the selection step leaves it out" in caplog.text
    assert "last 2 lines of TAO's output" in caplog.text  # the whole error stays in the log

    def crash(argv):
        raise KeyError("weights")

    assert run_branch(tmp_path, crash) == 0
    assert json.loads((tmp_path / "out" / MARKER).read_text())["error"] == "KeyError: 'weights'"


def test_failed_input_is_passed_on_without_running(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(sweep_branch.BRANCH_VARIABLE, "2")
    argv = branch_argv(tmp_path)
    marker = '{"branch": 2, "step": "tao_aml.steps.detectnet_v2.prune", "error": "x"}\n'
    (tmp_path / "model" / MARKER).write_text(marker)
    ran = []
    assert sweep_branch.run(ran.append, argv, inputs=("model",), outputs=("output_dir", "results_dir")) == 0
    assert ran == []
    assert (tmp_path / "out" / MARKER).read_text() == marker == (tmp_path / "results" / MARKER).read_text()
    assert sweep_branch.failure([str(tmp_path / "out")]) == "detectnet_v2.prune: x"


def test_a_rerun_that_succeeds_clears_the_old_marker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(sweep_branch.BRANCH_VARIABLE, "1")
    assert run_branch(tmp_path, failing_body) == 0
    assert run_branch(tmp_path, lambda argv: None) == 0
    assert not (tmp_path / "out" / MARKER).exists() and not (tmp_path / "results" / MARKER).exists()


def test_without_the_variable_nothing_changes(tmp_path: Path, caplog) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / MARKER).write_text("{}")
    ran = []
    assert sweep_branch.run(ran.append, branch_argv(tmp_path), inputs=("model",), outputs=("output_dir",)) == 0
    assert len(ran) == 1  # the body ran: the marker means nothing outside a sweep branch
    assert run_branch(tmp_path, failing_body) == 2
    assert not (tmp_path / "out" / MARKER).exists()
    with pytest.raises(KeyError):
        run_branch(tmp_path, lambda argv: {}["x"])


def test_a_branch_number_that_is_not_one_is_refused(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(sweep_branch.BRANCH_VARIABLE, "first")
    assert run_branch(tmp_path, failing_body) == 2
    assert "TAO_AML_SWEEP_BRANCH must be a branch number" in caplog.text


def test_a_copy_replaces_an_earlier_attempt_and_says_finished_last(tmp_path: Path, monkeypatch) -> None:
    source, target = tmp_path / "retrained", tmp_path / "model"
    retrained(source, "detectnet_v2", 1000)
    target.mkdir()
    (target / "weights").mkdir()
    (target / "weights" / "other_branch.hdf5").write_bytes(b"stale")
    copied = []
    real_copy = select_model._copy_file
    monkeypatch.setattr(select_model, "_copy_file", lambda a, b: (copied.append(Path(b).name), real_copy(a, b)))
    select_model.copy_stage(str(source), str(target))
    assert copied[-1] == "status.json" and len(copied) == 4
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == [
        "model.epoch-1.ckzip", "specs", "specs/retrain.txt", "status.json", "weights",
        "weights/resnet18_detector.hdf5"]
