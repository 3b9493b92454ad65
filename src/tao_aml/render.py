"""The job as the service receives it, written as YAML files that `load_job` and `az ml job create` take.

The REST contract types a node's `resources.instance_count`, `resources.instance_type` and
`distribution.process_count_per_instance` as literals, and no Microsoft document shows the service
resolving a `${{parent.inputs...}}` binding there inside a pipeline component (shared/facts/azureml.md,
"Documented ground"). So these are not pipeline inputs: they are the run's shape, and this module writes
them as literals into a copy of the pipeline component, next to a copy of the pipeline job that uses it.
The copies name the repository's command components by relative path, so the code snapshot, and with it
Azure ML's reuse of unchanged steps, is the same as when the repository's own files are submitted.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml.entities import Component, PipelineJob

from . import images, vm_sizes
from .yaml_model import parse_binding

# Pipeline inputs that say how many nodes and GPUs the distributed steps use; they still feed `--gpus`
# and the report, and the rendered literals always equal them.
NODES_INPUT, GPUS_INPUT = "nodes", "gpus_per_node"
GPU_COMPUTE_INPUT = "gpu_compute"
SERVERLESS = "serverless"
SERVERLESS_SETTINGS = ("gpu_instance_type", "cpu_instance_type", "spot")
# /dev/shm of a TAO container: NVIDIA runs TAO with `--shm-size 16G`, Azure ML's default is 2g
# (shared/facts/azureml.md). The TAO components declare it in `resources:`; the run's setting replaces it.
DEFAULT_SHM_SIZE = "16g"
DATA_TYPES = ("uri_folder", "uri_file", "custom_model", "mlflow_model", "triton_model", "mltable")


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
    return yaml.safe_load((base / ref.removeprefix("file:")).read_text(encoding="utf-8"))


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


def render_component(path: Path, shape: RunShape, out_dir: Path, registry: str | None = None) -> dict:
    """The pipeline component with the shape's literals and component paths relative to out_dir.

    With a container registry, each command component is written to out_dir too, naming the prebuilt
    image of its environment (images.py) instead of the environment's build context.
    """
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    tree = apply_overrides(raw, shape_overrides(raw, shape) + mode_overrides(raw, path.parent, shape.input_mode)
                           + shm_overrides(raw, path.parent, shape.shm_size))
    prebuilt = images.environments(path.parents[2]) if registry else {}
    for step in tree.get("jobs", {}).values():
        if shape.serverless:
            step.pop("compute", None)  # no cluster: the job's default compute is serverless
        ref = str(step.get("component", ""))
        if ref and not ref.startswith("azureml:"):
            component = (path.parent / ref.removeprefix("file:")).resolve()
            if registry:
                component = with_image(component, out_dir, prebuilt, registry)
            step["component"] = relative(component, out_dir)
    return tree


def with_image(component: Path, out_dir: Path, prebuilt: dict[Path, images.EnvironmentImage], registry: str) -> Path:
    """A copy of a command component under out_dir/components/ whose environment is the prebuilt image."""
    raw = yaml.safe_load(component.read_text(encoding="utf-8"))
    env = str(raw.get("environment", ""))
    image = prebuilt.get((component.parent / env.removeprefix("file:")).resolve()) if env.startswith("file:") else None
    if image is None:
        return component
    target = out_dir / "components" / component.parent.parent.name / component.parent.name / component.name
    target.parent.mkdir(parents=True, exist_ok=True)
    raw["environment"] = {"image": image.reference(registry), "os_type": "linux"}
    if isinstance(raw.get("code"), str):
        raw["code"] = relative(component.parent / raw["code"], target.parent)
    dump(target, raw)
    return target


def relative(target: Path, start: Path) -> str:
    """A path azure-ai-ml resolves from start; absolute when no relative path exists (another drive)."""
    try:
        return Path(os.path.relpath(target.resolve(), start.resolve())).as_posix()
    except ValueError:
        return target.resolve().as_posix()


def write_job(
    job_path: Path, component_path: Path, pairs: list[dict[str, Any]], shape: RunShape, out_dir: Path, name: str,
    registry: str | None = None,
) -> Path:
    """Write `<name>.pipeline_component.yml` and `<name>.pipeline.yml` (the job as sent) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    component_file = out_dir / f"{name}.pipeline_component.yml"
    dump(component_file, render_component(component_path, shape, out_dir, registry))
    job = apply_overrides(yaml.safe_load(job_path.read_text(encoding="utf-8")), pairs)
    # pipeline.yml's description tells a user how to submit that file; Studio shows this one on a run it made.
    job["description"] = (f"{job.get('display_name') or name}, written by tao-aml from "
                          f"{job_path.parent.parent.name}/{job_path.parent.name}/{job_path.name} with this run's "
                          "settings.")
    if shape.serverless:
        job.setdefault("settings", {})["default_compute"] = f"azureml:{SERVERLESS}"
    for step in job.get("jobs", {}).values():
        if Path(str(step.get("component", ""))).name == component_path.name:
            step["component"] = f"./{component_file.name}"
    for value in job.get("inputs", {}).values():
        local = isinstance(value, dict) and value.get("path") and "://" not in str(value["path"])
        if local and not str(value["path"]).startswith("azureml:"):
            value["path"] = relative(job_path.parent / value["path"], out_dir)
    job_file = out_dir / f"{name}.pipeline.yml"
    dump(job_file, job)
    return job_file


def dump(path: Path, tree: dict) -> None:
    header = "# Written by tao-aml; `az ml job create --file` and azure-ai-ml's load_job take it as it is.\n"
    path.write_text(header + yaml.safe_dump(tree, sort_keys=False, width=120), encoding="utf-8")


def rest_body(job: PipelineJob) -> dict[str, Any]:
    """The job's REST body (`_to_rest_object()`), anonymous components expanded into their REST specs.

    Offline, azure-ai-ml keeps each local component as an entity in `componentId`; at submission it
    sends that component's spec first and the job then names it by id. Expanding it here shows, in one
    JSON document, every field the service would receive, so two runs' bodies can be diffed.
    """
    return _plain(job._to_rest_object().as_dict())


def _plain(value: Any) -> Any:
    if isinstance(value, Component):
        rest = value._to_rest_object()
        return {"anonymous_component": value.name, "component_spec": _plain(rest.properties.component_spec)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict())
    if hasattr(value, "_to_dict"):
        return _plain(value._to_dict())
    return str(value)


def write_rest_body(job: PipelineJob, path: Path) -> Path:
    path.write_text(json.dumps(rest_body(job), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
