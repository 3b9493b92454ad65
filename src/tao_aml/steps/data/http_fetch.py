"""Download a file over HTTP(S): verified, resumed only where the server proves it unchanged, never half done.

The requests are http_client's (time limits, redirects, keys). A file is written to `<dest>.part` and
renamed to `<dest>` only once it is whole and its size and sha256 match what was expected. A size known
beforehand caps the download: a server that states another size is refused before the body is read,
and one that sends more is cut off and refused. After a dropped connection the `.part` file is resumed
with a Range request only when the server identified the file (a strong ETag, else Last-Modified; kept
in `<dest>.part.json`) and proves it unchanged: the resume carries If-Range, and an answer with another
validator, another total size or the whole body starts the file again from its first byte.
"""

import hashlib
import json
import logging
import os
import time
from typing import Any, Dict, Mapping, Optional, Tuple

from tao_aml.steps.data.http_client import (
    Attempt,
    FetchError,
    Request,
    Retryable,
    Settings,
    open_get,
    printable,
    read_block,
    with_retries,
)

LOG = logging.getLogger("tao_aml.steps.data.http_fetch")

CHUNK = 1024 * 1024


class FetchResult:
    """What one completed download produced; `length_given`: the server said how long the body is."""

    def __init__(self, url: str, path: str, sha256: str, size: int, length_given: bool) -> None:
        self.url = url
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.length_given = length_given


class _StartOver(Retryable):
    """The partial file is not a prefix of what the server now sends: try again from byte 0 at once."""


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


class _Progress:
    """Logs progress at most every `interval` seconds, never per block."""

    def __init__(self, shown: str, total: Optional[int], done: int, interval: float) -> None:
        self.shown = shown
        self.total = total
        self.start_done = done
        self.started = time.monotonic()
        self.last = self.started
        self.interval = interval

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = human_size(int((done - self.start_done) / max(now - self.started, 1e-6)))
        if self.total:
            LOG.info("%s: %s of %s (%.0f%%), %s/s", self.shown, human_size(done),
                     human_size(self.total), 100.0 * done / self.total, rate)
        else:
            LOG.info("%s: %s, %s/s", self.shown, human_size(done), rate)


def sha256_of(path: str) -> Any:  # hashlib's hash type is not public
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest


def _content_range(value: Optional[str]) -> Tuple[Optional[int], Optional[int]]:
    """(first byte, total size) of a Content-Range header such as 'bytes 10-99/100'."""
    try:
        unit, _, spec = (value or "").partition(" ")
        span, _, total = spec.partition("/")
        return (int(span.split("-")[0]) if unit == "bytes" else None), int(total)
    except ValueError:
        return None, None


class _Partial:
    """`<dest>.part` and what identifies the file it is the start of (`<dest>.part.json`)."""

    def __init__(self, dest: str, url: str) -> None:
        self.path = dest + ".part"
        self.meta_path = dest + ".part.json"
        self.url_key = hashlib.sha256(url.encode("utf-8")).hexdigest()  # never the URL: it may hold a key

    def validators(self) -> Optional[Dict[str, Any]]:
        """The validators of a resumable partial file, or None (and no partial file) when it is not one."""
        try:
            with open(self.meta_path, encoding="utf-8") as handle:
                meta = json.load(handle)
            if isinstance(meta, dict) and meta.get("url_key") == self.url_key and meta.get("if_range") \
                    and os.path.getsize(self.path) > 0:
                return meta
        except (OSError, ValueError):
            pass
        self.discard()
        return None

    def start(self, headers: Mapping[str, str], total: Optional[int]) -> None:
        """A new body begins: record what identifies it, if the server said (a weak ETag cannot go in If-Range)."""
        self.discard()
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if_range = etag if etag and not etag.startswith("W/") else modified
        if if_range:
            meta = {"url_key": self.url_key, "etag": etag, "last_modified": modified, "if_range": if_range,
                    "total": total}
            with open(self.meta_path, "w", encoding="utf-8") as handle:
                json.dump(meta, handle)

    def discard(self) -> None:
        for path in (self.path, self.meta_path):
            if os.path.exists(path):
                os.unlink(path)


def _same_file(meta: Mapping[str, Any], headers: Mapping[str, str], total: Optional[int]) -> Optional[str]:
    """Why a 206 answer is not the rest of the file the partial one started, or None."""
    for field, name in (("etag", "ETag"), ("last_modified", "Last-Modified")):
        if meta.get(field) and headers.get(name) != meta[field]:
            return f"its {name} changed from {meta[field]!r} to {printable(str(headers.get(name)), 80)!r}"
    if meta.get("total") is not None and total != meta["total"]:
        return f"its size changed from {meta['total']} to {total} bytes"
    return None


def _where_to_start(resp: Any, meta: Optional[Dict[str, Any]], offset: int, partial: _Partial, shown: str,
                    expected_size: Optional[int]) -> Tuple[int, Any, str, Optional[int]]:
    """Where the answer's body goes: (its first byte's offset, sha256 so far, file mode, total size if stated)."""
    headers = resp.headers
    length = headers.get("Content-Length")
    body_length = int(length) if length and length.isdigit() else None
    if meta and resp.status == 206:
        first, total = _content_range(headers.get("Content-Range"))
        changed = _same_file(meta, headers, total) if first == offset else f"it sent bytes from {first}"
        if not changed and body_length is not None and total != offset + body_length:
            changed = f"its Content-Length {body_length} does not add up to its Content-Range total {total}"
        if changed:
            LOG.warning("%s: not resuming at byte %d: %s; starting over", shown, offset, changed)
            partial.discard()
            raise _StartOver(changed)
        LOG.info("%s: resuming at byte %d (the server confirms the file is unchanged)", shown, offset)
        return offset, sha256_of(partial.path), "ab", total
    if meta:
        LOG.warning("%s: the server sent the whole file instead of the rest from byte %d (it changed, or does not "
                    "resume); starting over", shown, offset)
    partial.start(headers, body_length if body_length is not None else expected_size)
    return 0, hashlib.sha256(), "wb", body_length


