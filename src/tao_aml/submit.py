"""Build a pipeline job exactly as it would be sent, validate it, and (with --dry-run) stop there."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import load_job
from azure.ai.ml.entities import PipelineJob

from .pipelines import Pipeline, SettingError, Settings, effective_inputs, params_override, resolve_settings
from .yaml_model import parse_binding

LOG = logging.getLogger(__name__)


@dataclass
class StepPlan:
    name: str
    component: str
    compute: str


@dataclass
class BuiltJob:
    pipeline: Pipeline
    settings: Settings
    job: PipelineJob
    steps: list[StepPlan]


def build_job(name: str, assignments: list[str], experiment: str | None = None) -> BuiltJob:
    pipeline = Pipeline.load(name)
    settings = resolve_settings(pipeline, assignments)
    job = load_job(pipeline.job_path, params_override=params_override(pipeline, settings))
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
        steps.append(StepPlan(step_name, component, str(compute)))
    return steps


def write_resolved(built: BuiltJob, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{built.pipeline.name}.pipeline.yml"
    built.job.dump(path)
    return path
