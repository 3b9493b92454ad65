"""Step: download files over HTTP(S) into a folder and unpack zip / tar archives there.

    python -m tao_aml.steps.data.download --urls URL[,URL...] --output_dir DIR
        [--sha256 HEX[,HEX...]] [--sizes BYTES[,BYTES...]] [--extract true|false]
        [--keep_archives true|false] [--allow_empty_archives true|false]
        [--max_extracted_bytes N] [--max_ratio R] [--provided_data DIR]
        [--connect_timeout S] [--read_timeout S] [--min_speed BYTES_PER_S] [--retries N] [--retry_wait S]

Each URL's file is saved under its own name (the last part of the URL path). Only https URLs are
fetched, and http ones only where the list gives them: a redirect to plain http from an https URL, or
to any other scheme (file:, ftp:, ...), is refused. With --sizes or --sha256 each file is checked
against its entry; a server that states another size is refused before the download starts, and one
that sends more is cut off. Every request ends: see http_client.py (time limits) and http_fetch.py (resuming).

A file named as an archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2/.tbz2, .tar.xz/.txz) must be a
complete archive of that kind: an HTML page, an empty file or a download cut short under such a name
is an error naming the URL and the bytes received, and the file is deleted. Every member is checked
before anything is written (archives.py: paths, duplicates, files another download verified, and
--max_extracted_bytes and --max_ratio against zip bombs); the archive is extracted into a temporary
folder inside the output folder and moved into place only when complete, then deleted unless
--keep_archives true. An archive without files is an error unless --allow_empty_archives true. With
--extract false an archive is read through once to check it.

A marker per file in `<output_dir>/.download_markers/`, written last for that file, records what was
done (a hash of the URL, the file's size and sha256, and the size and sha256 of every file it left), so
a rerun on the same output skips a file whose results all still have those sha256s, and redoes it
otherwise. `<output_dir>/SHA256SUMS` lists the sha256 of every file the downloads left, and
`<output_dir>/download_manifest.json` is written last, once every file is done (an earlier run's is
removed first). With --provided_data (a data asset an earlier run made), nothing is downloaded and every
file its SHA256SUMS lists is checked. URLs are logged and recorded without user info or query string
(either may hold a secret).
"""

import argparse
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import urllib.parse
from typing import Any, Dict, List, Optional, Pattern, Tuple

from tao_aml.steps.cli_types import boolean
from tao_aml.steps.common import StepError, atomic_write_text, run_main
from tao_aml.steps.data import archives, http_client, http_fetch, sha256sums

LOG = logging.getLogger("tao_aml.steps.data.download")

MARKER_DIR = ".download_markers"
MANIFEST = "download_manifest.json"
STAGING_PREFIX = ".extracting-"
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
SIZE_RE = re.compile(r"^[0-9]+$")
# COCO's train2017.zip extracts to 18 GiB; an archive may hold up to 100 times its size (COCO's
# annotations zip holds 3.2 times, a zip bomb thousands).
MAX_EXTRACTED_BYTES = 64 * 1024 ** 3
MAX_RATIO = 100.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tao_aml.steps.data.download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", required=True, help="comma-separated http(s) URLs")
    parser.add_argument("--output_dir", required=True, help="folder to download and extract into")
    parser.add_argument("--sha256", default="",
                        help="comma-separated sha256 checksums, one per URL in the same order "
                             "(leave a position empty to skip that file's check)")
    parser.add_argument("--sizes", default="",
                        help="comma-separated sizes in bytes, one per URL in the same order "
                             "(leave a position empty to skip that file's check)")
    parser.add_argument("--extract", type=boolean, default=True,
                        help="unpack zip/tar archives into output_dir (default true)")
    parser.add_argument("--keep_archives", type=boolean, default=False,
                        help="keep an archive after unpacking it (default false: delete it)")
    parser.add_argument("--allow_empty_archives", type=boolean, default=False,
                        help="accept an archive that holds no files (default false: an error)")
    parser.add_argument("--provided_data", default=None,
                        help="data already in place: when given, nothing is downloaded")
    parser.add_argument("--max_extracted_bytes", type=int, default=MAX_EXTRACTED_BYTES,
                        help="most bytes one archive may extract (default %(default)s: 64 GiB)")
    parser.add_argument("--max_ratio", type=float, default=MAX_RATIO,
                        help="most bytes one archive may extract per byte of its own (default %(default)s)")
    http_client.add_arguments(parser)
    return parser


