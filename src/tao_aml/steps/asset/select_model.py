"""Choose the model of a pruning sweep: the smallest one whose accuracy stays within max_map_drop.

Each branch of the sweep pruned the trained model at one threshold, retrained and evaluated it. This step
reads every branch (its prune output for the parameter count TAO printed, its retrained model's file
size, its evaluation's primary metric: mAP for DetectNet_v2, AP for BodyPose, as the run report names
them) and the unpruned model's evaluation, and picks, among the branches whose metric dropped by at most
--max_map_drop, the fewest parameters, then the smallest file, then the higher metric, then the lower
branch number; without --max_map_drop, the highest metric. A branch that failed (BRANCH_FAILED.json,
steps/tao/sweep_branch.py) or has no metric is named and left out. The chosen branch's retrain, prune and
evaluation folders are copied to --model_dir, --pruned_dir and --evaluation_dir for the steps after the
sweep; sweep.json, sweep.md and sweep.png (metric against parameters) go to --sweep_dir and to the run.
When no branch qualifies the step fails, naming the one that came closest, and writes no output.
"""

import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from tao_aml.steps.asset.report import SWEEP_JSON, SWEEP_PLOT, _fmt, primary_metric, read_stage, sweep_markdown
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.tao import sweep_branch, tracking
from tao_aml.steps.tao.metrics import metric_name
from tao_aml.steps.tao.model_files import MODEL_INFO
from tao_aml.steps.tao.sweep_branch import SELECT_SLOTS

LOG = logging.getLogger("tao_aml.select_model")

PORTS = ("pruned", "retrained", "evaluation")  # a branch's folders, in the order its steps ran
OUTPUTS = {"retrained": "model_dir", "pruned": "pruned_dir", "evaluation": "evaluation_dir"}
# The run report's primary metrics, as the sweep names them, in the units max_map_drop is given in.
METRICS = {"eval/mAP": ("mAP", "percentage points"), "eval/AP_0.50-0.95_all": ("AP", "AP points")}
# What a reader of a stage folder takes for "this step finished": copied after everything else.
FINISHED_FILES = ("status.json", MODEL_INFO)
SWEEP_MD = "sweep.md"

Branch = Dict[str, Any]


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got {!r}".format(text)) from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("expected a finite number, got {!r}".format(text))
    return value


def non_negative(text: str) -> float:
    value = finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number of at least 0, got {!r}".format(text))
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="select_model", description=__doc__)
    parser.add_argument("--unpruned_evaluation", required=True, help="evaluation of the trained (unpruned) model")
    parser.add_argument("--max_map_drop", type=non_negative, default=None,
                        help="largest drop of the metric allowed, in its own units (mAP: percentage points)")
    for k in range(1, SELECT_SLOTS + 1):
        parser.add_argument("--threshold_{}".format(k), type=finite, help="pruning threshold of branch {}".format(k))
        for port in PORTS:
            parser.add_argument("--{}_{}".format(port, k), help="branch {}'s {} folder".format(k, port))
    for flag in list(OUTPUTS.values()) + ["sweep_dir"]:
        parser.add_argument("--" + flag, required=True)
    return parser


def given_branches(args: argparse.Namespace) -> List[Branch]:
    """The branches on the command line, each with its threshold and all three folders."""
    branches = []
    for k in range(1, SELECT_SLOTS + 1):
        threshold = getattr(args, "threshold_{}".format(k))
        folders = {port: getattr(args, "{}_{}".format(port, k)) for port in PORTS}
        given = [port for port in PORTS if folders[port]]
        if threshold is None and given:
            raise StepError("branch {0}: --{1}_{0} is given without --threshold_{0}".format(k, given[0]))
        if threshold is None:
            continue
        missing = ["--{}_{}".format(port, k) for port in PORTS if not folders[port]]
        if missing:
            raise StepError("branch {0}: --threshold_{0} is given without {1}".format(k, " and ".join(missing)))
        branches.append({"branch": k, "threshold": threshold, "folders": folders})
    if not branches:
        raise StepError("no branch given: pass --threshold_1 with --pruned_1, --retrained_1 and --evaluation_1 "
                        "(and so on for each threshold of the sweep)")
    return branches


