"""A managed online endpoint serving a DetectNet_v2 model's Triton repository (no-code Triton deployment).

`tao-aml model register` registers the model asset's triton/ folder as a `triton_model` asset
(<name>-triton); a managed online deployment of a `triton_model` needs no environment or scoring script:
Azure ML runs Triton on it (Microsoft: "Deploy models with Triton to online endpoints", no-code
deployment). This module builds the endpoint (key auth) and the deployment, sends them with
`ml_client.online_endpoints.begin_create_or_update` and `ml_client.online_deployments.begin_create_or_update`,
waits for both, then routes all traffic to the deployment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from azure.ai.ml import MLClient
from azure.ai.ml.entities import ManagedOnlineDeployment, ManagedOnlineEndpoint
from azure.core.exceptions import ResourceNotFoundError

from tao_aml.azure import vm_sizes
from tao_aml.azure.model_asset import PLAN_TAG, TRITON_SUFFIX
from tao_aml.simulate import simulated_problem
from tao_aml.steps.asset.deploy_bundle import COMPUTE_CAPABILITY

DEFAULT_INSTANCE_TYPE = "Standard_NC4as_T4_v3"  # 1 x T4 16 GB, a current managed online endpoint GPU size
DEFAULT_DEPLOYMENT = "tao"
# Endpoint names: 3-32 characters, a letter first, then letters, digits and '-' (Azure ML's rule).
ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")
MODEL_REF = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,254}):([A-Za-z0-9._-]+)$")
# Shown by --dry-run in place of the workspace's region (the SDK sends the workspace's own).
OFFLINE_LOCATION = "workspace-location"


class EndpointError(ValueError):
    """A bad endpoint name, model reference or instance type, or a model that is not a Triton model."""


@dataclass(frozen=True)
class Plan:
    endpoint: ManagedOnlineEndpoint
    deployment: ManagedOnlineDeployment
    model_name: str
    model_version: str

    @property
    def compute_capability(self) -> str | None:
        """The compute capability of the instance type's GPU (its GPU model as vm_sizes names it)."""
        gpu = vm_sizes.GPU_SIZES[str(self.deployment.instance_type)][1].split()[0]
        return COMPUTE_CAPABILITY.get(gpu)


def plan(endpoint_name: str, model: str, deployment_name: str = DEFAULT_DEPLOYMENT,
         instance_type: str = DEFAULT_INSTANCE_TYPE, instance_count: int = 1) -> Plan:
    """The endpoint and deployment entities, checked offline."""
    if not ENDPOINT_NAME.match(endpoint_name):
        raise EndpointError(f"endpoint name {endpoint_name!r}: 3-32 letters, digits or '-', starting with a letter "
                            "and not ending with '-'")
    if not ENDPOINT_NAME.match(deployment_name):
        raise EndpointError(f"deployment name {deployment_name!r}: 3-32 letters, digits or '-', starting with a "
                            "letter")
    match = MODEL_REF.match(model)
    if not match:
        raise EndpointError(f"--model {model!r}: expected NAME:VERSION of a triton_model asset, e.g. "
                            "tao-detectnet-v2-triton:1")
    problem = vm_sizes.gpu_size_problem(instance_type)
    if problem:
        raise EndpointError(f"--instance-type: {problem}")
    if instance_count < 1:
        raise EndpointError("--instance-count must be at least 1")
    endpoint = ManagedOnlineEndpoint(
        name=endpoint_name, auth_mode="key",
        description=f"NVIDIA TAO model {match.group(1)} served by Triton; made by tao-aml deploy",
        tags={"tao_aml.model": model})
    deployment = ManagedOnlineDeployment(
        name=deployment_name, endpoint_name=endpoint_name, model=f"azureml:{model}",
        instance_type=instance_type, instance_count=instance_count, tags={"tao_aml.model": model})
    return Plan(endpoint, deployment, match.group(1), match.group(2))


