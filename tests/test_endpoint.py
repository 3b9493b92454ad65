"""`tao-aml deploy facenet`: a managed online endpoint and a no-code Triton deployment, on the recorded fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.ai.ml.entities import Model

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from tao_aml.cli import main

MODEL = "tao-facenet-triton:1"


@pytest.fixture
def azure(fake_azure: FakeAzure) -> FakeAzure:  # noqa: F811  (the recording fake, under a shorter name)
    for name, kind in (("tao-facenet-triton", "triton_model"), ("tao-facenet", "custom_model")):
        fake_azure.models[(name, "1")] = {"entity": Model(name=name, version="1", type=kind,
                                                          path="azureml://jobs/j/outputs/model/paths/"), "rest": {}}
    return fake_azure


def deploy(config: Path, out: Path, *args: str) -> int:
    return main(["deploy", "facenet", "--endpoint", "tao-faces", "--config", str(config), "--output-dir", str(out),
                 *args])


def test_creates_the_endpoint_then_the_deployment_then_routes_the_traffic(azure: FakeAzure, config, tmp_path,
                                                                        capsys) -> None:
    assert deploy(config, tmp_path, "--model", MODEL) == 0
    assert azure.calls == [
        ("models.get", "tao-facenet-triton", "1"),
        ("online_endpoints.begin_create_or_update", "tao-faces"),
        ("online_deployments.begin_create_or_update", "tao-faces", "tao"),
        ("online_endpoints.get", "tao-faces"),
        ("online_endpoints.begin_create_or_update", "tao-faces"),
    ]
    (_, endpoint), (_, deployment), (_, routed) = azure.online_bodies
    assert endpoint["location"] == "eastus" and endpoint["properties"]["authMode"] == "Key"
    assert endpoint["properties"]["traffic"] == {} and routed["properties"]["traffic"] == {"tao": 100}
    props = deployment["properties"]
    # No-code Triton: the triton_model asset, a current GPU size, no environment or scoring script.
    assert props["model"] == f"azureml:{MODEL}" and props["instanceType"] == "Standard_NC4as_T4_v3"
    assert props["endpointComputeType"] == "Managed" and deployment["sku"]["capacity"] == 1
    assert "environmentId" not in props and "codeConfiguration" not in props
    out = capsys.readouterr().out
    assert "endpoint tao-faces is ready" in out and "tao-aml predict --endpoint tao-faces" in out
    assert "POST https://tao-faces.eastus.inference.ml.azure.com/v2/models/facenet/infer" in out
    # The bodies written for the record are the ones sent, but for the workspace's region.
    written = json.loads((tmp_path / "deploy" / "tao-faces.deployment.json").read_text())
    assert written["properties"] == props and written["location"] == "workspace-location"


def test_dry_run_builds_and_validates_offline(azure: FakeAzure, tmp_path: Path, capsys) -> None:
    assert main(["deploy", "facenet", "--model", MODEL, "--endpoint", "tao-faces", "--dry-run", "--output-dir",
                 str(tmp_path), "--instance-type", "Standard_NC24ads_A100_v4", "--instance-count", "2"]) == 0
    assert azure.clients == [] and azure.calls == []  # no workspace was contacted
    body = json.loads((tmp_path / "deploy" / "tao-faces.deployment.json").read_text())
    assert body["properties"]["instanceType"] == "Standard_NC24ads_A100_v4" and body["sku"]["capacity"] == 2
    assert (tmp_path / "deploy" / "tao-faces.endpoint.json").is_file()
    assert "2 x Standard_NC24ads_A100_v4" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--model", MODEL, "--instance-type", "Standard_NC6s_v3"], "Standard_NC6s_v3 was retired"),
    (["--model", MODEL, "--instance-type", "Standard_D4s_v3"], "a size without an NVIDIA GPU"),
    (["--model", "tao-facenet-triton"], "expected NAME:VERSION"),
    (["--model", MODEL, "--deployment", "blue_1"], "deployment name 'blue_1'"),
])
def test_bad_settings_are_refused_offline(azure: FakeAzure, tmp_path: Path, args, message, capsys) -> None:
    assert main(["deploy", "facenet", "--endpoint", "tao-faces", "--dry-run", "--output-dir", str(tmp_path),
                 *args]) == 2
    assert message in capsys.readouterr().err and azure.calls == []
    assert not (tmp_path / "deploy").exists()


def test_only_a_triton_model_is_deployed(azure: FakeAzure, config, tmp_path: Path, capsys) -> None:
    assert deploy(config, tmp_path, "--model", "tao-facenet:1") == 2
    assert "is a custom_model, not a triton_model" in capsys.readouterr().err
    assert deploy(config, tmp_path, "--model", "tao-facenet-triton:7") == 2
    assert "tao-facenet-triton:7 is not in the workspace" in capsys.readouterr().err
    assert not [c for c in azure.calls if c[0].startswith("online_")]


def test_a_deployment_that_does_not_succeed_is_reported_with_its_logs_command(azure: FakeAzure, config, tmp_path,
                                                                            capsys) -> None:
    azure.deployment_state = "Failed"
    assert deploy(config, tmp_path, "--model", MODEL) == 2
    assert "az ml online-deployment get-logs --endpoint-name tao-faces --name tao" in capsys.readouterr().err
    assert ("online_endpoints.get", "tao-faces") not in azure.calls  # traffic is not routed to it
