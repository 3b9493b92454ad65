"""Step: download files over HTTP(S) into a folder and unpack zip / tar archives there.

    python -m tao_aml.steps.download --urls URL[,URL...] --output_dir DIR
        [--sha256 HEX[,HEX...]] [--extract true|false] [--keep_archives true|false] [--retries 5]

Each URL's file is saved under its own name (the last part of the URL path). Archives are unpacked
into the output folder and then deleted unless --keep_archives true. A marker per file in
`<output_dir>/.download_markers/` records what was done (URL, sha256, size), so a rerun on the same
output skips both download and extraction. `<output_dir>/download_manifest.json` is written last.
URLs are logged and recorded without their query string (it may hold a signature).
"""

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import urllib.parse
import zipfile
from typing import Any, Dict, List, Optional

from tao_aml.steps import http_fetch
from tao_aml.steps.cli_types import boolean
from tao_aml.steps.common import StepError, atomic_write_text, run_main

LOG = logging.getLogger("tao_aml.steps.download")

MARKER_DIR = ".download_markers"
MANIFEST = "download_manifest.json"
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tao_aml.steps.download", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--urls", required=True, help="comma-separated http(s) URLs")
    parser.add_argument("--output_dir", required=True, help="folder to download and extract into")
    parser.add_argument("--sha256", default="",
                        help="comma-separated sha256 checksums, one per URL in the same order "
                             "(leave a position empty to skip that file's check)")
    parser.add_argument("--extract", type=boolean, default=True,
                        help="unpack zip/tar archives into output_dir (default true)")
    parser.add_argument("--keep_archives", type=boolean, default=False,
                        help="keep an archive after unpacking it (default false: delete it)")
    parser.add_argument("--provided_data", default=None,
                        help="data already in place: when given, nothing is downloaded")
    parser.add_argument("--retries", type=int, default=5, help="retries per file on transient errors")
    parser.add_argument("--retry_wait", type=float, default=2.0,
                        help="seconds before the first retry; doubles each time (max 60)")
    return parser


def _file_name(url: str) -> str:
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not name or name in (".", "..") or name.startswith(".") or name == MANIFEST:
        raise StepError(f"cannot name a file after URL {http_fetch.redact_url(url)}: its path must end "
                        "in a file name (such as .../WIDER_train.zip)")
    return name


class Item:
    """One file to fetch: its URL, expected checksum (if given) and local name."""

    def __init__(self, url: str, sha256: Optional[str], name: str) -> None:
        self.url = url
        self.sha256 = sha256
        self.name = name


