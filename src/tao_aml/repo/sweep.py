"""A pruning sweep: one prune -> retrain -> evaluate branch per threshold, side by side, and a selection step.

The run setting `pruning_thresholds` (a comma list) replaces the pipeline's single `pruning_threshold`. The
submitter (azure/render.py), Designer registration (azure/register.py, `<pipeline>_sweep<N>`) and local runs
(local/local_run.py) write the same literal fan-out into a copy of the pipeline component: nodes `prune_<i>`,
`retrain_<i>`, `evaluate_retrained_<i>` with `TAO_AML_SWEEP_BRANCH=<i>` (a branch step that fails writes
BRANCH_FAILED.json and exits 0, steps/tao/sweep_branch.py), then `select_model`
(components/report/select_model), whose outputs every later step reads instead of the single branch's
(docs/pruning-sweep.md).

The thresholds TAO prunes with: `-pth/--pruning_threshold` is a bare `type=float` with default 0.1 and no
range check (nvidia_tao_tf1/cv/common/magnet_prune.py build_command_line_parser, which
detectnet_v2/scripts/prune.py uses; bpnet/scripts/prune.py declares the same). It is compared with each
filter's norm divided by the largest norm of its layer (core/pruning/utils.py normalize_stat, normalizer
`max`, TAO's default and ours), so with values in [0, 1]; PruneMinWeight._get_retained_idx
(core/pruning/pruning.py) keeps the filters whose stat is `> threshold`, at least min_num_filters. Below 0 a
threshold prunes nothing more than 0 does; at 1 or above no filter passes and every layer is cut to
min_num_filters: so our prune step (steps/tao/pruning.py) refuses anything outside [0, 1), and so does this.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tao_aml.repo.yaml_model import Binding, Component, parse_binding
from tao_aml.steps.tao.sweep_branch import BRANCH_VARIABLE as BRANCH_ENV
from tao_aml.steps.tao.sweep_branch import SELECT_SLOTS

SETTING, LIMIT_SETTING, DROP_SETTING = "pruning_thresholds", "max_sweep_branches", "max_map_drop"
SETTINGS = (SETTING, LIMIT_SETTING, DROP_SETTING)
DEFAULT_MAX_BRANCHES = 6
THRESHOLD_INPUT = "pruning_threshold"  # the pipeline input a sweep replaces
SELECT_STEP = "select_model"
SELECT_COMPONENT = "components/report/select_model/component.yml"
SELECT_COMPUTE = "${{parent.inputs.cpu_compute}}"
UNPRUNED_STEP = "evaluate_trained"  # its results: the unpruned model's accuracy
REPORT_STEP, REPORT_SWEEP_INPUT = "report", "sweep"
# Each branch step: the output later steps read, the selection step's input per branch (`<prefix>_<k>`) and
# the selection output that replaces it outside the branches.
BRANCH_STEPS: dict[str, tuple[str, str, str]] = {
    "prune": ("pruned", "pruned", "pruned"),
    "retrain": ("results", "retrained", "model"),
    "evaluate_retrained": ("results", "evaluation", "evaluation"),
}
EVALUATION_OUTPUT = "results"  # of evaluate_trained, as of evaluate_retrained
TAO_RANGE = "0 <= threshold < 1"
TAO_RANGE_WHY = ("TAO keeps the filters whose norm, divided by their layer's largest, is above it "
                 "(nvidia_tao_tf1/core/pruning/pruning.py, utils.py normalize_stat): at 1 or above every layer is "
                 "cut to min_num_filters, below 0 nothing is pruned")
_COMPONENT_REF = re.compile(r"^(?:file:)?(?P<prefix>.*?)components/[^/]+/[^/]+/component\.yml$")


class SweepError(ValueError):
    """A pipeline component the sweep cannot be written into."""


@dataclass(frozen=True)
class Sweep:
    thresholds: tuple[float, ...]
    max_map_drop: float | None = None

    @property
    def branches(self) -> int:
        return len(self.thresholds)

    def label(self) -> str:
        return f"{self.branches} branches (thresholds {', '.join(f'{t:g}' for t in self.thresholds)})"

    def choice(self) -> str:
        """How select_model chooses, in words."""
        if self.max_map_drop is None:
            return f"{SELECT_STEP} keeps the most accurate branch ({DROP_SETTING} not set)"
        return (f"{SELECT_STEP} keeps the smallest model at most {self.max_map_drop:g} points of accuracy (mAP; "
                "BodyPose AP) below the unpruned model")


def in_tao_range(threshold: float) -> bool:
    """Whether TAO prunes with `threshold` as it means to: TAO_RANGE (steps/tao/pruning.py refuses the rest too)."""
    return 0.0 <= threshold < 1.0


def parse(text: str) -> tuple[list[tuple[str, float]], list[str]]:
    """Each item of a comma list that is a finite number (as written, as read), and what is wrong with the others."""
    numbers, problems = [], []
    items = text.split(",")
    for index, item in enumerate(items, 1):
        if not item.strip():
            where = "a trailing comma leaves an empty last item" if 1 < index == len(items) \
                else "each item between commas must be a number"
            problems.append(f"item {index} is empty ({where})")
            continue
        try:
            number = float(item)
        except ValueError:
            problems.append(f"item {index} {item!r} is not a number")
            continue
        if not math.isfinite(number):
            problems.append(f"item {index} {item!r} is not a finite number")
            continue
        numbers.append((item.strip(), number))
    return numbers, problems


def thresholds_problems(text: str, component: Component) -> list[str]:
    """Every rule a `pruning_thresholds` value breaks on its own (items, range, duplicates, slots), or what the
    pipeline component lacks for a sweep."""
    port = component.inputs.get(THRESHOLD_INPUT)
    missing = [name for name in (*BRANCH_STEPS, UNPRUNED_STEP) if name not in component.jobs]
    if port is None or missing:
        lacks = f"step {', '.join(missing)}" if missing else f"{THRESHOLD_INPUT} input"
        return [f"{component.path.parent.name}/{component.path.name} has no {lacks}, which a pruning sweep needs"]
    numbers, problems = parse(text)
    seen: dict[float, str] = {}
    for item, number in numbers:
        if port.min is not None and number < port.min or port.max is not None and number > port.max:
            problems.append(f"{item} is outside the input {THRESHOLD_INPUT}'s range "
                            f"[{'-inf' if port.min is None else port.min}, {'inf' if port.max is None else port.max}]")
        elif not in_tao_range(number):
            problems.append(f"{item} is outside TAO's accepted range {TAO_RANGE} ({TAO_RANGE_WHY})")
        if number in seen:
            problems.append(f"{seen[number]} and {item} are the same threshold ({number:g}): duplicates are "
                            "refused, each branch must prune with its own")
        seen.setdefault(number, item)
    if len(text.split(",")) > SELECT_SLOTS:
        problems.append(f"{len(text.split(','))} thresholds, more than the selection step's {SELECT_SLOTS} branch "
                        "slots")
    return problems


def of(run: dict[str, Any]) -> Sweep | None:
    """The sweep a run's (checked) settings ask for; None: one threshold, nothing changes."""
    text = run.get(SETTING)
    if not text:
        return None
    drop = run.get(DROP_SETTING)
    return Sweep(tuple(number for _, number in parse(str(text))[0]), None if drop is None else float(drop))


