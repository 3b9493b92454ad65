"""Secrets by reference: a step reads a key at run time from Azure Key Vault, or from an environment variable.

A job holds only the vault's URL and the secret's name (shared/facts/azureml.md, "Secrets in jobs"): the
step reads the value with the job's identity (the compute cluster's managed identity) through
azure-identity and azure-keyvault-secrets, which are imported only when a vault is named. Without a vault
(a local run, a TAO workstation) the value comes from an environment variable, which `tao-aml run --local`
passes into a container by name only. A value read here is never logged, printed, written to a file or put
in an error message.
"""

import argparse
import logging
import os
from typing import Optional

from tao_aml.steps.cli_types import of_kind
from tao_aml.steps.common import StepError

LOG = logging.getLogger("tao_aml.secrets")

# Where the value comes from when no vault is named.
NGC_KEY_ENV = "NGC_API_KEY"
MODEL_KEY_ENV = "TAO_MODEL_KEY"
# Azure ML sets it on a compute cluster with a user-assigned identity: that identity's client ID.
CLUSTER_IDENTITY_ENV = "DEFAULT_IDENTITY_CLIENT_ID"
VAULT_HELP = ("Azure Key Vault URL, https://<vault>.vault.azure.net/, read with the job's managed identity; "
              "not set: secrets come from environment variables (local runs)")


def add_vault_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key_vault_url", type=of_kind("key_vault_url"), help=VAULT_HELP)


def add_model_key_arguments(parser: argparse.ArgumentParser) -> None:
    """`--key` (a public key such as nvidia_tlt) and the reference to a key of your own, which replaces it."""
    parser.add_argument("--key", type=of_kind("key"), required=True,
                        help="the model's key, when it is a public one (nvidia_tlt)")
    add_vault_argument(parser)
    parser.add_argument(
        "--model_key_secret", type=of_kind("secret_name"),
        help="Key Vault secret holding a model key of your own, used instead of --key; without --key_vault_url "
             "the key comes from environment variable " + MODEL_KEY_ENV,
    )


def add_ngc_key_arguments(parser: argparse.ArgumentParser) -> None:
    add_vault_argument(parser)
    parser.add_argument(
        "--ngc_key_secret", type=of_kind("secret_name"),
        help="Key Vault secret holding an NGC API key (private models only); without --key_vault_url the key "
             "comes from the environment variable named by --api_key_env",
    )


def model_key(args: argparse.Namespace) -> str:
    """The key TAO gets: the secret's value when --model_key_secret names one, else --key (a public key)."""
    if not args.model_key_secret:
        return args.key
    return read_secret(args.key_vault_url, args.model_key_secret, MODEL_KEY_ENV)


def ngc_key(args: argparse.Namespace) -> Optional[str]:
    """The NGC API key named by --ngc_key_secret, or None when none is named."""
    if not args.ngc_key_secret:
        return None
    return read_secret(args.key_vault_url, args.ngc_key_secret, args.api_key_env)


def read_secret(vault_url: Optional[str], name: str, env_name: str) -> str:
    """The value of secret `name` in the vault at `vault_url`, or, without a vault, of environment variable
    `env_name`. Errors say where the value was looked for, never what it is."""
    if vault_url:
        where = "Key Vault secret {} in {}".format(name, vault_url)
        value = _from_vault(vault_url, name, where)
    else:
        where = "environment variable {} (secret {}: no key_vault_url, so not from Key Vault)".format(env_name, name)
        value = os.environ.get(env_name, "")
        if not value.strip():
            raise StepError("{} is not set; set it, or give key_vault_url on Azure ML".format(where))
    value = value.strip()
    # A key goes into an HTTP header or TAO's command line: one word, printable.
    if not value or any(ch.isspace() or not ch.isprintable() for ch in value):
        raise StepError("{} is empty or holds whitespace or control characters; it must be a single key".format(where))
    LOG.info("key read from %s", where)
    return value


def secret_client(vault_url: str):  # -> azure.keyvault.secrets.SecretClient
    """A Key Vault client signed in as the job: the cluster's managed identity (or `az login` on a workstation)."""
    try:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient
    except ImportError as err:
        raise StepError("reading a Key Vault secret needs azure-identity and azure-keyvault-secrets, which this "
                        "environment lacks ({}); rebuild it from environments/".format(err)) from None
    # The client's request log (URLs and headers, at INFO) would fill the step's log with every call.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
    client_id = os.environ.get(CLUSTER_IDENTITY_ENV)
    # Passed only when set: an explicit None would turn off DefaultAzureCredential's own AZURE_CLIENT_ID fallback.
    options = {"managed_identity_client_id": client_id} if client_id else {}
    return SecretClient(vault_url=vault_url, credential=DefaultAzureCredential(**options))


def _from_vault(vault_url: str, name: str, where: str) -> str:
    client = secret_client(vault_url)  # first: it says what to do when the libraries are missing
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

    try:
        secret = client.get_secret(name)
    except ResourceNotFoundError:
        raise StepError("{}: no such secret; create it (docs/submitting.md, Secrets)".format(where)) from None
    except ClientAuthenticationError as err:
        raise StepError("{}: the job could not sign in ({}); give the compute cluster a managed identity "
                        "(docs/submitting.md, Secrets)".format(where, _first_line(err))) from None
    except HttpResponseError as err:
        if err.status_code == 403:
            raise StepError("{}: the job's identity may not read it (403); grant the cluster's managed identity "
                            "the role Key Vault Secrets User on the vault (docs/submitting.md, Secrets)".format(
                                where)) from None
        raise StepError("{}: Key Vault answered {} ({})".format(where, err.status_code, _first_line(err))) from None
    except AzureError as err:
        raise StepError("{}: {}".format(where, _first_line(err))) from None
    if secret.value is None:
        raise StepError("{}: the secret has no value".format(where))
    return secret.value


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

