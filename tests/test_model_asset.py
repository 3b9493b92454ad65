"""`tao-aml model register JOB`: a completed pipeline's register_model output as a model asset, on the fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azure_recorder import FakeAzure, FakeMLClient, fake_azure  # noqa: F401  (fixture)
from model_fixtures import detectnet_v2_outputs, facenet_args, facenet_outputs
from tao_aml.azure.model_asset import PLAN_TAG, ModelJobError, ModelNameError, register_from_job
from tao_aml.cli import main
from tao_aml.steps.asset import register_model

JOB, MAIN, CHILD = "tao_job_7", "tao_job_7_main", "tao_job_7_register_model"
URI = f"azureml://jobs/{CHILD}/outputs/model/paths/"


@pytest.fixture
def azure(fake_azure: FakeAzure) -> FakeAzure:  # noqa: F811  (the recording fake, under a shorter name)
    return fake_azure


@pytest.fixture
def full_card(tmp_path: Path) -> dict:
    """The model card the real register_model step writes for a small FaceNet export, engine and run report."""
    outputs = facenet_outputs(tmp_path, engine_check={})
    assert register_model.main(facenet_args(outputs)) == 0
    return json.loads((outputs["out"] / "model_card.json").read_text())


@pytest.fixture
def card(full_card: dict) -> dict:
    """The same card without its Triton repository: the custom_model asset alone (a BodyPose model has none)."""
    return {key: value for key, value in full_card.items() if key != "triton"}


def finished(azure: FakeAzure, card: dict | None, status: str = "Completed", step: str = "main.register_model") -> None:
    """A pipeline job wrapping the pipeline component as `main`; its register_model step wrote `card`."""
    azure.pipeline_job(JOB, {"main.export": "tao_job_7_export", step: CHILD}, status)
    files = {"model.onnx": "onnx"} if card is None else {"model_card.json": json.dumps(card), "model.onnx": "onnx"}
    azure.outputs[(CHILD, "model")] = files


def model_register(config: Path, *args: str) -> int:
    return main(["model", "register", JOB, "--config", str(config), *args])


REGISTRATION_READS = [("jobs.get", JOB), ("jobs.list", JOB), ("jobs.list", MAIN), ("jobs.download", CHILD, "model")]


def test_registers_the_step_jobs_model_output_with_the_cards_tags(azure: FakeAzure, card, config, capsys) -> None:
    finished(azure, card)
    assert model_register(config) == 0
    assert azure.calls == [*REGISTRATION_READS, ("models.list", "tao-facenet"),
                                ("models.create_or_update", "tao-facenet", "1")]
    [(key, sent)] = azure.models.items()
    assert key == ("tao-facenet", "1")
    rest = sent["rest"]["properties"]
    assert rest["modelUri"] == URI and rest["modelType"] == "custom_model"
    assert rest["tags"] == card["tags"] == {
        "accuracy_metric": "eval/mAP", "accuracy": "84.25", "accuracy_of": "pruned + retrained",
        "pretrained_accuracy": "80.1", "parameters_before_pruning": "1000", "parameters_after_pruning": "250",
        "parameters_pruning_ratio": "0.25", "family": "detectnet_v2", "tao_version": "5.0.0"}
    assert rest["properties"] == {"tao_aml.pipeline_job": JOB, "tao_aml.step_job": CHILD}
    assert rest["description"] == (f"NVIDIA TAO 5.0.0 detectnet_v2 model from pipeline job {JOB}: README.md, "
                                   "cal.bin, deepstream, engine.json, labels.txt, model.engine, model.onnx, "
                                   "model_card.json, specs, triton")
    assert azure.clients == [{"subscription_id": "0000-sub", "resource_group_name": "rg-tao",
                                   "workspace_name": "ws-tao"}]
    out = capsys.readouterr().out
    assert f"registered model tao-facenet:1 from {URI}" in out and "model tao-facenet:1 in workspace ws-tao" in out


def test_the_next_free_version_unless_given_and_one_version_per_job(azure: FakeAzure, card, config) -> None:
    finished(azure, card)
    assert model_register(config) == 0
    azure.calls.clear()
    assert model_register(config) == 0  # again, e.g. after `submit --stream` registered it: nothing new
    assert azure.calls == [*REGISTRATION_READS, ("models.list", "tao-facenet")]
    # Another job's output: the next free version; an explicit free version is used as given.
    other = "tao_job_7_register_model_rerun"
    azure.outputs[(other, "model")] = azure.outputs[(CHILD, "model")]
    azure.children[MAIN][-1].name = other
    assert model_register(config) == 0
    azure.children[MAIN][-1].name = "tao_job_7_third"
    azure.outputs[("tao_job_7_third", "model")] = azure.outputs[(CHILD, "model")]
    assert model_register(config, "--version", "10") == 0
    assert sorted(azure.models) == [("tao-facenet", "1"), ("tao-facenet", "10"), ("tao-facenet", "2")]
    assert azure.models[("tao-facenet", "10")]["rest"]["properties"]["modelUri"] == (
        "azureml://jobs/tao_job_7_third/outputs/model/paths/")


def test_a_taken_version_is_a_usage_error_and_nothing_is_created(azure: FakeAzure, card, config, capsys) -> None:
    finished(azure, card)
    assert model_register(config, "--name", "other", "--version", "3") == 0
    azure.children[MAIN][-1].name = "tao_job_7_again"
    azure.outputs[("tao_job_7_again", "model")] = azure.outputs[(CHILD, "model")]
    azure.calls.clear()
    assert model_register(config, "--name", "other", "--version", "3") == 2
    assert "model other version 3 already exists (versions are immutable)" in capsys.readouterr().err
    assert azure.calls[-1] == ("models.get", "other", "3")
    assert list(azure.models) == [("other", "3")]


def test_a_registry_gets_the_workspace_version_shared_after_registration(azure: FakeAzure, card, config,
                                                                         capsys) -> None:
    finished(azure, card)
    assert model_register(config, "--registry", "tao-registry") == 0
    assert azure.calls[-2:] == [
        ("models.create_or_update", "tao-facenet", "1"),
        ("models.share", "tao-facenet", "1", "tao-registry", "tao-facenet", "1")]
    assert azure.shared == {("tao-registry", "tao-facenet", "1"): ("tao-facenet", "1")}
    assert "azureml://registries/tao-registry/models/tao-facenet/versions/1" in capsys.readouterr().out
    # Shared once: the SDK refuses the same name and version in the registry again, and says so.
    assert model_register(config, "--registry", "tao-registry") == 3
    assert "A model with this name and version already exists in registry" in capsys.readouterr().err
    assert list(azure.models) == [("tao-facenet", "1")]


@pytest.mark.parametrize("status", ["Running", "Failed", "Canceled"])
def test_a_job_that_did_not_complete_is_refused_before_anything_is_read(azure: FakeAzure, card, config,
                                                                        capsys, status: str) -> None:
    finished(azure, card, status=status)
    assert model_register(config) == 3
    assert f"job {JOB} is {status}: only a Completed job has a model output to register" in capsys.readouterr().err
    assert azure.calls == [("jobs.get", JOB)] and not azure.models


def test_a_job_without_a_register_model_step_is_refused(azure: FakeAzure, config, capsys) -> None:
    azure.pipeline_job(JOB, {"main.export": "tao_job_7_export", "main.report": "tao_job_7_report"})
    assert model_register(config) == 3
    err = capsys.readouterr().err
    steps = "main, main.export, main.report"
    assert f"job {JOB} has no register_model step to take the model from; its steps: {steps}" in err
    assert azure.calls == [("jobs.get", JOB), ("jobs.list", JOB), ("jobs.list", MAIN)]
    # A job name that is not a pipeline (no steps at all) says so.
    azure.statuses["lonely"] = "Completed"
    assert main(["model", "register", "lonely", "--config", str(config)]) == 3
    assert "has no register_model step to take the model from; its steps: none (not a pipeline job" in (
        capsys.readouterr().err)
    # Two candidates (a hand-made pipeline) are not guessed between.
    azure.pipeline_job("twice", {"a.register_model": "twice_a", "b.register_model": "twice_b"})
    assert main(["model", "register", "twice", "--config", str(config)]) == 3
    assert "has 2 (a.register_model, b.register_model) register_model step" in capsys.readouterr().err


def test_a_missing_model_card_is_refused(azure: FakeAzure, config, capsys) -> None:
    finished(azure, None)
    assert model_register(config) == 3
    err = capsys.readouterr().err
    assert f"the register_model step's job {CHILD} has no model_card.json in its model output" in err
    assert azure.calls[-1] == ("jobs.download", CHILD, "model") and not azure.models
    for text, problem in (("{not json", "is not readable"), ('["a list"]', "is not a model card")):
        azure.outputs[(CHILD, "model")]["model_card.json"] = text
        assert model_register(config) == 3
        assert f"model_card.json of step job {CHILD} {problem}" in capsys.readouterr().err
    assert not azure.models


def test_a_card_without_a_name_needs_one(azure: FakeAzure, card, config, capsys) -> None:
    finished(azure, dict(card, name=None))
    assert model_register(config) == 2
    assert "names no model (pipeline input model_name unset): pass --name" in capsys.readouterr().err
    assert model_register(config, "--name", "my-faces") == 0
    assert list(azure.models) == [("my-faces", "1")]


def test_register_from_job_for_the_submitter_and_a_designer_node_name(azure: FakeAzure, card) -> None:
    """What `submit --stream` calls on a Completed job; a Designer run names its wrapper node after the component."""
    finished(azure, card, step="tao_facenet_pipeline.register_model")
    lines: list[str] = []
    model = register_from_job(FakeMLClient(azure, "credential"), JOB, report=lines.append)
    assert (model.name, model.version, model.path, model.type) == ("tao-facenet", "1", URI, "custom_model")
    assert model.tags == card["tags"]
    assert lines == [f"registered model tao-facenet:1 from {URI}"]
    again = register_from_job(FakeMLClient(azure, "credential"), JOB, version="1", report=lines.append)
    assert again is model and lines[-1] == f"model tao-facenet:1 was already registered from job {JOB}"
    azure.outputs[(CHILD, "model")]["model_card.json"] = json.dumps(dict(card, name=""))
    with pytest.raises(ModelNameError, match="pass --name"):
        register_from_job(FakeMLClient(azure, "credential"), JOB)
    azure.statuses[JOB] = "Running"
    with pytest.raises(ModelJobError, match="only a Completed job"):
        register_from_job(FakeMLClient(azure, "credential"), JOB)


def test_no_workspace_is_a_workspace_error(azure: FakeAzure, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["model", "register", JOB]) == 3
    assert "no Azure ML workspace given" in capsys.readouterr().err and not azure.calls


def test_a_triton_repository_in_the_card_becomes_a_triton_model_asset(azure: FakeAzure, full_card, config,
                                                                       capsys) -> None:
    """tao-aml deploy serves it: type triton_model, the output's triton/ folder, once per step job."""
    finished(azure, full_card)
    assert model_register(config) == 0
    assert azure.calls == [*REGISTRATION_READS, ("models.list", "tao-facenet"),
                           ("models.create_or_update", "tao-facenet", "1"), ("models.list", "tao-facenet-triton"),
                           ("models.create_or_update", "tao-facenet-triton", "1")]
    rest = azure.models[("tao-facenet-triton", "1")]["rest"]["properties"]
    assert rest["modelType"] == "triton_model" and rest["modelUri"] == URI + "triton/"
    assert rest["tags"]["custom_model"] == "tao-facenet:1" and rest["tags"]["triton_model_name"] == "tao-facenet"
    assert PLAN_TAG not in rest["tags"]  # no TensorRT plan in it: any GPU size may serve it
    assert rest["properties"] == {"tao_aml.pipeline_job": JOB, "tao_aml.step_job": CHILD}
    assert "tao-aml deploy --model tao-facenet-triton:1" in capsys.readouterr().out
    azure.calls.clear()
    assert model_register(config) == 0  # again: neither asset is made twice
    assert [c for c in azure.calls if c[0] == "models.create_or_update"] == []


