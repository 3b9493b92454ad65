"""Step: fetch a TAO model version from NGC's REST API, without the NGC CLI.

    python -m tao_aml.steps.data.ngc_model --model nvidia/tao/facenet:unpruned_v2.0 --output_dir DIR
        [--api_base https://api.ngc.nvidia.com] [--api_key_env NGC_API_KEY]
        [--connect_timeout S] [--read_timeout S] [--min_speed BYTES_PER_S] [--retries N] [--retry_wait S]

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
--api_key_env is sent as a bearer token, to the API host only: the listing must come from the API host
itself (a redirect elsewhere is refused), and a file's redirect to its signed storage URL is followed
without the key. The key is never logged or written anywhere.

The current listing (`modelFiles`) gives every file's size, and each file is checked against it; one
without a size, or a listing of another shape, is refused as an API change, naming the field. URLs
are fetched over https only (plain http only when --api_base is an http URL you gave, e.g. a mirror): a
listing URL or a redirect to any other scheme (file:, ftp:, ...) is refused. model_info.json is written
last, once every file is in place; an earlier run's is removed first, so a failed run leaves none. A
rerun on the same folder skips the download only when every file still has the sha256 model_info.json
records. Every request ends (http_client.py), and a file is resumed only when unchanged (http_fetch.py).
"""

import argparse
import json
import logging
import os
import posixpath
import re
import sys
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from tao_aml.steps import secret_refs
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.data import http_client, http_fetch