def value_of(metrics: Dict[str, float], name: Optional[str]) -> Optional[float]:
    value = metrics.get(name) if name else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def count(metrics: Dict[str, float], name: str) -> Optional[int]:
    value = value_of(metrics, name)
    return int(round(value)) if value is not None else None


def read_sweep(unpruned_folder: str, branches: List[Branch], max_map_drop: Optional[float]) -> Dict[str, Any]:
    """sweep.json without its choice: every branch's status, metric, size and drop."""
    unpruned = read_stage(unpruned_folder, "evaluate")["metrics"]
    failures = {b["branch"]: sweep_branch.failure(b["folders"][port] for port in PORTS) for b in branches}
    evaluations = {b["branch"]: read_stage(b["folders"]["evaluation"], "evaluate")["metrics"]
                   for b in branches if failures[b["branch"]] is None}
    # The metric is the unpruned model's primary one (the first branch's when the unpruned model has none).
    primaries = [primary_metric(m) for m in [unpruned] + list(evaluations.values())]
    name = next((found[0] for found in primaries if found), None)
    unpruned_value = value_of(unpruned, name)
    if max_map_drop is not None and unpruned_value is None:
        raise StepError("{}: the unpruned model's evaluation has no {}, so max_map_drop cannot be checked".format(
            unpruned_folder, name or "metric"))
    records, before = [], None
    for branch in branches:
        record = {"branch": branch["branch"], "threshold": branch["threshold"], "status": "ok", "reason": None,
                  "value": None, "parameters": None, "model_bytes": None, "drop": None, "within_limit": None}
        records.append(record)
        if failures[branch["branch"]]:
            record.update(status="failed", reason=failures[branch["branch"]])
            continue
        folders = branch["folders"]
        pruned = read_stage(folders["pruned"], "prune")["metrics"]
        before = before if before is not None else count(pruned, "prune/param_count_before")
        record["parameters"] = count(pruned, "prune/param_count_after")
        model = read_stage(folders["retrained"], "train")["files"].get("model")
        if model:
            record["model_bytes"] = os.path.getsize(os.path.join(folders["retrained"], model["file"]))
        record["value"] = value_of(evaluations[branch["branch"]], name)
        if record["value"] is None:
            record.update(status="no metric", reason="{} holds no finite {}".format(folders["evaluation"],
                                                                                 name or "metric"))
        elif unpruned_value is not None:
            record["drop"] = round(unpruned_value - record["value"], 6)
            if max_map_drop is not None:
                record["within_limit"] = record["drop"] <= max_map_drop
    short, unit = METRICS.get(name or "", (name or "metric", "points"))
    return {"metric": short, "unit": unit, "max_map_drop": max_map_drop,
            "unpruned": {"value": unpruned_value, "parameters": before}, "branches": records, "chosen": None}


def _missing_last(value: Optional[float]) -> float:
    return math.inf if value is None else value


def choose(sweep: Dict[str, Any]) -> Tuple[Optional[Branch], str]:
    """The chosen branch and why (a sentence that does not repeat its number), or None and why not (naming the
    closest and every branch left out)."""
    scored = [b for b in sweep["branches"] if b["status"] == "ok"]
    limit, metric, unit = sweep["max_map_drop"], sweep["metric"], sweep["unit"]
    if limit is None:
        if scored:
            best = min(scored, key=lambda b: (-b["value"], _missing_last(b["parameters"]),
                                              _missing_last(b["model_bytes"]), b["branch"]))
            return best, "the highest {} ({}) of the {} with a metric (max_map_drop is not set)".format(
                metric, _fmt(best["value"]), "1 branch" if len(scored) == 1 else "{} branches".format(len(scored)))
        return None, "no branch has a {}{}".format(metric, left_out(sweep))
    within = [b for b in scored if b["within_limit"]]
    if within:
        best = min(within, key=lambda b: (_missing_last(b["parameters"]), _missing_last(b["model_bytes"]),
                                          -b["value"], b["branch"]))
        return best, "the smallest model, by parameters ({}) then file size ({} MB), of the {} whose {} " \
            "is at most {:g} {} below the unpruned model's {} (its drop: {})".format(
                _fmt(best["parameters"]), _fmt(_mb(best["model_bytes"])),
                "1 branch" if len(within) == 1 else "{} branches".format(len(within)), metric, limit, unit,
                _fmt(sweep["unpruned"]["value"]), _fmt(best["drop"]))
    if not scored:
        return None, "no branch has a {}{}".format(metric, left_out(sweep))
    closest = min(scored, key=lambda b: (b["drop"], b["branch"]))
    return None, "no branch keeps its {} within max_map_drop {:g} {} of the unpruned model's {}: the closest is " \
        "branch {} (threshold {:g}) with a drop of {}{}".format(
            metric, limit, unit, _fmt(sweep["unpruned"]["value"]), closest["branch"], closest["threshold"],
            _fmt(closest["drop"]), left_out(sweep))


