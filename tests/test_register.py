"""`tao-aml register`: order, rewritten references, versions, idempotence and refusals, on a recording MLClient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from tao_aml import __version__
from tao_aml.azure.register import HASH_TAG, Refs, RegisterError, plan
from tao_aml.cli import main

REPO = Path(__file__).resolve().parents[1]
KIND_ORDER = ["environments", "components", "data"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"subscription_id": "s", "resource_group": "g", "workspace_name": "w"}))
    return path


def register(repo: Path, *args: str) -> int:
    return main(["register", "--root", str(repo), *args])


def test_every_asset_file_declares_the_package_version() -> None:
    """What runs anonymously from the files is what `register` publishes under __version__."""
    files = [*REPO.glob("environments/*/environment.yml"), *REPO.glob("components/*/*/component.yml"),
             *REPO.glob("pipelines/*/pipeline_component.yml")]
    assert {str(yaml.safe_load(f.read_text())["version"]) for f in files} == {__version__}


def test_plan_rewrites_every_reference_to_a_named_asset() -> None:
    assets = plan(REPO, Refs("1.2.3"))
    kinds = [asset.kind for asset in assets]
    assert kinds == sorted(kinds, key=["environment", "component", "pipeline component", "data"].index)
    names = {asset.entity.name for asset in assets}
    for asset in assets:
        assert asset.entity.version == "1.2.3" and asset.entity.tags[HASH_TAG] == asset.content_hash
        if asset.kind == "component":
            env_name, version = str(asset.entity.environment).removeprefix("azureml:").split(":")
            assert env_name in names and version == "1.2.3"
        if asset.kind == "pipeline component":
            for step in asset.entity.jobs.values():
                # azure-ai-ml keeps `azureml:name:version` as `name:version`; both name a registered asset.
                name, version = str(step.component).removeprefix("azureml:").split(":")
                assert version == "1.2.3" and name in names
    assert "tao_facenet_specs" in names


def test_registry_plan_uses_registry_references() -> None:
    assets = plan(REPO, Refs("0.1.0", "tao"))
    commands = [a.entity for a in assets if a.kind == "component"]
    pipelines = [a.entity for a in assets if a.kind == "pipeline component"]
    assert all(c.environment.startswith("azureml://registries/tao/environments/") for c in commands)
    assert all(
        step.component.startswith("azureml://registries/tao/components/") for p in pipelines for step in p.jobs.values()
    )


def test_publish_order_versions_and_idempotence(
    config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert register(REPO, "--config", str(config)) == 0
    published = fake_azure.published
    kinds = [kind for kind, _ in published]
    assert kinds == sorted(kinds, key=KIND_ORDER.index)
    components = [entity for kind, entity in published if kind == "components"]
    first_pipeline = next(i for i, c in enumerate(components) if c.type == "pipeline")
    assert all(c.type == "command" for c in components[:first_pipeline])
    assert all(c.type == "pipeline" for c in components[first_pipeline:])
    assert {entity.version for _, entity in published} == {__version__}
    specs = next(entity for kind, entity in published if kind == "data" and entity.name == "tao_facenet_specs")
    assert specs.type == "uri_folder" and Path(specs.path) == REPO / "src" / "tao_aml" / "templates" / "facenet"
    assert f"{len(published)} published, 0 unchanged" in capsys.readouterr().out
    # Unchanged: nothing is sent again.
    assert register(REPO, "--config", str(config)) == 0
    assert len(fake_azure.published) == len(published)
    assert f"0 published, {len(published)} unchanged" in capsys.readouterr().out


def test_changed_asset_under_an_existing_version_is_refused(
    repo_copy: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert register(repo_copy, "--config", str(config)) == 0
    count = len(fake_azure.published)
    train = repo_copy / "components/detectnet_v2/train/component.yml"
    train.write_text(train.read_text().replace("display_name: DetectNet_v2 train / retrain", "display_name: Train"))
    assert register(repo_copy, "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert f"component tao_detectnet_v2_train:{__version__} already exists with different content" in err
    assert "bump the version" in err and "nothing was published" in err
    assert len(fake_azure.published) == count
    # A new version publishes everything under it.
    assert register(repo_copy, "--config", str(config), "--version", "9.0.0") == 0
    assert {e.version for _, e in fake_azure.published[count:]} == {"9.0.0"}
    assert len(fake_azure.published) == 2 * count


def test_registry_target(fake_azure: FakeAzure) -> None:  # noqa: F811
    assert register(REPO, "--registry", "tao-registry") == 0
    assert fake_azure.clients == [{"registry_name": "tao-registry"}]
    pipeline = next(e for kind, e in fake_azure.published if kind == "components" and e.type == "pipeline")
    assert pipeline.jobs["train"].component.startswith("azureml://registries/tao-registry/components/")


def test_registry_refuses_an_anonymous_environment(repo_copy: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    prune = repo_copy / "components/detectnet_v2/prune/component.yml"
    prune.write_text(
        prune.read_text().replace(
            "environment: file:../../../environments/tao_tf1/environment.yml",
            "environment:\n  image: nvcr.io/nvidia/tao/tao-toolkit:5.0.0-tf1.15.5",
        )
    )
    assert register(repo_copy, "--registry", "tao-registry") == 2
    err = capsys.readouterr().err
    assert "components/detectnet_v2/prune/component.yml: environment" in err and "is anonymous" in err
    assert fake_azure.clients == [] and fake_azure.published == []


def use_environment(repo: Path, environment: str) -> None:
    train = repo / "components/detectnet_v2/train/component.yml"
    train.write_text(train.read_text().replace("file:../../../environments/tao_tf1/environment.yml", environment))


def test_registry_refuses_a_workspace_reference(repo_copy: Path) -> None:
    use_environment(repo_copy, "azureml:tao_tf1:0.1.0")
    plan(repo_copy, Refs("0.1.0"))  # fine in a workspace
    with pytest.raises(RegisterError, match="train/component.yml: environment .* not reachable from a registry"):
        plan(repo_copy, Refs("0.1.0", "tao"))


def test_environment_file_outside_environments_is_refused(repo_copy: Path) -> None:
    (repo_copy / "components/detectnet_v2/train/env.yml").write_text("image: python:3.8\n")
    use_environment(repo_copy, "file:./env.yml")
    with pytest.raises(RegisterError, match="would be published as an anonymous environment"):
        plan(repo_copy, Refs("0.1.0"))


def test_dry_run_lists_without_azure(fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert register(REPO, "--dry-run", "--registry", "tao") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("would publish  environment ")
    assert any(line.startswith("would publish  pipeline component tao_facenet_pipeline:") for line in lines)
    assert fake_azure.clients == []