def test_a_model_of_your_own_classes_keeps_its_name_and_its_plans_gpu_family(azure: FakeAzure, tmp_path: Path,
                                                                          config, capsys) -> None:
    """A car/pedestrian DetectNet_v2 model named parking-lot whose plan was built for the A100s that serve it."""
    outputs = detectnet_v2_outputs(tmp_path)
    info = json.loads((outputs["engine"] / "engine.json").read_text())
    info["gpu"] = {"name": "NVIDIA A100 80GB PCIe", "compute_capability": "8.0"}
    (outputs["engine"] / "engine.json").write_text(json.dumps(info))
    assert register_model.main(["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--specs",
                                str(outputs["inference"]), "--model_name", "parking-lot", "--triton_plan", "true",
                                "--serving_gpu", "A100", "--serving_tensorrt", "8.5.3", "--output_dir",
                                str(outputs["out"])]) == 0
    finished(azure, json.loads((outputs["out"] / "model_card.json").read_text()))
    assert model_register(config) == 0
    tags = azure.models[("parking-lot-triton", "1")]["rest"]["properties"]["tags"]
    assert tags["triton_model_name"] == "parking-lot" and tags[PLAN_TAG] == "8.0"
    assert "tao-aml deploy --model parking-lot-triton:1 --endpoint <name>" in capsys.readouterr().out
