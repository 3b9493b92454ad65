"""compute/*.yml load with azure-ai-ml as `az ml compute create -f` loads them; `tao-aml compute create`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.ai.ml import load_compute
from azure.ai.ml.entities import AmlCompute

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from tao_aml.azure.workspace import COMPUTE_FILES
from tao_aml.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("kind", "family"), [("gpu", "Standard_NC"), ("cpu", "Standard_D")])
def test_cluster_definitions_scale_to_zero(kind: str, family: str) -> None:
    compute = load_compute(REPO / COMPUTE_FILES[kind])
    assert isinstance(compute, AmlCompute)
    assert compute.name == f"{kind}-cluster"  # the pipelines' default compute names
    assert compute.size.startswith(family)
    assert compute.min_instances == 0 and compute.max_instances >= 1
    assert compute.idle_time_before_scale_down and compute.tier == "dedicated"
    rest = compute._to_rest_object().as_dict()["properties"]["properties"]
    assert rest["scaleSettings"]["minNodeCount"] == 0


def test_low_priority_is_one_override_away() -> None:
    """The option the YAML's comment documents: `az ml compute create -f ... --set tier=low_priority`."""
    compute = load_compute(REPO / COMPUTE_FILES["gpu"], params_override=[{"tier": "low_priority"}])
    assert compute._to_rest_object().as_dict()["properties"]["properties"]["vmPriority"] == "LowPriority"
    assert "--set tier=low_priority" in (REPO / COMPUTE_FILES["gpu"]).read_text()


def test_pipelines_default_to_these_cluster_names() -> None:
    names = {load_compute(REPO / path).name for path in COMPUTE_FILES.values()}
    for job in REPO.glob("pipelines/*/pipeline.yml"):
        text = job.read_text()
        assert all(f": {name}" in text for name in names), job


def test_compute_create_sends_the_definition(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"subscription_id": "s", "resource_group": "g", "workspace_name": "w"}))
    assert main(["compute", "create", "gpu", "--name", "my-gpu", "--low-priority", "--config", str(config)]) == 0
    [created] = fake_azure.created_computes
    assert (created.name, created.tier, created.min_instances) == ("my-gpu", "low_priority", 0)
    assert "compute my-gpu" in capsys.readouterr().out
