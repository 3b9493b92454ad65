"""The pipelines this repository ships, and how user settings become pipeline inputs.

`--set NAME=VALUE` sets an input of the pipeline component; `--set STEP.FIELD=VALUE` sets a field of
the TAO spec that step reads, through the pipeline input bound to the step's `overrides`. Both are
checked here, offline, before any job is built: unknown names list the valid ones, values are typed
against the input's declaration or TAO's spec schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tao_aml.repo import sweep, yaml_model
from tao_aml.repo.input_rules import literal_problem, override_problem
from tao_aml.repo.problems import did_you_mean
from tao_aml.repo.spec_check import override_problems, spec_uses
from tao_aml.repo.yaml_model import Component, parse_binding
from tao_aml.steps.common import StepError
from tao_aml.steps.data.formats.kitti import check_class_names
from tao_aml.steps.specs.spec_edit import yaml12_value

REPO_ROOT = Path(__file__).resolve().parents[3]
# The pipeline job wraps the reusable pipeline component as this one step.
WRAPPER_STEP = "main"
DATA_URI_PREFIXES = ("azureml:", "https://", "wasbs://", "abfss://")
PRIMITIVE_TYPES = ("string", "integer", "number", "boolean")
# Inputs the submitter fills itself: the dry run's GPU-hour estimate for the report, and each training step's
# checkpoints (`resume_from`, from --resume-from); spec overrides come from --set STEP.FIELD=VALUE.
ESTIMATE_INPUT = "gpu_hours_estimate"
RESUME_PORT = "resume_from"
# Settings of the run itself, written as literals into the job (azure/render.py), not pipeline inputs.
RUN_SETTINGS = {
    "gpu_instance_type": yaml_model.Port("gpu_instance_type", "string", description="serverless size of GPU steps"),
    "cpu_instance_type": yaml_model.Port("cpu_instance_type", "string", description="serverless size of CPU steps"),
    "spot": yaml_model.Port("spot", "boolean", description="serverless steps at the spot tier"),
    "shm_size": yaml_model.Port("shm_size", "string", description="/dev/shm of every TAO step (default 16g)"),
    "input_mode": yaml_model.Port(
        "input_mode", "string", enum=["auto", "download", "ro_mount"],
        description="how GPU steps read data from earlier steps: as the pipeline says (auto), or all one way",
    ),
    sweep.SETTING: yaml_model.Port(
        sweep.SETTING, "string", optional=True,
        description="a pruning sweep: one prune, retrain and evaluation per threshold, e.g. 0.05,0.1,0.2 "
                    "(replaces pruning_threshold)",
    ),
    sweep.LIMIT_SETTING: yaml_model.Port(
        sweep.LIMIT_SETTING, "integer", default=sweep.DEFAULT_MAX_BRANCHES, min=1, max=sweep.SELECT_SLOTS,
        description=f"most branches a pruning sweep may have (default {sweep.DEFAULT_MAX_BRANCHES})",
    ),
    sweep.DROP_SETTING: yaml_model.Port(
        sweep.DROP_SETTING, "number", optional=True, min=0,
        description="a sweep keeps the smallest model within this accuracy loss (mAP/AP points) of the unpruned "
                    "one; unset: the most accurate",
    ),
}


class SettingError(ValueError):
    """A user setting that names nothing or does not fit its type."""


def unknown_name(flag: str, name: str, kind: str, choices: Sequence[str], where: str = "") -> str:
    """`--set trian_epochs: no pipeline input 'trian_epochs'; did you mean train_epochs? ...` and the choices."""
    return f"{flag} {name}: no {kind} {name!r}{where}{did_you_mean(name, choices)} ({kind}s: {', '.join(choices)})"


def read_settings_file(path: Path) -> Any:
    """A YAML file of settings (profiles.yml, data_assets.yml); a file that is not UTF-8 YAML is one clear line."""
    try:
        return yaml_model.parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise SettingError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})") \
            from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SettingError(f"{path}: not valid YAML ({where}{err.problem})") from None
    except (OSError, yaml.YAMLError) as err:
        raise SettingError(f"{path}: not readable YAML ({err})") from None


@dataclass
class Pipeline:
    name: str
    job_path: Path
    component: Component  # the reusable pipeline component
    job: Component

    @classmethod
    def load(cls, name: str, root: Path = REPO_ROOT) -> Pipeline:
        # Only a plain folder name of pipelines/: a path would put the job's files beside someone else's.
        known = sorted(p.parent.name for p in (root / "pipelines").glob("*/pipeline.yml"))
        if name not in known:
            raise SettingError(f"no pipeline {name!r}; known pipelines: {', '.join(known)} "
                               "(the PIPELINE argument is a folder name of pipelines/, not a path)")
        job_path = root / "pipelines" / name / "pipeline.yml"
        job = yaml_model.load(job_path)
        component = job.jobs[WRAPPER_STEP].component
        if component is None:
            raise SettingError(f"{job_path}: jobs.{WRAPPER_STEP} does not use a local pipeline component")
        return cls(name, job_path, component, job)

    def spec_override_inputs(self) -> dict[str, tuple[str, Path, str]]:
        """Step name -> (pipeline input holding its overrides, template path, spec root)."""
        found = {}
        for step_name, template, root in spec_uses(self.component):
            binding = parse_binding(self.component.jobs[step_name].inputs.get("overrides"))
            if binding is not None and binding.kind == "inputs":
                found[step_name] = (binding.name, template, root)
        return found

    def resume_inputs(self) -> dict[str, str]:
        """Step name -> the pipeline input its `resume_from` is bound to (train -> train_resume_from), in run order."""
        found = {}
        for step_name in self.component.topological_order():
            binding = parse_binding(self.component.jobs[step_name].inputs.get(RESUME_PORT))
            if binding is not None and binding.kind == "inputs":
                found[step_name] = binding.name
        return found

    def internal_inputs(self) -> set[str]:
        """Inputs the submitter fills from other options: left out of every list of names to choose from."""
        found = {name for name, _, _ in self.spec_override_inputs().values()} | set(self.resume_inputs().values())
        return found | ({ESTIMATE_INPUT} & set(self.component.inputs))

    def settable_inputs(self, data: bool) -> list[str]:
        """The data inputs (`--input`), or the other inputs and run settings (`--set`), a user gives by name."""
        ports = {**self.component.inputs, **({} if data else RUN_SETTINGS)}
        internal = self.internal_inputs()
        return [name for name, port in ports.items()
                if name not in internal and (port.type not in PRIMITIVE_TYPES) == data]


@dataclass
class Settings:
    """Pipeline input values and spec overrides, as the user gave them."""

    inputs: dict[str, Any] = field(default_factory=dict)
    spec_overrides: dict[str, list[str]] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)  # data input -> URI (azureml://jobs/...)
    run: dict[str, Any] = field(default_factory=dict)  # RUN_SETTINGS values
    omitted: list[str] = field(default_factory=list)  # optional inputs given an empty value: not sent


def parse_value(port: yaml_model.Port, text: str) -> Any:
    """A command-line string as a value of the input's type, read as YAML 1.2 reads it (`010` is 10, not 8)."""
    if port.type in ("string",) or port.type not in ("integer", "number", "boolean"):
        return text
    value = yaml12_value(text)
    if port.type == "number" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return value


