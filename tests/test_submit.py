"""`tao-aml submit`: offline dry run, then submission to a recording MLClient, and every early refusal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from doc_commands import shown_commands
from tao_aml.azure.submit import build_job, sent_computes
from tao_aml.azure.workspace import WorkspaceError, resolve_target
from tao_aml.cli import main

REPO = Path(__file__).resolve().parents[1]
PIPELINES = sorted(p.parent.name for p in (REPO / "pipelines").glob("*/pipeline.yml"))



@pytest.mark.parametrize("name", PIPELINES)
def test_dry_run_is_offline_and_writes_job_and_graph(
    name: str, repo_copy: Path, tmp_path: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert submit(repo_copy, tmp_path / "build", name, "--dry-run", "--gpu-compute", "my-gpu") == 0
    out = capsys.readouterr().out
    assert "validated offline" in out and "on my-gpu" in out
    assert (tmp_path / "build" / name / f"{name}.pipeline.yml").is_file()
    assert "```mermaid" in (tmp_path / "build" / name / f"{name}.graph.md").read_text()
    assert fake_azure.clients == [], "a dry run must not build an MLClient"


def test_submit_sends_the_job_with_computes_inputs_and_spec_fields(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    fake_azure.computes = {"my-gpu", "cpu-cluster"}
    code = submit(
        repo_copy, tmp_path / "build", "facenet", "--config", str(config), "--gpu-compute", "my-gpu",
        "--experiment", "smoke", "--set", "train_epochs=3", "--set", "train.training_config.batch_size_per_gpu=8",
    )
    assert code == 0, capsys.readouterr().err
    assert fake_azure.clients == [
        {"subscription_id": "0000-sub", "resource_group_name": "rg-tao", "workspace_name": "ws-tao"}
    ]
    assert sorted(set(fake_azure.compute_gets)) == ["cpu-cluster", "my-gpu"]
    [sent] = fake_azure.jobs
    assert sent["experiment_name"] == "smoke"
    main_inputs = sent["rest"].properties.jobs["main"]["inputs"]
    assert main_inputs["train_epochs"]["value"] == "3"
    assert main_inputs["train_overrides"]["value"] == "training_config.batch_size_per_gpu=8"
    computes = sent_computes(sent["job"])
    assert computes["main.train"] == computes["main.prune"] == computes["main.engine"] == "my-gpu"
    assert computes["main.download_wider"] == computes["main.tfrecords_train"] == "cpu-cluster"
    out = capsys.readouterr().out
    assert "submitted tao_job_1" in out and "Studio: https://ml.azure.com/runs/tao_job_1" in out


@pytest.mark.parametrize("name", PIPELINES)
def test_every_pipeline_submits_with_its_defaults(
    name: str, repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure  # noqa: F811
) -> None:
    assert submit(repo_copy, tmp_path / "build", name, "--config", str(config)) == 0
    [sent] = fake_azure.jobs
    assert set(sent_computes(sent["job"]).values()) == {"gpu-cluster", "cpu-cluster"}


def test_cpu_compute_also_replaces_the_default_compute(repo_copy: Path) -> None:
    built = build_job("facenet", ["cpu_compute=my-cpu"], root=repo_copy)
    assert built.job.settings.default_compute == "my-cpu"
    assert "cpu-cluster" not in set(sent_computes(built.job).values())


def test_missing_compute_is_named_with_how_to_create_it(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    fake_azure.computes = {"cpu-cluster"}
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config)) == 3
    err = capsys.readouterr().err
    assert "compute 'gpu-cluster' does not exist" in err
    assert "az ml compute create -f compute/gpu-cluster.yml --name gpu-cluster" in err
    assert "cpu-cluster'" not in err
    assert fake_azure.jobs == []


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("train_epocs=3", "no pipeline input 'train_epocs'"),
        ("train_epochs=1.5", "1.5 is not an integer"),
        ("engine_precision=int4", "'int4' is not one of fp32, fp16, int8"),
        ("train.training_config.batch_size_per_gpu=eight", "batch_size_per_gpu"),
        ("download_wider.x=1", "step 'download_wider' takes no spec overrides"),
    ],
)
def test_bad_settings_exit_2_before_azure(
    setting: str, message: str, repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config), "--set", setting) == 2
    assert message in capsys.readouterr().err
    assert fake_azure.clients == []


def test_unknown_pipeline_lists_the_known_ones(repo_copy: Path, tmp_path: Path, capsys) -> None:
    assert submit(repo_copy, tmp_path / "b", "facenets", "--dry-run") == 2
    assert "no pipeline 'facenets'; known pipelines: " in capsys.readouterr().err


def test_missing_config_file(repo_copy: Path, tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(tmp_path / "nope.json")) == 3
    assert "nope.json: no such file (Studio: workspace menu > Download config.json)" in capsys.readouterr().err


def test_no_workspace_at_all_says_the_three_ways(
    repo_copy: Path, tmp_path: Path, fake_azure: FakeAzure, capsys, monkeypatch  # noqa: F811
) -> None:
    monkeypatch.chdir(tmp_path)
    assert submit(repo_copy, tmp_path / "b", "facenet") == 3
    err = capsys.readouterr().err
    assert "--config config.json" in err and "--subscription --resource-group --workspace" in err
    assert "AZUREML_SUBSCRIPTION_ID, AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE_NAME" in err
    assert fake_azure.clients == []


def test_sign_in_failure_and_missing_workspace_exit_3(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    fake_azure.signed_in = False
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config)) == 3
    assert "could not sign in to Azure" in capsys.readouterr().err
    fake_azure.signed_in, fake_azure.workspace_exists = True, False
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config)) == 3
    assert "workspace 'ws-tao' not found in resource group 'rg-tao'" in capsys.readouterr().err
    assert fake_azure.jobs == []


def test_service_refusal_exits_3_with_its_first_line(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    fake_azure.job_refusal = "(UserError) Quota exceeded for Standard NCADSA100v4 Family\nTrace: details"
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config)) == 3
    err = capsys.readouterr().err
    assert "Azure ML answered: (UserError) Quota exceeded" in err and "Trace" not in err


@pytest.mark.parametrize(("status", "code"), [("Completed", 0), ("Failed", 1), ("Canceled", 1)])
def test_stream_exit_code_follows_the_job(
    status: str, code: int, repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    fake_azure.final_status = status
    args = ("--config", str(config), "--stream", "--no-register-model")
    assert submit(repo_copy, tmp_path / "b", "facenet", *args) == code
    assert fake_azure.streamed == ["tao_job_1"]
    assert f"finished: {status}" in capsys.readouterr().out
    assert fake_azure.models == {}


def test_stream_registers_the_model_when_the_job_completes(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    card = {"name": "tao-facenet", "family": "detectnet_v2", "tags": {"accuracy": "84.2", "family": "detectnet_v2"}}
    fake_azure.pipeline_job("tao_job_1", {"main.register_model": "tao_job_1_register_model"})
    fake_azure.outputs[("tao_job_1_register_model", "model")] = {"model_card.json": json.dumps(card)}
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config), "--stream") == 0, \
        capsys.readouterr().err
    [(name, version)] = fake_azure.models
    model = fake_azure.models[(name, version)]["entity"]
    assert (name, model.path) == ("tao-facenet", "azureml://jobs/tao_job_1_register_model/outputs/model/paths/")
    assert model.tags["accuracy"] == "84.2"
    assert f"model tao-facenet:{version} registered from job tao_job_1" in capsys.readouterr().out


def test_stream_says_how_to_retry_a_failed_registration(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config), "--stream") == 3
    err = capsys.readouterr().err
    assert "the job completed but its model was not registered" in err
    assert "retry with `tao-aml model register tao_job_1`" in err


def test_ctrl_c_while_streaming_leaves_the_job_running(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    fake_azure.interrupt_stream = True
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config), "--stream") == 130
    assert "the job keeps running: https://ml.azure.com/runs/tao_job_1" in capsys.readouterr().err


def test_workspace_fields_come_from_flags_then_config_then_environment(tmp_path: Path, config: Path) -> None:
    env = {"AZUREML_SUBSCRIPTION_ID": "env-sub", "AZUREML_RESOURCE_GROUP": "env-rg", "AZUREML_WORKSPACE_NAME": "env-ws"}
    assert resolve_target(environ=env, cwd=tmp_path / "empty").workspace_name == "env-ws"
    target = resolve_target(str(config), workspace_name="flag-ws", environ=env)
    assert (target.subscription_id, target.resource_group, target.workspace_name) == ("0000-sub", "rg-tao", "flag-ws")
    # Studio's config.json in the current folder is the last resort.
    assert resolve_target(environ={}, cwd=tmp_path).workspace_name == "ws-tao"
    assert resolve_target(environ=env, cwd=tmp_path).workspace_name == "env-ws"


def test_config_without_a_workspace_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"subscription_id": "s", "resource_group": "g"}))
    with pytest.raises(WorkspaceError, match="partial.json has no workspace_name.*--workspace.*AZUREML_WORKSPACE_NAME"):
        resolve_target(str(path), environ={}, cwd=tmp_path / "empty")


def test_scripts_submit_is_the_same_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "submit.py"), "facenet", "--dry-run", "--set", "train_epochs=2",
         "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "validated offline" in result.stdout
    assert "train_epochs: 2" in (tmp_path / "facenet" / "facenet.pipeline.yml").read_text()
    bad = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "submit.py"), "facenet", "--dry-run", "--set", "train_epochs=x"],
        capture_output=True, text=True, timeout=300,
    )
    assert bad.returncode == 2 and "'x' is not an integer" in bad.stderr


def readme_submit_commands() -> list[list[str]]:
    """`tao-aml submit ...` and `python scripts/submit.py ...` lines of README.md and docs/, as argument lists."""
    commands = []
    for tokens in (shown.tokens for shown in shown_commands()):
        if tokens and tokens[0].endswith("tao-aml") and tokens[1:2] == ["submit"]:
            commands.append(tokens[2:])
        elif tokens[:2] == ["python", "scripts/submit.py"] and "..." not in tokens:
            commands.append(tokens[2:])
    return commands


@pytest.mark.parametrize("args", readme_submit_commands(), ids=" ".join)
def test_readme_submit_commands(
    args: list[str], tmp_path: Path, config: Path, fake_azure: FakeAzure, monkeypatch, capsys  # noqa: F811
) -> None:
    """Each documented command runs as shown, from a folder holding Studio's config.json."""
    monkeypatch.chdir(tmp_path)
    if "--resume-from" in args:  # the earlier job whose train and retrain wrote checkpoints
        earlier = args[args.index("--resume-from") + 1]
        fake_azure.pipeline_job(earlier, {"main.train": f"{earlier}_train", "main.retrain": f"{earlier}_retrain"})
    if "--stream" in args:  # the completed job's model is registered: the service lists its steps and card
        fake_azure.pipeline_job("tao_job_1", {"main.register_model": "tao_job_1_register_model"})
        card = {"name": f"tao-{args[0]}", "tags": {"family": args[0]}}
        fake_azure.outputs[("tao_job_1_register_model", "model")] = {"model_card.json": json.dumps(card)}
    assert main(["submit", *args]) == 0, capsys.readouterr().err
    assert len(fake_azure.jobs) == (0 if "--dry-run" in args else 1)


def test_readme_documents_the_submitter() -> None:
    assert readme_submit_commands(), "README.md and docs/ must show `tao-aml submit`"
