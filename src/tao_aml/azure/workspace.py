"""Which Azure ML workspace (or registry) a command talks to, and the client that talks to it.

A workspace is named, field by field, by the first of: `--subscription/--resource-group/--workspace`,
the file given with `--config` (Studio's "Download config.json"), the environment variables below,
then `config.json` or `.azureml/config.json` in the current folder. Sign-in is DefaultAzureCredential
(`az login`, managed identity, AZURE_CLIENT_ID/... service principal variables).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient, load_compute
from azure.ai.ml.entities import AmlCompute
from azure.ai.ml.exceptions import MlException
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential

ENV_VARS = {
    "subscription_id": "AZUREML_SUBSCRIPTION_ID",
    "resource_group": "AZUREML_RESOURCE_GROUP",
    "workspace_name": "AZUREML_WORKSPACE_NAME",
}
FLAGS = {"subscription_id": "--subscription", "resource_group": "--resource-group", "workspace_name": "--workspace"}
CONFIG_FILES = ("config.json", ".azureml/config.json")
COMPUTE_FILES = {"gpu": "compute/gpu-cluster.yml", "cpu": "compute/cpu-cluster.yml"}


class WorkspaceError(RuntimeError):
    """The workspace, registry, sign-in or a compute target is missing or unreachable."""


@dataclass(frozen=True)
class Target:
    """A workspace (subscription, group, name) or a registry (registry_name only)."""

    subscription_id: str = ""
    resource_group: str = ""
    workspace_name: str = ""
    registry_name: str = ""

    def __str__(self) -> str:
        if self.registry_name:
            return f"registry {self.registry_name}"
        return f"workspace {self.workspace_name} (resource group {self.resource_group})"


def read_config(path: Path) -> dict[str, str]:
    """The three workspace fields of a Studio config.json."""
    if not path.is_file():
        raise WorkspaceError(f"{path}: no such file (Studio: workspace menu > Download config.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WorkspaceError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{path}: expected a JSON object")
    return {key: str(data[key]) for key in ENV_VARS if data.get(key)}


def resolve_target(
    config: str | None = None,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    workspace_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """The workspace the user named; every missing field is reported with the ways to give it."""
    env = os.environ if environ is None else environ
    flags = {"subscription_id": subscription_id, "resource_group": resource_group, "workspace_name": workspace_name}
    from_file = read_config(Path(config)) if config else {}
    found_in_cwd = next((p for p in (Path(cwd or ".") / name for name in CONFIG_FILES) if p.is_file()), None)
    from_cwd = read_config(found_in_cwd) if found_in_cwd and not config else {}
    values = {
        key: flags[key] or from_file.get(key) or env.get(ENV_VARS[key], "") or from_cwd.get(key, "")
        for key in ENV_VARS
    }
    missing = [key for key, value in values.items() if not value]
    if missing:
        # A partial --config names what it lacks: pointing at --config again would send the user in a circle.
        first = (f"{config} has no {', '.join(missing)} (Studio's config.json holds {', '.join(ENV_VARS)}): download "
                 "it again (Studio: workspace menu > Download config.json)" if config else
                 f"no Azure ML workspace given (missing {', '.join(missing)}): pass --config config.json "
                 "(Studio: workspace menu > Download config.json)")
        raise WorkspaceError(f"{first}, or {' '.join(FLAGS[key] for key in missing)}, "
                             f"or set {', '.join(ENV_VARS[key] for key in missing)}")
    return Target(**values)


@contextmanager
def azure_errors(target: Target) -> Iterator[None]:
    """Sign-in and service errors as one clear WorkspaceError (first line only: no tokens, no dumps)."""
    try:
        yield
    except ClientAuthenticationError as err:
        raise WorkspaceError(
            f"could not sign in to Azure for {target}: run `az login` (or set a service principal's "
            f"AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET); {first_line(err)}"
        ) from err
    except (HttpResponseError, MlException) as err:
        raise WorkspaceError(f"{target}: Azure ML answered: {first_line(err)}") from err


def first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def connect(target: Target) -> MLClient:
    """An MLClient for the target; a workspace is checked to exist, so later errors are about assets."""
    with azure_errors(target):
        credential = DefaultAzureCredential()
        if target.registry_name:
            # The registry client looks the registry up when it is built.
            return MLClient(credential, registry_name=target.registry_name)
        client = MLClient(
            credential,
            subscription_id=target.subscription_id,
            resource_group_name=target.resource_group,
            workspace_name=target.workspace_name,
        )
        try:
            client.workspaces.get(target.workspace_name)
        except ResourceNotFoundError as err:
            raise WorkspaceError(
                f"workspace {target.workspace_name!r} not found in resource group {target.resource_group!r} "
                f"of subscription {target.subscription_id}"
            ) from err
    return client


def asset_exists(operations: Any, name: str, version: str) -> bool:
    """Whether `operations` (client.data, client.models, ...) holds the asset name:version."""
    try:
        operations.get(name=name, version=version)
    except ResourceNotFoundError:
        return False
    return True


def missing_computes(client: MLClient, names: list[str], kind_of: Callable[[str], str]) -> list[str]:
    """One message per compute target that does not exist, saying how to create it."""
    messages = []
    for name in names:
        try:
            client.compute.get(name)
        except ResourceNotFoundError:
            spec = COMPUTE_FILES.get(kind_of(name), COMPUTE_FILES["cpu"])
            messages.append(
                f"compute {name!r} does not exist in the workspace: create it with "
                f"`az ml compute create -f {spec} --name {name}` (or `tao-aml compute create "
                f"{kind_of(name)} --name {name}`), or pass an existing cluster's name"
            )
    return messages


def compute_definition(root: Path, kind: str, name: str | None = None, low_priority: bool = False) -> AmlCompute:
    """compute/<kind>-cluster.yml as azure-ai-ml loads it for `az ml compute create -f`."""
    overrides: list[dict[str, str]] = [{"name": name}] if name else []
    if low_priority:
        overrides.append({"tier": "low_priority"})
    return load_compute(root / COMPUTE_FILES[kind], params_override=overrides)
