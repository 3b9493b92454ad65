"""What Designer shows: display names, descriptions, family/tao_version tags and described inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_component, load_job

from tao_aml.repo.validation import REQUIRED_TAGS, validate_repository
from tao_aml.steps.common import StepError
from tao_aml.steps.specs import spec_templates

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


# --- zero configuration: `specs` is optional, the steps ship their templates ----------------------------

PIPELINES = ["facenet", "bodypose"]


@pytest.mark.parametrize("name", PIPELINES)
def test_pipeline_component_validates_with_specs_unconnected(name: str) -> None:
    """What a Designer user drags: nothing connected to `specs`, only the computes set (their defaults)."""
    component = load_component(REPO / "pipelines" / name / "pipeline_component.yml")
    assert component.inputs["specs"].optional is True
    result = component._validate()
    assert result.passed, result.error_messages
    raw = yaml.safe_load((REPO / "pipelines" / name / "pipeline.yml").read_text())
    assert "specs" not in raw["inputs"] and "specs" not in raw["jobs"]["main"]["inputs"]
    job = load_job(REPO / "pipelines" / name / "pipeline.yml")
    assert job._validate().passed
    assert "specs" not in job._to_rest_object().properties.jobs["main"]["inputs"]


SPEC_READERS = [
    path for path in sorted(REPO.glob("components/*/*/component.yml"))
    if "spec_file" in yaml.safe_load(path.read_text())["inputs"]
]


def test_every_component_that_reads_a_template_ships_it() -> None:
    assert len(SPEC_READERS) == 12  # the two TAO Deploy engine steps (deploy/detectnet_v2_*) read templates too
    for path in SPEC_READERS:
        raw = yaml.safe_load(path.read_text())
        specs = raw["inputs"]["specs"]
        assert specs["optional"] is True and "when not connected" in specs["description"], path
        assert "$[[--spec_dir '${{inputs.specs}}']]" in raw["command"], path
        assert (path.parent / raw["code"] / "tao_aml" / "templates").is_dir(), path


def shipped(tmp_path: Path, layout: dict[str, list[str]]) -> str:
    for folder, names in layout.items():
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            (tmp_path / folder / name).write_text("x")
    return str(tmp_path)


def test_the_one_shipped_folder_holding_the_template_is_used(tmp_path: Path) -> None:
    root = shipped(tmp_path, {"a": ["a_train.txt", "README.md"], "b": ["b_train.yaml", "README.md"]})
    assert spec_templates.folder(None, "b_train.yaml", root) == str(tmp_path / "b")
    assert spec_templates.folder("/my/specs", "b_train.yaml", root) == "/my/specs"
    # The shipped templates are the package's own: src/tao_aml/templates/ here, site-packages when installed.
    assert spec_templates.SHIPPED == str(REPO / "src" / "tao_aml" / "templates")
    assert spec_templates.folder(None, "coco_spec.json") == str(REPO / "src" / "tao_aml" / "templates" / "bodypose")


def test_a_template_in_no_or_several_shipped_folders_is_refused(tmp_path: Path) -> None:
    root = shipped(tmp_path, {"a": ["train.txt"], "b": ["train.txt", "infer.txt"]})
    with pytest.raises(StepError) as err:
        spec_templates.folder(None, "train.txt", root)
    assert str(err.value) == (
        f"spec template train.txt is in several shipped template folders of {root} (a, b): connect the specs "
        "input (--spec_dir) to the one to use"
    )
    with pytest.raises(StepError) as err:
        spec_templates.folder(None, "eval.txt", root)
    assert str(err.value) == (
        f"spec template eval.txt not found in the templates shipped in {root} (a/: train.txt; b/: infer.txt, "
        "train.txt): name one of them, or connect the specs input (--spec_dir)"
    )
    with pytest.raises(StepError, match="no spec templates are shipped in .*: reinstall tao-aml"):
        spec_templates.folder(None, "train.txt", str(tmp_path / "gone"))


def test_shipped_template_names_are_unique() -> None:
    """The rule the steps use needs it; README.md is the only name two folders share."""
    seen: dict[str, list[str]] = {}
    for path in sorted(Path(spec_templates.SHIPPED).glob("*/*")):
        seen.setdefault(path.name, []).append(path.parent.name)
    assert {name: folders for name, folders in seen.items() if len(folders) > 1} == {
        "README.md": ["bodypose", "detectnet_v2", "facenet"]}


# The venv's setuptools (65) calls [tool.setuptools] beta; the build requires setuptools>=68, where it is not.
@pytest.mark.filterwarnings("ignore:Support for `\\[tool.setuptools\\]`")
def test_a_non_editable_install_ships_the_templates(tmp_path: Path, monkeypatch) -> None:
    """What `pip install .` copies: setuptools' build_py outputs for the project's own configuration."""
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tmp_path)
    shutil.copytree(REPO / "src" / "tao_aml", tmp_path / "src" / "tao_aml",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    dist = apply_configuration(Distribution({"script_name": "setup.py"}), "pyproject.toml")
    build_py = dist.get_command_obj("build_py")
    build_py.ensure_finalized()
    built = {Path(path).relative_to(build_py.build_lib).as_posix() for path in build_py.get_outputs(False)}
    templates = {path.relative_to(REPO / "src").as_posix() for path in Path(spec_templates.SHIPPED).glob("*/*")}
    assert len(templates) == 20 and templates <= built
    assert "tao_aml/steps/specs/spec_templates.py" in built
