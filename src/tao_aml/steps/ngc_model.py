"""Step: fetch a TAO model version from NGC's REST API, without the NGC CLI.

    python -m tao_aml.steps.ngc_model --model nvidia/tao/facenet:unpruned_v2.0 --output_dir DIR
        [--api_base https://api.ngc.nvidia.com] [--api_key_env NGC_API_KEY] [--retries 5]

The files land where `ngc registry model download-version --dest DIR` puts them:
`DIR/<name>_v<version>/...` (e.g. `facenet_vunpruned_v2.0/model.tlt`). `DIR/model_info.json`
records the model, the files with their sha256 and size, and `model_file`: the single
`.tlt`/`.hdf5` file, relative to DIR, which the TAO steps load.

API used (the one behind `ngc registry model download-version` and the catalog's wget links):
  GET {api}/v2/models/{org}[/{team}]/{name}/versions/{version}/files
      -> {"modelFiles": [{"path", "sizeInBytes"}, ...]}, each file then fetched from
         .../files/{path}, which redirects to a signed storage URL; or, for older storage,
      -> {"filepath": [...], "urls": [signed URL, ...]}.
Public models need no key. For private ones the key in the environment variable named by
--api_key_env is sent as a bearer token, to the API host only (never to the storage host it
redirects to), and it is never logged or written anywhere.

The current listing (`modelFiles`) gives every file's size, and each file is checked against it; one
without a size is refused as an API change. URLs are fetched over https only (plain
http only when --api_base is an http URL you gave, e.g. a mirror): a listing URL or a redirect to any
other scheme (file:, ftp:, ...) is refused. model_info.json is written last, once every file is in
place; an earlier run's is removed first, so a failed run leaves none.
"""

import argparse
import json
import logging
import os
import re
import sys
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from tao_aml.steps import http_fetch
from tao_aml.steps.common import StepError, atomic_write_text, run_main

LOG = logging.getLogger("tao_aml.steps.ngc_model")

INFO_FILE = "model_info.json"
MODEL_EXTENSIONS = (".tlt", ".hdf5")
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
MODEL_RE = re.compile(
    rf"^(?P<org>{_SEGMENT})/(?:(?P<team>{_SEGMENT})/)?(?P<name>{_SEGMENT}):(?P<version>[A-Za-z0-9][A-Za-z0-9_.+-]*)$"
)


class ModelRef:
    """A parsed `org/[team/]name:version`."""

    def __init__(self, text: str) -> None:
        match = MODEL_RE.match(text.strip())
        if not match:
            raise StepError(f"--model {text!r} is not an NGC model version: expected org/team/name:version "
                            "or org/name:version, e.g. nvidia/tao/facenet:unpruned_v2.0")
        self.text = text.strip()
        self.org: str = match.group("org")
        self.team: Optional[str] = match.group("team")
        self.name: str = match.group("name")
        self.version: str = match.group("version")

    @property
    def folder(self) -> str:
        """The NGC CLI's download folder name: <name>_v<version>."""
        return f"{self.name}_v{self.version}"

    def files_url(self, api_base: str) -> str:
        scope = f"{self.org}/{self.team}" if self.team else self.org
        quote = urllib.parse.quote
        return f"{api_base}/v2/models/{quote(scope)}/{quote(self.name)}/versions/{quote(self.version)}/files"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tao_aml.steps.ngc_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="org/team/name:version, e.g. nvidia/tao/facenet:unpruned_v2.0")
    parser.add_argument("--output_dir", required=True, help="folder to put the model in")
    parser.add_argument("--api_base", default=os.environ.get("TAO_AML_NGC_API_BASE", "https://api.ngc.nvidia.com"),
                        help="NGC API root URL (default from TAO_AML_NGC_API_BASE, for mirrors and tests)")
    parser.add_argument("--api_key_env", default="NGC_API_KEY",
                        help="environment variable holding an NGC API key (only private models need one)")
    parser.add_argument("--retries", type=int, default=5, help="retries per request on transient errors")
    parser.add_argument("--retry_wait", type=float, default=2.0,
                        help="seconds before the first retry; doubles each time (max 60)")
    return parser


