"""`tao-aml validate`: azure-ai-ml's own checks, then what azure-ai-ml lets through.

Every problem is collected (not just the first) as `file: key: message`, so a user fixes a broken
copy in one pass. What azure-ai-ml misses is listed in shared/facts/azureml.md.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from tao_aml.repo import yaml_model
from tao_aml.repo.input_rules import command_problems, declaration_problems, literal_problem
from tao_aml.repo.problems import Problem, did_you_mean
from tao_aml.repo.run_shape import GPUS_INPUT, NODES_INPUT, shm_size
from tao_aml.repo.secret_rules import environment_problems
from tao_aml.repo.spec_check import spec_problems
from tao_aml.repo.yaml_model import DATA_TYPES, Component, Port, Step, parse_binding
from tao_aml.steps.input_kinds import KINDS

COMMAND_KEYS = {
    "$schema", "type", "name", "version", "display_name", "description", "tags", "is_deterministic",
    "command", "code", "environment", "distribution", "resources", "inputs", "outputs",
}
PIPELINE_COMPONENT_KEYS = {
    "$schema", "type", "name", "version", "display_name", "description", "tags", "inputs", "outputs", "jobs",
}
PIPELINE_JOB_KEYS = {
    "$schema", "type", "name", "display_name", "experiment_name", "description", "tags", "settings",
    "inputs", "outputs", "jobs",
}
RESERVED_NAMES = {"path", "ld_library_path", "user", "logname", "home", "pwd", "shell"}
INPUT_TYPES = {
    "string", "integer", "number", "boolean", "uri_file", "uri_folder", "mltable",
    "custom_model", "mlflow_model", "triton_model",
}
NAME = re.compile(r"^[a-z0-9_]+$")
PORT_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)
# A `<registry_name>` left in a value passes azure-ai-ml's validation (shared/EXAMPLES.md).
PLACEHOLDER = re.compile(r"<[a-z_ -]+>", re.I)
# Designer's asset library filters on these tags.
REQUIRED_TAGS = ("family", "tao_version")
PROSE_KEYS = {"description", "display_name", "command"}
# Which producer types a consumer of each type accepts.
COMPATIBLE = {
    "number": {"number", "integer"},
    "uri_folder": {"uri_folder", "custom_model", "mlflow_model", "triton_model", "mltable"},
    "custom_model": {"custom_model", "uri_folder"},
}

# Environments whose image is a TAO container: their steps need resources.shm_size (run_shape.DEFAULT_SHM_SIZE).
TAO_ENVIRONMENTS = ("tao_tf1", "tao_deploy")

LOG = logging.getLogger(__name__)


class Checker:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, file: Path, key: str, message: str) -> None:
        self.problems.append(Problem(file, key, message))

    # ---- command components -------------------------------------------------------------
    def command_component(self, comp: Component) -> None:
        f, raw = comp.path, comp.raw
        for key in sorted(set(raw) - COMMAND_KEYS):
            hint = " (not sent to Azure ML: set it on the pipeline step)" if key == "environment_variables" else ""
            self.add(f, key, f"unknown command component key{hint}")
        self._identity(comp)
        self._ports(comp, command=True)
        self._command(comp)
        self._shm_size(comp)
        env = raw.get("environment")
        if isinstance(env, str) and env.startswith("file:"):
            if not (f.parent / env[len("file:"):]).is_file():
                self.add(f, "environment", f"environment file {env[5:]} does not exist")
        code = raw.get("code")
        if isinstance(code, str) and not (f.parent / code).is_dir():
            self.add(f, "code", f"code folder {code} does not exist")

    def _shm_size(self, comp: Component) -> None:
        """A TAO container needs more /dev/shm than Azure ML's 2g default (shared/facts/azureml.md)."""
        size = (comp.raw.get("resources") or {}).get("shm_size")
        env = str(comp.raw.get("environment", ""))
        if size is None and any(f"/environments/{name}/" in env for name in TAO_ENVIRONMENTS):
            self.add(comp.path, "resources.shm_size", "missing: a TAO container gets Azure ML's 2g /dev/shm; "
                     "NVIDIA runs TAO with 16G (multi-GPU training and TF data loaders fail below that): 16g")
        elif size is not None:
            self._shm_value(comp.path, "resources.shm_size", size)

    def _shm_value(self, f: Path, key: str, size: Any) -> None:
        problem = KINDS["shm_size"].problem(str(size))
        if problem:
            self.add(f, key, problem)

    def _identity(self, comp: Component) -> None:
        name = comp.raw.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            self.add(comp.path, "name", f"{name!r} must be lowercase letters, digits and _ only")
        for key in ("display_name", "description", "version"):
            if not comp.raw.get(key):
                self.add(comp.path, key, "missing (Designer and registries show it)")
        tags = comp.raw.get("tags") if isinstance(comp.raw.get("tags"), dict) else {}
        for tag in REQUIRED_TAGS:
            if not tags.get(tag):
                self.add(comp.path, f"tags.{tag}", "missing (Designer's asset library lists and searches by it)")
        self._placeholders(comp.path, "", comp.raw)

    def _placeholders(self, f: Path, key: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._placeholders(f, f"{key}.{k}" if key else str(k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._placeholders(f, f"{key}[{i}]", v)
        elif isinstance(value, str) and key.rsplit(".", 1)[-1] not in PROSE_KEYS and PLACEHOLDER.search(value):
            self.add(f, key, f"placeholder {PLACEHOLDER.search(value).group(0)!r} left in a value")

    def _ports(self, comp: Component, command: bool) -> None:
        f = comp.path
        for section, ports, types in (("inputs", comp.inputs, INPUT_TYPES), ("outputs", comp.outputs, DATA_TYPES)):
            for port in ports.values():
                key = f"{section}.{port.name}"
                if port.name.lower() in RESERVED_NAMES:
                    self.add(f, key, "reserved name in Azure ML")
                if port.type not in types:
                    self.add(f, key, f"type {port.type!r} is not one of {', '.join(sorted(types))}")
                if section == "outputs" and port.optional:
                    self.add(f, key, "outputs cannot be optional in Azure ML")
                if section == "inputs":
                    self._input_port(f, key, port)
                if (command or section == "inputs") and not port.description:
                    self.add(f, key, "missing description (Designer shows it)")

    def _input_port(self, f: Path, key: str, port: Port) -> None:
        for problem in declaration_problems(port):
            self.add(f, key, problem)
        if port.optional and port.default is not None:
            self.add(f, key, "both optional and defaulted: choose one")
        if port.default is not None:
            problem = literal_problem(port, port.default)
            if problem:
                self.add(f, f"{key}.default", problem)

    def _command(self, comp: Component) -> None:
        f, command = comp.path, comp.command
        if "\\\n" in command or command.rstrip().endswith("\\"):
            self.add(f, "command", "no `\\` line continuation: use `command: >-`")
        for problem in command_problems(command):
            self.add(f, "command", problem)
        inside = {m for block in OPTIONAL_BLOCK.findall(command) for m in PORT_REF.findall(block)}
        outside = set(PORT_REF.findall(OPTIONAL_BLOCK.sub("", command)))
        for kind, name in sorted(inside | outside):
            ports = comp.inputs if kind == "inputs" else comp.outputs
            if name not in ports:
                self.add(f, "command", f"${{{{{kind}.{name}}}}} is not declared in {kind}")
        for name, port in comp.inputs.items():
            used_in, used_out = ("inputs", name) in inside, ("inputs", name) in outside
            if port.optional and used_out:
                self.add(f, f"inputs.{name}", "optional input used outside $[[...]] in command")
            if not port.optional and used_in:
                self.add(f, f"inputs.{name}", "only optional inputs may sit inside $[[...]]")
            if not (used_in or used_out):
                self.add(f, f"inputs.{name}", "declared but not used in command")
        for name in comp.outputs:
            if ("outputs", name) not in outside:
                self.add(f, f"outputs.{name}", "declared but not used in command")

    # ---- pipelines ----------------------------------------------------------------------
    def pipeline(self, comp: Component, is_job: bool) -> None:
        f = comp.path
        allowed = PIPELINE_JOB_KEYS if is_job else PIPELINE_COMPONENT_KEYS
        for key in sorted(set(comp.raw) - allowed):
            self.add(f, key, f"unknown pipeline {'job' if is_job else 'component'} key")
        if not is_job:
            self._identity(comp)
            self._ports(comp, command=False)
        for port in comp.inputs.values():
            problem = data_path_problem(f, port.path) if port.path is not None else None
            if problem:
                self.add(f, f"inputs.{port.name}.path", problem)
        try:
            comp.topological_order()
        except ValueError as err:
            self.add(f, "jobs", str(err))
        bound_outputs: set[str] = set()
        for step in comp.jobs.values():
            self._step(comp, step, bound_outputs)
        for name in comp.outputs:
            if name not in bound_outputs:
                self.add(f, f"outputs.{name}", "no step writes this pipeline output")

    def _step(self, parent: Component, step: Step, bound_outputs: set[str]) -> None:
        f, where = parent.path, f"jobs.{step.name}"
        child = step.component
        if child is None:
            if not step.component_ref.startswith("azureml:"):
                self.add(f, f"{where}.component", f"component file {step.component_ref!r} not found")
            return
        self._compute(parent, step)
        self._scale(parent, step)
        for name, value in step.inputs.items():
            key = f"{where}.inputs.{name}"
            value = value.get("path", value) if isinstance(value, dict) else value
            target = child.inputs.get(name)
            if target is None:
                self.add(f, key, f"{child.name} has no input {name!r}{did_you_mean(name, child.inputs)} "
                                 f"(it has: {', '.join(child.inputs)})")
                continue
            try:
                binding = parse_binding(value)
            except ValueError as err:
                self.add(f, key, str(err))
                continue
            if binding is None:
                problem = data_path_problem(f, value) if target.type in DATA_TYPES else literal_problem(
                    target, value
                )
                if problem:
                    self.add(f, key, problem)
                continue
            source = self._resolve(parent, binding, f, key)
            if source is not None:
                self._edge(f, key, source, target)
        for name, port in child.inputs.items():
            if name not in step.inputs and not port.optional and port.default is None:
                self.add(f, f"{where}.inputs.{name}", f"required input of {child.name} is not set")
        for name, value in step.outputs.items():
            key = f"{where}.outputs.{name}"
            if name not in child.outputs:
                self.add(f, key, f"{child.name} has no output {name!r} (it has: {', '.join(child.outputs)})")
                continue
            try:
                binding = parse_binding(value.get("path", value) if isinstance(value, dict) else value)
            except ValueError as err:
                self.add(f, key, str(err))
                continue
            if binding is not None:
                if binding.kind != "outputs" or binding.name not in parent.outputs:
                    self.add(f, key, f"{binding} is not an output of this pipeline")
                else:
                    bound_outputs.add(binding.name)

    def _scale(self, parent: Component, step: Step) -> None:
        """Node and process counts are literal integers of at least 1, equal to the inputs that report them.

        The REST contract types them as integers and no Microsoft document shows a binding resolved
        there inside a pipeline component (shared/facts/azureml.md): azure/render.py writes them instead.
        """
        counts = {
            "resources.instance_count": ((step.raw.get("resources") or {}).get("instance_count"), NODES_INPUT),
            "distribution.process_count_per_instance": (
                (step.raw.get("distribution") or {}).get("process_count_per_instance"), GPUS_INPUT
            ),
        }
        resources = step.raw.get("resources")
        if isinstance(resources, dict) and step.component is not None:
            key = f"jobs.{step.name}.resources.shm_size"
            if "shm_size" in resources:
                self._shm_value(parent.path, key, resources["shm_size"])
            elif shm_size({}, step.component.raw):
                self.add(parent.path, key, f"missing: a step's own resources replace those of its component "
                         f"({step.component.name} sets shm_size {shm_size({}, step.component.raw)}): repeat it here")
        for where, (value, input_name) in counts.items():
            key = f"jobs.{step.name}.{where}"
            if isinstance(value, str) and "${{" in value:
                self.add(parent.path, key, f"{value} is a binding: write a literal integer (tao-aml submit and "
                         "register write the shape's counts; bindings here are not documented Azure ML)")
                continue
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self.add(parent.path, key, f"{value!r} is not a whole number of at least 1")
                continue
            port = parent.inputs.get(input_name)
            if port is not None and port.default != value:
                self.add(parent.path, key, f"{value} differs from the default of input {input_name} ({port.default})")

    def _compute(self, parent: Component, step: Step) -> None:
        key = f"jobs.{step.name}.compute"
        try:
            binding = parse_binding(step.compute)
        except ValueError as err:
            self.add(parent.path, key, str(err))
            return
        if binding is None:
            return
        port = parent.inputs.get(binding.name) if binding.kind == "inputs" else None
        if port is None:
            self.add(parent.path, key, f"{binding} is not an input of this pipeline")
        elif port.type != "string":
            self.add(parent.path, key, f"compute must come from a string input, {binding.name} is {port.type}")

    def _resolve(self, parent: Component, binding: yaml_model.Binding, f: Path, key: str) -> Port | None:
        if binding.kind == "inputs":
            port = parent.inputs.get(binding.name)
            if port is None:
                self.add(f, key, f"{binding}: this pipeline has no input {binding.name!r}"
                                 f"{did_you_mean(binding.name, parent.inputs)}")
            return port
        if binding.kind == "outputs":
            self.add(f, key, f"{binding}: a step input cannot read a pipeline output")
            return None
        source_step = parent.jobs.get(binding.name)
        if source_step is None:
            self.add(f, key, f"{binding}: no step named {binding.name!r} (steps: {', '.join(parent.jobs)})")
            return None
        if binding.port_kind != "outputs":
            self.add(f, key, f"{binding}: a step input can only read another step's outputs")
            return None
        if source_step.component is None:
            return None
        port = source_step.component.outputs.get(binding.port or "")
        if port is None:
            self.add(f, key, f"{binding}: step {binding.name!r} has no output {binding.port!r}")
        return port

    def _edge(self, f: Path, key: str, source: Port, target: Port) -> None:
        accepted = COMPATIBLE.get(target.type, {target.type})
        if source.type not in accepted:
            self.add(f, key, f"type mismatch: {source.type} {source.name!r} feeds {target.type} {target.name!r}")
            return
        if source.optional and not target.optional:
            self.add(f, key, f"optional {source.name!r} feeds required {target.name!r}")
        if source.default is not None:
            problem = literal_problem(target, source.default)
            if problem:
                self.add(f, key, f"default of {source.name!r}: {problem}")


def data_path_problem(f: Path, value: Any) -> str | None:
    """A data input given directly: an asset or URI, or a local path that must exist."""
    if not isinstance(value, str):
        return f"{value!r} is not a data path"
    if re.match(r"^(azureml|https?|wasbs|abfss|adl)://|^azureml:", value):
        return None
    if not (f.parent / value).exists():
        return f"local path {value} does not exist"
    return None


def repository_files(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """Command components, pipeline components and pipeline jobs of the repository."""
    return (
        sorted(root.glob("components/*/*/component.yml")),
        sorted(root.glob("pipelines/*/pipeline_component.yml")),
        sorted(root.glob("pipelines/*/pipeline.yml")),
    )


AZURE = "azure-ai-ml: "  # how a finding of azure-ai-ml's own validation starts


def azure_problems(path: Path, is_job: bool) -> list[Problem]:
    """What azure-ai-ml itself says of a file: load errors and `_validate()` errors."""
    from azure.ai.ml import load_component, load_job

    try:
        entity = load_job(path) if is_job else load_component(path)
        result = entity._validate()  # the public validate() needs a workspace
    except Exception as err:  # azure-ai-ml raises many types; each is a finding here
        return [Problem(path, "load", f"{AZURE}{err}".splitlines()[0])]
    return [
        Problem(path, str(location), f"{AZURE}{message}")
        for location, message in result.error_messages.items()
    ]


def validate_repository(root: Path, with_azure: bool = True) -> list[Problem]:
    """Every problem in the repository; `with_azure=False` runs only the project's own checks."""
    commands, pipeline_components, jobs = repository_files(root)
    checker = Checker()
    cache: dict[Path, Component] = {}
    for path in commands:
        checker.problems += azure_problems(path, is_job=False) if with_azure else []
        checker.command_component(yaml_model.load(path, cache))
    for path in pipeline_components:
        checker.problems += azure_problems(path, is_job=False) if with_azure else []
        checker.pipeline(yaml_model.load(path, cache), is_job=False)
    for path in jobs:
        checker.problems += azure_problems(path, is_job=True) if with_azure else []
        checker.pipeline(yaml_model.load(path, cache), is_job=True)
    for path in pipeline_components:
        checker.problems += spec_problems(yaml_model.load(path, cache))
    checker.problems += data_asset_problems(root, jobs)
    checker.problems += run_problems(root, jobs)
    checker.problems += [problem for path in pipeline_components + jobs
                         for problem in environment_problems(yaml_model.load(path, cache))]
    wrapped = {(path, f"jobs.{step.name}."): step.component.path for path in jobs
               for step in yaml_model.load(path, cache).jobs.values() if step.component is not None}
    return each_once(checker.problems, wrapped)


def each_once(problems: list[Problem], wrapped: dict[tuple[Path, str], Path]) -> list[Problem]:
    """Each problem once: not repeated word for word; not azure-ai-ml's where the project's own check names the
    same key of the same file (and says it better); not a pipeline job's inside the component one of its steps
    runs (`wrapped`: (job file, "jobs.<step>.") -> component file) when that file has it at the same key."""
    ours = {(p.file, p.key) for p in problems if not p.message.startswith(AZURE)}
    keys = {(p.file, p.key) for p in problems}
    kept: list[Problem] = []
    for problem in dict.fromkeys(problems):
        if problem.message.startswith(AZURE) and (problem.file, problem.key) in ours:
            continue
        if any(problem.file == job and problem.key.startswith(prefix)
               and (component, problem.key.removeprefix(prefix)) in keys
               for (job, prefix), component in wrapped.items()):
            continue
        kept.append(problem)
    return kept


def run_problems(root: Path, jobs: list[Path]) -> list[Problem]:
    """The checks of a run's settings together (run_checks.py) on each pipeline's defaults, then on each of
    its profiles (pipelines/<name>/profiles.yml) what the defaults do not already show."""
    from tao_aml.repo.pipelines import Pipeline, SettingError, effective_inputs, resolve_settings
    from tao_aml.repo.profiles import PROFILES_FILE, load_profiles, profile_assignments
    from tao_aml.repo.run_checks import check_run
    from tao_aml.repo.sweep import run_problems as sweep_problems

    problems = []
    for path in jobs:
        profiles = path.parent / PROFILES_FILE
        try:
            pipeline = Pipeline.load(path.parent.name, root)
            runs = {"": resolve_settings(pipeline, [])}
            for name in load_profiles(pipeline) if profiles.is_file() else []:
                runs[name] = resolve_settings(pipeline, profile_assignments(pipeline, name))
        except SettingError as err:
            for line in str(err).splitlines():
                key, _, message = line.removeprefix(f"{profiles}: ").partition(": ")
                problems.append(Problem(profiles, key, message))
            continue
        defaults = check_run(pipeline, effective_inputs(pipeline, runs.pop("")), root).problems
        problems += [Problem(path.parent / "pipeline_component.yml", "inputs", message) for message in defaults]
        for name, settings in runs.items():
            found = check_run(pipeline, effective_inputs(pipeline, settings), root).problems
            found += sweep_problems(settings.run, settings.inputs)
            problems += [Problem(profiles, name, message) for message in found if message not in defaults]
    return problems


def data_asset_problems(root: Path, jobs: list[Path]) -> list[Problem]:
    """pipelines/<name>/data_assets.yml against the pipeline's outputs and inputs (data_assets.py)."""
    from tao_aml.repo.data_assets import FILE, load_entries
    from tao_aml.repo.pipelines import Pipeline, SettingError

    problems = []
    for path in jobs:
        if not (path.parent / FILE).is_file():
            continue
        try:
            load_entries(Pipeline.load(path.parent.name, root), root)
        except (SettingError, ValueError) as err:
            for line in str(err).splitlines():
                key, _, message = line.removeprefix(f"{path.parent / FILE}: ").partition(": ")
                problems.append(Problem(path.parent / FILE, key, message))
    return problems