def plan(urls_arg: str, sha_arg: str) -> List[Item]:
    """Check --urls and --sha256 and pair them up."""
    urls = [u.strip() for u in urls_arg.split(",")]
    if not any(urls):
        raise StepError("--urls is empty: give one or more http(s) URLs separated by commas")
    for position, url in enumerate(urls, 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StepError(f"--urls entry {position} ({http_fetch.redact_url(url) if url else 'empty'}) "
                            "is not an http(s) URL")
    shas: List[Optional[str]] = [None] * len(urls)
    if sha_arg.strip():
        given = [s.strip() for s in sha_arg.split(",")]
        if len(given) != len(urls):
            raise StepError(f"--sha256 has {len(given)} entries but --urls has {len(urls)}: give one "
                            "checksum per URL, in the same order (an empty entry skips a check)")
        for index, sha in enumerate(given):
            if sha and not SHA256_RE.match(sha):
                raise StepError(f"--sha256 entry {index + 1} (for {http_fetch.redact_url(urls[index])}) "
                                f"is not a 64-digit hex sha256: {sha!r}")
            shas[index] = sha.lower() or None
    items: List[Item] = []
    seen: Dict[str, str] = {}
    for index, url in enumerate(urls):
        name = _file_name(url)
        if name in seen:
            raise StepError(f"two URLs would be saved as the same file {name!r}: {seen[name]} and "
                            f"{http_fetch.redact_url(url)}")
        seen[name] = http_fetch.redact_url(url)
        items.append(Item(url, shas[index], name))
    return items


def _member_target(dest: str, name: str, archive: str) -> str:
    """Where an archive member goes; refuses names that would land outside `dest`."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in clean.split("/"):
        raise StepError(f"{archive}: refusing member {name!r}: its path leaves the output folder")
    root = os.path.realpath(dest)
    target = os.path.realpath(os.path.join(root, clean))
    if target != root and not target.startswith(root + os.sep):
        raise StepError(f"{archive}: refusing member {name!r}: it resolves outside the output folder")
    return target


def _extract_zip(path: str, dest: str) -> int:
    label = os.path.basename(path)
    with zipfile.ZipFile(path) as archive:
        # Every member is checked before anything is written.
        planned = [(info, _member_target(dest, info.filename, label)) for info in archive.infolist()]
        count = 0
        for info, target in planned:
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, http_fetch.CHUNK)
            count += 1
    return count


def _extract_tar(path: str, dest: str) -> int:
    label = os.path.basename(path)
    with tarfile.open(path, "r:*") as archive:
        planned = []
        for member in archive.getmembers():  # all checked before anything is written
            if not (member.isdir() or member.isfile()):
                raise StepError(f"{label}: refusing member {member.name!r}: only plain files and "
                                "folders are extracted (links and devices are not)")
            planned.append((member, _member_target(dest, member.name, label)))
        count = 0
        for member, target in planned:
            if member.isdir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            src = archive.extractfile(member)
            if src is None:  # cannot happen for a regular file; keeps the type checker honest
                raise StepError(f"{label}: cannot read member {member.name!r}")
            with src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, http_fetch.CHUNK)
            count += 1
    return count


def extract(path: str, dest: str) -> Optional[int]:
    """Unpack a zip or tar (any compression) into dest; number of files, or None if not an archive."""
    try:
        if zipfile.is_zipfile(path):
            LOG.info("%s: extracting zip into %s", os.path.basename(path), dest)
            return _extract_zip(path, dest)
        if tarfile.is_tarfile(path):
            LOG.info("%s: extracting tar into %s", os.path.basename(path), dest)
            return _extract_tar(path, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        raise StepError(f"cannot extract {path}: {err}") from None
    return None


def _url_key(url: str) -> str:
    # The full URL may hold a signature: the marker keeps a hash of it, never the URL itself.
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _marker_path(output_dir: str, name: str) -> str:
    return os.path.join(output_dir, MARKER_DIR, name + ".json")


def _done_before(output_dir: str, item: Item, do_extract: bool) -> Optional[Dict[str, Any]]:
    """The marker of an earlier run that did exactly this work, if its results are still there."""
    path = _marker_path(output_dir, item.name)
    try:
        with open(path, encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    if marker.get("url_key") != _url_key(item.url) or marker.get("extract") != do_extract:
        return None
    if item.sha256 and marker.get("sha256") != item.sha256:
        return None
    if marker.get("file_kept"):
        kept = os.path.join(output_dir, item.name)
        if not os.path.isfile(kept) or os.path.getsize(kept) != marker.get("bytes"):
            return None
    return marker


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    items = plan(args.urls, args.sha256)
    if args.provided_data:
        # A pipeline step cannot be skipped, so the step that would download records why it did not.
        if not os.path.isdir(args.provided_data):
            raise StepError("--provided_data {} is not a folder".format(args.provided_data))
        LOG.info("data provided at %s: nothing downloaded", args.provided_data)
        os.makedirs(args.output_dir, exist_ok=True)
        atomic_write_text(os.path.join(args.output_dir, MANIFEST),
                          json.dumps({"downloads": [], "provided_data": args.provided_data}, indent=2) + "\n")
        return []
    if args.retries < 0:
        raise StepError(f"--retries must be 0 or more, got {args.retries}")
    output_dir = os.path.abspath(args.output_dir)
    os.makedirs(os.path.join(output_dir, MARKER_DIR), exist_ok=True)
    entries: List[Dict[str, Any]] = []
    for item in items:
        url, name = item.url, item.name
        shown = http_fetch.redact_url(url)
        marker = _done_before(output_dir, item, args.extract)
        if marker is not None:
            LOG.info("%s: already done by an earlier run (%s), skipping", shown, name)
            entries.append(dict(marker["entry"], skipped=True))
            continue
        marker_path = _marker_path(output_dir, name)
        if os.path.exists(marker_path):
            os.unlink(marker_path)  # stale: this file is being redone
        dest = os.path.join(output_dir, name)
        result = http_fetch.fetch(url, dest, expected_sha256=item.sha256, retries=args.retries,
                                  retry_wait=args.retry_wait)
        files: Optional[int] = None
        if args.extract:
            files = extract(dest, output_dir)
            if files is None:
                LOG.info("%s is not a zip or tar archive; kept as downloaded", name)
            else:
                LOG.info("%s: extracted %d files", name, files)
        file_kept = files is None or args.keep_archives
        if not file_kept:
            os.unlink(dest)
        entry = {"url": shown, "file": name, "sha256": result.sha256, "bytes": result.size,
                 "extracted": files is not None, "extracted_files": files or 0, "file_kept": file_kept,
                 "skipped": False}
        atomic_write_text(marker_path, json.dumps(
            {"url_key": _url_key(url), "sha256": result.sha256, "bytes": result.size,
             "extract": args.extract, "file_kept": file_kept, "entry": entry}, indent=2))
        entries.append(entry)
    atomic_write_text(os.path.join(output_dir, MANIFEST), json.dumps({"downloads": entries}, indent=2) + "\n")
    LOG.info("wrote %s (%d entries)", os.path.join(output_dir, MANIFEST), len(entries))
    return entries


def _body(argv: Optional[List[str]]) -> None:
    run(build_parser().parse_args(argv))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_body, argv)


if __name__ == "__main__":
    sys.exit(main())
