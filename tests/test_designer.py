"""What Designer shows: display names, descriptions, family/tao_version tags and described inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tao_aml.validation import REQUIRED_TAGS, validate_repository

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = sorted([*REPO.glob("components/*/*/component.yml"), *REPO.glob("pipelines/*/pipeline_component.yml")])


@pytest.mark.parametrize("path", COMPONENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_component_reads_well_in_designer(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert raw["display_name"] and len(raw["description"].split()) >= 8, "say what it does and reads/writes"
    assert all(raw["tags"].get(tag) for tag in REQUIRED_TAGS)
    assert raw["tags"]["tao_version"] == "5.0.0"
    assert all(port.get("description") for port in raw.get("inputs", {}).values())


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def problems(root: Path) -> list[str]:
    return [p.render(root) for p in validate_repository(root, with_azure=False)]


def test_validate_requires_family_and_tao_version_tags(repo_copy: Path) -> None:
    edit(repo_copy / "components/detectnet_v2/prune/component.yml", lambda d: d.pop("tags"))
    edit(repo_copy / "pipelines/facenet/pipeline_component.yml", lambda d: d["tags"].pop("tao_version"))
    found = problems(repo_copy)
    assert "components/detectnet_v2/prune/component.yml: tags.family: missing" in "\n".join(found)
    assert "components/detectnet_v2/prune/component.yml: tags.tao_version: missing" in "\n".join(found)
    assert "pipelines/facenet/pipeline_component.yml: tags.tao_version: missing" in "\n".join(found)
    assert not any("pipeline_component.yml: tags.family" in p for p in found)


def test_validate_requires_pipeline_component_inputs_described(repo_copy: Path) -> None:
    edit(repo_copy / "pipelines/facenet/pipeline_component.yml", lambda d: d["inputs"]["specs"].pop("description"))
    assert (
        "pipelines/facenet/pipeline_component.yml: inputs.specs: missing description (Designer shows it)"
        in problems(repo_copy)
    )


def test_repository_has_no_designer_problems() -> None:
    assert not [p for p in problems(REPO) if "tags." in p or "description" in p or "display_name" in p]