def _receive(attempt: Attempt, resp: Any, partial: _Partial, mode: str, digest: Any, done: int,
             cap: Optional[int], progress: "_Progress", shown: str) -> int:
    """Append the body to the partial file, at most `cap` bytes in all; the bytes it then holds."""
    with open(partial.path, mode) as out:
        while True:
            want = attempt.settings.block if cap is None else min(attempt.settings.block, cap + 1 - done)
            try:
                block = read_block(attempt, resp, max(want, 1))
            except Retryable as err:
                raise err.after(f"{done} of {cap} bytes" if cap is not None else f"{done} bytes") from None
            if not block:
                return done
            if cap is not None and done + len(block) > cap:
                partial.discard()
                raise FetchError(f"{shown}: the server sent more than the {cap} bytes expected; nothing was kept")
            out.write(block)
            digest.update(block)
            done += len(block)
            progress.update(done)


def _download_once(attempt: Attempt, request: Request, partial: _Partial, progress_interval: float,
                   expected_size: Optional[int]) -> Tuple[str, int, bool]:
    """One attempt: resume the partial file if the server proves it unchanged; (sha256, size, length given).

    The body is complete at the length the server states, or else at `expected_size`; a server
    that states another length than `expected_size`, or sends more, is refused.
    """
    meta = partial.validators()
    offset = os.path.getsize(partial.path) if meta else 0
    if meta and meta.get("total") == offset:  # every byte arrived before the rename was missed
        return sha256_of(partial.path).hexdigest(), offset, True
    resp, _ = open_get(attempt, request, {"Range": f"bytes={offset}-", "If-Range": meta["if_range"]} if meta else {})
    with resp:
        offset, digest, mode, stated = _where_to_start(resp, meta, offset, partial, request.shown, expected_size)
        if stated is not None and expected_size is not None and stated != expected_size:
            partial.discard()
            raise FetchError(f"{request.shown}: the server sends {stated} bytes but {expected_size} are expected; "
                             "nothing was kept")
        cap = stated if stated is not None else expected_size
        progress = _Progress(request.shown, cap, offset, progress_interval)
        done = _receive(attempt, resp, partial, mode, digest, offset, cap, progress, request.shown)
    if cap is not None and done < cap:
        raise Retryable(f"connection closed after {done} of {cap} bytes")  # urllib3 1.26 ends a short body quietly
    return digest.hexdigest(), done, stated is not None


def fetch(
    url: str,
    dest: str,
    settings: Settings,
    expected_sha256: Optional[str] = None,
    expected_size: Optional[int] = None,
    bearer_token: Optional[str] = None,
    follow_keyless: bool = False,
    allow_http: bool = False,
    progress_interval: float = 30.0,
) -> FetchResult:
    """Download `url` to `dest` (via `dest.part`), verify it, and rename it into place.

    Transient failures (connection errors, timeouts, stalls, HTTP 408/429/5xx, a body shorter than
    stated or expected) are retried with exponential backoff, resuming the partial file when the
    server proves it unchanged. Other HTTP statuses fail at once with a FetchError naming the status
    and the (redacted) URL. On a size or checksum mismatch the partial file is deleted, so nothing that
    looks complete is left behind. With `follow_keyless`, a redirect to another origin is followed
    without the key (a signed URL carries its own credential); without it, such a redirect is refused.
    """
    request = Request(url, bearer_token, follow_keyless, allow_http)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    partial = _Partial(dest, request.url)
    LOG.info("downloading %s -> %s", request.shown, dest)
    started = time.monotonic()

    def once(attempt: Attempt) -> Tuple[str, int, bool]:
        try:
            try:
                return _download_once(attempt, request, partial, progress_interval, expected_size)
            except _StartOver:
                return _download_once(attempt, request, partial, progress_interval, expected_size)
        except OSError as err:  # the network's errors are Retryable by now: this is the local disk
            raise FetchError(f"cannot write {partial.path}: {err.strerror or err}") from None

    sha, size, length_given = with_retries("download of " + request.shown, settings, once)
    if expected_size is not None and size != expected_size:
        partial.discard()
        raise FetchError(f"{request.shown}: got {size} bytes but expected {expected_size}; the partial file "
                         "was deleted, rerun to download it again")
    if expected_sha256 and sha != expected_sha256.lower():
        partial.discard()
        raise FetchError(f"checksum mismatch for {request.shown}: expected sha256 {expected_sha256.lower()}, "
                         f"got {sha}; the download was deleted")
    try:
        os.replace(partial.path, dest)
    except OSError as err:  # a folder of that name, say
        raise FetchError(f"cannot put {request.shown} in place as {dest}: {err.strerror or err}") from None
    if os.path.exists(partial.meta_path):
        os.unlink(partial.meta_path)
    LOG.info("downloaded %s (%s in %.1f s, sha256 %s)", request.shown, human_size(size),
             time.monotonic() - started, sha)
    return FetchResult(url, dest, sha, size, length_given)
