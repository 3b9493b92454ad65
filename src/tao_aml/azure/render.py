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
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml.entities import Component, PipelineJob

from tao_aml.azure import images
from tao_aml.repo import sweep as sweeps
from tao_aml.repo.run_shape import SERVERLESS, RunShape, apply_overrides, mode_overrides, shape_overrides, shm_overrides
from tao_aml.repo.yaml_model import YAML_DUMPER, parse_yaml


def render_component(path: Path, shape: RunShape, out_dir: Path, registry: str | None = None,
                     sweep: sweeps.Sweep | None = None) -> dict:
    """The pipeline component with the shape's literals and component paths relative to out_dir.

    With a container registry, each command component is written to out_dir too, naming the prebuilt
    image of its environment (images.py) instead of the environment's build context. With a pruning
    sweep, its branches and selection step are written first (repo/sweep.py), and shaped as the rest.
    """
    raw = parse_yaml(path.read_text(encoding="utf-8"))
    if sweep is not None:
        raw = sweeps.fan_out(raw, sweep.thresholds, sweep.max_map_drop)
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
    raw = parse_yaml(component.read_text(encoding="utf-8"))
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
    registry: str | None = None, sweep: sweeps.Sweep | None = None,
) -> Path:
    """Write `<name>.pipeline_component.yml` and `<name>.pipeline.yml` (the job as sent) into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    component_file = out_dir / f"{name}.pipeline_component.yml"
    dump(component_file, render_component(component_path, shape, out_dir, registry, sweep))
    job = apply_overrides(parse_yaml(job_path.read_text(encoding="utf-8")), pairs)
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
    path.write_text(header + yaml.dump(tree, Dumper=YAML_DUMPER, sort_keys=False, width=120), encoding="utf-8")


def rest_body(job: PipelineJob) -> dict[str, Any]:
    """The job's REST body (`_to_rest_object()`), anonymous components expanded into their REST specs.

    Offline, azure-ai-ml keeps each local component as an entity in `componentId`; at submission it
    sends that component's spec first and the job then names it by id. Expanding it here shows, in one
    JSON document, every field the service would receive, so two runs' bodies can be diffed.
    """
    return _plain(job._to_rest_object().as_dict(), {})


def _plain(value: Any, specs: dict[int, Any]) -> Any:
    """`value` as JSON types; each component's REST spec is made once (`specs`), however many steps use it."""
    if isinstance(value, Component):
        if id(value) not in specs:
            specs[id(value)] = _plain(value._to_rest_object().properties.component_spec, specs)
        return {"anonymous_component": value.name, "component_spec": copy.deepcopy(specs[id(value)])}
    if isinstance(value, dict):
        return {str(key): _plain(item, specs) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, specs) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "as_dict"):
        return _plain(value.as_dict(), specs)
    if hasattr(value, "_to_dict"):
        return _plain(value._to_dict(), specs)
    return str(value)


def write_rest_body(job: PipelineJob, path: Path) -> Path:
    path.write_text(json.dumps(rest_body(job), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
