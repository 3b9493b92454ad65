"""Download over HTTP(S) with retries, resume, size and checksum checks and atomic completion.

Standard library only (runs in the TAO 5.0 container on Python 3.8). A file is written to
`<dest>.part` and renamed to `<dest>` only once it is complete and verified, so a file under its
final name is always whole. After a dropped connection the next attempt resumes the `.part` file
with a Range request; so does a body that ends before the expected size when the server gave no
length. A bearer token is sent to the URL's own origin only: redirects to another host (NGC answers
with a signed storage URL) never carry it.

Only https URLs are fetched, and plain http only when the caller allows it (the user gave an http
URL): the opener has no handler for file:, ftp: or data: URLs, and a redirect to any scheme that is
not allowed is refused, naming both URLs.
"""

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import IO, Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar

from tao_aml.steps.common import StepError

LOG = logging.getLogger("tao_aml.steps.http_fetch")

T = TypeVar("T")
CHUNK = 1024 * 1024
USER_AGENT = "tao-aml/0.1 (+urllib)"
# Statuses worth another try: the server or a proxy may recover.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_WAIT_SECONDS = 60.0


class FetchError(StepError):
    """A download that failed for good; `status` is the HTTP status when there was one, `url` the URL
    that answered (after redirects) when it is known."""

    def __init__(self, message: str, status: Optional[int] = None,
                 headers: Optional[Mapping[str, str]] = None, url: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers: Mapping[str, str] = headers or {}
        self.url = url


class _Retryable(Exception):
    """A transient failure: the caller waits and tries again (resuming when it can)."""


class FetchResult:
    """What one completed download produced; `length_given`: the server said how long the body is."""

    def __init__(self, url: str, path: str, sha256: str, size: int, length_given: bool) -> None:
        self.url = url
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.length_given = length_given


def redact_url(url: str) -> str:
    """The URL without user info or query string, for logs, messages and manifests.

    Signed URLs (NGC storage, Azure SAS) carry credentials in the query; they must not be logged.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    query = "?..." if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{query}"


def _origin(url: str) -> Tuple[str, str, Optional[int]]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def scheme_problem(url: str, allow_http: bool) -> Optional[str]:
    """Why `url` may not be fetched, or None: https always, http only when allowed."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return None
    allowed = "https and http" if allow_http else "https (http only where an http URL was given)"
    return f"only {allowed} URLs are fetched, not {scheme + ':' if scheme else 'scheme-less'} ones"


def _allows_http(req: urllib.request.Request) -> bool:
    return bool(getattr(req, "allow_http", False))


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to allowed schemes only; carry the Authorization header only to the same origin.

    urllib copies ordinary headers (Range included) to the redirected request but never
    "unredirected" ones, which is where the token lives; it is put back only when the origin
    is unchanged. The redirected request keeps the original one's http policy.
    """

    def http_error_302(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                       headers: Message) -> Any:
        location = headers.get("Location") or headers.get("URI")
        if location:
            target = urllib.parse.urljoin(req.full_url, location)
            problem = scheme_problem(target, _allows_http(req))
            if problem:
                fp.close()
                raise FetchError(f"{redact_url(req.full_url)} redirected (HTTP {code}) to {redact_url(target)}; "
                                 f"refused: {problem}", status=code, url=target)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> Optional[urllib.request.Request]:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        new.allow_http = _allows_http(req)  # type: ignore[attr-defined]
        token = req.unredirected_hdrs.get("Authorization")
        if token and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", token)
        return new


def _build_opener() -> urllib.request.OpenerDirector:
    """urllib's default opener without its file:, ftp: and data: handlers."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(), _Redirects(),
                    urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


_OPENER = _build_opener()


def _request(url: str, bearer_token: Optional[str], allow_http: bool,
             extra: Optional[Dict[str, str]] = None) -> urllib.request.Request:
    problem = scheme_problem(url, allow_http)
    if problem:
        raise FetchError(f"refusing {redact_url(url)}: {problem}")
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    req.allow_http = allow_http  # type: ignore[attr-defined]
    for name, value in (extra or {}).items():
        req.add_header(name, value)
    if bearer_token:
        req.add_unredirected_header("Authorization", "Bearer " + bearer_token)
    return req


def _open(req: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """Open a request; transient trouble becomes _Retryable, a final HTTP status a FetchError."""
    try:
        return _OPENER.open(req, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from None
        headers = dict(err.headers.items()) if err.headers else None
        answered = err.geturl() or req.full_url
        where = redact_url(answered)
        if answered != req.full_url:
            where += f" (redirected from {redact_url(req.full_url)})"
        if err.code in (401, 403) and urllib.parse.urlsplit(answered).query:
            # Signed URLs (NGC storage, Azure SAS, S3) carry their credential in the query.
            where += "; a signed URL: it may have expired or been refused"
        raise FetchError(f"HTTP {err.code} {err.reason} from {where}", status=err.code, headers=headers,
                         url=answered) from None
    except urllib.error.URLError as err:
        raise _Retryable(f"cannot connect: {err.reason}") from None
    except (OSError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {err}") from None


def _with_retries(what: str, retries: int, retry_wait: float, attempt_once: Callable[[], T]) -> T:
    """Call attempt_once until it succeeds, waiting retry_wait * 2^n between attempts."""
    attempt = 0
    while True:
        try:
            return attempt_once()
        except _Retryable as err:
            attempt += 1
            if attempt > retries:
                raise FetchError(f"{what} failed after {attempt} attempts, last error: {err}") from None
            wait = min(retry_wait * (2 ** (attempt - 1)), MAX_WAIT_SECONDS)
            LOG.warning("%s: %s; retry %d of %d in %.1f s", what, err, attempt, retries, wait)
            time.sleep(wait)


def get_bytes(
    url: str,
    bearer_token: Optional[str] = None,
    retries: int = 5,
    retry_wait: float = 2.0,
    timeout: float = 60.0,
    allow_http: bool = False,
) -> bytes:
    """GET a small document (an API answer) into memory, with the same retry policy as fetch()."""

    def once() -> bytes:
        with _open(_request(url, bearer_token, allow_http, {"Accept": "application/json"}), timeout) as resp:
            try:
                return resp.read()
            except (OSError, http.client.HTTPException) as err:
                raise _Retryable(f"{type(err).__name__}: {err}") from None

    return _with_retries("GET " + redact_url(url), retries, retry_wait, once)


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
    """Logs progress at most every `interval` seconds, never per chunk."""

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


def _hash_file(path: str) -> Any:  # hashlib's hash type is not public
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest


def _content_range_total(value: Optional[str]) -> Optional[int]:
    """The total size from a Content-Range header such as 'bytes 10-99/100' or 'bytes */100'."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _download_once(url: str, part: str, bearer_token: Optional[str], allow_http: bool, timeout: float,
                   progress_interval: float, expected_size: Optional[int]) -> Tuple[str, int, bool]:
    """One attempt: resume `part` if it has bytes; return (sha256 hex, size, length given) when complete.

    The body is complete at the length the server states, or else at `expected_size`; a server
    that states another length than `expected_size` is refused before anything is downloaded.
    """
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    shown = redact_url(url)
    extra = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = _open(_request(url, bearer_token, allow_http, extra), timeout)
    except FetchError as err:
        if err.status != 416 or not offset:
            raise
        # Nothing left after `offset`: either an earlier run stopped after the last byte
        # (complete but not yet renamed) or the .part is stale; start over in the second case.
        if _content_range_total(err.headers.get("Content-Range")) == offset:
            return _hash_file(part).hexdigest(), offset, True
        os.unlink(part)
        raise _Retryable(f"the server refused to resume at byte {offset} (HTTP 416); starting over") from None
    with resp:
        if offset and resp.status == 206:
            content_range = resp.headers.get("Content-Range") or ""
            if not content_range.startswith(f"bytes {offset}-"):
                os.unlink(part)
                raise _Retryable(f"unexpected Content-Range {content_range!r}; starting over")
            digest = _hash_file(part)
            mode = "ab"
            LOG.info("%s: resuming at byte %d", shown, offset)
        else:  # a fresh start, or a server that ignores Range and sends everything
            offset, digest, mode = 0, hashlib.sha256(), "wb"
        length = resp.headers.get("Content-Length")
        stated = offset + int(length) if length and length.isdigit() else None
        if stated is not None and expected_size is not None and stated != expected_size:
            if os.path.exists(part):
                os.unlink(part)
            raise FetchError(f"{shown}: the server sends {stated} bytes but {expected_size} are expected; "
                             "nothing was kept")
        total = stated if stated is not None else expected_size
        progress = _Progress(shown, total, offset, progress_interval)
        done = offset
        with open(part, mode) as out:
            while True:
                try:
                    block = resp.read(CHUNK)
                except (OSError, http.client.HTTPException) as err:
                    of = f" of {total}" if total is not None else ""
                    raise _Retryable(f"connection lost after {done}{of} bytes ({type(err).__name__})") from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                progress.update(done)
        if total is not None and done < total:
            raise _Retryable(f"connection closed after {done} of {total} bytes")
        return digest.hexdigest(), done, stated is not None


def fetch(
    url: str,
    dest: str,
    expected_sha256: Optional[str] = None,
    expected_size: Optional[int] = None,
    bearer_token: Optional[str] = None,
    retries: int = 5,
    retry_wait: float = 2.0,
    timeout: float = 60.0,
    progress_interval: float = 30.0,
    allow_http: bool = False,
) -> FetchResult:
    """Download `url` to `dest` (via `dest.part`), verify it, and rename it into place.

    Transient failures (connection errors, timeouts, HTTP 408/429/5xx, a body shorter than stated or
    expected) are retried `retries` times with exponential backoff, resuming the partial file. Other
    HTTP statuses fail at once with a FetchError naming the status and the (redacted) URL. On a size
    or checksum mismatch the partial file is deleted, so nothing that looks complete is left behind.
    """
    shown = redact_url(url)
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    part = dest + ".part"
    LOG.info("downloading %s -> %s", shown, dest)
    started = time.monotonic()
    sha, size, length_given = _with_retries(
        "download of " + shown, retries, retry_wait,
        lambda: _download_once(url, part, bearer_token, allow_http, timeout, progress_interval, expected_size),
    )
    if expected_size is not None and size != expected_size:
        os.unlink(part)
        raise FetchError(f"{shown}: got {size} bytes but expected {expected_size}; the partial file "
                         "was deleted, rerun to download it again")
    if expected_sha256 and sha != expected_sha256.lower():
        os.unlink(part)
        raise FetchError(f"checksum mismatch for {shown}: expected sha256 {expected_sha256.lower()}, "
                         f"got {sha}; the download was deleted")
    os.replace(part, dest)
    LOG.info("downloaded %s (%s in %.1f s, sha256 %s)", shown, human_size(size),
             time.monotonic() - started, sha)
    return FetchResult(url, dest, sha, size, length_given)
