"""Run report: what each stage of a TAO pipeline achieved, from the folders its steps wrote.

Reads any of the stage folders it is given (evaluations, train/retrain results, prune output,
export and engine folders) of either family, and writes report.json and report.md to --output_dir:
accuracy of the pretrained, trained and pruned+retrained models, parameter counts, model and
engine sizes and the time each stage took. Metrics come from TAO's status.json (and bpnet's
results.csv) through the same names the live metrics use, plus what tao.run recorded in
step_metrics.json (sizes, parameter counts TAO only prints, durations). With --sweep (the selection
step's sweep folder of a pruning sweep), the report also holds every branch's accuracy against model
size, the unpruned model's and which one was chosen and why, with the plot (sweep.png, also logged to the
run).
"""

import argparse
import csv
import datetime
import glob
import json
import logging
import os
import shutil
import statistics
import sys
from typing import Any, Dict, List, Optional, Tuple

from tao_aml.steps.cli_types import of_kind, positive_int
from tao_aml.steps.common import StepError, atomic_write_text, read_json, run_main
from tao_aml.steps.deploy.engine_info import ENGINE_INFO
from tao_aml.steps.tao import tracking
from tao_aml.steps.tao.metrics import Metrics, TaskMetrics, stage_of
from tao_aml.steps.tao.model_files import model_folder
from tao_aml.steps.tao.observe import STEP_METRICS
from tao_aml.steps.tao.previews import GRID_NAME
from tao_aml.steps.tao.status_follow import Record, read_records

LOG = logging.getLogger("tao_aml.report")

# (port, TAO task, what the row is called in the report)
STAGES = [
    ("pretrained_evaluation", "evaluate", "pretrained"),
    ("train", "train", "trained"),
    ("trained_evaluation", "evaluate", "trained"),
    ("prune", "prune", "pruned"),
    ("retrain", "train", "retrained"),
    ("retrained_evaluation", "evaluate", "pruned + retrained"),
    ("export", "export", "exported"),
    ("engine", "gen_trt_engine", "engine"),
    ("engine_evaluation", "evaluate", "TensorRT engine"),
]
PRIMARY_METRICS = ("eval/mAP", "eval/AP_0.50-0.95_all")  # detectnet_v2 mAP, bpnet COCO keypoint AP
FILE_KINDS = {"onnx": ("*.onnx",), "engine": ("*.engine", "*.trt"), "calibration_cache": ("*.bin",
              "*.cache"), "model": ("weights/*.hdf5", "*_model.hdf5", "*.hdf5", "*.tlt")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="report", description=__doc__)
    for port, _, label in STAGES:
        parser.add_argument("--" + port, help="output folder of the {} step".format(label))
    parser.add_argument("--inference", help="inference results (its preview grid goes into the report)")
    parser.add_argument("--sweep", help="the select_model step's sweep folder (sweep.json, sweep.png) of a pruning "
                        "sweep: its table and plot go into the report")
    parser.add_argument("--title", type=of_kind("text"), default="TAO pipeline run")
    parser.add_argument("--nodes", type=positive_int, default=1, help="nodes train and retrain ran on")
    parser.add_argument("--gpus_per_node", type=positive_int, default=1, help="GPUs per node of train and retrain")
    parser.add_argument(
        "--gpu_hours_estimate", type=estimates, default={},
        help="estimated GPU-hours per stage, 'train=0.8,retrain=0.8' (tao-aml submit writes it from repo/gpu_time.py)",
    )
    parser.add_argument("--output_dir", required=True)
    return parser


def parse_time(record: Record) -> Optional[datetime.datetime]:
    """StatusLogger's date "M/D/YYYY" and time "H:M:S"."""
    try:
        return datetime.datetime.strptime("{} {}".format(record["date"], record["time"]), "%m/%d/%Y %H:%M:%S")
    except (KeyError, ValueError):
        return None


# cv/bpnet/scripts/evaluate.py names COCOeval's ten keypoint stats for status.json; results.csv
# (COCODataset.dump_coco_results_summary, pandas' to_csv) holds the same stats as rows of
# ",metric,IoU,area,maxDets,score". Each row's (metric, IoU, area) gives back the status.json name.
CSV_KPI_NAMES = {
    (metric, iou, area): "{}_{}".format(metric, {"0.50": "0.5", "0.75": "0.75"}.get(iou, iou + "_" + area))
    for metric in ("AP", "AR")
    for iou, area in (("0.50:0.95", "all"), ("0.50", "all"), ("0.75", "all"),
                      ("0.50:0.95", "medium"), ("0.50:0.95", "large"))
}