def _file_name(url: str) -> str:
    """The name a URL's file is saved under: the last part of its path, unquoted, a plain file name."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name.startswith(".") or _reserved(name) or "\\" in name or "/" in name \
            or any(not ch.isprintable() for ch in name):
        raise StepError(f"cannot name a file after URL {http_client.redact_url(url)}: its path must end "
                        "in a plain file name (such as .../WIDER_train.zip), without control characters or "
                        "slashes")
    return name


def _reserved(name: str) -> bool:
    """Whether a top-level name in the output folder is the step's own."""
    return name in (MARKER_DIR, MANIFEST, sha256sums.NAME) or name.startswith(STAGING_PREFIX)


class Item:
    """One file to fetch: its URL, expected checksum and size (if given) and local name."""

    def __init__(self, url: str, sha256: Optional[str], size: Optional[int], name: str) -> None:
        self.url = url
        self.sha256 = sha256
        self.size = size
        self.name = name
        self.shown = http_client.redact_url(url)
        # Plain http only for a URL the user gave as http, and for its redirects.
        self.allow_http = urllib.parse.urlsplit(url).scheme == "http"


def _per_url(option: str, text: str, urls: List[str], pattern: Pattern[str], what: str) -> List[Optional[str]]:
    """One entry per URL (empty entries skip that URL's check), each matching `pattern`."""
    if not text.strip():
        return [None] * len(urls)
    given = [entry.strip() for entry in text.split(",")]
    if len(given) != len(urls):
        raise StepError(f"{option} has {len(given)} entries but --urls has {len(urls)}: give one "
                        f"{what} per URL, in the same order (an empty entry skips a check)")
    for index, entry in enumerate(given):
        if entry and not pattern.match(entry):
            raise StepError(f"{option} entry {index + 1} (for {http_client.redact_url(urls[index])}) "
                            f"is not {what}: {entry!r}")
    return [entry or None for entry in given]


def plan(urls_arg: str, sha_arg: str, sizes_arg: str) -> List[Item]:
    """Check --urls, --sha256 and --sizes and pair them up."""
    urls = [u.strip() for u in urls_arg.split(",")]
    if not any(urls):
        raise StepError("--urls is empty: give one or more http(s) URLs separated by commas")
    for position, url in enumerate(urls, 1):
        if http_client.scheme_problem(url, allow_http=True):
            raise StepError(f"--urls entry {position} ({http_client.redact_url(url) if url else 'empty'}) "
                            "is not an http(s) URL")
    shas = _per_url("--sha256", sha_arg, urls, SHA256_RE, "a 64-digit hex sha256")
    sizes = _per_url("--sizes", sizes_arg, urls, SIZE_RE, "a size in bytes")
    items: List[Item] = []
    seen: Dict[str, str] = {}
    for index, url in enumerate(urls):
        name = _file_name(url)
        if name in seen:
            raise StepError(f"two URLs would be saved as the same file {name!r}: {seen[name]} and "
                            f"{http_client.redact_url(url)}")
        seen[name] = http_client.redact_url(url)
        sha, size = shas[index], sizes[index]
        items.append(Item(url, sha.lower() if sha else None, int(size) if size else None, name))
    return items


# ---------------------------------------------------------------------------------------------
# Archives


class _EmptyArchive(Exception):
    """An archive without any file, where none is allowed."""


def _unpack(kind: str, path: str, output_dir: str, args: argparse.Namespace, label: str,
            protected: Dict[str, str]) -> Tuple[int, archives.Files]:
    """Check (and with --extract, extract) an archive; (files in it, files extracted with size and sha256)."""
    limits = archives.Limits(args.max_extracted_bytes, args.max_ratio)
    if not args.extract:
        count, _ = archives.unpack(kind, path, None, label, limits, _reserved, protected)
        if count == 0 and not args.allow_empty_archives:
            raise _EmptyArchive()
        return count, {}
    staging = os.path.join(output_dir, STAGING_PREFIX + label)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        LOG.info("%s: extracting %s into %s", label, kind, output_dir)
        count, written = archives.unpack(kind, path, staging, label, limits, _reserved, protected)
        if count == 0 and not args.allow_empty_archives:
            raise _EmptyArchive()
        archives.place(staging, output_dir, label)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count, written


