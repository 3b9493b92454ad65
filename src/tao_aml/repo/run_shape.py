"""The run's shape and its edits of a pipeline component: node and process counts, serverless sizes, spot,
input modes and /dev/shm, as `params_override` pairs on the repository's YAML.

Read by the submitter and Designer registration (azure/render.py, azure/register.py), by offline checks
(repo/validation.py, repo/run_checks.py) and by local runs (local/local_run.py), so it lives with the
repository: it needs the YAML only, not azure-ai-ml.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tao_aml.azure import vm_sizes
from tao_aml.repo.yaml_model import DATA_TYPES, parse_binding, parse_yaml

# Pipeline inputs that say how many nodes and GPUs the distributed steps use; they still feed `--gpus`
# and the report, and the rendered literals always equal them.
NODES_INPUT, GPUS_INPUT = "nodes", "gpus_per_node"
GPU_COMPUTE_INPUT = "gpu_compute"
SERVERLESS = "serverless"
SERVERLESS_SETTINGS = ("gpu_instance_type", "cpu_instance_type", "spot")
# /dev/shm of a TAO container: NVIDIA runs TAO with `--shm-size 16G`, Azure ML's default is 2g
# (shared/facts/azureml.md). The TAO components declare it in `resources:`; the run's setting replaces it.
DEFAULT_SHM_SIZE = "16g"


@dataclass(frozen=True)
class RunShape:
    """Literal run settings: node and process counts, and serverless instance types."""

    nodes: int = 1
    gpus_per_node: int = 1
    serverless: bool = False
    gpu_instance_type: str = vm_sizes.DEFAULT_GPU_SIZE
    cpu_instance_type: str = vm_sizes.DEFAULT_CPU_SIZE
    spot: bool = False
    input_mode: str = "auto"  # auto: each input's mode as the pipeline component says; else all GPU steps' data
    shm_size: str = DEFAULT_SHM_SIZE  # every TAO step's /dev/shm

    @property
    def label(self) -> str:
        """Suffix of a published pipeline component of this shape (`2x4`)."""
        return f"{self.nodes}x{self.gpus_per_node}"


def is_distributed(step_raw: dict) -> bool:
    return "distribution" in step_raw


def is_gpu_step(step_raw: dict) -> bool:
    binding = parse_binding(step_raw.get("compute"))
    return binding is not None and binding.name == GPU_COMPUTE_INPUT


def shape_overrides(raw: dict, shape: RunShape) -> list[dict[str, Any]]:
    """`params_override` pairs that give a pipeline component this shape (also for `load_component`)."""
    pairs: list[dict[str, Any]] = []
    for name, step in (raw.get("jobs") or {}).items():
        where = f"jobs.{name}"
        if is_distributed(step):
            pairs += [
                {f"{where}.resources.instance_count": shape.nodes},
                {f"{where}.distribution.process_count_per_instance": shape.gpus_per_node},
            ]
        if shape.serverless:
            size = shape.gpu_instance_type if is_gpu_step(step) else shape.cpu_instance_type
            pairs.append({f"{where}.resources.instance_type": size})
            if shape.spot:
                pairs.append({f"{where}.queue_settings.job_tier": "spot"})
    for name, value in ((NODES_INPUT, shape.nodes), (GPUS_INPUT, shape.gpus_per_node)):
        if name in (raw.get("inputs") or {}):
            pairs.append({f"inputs.{name}.default": value})
    return pairs


def local_component(base: Path, step_raw: dict) -> dict | None:
    """The command component a step names by path, as YAML; None for a registered one (`azureml:`)."""
    ref = str(step_raw.get("component", ""))
    if not ref or ref.startswith("azureml:"):
        return None
    return parse_yaml((base / ref.removeprefix("file:")).read_text(encoding="utf-8"))


def shm_size(step_raw: dict, component_raw: dict | None, setting: str | None = None) -> str | None:
    """A step's /dev/shm: `setting` on a step whose node or component declares one (the TAO steps), else none."""
    declared = (step_raw.get("resources") or {}).get("shm_size") or ((component_raw or {}).get("resources") or {}).get(
        "shm_size")
    return (setting or declared) if declared else None


def shm_overrides(raw: dict, base: Path, size: str) -> list[dict[str, Any]]:
    """`size` on every step of a pipeline component that runs a TAO container.

    A node's own `resources` replace its component's (azure-ai-ml copies them only to a node without any),
    so the size is written on each node, and the body sent carries it on every TAO step.
    """
    return [{f"jobs.{name}.resources.shm_size": size} for name, step in (raw.get("jobs") or {}).items()
            if shm_size(step, local_component(base, step))]


def mode_overrides(raw: dict, base: Path, mode: str) -> list[dict[str, Any]]:
    """Every GPU step's data inputs from earlier steps read in `mode` (none for "auto")."""
    if mode == "auto":
        return []
    pairs: list[dict[str, Any]] = []
    for name, step in (raw.get("jobs") or {}).items():
        component = local_component(base, step)
        if not is_gpu_step(step) or component is None:
            continue
        ports = component.get("inputs") or {}
        for input_name, value in (step.get("inputs") or {}).items():
            path = value.get("path") if isinstance(value, dict) else value
            binding = parse_binding(path)
            if binding is not None and binding.kind == "jobs" and ports.get(input_name, {}).get("type") in DATA_TYPES:
                pairs.append({f"jobs.{name}.inputs.{input_name}": {"path": path, "mode": mode}})
    return pairs


def apply_overrides(tree: dict, pairs: list[dict[str, Any]]) -> dict:
    """Set each dotted key in a copy of tree, creating mappings on the way (as azure-ai-ml's `--set` does)."""
    tree = copy.deepcopy(tree)
    for pair in pairs:
        for dotted, value in pair.items():
            *parents, last = dotted.split(".")
            node = tree
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
    return tree
