"""What each string input of a component may hold: one rule per kind, for every input by name.

The same rules run offline (`tao-aml validate`, `submit`, `run`: tao_aml/repo/input_rules.py) and in each
step's own parser (cli_types.py). Azure ML substitutes `${{inputs.x}}` into a component's command as
plain text and runs it in a shell (shared/facts/azureml.md), so every command wraps each input in
single quotes, and no kind allows a single quote, a newline or another control character: no allowed
value can end the quoted word or the command.
"""

import re
from typing import Dict, Optional, Pattern

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}"
_URL_CHARS = r"[A-Za-z0-9._~:/?#\[\]@!$&()*+;=%-]"
# https, or plain http to this machine only (a server a test or the user runs on 127.0.0.1).
_URL = r"(?:https://{0}+|http://(?:127\.0\.0\.1|localhost)(?::[0-9]+)?(?:/{0}*)?)".format(_URL_CHARS)
_NGC_MODEL = r"{0}/(?:{0}/)?{0}:[A-Za-z0-9][A-Za-z0-9_.+-]*".format(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HEX64 = r"[0-9a-fA-F]{64}"
_DECIMAL = r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
# One override: a field path (names, [index] or [key]) = a value without ';' (it separates overrides).
_OVERRIDE = r" *[A-Za-z_][A-Za-z0-9_.\[\]\"-]* *=[^;'\x00-\x1f\x7f]*"
# What no kind allows: what would end a single-quoted word or the command line.
_NEVER = re.compile(r"['\x00-\x1f\x7f]")


def _list_of(item: str, separator: str = ",") -> str:
    return "{0}(?: *{1} *{0})*".format(item, separator)


class Kind:
    """A rule: the whole value must match `pattern`; `rule` says it in words, for messages and the README."""

    def __init__(self, pattern: str, rule: str) -> None:
        self.pattern: Pattern[str] = re.compile(pattern)
        self.rule = rule

    def problem(self, text: str) -> Optional[str]:
        """Why `text` may not be a value of this kind, or None."""
        never = _NEVER.search(text)
        if never is not None:
            return "{!r} is not allowed in any input value, got {!r}".format(never.group(0), text)
        if self.pattern.fullmatch(text) is None:
            return "expected {}, got {!r}".format(self.rule, text)
        return None


KINDS: Dict[str, Kind] = {
    "name": Kind(_NAME, "a name: a letter or digit, then letters, digits, '_', '.' or '-' (at most 255)"),
    "names": Kind(_list_of(_NAME), "comma-separated names, each a letter or digit, then letters, digits, "
                                   "'_', '.' or '-' (e.g. car,cyclist)"),
    "file_name": Kind(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}",
                      "a file name in the specs folder: letters, digits, '_', '.' or '-', no folders"),
    "key": Kind(r"[A-Za-z0-9_.+/=:@-]{1,512}", "a key: letters, digits and _ . + / = : @ - (no spaces or quotes)"),
    "ngc_model": Kind(_NGC_MODEL, "an NGC model version org/team/name:version (e.g. nvidia/tao/facenet:unpruned_v2.0)"),
    "backbone": Kind("{}|{}".format(_NAME, _NGC_MODEL),
                     "a pretrained_detectnet_v2 version (e.g. resnet18) or its full NGC name org/team/name:version"),
    "https_urls": Kind(_list_of(_URL), "comma-separated https:// URLs (http:// only to 127.0.0.1 or localhost; "
                                       "no spaces, quotes or commas inside a URL)"),
    "sha256_list": Kind(_list_of("(?:{})?".format(_HEX64)),
                        "comma-separated sha256 checksums (64 hex digits; a position may be empty)"),
    "size_list": Kind(_list_of("(?:[0-9]+)?"), "comma-separated sizes in bytes (a position may be empty)"),
    "overrides": Kind(_list_of(_OVERRIDE, ";"), "spec overrides field.path=value separated by ';' "
                                                "(no quote ', no newline, no ';' inside a value)"),
    # Only what numbers and commas are written with; repo/sweep.py reads the items and names what is wrong.
    "number_list": Kind(r"[0-9.eE+,-]+", "comma-separated numbers: digits, '.', 'e', 'E', '+', '-' and ','"),
    "estimates": Kind(_list_of("[a-z_]+={}".format(_DECIMAL)), "comma-separated stage=hours (e.g. train=0.8)"),
    "compute": Kind(r"(?:azureml:)?[A-Za-z][A-Za-z0-9-]{1,31}",
                    "a compute name: a letter, then letters, digits or '-' (optionally azureml:name)"),
    # Key Vault: a vault name is 3-24 letters, digits and single hyphens, from a letter to a letter or digit;
    # a secret name 1-127 letters, digits and hyphens (Azure Key Vault naming rules). Secrets by reference
    # (steps/secret_refs.py).
    "key_vault_url": Kind(r"https://(?=[A-Za-z0-9-]{3,24}\.)[A-Za-z](?:-?[A-Za-z0-9])+"
                          r"\.vault\.(?:azure\.net|azure\.cn|usgovcloudapi\.net)/?",
                          "an Azure Key Vault URL https://<vault>.vault.azure.net/"),
    # Azure ML resources.shm_size (REST JobResourceConfiguration.shmSize): "<number><b|k|m|g>".
    "shm_size": Kind(r"[1-9][0-9]{0,9}[bkmg]", "a shared-memory size <number><b|k|m|g>, e.g. 16g"),
    "secret_name": Kind(r"[A-Za-z0-9-]{1,127}", "a Key Vault secret name: 1-127 letters, digits or '-'"),
    # Not inputs: names `tao-aml` takes on its command line and writes into a job or an image reference.
    "experiment": Kind(r"[A-Za-z0-9][A-Za-z0-9_-]{0,255}",
                       "an experiment name: a letter or digit, then letters, digits, '_' or '-' (at most 256)"),
    "container_registry": Kind(r"[A-Za-z0-9]{5,50}(?:\.azurecr\.(?:io|cn|us))?",
                               "an Azure container registry: 5-50 letters or digits, or its login server "
                               "<name>.azurecr.io"),
    "text": Kind(r"[^'\x00-\x1f\x7f]{1,200}",
                 "text of at most 200 characters without the quote ' or control characters (newline, tab)"),
    # An `enum` input: its port lists the values; each listed value must be one of these.
    "choice": Kind(r"[A-Za-z0-9_.:/+-]{1,255}", "one of the input's listed values"),
}

