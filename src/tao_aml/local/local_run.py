"""Run a pipeline on this machine, step by step, from the same YAML Azure ML runs (`tao-aml run --local`).

Each step's command is rendered as Azure ML renders it (`${{inputs.x}}` replaced, `$[[...]]` kept
only when its optional inputs are set) and given a folder per output, `<workdir>/<step>/<output>`.
It runs either in its environment's image (`Docker`: `docker run`, the image built from the
environment's context and tagged `tao-aml/<environment>:<version>`), or directly (`Direct`) from the
component's code folder with the CLIs on this machine's PATH: on a machine that is itself the TAO
environment, and in `tao-aml rehearse` and the tests, which put the TAO simulation there (tao_aml/simulate).

Every step folder holds `step.log` (what the step printed) and `step.json`, its state: `running` when
it starts, `failed` when it exits non-zero, `complete` written last, after it exited 0 (by rename, so a
reader never sees it half written). A rerun skips a complete step whose rendered command is unchanged
and none of whose upstream steps ran again; a step an earlier run did not finish runs again on the
outputs it left (TAO resumes training from the newest checkpoint there, as when Azure ML reruns a step);
a step forced by `--from`, or whose command changed, starts again from empty folders.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlparse

from tao_aml.azure import images
from tao_aml.repo import sweep as sweeps
from tao_aml.repo.input_rules import value_problems
from tao_aml.repo.pipelines import Pipeline, SettingError, Settings, effective_inputs, unknown_name
from tao_aml.repo.run_shape import NODES_INPUT, is_gpu_step, shm_size
from tao_aml.repo.secret_rules import local_secret_problems, shown_command
from tao_aml.repo.yaml_model import Component, Step, from_raw, parse_binding

LOG = logging.getLogger(__name__)
PORT_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)
# A reference with the single quotes the component command puts around it, or (not in this repository's
# commands, which validate refuses) without.
QUOTED_PORT_REF = re.compile(r"(?P<q>'?)\$\{\{\s*(?P<kind>inputs|outputs)\.(?P<name>[A-Za-z0-9_]+)\s*\}\}(?P=q)")
STATE_FILE, LOG_FILE, RUN_FILE, LOCK_FILE = "step.json", "step.log", "run.json", "run.lock"
RUNNING, FAILED, COMPLETE = "running", "failed", "complete"
# Why a step an earlier run did not finish runs again on what it left.
CONTINUING = "an earlier run did not finish it: running it again on the outputs it left"
PRIMITIVE_TYPES = ("string", "integer", "number", "boolean")
# Every step, as on Azure ML nodes (shared/facts/tao5.md: every TAO task tries to post telemetry).
STEP_ENV = {"TELEMETRY_OPT_OUT": "yes", "PYTHONDONTWRITEBYTECODE": "1"}
# Variables a step may read from the user's environment. A container gets them by name only
# (`-e NAME`: docker copies the value from its own environment), so no value, the NGC key included,
# is ever on a command line.
PASSTHROUGH = ("NGC_API_KEY", "TAO_MODEL_KEY", "TAO_AML_NGC_API_BASE", "TAO_AML_VERBOSE", "MLFLOW_TRACKING_URI",
               "MLFLOW_TRACKING_TOKEN", "MLFLOW_EXPERIMENT_NAME")
# NVIDIA's advice for its framework containers (shared memory and locked memory for NCCL and data loaders).
CONTAINER_LIMITS = ("--ulimit", "memlock=-1", "--ulimit", "stack=67108864")
TAIL_LINES = 20
STOP_GRACE_S = 5  # after Ctrl-C, how long a step may take to stop on SIGINT, then on SIGTERM
# The TAO CLI a step's module runs (python -m tao_aml.steps.<family>.<task>).
TAO_CLI = {"detectnet_v2": "detectnet_v2", "bpnet": "bpnet"}
VARIABLE_NAME, CONTROL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*"), re.compile(r"[\x00-\x1f\x7f]")
STEP_MODULE = re.compile(r"python -m (tao_aml\.steps\.[A-Za-z0-9_.]+)")
# Modules a step imports only when it needs them, which importing the step's module does not reach.
LAZY_IMPORTS = {"tao_aml.steps.data.wider_to_kitti": ("cv2",)}
# Run by the steps' `python`: import each module named, print the first that fails.
IMPORT_CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as err:
        print(f"{sys.executable} cannot import {name}: {type(err).__name__}: {err}")
        sys.exit(1)
"""