def left_out(sweep: Dict[str, Any]) -> str:
    """'; left out: branch 2 (failed: ...), branch 3 (no metric: ...)' or ''."""
    out = ["branch {} ({}: {})".format(b["branch"], b["status"], b["reason"])
           for b in sweep["branches"] if b["status"] != "ok"]
    return "; left out: " + ", ".join(out) if out else ""


def _mb(size: Optional[int]) -> Optional[float]:
    return None if size is None else round(size / 1e6, 3)


def draw(sweep: Dict[str, Any], path: str) -> None:
    """sweep.png: the metric against the parameter count, one point per branch labelled with its threshold,
    the unpruned model, the chosen branch ringed and the lowest metric max_map_drop allows as a line."""
    import matplotlib  # here, not at the top: the user side imports SELECT_SLOTS without matplotlib installed

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import EngFormatter

    metric, unpruned = sweep["metric"], sweep["unpruned"]
    chosen = (sweep["chosen"] or {}).get("branch")
    shown = [b for b in sweep["branches"] if b["value"] is not None and b["parameters"] is not None]
    figure, axes = pyplot.subplots(figsize=(8, 5))
    try:
        axes.scatter([b["parameters"] for b in shown], [b["value"] for b in shown], color="tab:blue",
                     label="branches (pruning threshold)")
        for b in shown:
            axes.annotate("{:g}".format(b["threshold"]), (b["parameters"], b["value"]), textcoords="offset points",
                          xytext=(6, 4), fontsize=9)
            if b["branch"] == chosen:
                axes.scatter([b["parameters"]], [b["value"]], s=260, facecolors="none", edgecolors="tab:red",
                             linewidths=2, label="chosen: branch {}".format(chosen))
        if unpruned["value"] is not None and unpruned["parameters"] is not None:
            axes.scatter([unpruned["parameters"]], [unpruned["value"]], marker="s", color="black", label="unpruned")
        elif unpruned["value"] is not None:
            axes.axhline(unpruned["value"], color="black", linestyle=":", label="unpruned")
        if sweep["max_map_drop"] is not None and unpruned["value"] is not None:
            axes.axhline(unpruned["value"] - sweep["max_map_drop"], color="tab:red", linestyle="--",
                         label="max_map_drop: {:g} {} below unpruned".format(sweep["max_map_drop"], sweep["unit"]))
        axes.xaxis.set_major_formatter(EngFormatter())
        axes.set_xlabel("parameters")
        axes.set_ylabel(metric)
        axes.set_title("Pruning sweep: {} against model size".format(metric))
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right", fontsize=8)
        hidden = ["{} ({})".format(b["branch"], b["status"] if b["status"] != "ok" else "no parameter count")
                  for b in sweep["branches"] if b not in shown]
        if hidden:
            figure.text(0.01, 0.01, "not shown: branch " + ", ".join(hidden), fontsize=8)
        figure.tight_layout(rect=(0, 0.04, 1, 1) if hidden else (0, 0, 1, 1))
        fd, partial = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-", suffix=".png")
        try:
            with os.fdopen(fd, "wb") as handle:
                figure.savefig(handle, format="png", dpi=110)
            os.replace(partial, path)
        except BaseException:
            os.unlink(partial)
            raise
    finally:
        pyplot.close(figure)