# Every string input of every component, pipeline component and run setting, by name.
INPUTS: Dict[str, str] = {
    "backbone": "backbone",
    "class_name": "name",
    "model_name": "name",
    "gpu_instance_type": "name",
    "cpu_instance_type": "name",
    "shm_size": "shm_size",
    "classes": "names",
    "spec_file": "file_name",
    "train_spec_file": "file_name",
    "infer_spec_file": "file_name",
    "coco_spec_file": "file_name",
    "pose_config_file": "file_name",
    "key": "key",
    "model": "ngc_model",
    "pretrained_model": "ngc_model",
    "urls": "https_urls",
    "wider_urls": "https_urls",
    "coco_urls": "https_urls",
    "sha256": "sha256_list",
    "wider_sha256": "sha256_list",
    "sizes": "size_list",
    "wider_sizes": "size_list",
    "coco_sizes": "size_list",
    "overrides": "overrides",
    "train_overrides": "overrides",
    "retrain_overrides": "overrides",
    "inference_overrides": "overrides",
    "gpu_hours_estimate": "estimates",
    "pruning_thresholds": "number_list",
    "gpu_compute": "compute",
    "cpu_compute": "compute",
    "title": "text",
    "key_vault_url": "key_vault_url",
    "ngc_key_secret": "secret_name",
    "model_key_secret": "secret_name",
}


def problem(input_name: str, text: str) -> Optional[str]:
    """Why `text` may not be a value of the string input `input_name`, or None; an input with no kind is refused."""
    kind = INPUTS.get(input_name)
    if kind is None:
        return "string input {} declares no kind (tao_aml/steps/input_kinds.py INPUTS)".format(input_name)
    return KINDS[kind].problem(text)
