"""TAO 5.0 CLI stand-ins for tests: put one container's executables first on PATH.

`detectnet_v2` exists in both containers (TF1 and TAO Deploy), so a runner puts the folder of the
container a step runs in on PATH, one step at a time:

    env = standin_env("tf1", log=tmp_path / "tao.jsonl")
    subprocess.run(["detectnet_v2", "train", "-e", spec, "-r", out, "-k", key], env=env)
    assert invocations(tmp_path / "tao.jsonl")[-1]["ok"]

or, for code that runs TAO with os.environ, `use_standins(monkeypatch, "deploy", log)`.
The executables are `#!/usr/bin/env python3` scripts that need PyYAML and Pillow (and onnx, for the
exports' real ONNX models), so the test interpreter's bin folder goes on PATH right after the stand-ins.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

STANDINS = Path(__file__).resolve().parent
KINDS = ("tf1", "deploy")


def standin_path(kind: str) -> str:
    """The folder holding the stand-in executables of one container: "tf1" or "deploy"."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return str(STANDINS / kind)


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


def use_standins(monkeypatch: pytest.MonkeyPatch, kind: str, log: Path | None = None) -> None:
    """Point this process's PATH (and TAO_STANDIN_LOG) at one container's stand-ins for this test."""
    monkeypatch.setenv("PATH", _path_value(kind, os.environ.get("PATH", "")))
    if log is not None:
        monkeypatch.setenv("TAO_STANDIN_LOG", str(log))


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
