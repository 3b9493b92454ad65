"""Download once per workspace: data assets registered on the first run, reused by later ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.render import rest_body
from tao_aml.azure.submit import build_job
from tao_aml.repo import data_assets
from tao_aml.repo.pipelines import Pipeline
from tao_aml.repo.validation import validate_repository

REPO = Path(__file__).resolve().parents[1]
RAW = {"facenet": ("tao_wider_face", "wider", "wider_data"), "bodypose": ("tao_coco2017", "coco", "coco_data")}
REUSED_STEPS = {"facenet": ("download_wider", "convert_train", "convert_val"), "bodypose": ("download_coco",)}


def versions(name: str, settings: list[str] | None = None, root: Path = REPO) -> dict[str, str]:
    return build_job(name, settings or [], root=root).data_plan.versions


def sent_body(fake: FakeAzure) -> dict:
    return rest_body(fake.jobs[-1]["job"])


def main_node(body: dict, step: str) -> dict:
    return body["properties"]["jobs"]["main"]["componentId"]["component_spec"]["jobs"][step]


@pytest.mark.parametrize("name", sorted(RAW))
def test_first_run_names_the_outputs_and_later_runs_reuse_the_raw_download(
    name: str, tmp_path: Path, config: Path, fake_azure: FakeAzure  # noqa: F811
) -> None:
    asset, output, reuse_input = RAW[name]
    assert submit(REPO, tmp_path / "first", name, "--config", str(config)) == 0
    first = sent_body(fake_azure)
    number = first["properties"]["outputs"][output]["assetVersion"]
    assert first["properties"]["outputs"][output]["assetName"] == asset
    assert reuse_input not in first["properties"]["jobs"]["main"]["inputs"]

    # The service registers named outputs when the job ends.
    for out in first["properties"]["outputs"].values():
        fake_azure.assets[("data", out["assetName"], out["assetVersion"])] = {}
    assert submit(REPO, tmp_path / "second", name, "--config", str(config), "--set", "train_epochs=5") == 0
    second = sent_body(fake_azure)
    given = second["properties"]["jobs"]["main"]["inputs"][reuse_input]
    # azure-ai-ml sends `azureml:name:version` as `name:version`.
    assert given == {"job_input_type": "uri_folder", "uri": f"{asset}:{number}"}
    assert not any(out.get("assetName") for out in second["properties"]["outputs"].values()), \
        "a registered name:version must not be registered again"

    # A third run with unchanged data settings sends the data steps exactly as the second: Azure ML may reuse them.
    assert submit(REPO, tmp_path / "third", name, "--config", str(config), "--set", "batch_size=2") == 0
    third = sent_body(fake_azure)
    for step in REUSED_STEPS[name]:
        assert main_node(third, step) == main_node(second, step), step
    assert third["properties"]["jobs"]["main"]["inputs"][reuse_input] == given


@pytest.mark.parametrize("name", sorted(RAW))
def test_changed_urls_are_a_new_version_never_a_stale_reuse(
    name: str, tmp_path: Path, config: Path, fake_azure: FakeAzure  # noqa: F811
) -> None:
    asset, output, reuse_input = RAW[name]
    urls_input = {"facenet": "wider_urls", "bodypose": "coco_urls"}[name]
    old = versions(name)[output]
    fake_azure.assets[("data", asset, old)] = {}
    mirror = "https://mirror.example.org/a.zip,https://mirror.example.org/b.zip,https://mirror.example.org/c.zip"
    assert submit(REPO, tmp_path, name, "--config", str(config), "--set", f"{urls_input}={mirror}") == 0
    body = sent_body(fake_azure)
    assert reuse_input not in body["properties"]["jobs"]["main"]["inputs"]
    new = body["properties"]["outputs"][output]["assetVersion"]
    assert new != old and body["properties"]["outputs"][output]["assetName"] == asset


def test_raw_version_ignores_code_changes_but_the_kitti_version_follows_the_converter(tmp_path: Path) -> None:
    for folder in ("components", "pipelines", "environments", "src"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    before = versions("facenet", root=tmp_path)
    for name in ("src/tao_aml/steps/data/download.py", "src/tao_aml/steps/data/wider_to_kitti.py"):
        (tmp_path / name).write_text((tmp_path / name).read_text() + "\n# changed\n")
    after = versions("facenet", root=tmp_path)
    assert after["wider"] == before["wider"]
    assert after["kitti_train"] != before["kitti_train"] and after["kitti_val"] != before["kitti_val"]
    assert versions("facenet", ["image_width=640"])["kitti_train"] != versions("facenet")["kitti_train"]


def test_data_the_user_gives_is_neither_looked_up_nor_registered(
    tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert submit(REPO, tmp_path, "facenet", "--config", str(config), "--input", "wider_data=azureml:my-wider:3") == 0
    body = sent_body(fake_azure)
    assert body["properties"]["jobs"]["main"]["inputs"]["wider_data"]["uri"] == "my-wider:3"
    assert "assetName" not in body["properties"]["outputs"]["wider"]
    assert "tao_wider_face: not registered, wider_data is given (azureml:my-wider:3)" in capsys.readouterr().out


def test_dry_run_prints_the_versions_it_would_register(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert submit(REPO, tmp_path, "facenet", "--dry-run") == 0
    out = capsys.readouterr().out
    number = versions("facenet")["wider"]
    assert f"tao_wider_face:{number}: not looked up (dry run), registered from output wider when the job ends" in out
    assert fake_azure.clients == []


def test_an_entry_naming_a_missing_output_is_refused(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/facenet/data_assets.yml"
    path.write_text(path.read_text().replace("output: wider\n", "output: ghost\n"))
    with pytest.raises(data_assets.SettingError, match="wider: output 'ghost' is not an output"):
        data_assets.load_entries(Pipeline.load("facenet", repo_copy), repo_copy)
    found = [p.render(repo_copy) for p in validate_repository(repo_copy, with_azure=False)]
    assert "pipelines/facenet/data_assets.yml: wider: output 'ghost' is not an output of the pipeline component " \
        "and job" in found


def test_set_takes_a_data_reference_for_a_data_input(tmp_path: Path) -> None:
    built = build_job("facenet", ["wider_data=azureml:my-wider:2"], out_dir=tmp_path)
    main = rest_body(built.job)["properties"]["jobs"]["main"]["inputs"]
    assert main["wider_data"] == {"job_input_type": "uri_folder", "uri": "my-wider:2"}
    with pytest.raises(data_assets.SettingError, match="--set wider_data=/data/wider: a uri_folder input takes an "
                                                       "Azure ML data reference"):
        build_job("facenet", ["wider_data=/data/wider"], out_dir=tmp_path)
