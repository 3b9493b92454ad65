"""The components and pipelines of this repository as plain data, read from their YAML.

azure-ai-ml loads and validates these files too; this model is what the project's own checks,
the local runner and the dry-run printout walk, because it keeps the raw bindings
(`${{parent.jobs.x.outputs.y}}`) that azure-ai-ml accepts without checking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# PyYAML's safe loader on libyaml where the wheel has it (it does on every platform PyPI serves): the same
# YAML 1.1 safe constructors, about ten times faster than the pure-Python parser, which dominated dry runs.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # writes the same text as safe_dump
# Azure ML's data types: an input or output of one of these holds a path, never a literal value.
DATA_TYPES = frozenset({"uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model", "triton_model"})
BINDING = re.compile(
    r"^\$\{\{\s*parent\.(inputs|outputs|jobs)\.([A-Za-z0-9_]+)(?:\.(inputs|outputs)\.([A-Za-z0-9_]+))?\s*\}\}$"
)


@dataclass(frozen=True)
class Binding:
    """`${{parent.inputs.x}}`, `${{parent.outputs.x}}` or `${{parent.jobs.step.outputs.x}}`."""

    kind: str  # "inputs", "outputs" or "jobs"
    name: str  # parent input/output name, or the step name for "jobs"
    port_kind: str | None = None  # for "jobs": "outputs" (or "inputs")
    port: str | None = None

    def __str__(self) -> str:
        if self.kind == "jobs":
            return f"${{{{parent.jobs.{self.name}.{self.port_kind}.{self.port}}}}}"
        return f"${{{{parent.{self.kind}.{self.name}}}}}"


def parse_binding(value: Any) -> Binding | None:
    """The binding a step value holds, None for a literal; a malformed `${{...}}` raises ValueError."""
    if not isinstance(value, str) or "${{" not in value:
        return None
    match = BINDING.match(value.strip())
    if not match:
        raise ValueError(f"malformed binding {value!r}")
    kind, name, port_kind, port = match.groups()
    if (kind == "jobs") != (port_kind is not None):
        raise ValueError(f"malformed binding {value!r}")
    return Binding(kind, name, port_kind, port)


@dataclass
class Port:
    name: str
    type: str
    optional: bool = False
    default: Any = None
    enum: list | None = None
    min: float | None = None
    max: float | None = None
    description: str = ""
    path: str | None = None  # a job input's data path

    @classmethod
    def from_yaml(cls, name: str, raw: Any) -> Port:
        if not isinstance(raw, dict):
            # A pipeline job input given as a bare literal.
            return cls(name=name, type=literal_type(raw), default=raw)
        return cls(
            name=name,
            type=str(raw.get("type", literal_type(raw.get("default")))),
            optional=bool(raw.get("optional", False)),
            default=raw.get("default"),
            enum=raw.get("enum"),
            min=raw.get("min"),
            max=raw.get("max"),
            description=str(raw.get("description", "")),
            path=raw.get("path"),
        )


def literal_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


@dataclass
class Step:
    name: str
    component_ref: str
    component: Component | None
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    compute: Any
    raw: dict
    modes: dict[str, str] = field(default_factory=dict)  # input name -> mode (`{path: ..., mode: download}`)

    def upstream(self) -> set[str]:
        """Names of the sibling steps whose outputs this step reads."""
        names = set()
        for value in self.inputs.values():
            try:
                binding = parse_binding(value)
            except ValueError:
                continue
            if binding and binding.kind == "jobs":
                names.add(binding.name)
        return names


@dataclass
class Component:
    """A command component, a pipeline component, or a pipeline job."""

    path: Path
    raw: dict
    inputs: dict[str, Port] = field(default_factory=dict)
    outputs: dict[str, Port] = field(default_factory=dict)
    jobs: dict[str, Step] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return str(self.raw.get("type", ""))

    @property
    def name(self) -> str:
        return str(self.raw.get("name", self.path.parent.name))

    @property
    def command(self) -> str:
        return str(self.raw.get("command", ""))

    def topological_order(self) -> list[str]:
        """Steps in an order that runs each after the ones it reads; a cycle raises ValueError."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, trail: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise ValueError("cycle: " + " -> ".join(trail + [name]))
            state[name] = "visiting"
            for dep in sorted(self.jobs[name].upstream()):
                if dep in self.jobs:
                    visit(dep, trail + [name])
            state[name] = "done"
            order.append(name)

        for name in self.jobs:
            visit(name, [])
        return order


def step_inputs(raw: dict) -> tuple[dict[str, Any], dict[str, str]]:
    """A step's input values, `{path: binding, mode: m}` read as the binding, and the modes given."""
    values, modes = {}, {}
    for name, value in raw.items():
        if isinstance(value, dict) and "mode" in value and "path" in value:
            values[name], modes[name] = value["path"], str(value["mode"])
        else:
            values[name] = value
    return values, modes


def parse_yaml(text: str) -> Any:
    """YAML text as PyYAML's safe_load reads it."""
    return yaml.load(text, Loader=YAML_LOADER)  # a safe loader: plain data only


def read_yaml(path: Path) -> dict:
    data = parse_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def load(path: Path, _cache: dict[Path, Component] | None = None) -> Component:
    """Read a component or pipeline file and, for pipelines, every local component it uses."""
    cache = {} if _cache is None else _cache
    path = path.resolve()
    if path in cache:
        return cache[path]
    return from_raw(path, read_yaml(path), cache)


def from_raw(path: Path, raw: dict, _cache: dict[Path, Component] | None = None) -> Component:
    """A component or pipeline held in memory as if read from `path` (local components resolve from its folder):
    a pipeline component as a run changes it (repo/sweep.py)."""
    cache = {} if _cache is None else _cache
    component = Component(path=path, raw=raw)
    cache.setdefault(path, component)
    component.inputs = {n: Port.from_yaml(n, v) for n, v in (raw.get("inputs") or {}).items()}
    component.outputs = {n: Port.from_yaml(n, v) for n, v in (raw.get("outputs") or {}).items()}
    for step_name, step_raw in (raw.get("jobs") or {}).items():
        ref = str(step_raw.get("component", ""))
        child = None
        if ref and not ref.startswith("azureml:"):
            child_path = (path.parent / ref.removeprefix("file:")).resolve()
            if child_path.is_file():
                child = load(child_path, cache)
        inputs, modes = step_inputs(step_raw.get("inputs") or {})
        component.jobs[step_name] = Step(
            name=step_name,
            component_ref=ref,
            component=child,
            inputs=inputs,
            modes=modes,
            outputs=dict(step_raw.get("outputs") or {}),
            compute=step_raw.get("compute"),
            raw=step_raw,
        )
    return component
