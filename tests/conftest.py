import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from azure_recorder import WORKSPACE  # noqa: E402
from http_server import http_server  # noqa: E402,F401  (fixture shared by download and pipeline tests)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the repository's YAML and spec templates that a test may break; the code is linked."""
    for folder in ("components", "pipelines", "environments"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    package = tmp_path / "src" / "tao_aml"
    package.mkdir(parents=True)
    for entry in (REPO / "src" / "tao_aml").iterdir():
        if entry.name == "templates":
            shutil.copytree(entry, package / entry.name)
        else:
            (package / entry.name).symlink_to(entry)
    return tmp_path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The workspace config.json that Studio lets users download."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps(WORKSPACE))
    return path