def run_problems(run: dict[str, Any], inputs: dict[str, Any], resuming: bool = False) -> list[str]:
    """The rules between settings: the branch limit, a sweep with one threshold or a resume, a limit without a sweep."""
    sweep = of(run)
    if sweep is None:
        single = inputs.get(THRESHOLD_INPUT)
        problems = [] if single is None or in_tao_range(float(single)) else [
            f"--set {THRESHOLD_INPUT}={single}: outside TAO's accepted range {TAO_RANGE} ({TAO_RANGE_WHY})"]
        if run.get(DROP_SETTING) is not None:
            problems.append(f"--set {DROP_SETTING}: it chooses among the branches of a pruning sweep; "
                            f"set {SETTING} too")
        return problems
    problems = []
    limit = int(run.get(LIMIT_SETTING) or DEFAULT_MAX_BRANCHES)
    if sweep.branches > limit:
        problems.append(
            f"--set {SETTING}: {sweep.branches} thresholds, more than {LIMIT_SETTING}={limit}; each branch is a "
            f"prune, a full retrain and an evaluation on GPU compute (the dry run prints the cost): raise the limit "
            f"with --set {LIMIT_SETTING}={sweep.branches} (at most {SELECT_SLOTS}, the selection step's slots)")
    if THRESHOLD_INPUT in inputs:
        problems.append(f"--set {THRESHOLD_INPUT} and --set {SETTING}: a sweep prunes with each of {SETTING}; "
                        "give one of them")
    if resuming:
        problems.append(f"--set {SETTING} with a resume (--resume-from or a *_resume_from input): each branch "
                        "retrains its own pruned model, so no branch can continue one earlier retrain's checkpoints; "
                        f"submit the sweep from the start, or resume with the single {THRESHOLD_INPUT}")
    return problems


