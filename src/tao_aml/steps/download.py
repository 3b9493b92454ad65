"""Step: download files over HTTP(S) into a folder and unpack zip / tar archives there.

    python -m tao_aml.steps.download --urls URL[,URL...] --output_dir DIR
        [--sha256 HEX[,HEX...]] [--sizes BYTES[,BYTES...]] [--extract true|false]
        [--keep_archives true|false] [--allow_empty_archives true|false] [--retries 5]

Each URL's file is saved under its own name (the last part of the URL path). Only https URLs are
fetched, and http ones only where the list gives them: a redirect to plain http from an https URL, or
to any other scheme (file:, ftp:, ...), is refused. With --sizes or --sha256 each file is checked
against its entry; a server that states another size is refused before the download starts.

A file named as an archive (.zip, .tar, .tar.gz/.tgz, .tar.bz2/.tbz2, .tar.xz/.txz) must be a
complete archive of that kind: an HTML page, an empty file or a download cut short under such a name
is an error naming the URL and the bytes received, and the file is deleted. Every member's path is
checked before anything is written; the archive is extracted into a temporary folder inside the
output folder (zip members are checked against their CRC as they are written) and moved into place
only when complete, then deleted unless --keep_archives true. An archive without files is an error
unless --allow_empty_archives true. With --extract false an archive is read through once to check it.

A marker per file in `<output_dir>/.download_markers/`, written last for that file, records what was
done (a hash of the URL, the file's size and sha256), so a rerun on the same output skips both download
and extraction. `<output_dir>/download_manifest.json` is written once every file is done (an earlier
run's is removed first). URLs are logged and recorded without their query string (it may hold a
signature).
"""

import argparse
import hashlib
import json
import logging
import lzma
import os
import re
import shutil
import sys
import tarfile
import urllib.parse
import zipfile
import zlib
from typing import Any, Dict, List, Optional, Pattern, Tuple

from tao_aml.steps import http_fetch
from tao_aml.steps.cli_types import boolean
from tao_aml.steps.common import StepError, atomic_write_text, run_main

LOG = logging.getLogger("tao_aml.steps.download")

MARKER_DIR = ".download_markers"
MANIFEST = "download_manifest.json"
STAGING_PREFIX = ".extracting-"
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
SIZE_RE = re.compile(r"^[0-9]+$")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
# What a damaged, cut-off or mislabelled archive raises while it is read.
ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, EOFError, OSError, zlib.error,
                  lzma.LZMAError, NotImplementedError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tao_aml.steps.download", description=__doc__,
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


def archive_kind(name: str) -> Optional[str]:
    """'zip' or 'tar' for a file named as such an archive, else None."""
    lowered = name.lower()
    if lowered.endswith(".zip"):
        return "zip"
    if lowered.endswith(TAR_SUFFIXES):
        return "tar"
    return None


class Item:
    """One file to fetch: its URL, expected checksum and size (if given) and local name."""

    def __init__(self, url: str, sha256: Optional[str], size: Optional[int], name: str) -> None:
        self.url = url
        self.sha256 = sha256
        self.size = size
        self.name = name
        self.shown = http_fetch.redact_url(url)
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
            raise StepError(f"{option} entry {index + 1} (for {http_fetch.redact_url(urls[index])}) "
                            f"is not {what}: {entry!r}")
    return [entry or None for entry in given]


def plan(urls_arg: str, sha_arg: str, sizes_arg: str) -> List[Item]:
    """Check --urls, --sha256 and --sizes and pair them up."""
    urls = [u.strip() for u in urls_arg.split(",")]
    if not any(urls):
        raise StepError("--urls is empty: give one or more http(s) URLs separated by commas")
    for position, url in enumerate(urls, 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StepError(f"--urls entry {position} ({http_fetch.redact_url(url) if url else 'empty'}) "
                            "is not an http(s) URL")
    shas = _per_url("--sha256", sha_arg, urls, SHA256_RE, "a 64-digit hex sha256")
    sizes = _per_url("--sizes", sizes_arg, urls, SIZE_RE, "a size in bytes")
    items: List[Item] = []
    seen: Dict[str, str] = {}
    for index, url in enumerate(urls):
        name = _file_name(url)
        if name in seen:
            raise StepError(f"two URLs would be saved as the same file {name!r}: {seen[name]} and "
                            f"{http_fetch.redact_url(url)}")
        seen[name] = http_fetch.redact_url(url)
        sha, size = shas[index], sizes[index]
        items.append(Item(url, sha.lower() if sha else None, int(size) if size else None, name))
    return items


# ---------------------------------------------------------------------------------------------
# Archives


def _member_target(dest: str, name: str, archive: str) -> str:
    """Where an archive member goes; refuses names that would land outside `dest` or on the step's own files."""
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in clean.split("/"):
        raise StepError(f"{archive}: refusing member {name!r}: its path leaves the output folder")
    if clean.split("/")[0] in (MARKER_DIR, MANIFEST):
        raise StepError(f"{archive}: refusing member {name!r}: the step keeps its own records under that name")
    root = os.path.realpath(dest)
    target = os.path.realpath(os.path.join(root, clean))
    if target != root and not target.startswith(root + os.sep):
        raise StepError(f"{archive}: refusing member {name!r}: it resolves outside the output folder")
    return target


def _write_member(src: Any, target: str) -> None:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, http_fetch.CHUNK)