def results_csv(folder: str) -> Dict[str, str]:
    """bpnet evaluate's results.csv, by the status.json KPI names; rows it cannot name are left out."""
    path = os.path.join(folder, "results.csv")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    named = {CSV_KPI_NAMES.get((row.get("metric"), row.get("IoU"), row.get("area"))): row.get("score")
             for row in rows}
    named.pop(None, None)
    if not named:
        LOG.warning("%s holds no rows of TAO's metric,IoU,area,maxDets,score table; not used", path)
    return named


def model_files(folder: str) -> Dict[str, Dict[str, object]]:
    """The model, ONNX, engine and calibration cache in a stage folder, with sizes (MB)."""
    found: Dict[str, Dict[str, object]] = {}
    for kind, patterns in FILE_KINDS.items():
        for pattern in patterns:
            paths = sorted(p for p in glob.glob(os.path.join(folder, pattern))
                           if os.path.isfile(p) and not os.path.basename(p).startswith("model.epoch-"))
            if paths:
                found[kind] = {"file": os.path.relpath(paths[0], folder),
                               "size_mb": round(os.path.getsize(paths[0]) / 1e6, 6)}
                break
    if "model" not in found:
        checkpoints = glob.glob(os.path.join(folder, "model.epoch-*.hdf5"))
        if checkpoints:  # bpnet without bpnet_model.hdf5: its newest checkpoint
            newest = max(checkpoints, key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))
            found["model"] = {"file": os.path.basename(newest), "size_mb": round(os.path.getsize(newest) / 1e6, 6)}
    return found


def read_stage(folder: str, task: str) -> Dict[str, object]:
    """Metrics (last value of each), status, timing and files of one stage folder."""
    if not os.path.isdir(folder):
        raise StepError("stage folder {} does not exist".format(folder))
    mapper = TaskMetrics(task)
    metrics: Metrics = {}
    epoch_times: List[float] = []
    status_path = os.path.join(folder, "status.json")
    records = read_records(status_path) if os.path.isfile(status_path) else []
    for record in records:
        found, _ = mapper.from_record(record)
        metrics.update(found)
        if "train/time_per_epoch_s" in found:
            epoch_times.append(found["train/time_per_epoch_s"])
    csv_kpi = results_csv(folder)
    if csv_kpi:
        metrics.update({k: v for k, v in mapper.from_record({"kpi": csv_kpi})[0].items() if k not in metrics})
    recorded = os.path.join(folder, STEP_METRICS)
    if os.path.isfile(recorded):
        with open(recorded, encoding="utf-8") as handle:
            try:
                metrics.update(json.load(handle).get("metrics", {}))
            except (ValueError, AttributeError):
                LOG.warning("%s is not readable JSON; not used", recorded)
    files_dir = model_folder(folder)  # bpnet export: the tao/ model the pipeline evaluates
    stage: Dict[str, object] = {"task": task, "metrics": dict(sorted(metrics.items())), "files": model_files(files_dir)}
    engine_info = os.path.join(files_dir, ENGINE_INFO)
    if os.path.isfile(engine_info):  # the engine's precision and batch size (engine and engine-evaluate steps)
        with open(engine_info, encoding="utf-8") as handle:
            try:
                stage["engine"] = json.load(handle)
            except ValueError:
                LOG.warning("%s is not readable JSON; not used", engine_info)
    statuses = [r.get("status") for r in records if r.get("status")]
    if statuses:
        stage["status"] = statuses[-1]
    times = [t for t in (parse_time(r) for r in records) if t is not None]
    duration = metrics.get(stage_of(task) + "/duration_s")
    if duration is None and len(times) > 1:
        duration = (max(times) - min(times)).total_seconds()
    if duration is not None:
        stage["duration_s"] = duration
    epochs = [r.get("max_epoch") for r in records if isinstance(r.get("max_epoch"), int)]
    if epochs:
        stage["epochs"] = epochs[-1]
    if epoch_times:
        stage["time_per_epoch_s"] = statistics.median(epoch_times)
    return stage


def primary_metric(metrics: Dict[str, float]) -> Optional[Tuple[str, float]]:
    for name in PRIMARY_METRICS:
        if name in metrics:
            return name, metrics[name]
    evals = sorted(k for k in metrics if k.startswith("eval/") and not k.endswith("/duration_s"))
    return (evals[0], metrics[evals[0]]) if evals else None


# Train and retrain run on nodes x GPUs; every other stage here is one process on one GPU.
DISTRIBUTED_STAGES = ("train", "retrain")


