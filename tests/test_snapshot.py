"""The code snapshot azure-ai-ml uploads for every component is the same for a fresh clone, after
`pip install -e .` and after a test run, so Azure ML can reuse steps whose inputs did not change."""

from __future__ import annotations

import compileall
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from azure.ai.ml import load_component
from azure.ai.ml._artifacts._artifact_utilities import _get_snapshot_path_info

REPO = Path(__file__).resolve().parents[1]
COMPONENT = "components/data/download/component.yml"


def fresh_clone(target: Path) -> Path:
    """The files a `git clone` of this tree holds: tracked and not-ignored new files, nothing built."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def snapshot_hash(repo: Path, component: str = COMPONENT) -> str:
    """The hash azure-ai-ml gives the component's code folder when it uploads it (and reuses it by)."""
    loaded = load_component(repo / component)
    with loaded._build_code() as code:
        _, _, content_hash = _get_snapshot_path_info(code)
    return content_hash


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_clone(tmp_path_factory.mktemp("clone"))


def egg_info(repo: Path) -> None:
    """What `pip install -e .` writes into src/: setuptools' egg-info, PKG-INFO with the README inside."""
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "egg_info"],
                   cwd=repo, check=True, capture_output=True)
    assert list((repo / "src").glob("*.egg-info/PKG-INFO")), "egg_info wrote nothing into src/"


def test_snapshot_hash_survives_install_and_test_leftovers(clone: Path) -> None:
    fresh = snapshot_hash(clone)
    egg_info(clone)
    # What running the steps and the tests leaves: bytecode caches, pytest's and ruff's caches.
    compileall.compile_dir(clone / "src", quiet=1)
    (clone / "src/.pytest_cache").mkdir()
    (clone / "src/.pytest_cache/README.md").write_text("cache\n")
    assert list((clone / "src").rglob("__pycache__"))
    assert snapshot_hash(clone) == fresh
    # Every component shares the folder, so every one has the same snapshot.
    assert {snapshot_hash(clone, str(p.relative_to(clone))) for p in clone.glob("components/*/*/component.yml")} == {
        fresh
    }


def test_without_the_ignore_file_leftovers_change_the_hash(clone: Path, tmp_path: Path) -> None:
    """The check above can fail: it is the .amlignore that keeps the hash stable (azure-ai-ml itself
    leaves out only __pycache__ of a component's code)."""
    bare = fresh_clone(tmp_path)
    (bare / "src/.amlignore").unlink()
    before = snapshot_hash(bare)
    egg_info(bare)
    assert snapshot_hash(bare) != before


def test_a_code_change_changes_the_hash(tmp_path: Path) -> None:
    changed = fresh_clone(tmp_path)
    before = snapshot_hash(changed)
    step = changed / "src/tao_aml/steps/data/download.py"
    step.write_text(step.read_text() + "\n# changed\n")
    assert snapshot_hash(changed) != before
