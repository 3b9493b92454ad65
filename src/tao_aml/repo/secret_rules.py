"""What the user side does about secrets: none written in a job, none printed.

A job's inputs and `environment_variables` are stored in the job definition and shown to every reader
of the job and every user of a registered pipeline component (shared/facts/azureml.md, "Secrets in jobs").
Secrets go to steps by reference instead (steps/secret_refs.py): a Key Vault URL and a secret's name.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from tao_aml.repo.problems import Problem
from tao_aml.repo.yaml_model import Component
from tao_aml.steps.secret_refs import MODEL_KEY_ENV, NGC_KEY_ENV
from tao_aml.steps.tao.command import printable

SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
# Inputs that name where a secret is, not what it is.
REFERENCE_INPUTS = ("key_vault_url", "ngc_key_secret", "model_key_secret")
# Model keys NVIDIA publishes (its NGC models', its TAO samples'): no secret.
PUBLIC_MODEL_KEYS = ("nvidia_tlt", "tlt_encode")
MASK = "***"
# Where a step looks for each secret when no vault is named (a local run).
LOCAL_SOURCES = {"ngc_key_secret": NGC_KEY_ENV, "model_key_secret": MODEL_KEY_ENV}


def looks_secret(name: str) -> bool:
    """A name such as NGC_API_KEY, MLFLOW_TRACKING_TOKEN or key: its value is taken for a secret."""
    return any(word in name.upper() for word in SECRET_WORDS) and name not in REFERENCE_INPUTS


def environment_problems(component: Component) -> list[Problem]:
    """Every secret-like `environment_variables` entry given a value, in the component or any of its steps."""
    places = [("", component.raw)] + [(f"jobs.{name}.", step.raw) for name, step in component.jobs.items()]
    problems = []
    for prefix, raw in places:
        variables = raw.get("environment_variables")
        for name, value in (variables.items() if isinstance(variables, dict) else ()):
            if looks_secret(str(name)) and value not in (None, ""):
                problems.append(Problem(
                    component.path, f"{prefix}environment_variables.{name}",
                    "a secret written in the job: every reader of the job (and of a registered pipeline "
                    "component) sees it; put it in Azure Key Vault and give key_vault_url and the secret's name "
                    "(ngc_key_secret, model_key_secret; docs/submitting.md, Secrets)",
                ))
    return problems


def shown_input(name: str, text: str) -> str:
    """An input's value as a printout may show it: a secret-like input's value masked."""
    if not looks_secret(name):
        return text
    if text in PUBLIC_MODEL_KEYS:
        return MASK
    return f"{MASK} (a key of your own is stored in the job for every reader: put it in Key Vault and set " \
           "model_key_secret instead; docs/submitting.md, Secrets)"


def shown_command(command: str) -> str:
    """A rendered step command for a log line, with TAO's key flags masked."""
    try:
        return printable(shlex.split(command))
    except ValueError:  # not one shell line: show nothing of it rather than risk the key
        return MASK


def local_secret_problems(values: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """A secret named for a local run without a vault, whose environment variable is not set: refused before the
    first step, not when the first step that needs it starts."""
    if values.get("key_vault_url"):
        return []
    return [f"--set {name}={values[name]}: a local run reads this key from environment variable {variable}, "
            f"which is not set; export it (docs/submitting.md, Secrets)"
            for name, variable in LOCAL_SOURCES.items() if values.get(name) and not environ.get(variable, "").strip()]


def azure_secret_problems(values: Mapping[str, Any]) -> list[str]:
    """A secret named for an Azure ML run without the vault it is in: the step would find no key on the node."""
    if values.get("key_vault_url"):
        return []
    return [f"--set {name}={values[name]}: on Azure ML the step reads this secret from Key Vault: set key_vault_url "
            "too (docs/submitting.md, Secrets)" for name in LOCAL_SOURCES if values.get(name)]