def resolve_settings(pipeline: Pipeline, assignments: list[str]) -> Settings:
    """Check each NAME=VALUE / STEP.FIELD=VALUE; every problem is reported at once."""
    settings = Settings()
    problems = []
    override_inputs = pipeline.spec_override_inputs()
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(f"--set {assignment!r}: expected NAME=VALUE or STEP.FIELD=VALUE")
            continue
        if "." in name:
            step, _, spec_field = name.partition(".")
            if step not in override_inputs:
                problems.append(
                    f"--set {name}: step {step!r} takes no spec overrides; steps that do: "
                    + ", ".join(sorted(override_inputs))
                )
                continue
            problem = override_problem(f"{spec_field}={text}")
            if problem:
                problems.append(f"--set {name}: {problem}")
            else:
                settings.spec_overrides.setdefault(step, []).append(f"{spec_field}={text}")
            continue
        port = pipeline.component.inputs.get(name) or RUN_SETTINGS.get(name)
        if port is None:
            problems.append(unknown_name("--set", name, "pipeline input", pipeline.settable_inputs(data=False)))
            continue
        if port.type not in ("string", "integer", "number", "boolean"):
            # A data input takes an Azure ML reference: a data asset or a datastore / job-output path.
            if text.startswith(DATA_URI_PREFIXES):
                settings.data[name] = text
            else:
                problems.append(
                    f"--set {name}={text}: a {port.type} input takes an Azure ML data reference, e.g. "
                    f"azureml:my-data:1 or azureml://datastores/<store>/paths/<folder>"
                )
            continue
        if not text.strip():
            # The service refuses an optional string sent as "" (facts/azureml.md): leave it unset instead.
            if port.optional:
                settings.omitted.append(name)
                settings.inputs.pop(name, None)
            else:
                problems.append(f"--set {name}=: an empty value; {name} is required ({port.type})")
            continue
        value = parse_value(port, text)
        problem = literal_problem(port, value)
        if problem:
            problems.append(f"--set {name}: {problem}")
            continue
        if name == sweep.SETTING:
            found = sweep.thresholds_problems(text, pipeline.component)
            problems += [f"--set {name}={text}: {item}" for item in found]
            if found:
                continue
        if name in RUN_SETTINGS:
            settings.run[name] = value
        else:
            settings.inputs[name] = value
    classes_port = pipeline.component.inputs.get("classes")
    classes_text = settings.inputs.get("classes", classes_port.default if classes_port else None)
    classes = [c.strip() for c in str(classes_text).split(",") if c.strip()] if classes_text else None
    try:
        check_class_names(classes or [])
    except StepError as err:
        problems.append(f"--set classes={classes_text}: {err}")
    for step, overrides in settings.spec_overrides.items():
        input_name, template, root = override_inputs[step]
        problems += [f"--set {step}.{override}: {message}" if override else f"--set {step}.*: the {step} spec "
                     f"with these overrides: {message}"
                     for override, message in override_problems(template, root, overrides, classes)]
        settings.inputs[input_name] = ";".join(overrides)
    if problems:
        raise SettingError("\n".join(problems))
    return settings


