"""Secrets by reference: keys come from Key Vault (or, in local runs, the environment), and never show.

The Key Vault client is the real azure-keyvault-secrets SecretClient; only the Azure services are
replaced: the sign-in (a credential that hands out a token) and the vault's REST API (a requests session
that answers as Key Vault does, challenge first). A full local run with fake keys must leave them in no
output, log, file, docker command line or model asset, and the job `submit --dry-run` writes holds only
the vault URL and the secrets' names.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import azure.identity
import azure.keyvault.secrets
import pytest
import requests
import urllib3
import yaml
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport

from http_server import add_ngc_model
from tao_aml.cli import main
from tao_aml.repo.secret_rules import environment_problems, shown_command, shown_input
from tao_aml.repo.validation import validate_repository
from tao_aml.repo.yaml_model import load
from tao_aml.simulate import invocations
from tao_aml.steps import secret_refs
from tao_aml.steps.common import StepError
from tao_aml.steps.data import ngc_model
from tao_aml.steps.detectnet_v2 import prune
from test_detectnet_v2_steps import data  # noqa: F401  (a fixture: folders as the earlier steps leave them)
from test_local_run_cli import fake_docker, run_args, served  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parents[1]
VAULT = "https://tao-team-kv.vault.azure.net/"
MODEL_KEY = "own-model-key-7f3a9c2e"  # fake keys: each must show up nowhere it should not
NGC_KEY = "nvapi-fake-0123456789abcdef"
TOKEN = "fake-entra-token"


class FakeCredential:
    """The job's identity as Entra ID would sign it in: a token for Key Vault's scope."""

    made: list[dict] = []  # the options of each credential made
    scopes: list[tuple[str, ...]] = []  # what each token was asked for

    def __init__(self, **options) -> None:
        FakeCredential.made.append(options)

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        FakeCredential.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)

    def close(self) -> None:
        pass


class RefusedCredential(FakeCredential):
    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        raise ClientAuthenticationError("ManagedIdentityCredential: no managed identity endpoint found.\nmore")


class FakeVaultSession(requests.Session):
    """Key Vault's REST API as a requests session: 401 with a challenge to a request without a token, then the
    secret (GET /secrets/<name>), 404 for a name it lacks, 403 when `forbidden`."""

    def __init__(self, secrets: dict[str, str], forbidden: bool = False) -> None:
        super().__init__()
        self.secrets, self.forbidden, self.seen = secrets, forbidden, []

    def request(self, method, url, headers=None, **kwargs) -> requests.Response:
        headers = dict(headers or {})
        self.seen.append((method, url, headers.get("Authorization")))
        name = re.fullmatch(r"/secrets/([A-Za-z0-9-]+)/?", urlsplit(url).path)
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.answer(url, 401, {"error": {"code": "Unauthorized"}}, {
                "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/tenant-id", '
                                    'resource="https://vault.azure.net"'})
        if self.forbidden:
            return self.answer(url, 403, {"error": {"code": "Forbidden", "message": "Caller is not authorized"}})
        if method != "GET" or name is None or name.group(1) not in self.secrets:
            return self.answer(url, 404, {"error": {"code": "SecretNotFound", "message": "not found"}})
        return self.answer(url, 200, {"value": self.secrets[name.group(1)], "attributes": {"enabled": True},
                                      "id": f"{VAULT}secrets/{name.group(1)}/0123456789abcdef"})

    @staticmethod
    def answer(url: str, status: int, body: dict, headers: dict | None = None) -> requests.Response:
        content = json.dumps(body).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(content)),
                   **(headers or {})}
        response = requests.Response()
        response.status_code, response.url, response._content = status, url, content
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(content), headers=headers, status=status,
                                            preload_content=False)
        response.headers.update(headers)
        return response


def files_holding(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch):
    """The real SecretClient, talking to a fake Key Vault and signed in by a fake identity service."""
    session = FakeVaultSession({"tao-model-key": MODEL_KEY, "ngc-api-key": NGC_KEY})
    real_client = azure.keyvault.secrets.SecretClient

    class ClientOnFakeVault(real_client):
        def __init__(self, vault_url: str, credential, **options) -> None:
            super().__init__(vault_url, credential, transport=RequestsTransport(session=session), **options)

    FakeCredential.made, FakeCredential.scopes = [], []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    monkeypatch.setattr(azure.keyvault.secrets, "SecretClient", ClientOnFakeVault)
    monkeypatch.delenv(secret_refs.CLUSTER_IDENTITY_ENV, raising=False)
    return session


def test_the_key_is_read_from_key_vault_with_the_jobs_identity(vault, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv(secret_refs.CLUSTER_IDENTITY_ENV, "11111111-2222-3333-4444-555555555555")
    assert secret_refs.read_secret(VAULT, "tao-model-key", "TAO_MODEL_KEY") == MODEL_KEY
    # Challenge first (no token), then the same GET with the identity's token.
    assert [(method, urlsplit(url).path, auth) for method, url, auth in vault.seen] == [
        ("GET", "/secrets/tao-model-key/", None), ("GET", "/secrets/tao-model-key/", f"Bearer {TOKEN}")]
    assert FakeCredential.scopes == [("https://vault.azure.net/.default",)]
    assert FakeCredential.made == [{"managed_identity_client_id": "11111111-2222-3333-4444-555555555555"}]
    assert "Key Vault secret tao-model-key in " + VAULT in caplog.text
    assert MODEL_KEY not in caplog.text


def test_without_a_cluster_identity_variable_the_credential_picks_its_own(vault) -> None:
    assert secret_refs.read_secret(VAULT, "ngc-api-key", "NGC_API_KEY") == NGC_KEY
    assert FakeCredential.made == [{}]  # not managed_identity_client_id=None: that turns AZURE_CLIENT_ID off


@pytest.mark.parametrize(("secret", "forbidden", "credential", "message"), [
    ("missing-key", False, FakeCredential, "Key Vault secret missing-key in " + VAULT + ": no such secret"),
    ("tao-model-key", True, FakeCredential, "grant the cluster's managed identity the role Key Vault Secrets User"),
    ("tao-model-key", False, RefusedCredential, "could not sign in (ManagedIdentityCredential: no managed identity "
                                                "endpoint found.); give the compute cluster a managed identity"),
])
def test_vault_failures_say_what_to_do_and_never_show_the_key(vault, monkeypatch, secret, forbidden, credential,
                                                               message) -> None:
    vault.forbidden = forbidden
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", credential)
    with pytest.raises(StepError) as err:
        secret_refs.read_secret(VAULT, secret, "TAO_MODEL_KEY")
    assert message in str(err.value) and MODEL_KEY not in str(err.value)


def test_without_a_vault_the_key_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TAO_MODEL_KEY", f"  {MODEL_KEY}\n")
    assert secret_refs.read_secret(None, "tao-model-key", "TAO_MODEL_KEY") == MODEL_KEY
    monkeypatch.delenv("TAO_MODEL_KEY")
    with pytest.raises(StepError, match="environment variable TAO_MODEL_KEY .* is not set; set it, or give "
                                        "key_vault_url on Azure ML"):
        secret_refs.read_secret(None, "tao-model-key", "TAO_MODEL_KEY")
    monkeypatch.setenv("TAO_MODEL_KEY", "two words")
    with pytest.raises(StepError, match="whitespace or control characters") as err:
        secret_refs.read_secret(None, "tao-model-key", "TAO_MODEL_KEY")
    assert "two words" not in str(err.value)


def test_the_real_client_is_built_for_the_vault(monkeypatch) -> None:
    monkeypatch.delenv(secret_refs.CLUSTER_IDENTITY_ENV, raising=False)
    client = secret_refs.secret_client(VAULT)  # builds offline: azure-identity and azure-keyvault-secrets
    assert isinstance(client, azure.keyvault.secrets.SecretClient) and client.vault_url == VAULT.rstrip("/")


def test_without_the_vault_libraries_the_step_says_what_to_rebuild(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.keyvault.secrets", None)  # as in an image built without them
    with pytest.raises(StepError, match="needs azure-identity and azure-keyvault-secrets, which this environment "
                                        "lacks .*; rebuild it from environments/"):
        secret_refs.read_secret(VAULT, "ngc-api-key", "NGC_API_KEY")


def test_the_ngc_step_sends_the_vault_key_to_ngc_only(vault, http_server, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    add_ngc_model(http_server, "acme/team/private:v1", {"model.tlt": b"private weights"})
    http_server.require_bearer("/v2/models/", NGC_KEY)
    assert ngc_model.main(["--model", "acme/team/private:v1", "--output_dir", str(tmp_path / "m"), "--api_base",
                           http_server.base_url, "--key_vault_url", VAULT, "--ngc_key_secret", "ngc-api-key"]) == 0
    assert any(r.headers.get("authorization") == f"Bearer {NGC_KEY}" for r in http_server.requests)
    assert "with the API key from ngc-api-key" in caplog.text and NGC_KEY not in caplog.text
    assert files_holding(tmp_path / "m", NGC_KEY) == []


def prune_args(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["--model", str(data["model"]), "--output_dir", str(out), "--key", "nvidia_tlt",
            "--pruning_threshold", "0.1", *extra]


def test_a_tao_step_gives_tao_the_vault_key_and_shows_none_of_it(
    data, vault, tmp_path, monkeypatch, caplog, capfd
) -> None:
    caplog.set_level(logging.INFO)
    log = tmp_path / "tao.jsonl"
    monkeypatch.setenv("TAO_STANDIN_LOG", str(log))
    args = prune_args(data, tmp_path / "p", "--key_vault_url", VAULT, "--model_key_secret", "tao-model-key")
    assert prune.main(args) == 0
    argv = invocations(log)[0]["argv"]
    assert argv[argv.index("--key") + 1] == MODEL_KEY  # TAO's own command line: its process, its -k
    out, err = capfd.readouterr()
    assert MODEL_KEY not in caplog.text + out + err
    assert "--key ***" in caplog.text
    assert files_holding(tmp_path / "p", MODEL_KEY) == []


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--key_vault_url", "http://tao-team-kv.vault.azure.net/", "expected an Azure Key Vault URL"),
    ("--key_vault_url", "https://tao-team-kv.vault.azure.net.example.com/", "expected an Azure Key Vault URL"),
    ("--model_key_secret", "tao_model_key", "a Key Vault secret name"),
    ("--model_key_secret", "x'; touch pwned; '", "is not allowed in any input value"),
])
def test_step_parsers_refuse_what_is_no_vault_url_or_secret_name(data, tmp_path, capsys, flag, value,
                                                                   message) -> None:
    with pytest.raises(SystemExit) as exit_:
        prune.main(prune_args(data, tmp_path / "p", flag, value))
    assert exit_.value.code == 2
    assert f"argument {flag}: " in (err := capsys.readouterr().err) and message in err


def test_without_a_vault_or_the_variable_the_step_stops_before_tao(data, tmp_path, monkeypatch,
                                                                                  caplog) -> None:
    monkeypatch.delenv("TAO_MODEL_KEY", raising=False)
    assert prune.main(prune_args(data, tmp_path / "p", "--model_key_secret", "tao-model-key")) == 2
    assert "environment variable TAO_MODEL_KEY (secret tao-model-key: no key_vault_url" in caplog.text


def test_validate_refuses_a_secret_written_in_a_job(repo_copy: Path) -> None:
    component = repo_copy / "pipelines" / "facenet" / "pipeline_component.yml"
    tree = yaml.safe_load(component.read_text())
    tree["jobs"]["pretrained"]["environment_variables"] = {
        "NGC_API_KEY": NGC_KEY, "MLFLOW_TRACKING_TOKEN": "tok-123", "DB_Password": "pw", "AZURE_CREDENTIAL": "c",
        "TAO_AML_VERBOSE": "1", "EMPTY_TOKEN": ""}
    component.write_text(yaml.safe_dump(tree, sort_keys=False))
    job = repo_copy / "pipelines" / "facenet" / "pipeline.yml"
    tree = yaml.safe_load(job.read_text())
    tree["jobs"]["main"]["environment_variables"] = {"MY_SECRET": "${{parent.inputs.cpu_compute}}"}
    job.write_text(yaml.safe_dump(tree, sort_keys=False))
    found = [p for p in validate_repository(repo_copy, with_azure=False) if "environment_variables" in p.key]
    assert sorted(p.key for p in found) == [
        "jobs.main.environment_variables.MY_SECRET", *(f"jobs.pretrained.environment_variables.{name}" for name in (
            "AZURE_CREDENTIAL", "DB_Password", "MLFLOW_TRACKING_TOKEN", "NGC_API_KEY"))]
    rendered = "\n".join(problem.render(repo_copy) for problem in found)
    assert "put it in Azure Key Vault" in rendered and NGC_KEY not in rendered and "tok-123" not in rendered


def test_submit_refuses_a_secret_written_in_a_job_before_writing_anything(repo_copy: Path, tmp_path, capsys) -> None:
    job = repo_copy / "pipelines" / "facenet" / "pipeline.yml"
    tree = yaml.safe_load(job.read_text())
    tree["jobs"]["main"]["environment_variables"] = {"NGC_API_KEY": NGC_KEY}
    job.write_text(yaml.safe_dump(tree, sort_keys=False))
    out_dir = tmp_path / "build"
    assert main(["submit", "facenet", "--dry-run", "--root", str(repo_copy), "--output-dir", str(out_dir),
                 "--gpu-compute", "my-gpu", "--cpu-compute", "my-cpu"]) == 2
    err = capsys.readouterr().err
    assert "pipelines/facenet/pipeline.yml: jobs.main.environment_variables.NGC_API_KEY: a secret written in the " \
           "job" in err and NGC_KEY not in err
    assert not out_dir.exists()


def test_the_shipped_pipelines_write_no_secret() -> None:
    for path in sorted(REPO.glob("pipelines/*/pipeline*.yml")):
        assert environment_problems(load(path)) == [], path


def test_printouts_mask_the_model_key() -> None:
    assert shown_input("key", "nvidia_tlt") == "***"
    assert shown_input("key", "my-own").startswith("*** (a key of your own is stored in the job")
    assert shown_input("model_key_secret", "tao-model-key") == "tao-model-key"
    assert shown_input("key_vault_url", VAULT) == VAULT and shown_input("train_epochs", "3") == "3"
    command = "python -m tao_aml.steps.detectnet_v2.prune --model '/w/m' --key 'nvidia_tlt' --model_key_secret 'k'"
    assert shown_command(command) == ("python -m tao_aml.steps.detectnet_v2.prune --model /w/m --key *** "
                                      "--model_key_secret k")


def test_the_job_holds_only_the_vault_url_and_the_secret_names(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NGC_API_KEY", NGC_KEY)
    monkeypatch.setenv("TAO_MODEL_KEY", MODEL_KEY)
    out_dir = tmp_path / "build"
    assert main(["submit", "facenet", "--dry-run", "--root", str(REPO), "--output-dir", str(out_dir),
                 "--gpu-compute", "my-gpu", "--cpu-compute", "my-cpu", "--set", f"key_vault_url={VAULT}",
                 "--set", "ngc_key_secret=ngc-api-key", "--set", "model_key_secret=tao-model-key"]) == 0
    printed = capsys.readouterr().out
    assert "  key = ***\n" in printed and f"  key_vault_url = {VAULT}\n" in printed
    written = {path.name: path.read_text() for path in (out_dir / "facenet").rglob("*") if path.is_file()}
    rest = json.loads(written["facenet.rest.json"])
    sent = json.dumps(rest)
    assert VAULT in sent and "tao-model-key" in sent and "ngc-api-key" in sent
    for text in [printed, *written.values()]:
        assert MODEL_KEY not in text and NGC_KEY not in text


def test_submit_refuses_a_secret_name_without_its_vault(tmp_path, capsys) -> None:
    assert main(["submit", "facenet", "--dry-run", "--root", str(REPO), "--output-dir", str(tmp_path / "b"),
                 "--gpu-compute", "my-gpu", "--cpu-compute", "my-cpu", "--set", "model_key_secret=tao-model-key"]) == 2
    assert ("--set model_key_secret=tao-model-key: on Azure ML the step reads this secret from Key Vault: set "
            "key_vault_url too") in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_a_key_of_your_own_given_as_key_is_masked_in_the_printout(tmp_path, capsys) -> None:
    assert main(["submit", "facenet", "--dry-run", "--root", str(REPO), "--output-dir", str(tmp_path / "b"),
                 "--gpu-compute", "my-gpu", "--cpu-compute", "my-cpu", "--set", f"key={MODEL_KEY}"]) == 0
    printed = capsys.readouterr().out
    assert MODEL_KEY not in printed
    assert "key = *** (a key of your own is stored in the job for every reader" in printed


def test_a_local_run_naming_a_secret_it_cannot_read_stops_before_anything_runs(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("TAO_MODEL_KEY", raising=False)
    monkeypatch.setenv("NGC_API_KEY", NGC_KEY)
    workdir = tmp_path / "work"
    assert main(["run", "facenet", "--local", "--no-docker", "--workdir", str(workdir), "--root", str(REPO),
                 "--set", "ngc_key_secret=ngc-api-key", "--set", "model_key_secret=tao-model-key"]) == 2
    err = capsys.readouterr().err
    assert ("--set model_key_secret=tao-model-key: a local run reads this key from environment variable "
            "TAO_MODEL_KEY, which is not set; export it") in err
    assert "ngc_key_secret" not in err and not workdir.exists()


DOCKER_ARGV_LOG = r'''#!{python}
import json, os, sys
with open({log!r}, "a") as handle:
    handle.write(json.dumps(sys.argv[1:]) + "\n")
os.execv({docker!r}, [{docker!r}, *sys.argv[1:]])
'''


def test_a_full_local_run_with_fake_keys_leaves_them_nowhere(
    tmp_path: Path, served, fake_docker: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    server, urls = served
    server.require_bearer("/v2/models/", NGC_KEY)
    monkeypatch.setenv("NGC_API_KEY", NGC_KEY)
    monkeypatch.setenv("TAO_MODEL_KEY", MODEL_KEY)
    monkeypatch.setenv("TAO_AML_NGC_API_BASE", server.base_url)
    # Every docker command line, as `tao-aml run` gives it, before the fake docker runs it.
    shim = tmp_path / "shim_bin"
    shim.mkdir()
    argv_log = tmp_path / "docker_argv.jsonl"
    docker = shim / "docker"
    docker.write_text(DOCKER_ARGV_LOG.format(python=sys.executable, log=str(argv_log),
                                             docker=str(tmp_path / "docker_bin" / "docker")))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", os.pathsep.join([str(shim), os.environ["PATH"]]))
    workdir = tmp_path / "work"
    assert main([*run_args(workdir, urls, "--set", "ngc_key_secret=ngc-api-key", "--set",
                           "model_key_secret=tao-model-key"), "-v"]) == 0
    out, err = capsys.readouterr()

    runs = [json.loads(line) for line in argv_log.read_text().splitlines()]
    containers = [argv for argv in runs if argv[:1] == ["run"]]
    assert containers and all("TAO_MODEL_KEY" in argv and "NGC_API_KEY" in argv for argv in containers)
    # The keys did their work: NGC saw its key, and TAO (its own process, its own -k) the model key.
    assert any(r.headers.get("authorization") == f"Bearer {NGC_KEY}" for r in server.requests)
    keyed = [call["argv"] for call in invocations(tmp_path / "tao.jsonl") if "--key" in call["argv"]]
    assert keyed and all(argv[argv.index("--key") + 1] == MODEL_KEY for argv in keyed)
    assert re.search(r"step train: python -m tao_aml\.steps\.detectnet_v2\.train .*--key \*\*\* ", caplog.text)

    leaks = {"output": out + err, "log": caplog.text, "docker argv": json.dumps(runs)}
    leaks.update({str(path): path.read_bytes().decode("utf-8", "replace")
                  for path in workdir.rglob("*") if path.is_file()})
    assert (workdir / "register_model" / "model" / "model_card.json").is_file()  # the model asset is among them
    for where, text in leaks.items():
        assert MODEL_KEY not in text and NGC_KEY not in text, where