def fan_out(raw: dict, thresholds: Sequence[float], max_map_drop: float | None,
            designer_branches: int | None = None) -> dict:
    """The pipeline component `raw` (its YAML) with one literal branch per threshold and the selection step.

    With `designer_branches` N, the thresholds are N required pipeline inputs `pruning_threshold_<i>` and
    max_map_drop an optional one, bound into the branches and the selection step instead of literals.
    """
    count = designer_branches or len(thresholds)
    tree = copy.deepcopy(raw)
    jobs: dict[str, Any] = tree.get("jobs") or {}
    missing = [name for name in (*BRANCH_STEPS, UNPRUNED_STEP) if name not in jobs]
    if missing:
        raise SweepError(f"pipeline {tree.get('name')}: no step {', '.join(missing)}, which a pruning sweep needs")
    if not 1 <= count <= SELECT_SLOTS:
        raise SweepError(f"{count} branches: a sweep has 1 to {SELECT_SLOTS}")
    inputs: dict[str, Any] = tree.setdefault("inputs", {})
    if designer_branches:
        tree["display_name"] = f"{tree.get('display_name') or tree.get('name')} (pruning sweep, {count} branches)"
        declared = inputs.get(THRESHOLD_INPUT) or {"type": "number"}
        for i in range(1, count + 1):
            inputs[f"{THRESHOLD_INPUT}_{i}"] = {
                "type": "number", **{key: declared[key] for key in ("min", "max") if key in declared},
                "description": f"Pruning threshold of sweep branch {i} (steps prune_{i}, retrain_{i}, "
                               f"evaluate_retrained_{i})."}
        inputs[DROP_SETTING] = {
            "type": "number", "optional": True, "min": 0,
            "description": "Largest accuracy loss (mAP percentage points; BodyPose AP points) a branch may have "
                           "against the unpruned model; the smallest such model is chosen. Unset: the most accurate."}

    def threshold(i: int) -> Any:
        return f"${{{{parent.inputs.{THRESHOLD_INPUT}_{i}}}}}" if designer_branches else float(thresholds[i - 1])

    last = max(list(jobs).index(name) for name in BRANCH_STEPS)
    fanned: dict[str, Any] = {}
    for position, (name, node) in enumerate(jobs.items()):
        if name in BRANCH_STEPS:
            for i in range(1, count + 1):
                fanned[f"{name}_{i}"] = _branch_node(node, i, threshold(i))
        else:
            fanned[name] = _rebound(node, _outside)
        if position == last:
            fanned[SELECT_STEP] = _select_node(tree, count, threshold, max_map_drop, bool(designer_branches))
    report = fanned.get(REPORT_STEP)
    if report is not None:
        report.setdefault("inputs", {})[REPORT_SWEEP_INPUT] = _job_binding(SELECT_STEP, REPORT_SWEEP_INPUT)
    tree["jobs"] = fanned
    if not any(_binds_input(node, THRESHOLD_INPUT) for node in fanned.values()):
        inputs.pop(THRESHOLD_INPUT, None)  # no step reads the single threshold any more
    return tree


def _job_binding(step: str, port: str) -> str:
    return str(Binding("jobs", step, "outputs", port))


def _map_bindings(value: Any, change: Any) -> Any:
    """A node input (a binding, `{path: binding, mode: ...}` or a literal) with its binding passed through change."""
    if isinstance(value, dict) and "path" in value:
        return {**value, "path": _map_bindings(value["path"], change)}
    binding = parse_binding(value)
    return value if binding is None else change(binding, value)


