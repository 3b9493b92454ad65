"""Error texts as the user sees them, from a new user's trial: each names the problem once, with the way out."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from model_fixtures import facenet_args, facenet_outputs
from tao_aml.azure.submit import build_job
from tao_aml.cli import build_parser, commands, main
from tao_aml.repo import spec_check
from tao_aml.simulate.onnx_models import Box
from tao_aml.steps.asset import register_model

REPO = Path(__file__).resolve().parents[1]
INTERNAL = ("gpu_hours_estimate", "train_overrides", "retrain_overrides", "inference_overrides", "train_resume_from",
            "retrain_resume_from")


def errors(capsys) -> list[str]:  # type: ignore[no-untyped-def]
    return capsys.readouterr().err.splitlines()


def test_a_misspelt_input_gets_did_you_mean_and_no_internal_inputs(tmp_path: Path, fake_azure: FakeAzure,  # noqa: F811
                                                                    capsys) -> None:
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--set", "trian_epochs=3") == 2
    [line] = errors(capsys)
    assert line.startswith("error: --set trian_epochs: no pipeline input 'trian_epochs'; did you mean train_epochs? "
                           "(pipeline inputs: gpu_compute, cpu_compute, wider_urls, ")
    assert not [name for name in INTERNAL if name in line]
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--input", "wider_dat=azureml:wider:1") == 2
    assert errors(capsys) == ["error: --input wider_dat: no data input 'wider_dat' in facenet; did you mean "
                              "wider_data? (data inputs: specs, wider_data)"]


def test_a_spec_override_error_names_the_override_once(tmp_path: Path, fake_azure: FakeAzure,  # noqa: F811
                                                       capsys) -> None:
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--set", "train.training_config.nope=1",
                  "--set", "train.training_config.batch_size_per_gpu=abc") == 2
    first, second = errors(capsys)
    assert first.startswith("error: --set train.training_config.nope=1: nope is not a field of training_config "
                            "(TrainingConfig); valid fields: batch_size_per_gpu, num_epochs, ")
    assert second == "--set train.training_config.batch_size_per_gpu=abc: expected a whole number for uint32"
    assert first.count("training_config.nope") == 1 and "--set train.:" not in first and "override '" not in first
    assert submit(REPO, tmp_path, "bodypose", "--dry-run", "--set", "train.num_epoch=x") == 2
    assert errors(capsys) == ["error: --set train.num_epoch=x: expected a whole number, like the template's 20"]


def test_a_spec_problem_of_no_one_override_is_said_of_the_spec(tmp_path: Path) -> None:
    template = tmp_path / "infer.txt"
    template.write_text("inferencer_config { batch_size: 1 batch_size: 2 }\n")
    found = spec_check.override_problems(template, "Inference", ["inferencer_config.gpu_index=0",
                                                                 "inferencer_config.nope=1"])
    assert found[0][0] == "inferencer_config.nope=1" and found[0][1].startswith("nope is not a field of")
    assert found[1:] == [(None, f"{template}: inferencer_config.batch_size: set more than once, but "
                                "InferencerConfig.batch_size is not repeated")]


def test_validate_counts_each_problem_once(repo_copy: Path, capsys) -> None:
    component = repo_copy / "components/detectnet_v2/train/component.yml"
    component.write_text(component.read_text().replace("\n  epochs:", "\n  epochz:"))
    assert main(["validate", "--root", str(repo_copy)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == len(set(lines)) == 10 and captured.err == "10 problem(s) found\n"
    assert "components/detectnet_v2/train/component.yml: command: ${{inputs.epochs}} is not declared in inputs" \
        in lines
    assert not [line for line in lines if "azure-ai-ml:" in line or "jobs.main.jobs." in line]
    assert [line for line in lines if line.startswith("pipelines/facenet/pipeline_component.yml: jobs.train.inputs."
                                                      "epochs: tao_detectnet_v2_train has no input 'epochs'; did you "
                                                      "mean epochz? (it has: ")]


def test_a_partial_config_names_the_missing_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    for name in ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"subscription_id": "0000"}))
    assert submit(REPO, tmp_path, "facenet", "--config", str(config)) == 3
    assert errors(capsys) == [f"error: {config} has no resource_group, workspace_name (Studio's config.json holds "
                              "subscription_id, resource_group, workspace_name): download it again (Studio: workspace "
                              "menu > Download config.json), or --resource-group --workspace, or set "
                              "AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME"]


@pytest.fixture
def asset(tmp_path: Path) -> Path:
    outputs = facenet_outputs(tmp_path / "steps", 160, 96, boxes=[Box(20, 10, 70, 60)])
    assert register_model.main(facenet_args(outputs)) == 0
    return outputs["out"]


def test_the_serving_extra_installs_from_the_repository(asset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as when the extra is not installed
    Image.new("RGB", (160, 96)).save(tmp_path / "a.png")
    assert main(["predict", "--local", str(asset), str(tmp_path / "a.png"), "--output-dir", str(tmp_path / "o")]) == 2
    assert errors(capsys) == ["error: tao-aml predict --local needs onnxruntime: pip install -e '.[serve]' in this "
                              "repository's folder"]
    assert not [path for path in (REPO / "src").rglob("*.py") if "tao-aml[serve]" in path.read_text()]


def test_predict_says_when_a_folder_does_not_exist(asset: Path, tmp_path: Path, capsys) -> None:
    Image.new("RGB", (160, 96)).save(tmp_path / "a.png")
    assert main(["predict", "--local", str(tmp_path / "no-model"), str(tmp_path / "a.png")]) == 2
    assert errors(capsys) == [f"error: {tmp_path / 'no-model'}: no such folder (give the model asset folder, e.g. as "
                              "`az ml model download` or a pipeline's model output wrote it)"]
    (tmp_path / "photos").mkdir()
    assert main(["predict", "--local", str(asset), str(tmp_path / "photos")]) == 2
    assert errors(capsys) == [f"error: {tmp_path / 'photos'} is a folder: give its images, e.g. "
                              f"{tmp_path / 'photos' / '*.jpg'}"]


def test_predict_reads_no_model_onnx_from_outside_the_folder(asset: Path, tmp_path: Path, capsys) -> None:
    """A downloaded asset whose card leaves model.onnx out of its files, with model.onnx a link out of the folder."""
    Image.new("RGB", (160, 96)).save(tmp_path / "a.png")
    elsewhere = tmp_path / "elsewhere.onnx"
    (asset / "model.onnx").rename(elsewhere)
    (asset / "model.onnx").symlink_to(elsewhere)
    card = json.loads((asset / "model_card.json").read_text())
    card["files"] = {name: info for name, info in card["files"].items() if name != "model.onnx"}
    (asset / "model_card.json").write_text(json.dumps(card))
    assert main(["predict", "--local", str(asset), str(tmp_path / "a.png"), "--output-dir", str(tmp_path / "o")]) == 2
    assert errors(capsys) == [f"error: {asset}: the ONNX model model.onnx is a link to {elsewhere}, outside {asset}: "
                              "only files inside the model folder are read"]
    assert not (tmp_path / "o").exists()


def test_dbscans_summed_coverage_is_a_score_not_a_confidence(asset: Path, tmp_path: Path, capsys) -> None:
    Image.new("RGB", (160, 96)).save(tmp_path / "a.png")
    assert main(["predict", "--local", str(asset), str(tmp_path / "a.png"), "--output-dir", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"a\.png: face \d+\.\d\d \(summed coverage\) \[20, 10, 70, 60\]", out)
    [entry] = json.loads((tmp_path / "o/detections.json").read_text())
    [box] = entry["detections"]
    assert set(box) == {"label", "score", "score_is", "box"} and box["score_is"] == "summed coverage"
    assert "confidence" not in out


def test_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    listed = [name for name, _ in commands(build_parser())]
    assert {"tao-aml profile show", "tao-aml model register", "tao-aml images build", "tao-aml compute create",
            "tao-aml submit", "tao-aml deploy"} <= set(listed)
    assert all(re.search(rf"^  {name} +\S", out, re.M) for name in listed)


def test_the_written_jobs_description_does_not_say_to_submit_the_source_file(tmp_path: Path) -> None:
    job = yaml.safe_load(build_job("facenet", [], out_dir=tmp_path).job_file.read_text())
    assert job["description"] == ("TAO FaceNet train, prune, retrain, export, written by tao-aml from "
                                  "pipelines/facenet/pipeline.yml with this run's settings.")