def _zip_files(path: str, staging: Optional[str], label: str) -> int:
    """Files in a zip, each read in full (zipfile checks its CRC); written under `staging` when given."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if staging is None:
            bad = archive.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"Bad CRC-32 for file {bad!r}")
            return sum(1 for info in members if not info.is_dir())
        # Every member is checked before anything is written.
        planned = [(info, _member_target(staging, info.filename, label)) for info in members]
        count = 0
        for info, target in planned:
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            _write_member(archive.open(info), target)
            count += 1
    return count


def _check_tar_end(archive: tarfile.TarFile) -> None:
    """tarfile stops quietly at the end of the data: a tar cut at a member boundary must still end in
    tar's end-of-archive block, and a compressed one must reach its compression trailer."""
    fileobj = archive.fileobj
    assert fileobj is not None  # an archive opened from a path always has one
    fileobj.seek(archive.offset)
    block = fileobj.read(tarfile.BLOCKSIZE)
    if len(block) != tarfile.BLOCKSIZE or block.count(0) != tarfile.BLOCKSIZE:
        raise tarfile.ReadError("the data ends without tar's end-of-archive block")
    while fileobj.read(http_fetch.CHUNK):
        pass


def _tar_files(path: str, staging: Optional[str], label: str) -> int:
    """Files in a tar (any compression), checked to its end; written under `staging` when given."""
    with tarfile.open(path, "r:*") as archive:
        members = archive.getmembers()  # reads through the whole archive
        _check_tar_end(archive)
        for member in members:  # all checked before anything is written
            if not (member.isdir() or member.isfile()):
                raise StepError(f"{label}: refusing member {member.name!r}: only plain files and "
                                "folders are extracted (links and devices are not)")
        files = [member for member in members if member.isfile()]
        if staging is None:
            return len(files)
        planned = [(member, _member_target(staging, member.name, label)) for member in members]
        for member, target in planned:
            if member.isdir():
                os.makedirs(target, exist_ok=True)
                continue
            src = archive.extractfile(member)
            if src is None:  # cannot happen for a regular file; keeps the type checker honest
                raise StepError(f"{label}: cannot read member {member.name!r}")
            _write_member(src, target)
    return len(files)


def _moves(staging: str, dest: str, label: str) -> List[Tuple[str, str]]:
    """(source, target) renames that put `staging`'s tree into `dest`: whole folders where `dest` has
    none yet, file by file inside folders it has. A file where a folder is (or the reverse) is refused."""
    moves = []
    for name in sorted(os.listdir(staging)):
        src, target = os.path.join(staging, name), os.path.join(dest, name)
        if os.path.isdir(src) and os.path.isdir(target) and not os.path.islink(target):
            moves += _moves(src, target, label)
        elif os.path.isdir(src) != os.path.isdir(target) and os.path.lexists(target):
            raise StepError(f"{label}: cannot put {name!r} in place: {target} is already there as a "
                            f"{'folder' if os.path.isdir(target) else 'file'}")
        else:
            moves.append((src, target))
    return moves


class _EmptyArchive(Exception):
    """An archive without any file, where none is allowed."""