def estimates(text: str) -> Dict[str, float]:
    """'port=hours,...' as a mapping; a malformed pair is refused by name."""
    found = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        port, sep, value = pair.partition("=")
        try:
            found[port.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError("--gpu_hours_estimate: {!r} is not STAGE=HOURS".format(pair)) from None
        if not sep:
            raise argparse.ArgumentTypeError("--gpu_hours_estimate: {!r} is not STAGE=HOURS".format(pair))
    return found


def gpu_hours(stages: Dict[str, Dict[str, object]], training_gpus: int) -> Dict[str, float]:
    """What each stage cost in GPU time: wall time x the GPUs it held."""
    hours = {}
    for port, stage in stages.items():
        duration = stage.get("duration_s")
        if isinstance(duration, (int, float)):
            gpus = training_gpus if port in DISTRIBUTED_STAGES else 1
            hours[port] = round(float(duration) / 3600.0 * gpus, 4)
    return hours


def summarize(
    stages: Dict[str, Dict[str, object]], title: str, training_gpus: int = 1,
    estimated: Optional[Dict[str, float]] = None,
) -> Dict[str, object]:
    labels = {port: label for port, _, label in STAGES}
    accuracy = []
    for port in ("pretrained_evaluation", "trained_evaluation", "retrained_evaluation"):
        if port in stages:
            metrics = stages[port]["metrics"]
            assert isinstance(metrics, dict)
            primary = primary_metric(metrics)
            accuracy.append({"model": labels[port], "metric": primary[0] if primary else None,
                             "value": primary[1] if primary else None,
                             "metrics": {k: v for k, v in metrics.items() if not k.endswith("/duration_s")}})
    prune_metrics = stages.get("prune", {}).get("metrics", {})
    assert isinstance(prune_metrics, dict)
    parameters = {name: prune_metrics[key] for name, key in (
        ("before_pruning", "prune/param_count_before"), ("after_pruning", "prune/param_count_after"),
        ("pruning_ratio", "prune/pruning_ratio")) if key in prune_metrics}
    sizes = {}
    for port, _, label in STAGES:
        files = stages.get(port, {}).get("files", {})
        assert isinstance(files, dict)
        for kind, info in sorted(files.items()):
            sizes["{} {}".format(label, kind.replace("_", " "))] = dict(info, stage=port)
    timing = {port: {k: stages[port][k] for k in ("duration_s", "epochs", "time_per_epoch_s") if k in stages[port]}
              for port, _, _ in STAGES if port in stages}
    for port, hours in gpu_hours(stages, training_gpus).items():
        timing[port]["gpu_hours"] = hours
    for port, hours in (estimated or {}).items():
        if port in timing:
            timing[port]["estimated_gpu_hours"] = hours
    return {"title": title, "created": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "accuracy": accuracy, "engine_check": engine_check(stages), "parameters": parameters, "sizes": sizes,
            "time": timing, "stages": stages}


INT8_ROUTES = {
    "ptq_calibration": "post-training calibration (PTQ) on training images",
    "qat_scales": "tensor scales from quantization-aware training (QAT, the export's cal.json); no calibration images",
}


def engine_check(stages: Dict[str, Dict[str, object]]) -> Optional[Dict[str, object]]:
    """The engine's accuracy beside the pruned and retrained model's, on the same metric, and the drop."""
    if "engine_evaluation" not in stages or "retrained_evaluation" not in stages:
        return None
    model_metrics, engine_metrics = stages["retrained_evaluation"]["metrics"], stages["engine_evaluation"]["metrics"]
    assert isinstance(model_metrics, dict) and isinstance(engine_metrics, dict)
    primary = primary_metric(model_metrics)
    if primary is None or primary[0] not in engine_metrics:
        return None
    # engine.json: copied by the engine evaluation (detectnet_v2), else where the engine was built (bpnet: export).
    info = next((stages[port]["engine"] for port in ("engine_evaluation", "engine", "export")
                 if port in stages and stages[port].get("engine")), {})
    assert isinstance(info, dict)
    engine_value = float(engine_metrics[primary[0]])
    check = {"metric": primary[0], "model": "pruned + retrained", "model_value": primary[1],
             "engine_value": engine_value, "drop": round(primary[1] - engine_value, 6),
             "precision": info.get("data_type")}
    if info.get("int8_route"):  # detectnet_v2 INT8 engines: PTQ calibration or QAT tensor scales
        check["int8_route"] = info["int8_route"]
    return check


def _fmt(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = float(value)
        return "{:,.0f}".format(value) if value.is_integer() and abs(value) >= 1000 else "{:.4g}".format(value)
    return "-" if value is None else str(value)


def _ratio(timing: Dict[str, object]) -> str:
    measured, estimated = timing.get("gpu_hours"), timing.get("estimated_gpu_hours")
    if isinstance(measured, float) and isinstance(estimated, float) and estimated > 0:
        return "{:.2f}x".format(measured / estimated)
    return "-"


SWEEP_JSON, SWEEP_PLOT = "sweep.json", "sweep.png"  # what the select_model step writes into its sweep folder


def load_sweep(folder: str) -> Dict[str, Any]:
    """sweep.json of the select_model step's sweep folder; refused by name when absent or not its shape."""
    path = os.path.join(folder, SWEEP_JSON)
    sweep = read_json(path, "--sweep {} holds no {} (connect the select_model step's sweep output)".format(
        folder, SWEEP_JSON))
    if not isinstance(sweep, dict) or not isinstance(sweep.get("branches"), list) or not isinstance(
            sweep.get("chosen"), dict):
        raise StepError("{} has no branches list and chosen branch: not a sweep the select_model step wrote".format(
            path))
    return sweep


def _cell(value: object) -> str:
    """A table cell: one line, no column separators."""
    return " ".join(_fmt(value).replace("|", "/").split())


def sweep_markdown(sweep: Dict[str, Any], plot: Optional[str]) -> List[str]:
    """The sweep's table (every branch, the unpruned model, the chosen one marked), why it was chosen, the plot."""
    metric, unit, chosen = sweep.get("metric") or "metric", sweep.get("unit") or "", sweep.get("chosen") or {}
    unpruned = sweep.get("unpruned") or {}
    lines = ["## Pruning sweep", "",
             "One prune, retrain and evaluation per pruning threshold; {} against model size.".format(metric), "",
             "| model | pruning threshold | {} | drop{} | parameters | model (MB) | status |".format(
                 metric, " ({})".format(unit) if unit else ""), "|---|---|---|---|---|---|---|",
             "| unpruned | - | {} | - | {} | - | - |".format(_cell(unpruned.get("value")),
                                                           _cell(unpruned.get("parameters")))]
    for branch in sweep["branches"]:
        size = branch.get("model_bytes")
        status = str(branch.get("status") or "-") + (": " + str(branch["reason"]) if branch.get("reason") else "")
        lines.append("| branch {}{} | {} | {} | {} | {} | {} | {} |".format(
            branch.get("branch"), " (chosen)" if branch.get("branch") == chosen.get("branch") else "",
            _cell(branch.get("threshold")), _cell(branch.get("value")), _cell(branch.get("drop")),
            _cell(branch.get("parameters")), _cell(size / 1e6 if isinstance(size, (int, float)) else None),
            _cell(status)))
    limit = sweep.get("max_map_drop")
    lines += ["", "Chosen: branch {}, pruning threshold {}: {}".format(
        chosen.get("branch"), _fmt(chosen.get("threshold")), chosen.get("why") or "-") if chosen else
        "Chosen: none (no branch within max_map_drop)",
        "", "max_map_drop: {}.".format("{} {}".format(_fmt(limit), unit).strip() if limit is not None else
                                       "unset (the most accurate branch is chosen)")]
    left_out = [b for b in sweep["branches"] if b.get("status") not in (None, "ok")]
    if left_out:
        lines += ["", "Left out: " + "; ".join("branch {} (threshold {}): {}".format(
            b.get("branch"), _fmt(b.get("threshold")), _cell(b.get("reason") or b.get("status"))) for b in left_out)
            + "."]
    if plot:
        lines += ["", "![{} against model size]({})".format(metric, plot)]
    return lines + [""]


def to_markdown(report: Dict[str, object], grid: Optional[str], sweep_plot: Optional[str] = None) -> str:
    lines = ["# " + str(report["title"]), "", "Written {}.".format(report["created"]), ""]
    accuracy = report["accuracy"]
    assert isinstance(accuracy, list)
    if accuracy:
        lines += ["## Accuracy", "", "| model | metric | value | all metrics |", "|---|---|---|---|"]
        for row in accuracy:
            others = ", ".join("{} {}".format(k.split("/", 1)[1], _fmt(v)) for k, v in sorted(row["metrics"].items()))
            lines.append("| {} | {} | {} | {} |".format(row["model"], row["metric"] or "-", _fmt(row["value"]), others))
        lines.append("")
    parameters = report["parameters"]
    assert isinstance(parameters, dict)
    if parameters:
        lines += ["## Parameters", "", "| | value |", "|---|---|"]
        lines += ["| {} | {} |".format(k.replace("_", " "), _fmt(v)) for k, v in parameters.items()]
        lines.append("")
    sizes = report["sizes"]
    assert isinstance(sizes, dict)
    if sizes:
        lines += ["## Files", "", "| what | file | size (MB) |", "|---|---|---|"]
        lines += ["| {} | {} | {} |".format(k, v["file"], _fmt(v["size_mb"])) for k, v in sizes.items()]
        lines.append("")
    timing = report["time"]
    assert isinstance(timing, dict)
    if timing:
        lines += ["## Time per stage", "", "| stage | duration (s) | epochs | time per epoch (s) | GPU-hours | "
                  "estimated GPU-hours | measured / estimated |", "|---|---|---|---|---|---|---|"]
        lines += ["| {} | {} | {} | {} | {} | {} | {} |".format(
            port, _fmt(t.get("duration_s")), _fmt(t.get("epochs")), _fmt(t.get("time_per_epoch_s")),
            _fmt(t.get("gpu_hours")), _fmt(t.get("estimated_gpu_hours")), _ratio(t)) for port, t in timing.items()]
        lines += ["", "Estimates come from the table in src/tao_aml/repo/gpu_time.py (guesses until corrected from "
                  "measured runs like this one).", ""] if any("estimated_gpu_hours" in t for t in timing.values()) \
            else [""]
    check = report.get("engine_check")
    if isinstance(check, dict):
        lines += ["## TensorRT engine against the model", "",
                  "| metric | {} | engine ({}) | drop |".format(check["model"], check["precision"] or "-"),
                  "|---|---|---|---|",
                  "| {} | {} | {} | {} |".format(check["metric"], _fmt(check["model_value"]),
                                                _fmt(check["engine_value"]), _fmt(check["drop"])), ""]
        route = INT8_ROUTES.get(str(check.get("int8_route")))
        if route:
            lines += ["INT8 route: " + route, ""]
    sweep = report.get("sweep")
    if isinstance(sweep, dict):
        lines += sweep_markdown(sweep, sweep_plot)
    if grid:
        lines += ["## Inference previews", "", "![previews]({})".format(grid), ""]
    return "\n".join(lines)


def copy_picture(folder: Optional[str], name: str, output_dir: str) -> Optional[str]:
    """`name` from a step's folder into the report folder; its name there, or None when it has none."""
    if folder and os.path.isfile(os.path.join(folder, name)):
        shutil.copy(os.path.join(folder, name), os.path.join(output_dir, name))
        return name
    return None


def build_report(
    folders: Dict[str, str], title: str, output_dir: str, inference: Optional[str] = None, training_gpus: int = 1,
    estimated: Optional[Dict[str, float]] = None, sweep: Optional[str] = None,
) -> Dict[str, object]:
    tasks = {port: task for port, task, _ in STAGES}
    stages = {port: read_stage(folder, tasks[port]) for port, folder in folders.items()}
    if not stages:
        raise StepError("no stage folders given: connect at least one evaluation, train, prune or export output")
    report = summarize(stages, title, training_gpus, estimated)
    if sweep:
        report["sweep"] = load_sweep(sweep)
    os.makedirs(output_dir, exist_ok=True)
    grid = copy_picture(inference, GRID_NAME, output_dir)
    plot = copy_picture(sweep, SWEEP_PLOT, output_dir)
    if sweep and not plot:
        LOG.warning("--sweep %s holds no %s: the report has the sweep's table without its plot", sweep, SWEEP_PLOT)
    atomic_write_text(os.path.join(output_dir, "report.json"), json.dumps(report, indent=2) + "\n")
    atomic_write_text(os.path.join(output_dir, "report.md"), to_markdown(report, grid, plot))
    return report


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    folders = {port: getattr(args, port) for port, _, _ in STAGES if getattr(args, port)}
    build_report(folders, args.title, args.output_dir, args.inference, args.nodes * args.gpus_per_node,
                 args.gpu_hours_estimate, args.sweep)
    LOG.info("report written to %s", os.path.join(args.output_dir, "report.md"))
    tracker = tracking.tracker()
    tracker.log_artifact(args.output_dir, "report")
    plot = os.path.join(args.output_dir, SWEEP_PLOT)
    if args.sweep and os.path.isfile(plot):  # beside the run's other pictures, as the inference previews are
        tracker.log_artifact(plot, "sweep")


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
