"""Stand-in for Azure ML: an MLClient whose operations record what would be sent and answer like the service.

Only the client is replaced: jobs, components, environments, data, models, computes, online endpoints and
deployments are the real azure-ai-ml entities, and a created job is serialized with `_to_rest_object()`
exactly as the SDK would send it (online endpoints and deployments with the workspace's location).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.ai.ml.entities import EndpointAuthKeys, Model
from azure.ai.ml.exceptions import JobException, ValidationException
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
    statuses: dict[str, str] = field(default_factory=dict)  # job name -> status (default: final_status)
    outputs: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (job, output) -> {file: text}
    models: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (name, version) -> entity, rest
    shared: dict[tuple[str, str, str], tuple[str, str]] = field(default_factory=dict)  # (registry, name, version)
    calls: list[tuple[str, ...]] = field(default_factory=list)  # job, model and endpoint calls, in order
    location: str = "eastus"  # the workspace's region, which the SDK puts into online endpoint bodies
    endpoints: dict[str, Any] = field(default_factory=dict)  # name -> the endpoint entity as last sent
    deployments: dict[tuple[str, str], Any] = field(default_factory=dict)  # (endpoint, name) -> entity
    online_bodies: list[tuple[str, dict]] = field(default_factory=list)  # (operation, REST body) in call order
    scoring_base: str = "https://{name}.eastus.inference.ml.azure.com"  # what an endpoint's scoring URI starts with
    endpoint_keys: dict[str, str] = field(default_factory=dict)  # name -> primary key
    deployment_state: str = "Succeeded"  # how a deployment's provisioning ends

    def check_sign_in(self) -> None:
        if not self.signed_in:
            raise ClientAuthenticationError("DefaultAzureCredential failed to retrieve a token")

    def pipeline_job(self, name: str, steps: dict[str, str], status: str = "Completed") -> None:
        """A pipeline job that lists its steps (path `main.register_model` -> child job name) as the service does."""
        self.statuses[name] = status
        for path, child in steps.items():
            *pipelines, node = path.split(".")
            parent = name
            for depth, inner_node in enumerate(pipelines):
                inner = "_".join([name, *pipelines[: depth + 1]])
                listed = self.children.setdefault(parent, [])
                if inner not in {job.name for job in listed}:
                    listed.append(SimpleNamespace(name=inner, display_name=inner_node, type="pipeline"))
                parent = inner
            self.children.setdefault(parent, []).append(SimpleNamespace(name=child, display_name=node, type="command"))
            self.statuses.setdefault(child, status)


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
        self.azure.calls.append(("jobs.get", name))
        return SimpleNamespace(name=name, status=self.azure.statuses.get(name, self.azure.final_status))

    def list(self, parent_job_name: str | None = None) -> list[Any]:
        self.azure.calls.append(("jobs.list", parent_job_name or ""))
        return list(self.azure.children.get(parent_job_name or "", []))

    def download(
        self, name: str, *, download_path: str | Path = ".", output_name: str | None = None, all: bool = False
    ) -> None:
        """As azure-ai-ml 1.35 lays it out: output X of job J goes to <download_path>/named-outputs/X/."""
        self.azure.calls.append(("jobs.download", name, output_name or ""))
        status = self.azure.statuses.get(name, self.azure.final_status)
        if status not in ("Completed", "Failed", "Canceled", "NotResponding", "Paused"):
            raise JobException(f"This job is in state {status}. Download is allowed only in terminal states", "state")
        files = self.azure.outputs.get((name, output_name or ""))
        if files is None:
            return  # the SDK only logs (debug) an output it cannot find, and downloads nothing
        for relative, text in files.items():
            target = Path(download_path, "named-outputs", output_name or "", relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)


class ModelOperations:
    """Workspace model versions, and what was shared to registries."""

    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def create_or_update(self, model: Model) -> Model:
        rest = model._to_rest_object().as_dict()  # what the SDK would send; raises if it cannot
        versions = [int(v) for n, v in self.azure.models if n == model.name and v.isdigit()]
        version = model.version or str(max(versions, default=0) + 1)  # the container's nextVersion
        self.azure.calls.append(("models.create_or_update", str(model.name), version))
        if (model.name, version) in self.azure.models:
            raise HttpResponseError(f"model {model.name}:{version} already exists with another path")
        model.version = version
        self.azure.models[(str(model.name), version)] = {"entity": model, "rest": rest}
        return model

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        self.azure.calls.append(("models.get", name, version or ""))
        found = self.azure.models.get((name, version or ""))
        if found is None:
            raise ResourceNotFoundError(f"model {name}:{version} not found")
        return found["entity"]

    def list(self, name: str | None = None, stage: str | None = None, **kwargs: Any) -> list[Model]:
        self.azure.calls.append(("models.list", name or ""))
        versions = [found["entity"] for (n, _), found in self.azure.models.items() if n == name]
        if not versions:
            raise ResourceNotFoundError(f"model container {name} not found")  # answered for a name never registered
        return versions

    def share(
        self, name: str, version: str, *, share_with_name: str, share_with_version: str, registry_name: str
    ) -> Model:
        self.azure.calls.append(("models.share", name, version, registry_name, share_with_name, share_with_version))
        source = self.azure.models[(name, version)]["entity"]  # the SDK addresses it by its workspace asset id
        key = (registry_name, share_with_name, share_with_version)
        if key in self.azure.shared:  # azure-ai-ml's own check before it copies
            raise ValidationException("A model with this name and version already exists in registry", "exists")
        self.azure.shared[key] = (name, version)
        return Model(name=share_with_name, version=share_with_version, type=source.type, tags=source.tags)


class _Done:
    """An LROPoller that has finished: result() gives what the service answered."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class OnlineEndpointOperations:
    """Managed online endpoints: the REST body of each create/update (`_to_rest_online_endpoint`), then the entity."""

    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def begin_create_or_update(self, endpoint: Any) -> _Done:
        body = endpoint._to_rest_online_endpoint(self.azure.location).as_dict()  # what the SDK sends
        self.azure.calls.append(("online_endpoints.begin_create_or_update", endpoint.name))
        self.azure.online_bodies.append(("online_endpoints.begin_create_or_update", body))
        # Read-only properties on the entity; the SDK's _from_rest_object fills them from the service's answer.
        endpoint._scoring_uri = self.azure.scoring_base.format(name=endpoint.name) + "/"
        endpoint._provisioning_state = "Succeeded"
        self.azure.endpoints[endpoint.name] = endpoint
        self.azure.endpoint_keys.setdefault(endpoint.name, f"key-of-{endpoint.name}")
        return _Done(endpoint)

    def get(self, name: str) -> Any:
        self.azure.calls.append(("online_endpoints.get", name))
        if name not in self.azure.endpoints:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return self.azure.endpoints[name]

    def get_keys(self, name: str) -> Any:
        self.azure.calls.append(("online_endpoints.get_keys", name))
        if name not in self.azure.endpoints:
            raise ResourceNotFoundError(f"endpoint {name} not found")
        return EndpointAuthKeys(primary_key=self.azure.endpoint_keys[name], secondary_key="secondary")