def _rebound(node: dict, change: Any) -> dict:
    node = copy.deepcopy(node)
    node["inputs"] = {name: _map_bindings(value, change) for name, value in (node.get("inputs") or {}).items()}
    return node


def _outside(binding: Binding, value: Any) -> Any:
    """Outside the branches: what a branch step made comes from the selection step."""
    if binding.kind != "jobs" or binding.name not in BRANCH_STEPS:
        return value
    output, _, selected = BRANCH_STEPS[binding.name]
    if binding.port != output:
        raise SweepError(f"{value}: a sweep replaces {binding.name}'s {output} only")
    return _job_binding(SELECT_STEP, selected)


def _branch_node(node: dict, i: int, threshold: Any) -> dict:
    def inside(binding: Binding, value: Any) -> Any:
        if binding.kind == "jobs" and binding.name in BRANCH_STEPS:
            return _job_binding(f"{binding.name}_{i}", str(binding.port))
        if binding.kind == "inputs" and binding.name == THRESHOLD_INPUT:
            return threshold
        return value

    branch = _rebound(node, inside)
    # Branch outputs stay the job's own: the selection step's copies of the chosen one are the pipeline's.
    outputs = {name: value for name, value in (branch.get("outputs") or {}).items()
               if not (parse_binding(value) and parse_binding(value).kind == "outputs")}
    if outputs:
        branch["outputs"] = outputs
    else:
        branch.pop("outputs", None)
    branch["environment_variables"] = {**(branch.get("environment_variables") or {}), BRANCH_ENV: str(i)}
    return branch


def _select_node(tree: dict, count: int, threshold: Any, max_map_drop: float | None, designer: bool) -> dict:
    jobs = tree["jobs"]
    inputs: dict[str, Any] = {"unpruned_evaluation": _job_binding(UNPRUNED_STEP, EVALUATION_OUTPUT)}
    if designer:
        inputs[DROP_SETTING] = f"${{{{parent.inputs.{DROP_SETTING}}}}}"
    elif max_map_drop is not None:
        inputs[DROP_SETTING] = float(max_map_drop)
    for i in range(1, count + 1):
        inputs[f"threshold_{i}"] = threshold(i)
        for step, (output, prefix, _) in BRANCH_STEPS.items():
            inputs[f"{prefix}_{i}"] = _job_binding(f"{step}_{i}", output)
    # The pipeline outputs the single branch wrote now come from the chosen one.
    outputs = {selected: jobs[step]["outputs"][output] for step, (output, _, selected) in BRANCH_STEPS.items()
               if output in (jobs[step].get("outputs") or {})}
    return {"type": "command", "component": select_component_ref(jobs), "compute": SELECT_COMPUTE,
            "inputs": inputs, **({"outputs": outputs} if outputs else {})}


def select_component_ref(jobs: dict[str, Any]) -> str:
    """The selection component's path as the other steps write theirs (relative to the pipeline's folder)."""
    for node in jobs.values():
        match = _COMPONENT_REF.match(str(node.get("component", "")))
        if match:
            return match.group("prefix") + SELECT_COMPONENT
    raise SweepError(f"no step names a components/<family>/<step>/component.yml, so {SELECT_COMPONENT} has no path")


def _binds_input(node: dict, name: str) -> bool:
    for value in (node.get("inputs") or {}).values():
        binding = parse_binding(value.get("path") if isinstance(value, dict) else value)
        if binding is not None and binding.kind == "inputs" and binding.name == name:
            return True
    return False


def estimate_source(step: str, port: str | None) -> str:
    """The step whose estimate stands for a selection output: one branch, as the chosen one is."""
    for name, (_, _, selected) in BRANCH_STEPS.items():
        if step == SELECT_STEP and port == selected:
            return f"{name}_1"
    return step


def base_step(step: str) -> str:
    """`retrain_2` -> `retrain`; any other step name as it is."""
    name, _, index = step.rpartition("_")
    return name if name in BRANCH_STEPS and index.isdigit() else step


def is_extra(step: str) -> bool:
    """A step a single threshold would not run: branches 2.. and the selection."""
    return step == SELECT_STEP or (base_step(step) != step and not step.endswith("_1"))
