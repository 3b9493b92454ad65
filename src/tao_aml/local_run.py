"""Run a pipeline on this machine, step by step, from the same YAML Azure ML runs.

Each step's command is rendered as Azure ML renders it (`${{inputs.x}}` replaced, `$[[...]]` kept
only when its optional inputs are set), run from the component's code folder, and given a folder
per output. On a TAO workstation the TAO CLIs are on PATH; the tests put stand-ins there instead.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pipelines import Pipeline, Settings, effective_inputs
from .yaml_model import Component, Step, parse_binding

LOG = logging.getLogger(__name__)
PORT_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)
DATA_TYPES = {"uri_folder", "uri_file", "custom_model", "mlflow_model", "triton_model", "mltable"}


class StepFailed(RuntimeError):
    def __init__(self, step: str, code: int, command: str, log: Path) -> None:
        super().__init__(f"step {step} failed with exit code {code}; its log: {log}")
        self.step, self.code, self.command, self.log = step, code, command, log


@dataclass
class StepRun:
    name: str
    command: str
    outputs: dict[str, Path]
    log: Path


def render_command(command: str, values: dict[str, Any], outputs: dict[str, Path]) -> str:
    """Azure ML's substitution: optional blocks drop out when any input in them is unset."""

    def text(kind: str, name: str) -> str:
        if kind == "outputs":
            return str(outputs[name])
        value = values.get(name)
        return str(value)  # booleans render as True/False, as Azure ML passes them

    def block(match: re.Match) -> str:
        inner = match.group(1)
        names = PORT_REF.findall(inner)
        if any(kind == "inputs" and values.get(name) is None for kind, name in names):
            return ""
        return PORT_REF.sub(lambda m: text(m.group(1), m.group(2)), inner)

    rendered = OPTIONAL_BLOCK.sub(block, command)
    return " ".join(PORT_REF.sub(lambda m: text(m.group(1), m.group(2)), rendered).split())


class LocalRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        settings: Settings,
        workdir: Path,
        data_inputs: dict[str, Path] | None = None,
        env: dict[str, str] | None = None,
        path_for_environment: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.workdir = workdir
        self.env = env or {}
        self.path_for_environment = path_for_environment or (lambda _env: [])
        self.values = effective_inputs(pipeline, settings)
        # Data inputs: local paths the job gives (relative to pipeline.yml), then what the caller connects.
        for name, port in pipeline.job.inputs.items():
            if port.path is not None and name in self.values:
                self.values[name] = (pipeline.job_path.parent / port.path).resolve()
        for port_name, value in list(self.values.items()):
            binding = parse_binding(value) if isinstance(value, str) else None
            if binding is not None and binding.kind == "inputs":
                job_port = pipeline.job.inputs.get(binding.name)
                if job_port is not None and job_port.path is not None:
                    self.values[port_name] = (pipeline.job_path.parent / job_port.path).resolve()
        self.values.update(data_inputs or {})
        self.step_outputs: dict[str, dict[str, Path]] = {}

    def run(self, only: list[str] | None = None) -> list[StepRun]:
        runs = []
        for name in self.pipeline.component.topological_order():
            if only is not None and name not in only:
                continue
            runs.append(self.run_step(self.pipeline.component.jobs[name]))
        return runs

    def step_values(self, step: Step) -> dict[str, Any]:
        child = step.component
        assert child is not None, f"step {step.name} uses a non-local component"
        values = {name: port.default for name, port in child.inputs.items()}
        for name, raw in step.inputs.items():
            binding = parse_binding(raw)
            if binding is None:
                values[name] = raw
            elif binding.kind == "inputs":
                values[name] = self.values.get(binding.name)
            else:
                values[name] = self.step_outputs[binding.name][binding.port or ""]
        return values

    def run_step(self, step: Step) -> StepRun:
        child: Component | None = step.component
        assert child is not None
        outputs = {name: self.workdir / step.name / name for name in child.outputs}
        for folder in outputs.values():
            folder.mkdir(parents=True, exist_ok=True)
        command = render_command(child.command, self.step_values(step), outputs)
        code_dir = (child.path.parent / str(child.raw.get("code", "."))).resolve()
        environment = Path(str(child.raw.get("environment", "")).removeprefix("file:")).parent.name
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join([str(code_dir), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        # `python` in a command is this interpreter, as it is the environment's in Azure ML.
        env["PATH"] = os.pathsep.join(
            self.path_for_environment(environment) + [os.path.dirname(sys.executable), env.get("PATH", "")]
        )
        log = self.workdir / step.name / "step.log"
        LOG.info("step %s: %s", step.name, command)
        with open(log, "w", encoding="utf-8") as handle:
            code = subprocess.call(
                ["bash", "-c", command], cwd=code_dir, env=env, stdout=handle, stderr=subprocess.STDOUT
            )
        if code != 0:
            raise StepFailed(step.name, code, command, log)
        self.step_outputs[step.name] = outputs
        return StepRun(step.name, command, outputs, log)
