"""`tao-aml deploy`: a managed online endpoint and a no-code Triton deployment, on the recorded fake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.ai.ml.entities import Model

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from tao_aml.azure.model_asset import PLAN_TAG
from tao_aml.cli import main

MODEL = "parking-lot-triton:1"


@pytest.fixture
def azure(fake_azure: FakeAzure) -> FakeAzure:  # noqa: F811  (the recording fake, under a shorter name)
    """A DetectNet_v2 model of your own classes, registered as tao-aml model register does (azure/model_asset.py)."""
    for name, kind, tags in (("parking-lot-triton", "triton_model", {"triton_model_name": "parking-lot"}),
                             ("parking-lot", "custom_model", {}),
                             ("parking-lot-trt-triton", "triton_model",
                              {"triton_model_name": "parking-lot", PLAN_TAG: "8.0"})):
        fake_azure.models[(name, "1")] = {"entity": Model(name=name, version="1", type=kind, tags=tags,
                                                          path="azureml://jobs/j/outputs/model/paths/"), "rest": {}}
    return fake_azure


def deploy(config: Path, out: Path, *args: str) -> int:
    return main(["deploy", "--endpoint", "tao-cars", "--config", str(config), "--output-dir", str(out), *args])


def test_creates_the_endpoint_then_the_deployment_then_routes_the_traffic(azure: FakeAzure, config, tmp_path,
                                                                        capsys) -> None:
    assert deploy(config, tmp_path, "--model", MODEL) == 0
    assert azure.calls == [
        ("models.get", "parking-lot-triton", "1"),
        ("online_endpoints.begin_create_or_update", "tao-cars"),
        ("online_deployments.begin_create_or_update", "tao-cars", "tao"),
        ("online_endpoints.get", "tao-cars"),
        ("online_endpoints.begin_create_or_update", "tao-cars"),
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
    assert "endpoint tao-cars is ready" in out and "tao-aml predict --endpoint tao-cars" in out
    # The Triton model inside the asset is named after the model (model_card.json's triton.model).
    assert "POST https://tao-cars.eastus.inference.ml.azure.com/v2/models/parking-lot/infer" in out
    assert endpoint["properties"]["description"] == "NVIDIA TAO model parking-lot-triton served by Triton; made by " \
        "tao-aml deploy"
    # The bodies written for the record are the ones sent, but for the workspace's region.
    written = json.loads((tmp_path / "deploy" / "tao-cars.deployment.json").read_text())
    assert written["properties"] == props and written["location"] == "workspace-location"


def test_dry_run_builds_and_validates_offline(azure: FakeAzure, tmp_path: Path, capsys) -> None:
    assert main(["deploy", "--model", MODEL, "--endpoint", "tao-cars", "--dry-run", "--output-dir",
                 str(tmp_path), "--instance-type", "Standard_NC24ads_A100_v4", "--instance-count", "2"]) == 0
    assert azure.clients == [] and azure.calls == []  # no workspace was contacted
    body = json.loads((tmp_path / "deploy" / "tao-cars.deployment.json").read_text())
    assert body["properties"]["instanceType"] == "Standard_NC24ads_A100_v4" and body["sku"]["capacity"] == 2
    assert (tmp_path / "deploy" / "tao-cars.endpoint.json").is_file()
    assert "2 x Standard_NC24ads_A100_v4" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--model", MODEL, "--instance-type", "Standard_NC6s_v3"], "Standard_NC6s_v3 was retired"),
    (["--model", MODEL, "--instance-type", "Standard_D4s_v3"], "a size without an NVIDIA GPU"),
    (["--model", "parking-lot-triton"], "expected NAME:VERSION"),
    (["--model", MODEL, "--deployment", "blue_1"], "deployment name 'blue_1'"),
])
def test_bad_settings_are_refused_offline(azure: FakeAzure, tmp_path: Path, args, message, capsys) -> None:
    assert main(["deploy", "--endpoint", "tao-cars", "--dry-run", "--output-dir", str(tmp_path),
                 *args]) == 2
    assert message in capsys.readouterr().err and azure.calls == []
    assert not (tmp_path / "deploy").exists()


def test_only_a_triton_model_is_deployed(azure: FakeAzure, config, tmp_path: Path, capsys) -> None:
    assert deploy(config, tmp_path, "--model", "parking-lot:1") == 2
    assert "is a custom_model, not a triton_model" in capsys.readouterr().err
    assert deploy(config, tmp_path, "--model", "parking-lot-triton:7") == 2
    assert "parking-lot-triton:7 is not in the workspace" in capsys.readouterr().err
    assert not [c for c in azure.calls if c[0].startswith("online_")]


def test_a_deployment_that_does_not_succeed_is_reported_with_its_logs_command(azure: FakeAzure, config, tmp_path,
                                                                            capsys) -> None:
    azure.deployment_state = "Failed"
    assert deploy(config, tmp_path, "--model", MODEL) == 2
    assert "az ml online-deployment get-logs --endpoint-name tao-cars --name tao" in capsys.readouterr().err
    assert ("online_endpoints.get", "tao-cars") not in azure.calls  # traffic is not routed to it


def test_a_plan_is_served_only_on_the_gpu_family_it_was_built_for(azure: FakeAzure, config, tmp_path: Path,
                                                                 capsys) -> None:
    """A Triton repository with a plan built on an A100 (compute capability 8.0): not on the default T4."""
    assert deploy(config, tmp_path, "--model", "parking-lot-trt-triton:1") == 2
    assert "holds a TensorRT plan for GPUs of compute capability 8.0; Standard_NC4as_T4_v3's GPU is 7.5" in \
        capsys.readouterr().err
    assert not [c for c in azure.calls if c[0].startswith("online_")]
    assert deploy(config, tmp_path, "--model", "parking-lot-trt-triton:1", "--instance-type",
                  "Standard_NC24ads_A100_v4") == 0