def params_override(pipeline: Pipeline, settings: Settings) -> list[dict[str, Any]]:
    """The settings as `az ml job create --set` pairs (azure-ai-ml's params_override).

    Inputs the job itself declares (the computes) are set there; the rest on the wrapped component.
    Data inputs are given as `{"type": ..., "path": URI}`, the form a job YAML input takes.
    """
    def key(name: str) -> str:
        return f"inputs.{name}" if name in pipeline.job.inputs else f"jobs.{WRAPPER_STEP}.inputs.{name}"

    pairs: list[dict[str, Any]] = [{key(name): value} for name, value in settings.inputs.items()]
    pairs += [
        {key(name): {"type": pipeline.component.inputs[name].type, "path": uri}}
        for name, uri in settings.data.items()
    ]
    return pairs


def effective_inputs(pipeline: Pipeline, settings: Settings) -> dict[str, Any]:
    """The pipeline component's input values after job-level values and the user's settings."""
    values = {name: port.default for name, port in pipeline.component.inputs.items()}
    wrapper = pipeline.job.jobs[WRAPPER_STEP]
    for name, value in wrapper.inputs.items():
        binding = parse_binding(value) if not isinstance(value, dict) else None
        if binding is not None and binding.kind == "inputs":
            job_port = pipeline.job.inputs.get(binding.name)
            if job_port is not None:
                value = job_port.path if job_port.default is None else job_port.default
        values[name] = value
    values.update(settings.inputs)
    values.update(settings.data)
    return values
