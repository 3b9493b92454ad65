"""Prebuilt environment images: `tao-aml images build` (az acr build), then submit and register name them."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.register import Refs, plan
from tao_aml.azure.render import rest_body
from tao_aml.azure.submit import build_job
from tao_aml.cli import main
from test_snapshot import snapshot_hash

REPO = Path(__file__).resolve().parents[1]
ENVIRONMENTS = {"tao_data", "tao_deploy", "tao_tf1"}

# A stand-in for the Azure CLI that checks `az acr build` as Microsoft documents it and records each call.
FAKE_AZ = r'''#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
assert args[:2] == ["acr", "build"], args
flags = dict(zip(args[2:-1:2], args[3:-1:2]))
assert set(flags) == {{"--registry", "--image"}}, flags
assert "." not in flags["--registry"], "az acr build takes the registry name, not its login server"
assert (Path(args[-1]) / "Dockerfile").is_file(), "the last argument is the build context"
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
sys.exit(int(os.environ.get("AZ_EXIT", "0")))
'''


@pytest.fixture
def fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "az.jsonl"
    monkeypatch.setenv("AZ_LOG", str(log))
    return log


def test_images_build_runs_az_acr_build_once_per_environment(fake_az: Path, capsys) -> None:
    assert main(["images", "build", "--registry", "myacr.azurecr.io", "--root", str(REPO)]) == 0
    calls = [json.loads(line) for line in fake_az.read_text().splitlines()]
    images = {call[call.index("--image") + 1] for call in calls}
    assert images == {f"tao-aml/{name}:0.1.0" for name in ENVIRONMENTS}
    assert all(call[call.index("--registry") + 1] == "myacr" for call in calls)
    assert "built  az acr build --registry myacr --image tao-aml/tao_tf1:0.1.0" in capsys.readouterr().out


def test_a_failed_image_build_stops_with_the_command(fake_az: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("AZ_EXIT", "1")
    assert main(["images", "build", "--registry", "myacr", "--root", str(REPO)]) == 3
    assert "az acr build --registry myacr --image tao-aml/tao_data:0.1.0" in capsys.readouterr().err
    assert len(fake_az.read_text().splitlines()) == 1


def test_without_az_the_message_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["images", "build", "--registry", "myacr", "--root", str(REPO)]) == 3
    assert "the Azure CLI `az` is not on PATH" in capsys.readouterr().err


def component_specs(body: dict) -> dict[str, dict]:
    spec = body["properties"]["jobs"]["main"]["componentId"]["component_spec"]
    return {name: node["componentId"]["component_spec"] for name, node in spec["jobs"].items()}


def test_submit_with_images_names_the_prebuilt_image_and_keeps_the_snapshot(tmp_path: Path) -> None:
    built = build_job("facenet", [], out_dir=tmp_path, registry="myacr")
    specs = component_specs(rest_body(built.job))
    for step, spec in specs.items():
        environment = spec["environment"]
        assert environment.get("image", "").startswith("myacr.azurecr.io/tao-aml/"), (step, environment)
        assert not environment.get("build"), step
    assert specs["train"]["environment"]["image"] == "myacr.azurecr.io/tao-aml/tao_tf1:0.1.0"
    assert specs["engine"]["environment"]["image"] == "myacr.azurecr.io/tao-aml/tao_deploy:0.1.0"
    assert specs["download_wider"]["environment"]["image"] == "myacr.azurecr.io/tao-aml/tao_data:0.1.0"
    # The copies' code is still src/: the same snapshot, so unchanged steps stay reusable.
    copy = tmp_path / "components/detectnet_v2/train/component.yml"
    assert snapshot_hash(tmp_path, str(copy.relative_to(tmp_path))) == snapshot_hash(
        REPO, "components/detectnet_v2/train/component.yml"
    )


def test_submit_without_images_builds_from_the_contexts(tmp_path: Path) -> None:
    specs = component_specs(rest_body(build_job("facenet", [], out_dir=tmp_path).job))
    assert all(not spec["environment"].get("image") for spec in specs.values())


def test_register_with_images_publishes_image_environments() -> None:
    environments = [a for a in plan(REPO, Refs("0.1.0", images="myacr")) if a.kind == "environment"]
    assert {a.entity.name for a in environments} == ENVIRONMENTS
    for asset in environments:
        assert asset.entity.image == f"myacr.azurecr.io/tao-aml/{asset.entity.name}:0.1.0"
        assert asset.entity.build is None
        asset.entity._to_rest_object()
    built_from_context = {a.entity.name: a.content_hash for a in plan(REPO, Refs("0.1.0")) if a.kind == "environment"}
    assert all(built_from_context[a.entity.name] != a.content_hash for a in environments)