class StepFailed(RuntimeError):
    def __init__(self, step: str, code: int, command: str, log: Path, elapsed: float = 0.0) -> None:
        super().__init__(f"step {step} failed with exit code {code}; its log: {log}")
        self.step, self.code, self.command, self.log, self.elapsed = step, code, command, log, elapsed


class DockerUnavailable(RuntimeError):
    """`docker` is not on PATH, or its daemon does not answer."""


class MissingTools(RuntimeError):
    """--no-docker: the steps' `python` cannot import what they need, or a TAO CLI is not on PATH."""


class ImageBuildFailed(RuntimeError):
    def __init__(self, tag: str, code: int, log: Path) -> None:
        super().__init__(f"docker build of {tag} failed with exit code {code}; its log: {log}")
        self.tag, self.code, self.log = tag, code, log


@dataclass
class StepRun:
    name: str
    command: str
    outputs: dict[str, Path]
    log: Path
    ran: bool = True  # False: complete from an earlier run, skipped


@dataclass
class Launch:
    """One step, rendered: what it runs, where, and which folders it reads and writes."""

    step: str
    command: str
    code_dir: Path
    environment: Path  # its environment.yml
    gpu: bool  # its compute is the pipeline's GPU compute
    folder: Path  # <workdir>/<step>: its outputs, log and state
    outputs: dict[str, Path]
    reads: list[Path] = field(default_factory=list)  # the folders and files its inputs name
    shm_size: str | None = None  # /dev/shm, as Azure ML gives the step (run_shape.shm_size)
    # The node's own environment_variables (a sweep branch's TAO_AML_SWEEP_BRANCH): non-secret, passed by value.
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.folder / LOG_FILE

    @property
    def digest(self) -> str:
        """What decides whether a complete step is still up to date: its environment, its rendered command and
        its node's variables."""
        variables = "".join(f"\n{name}={value}" for name, value in sorted(self.variables.items()))
        return hashlib.sha256(f"{self.environment.parent.name}\n{self.command}{variables}".encode()).hexdigest()


def step_module(launch: Launch) -> str:
    """The family of the step's module (detectnet_v2, bpnet, ...) or "" for a command of another form."""
    match = STEP_MODULE.search(launch.command)
    parts = match.group(1).split(".") if match else []
    return parts[2] if len(parts) > 3 else ""


def step_imports(launch: Launch) -> list[str]:
    """The step's module and what it imports on demand."""
    match = STEP_MODULE.search(launch.command)
    return [match.group(1), *LAZY_IMPORTS.get(match.group(1), ())] if match else []


def render_command(command: str, values: dict[str, Any], outputs: dict[str, Path]) -> str:
    """Azure ML's substitution: optional blocks drop out when any input in them is unset.

    Each value becomes one shell word (shlex.quote, in place of the command's own quotes around it), so a
    local path with a space, a quote or `$(...)` in it is data, as the service's mount paths are."""

    def text(match: re.Match) -> str:
        kind, name = match.group("kind"), match.group("name")
        # booleans render as True/False, as Azure ML passes them
        return shlex.quote(str(outputs[name] if kind == "outputs" else values.get(name)))

    def block(match: re.Match) -> str:
        inner = match.group(1)
        names = PORT_REF.findall(inner)
        return "" if any(kind == "inputs" and values.get(name) is None for kind, name in names) else inner

    # Blocks and whitespace first, values last: a value's own spaces are kept.
    return QUOTED_PORT_REF.sub(text, " ".join(OPTIONAL_BLOCK.sub(block, command).split()))


def format_elapsed(seconds: float) -> str:
    """12s, 4m05s, 1h02m."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def log_tail(log: Path, lines: int = TAIL_LINES) -> list[str]:
    """The last lines of a log (read from its end, so a long training log costs nothing)."""
    if not log.is_file():
        return []
    with open(log, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 200 * lines))
        text = handle.read().decode("utf-8", errors="replace")
    return [line for line in text.splitlines() if line.strip()][-lines:]


def read_state(folder: Path) -> dict[str, Any]:
    """A step folder's state; {} when it has none or it cannot be read (then nothing in it counts as done)."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """Replace the state file at once: a reader sees the old state or the new one, never half of one."""
    draft = folder / f".{STATE_FILE}.partial"
    draft.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(draft, folder / STATE_FILE)


