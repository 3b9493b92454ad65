"""TAO 5.0 simulated, for `tao-aml rehearse` and the tests: one container's CLIs first on PATH.

tao_standin.py checks each command line against TAO 5.0's flags and writes the files TAO would write, as
NVIDIA's source says (each behaviour cites the source file it models); onnx_models.py writes the exports'
real ONNX models. `detectnet_v2` exists in both containers (TF1 and TAO Deploy), so a runner puts the
folder of the container a step runs in on PATH, one step at a time:

    env = standin_env("tf1", log=tmp_path / "tao.jsonl")
    subprocess.run(["detectnet_v2", "train", "-e", spec, "-r", out, "-k", key], env=env)
    assert invocations(tmp_path / "tao.jsonl")[-1]["ok"]

or `LocalRunner(..., path_for_environment=environment_path)` for a whole pipeline. The executables are
`#!/usr/bin/env python3` scripts that need PyYAML and Pillow, and numpy and onnx for the exports' ONNX
models (the `rehearse` extra), so this interpreter's bin folder goes on PATH right after them.
`python -m nvidia_tao_tf1.cv.<family>.scripts.train` (train under MPI) finds its runners in RUNNERS.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIMULATE = Path(__file__).resolve().parent
RUNNERS = SIMULATE / "python"  # PYTHONPATH of the train runner modules
KINDS = ("tf1", "deploy")
CONTAINERS = {"tao_tf1": "tf1", "tao_deploy": "deploy"}  # environment of a component -> its TAO container
# What the simulated exports import (numpy, onnx) and what the steps of a local run import beyond the base
# dependencies (numpy; OpenCV for the WIDER converter): the `rehearse` extra.
NEEDS = {"numpy": "numpy", "onnx": "onnx", "cv2": "opencv-python-headless"}
INSTALL = "pip install -e '.[rehearse]'"


# A model folder made with TAO simulated: this file in it, and this tag in its card (`tao-aml rehearse`).
MARKER, TAG = "SIMULATED.json", "simulated"


def simulated_problem(tags: dict | None, where: str) -> str | None:
    """Why a model cannot be registered, deployed or served: its card or asset is tagged simulated."""
    if str((tags or {}).get(TAG, "")).lower() != "true":
        return None
    return (f"{where} was made by `tao-aml rehearse` with TAO simulated ({MARKER}): it proves the pipeline runs, "
            "it is not a trained model; train one with tao-aml submit")


def simulated_folder(folder: Path) -> str | None:
    """Why a model folder cannot be served: it holds the marker a rehearsal leaves."""
    return simulated_problem({TAG: "true"}, str(folder)) if (folder / MARKER).is_file() else None


class SimulationUnavailable(RuntimeError):
    """The packages the simulation needs are not installed."""


def require() -> None:
    """Raise SimulationUnavailable, naming the install command, when a package the simulation needs is missing."""
    missing = [package for module, package in NEEDS.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise SimulationUnavailable(f"simulating TAO needs {', '.join(missing)}, which this Python lacks: {INSTALL}")


def standin_path(kind: str) -> str:
    """The folder holding the simulated executables of one container: "tf1" or "deploy"."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return str(SIMULATE / kind)


def environment_path(environment: str) -> list[str]:
    """Folders first on PATH for the steps of one environment: its container's CLIs, then this interpreter,
    which is what `python` in a step's command and the executables' `python3` must be."""
    kind = CONTAINERS.get(environment)
    return ([standin_path(kind)] if kind else []) + [os.path.dirname(sys.executable)]


def _path_value(kind: str, path: str) -> str:
    return os.pathsep.join([standin_path(kind), os.path.dirname(sys.executable), path])


def standin_env(kind: str, log: Path | None = None, base: dict[str, str] | None = None,
                **extra: str) -> dict[str, str]:
    """A copy of `base` (default os.environ) whose PATH finds the stand-ins first; TAO_STANDIN_LOG=log."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = _path_value(kind, env.get("PATH", ""))
    if log is not None:
        env["TAO_STANDIN_LOG"] = str(log)
    env.update(extra)
    return env


def use_standins(setenv: Callable[[str, str], None], kind: str, log: Path | None = None) -> None:
    """Point this process's PATH (and TAO_STANDIN_LOG) at one container's stand-ins, e.g. with a test's
    `monkeypatch.setenv`."""
    setenv("PATH", _path_value(kind, os.environ.get("PATH", "")))
    if log is not None:
        setenv("TAO_STANDIN_LOG", str(log))


def _json_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def invocations(log: Path) -> list[dict[str, Any]]:
    """Stand-in calls logged to TAO_STANDIN_LOG: {argv, cwd, kind, family, task, ok, error, exit_code}."""
    return _json_lines(Path(log))


def status_lines(results_dir: Path) -> list[dict[str, Any]]:
    """The JSON lines a task wrote to <results_dir>/status.json."""
    return _json_lines(Path(results_dir) / "status.json")
