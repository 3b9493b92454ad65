"""Build a pipeline job exactly as it would be sent, validate it, and send it (or, dry-run, stop there)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient, load_job
from azure.ai.ml.entities import Job, PipelineComponent, PipelineJob
from azure.ai.ml.exceptions import JobException

from .pipelines import (
    REPO_ROOT,
    Pipeline,
    SettingError,
    Settings,
    effective_inputs,
    params_override,
    resolve_settings,
)
from .workspace import WorkspaceError, missing_computes
from .yaml_model import parse_binding

LOG = logging.getLogger(__name__)
# The job-level input whose cluster also serves as settings.default_compute.
CPU_INPUT = "cpu_compute"
FINISHED_OK = "Completed"


@dataclass
class StepPlan:
    """One step as the printout and the graph show it; add fields here to show more per step."""

    name: str
    component: str
    compute: str
    compute_input: str | None  # the pipeline input naming the compute, e.g. gpu_compute
    upstream: tuple[str, ...]

    def details(self) -> list[str]:
        """Lines under the step's name in the graph."""
        return [self.component, f"on {self.compute}"]


@dataclass
class BuiltJob:
    pipeline: Pipeline
    settings: Settings
    job: PipelineJob
    steps: list[StepPlan]


def build_job(
    name: str, assignments: list[str], experiment: str | None = None, root: Path = REPO_ROOT
) -> BuiltJob:
    pipeline = Pipeline.load(name, root)
    settings = resolve_settings(pipeline, assignments)
    overrides = params_override(pipeline, settings)
    if CPU_INPUT in settings.inputs and "default_compute" in (pipeline.job.raw.get("settings") or {}):
        # Steps without a compute of their own (none today) must not fall back to a cluster the user replaced.
        overrides.append({"settings.default_compute": f"azureml:{settings.inputs[CPU_INPUT]}"})
    job = load_job(pipeline.job_path, params_override=overrides)
    if experiment:
        job.experiment_name = experiment
    result = job._validate()  # the public validate needs a workspace
    if not result.passed:
        raise SettingError(
            "azure-ai-ml refused the job:\n"
            + "\n".join(f"  {where}: {message}" for where, message in result.error_messages.items())
        )
    job._to_rest_object()  # what the service would receive; raises if it cannot be serialized
    return BuiltJob(pipeline, settings, job, plan_steps(pipeline, effective_inputs(pipeline, settings)))


def plan_steps(pipeline: Pipeline, values: dict[str, Any]) -> list[StepPlan]:
    steps = []
    for step_name in pipeline.component.topological_order():
        step = pipeline.component.jobs[step_name]
        binding = parse_binding(step.compute)
        compute = values.get(binding.name) if binding is not None else step.compute
        component = step.component.name if step.component else step.component_ref
        upstream = tuple(sorted(name for name in step.upstream() if name in pipeline.component.jobs))
        steps.append(
            StepPlan(step_name, component, str(compute), binding.name if binding else None, upstream)
        )
    return steps


def write_resolved(built: BuiltJob, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{built.pipeline.name}.pipeline.yml"
    built.job.dump(path)
    return path


def sent_computes(job: PipelineJob) -> dict[str, str]:
    """Step path (`main.train`) -> compute name, read from the REST form the service would receive."""
    properties = job._to_rest_object().as_dict()["properties"]
    values = {name: _literal(value) for name, value in (properties.get("inputs") or {}).items()}
    default = _compute_name((properties.get("settings") or {}).get("default_compute"))
    return _node_computes(properties.get("jobs") or {}, values, default, "")


def _node_computes(jobs: dict[str, Any], parent: dict[str, Any], default: str | None, prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, node in jobs.items():
        inputs = {key: _resolve(_literal(value), parent) for key, value in (node.get("inputs") or {}).items()}
        component = node.get("componentId")
        if isinstance(component, PipelineComponent):
            spec = component._to_rest_object().properties.component_spec
            values = {key: port.get("default") for key, port in (spec.get("inputs") or {}).items()}
            values.update({key: value for key, value in inputs.items() if value is not None})
            found.update(_node_computes(spec.get("jobs") or {}, values, default, f"{prefix}{name}."))
            continue
        compute = _compute_name(_resolve(node.get("computeId") or node.get("compute"), parent)) or default
        found[prefix + name] = compute or ""
    return found


def _literal(value: Any) -> Any:
    return value.get("value", value.get("uri")) if isinstance(value, dict) else value


def _resolve(value: Any, parent: dict[str, Any]) -> Any:
    binding = parse_binding(value)
    if binding is not None and binding.kind == "inputs":
        return parent.get(binding.name)
    return value


def _compute_name(value: Any) -> str | None:
    return str(value).removeprefix("azureml:") if value else None


def send(client: MLClient, built: BuiltJob) -> Job:
    """Check every compute the job names exists, then create the job."""
    kinds = {step.compute: step.compute_input or "" for step in built.steps}
    names = sorted(set(sent_computes(built.job).values()) - {""})
    problems = missing_computes(client, names, lambda name: "gpu" if "gpu" in kinds.get(name, "") else "cpu")
    if problems:
        raise WorkspaceError("\n".join(problems))
    return client.jobs.create_or_update(built.job, experiment_name=built.job.experiment_name)


def follow(client: MLClient, name: str) -> str:
    """Stream the job's logs until it ends; its final status ('Completed' on success)."""
    try:
        client.jobs.stream(name)
    except JobException as err:
        if isinstance(err.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from err  # azure-ai-ml wraps Ctrl-C; the job itself keeps running
        LOG.debug("job %s ended with an error: %s", name, err)
    return str(client.jobs.get(name).status)