LOG = logging.getLogger("tao_aml.steps.data.ngc_model")

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
    parser = argparse.ArgumentParser(prog="python -m tao_aml.steps.data.ngc_model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="org/team/name:version, e.g. nvidia/tao/facenet:unpruned_v2.0")
    parser.add_argument("--output_dir", required=True, help="folder to put the model in")
    parser.add_argument("--api_base", default=os.environ.get("TAO_AML_NGC_API_BASE", "https://api.ngc.nvidia.com"),
                        help="NGC API root URL (default from TAO_AML_NGC_API_BASE, for mirrors and tests)")
    parser.add_argument("--api_key_env", default="NGC_API_KEY",
                        help="environment variable holding an NGC API key (only private models need one)")
    http_client.add_arguments(parser)
    secret_refs.add_ngc_key_arguments(parser)
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


def _access_error(err: http_client.FetchError, ref: ModelRef, env_name: str, key_given: bool,
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


MAX_PAGES = 100  # a TAO model version has a few files: one page


class _Listing:
    """One page of NGC's file listing, each field checked before it is used."""

    def __init__(self, body: bytes, url: str) -> None:
        self.shown = http_client.redact_url(url)
        try:
            document = json.loads(body.decode("utf-8"))
        except ValueError:
            raise StepError(f"NGC answered {self.shown} with something that is not JSON") from None
        if not isinstance(document, dict):
            raise StepError(f"NGC answered {self.shown} with unexpected JSON (not an object)")
        self.document = document
        status = self.field("requestStatus", dict, "an object", {}).get("statusCode", "SUCCESS")
        if status != "SUCCESS":
            raise StepError(f"NGC answered {self.shown} with status {http_client.printable(str(status), 80)}")

    def refuse(self, what: str) -> StepError:
        return StepError(f"NGC listing {self.shown} {what}; the API may have changed")

    def field(self, name: str, kind: type, what: str, default: Any = None) -> Any:
        value = self.document.get(name, default)
        if not isinstance(value, kind):
            raise self.refuse(f"has {name!r} that is not {what} ({type(value).__name__})")
        return value

    def path(self, value: Any, seen: Dict[str, str]) -> str:
        """A listed file's path, safe to join to the model folder and listed once."""
        clean = value.replace("\\", "/").lstrip("/") if isinstance(value, str) else ""
        if not clean or ".." in clean.split("/") or re.match(r"^[A-Za-z]:", clean) \
                or any(not ch.isprintable() for ch in clean):
            raise StepError(f"NGC listing {self.shown} names an unsafe file path {value!r}")
        clean = posixpath.normpath(clean)
        if clean in seen:
            raise StepError(f"NGC listing {self.shown} names {clean!r} twice ({seen[clean]!r} and {value!r})")
        seen[clean] = value
        return clean

    def pages(self) -> int:
        info = self.field("paginationInfo", dict, "an object", {})
        pages = info.get("totalPages", 1)
        if isinstance(pages, bool) or not isinstance(pages, int) or not 1 <= pages <= MAX_PAGES:
            raise self.refuse(f"gives totalPages {pages!r}, not a number of pages from 1 to {MAX_PAGES}")
        return pages


def _page_files(listing: _Listing, base_url: str, allow_http: bool,
                seen: Dict[str, str]) -> List[Tuple[str, str, Optional[int], bool]]:
    """The files one listing page names, as list_files returns them."""
    files: List[Tuple[str, str, Optional[int], bool]] = []
    if "modelFiles" in listing.document:  # current storage: download through the API, which redirects
        for entry in listing.field("modelFiles", list, "a list"):
            if not isinstance(entry, dict):
                raise StepError(f"NGC listing {listing.shown} has a modelFiles entry that is not an object")
            rel = listing.path(entry.get("path"), seen)
            size = entry.get("sizeInBytes")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise listing.refuse(f"gives {rel!r} no size in bytes (sizeInBytes: {size!r})")
            files.append((rel, base_url + "/" + urllib.parse.quote(rel), size, True))
    elif "urls" in listing.document and "filepath" in listing.document:  # older storage: signed URLs, no key
        paths, signed = listing.field("filepath", list, "a list"), listing.field("urls", list, "a list")
        if len(signed) != len(paths):
            raise StepError(f"NGC listing {listing.shown} has different numbers of file paths and URLs")
        for value, url in zip(paths, signed):
            rel = listing.path(value, seen)
            problem = http_client.scheme_problem(url, allow_http) if isinstance(url, str) else "it is not a string"
            if problem:
                shown = http_client.redact_url(url) if isinstance(url, str) else repr(url)
                raise StepError(f"NGC listing {listing.shown} gives {rel!r} the URL {shown}; refused: {problem}")
            files.append((rel, url, None, False))
    else:
        raise listing.refuse("has neither 'modelFiles' nor 'urls'/'filepath'")
    return files


def list_files(ref: ModelRef, api_base: str, token: Optional[str],
               settings: http_client.Settings) -> List[Tuple[str, str, Optional[int], bool]]:
    """The version's files as (relative path, download URL, size or None, send token?)."""
    base_url = ref.files_url(api_base)
    allow_http = urllib.parse.urlsplit(api_base).scheme == "http"
    files: List[Tuple[str, str, Optional[int], bool]] = []
    seen: Dict[str, str] = {}
    page, pages = 0, 1
    while page < pages:
        url = base_url if page == 0 else f"{base_url}?page-number={page}"
        listing = _Listing(http_client.get_bytes(url, settings, token, allow_http=allow_http), url)
        files += _page_files(listing, base_url, allow_http, seen)
        pages = listing.pages()
        page += 1
    if not files:
        raise StepError(f"NGC lists no files for {ref.text} at {http_client.redact_url(base_url)}")
    return files


def _main_model_file(relpaths: List[str], ref: ModelRef) -> str:
    candidates = [p for p in relpaths if p.lower().endswith(MODEL_EXTENSIONS)]
    if len(candidates) != 1:
        raise StepError(f"{ref.text}: expected exactly one {'/'.join(MODEL_EXTENSIONS)} file to train "
                        f"from, found {len(candidates)} among {relpaths}")
    return candidates[0]


def _already_present(output_dir: str, ref: ModelRef) -> Optional[Dict[str, Any]]:
    """model_info.json of an earlier run for the same model whose files all still have their sha256."""
    try:
        with open(os.path.join(output_dir, INFO_FILE), encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("model") != ref.text:
        return None
    sha256s, sizes = info.get("sha256s"), info.get("bytes")
    if not isinstance(sha256s, dict) or not isinstance(sizes, dict) or not sizes or set(sha256s) != set(sizes):
        return None
    for rel, size in sizes.items():
        path = os.path.join(output_dir, *rel.split("/"))
        if not os.path.isfile(path) or os.path.getsize(path) != size \
                or http_fetch.sha256_of(path).hexdigest() != sha256s[rel]:
            LOG.info("%s is missing or changed since the earlier run: fetching %s again", rel, ref.text)
            return None
    return info


def run(args: argparse.Namespace) -> Dict[str, Any]:
    ref = ModelRef(args.model)
    api_base = args.api_base.rstrip("/")
    if http_client.scheme_problem(api_base, allow_http=True) or urllib.parse.urlsplit(api_base).query:
        raise StepError(f"--api_base {http_client.redact_url(api_base)!r} is not an http(s) URL such as "
                        "https://api.ngc.nvidia.com")
    settings = http_client.settings_from(args)
    output_dir = os.path.abspath(args.output_dir)
    done = _already_present(output_dir, ref)
    if done is not None:
        LOG.info("%s is already in %s (from an earlier run), skipping", ref.text, output_dir)
        return done
    info_path = os.path.join(output_dir, INFO_FILE)
    if os.path.exists(info_path):
        os.remove(info_path)  # another model's, or files since damaged: redone below
    token = secret_refs.ngc_key(args) or _api_key(args.api_key_env)
    key_source = args.ngc_key_secret or args.api_key_env  # a secret's name or a variable's, never the key
    LOG.info("fetching %s from %s (%s)", ref.text, http_client.redact_url(api_base),
             f"with the API key from {key_source}" if token else "no API key")
    try:
        files = list_files(ref, api_base, token, settings)
        relpaths = [rel for rel, _, _, _ in files]
        model_file = f"{ref.folder}/{_main_model_file(relpaths, ref)}"
        sha256s: Dict[str, str] = {}
        sizes: Dict[str, int] = {}
        for rel, url, size, send_token in files:
            local = f"{ref.folder}/{rel}"
            # NGC answers a file of the API with a redirect to a signed storage URL: followed, without the key.
            result = http_fetch.fetch(url, os.path.join(output_dir, *local.split("/")), settings, expected_size=size,
                                      bearer_token=token if send_token else None, follow_keyless=True,
                                      allow_http=urllib.parse.urlsplit(api_base).scheme == "http")
            sha256s[local] = result.sha256
            sizes[local] = result.size
    except http_client.FetchError as err:
        raise _access_error(err, ref, key_source, token is not None, api_base) from None
    info = {
        "model": ref.text, "org": ref.org, "team": ref.team, "name": ref.name, "version": ref.version,
        "folder": ref.folder, "files": sorted(sha256s), "sha256s": sha256s, "bytes": sizes,
        "model_file": model_file, "source": http_client.redact_url(ref.files_url(api_base)),
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