def node_variables(step: Step) -> dict[str, str]:
    """A node's `environment_variables`, as Azure ML sets them in its process: names of letters, digits and '_'
    (not from a digit), values without control characters (a docker `--env NAME=VALUE` is one argument)."""
    variables = {str(name): str(value) for name, value in (step.raw.get("environment_variables") or {}).items()}
    for name, value in variables.items():
        if not VARIABLE_NAME.fullmatch(name) or CONTROL.search(value):
            raise SettingError(f"step {step.name}: environment_variables.{name}: a name of letters, digits and '_' "
                               "(not from a digit) with a value of one line is what a step can be given")
    return variables


def check_step_folder(launch: Launch) -> None:
    """A step writes into real folders of the workdir: a link there would send its outputs, log and deletions
    (a step that runs again starts from an empty folder) somewhere else."""
    for path in (launch.folder, launch.log, *launch.outputs.values()):
        if path.is_symlink():
            raise SettingError(f"--workdir {launch.folder.parent}: {path.relative_to(launch.folder.parent)} is a "
                               f"symbolic link (to {os.readlink(path)}); step {launch.step} writes only into real "
                               "folders of the workdir: remove the link")


def check_local(settings: Settings, values: dict[str, Any], resuming: bool = False) -> None:
    """Settings that only an Azure ML run has, and a sweep's rules between settings, refused before anything runs."""
    problems = [f"--set {name}: a setting of Azure ML runs (tao-aml submit), not of a local run"
                for name in settings.run if name != "shm_size" and name not in sweeps.SETTINGS]
    problems += sweeps.run_problems(settings.run, settings.inputs, resuming)
    nodes = int(values.get(NODES_INPUT) or 1)
    if nodes > 1:
        problems.append(f"--set {NODES_INPUT}={nodes}: a local run has this one machine; "
                        "for several of its GPUs set gpus_per_node")
    problems += local_secret_problems(values, os.environ)
    if problems:
        raise SettingError("\n".join(problems))


def local_inputs(pipeline: Pipeline, pairs: list[str]) -> dict[str, Path]:
    """`--input NAME=PATH` pairs of a local run: data inputs of the pipeline, as folders or files on this machine."""
    found, problems = {}, []
    data_inputs = [n for n, p in pipeline.component.inputs.items() if p.type not in PRIMITIVE_TYPES]
    for pair in pairs:
        name, sep, text = (part.strip() for part in pair.partition("="))
        port = pipeline.component.inputs.get(name)
        path = Path(text).expanduser()
        if not sep or not name or not text:
            problems.append(f"--input {pair!r}: expected NAME=PATH, e.g. {data_inputs[0]}=/data/folder")
        elif port is None or port.type in PRIMITIVE_TYPES:
            problems.append(unknown_name("--input", name, "data input", pipeline.settable_inputs(data=True),
                                         f" in {pipeline.name}"))
        elif not (path.is_file() if port.type == "uri_file" else path.is_dir()):
            kind = "file" if port.type == "uri_file" else "folder"
            problems.append(f"--input {name}={text}: no such {kind} on this machine")
        else:
            found[name] = path.resolve()
    if problems:
        raise SettingError("\n".join(problems))
    return found


def local_tracking_store(environ: dict[str, str]) -> Path | None:
    """The folder of a local MLflow store named by MLFLOW_TRACKING_URI (a path or file: URI), else None."""
    uri = environ.get("MLFLOW_TRACKING_URI", "")
    parsed = urlparse(uri)
    if not uri or parsed.scheme not in ("", "file"):
        return None
    return Path(parsed.path if parsed.scheme else uri).expanduser().resolve()


class Executor(Protocol):
    """How a rendered step starts: `Direct` or `Docker`."""

    mode: str

    def check(self, paths: list[Path]) -> None:
        """Refuse, before anything runs, what this way of running cannot do with these paths."""

    def prepare(self, launches: list[Launch], workdir: Path, progress: Callable[[str], None]) -> None:
        """Get ready for these steps."""

    def where(self, launch: Launch) -> str:
        """How the progress line says where the step runs."""

    def start(self, launch: Launch, env: dict[str, str], log: IO[str]) -> subprocess.Popen:
        """Start the step, its output going to `log`."""