class OnlineDeploymentOperations:
    def __init__(self, azure: FakeAzure) -> None:
        self.azure = azure

    def begin_create_or_update(self, deployment: Any) -> _Done:
        if deployment.endpoint_name not in self.azure.endpoints:
            raise ResourceNotFoundError(f"endpoint {deployment.endpoint_name} not found")
        body = deployment._to_rest_object(self.azure.location).as_dict()
        self.azure.calls.append(("online_deployments.begin_create_or_update", deployment.endpoint_name,
                                 deployment.name))
        self.azure.online_bodies.append(("online_deployments.begin_create_or_update", body))
        deployment._provisioning_state = self.azure.deployment_state
        self.azure.deployments[(deployment.endpoint_name, deployment.name)] = deployment
        return _Done(deployment)


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
        self.models = ModelOperations(azure)
        self.online_endpoints = OnlineEndpointOperations(azure)
        self.online_deployments = OnlineDeploymentOperations(azure)


@pytest.fixture
def fake_azure(monkeypatch: pytest.MonkeyPatch) -> FakeAzure:
    """Patch the workspace module's MLClient and credential; no Azure call can escape."""
    azure = FakeAzure()
    monkeypatch.setattr("tao_aml.azure.workspace.MLClient",
                        lambda credential, **kw: FakeMLClient(azure, credential, **kw))
    monkeypatch.setattr("tao_aml.azure.workspace.DefaultAzureCredential", lambda: "credential")
    for name in ("AZUREML_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE_NAME"):
        monkeypatch.delenv(name, raising=False)
    return azure


# The workspace config.json that Studio lets users download, as the submitter tests use it.
WORKSPACE = {"subscription_id": "0000-sub", "resource_group": "rg-tao", "workspace_name": "ws-tao"}


def submit(repo: Path, out: Path, *args: str) -> int:
    """`tao-aml submit ...` against a repository copy, writing the resolved job under `out`."""
    return main(["submit", *args, "--root", str(repo), "--output-dir", str(out)])
