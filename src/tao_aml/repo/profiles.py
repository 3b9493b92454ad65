"""Profiles: named sets of pipeline input values, kept in pipelines/<name>/profiles.yml.

`full: {}` is the pipeline's own defaults; `smoke` runs every step on a few images for few epochs.
A profile's keys are what `--set` takes (NAME or STEP.FIELD) and are checked by the same code, so a
profile can be given to the submitter as `--profile`, or printed as `--set` pairs for `az ml job create`.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from tao_aml.repo.pipelines import (
    RUN_SETTINGS,
    Pipeline,
    SettingError,
    params_override,
    read_settings_file,
    resolve_settings,
)
from tao_aml.repo.run_shape import GPUS_INPUT, NODES_INPUT

PROFILES_FILE = "profiles.yml"


def profiles_path(pipeline: Pipeline) -> Path:
    return pipeline.job_path.parent / PROFILES_FILE


def load_profiles(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """Profile name -> {key: value}; the file's shape is checked, not yet its values."""
    path = profiles_path(pipeline)
    if not path.is_file():
        raise SettingError(f"{path}: no such file; pipeline {pipeline.name!r} has no profiles")
    data = read_settings_file(path)
    if not isinstance(data, dict) or not all(isinstance(values, dict) for values in data.values()):
        raise SettingError(f"{path}: expected a mapping of profile names to mappings of input values")
    return {str(name): values for name, values in data.items()}


def format_value(value: Any) -> str:
    """A YAML scalar as `--set` text that `parse_value` reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def profile_assignments(pipeline: Pipeline, name: str) -> list[str]:
    """The profile as `--set` assignments, each checked like `--set`; problems name the file and key."""
    path = profiles_path(pipeline)
    profiles = load_profiles(pipeline)
    if name not in profiles:
        raise SettingError(f"{path}: no profile {name!r}; profiles: {', '.join(profiles)}")
    assignments, problems = [], []
    for key, value in profiles[name].items():
        if isinstance(value, (dict, list)) or value is None:
            problems.append(f"{path}: {name}.{key}: expected a single value, got {value!r}")
            continue
        assignment = f"{key}={format_value(value)}"
        try:
            resolve_settings(pipeline, [assignment])
        except SettingError as err:
            problems += [f"{path}: {name}.{key}: {line}" for line in str(err).splitlines()]
            continue
        assignments.append(assignment)
    if problems:
        raise SettingError("\n".join(problems))
    return assignments


def profiles_keys(assignments: list[str]) -> list[str]:
    return [assignment.partition("=")[0] for assignment in assignments]


def show(pipeline: Pipeline, name: str) -> list[str]:
    """The profile as `az ml job create --set` lines, then as the submitter's `--set` lines."""
    assignments = profile_assignments(pipeline, name)
    settings = resolve_settings(pipeline, assignments)
    az_pairs = [(key, value) for pair in params_override(pipeline, settings) for key, value in pair.items()]
    relative = pipeline.job_path.relative_to(pipeline.job_path.parents[2])
    literal = sorted(set(profiles_keys(assignments)) & {*RUN_SETTINGS, NODES_INPUT, GPUS_INPUT})
    if literal:
        # Literal fields of the written job (azure/render.py) that `--set` on pipeline.yml cannot reach.
        relative = Path("build") / pipeline.name / f"{pipeline.name}.pipeline.yml"
        lines = [f"# {', '.join(literal)}: write the job first with `tao-aml submit {pipeline.name} --profile {name} "
                 "--dry-run`, then", f"# az ml job create --file {relative} with:"]
    else:
        lines = [f"# az ml job create --file {relative} with:"]
    lines += ["--set " + shlex.quote(f"{key}={format_value(value)}") for key, value in az_pairs]
    lines.append(f"# tao-aml submit {pipeline.name} with (the same as --profile {name}):")
    lines += ["--set " + shlex.quote(assignment) for assignment in assignments]
    return lines