def write_sweep(sweep: Dict[str, Any], folder: str) -> None:
    """sweep.png, sweep.md and, last, sweep.json (the file readers take for a finished sweep)."""
    os.makedirs(folder, exist_ok=True)
    draw(sweep, os.path.join(folder, SWEEP_PLOT))
    atomic_write_text(os.path.join(folder, SWEEP_MD), "\n".join(sweep_markdown(sweep, SWEEP_PLOT)))
    if sweep["chosen"]:
        atomic_write_text(os.path.join(folder, SWEEP_JSON), json.dumps(sweep, indent=2) + "\n")


def copy_stage(source: str, target: str) -> None:
    """A complete copy of a stage folder that never looks finished before it is: the target is emptied (an
    earlier attempt's copy), each file appears under its name only whole, status.json and model_info.json last."""
    os.makedirs(target, exist_ok=True)
    for entry in os.listdir(target):
        path = os.path.join(target, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    finishing = []
    for root, _, files in os.walk(source):
        relative = os.path.relpath(root, source)
        os.makedirs(os.path.join(target, relative), exist_ok=True)
        for name in sorted(files):
            pair = (os.path.join(root, name), os.path.normpath(os.path.join(target, relative, name)))
            if relative == "." and name in FINISHED_FILES:
                finishing.append(pair)
            else:
                _copy_file(*pair)
    for pair in finishing:
        _copy_file(*pair)


def _copy_file(source: str, target: str) -> None:
    fd, partial = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".tmp-")
    os.close(fd)
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    except BaseException:
        os.unlink(partial)
        raise


def log_to_run(sweep: Dict[str, Any], folder: str) -> None:
    """Each branch's metric and size at step = its branch number, and the table and plot as artifacts."""
    tracker = tracking.tracker()
    metric = metric_name(str(sweep["metric"]))
    for b in sweep["branches"]:
        values = {"parameters": b["parameters"], metric: b["value"], "model_bytes": b["model_bytes"]}
        found = {name: float(v) for name, v in values.items() if v is not None}
        logged = {"sweep/branch_{}/{}".format(b["branch"], name): v for name, v in found.items()}
        logged.update({"sweep/" + name: v for name, v in found.items()})  # one chart across the branches
        tracker.log_metrics(logged, step=b["branch"])
    unpruned = {"sweep/unpruned/" + name: float(v) for name, v in (
        (metric, sweep["unpruned"]["value"]), ("parameters", sweep["unpruned"]["parameters"])) if v is not None}
    if sweep["chosen"]:
        unpruned["sweep/chosen_branch"] = float(sweep["chosen"]["branch"])
    tracker.log_metrics(unpruned)
    for name in (SWEEP_PLOT, SWEEP_MD):
        tracker.log_artifact(os.path.join(folder, name), "sweep")


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    branches = given_branches(args)
    sweep = read_sweep(args.unpruned_evaluation, branches, args.max_map_drop)
    chosen, why = choose(sweep)
    for b in sweep["branches"]:
        if b["status"] != "ok":
            LOG.warning("branch %d (threshold %g) left out: %s: %s", b["branch"], b["threshold"], b["status"],
                        b["reason"])
    if chosen is None:
        with tempfile.TemporaryDirectory() as scratch:  # the table and plot go to the run, not to the outputs
            write_sweep(sweep, scratch)
            LOG.info("the sweep:\n%s", "\n".join(sweep_markdown(sweep, None)))
            log_to_run(sweep, scratch)
        raise StepError(why)
    sweep["chosen"] = {"branch": chosen["branch"], "threshold": chosen["threshold"], "why": why}
    folders = next(b["folders"] for b in branches if b["branch"] == chosen["branch"])
    for port, flag in OUTPUTS.items():
        copy_stage(folders[port], getattr(args, flag))
    write_sweep(sweep, args.sweep_dir)
    log_to_run(sweep, args.sweep_dir)
    LOG.info("chosen: branch %d (threshold %g): %s", chosen["branch"], chosen["threshold"], why)


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
