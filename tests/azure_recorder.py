"""Stand-in for Azure ML: an MLClient whose operations record what would be sent and answer like the service.

Only the client is replaced: jobs, components, environments, data and computes are the real azure-ai-ml
entities, and a created job is serialized with `_to_rest_object()` exactly as the SDK would send it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from tao_aml.cli import main


@dataclass
class FakeAzure:
    """What the fake service holds, and every call made to it."""

    computes: set[str] = field(default_factory=lambda: {"gpu-cluster", "cpu-cluster"})
    workspace_exists: bool = True
    signed_in: bool = True
    final_status: str = "Completed"
    interrupt_stream: bool = False
    job_refusal: str | None = None  # the service's answer to a job it refuses
    assets: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (ops, name, version) -> tags
    clients: list[dict[str, Any]] = field(default_factory=list)  # MLClient constructor arguments
    compute_gets: list[str] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)  # job, experiment_name, rest
    streamed: list[str] = field(default_factory=list)
    published: list[tuple[str, Any]] = field(default_factory=list)  # (ops, entity) in call order
    created_computes: list[Any] = field(default_factory=list)
    children: dict[str, list[Any]] = field(default_factory=dict)  # job -> child jobs (name, display_name, type)

    def check_sign_in(self) -> None:
        if not self.signed_in:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")


class ComputeOperations:
    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def get(self, name: str) -> Any:
        self.azure.compute_gets.append(name)
        if name not in self.azure.computes:
            raise ResourceNotFoundError(f"Compute {name} not found")
        return SimpleNamespace(name=name)

    def begin_create_or_update(self, compute: Any) -> Any:
        compute._to_rest_object()  # what `az ml compute create` would send
        self.azure.created_computes.append(compute)
        return SimpleNamespace(result=lambda: compute)


class JobOperations:
    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def create_or_update(self, job: Any, experiment_name: str | None = None) -> Any:
        if self.azure.job_refusal:
            raise HttpResponseError(self.azure.job_refusal)
        self.azure.jobs.append({"job": job, "experiment_name": experiment_name, "rest": job._to_rest_object()})
        name = f"tao_job_{len(self.azure.jobs)}"
        return SimpleNamespace(
            name=name, experiment_name=experiment_name, status="NotStarted",
            studio_url=f"https://ml.azure.com/runs/{name}?wsid=/subscriptions/sub/workspaces/ws",
        )

    def stream(self, name: str) -> None:
        self.azure.streamed.append(name)
        if self.azure.interrupt_stream:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as err:  # as azure-ai-ml wraps Ctrl-C
                raise JobException("The output streaming for the run interrupted.", "interrupted") from err
        if self.azure.final_status == "Failed":
            raise JobException("Exception : \n {}", "Exception raised on failed job.")

    def get(self, name: str) -> Any:
        return SimpleNamespace(name=name, status=self.azure.final_status)

    def list(self, parent_job_name: str | None = None) -> list[Any]:
        return list(self.azure.children.get(parent_job_name or "", []))


class AssetOperations:
    def __init__(self, azure: FakeAzure, kind: str) -> None:
        self.azure, self.kind = azure, kind

    def get(self, name: str, version: str) -> Any:
        tags = self.azure.assets.get((self.kind, name, version))
        if tags is None:
            raise ResourceNotFoundError(f"{self.kind} {name}:{version} not found")
        return SimpleNamespace(name=name, version=version, tags=tags)

    def create_or_update(self, entity: Any) -> Any:
        entity._to_rest_object()  # raises if the SDK could not send it
        self.azure.published.append((self.kind, entity))
        self.azure.assets[(self.kind, entity.name, entity.version)] = dict(entity.tags)
        return entity


class WorkspaceOperations:
    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def get(self, name: str) -> Any:
        self.azure.check_sign_in()
        if not self.azure.workspace_exists:
            raise ResourceNotFoundError(f"Workspace {name} not found")
        return SimpleNamespace(name=name)


class FakeMLClient:
    def __init__(self, azure: FakeAzure, credential: Any, **kwargs: Any) -> None:
        assert credential == "credential", "MLClient must be given DefaultAzureCredential()"
        azure.clients.append(kwargs)
        if kwargs.get("registry_name"):
            azure.check_sign_in()  # the real registry client looks the registry up on construction
        self.compute = ComputeOperations(azure)
        self.jobs = JobOperations(azure)
        self.workspaces = WorkspaceOperations(azure)
        self.environments = AssetOperations(azure, "environments")
        self.components = AssetOperations(azure, "components")
        self.data = AssetOperations(azure, "data")


@pytest.fixture
def fake_azure(monkeypatch: pytest.MonkeyPatch) -> FakeAzure:
    """Patch the workspace module's MLClient and credential; no Azure call can escape."""
    azure = FakeAzure()
    monkeypatch.setattr("tao_aml.workspace.MLClient", lambda credential, **kw: FakeMLClient(azure, credential, **kw))
    monkeypatch.setattr("tao_aml.workspace.DefaultAzureCredential", lambda: "credential")
    for name in ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    return azure


# The workspace config.json that Studio lets users download, as the submitter tests use it.
WORKSPACE = {"subscription_id": "0000-sub", "resource_group": "rg-tao", "workspace_name": "ws-tao"}


def submit(repo: Path, out: Path, *args: str) -> int:
    """`tao-aml submit ...` against a repository copy, writing the resolved job under `out`."""
    return main(["submit", *args, "--root", str(repo), "--output-dir", str(out)])