class Direct:
    """Each step as `bash -c COMMAND` in its component's code folder, with the CLIs on this machine's PATH."""

    mode = "directly, with the CLIs on this machine's PATH"

    def __init__(self, path_for_environment: Callable[[str], list[str]] | None = None) -> None:
        # Folders put first on PATH for the steps of one environment (the TAO simulation of rehearsals and tests).
        self.path_for_environment = path_for_environment or (lambda _env: [])

    def check(self, paths: list[Path]) -> None:
        """Nothing to refuse: the steps use what this machine has."""

    def prepare(self, launches: list[Launch], workdir: Path, progress: Callable[[str], None]) -> None:
        """No images: check instead, before the first step, that this machine can run these steps."""
        problems = []
        for environment, group in itertools.groupby(sorted(launches, key=lambda launch: str(launch.environment)),
                                                    key=lambda launch: launch.environment):
            group = list(group)
            full = self.environ(group[0], {})
            missing = [cli for cli in dict.fromkeys(TAO_CLI.get(step_module(launch), "") for launch in group)
                       if cli and shutil.which(cli, path=full["PATH"]) is None]
            problems += [f"`{cli}` (TAO 5.0's CLI, which steps of {environment.parent.name} run) is not on PATH"
                         for cli in missing]
            modules = sorted({module for launch in group for module in step_imports(launch)})
            if shutil.which("python", path=full["PATH"]) is None:
                problems.append(f"no `python` on PATH for the steps of {environment.parent.name}")
                continue
            answer = subprocess.run(["python", "-c", IMPORT_CHECK, *modules], cwd=group[0].code_dir, env=full,
                                    capture_output=True, text=True, check=False)
            if answer.returncode != 0:
                said = (answer.stdout.strip() or answer.stderr.strip() or "no answer").splitlines()[-1]
                problems.append(f"the steps of {environment.parent.name} cannot start: `python` ({said})")
        if problems:
            raise MissingTools("--no-docker needs this machine to be the TAO environment: " + "; ".join(problems)
                               + " (run in docker without --no-docker, or try the pipeline with TAO simulated: "
                               "tao-aml rehearse)")

    def where(self, launch: Launch) -> str:
        return ""

    def environ(self, launch: Launch, env: dict[str, str]) -> dict[str, str]:
        """The step's environment: this machine's, the run's, its code folder first on PYTHONPATH."""
        full = {**os.environ, **env, **STEP_ENV, **launch.variables}
        full["PYTHONPATH"] = os.pathsep.join([str(launch.code_dir), full.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        first = self.path_for_environment(launch.environment.parent.name)
        full["PATH"] = os.pathsep.join([*first, full.get("PATH", "")])
        return full

    def start(self, launch: Launch, env: dict[str, str], log: IO[str]) -> subprocess.Popen:
        # A session of its own: stop() reaches every process of the step (bash, the step, TAO, mpirun).
        return subprocess.Popen(["bash", "-c", launch.command], cwd=launch.code_dir, env=self.environ(launch, env),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


class Docker:
    """Each step in its environment's image: `docker run` with the code folder, its own folder and what it reads
    mounted at the same paths, so the rendered command, the specs it writes and its report name the host's paths."""

    mode = "each in its environment's image, with docker"

    def __init__(self, root: Path) -> None:
        self.images = images.environments(root)

    def check(self, paths: list[Path]) -> None:
        if shutil.which("docker") is None:
            raise DockerUnavailable(
                "docker is not on PATH: install Docker and the NVIDIA Container Toolkit, or add --no-docker to "
                "run every step directly on this machine (one that is itself the TAO environment)"
            )
        try:
            answer = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                    text=True, check=False, timeout=60)
            code, said = answer.returncode, (answer.stderr.strip().splitlines() or ["no answer"])[-1]
        except subprocess.TimeoutExpired:
            code, said = -1, "no answer in 60 s"
        if code != 0:
            raise DockerUnavailable(f"docker's daemon does not answer (`docker info`: {said}): start it, or add "
                                    "--no-docker to run every step directly on this machine")
        for path in paths:
            if ":" in str(path):
                raise SettingError(f"{path}: docker cannot mount a path with ':' in it; move it, or use --no-docker")

    def image(self, launch: Launch) -> images.EnvironmentImage:
        image = self.images.get(launch.environment)
        if image is None:
            raise SettingError(f"step {launch.step}: {launch.environment} is not an environment of environments/ "
                               "with a build context, which is what a local run builds its images from")
        return image

    def prepare(self, launches: list[Launch], workdir: Path, progress: Callable[[str], None]) -> None:
        for image in {launch.environment: self.image(launch) for launch in launches}.values():
            log = workdir / f"{image.name}.build.log"
            progress(f"image {image.local_tag}: docker build of {image.context} (log {log})")
            started = time.monotonic()
            with open(log, "w", encoding="utf-8") as handle:
                code = subprocess.call(image.docker_build_command(), stdout=handle, stderr=subprocess.STDOUT)
            if code != 0:
                raise ImageBuildFailed(image.local_tag, code, log)
            progress(f"image {image.local_tag}: ready in {format_elapsed(time.monotonic() - started)}")

    def where(self, launch: Launch) -> str:
        return f" in {self.image(launch).local_tag}" + (" with --gpus all" if launch.gpu else "")

    def argv(self, launch: Launch, env: dict[str, str]) -> list[str]:
        workdir = launch.folder.parent
        name = f"tao-aml-{hashlib.sha256(str(workdir).encode()).hexdigest()[:8]}-{launch.step}"
        # --init: docker's tini is PID 1 and passes Ctrl-C's SIGINT/SIGTERM on; the step's own process as PID 1
        # would ignore SIGTERM and the container would outlive the run.
        argv = ["docker", "run", "--rm", "--init", "--name", name, *CONTAINER_LIMITS]
        if launch.gpu:
            argv += ["--gpus", "all"]
        if launch.shm_size:
            argv += ["--shm-size", launch.shm_size]
        if hasattr(os, "getuid"):
            # The files a step writes belong to the user, so a rerun can clear them; /tmp is every user's.
            argv += ["--user", f"{os.getuid()}:{os.getgid()}", "--env", "HOME=/tmp"]
        mounts = {launch.code_dir: "ro", launch.folder: "rw"}
        mounts.update({path: "ro" for path in launch.reads if path not in mounts})
        store = local_tracking_store(env)
        if store is not None:
            mounts[store] = "rw"
        for path, mode in mounts.items():
            argv += ["--volume", f"{path}:{path}:{mode}"]
        argv += ["--workdir", str(launch.code_dir)]
        for key, value in {**STEP_ENV, **launch.variables, "PYTHONPATH": str(launch.code_dir)}.items():
            argv += ["--env", f"{key}={value}"]
        argv += [arg for key in env for arg in ("--env", key)]  # by name: docker reads the values from its own
        return [*argv, self.image(launch).local_tag, "bash", "-c", launch.command]

    def start(self, launch: Launch, env: dict[str, str], log: IO[str]) -> subprocess.Popen:
        store = local_tracking_store(env)
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)  # made by the user, not by docker as root
        return subprocess.Popen(self.argv(launch, env), env={**os.environ, **env}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # see Direct.start


class LocalRunner:
    def __init__(
        self,
        pipeline: Pipeline,
        settings: Settings,
        workdir: Path,
        data_inputs: dict[str, Path] | None = None,
        env: dict[str, str] | None = None,
        path_for_environment: Callable[[str], list[str]] | None = None,
        docker: Docker | None = None,
        progress: Callable[[str], None] = LOG.info,
        heartbeat_s: float = 60.0,
    ) -> None:
        self.pipeline = pipeline
        self.workdir = workdir.resolve()
        self.executor: Executor = docker or Direct(path_for_environment)
        self.progress = progress
        self.heartbeat_s = heartbeat_s
        self.values = effective_inputs(pipeline, settings)
        self.shm_size = settings.run.get("shm_size")
        resuming = any(name in (data_inputs or {}) for name in pipeline.resume_inputs().values())
        check_local(settings, self.values, resuming)
        sweep = sweeps.of(settings.run)
        if sweep is not None:
            # The same branches and selection step a submitted job holds (azure/render.py).
            fanned = sweeps.fan_out(pipeline.component.raw, sweep.thresholds, sweep.max_map_drop)
            self.pipeline = pipeline = replace(pipeline, component=from_raw(pipeline.component.path, fanned))
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
        # What every step's process gets on top of this machine's environment; a local MLflow store by its
        # absolute path, since steps run from their code folder.
        self.env = {key: value for key, value in os.environ.items() if key in PASSTHROUGH}
        self.env.update(env or {})
        store = local_tracking_store(self.env)
        if store is not None:
            self.env["MLFLOW_TRACKING_URI"] = store.as_uri()
        self.step_outputs: dict[str, dict[str, Path]] = {}

    def run(self, only: list[str] | None = None, start: str | None = None) -> list[StepRun]:
        """Run the steps in order (only those named by `only`); `start` forces that step and every later one."""
        order = [name for name in self.pipeline.component.topological_order() if only is None or name in only]
        if start is not None and start not in order:
            raise SettingError(f"--from {start}: no step {start!r} in {self.pipeline.name}; its steps, in the "
                               f"order they run: {', '.join(order)}")
        forced = set(order[order.index(start):]) if start is not None else set()
        self.check_workdir()
        launches = [self.launch(self.pipeline.component.jobs[name]) for name in order]
        for launch in launches:
            check_step_folder(launch)
        reads = [path for launch in launches for path in launch.reads if not path.is_relative_to(self.workdir)]
        self.executor.check([self.workdir, *{launch.code_dir for launch in launches}, *reads])
        with self.claim():
            plan = self.plan(launches, forced)
            self.progress(f"{self.pipeline.name}: {len(order)} steps in {self.workdir}, {self.executor.mode}")
            self.executor.prepare([launch for launch, reason in plan if reason is not None], self.workdir,
                                  self.progress)
            runs = []
            for index, (launch, reason) in enumerate(plan, 1):
                label = f"[{index:>{len(str(len(plan)))}}/{len(plan)}] {launch.step}"
                if reason is None:
                    self.progress(f"{label}: complete from an earlier run, skipped")
                    runs.append(StepRun(launch.step, launch.command, launch.outputs, launch.log, ran=False))
                    continue
                if reason:
                    self.progress(f"{label}: {reason}")
                runs.append(self.execute(launch, label, keep=reason == CONTINUING))
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

    def launch(self, step: Step) -> Launch:
        """The step rendered with its output folders, which need not exist yet."""
        child: Component | None = step.component
        assert child is not None, f"step {step.name} uses a non-local component"
        folder = self.workdir / step.name
        outputs = {name: folder / name for name in child.outputs}
        self.step_outputs[step.name] = outputs
        values = self.step_values(step)
        refused = value_problems(child, values)
        if refused:
            raise SettingError(f"step {step.name}: " + f"\nstep {step.name}: ".join(refused))
        reference = str(child.raw.get("environment", "")).removeprefix("file:")
        return Launch(
            step=step.name,
            command=render_command(child.command, values, outputs),
            code_dir=(child.path.parent / str(child.raw.get("code", "."))).resolve(),
            environment=(child.path.parent / reference).resolve(),
            gpu=is_gpu_step(step.raw),
            folder=folder,
            outputs=outputs,
            reads=list(dict.fromkeys(value for value in values.values() if isinstance(value, Path))),
            shm_size=shm_size(step.raw, child.raw, self.shm_size),
            variables=node_variables(step),
        )

    def plan(self, launches: list[Launch], forced: set[str]) -> list[tuple[Launch, str | None]]:
        """Each step with why it runs ("" for a first run, CONTINUING to keep its outputs), or None: skipped."""
        ran: set[str] = set()
        plan: list[tuple[Launch, str | None]] = []
        for launch in launches:
            state = read_state(launch.folder)
            same = state.get("command_sha256") == launch.digest
            again = sorted(self.pipeline.component.jobs[launch.step].upstream() & ran)
            reason: str | None
            if launch.step in forced:
                reason = "forced by --from: starting from empty folders"
            elif again and state:
                reason = f"{', '.join(again)} runs again: starting from empty folders"
            elif state.get("status") == COMPLETE:
                reason = None if same else "inputs changed since it completed: starting from empty folders"
            elif state:
                reason = CONTINUING if same else "started earlier with other inputs: starting from empty folders"
            else:
                reason = ""
            if reason is not None:
                ran.add(launch.step)
            plan.append((launch, reason))
        return plan

    def execute(self, launch: Launch, label: str, keep: bool) -> StepRun:
        if not keep and launch.folder.exists():
            shutil.rmtree(launch.folder)
        for folder in launch.outputs.values():
            folder.mkdir(parents=True, exist_ok=True)
        kind = "GPU" if launch.gpu else "CPU"
        self.progress(f"{label}: started ({kind} step{self.executor.where(launch)}); log {launch.log}")
        LOG.info("step %s: %s", launch.step, shown_command(launch.command))
        state = {"status": RUNNING, "command_sha256": launch.digest, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_state(launch.folder, state)
        started = time.monotonic()
        with open(launch.log, "a" if keep else "w", encoding="utf-8") as handle:
            if keep:
                handle.write("--- tao-aml run: an earlier run stopped during this step; running it again ---\n")
                handle.flush()
            process = self.executor.start(launch, self.env, handle)
            try:
                code = self.wait(process, launch, label, started)
            except KeyboardInterrupt:
                stop(process)
                write_state(launch.folder, {**state, "status": FAILED, "interrupted": True})
                raise
        elapsed = time.monotonic() - started
        if code != 0:
            write_state(launch.folder, {**state, "status": FAILED, "exit_code": code, "elapsed_s": round(elapsed, 1)})
            raise StepFailed(launch.step, code, launch.command, launch.log, elapsed)
        # Last: only now does the step count as done.
        write_state(launch.folder, {**state, "status": COMPLETE, "exit_code": 0, "elapsed_s": round(elapsed, 1)})
        self.progress(f"{label}: done in {format_elapsed(elapsed)}")
        return StepRun(launch.step, launch.command, launch.outputs, launch.log)

    def wait(self, process: subprocess.Popen, launch: Launch, label: str, started: float) -> int:
        """The step's exit code; every heartbeat_s seconds a line with its elapsed time and last log line."""
        while True:
            try:
                return process.wait(timeout=self.heartbeat_s)
            except subprocess.TimeoutExpired:
                last = (log_tail(launch.log, 1) or [""])[0].strip()
                shown = last if len(last) <= 100 else last[:97] + "..."
                self.progress(f"{label}: running for {format_elapsed(time.monotonic() - started)}"
                              + (f" | {shown}" if shown else ""))

    def check_workdir(self) -> None:
        workdir = self.workdir
        if workdir.exists() and not workdir.is_dir():
            raise SettingError(f"--workdir {workdir}: is a file; give a folder (it is made when missing)")
        if not workdir.is_dir():
            return
        record = workdir / RUN_FILE
        if not record.is_file():
            if any(workdir.iterdir()):
                raise SettingError(f"--workdir {workdir}: not empty and not the folder of a tao-aml run (it has no "
                                   f"{RUN_FILE}); give an empty or new folder")
            return
        try:
            pipeline = json.loads(record.read_text(encoding="utf-8")).get("pipeline")
        except (OSError, ValueError, AttributeError):
            pipeline = None
        if pipeline != self.pipeline.name:
            raise SettingError(f"--workdir {workdir}: holds a run of pipeline {pipeline!r} ({record}); give "
                               f"another folder for {self.pipeline.name}")

    @contextmanager
    def claim(self) -> Iterator[None]:
        """The workdir for this run alone, for as long as it runs."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / LOCK_FILE, "w", encoding="utf-8") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SettingError(f"--workdir {self.workdir}: another tao-aml run is using it") from None
            record = self.workdir / RUN_FILE
            if not record.is_file():
                record.write_text(json.dumps({"pipeline": self.pipeline.name}) + "\n", encoding="utf-8")
            yield

    def pipeline_outputs(self) -> dict[str, Path]:
        """The pipeline's outputs, as the cloud job names them, and the folders the local run wrote them to."""
        found = {}
        for name in self.pipeline.component.topological_order():
            for output, value in self.pipeline.component.jobs[name].outputs.items():
                binding = parse_binding(value)
                if binding is not None and binding.kind == "outputs":
                    found[binding.name] = self.workdir / name / output
        return found


def stop(process: subprocess.Popen) -> None:
    """After Ctrl-C: SIGINT to every process of the step (its own session: a terminal's Ctrl-C reaches this
    process alone), SIGTERM if it has not stopped within STOP_GRACE_S, then SIGKILL; a second Ctrl-C kills it
    at once. Whatever of the step is left when its first process has exited is killed too.

    docker's client passes SIGINT and SIGTERM on to the container.
    """
    try:
        for sent, grace in ((signal.SIGINT, STOP_GRACE_S), (signal.SIGTERM, STOP_GRACE_S)):
            signal_group(process, sent)
            try:
                process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        signal_group(process, signal.SIGKILL)
        process.wait()


def signal_group(process: subprocess.Popen, sent: int) -> None:
    """`sent` to the step's process group (its session), if any of it is left."""
    try:
        os.killpg(process.pid, sent)
    except (ProcessLookupError, PermissionError):
        pass
