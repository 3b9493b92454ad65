"""Register a finished pipeline job's `model` output as an Azure ML model asset, the documented way.

The pipeline's `register_model` step only assembles the deployable folder (ONNX, engine, calibration
cache, labels, specs, model_card.json) into its `model` output. After the job has completed, this module
registers that output with `ml_client.models.create_or_update(Model(type="custom_model",
path="azureml://jobs/<job>/outputs/model/paths/"))`, the form Azure ML documents for a model made by a
job, where <job> is the register_model step's own (child) job. Name and tags come from the step's
model_card.json; for an Azure ML registry the workspace version is then shared with
`ml_client.models.share`, the documented way to put a workspace model into a registry. A card with a
Triton repository (DetectNet_v2: `triton/` in the output) also gets a `triton_model` asset `<name>-triton`
from `azureml://jobs/<job>/outputs/model/paths/triton/`, which `tao-aml deploy` serves on a managed
online endpoint (no-code Triton deployment).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient
from azure.ai.ml.entities import Model
from azure.core.exceptions import ResourceNotFoundError

from tao_aml.azure.submit import FINISHED_OK, step_jobs
from tao_aml.azure.workspace import asset_exists
from tao_aml.simulate import simulated_problem
from tao_aml.steps.asset.register_model import MODEL_CARD

LOG = logging.getLogger(__name__)
STEP, OUTPUT = "register_model", "model"  # the step of both pipelines, and its custom_model output
# The whole output of a job (documented form azureml://jobs/<job>/outputs/<output>/paths/<path in it>).
# azure-ai-ml sends it as given: its own parser wants a non-empty <path> and, failing, leaves the URI
# unchanged (_utils/utils.py, resolve_short_datastore_url).
MODEL_URI = "azureml://jobs/{job}/outputs/{output}/paths/"
# Where `jobs.download(name, output_name=X, download_path=D)` writes output X: D/named-outputs/X/
# (azure-ai-ml 1.35, operations/_job_operations.py, JobOperations.download).
DOWNLOADED_OUTPUT = "named-outputs"
# Properties of a registered version (set once, never changed): the run it was made from.
PIPELINE_JOB, STEP_JOB = "tao_aml.pipeline_job", "tao_aml.step_job"


class ModelJobError(RuntimeError):
    """The job has no model to register: not completed, no register_model step, or no model card."""


class ModelNameError(ValueError):
    """No model name to register under, or the version asked for is already taken."""


def register_from_job(
    client: MLClient,
    job_name: str,
    name: str | None = None,
    version: str | None = None,
    registry: str | None = None,
    report: Callable[[str], None] = LOG.info,
) -> Model:
    """Register the `model` output of the completed pipeline job `job_name` in the client's workspace.

    `name` defaults to the model card's name (the pipeline input `model_name`, e.g. tao-facenet),
    `version` to the next free one (Azure ML's auto-increment of a Model without a version). A version of
    `name` already made from this job's register_model step is returned as it is, so registering after
    `tao-aml submit --stream` and again by hand makes one version. With `registry`, the workspace version
    is then shared to that registry under the same name and version. Returns the workspace version.
    Raises ModelJobError, ModelNameError; service errors come from azure-ai-ml.
    """
    status = str(client.jobs.get(job_name).status)
    if status != FINISHED_OK:
        raise ModelJobError(f"job {job_name} is {status}: only a {FINISHED_OK} job has a model output to register")
    step_job = register_step_job(client, job_name)
    card = read_card(client, job_name, step_job)
    model_name = name or card.get("name")
    if not model_name:
        raise ModelNameError(
            f"the model card of job {job_name} names no model (pipeline input model_name unset): pass --name"
        )
    model = made_from(client, str(model_name), step_job)
    if model is not None and version in (None, model.version):
        report(f"model {model.name}:{model.version} was already registered from job {job_name}")
    else:
        if version is not None and asset_exists(client.models, str(model_name), version):
            raise ModelNameError(
                f"model {model_name} version {version} already exists (versions are immutable): pass another "
                "--version, or none for the next free one"
            )
        model = client.models.create_or_update(asset(card, str(model_name), version, job_name, step_job))
        report(f"registered model {model.name}:{model.version} from {model.path}")
    if card.get("triton"):
        register_triton(client, card, model, job_name, step_job, report)
    if registry:
        # azure-ai-ml 1.35 ModelOperations.share(name, version, *, share_with_name, share_with_version,
        # registry_name) (operations/_model_operations.py; experimental): copies the workspace version into
        # the registry; it refuses a name and version the registry already holds.
        client.models.share(
            str(model.name), str(model.version), registry_name=registry,
            share_with_name=str(model.name), share_with_version=str(model.version),
        )
        report(f"shared model {model.name}:{model.version} to registry {registry}: {registry_uri(registry, model)}")
    return model


TRITON_SUFFIX = "-triton"
PLAN_TAG = "triton_plan_compute_capability"  # the GPU family a Triton repository's TensorRT plan loads on


def register_triton(client: MLClient, card: dict[str, Any], model: Model, job_name: str, step_job: str,
                    report: Callable[[str], None]) -> Model:
    """The card's Triton repository as a triton_model asset <name>-triton (once per step job)."""
    name = f"{model.name}{TRITON_SUFFIX}"
    found = made_from(client, name, step_job)
    if found is not None:
        report(f"Triton model {found.name}:{found.version} was already registered from job {job_name}")
        return found
    folder = str(card["triton"].get("path", "triton")).strip("/")
    tags = {str(key): str(value) for key, value in (card.get("tags") or {}).items()}
    tags.update({"triton_model_name": str(card["triton"].get("model", "")),
                 "custom_model": f"{model.name}:{model.version}"})
    plan = card["triton"].get("plan") or {}
    if plan.get("included"):  # tao-aml deploy refuses a size whose GPU cannot load the plan
        tags[PLAN_TAG] = str(plan.get("compute_capability"))
    triton = client.models.create_or_update(Model(
        type="triton_model", name=name, path=MODEL_URI.format(job=step_job, output=OUTPUT) + folder + "/",
        tags=tags, properties={PIPELINE_JOB: job_name, STEP_JOB: step_job},
        description=f"Triton model repository of {model.name}:{model.version} (pipeline job {job_name})"))
    report(f"registered Triton model {triton.name}:{triton.version} from {triton.path}: "
           f"tao-aml deploy --model {triton.name}:{triton.version} --endpoint <name>")
    return triton


def register_step_job(client: MLClient, job_name: str) -> str:
    """The name of the register_model step's child job: `main.register_model`, or any one `*.register_model`."""
    steps = step_jobs(client, job_name)
    found = sorted(path for path in steps if path == STEP or path.endswith(f".{STEP}"))
    if len(found) != 1:
        listed = ", ".join(sorted(steps)) or "none (not a pipeline job, or not one of this workspace)"
        what = "no" if not found else f"{len(found)} ({', '.join(found)})"
        raise ModelJobError(f"job {job_name} has {what} {STEP} step to take the model from; its steps: {listed}")
    return steps[found[0]]


def read_card(client: MLClient, job_name: str, step_job: str) -> dict[str, Any]:
    """model_card.json of the step's `model` output, downloaded with the SDK's documented jobs.download."""
    with tempfile.TemporaryDirectory(prefix="tao-aml-model-") as folder:
        client.jobs.download(name=step_job, output_name=OUTPUT, download_path=folder)
        path = Path(folder, DOWNLOADED_OUTPUT, OUTPUT, MODEL_CARD)
        if not path.is_file():
            raise ModelJobError(
                f"job {job_name}: the {STEP} step's job {step_job} has no {MODEL_CARD} in its {OUTPUT} output"
            )
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ModelJobError(f"job {job_name}: {MODEL_CARD} of step job {step_job} is not readable: {err}") from err
    if not isinstance(card, dict) or not isinstance(card.get("tags", {}), dict):
        raise ModelJobError(f"job {job_name}: {MODEL_CARD} of step job {step_job} is not a model card")
    simulated = simulated_problem(card.get("tags"), f"the model of job {job_name}")
    if simulated:
        raise ModelJobError(simulated)
    return card


def asset(card: dict[str, Any], name: str, version: str | None, job_name: str, step_job: str) -> Model:
    """The model asset: the step job's whole `model` output, the card's tags, the job in the properties."""
    files = ", ".join(sorted({str(path).split("/")[0] for path in card.get("files") or {}} | {MODEL_CARD}))
    return Model(
        type="custom_model",
        name=name,
        version=version,
        path=MODEL_URI.format(job=step_job, output=OUTPUT),
        tags={str(key): str(value) for key, value in (card.get("tags") or {}).items()},
        description=(
            f"NVIDIA TAO {card.get('tao_version', '')} {card.get('family', '')} model from pipeline job "
            f"{job_name}: {files}"
        ),
        properties={PIPELINE_JOB: job_name, STEP_JOB: step_job},
    )


def made_from(client: MLClient, name: str, step_job: str) -> Model | None:
    """The version of `name` registered from this step job, if any."""
    try:
        versions = list(client.models.list(name=name))
    except ResourceNotFoundError:  # a name with no versions yet may be answered with 404
        return None
    return next((m for m in versions if (m.properties or {}).get(STEP_JOB) == step_job), None)


def registry_uri(registry: str, model: Model) -> str:
    return f"azureml://registries/{registry}/models/{model.name}/versions/{model.version}"