def _api_key(env_name: str) -> Optional[str]:
    value = os.environ.get(env_name, "").strip()
    if not value:
        return None
    # A key with whitespace or control characters cannot go in a header; do not echo it.
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise StepError(f"the value of environment variable {env_name} contains whitespace or control "
                        "characters; it must be a single NGC API key")
    return value


def _access_error(err: http_fetch.FetchError, ref: ModelRef, env_name: str, key_given: bool,
                  api_base: str) -> StepError:
    """Turn an HTTP failure into advice the user can act on."""
    storage = err.url is not None and urllib.parse.urlsplit(err.url).netloc != urllib.parse.urlsplit(api_base).netloc
    if err.status in (401, 403) and storage:
        # The key never goes to the storage host: what it refused is the signed URL NGC handed out.
        return StepError(f"the storage host refused a download of {ref.text} ({err}); NGC's signed download "
                         "URLs are short-lived, so rerun the step to get fresh ones (the API key is not involved: "
                         "it is never sent to the storage host)")
    if err.status in (401, 403):
        if key_given:
            advice = (f"the API key in {env_name} was refused or has no access to this model; check "
                      "that it is a valid NGC key for the model's org")
        else:
            advice = (f"the model may be private: set environment variable {env_name} to an NGC API key "
                      "with access to it (or name another variable with --api_key_env)")
        return StepError(f"NGC refused access to {ref.text} ({err}); {advice}")
    if err.status == 404:
        return StepError(f"NGC has no model version {ref.text} ({err}); check --model against the "
                         "NGC catalog")
    return StepError(f"cannot fetch {ref.text} from NGC: {err}")


def _safe_relpath(path: str, listing_url: str) -> str:
    clean = path.replace("\\", "/").lstrip("/")
    if not clean or ".." in clean.split("/") or re.match(r"^[A-Za-z]:", clean):
        raise StepError(f"NGC listing {http_fetch.redact_url(listing_url)} names an unsafe file path "
                        f"{path!r}")
    return clean


def _signed_url(value: Any, rel: str, listing_url: str, allow_http: bool) -> str:
    url = str(value)
    problem = http_fetch.scheme_problem(url, allow_http)
    if problem:
        raise StepError(f"NGC listing {http_fetch.redact_url(listing_url)} gives {rel!r} the URL "
                        f"{http_fetch.redact_url(url)}; refused: {problem}")
    return url


def _listed_size(entry: Dict[str, Any], rel: str, listing_url: str) -> int:
    size = entry.get("sizeInBytes")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise StepError(f"NGC listing {http_fetch.redact_url(listing_url)} gives {rel!r} no size in bytes "
                        f"(sizeInBytes: {size!r}); the API may have changed")
    return size


def list_files(ref: ModelRef, api_base: str, token: Optional[str], retries: int,
               retry_wait: float) -> List[Tuple[str, str, Optional[int], bool]]:
    """The version's files as (relative path, download URL, size or None, send token?)."""
    base_url = ref.files_url(api_base)
    allow_http = urllib.parse.urlsplit(api_base).scheme == "http"
    files: List[Tuple[str, str, Optional[int], bool]] = []
    page, pages = 0, 1
    while page < pages:
        url = base_url if page == 0 else f"{base_url}?page-number={page}"
        body = http_fetch.get_bytes(url, token, retries=retries, retry_wait=retry_wait, allow_http=allow_http)
        shown = http_fetch.redact_url(url)
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            raise StepError(f"NGC answered {shown} with something that is not JSON") from None
        if not isinstance(document, dict):
            raise StepError(f"NGC answered {shown} with unexpected JSON (not an object)")
        status = (document.get("requestStatus") or {}).get("statusCode", "SUCCESS")
        if status != "SUCCESS":
            raise StepError(f"NGC answered {shown} with status {status}")
        if "modelFiles" in document:  # current storage: download through the API, which redirects
            for entry in document["modelFiles"]:
                if not isinstance(entry, dict):
                    raise StepError(f"NGC listing {shown} has a modelFiles entry that is not an object")
                rel = _safe_relpath(str(entry.get("path", "")), url)
                files.append((rel, base_url + "/" + urllib.parse.quote(rel), _listed_size(entry, rel, url), True))
        elif "urls" in document and "filepath" in document:  # older storage: signed URLs, no token
            paths, signed = document["filepath"], document["urls"]
            if len(signed) != len(paths):
                raise StepError(f"NGC listing {shown} has different numbers of file paths and URLs")
            for index, rel in enumerate(paths):
                clean = _safe_relpath(str(rel), url)
                files.append((clean, _signed_url(signed[index], clean, url, allow_http), None, False))
        else:
            raise StepError(f"NGC listing {shown} has neither 'modelFiles' nor 'urls'/'filepath'; "
                            "the API may have changed")
        pages = int((document.get("paginationInfo") or {}).get("totalPages") or 1)
        page += 1
    if not files:
        raise StepError(f"NGC lists no files for {ref.text} at {http_fetch.redact_url(base_url)}")
    return files