def _unpack(kind: str, path: str, output_dir: str, extract: bool, allow_empty: bool, label: str) -> int:
    """Check (and with `extract`, extract) an archive; the number of files in it."""
    if not extract:
        count = _zip_files(path, None, label) if kind == "zip" else _tar_files(path, None, label)
        if count == 0 and not allow_empty:
            raise _EmptyArchive()
        return count
    staging = os.path.join(output_dir, STAGING_PREFIX + label)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    try:
        LOG.info("%s: extracting %s into %s", label, kind, output_dir)
        count = _zip_files(path, staging, label) if kind == "zip" else _tar_files(path, staging, label)
        if count == 0 and not allow_empty:
            raise _EmptyArchive()
        for src, target in _moves(staging, output_dir, label):  # all planned before the first rename
            os.replace(src, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count


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


def _done_before(output_dir: str, item: Item, do_extract: bool) -> Optional[Dict[str, Any]]:
    """The marker of an earlier run that did exactly this work, if its results are still there."""
    path = _marker_path(output_dir, item.name)
    try:
        with open(path, encoding="utf-8") as handle:
            marker = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("url_key") != _url_key(item.url) \
            or marker.get("extract") != do_extract:
        return None
    if item.sha256 and marker.get("sha256") != item.sha256:
        return None
    if item.size is not None and marker.get("bytes") != item.size:
        return None
    if marker.get("file_kept"):
        kept = os.path.join(output_dir, item.name)
        if not os.path.isfile(kept) or os.path.getsize(kept) != marker.get("bytes"):
            return None
    return marker


# ---------------------------------------------------------------------------------------------
# The step


def _download(item: Item, args: argparse.Namespace, output_dir: str) -> Dict[str, Any]:
    """Fetch, check and unpack one file; its manifest entry. On failure nothing of it looks done."""
    dest = os.path.join(output_dir, item.name)
    result = http_fetch.fetch(item.url, dest, expected_sha256=item.sha256, expected_size=item.size,
                              retries=args.retries, retry_wait=args.retry_wait, allow_http=item.allow_http)
    kind = archive_kind(item.name)
    files: Optional[int] = None
    if kind is None:
        LOG.info("%s is not named as an archive; kept as downloaded", item.name)
    else:
        try:
            files = _unpack(kind, dest, output_dir, args.extract, args.allow_empty_archives, item.name)
        except ARCHIVE_ERRORS as err:
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
        LOG.info("%s: %s %d files", item.name, "extracted" if args.extract else "checked", files)
    extracted = files is not None and args.extract
    file_kept = not extracted or args.keep_archives
    if not file_kept:
        os.unlink(dest)
    return {"url": item.shown, "file": item.name, "sha256": result.sha256, "bytes": result.size,
            "extracted": extracted, "extracted_files": files if extracted else 0, "file_kept": file_kept,
            "skipped": False}


def run(args: argparse.Namespace) -> List[Dict[str, Any]]:
    if args.provided_data:
        # A pipeline step cannot be skipped, so the step that would download records why it did not.
        if not os.path.isdir(args.provided_data):
            raise StepError("--provided_data {} is not a folder".format(args.provided_data))
        LOG.info("data provided at %s: nothing downloaded", args.provided_data)
        os.makedirs(args.output_dir, exist_ok=True)
        atomic_write_text(os.path.join(args.output_dir, MANIFEST),
                          json.dumps({"downloads": [], "provided_data": args.provided_data}, indent=2) + "\n")
        return []
    items = plan(args.urls, args.sha256, args.sizes)
    if args.retries < 0:
        raise StepError(f"--retries must be 0 or more, got {args.retries}")
    output_dir = os.path.abspath(args.output_dir)
    os.makedirs(os.path.join(output_dir, MARKER_DIR), exist_ok=True)
    manifest = os.path.join(output_dir, MANIFEST)
    if os.path.exists(manifest):
        os.remove(manifest)  # rewritten once every file is done
    for name in os.listdir(output_dir):  # left by a run that was killed while extracting
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
    entries: List[Dict[str, Any]] = []
    for item in items:
        marker = _done_before(output_dir, item, args.extract)
        if marker is not None:
            LOG.info("%s: already done by an earlier run (%s), skipping", item.shown, item.name)
            entries.append(dict(marker["entry"], skipped=True))
            continue
        marker_path = _marker_path(output_dir, item.name)
        if os.path.exists(marker_path):
            os.unlink(marker_path)  # stale: this file is being redone
        entry = _download(item, args, output_dir)
        # Written last: its presence says the file was fetched, checked and put in place.
        atomic_write_text(marker_path, json.dumps(
            {"url_key": _url_key(item.url), "sha256": entry["sha256"], "bytes": entry["bytes"],
             "extract": args.extract, "file_kept": entry["file_kept"], "entry": entry}, indent=2))
        entries.append(entry)
    atomic_write_text(manifest, json.dumps({"downloads": entries}, indent=2) + "\n")
    LOG.info("wrote %s (%d entries)", manifest, len(entries))
    return entries


def _body(argv: Optional[List[str]]) -> None:
    run(build_parser().parse_args(argv))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_body, argv)


if __name__ == "__main__":
    sys.exit(main())
