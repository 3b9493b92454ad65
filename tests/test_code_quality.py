"""Step code runs in the TAO 5.0 container (Python 3.8); all code passes the project's lint."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_step_code_runs_on_python_38() -> None:
    result = subprocess.run(
        [str(BIN / "vermin"), "-t=3.8-", "--no-tips", "--violations", "--eval-annotations",
         str(REPO / "src/tao_aml/steps")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint() -> None:
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "src", "tests", "benchmarks", "scripts"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