def _describe_bad_archive(item: Item, kind: str, path: str, result: http_fetch.FetchResult, err: Exception) -> str:
    with open(path, "rb") as handle:
        head = handle.read(64)
    received = f"{result.size} bytes received"
    if not head:
        problem = f"is empty ({received}), not a {kind} archive"
    elif head.lstrip()[:1] == b"<":
        problem = (f"is an HTML or XML page ({received}, starting {head.lstrip()[:24]!r}), not a {kind} "
                   "archive: the server answered with an error or sign-in page")
    else:
        cut = "" if result.length_given else "; the server gave no length, so the download was probably cut short"
        problem = f"is not a complete {kind} archive ({received}{cut}): {err}"
    return f"{item.shown}: {item.name} {problem}; the file was deleted, rerun to download it again"


# ---------------------------------------------------------------------------------------------
# Markers


def _url_key(url: str) -> str:
    # The full URL may hold a signature: the marker keeps a hash of it, never the URL itself.
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _marker_path(output_dir: str, name: str) -> str:
    return os.path.join(output_dir, MARKER_DIR, name + ".json")


def _marker(output_dir: str, item: Item) -> Optional[Dict[str, Any]]:
    """The marker an earlier run wrote for this URL's file, if it is one this version can read."""
    try:
        with open(_marker_path(output_dir, item.name), encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("url_key") != _url_key(item.url) \
            or not isinstance(marker.get("files"), dict) or not isinstance(marker.get("entry"), dict):
        return None
    return marker


def _done_before(output_dir: str, item: Item, do_extract: bool) -> Optional[Dict[str, Any]]:
    """The marker of an earlier run that did exactly this work, if every file it left still has its sha256."""
    marker = _marker(output_dir, item)
    if marker is None or marker.get("extract") != do_extract:
        return None
    if item.sha256 and marker.get("sha256") != item.sha256:
        return None
    if item.size is not None and marker.get("bytes") != item.size:
        return None
    for rel, recorded in marker["files"].items():
        local = os.path.join(output_dir, *rel.split("/"))
        if not (isinstance(recorded, list) and len(recorded) == 2 and os.path.isfile(local)
                and os.path.getsize(local) == recorded[0] and http_fetch.sha256_of(local).hexdigest() == recorded[1]):
            LOG.info("%s: %s is missing or changed since the earlier run: redoing %s", item.shown, rel, item.name)
            return None
    return marker


def _verified_files(output_dir: str, items: List[Item], item: Item) -> Dict[str, str]:
    """Files the other downloads of this list left and verified, each with a few words on whose it is."""
    verified: Dict[str, str] = {}
    for other in items:
        marker = _marker(output_dir, other) if other is not item else None
        for rel in (marker or {}).get("files", {}):
            verified[rel] = f"a file verified with {other.name}"
    return verified


# ---------------------------------------------------------------------------------------------
# The step


def _download(item: Item, args: argparse.Namespace, settings: http_client.Settings, output_dir: str,
              items: List[Item]) -> Tuple[Dict[str, Any], archives.Files]:
    """Fetch, check and unpack one file; its manifest entry and the files it left (size, sha256).
    On failure nothing of it looks done."""
    verified = _verified_files(output_dir, items, item)
    if item.name in verified:
        raise StepError(f"{item.shown}: refusing to save it as {item.name}: that is {verified[item.name]}")
    dest = os.path.join(output_dir, item.name)
    result = http_fetch.fetch(item.url, dest, settings, expected_sha256=item.sha256, expected_size=item.size,
                              allow_http=item.allow_http)
    kind = archives.kind(item.name)
    count: Optional[int] = None
    files: archives.Files = {}
    if kind is None:
        LOG.info("%s is not named as an archive; kept as downloaded", item.name)
    else:
        # No member may replace a downloaded file (this one included) or a file another download verified.
        protected = dict(verified, **{other.name: f"the file downloaded from {other.shown}" for other in items})
        try:
            count, files = _unpack(kind, dest, output_dir, args, item.name, protected)
        except archives.ARCHIVE_ERRORS as err:
            message = _describe_bad_archive(item, kind, dest, result, err)
            os.unlink(dest)
            raise StepError(message) from None
        except _EmptyArchive:
            os.unlink(dest)
            raise StepError(f"{item.shown}: {item.name} is a {kind} archive without any file ({result.size} bytes "
                            "received); --allow_empty_archives true accepts that. The file was deleted") from None
        except StepError:
            os.unlink(dest)
            raise
        LOG.info("%s: %s %d files", item.name, "extracted" if args.extract else "checked", count)
    extracted = count is not None and args.extract
    file_kept = not extracted or args.keep_archives
    if file_kept:
        files[item.name] = (result.size, result.sha256)
    else:
        os.unlink(dest)
    entry = {"url": item.shown, "file": item.name, "sha256": result.sha256, "bytes": result.size,
             "extracted": extracted, "extracted_files": count if extracted else 0, "file_kept": file_kept,
             "skipped": False}
    return entry, files


def _check_provided(folder: str, output_dir: str) -> None:
    """Data an earlier run downloaded (a data asset): check every file against its SHA256SUMS, then record it."""
    # A pipeline step cannot be skipped, so the step that would download records why it did not.
    if not os.path.isdir(folder):
        raise StepError("--provided_data {} is not a folder".format(folder))
    checked = 0
    if os.path.isfile(os.path.join(folder, sha256sums.NAME)):
        checked = sha256sums.verify(folder)
    else:
        LOG.warning("%s has no %s (it was not made by this step): its files are not checked", folder,
                    sha256sums.NAME)
    LOG.info("data provided at %s: nothing downloaded", folder)
    os.makedirs(output_dir, exist_ok=True)
    atomic_write_text(os.path.join(output_dir, MANIFEST), json.dumps(
        {"downloads": [], "provided_data": folder, "checked_files": checked}, indent=2) + "\n")


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    settings = http_client.settings_from(args)
    for name in ("max_extracted_bytes", "max_ratio"):
        if not 0 < getattr(args, name) < math.inf:
            raise StepError(f"--{name} must be more than 0, got {getattr(args, name)}")
    if args.provided_data:
        _check_provided(args.provided_data, args.output_dir)
        return []
    items = plan(args.urls, args.sha256, args.sizes)
    output_dir = os.path.abspath(args.output_dir)
    os.makedirs(os.path.join(output_dir, MARKER_DIR), exist_ok=True)
    manifest = os.path.join(output_dir, MANIFEST)
    for done in (manifest, os.path.join(output_dir, sha256sums.NAME)):
        if os.path.exists(done):
            os.remove(done)  # rewritten once every file is done
    for name in os.listdir(output_dir):  # left by a run that was killed while extracting
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
    entries: List[Dict[str, Any]] = []
    sha256s: Dict[str, str] = {}
    for item in items:
        marker = _done_before(output_dir, item, args.extract)
        if marker is not None:
            LOG.info("%s: already done by an earlier run (%s, every file as it was), skipping", item.shown, item.name)
            entries.append(dict(marker["entry"], skipped=True))
            sha256s.update((rel, recorded[1]) for rel, recorded in marker["files"].items())
            continue
        marker_path = _marker_path(output_dir, item.name)
        if os.path.exists(marker_path):
            os.unlink(marker_path)  # stale: this file is being redone
        entry, files = _download(item, args, settings, output_dir, items)
        # Written last: its presence says the file was fetched, checked and put in place.
        atomic_write_text(marker_path, json.dumps(
            {"url_key": _url_key(item.url), "sha256": entry["sha256"], "bytes": entry["bytes"],
             "extract": args.extract, "file_kept": entry["file_kept"], "entry": entry,
             "files": {rel: list(recorded) for rel, recorded in files.items()}}))
        entries.append(entry)
        sha256s.update((rel, recorded[1]) for rel, recorded in files.items())
    sha256sums.write(output_dir, sha256s)
    atomic_write_text(manifest, json.dumps({"downloads": entries}, indent=2) + "\n")
    LOG.info("wrote %s and %s (%d entries, %d files)", sha256sums.NAME, manifest, len(entries), len(sha256s))
    return entries


def _body(argv: Optional[List[str]]) -> None:
    run(build_parser().parse_args(argv))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_body, argv)


if __name__ == "__main__":
    sys.exit(main())