def rest_bodies(planned: Plan, location: str = OFFLINE_LOCATION) -> dict[str, dict]:
    """What azure-ai-ml sends for the endpoint and the deployment (raises if it could not serialize them)."""
    return {"endpoint": planned.endpoint._to_rest_online_endpoint(location).as_dict(),
            "deployment": planned.deployment._to_rest_object(location).as_dict()}


def write_plan(planned: Plan, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, body in rest_bodies(planned).items():
        path = out_dir / f"{planned.endpoint.name}.{kind}.json"
        path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def check_model(client: MLClient, planned: Plan) -> str:
    """The Triton model name inside the registered triton_model; EndpointError if it cannot be served."""
    try:
        model = client.models.get(name=planned.model_name, version=planned.model_version)
    except ResourceNotFoundError:
        raise EndpointError(f"model {planned.model_name}:{planned.model_version} is not in the workspace "
                            "(tao-aml model register registers <name>-triton)") from None
    if str(model.type) != "triton_model":
        raise EndpointError(f"model {planned.model_name}:{planned.model_version} is a {model.type}, not a "
                            "triton_model: deploy the <name>-triton asset that tao-aml model register makes")
    tags = model.tags or {}
    simulated = simulated_problem(tags, f"model {planned.model_name}:{planned.model_version}")
    if simulated:
        raise EndpointError(simulated)
    built_for = tags.get(PLAN_TAG)
    if built_for and built_for != planned.compute_capability:
        raise EndpointError(f"model {planned.model_name}:{planned.model_version} holds a TensorRT plan for GPUs of "
                            f"compute capability {built_for}; {planned.deployment.instance_type}'s GPU is "
                            f"{planned.compute_capability}, where Triton cannot load it: pick a size with that GPU")
    return str(tags.get("triton_model_name") or planned.model_name.removesuffix(TRITON_SUFFIX))


def deploy(client: MLClient, planned: Plan,
           report: Callable[[str], None] = print) -> tuple[ManagedOnlineEndpoint, str]:
    """Create or update the endpoint, then the deployment (waiting for each), then send it all traffic.
    Returns the endpoint and the Triton model name it serves."""
    triton_model = check_model(client, planned)
    report(f"endpoint {planned.endpoint.name}: creating or updating (takes a few minutes)")
    client.online_endpoints.begin_create_or_update(planned.endpoint).result()
    report(f"deployment {planned.deployment.name}: {planned.deployment.instance_count} x "
           f"{planned.deployment.instance_type}, model {planned.model_name}:{planned.model_version} "
           "(the first takes 10-20 minutes)")
    deployed = client.online_deployments.begin_create_or_update(planned.deployment).result()
    state = str(getattr(deployed, "provisioning_state", "Succeeded"))
    if state != "Succeeded":
        raise EndpointError(f"deployment {planned.deployment.name} ended {state}: see `az ml online-deployment "
                            f"get-logs --endpoint-name {planned.endpoint.name} --name {planned.deployment.name}`")
    endpoint = client.online_endpoints.get(planned.endpoint.name)
    endpoint.traffic = {planned.deployment.name: 100}
    return client.online_endpoints.begin_create_or_update(endpoint).result(), triton_model


def how_to_call(endpoint: ManagedOnlineEndpoint, triton_model: str) -> list[str]:
    host = urlsplit(str(endpoint.scoring_uri)).netloc
    return [
        f"scoring URI: {endpoint.scoring_uri}",
        "call it with the model folder (its model_card.json holds the decoding thresholds):",
        f"  tao-aml predict --endpoint {endpoint.name} --model-dir <downloaded model folder> IMAGE... "
        "--config config.json",
        f"or with any Triton/KServe v2 client: POST https://{host}/v2/models/{triton_model}/infer "
        "with 'Authorization: Bearer <key>' (az ml online-endpoint get-credentials --name "
        f"{endpoint.name})",
    ]