def _main_model_file(relpaths: List[str], ref: ModelRef) -> str:
    candidates = [p for p in relpaths if p.lower().endswith(MODEL_EXTENSIONS)]
    if len(candidates) != 1:
        raise StepError(f"{ref.text}: expected exactly one {'/'.join(MODEL_EXTENSIONS)} file to train "
                        f"from, found {len(candidates)} among {relpaths}")
    return candidates[0]


def _already_present(output_dir: str, ref: ModelRef) -> Optional[Dict[str, Any]]:
    """model_info.json of an earlier run for the same model whose files are all still there."""
    try:
        with open(os.path.join(output_dir, INFO_FILE), encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return None
    if info.get("model") != ref.text:
        return None
    for rel, size in (info.get("bytes") or {}).items():
        path = os.path.join(output_dir, rel)
        if not os.path.isfile(path) or os.path.getsize(path) != size:
            return None
    return info


def run(args: argparse.Namespace) -> Dict[str, Any]:
    ref = ModelRef(args.model)
    api_base = args.api_base.rstrip("/")
    parts = urllib.parse.urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise StepError(f"--api_base {api_base!r} is not an http(s) URL such as https://api.ngc.nvidia.com")
    if args.retries < 0:
        raise StepError(f"--retries must be 0 or more, got {args.retries}")
    output_dir = os.path.abspath(args.output_dir)
    done = _already_present(output_dir, ref)
    if done is not None:
        LOG.info("%s is already in %s (from an earlier run), skipping", ref.text, output_dir)
        return done
    info_path = os.path.join(output_dir, INFO_FILE)
    if os.path.exists(info_path):
        os.remove(info_path)  # another model's, or files since damaged: redone below
    token = _api_key(args.api_key_env)
    LOG.info("fetching %s from %s (%s)", ref.text, api_base,
             f"with the API key from {args.api_key_env}" if token else "no API key")
    try:
        files = list_files(ref, api_base, token, args.retries, args.retry_wait)
        relpaths = [rel for rel, _, _, _ in files]
        model_file = f"{ref.folder}/{_main_model_file(relpaths, ref)}"
        sha256s: Dict[str, str] = {}
        sizes: Dict[str, int] = {}
        for rel, url, size, send_token in files:
            local = f"{ref.folder}/{rel}"
            result = http_fetch.fetch(url, os.path.join(output_dir, *local.split("/")), expected_size=size,
                                      bearer_token=token if send_token else None,
                                      retries=args.retries, retry_wait=args.retry_wait,
                                      allow_http=parts.scheme == "http")
            sha256s[local] = result.sha256
            sizes[local] = result.size
    except http_fetch.FetchError as err:
        raise _access_error(err, ref, args.api_key_env, token is not None, api_base) from None
    info = {
        "model": ref.text, "org": ref.org, "team": ref.team, "name": ref.name, "version": ref.version,
        "folder": ref.folder, "files": sorted(sha256s), "sha256s": sha256s, "bytes": sizes,
        "model_file": model_file, "source": http_fetch.redact_url(ref.files_url(api_base)),
    }
    atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")
    LOG.info("%s: %d files in %s, model file %s", ref.text, len(sha256s), output_dir, model_file)
    return info


def _body(argv: Optional[List[str]]) -> None:
    run(build_parser().parse_args(argv))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_body, argv)


if __name__ == "__main__":
    sys.exit(main())
