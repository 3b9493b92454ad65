"""One HTTP(S) GET that ends, on urllib3: time limits, redirects checked, keys kept to their origin.

urllib3 is in every image the network steps run in (tao_data pins it; NVIDIA's TAO 5.0 TF1 image installs
it for its own tools, docker/requirements-pip.txt of tao_tensorflow1_backend), and it runs on Python 3.8.

- **Every request ends.** A connection must open within `connect_timeout` seconds, the answer's headers
  must arrive within `connect_timeout + read_timeout`, no byte may take longer than `read_timeout`, and
  a body must keep at least `min_speed` bytes per second over each block of `min_speed * read_timeout`
  bytes (at most 16 MiB): a server that trickles a byte now and then is cut off. A watchdog thread
  enforces the deadlines by shutting the socket down, since a socket timeout alone restarts with every
  byte. Transient failures are retried `retries` times with exponential backoff.
- **Schemes and keys.** Only https URLs are fetched, plain http only where the caller allows it, and a
  redirect to any other scheme is refused. A key (a bearer token, or the user:password of a URL, sent
  as Basic auth) goes only to the origin it was given for: a request that carries one is not redirected
  to another origin, except where the caller expects the key-less hand-off to a signed URL (NGC's
  storage). URLs are shown without user info or query string, and no message holds a key.
- **Proxies** are the environment's (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as for urllib.
"""

import argparse
import base64
import http.client
import logging
import math
import socket
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from tao_aml.steps.common import StepError

LOG = logging.getLogger("tao_aml.steps.data.http_client")
# urllib3 logs request lines and some failures with the URL, query string (a signature) included; the
# messages here say what happened without it.
logging.getLogger("urllib3").setLevel(logging.CRITICAL)

T = TypeVar("T")
MAX_BLOCK = 16 * 1024 * 1024
MAX_DOCUMENT_BYTES = MAX_BLOCK  # an API answer (NGC's file listing) is a few KB
MAX_REDIRECTS = 10
USER_AGENT = "tao-aml/0.1 (+urllib3)"
# Statuses worth another try: the server or a proxy may recover.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_WAIT_SECONDS = 60.0


class FetchError(StepError):
    """A download that failed for good; `status` is the HTTP status when there was one, `url` the URL
    that answered (after redirects) when it is known."""

    def __init__(self, message: str, status: Optional[int] = None, url: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class Retryable(Exception):
    """A transient failure: the caller waits and tries again (resuming when it can). `what` happened,
    `why` (optional) explains; a file download says where it happened with `after`."""

    def __init__(self, what: str, why: str = "") -> None:
        super().__init__(f"{what}: {why}" if why else what)
        self.what = what
        self.why = why

    def after(self, position: str) -> "Retryable":
        return Retryable(f"{self.what} after {position}", self.why)


class Settings:
    """Time limits and retries of every request (the steps' --connect_timeout ... --retry_wait)."""

    def __init__(self, connect_timeout: float = 30.0, read_timeout: float = 120.0, min_speed: int = 65536,
                 retries: int = 5, retry_wait: float = 2.0) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.min_speed = min_speed
        self.retries = retries
        self.retry_wait = retry_wait

    @property
    def block(self) -> int:
        """Bytes read at a time; each block must arrive within block_seconds."""
        return max(1, min(int(self.min_speed * self.read_timeout), MAX_BLOCK))

    @property
    def block_seconds(self) -> float:
        return self.block / self.min_speed

    @property
    def answer_seconds(self) -> float:
        return self.connect_timeout + self.read_timeout


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The download settings every network step takes."""
    default = Settings()
    parser.add_argument("--connect_timeout", type=float, default=default.connect_timeout,
                        help="seconds to open a connection (default %(default)s)")
    parser.add_argument("--read_timeout", type=float, default=default.read_timeout,
                        help="seconds the server may stay silent, and the window of --min_speed (default "
                             "%(default)s)")
    parser.add_argument("--min_speed", type=int, default=default.min_speed,
                        help="bytes per second a download must keep up, averaged over --read_timeout "
                             "seconds; slower counts as a stall (default %(default)s: 64 KiB/s)")
    parser.add_argument("--retries", type=int, default=default.retries,
                        help="retries per request on transient errors (default %(default)s)")
    parser.add_argument("--retry_wait", type=float, default=default.retry_wait,
                        help="seconds before the first retry; doubles each time, at most 60 (default %(default)s)")


def settings_from(args: argparse.Namespace) -> Settings:
    for name in ("connect_timeout", "read_timeout", "min_speed"):
        if not 0 < getattr(args, name) < math.inf:
            raise StepError(f"--{name} must be more than 0, got {getattr(args, name)}")
    for name in ("retries", "retry_wait"):
        if getattr(args, name) < 0:
            raise StepError(f"--{name} must be 0 or more, got {getattr(args, name)}")
    return Settings(args.connect_timeout, args.read_timeout, args.min_speed, args.retries, args.retry_wait)


# ---------------------------------------------------------------------------------------------
# URLs as shown, checked and sent


def printable(text: str, limit: int = 200) -> str:
    """`text` without control characters (a server's words may hold terminal escapes), shortened."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean if len(clean) <= limit else clean[:limit] + "..."


def redact_url(url: str) -> str:
    """The URL without user info or query string, for logs, messages and manifests.

    Signed URLs (NGC storage, Azure SAS) carry credentials in the query, and a URL may carry
    user:password before its host; neither is ever shown.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "(a malformed URL)"
    query = "?..." if parts.query else ""
    return printable(f"{parts.scheme}://{host}{parts.path}{query}")


def _origin(url: str) -> Tuple[str, str, Optional[int]]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def scheme_problem(url: str, allow_http: bool) -> Optional[str]:
    """Why `url` may not be fetched, or None: https always, http only when allowed."""
    try:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme.lower(), parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "it is not a valid URL"
    if scheme == "https" or (scheme == "http" and allow_http):
        return None if host else "it names no host"
    allowed = "https and http" if allow_http else "https (http only where an http URL was given)"
    return f"only {allowed} URLs are fetched, not {scheme + ':' if scheme else 'scheme-less'} ones"


class Request:
    """One URL to GET: what is sent (no user info) and the key that goes to its origin only."""

    def __init__(self, url: str, bearer_token: Optional[str], follow_keyless: bool, allow_http: bool) -> None:
        problem = scheme_problem(url, allow_http)
        if problem:
            raise FetchError(f"refusing {redact_url(url)}: {problem}")
        parts = urllib.parse.urlsplit(url)
        self.secrets = [s for s in (parts.password, parts.query, bearer_token) if s]
        netloc = parts.netloc.rsplit("@", 1)[-1]
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        self.key: Optional[str] = None
        if bearer_token:
            self.key = "Bearer " + bearer_token
        elif parts.username is not None:
            pair = urllib.parse.unquote(parts.username) + ":" + urllib.parse.unquote(parts.password or "")
            self.key = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        self.follow_keyless = follow_keyless
        self.allow_http = allow_http
        self.shown = redact_url(url)

    def scrub(self, text: str) -> str:
        """`text` (an exception's words) with every secret of this request masked."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return printable(text)


# ---------------------------------------------------------------------------------------------
# Deadlines: a watchdog that shuts the connection down


class _Watchdog:
    """Shuts down the sockets of one attempt when an armed deadline passes; `fired` then says why."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadline: Optional[float] = None
        self._why = Retryable("")
        self._sockets: List[socket.socket] = []
        self._closed = False
        self.fired: Optional[Retryable] = None
        self._thread = threading.Thread(target=self._run, name="download-watchdog", daemon=True)
        self._thread.start()

    def watch(self, sock: Any) -> None:
        with self._cond:
            self._sockets.append(sock)
            if self.fired:  # the deadline passed while this connection was being opened
                self._shutdown(sock)

    def arm(self, seconds: float, why: Retryable) -> None:
        with self._cond:
            self._deadline, self._why = time.monotonic() + seconds, why
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self.fired, self._deadline = self._why, None
                for sock in self._sockets:
                    self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: Any) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # a blocked read in the main thread returns at once
        except OSError:
            pass  # already closed


_CURRENT = threading.local()


def _register(sock: Any) -> None:
    watchdog = getattr(_CURRENT, "watchdog", None)
    if watchdog is not None and sock is not None:
        watchdog.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _register(self.sock)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _proxy_for(url: str) -> Optional[str]:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as urllib does."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme.lower())


class Attempt:
    """One try at a URL: its own connections, its own watchdog; closed when the try ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.watchdog = _Watchdog()
        self._managers: Dict[Optional[str], urllib3.PoolManager] = {}

    def __enter__(self) -> "Attempt":
        _CURRENT.watchdog = self.watchdog
        return self

    def __exit__(self, *exc: Any) -> None:
        _CURRENT.watchdog = None
        self.watchdog.close()
        for manager in self._managers.values():
            manager.clear()

    def manager(self, url: str) -> urllib3.PoolManager:
        proxy = _proxy_for(url)
        if proxy not in self._managers:
            timeout = urllib3.Timeout(connect=self.settings.connect_timeout, read=self.settings.read_timeout)
            if proxy:
                parts = urllib.parse.urlsplit(proxy)  # urllib3 does not read a proxy's user:password itself
                login = f"{urllib.parse.unquote(parts.username or '')}:{urllib.parse.unquote(parts.password or '')}"
                headers = urllib3.make_headers(proxy_basic_auth=login) if parts.username else None
                manager: urllib3.PoolManager = urllib3.ProxyManager(proxy, proxy_headers=headers, timeout=timeout,
                                                                    retries=False)
            else:
                manager = urllib3.PoolManager(timeout=timeout, retries=False)
            manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
            self._managers[proxy] = manager
        return self._managers[proxy]

    def stalled(self) -> Optional[Retryable]:
        return self.watchdog.fired


def _reason(err: BaseException, request: Request) -> str:
    """A short, key-free account of a network error: its innermost OS error, else its own words."""
    inner: Optional[BaseException] = err
    while inner is not None:
        if isinstance(inner, OSError) and inner.strerror:
            return request.scrub(f"{type(err).__name__}: {inner.strerror}")
        inner = inner.__cause__ or inner.__context__
    return request.scrub(f"{type(err).__name__}: {err}")


def _redirect_target(request: Request, current: str, status: int, location: Optional[str]) -> str:
    """Where a redirect from `current` leads, refused unless it is a URL this request may follow."""
    where = f"{redact_url(current)} redirected (HTTP {status})"
    if not location:
        raise FetchError(f"{where} without saying where to", status=status, url=current)
    try:
        target = urllib.parse.urljoin(current, location.strip())
    except ValueError:
        raise FetchError(f"{where} to a malformed URL; refused", status=status, url=current) from None
    shown = redact_url(target)
    problem = scheme_problem(target, request.allow_http)
    if problem:
        raise FetchError(f"{where} to {shown}; refused: {problem}", status=status, url=current)
    if request.key and _origin(target) != _origin(request.url) and not request.follow_keyless:
        raise FetchError(f"{where} to {shown}, another host; refused: the request carries a key, which is "
                         "never sent to, nor followed to, another host", status=status, url=current)
    return target


def open_get(attempt: Attempt, request: Request, headers: Mapping[str, str]) -> Tuple[Any, str]:
    """GET with redirects followed as allowed; (response with its body unread, URL that answered).

    Transient trouble becomes Retryable; a final HTTP status, a refused redirect or a malformed URL a
    FetchError. The key goes only to the request's own origin.
    """
    current = request.url
    settings = attempt.settings
    for _ in range(MAX_REDIRECTS + 1):
        sent = dict(headers, **{"User-Agent": USER_AGENT, "Accept-Encoding": "identity"})
        if request.key and _origin(current) == _origin(request.url):
            sent["Authorization"] = request.key
        attempt.watchdog.arm(settings.answer_seconds, Retryable(f"no answer within {settings.answer_seconds:g} s"))
        try:
            resp = attempt.manager(current).request("GET", current, headers=sent, preload_content=False,
                                                    redirect=False, retries=False)
        except (urllib3.exceptions.LocationValueError, ValueError):  # http.client's InvalidURL is one too
            raise FetchError(f"{redact_url(current)} is not a valid URL") from None
        except urllib3.exceptions.NewConnectionError as err:  # a ConnectTimeoutError to urllib3, for history
            raise Retryable(_reason(err, request)) from None
        except urllib3.exceptions.ConnectTimeoutError:
            raise Retryable(f"no connection within {settings.connect_timeout:g} s") from None
        except urllib3.exceptions.ReadTimeoutError:
            raise attempt.stalled() or Retryable(f"no answer for {settings.read_timeout:g} s") from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as err:
            raise attempt.stalled() or Retryable(_reason(err, request)) from None
        finally:
            attempt.watchdog.disarm()
        if resp.status in REDIRECT_STATUS:
            location = resp.headers.get("Location")
            resp.close()
            current = _redirect_target(request, current, resp.status, location)
            continue
        if resp.status >= 400:
            resp.close()
            status = f"HTTP {resp.status} {printable(resp.reason or '', 60)}".rstrip()
            if resp.status in RETRYABLE_STATUS:
                raise Retryable(status)
            where = redact_url(current)
            if current != request.url:
                where += f" (redirected from {request.shown})"
            if resp.status in (401, 403) and urllib.parse.urlsplit(current).query:
                # Signed URLs (NGC storage, Azure SAS, S3) carry their credential in the query.
                where += "; a signed URL: it may have expired or been refused"
            raise FetchError(f"{status} from {where}", status=resp.status, url=current)
        return resp, current
    raise FetchError(f"{request.shown}: more than {MAX_REDIRECTS} redirects; refused")


def read_block(attempt: Attempt, resp: Any, size: int) -> bytes:
    """Up to `size` bytes of the body (fewer only at its end), within the time the settings allow."""
    settings = attempt.settings
    attempt.watchdog.arm(settings.block_seconds, Retryable(
        "stalled", f"fewer than {size} bytes in {settings.block_seconds:g} s, below --min_speed "
                   f"{settings.min_speed} bytes/s"))
    try:
        block: bytes = resp.read(size, decode_content=False)
    except urllib3.exceptions.ReadTimeoutError:
        raise attempt.stalled() or Retryable("stalled", f"no data for {settings.read_timeout:g} s") from None
    except urllib3.exceptions.ProtocolError:  # urllib3 2: the connection closed before the stated length
        raise attempt.stalled() or Retryable("connection closed") from None
    except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as err:
        raise attempt.stalled() or Retryable("connection lost", type(err).__name__) from None
    finally:
        attempt.watchdog.disarm()
    fired = attempt.stalled()
    if fired:
        raise fired
    return block


def with_retries(what: str, settings: Settings, attempt_once: Callable[[Attempt], T]) -> T:
    """Call attempt_once until it succeeds, waiting retry_wait * 2^n between attempts."""
    failures = 0
    while True:
        try:
            with Attempt(settings) as attempt:
                return attempt_once(attempt)
        except Retryable as err:
            failures += 1
            if failures > settings.retries:
                tries = f"{failures} attempts" if failures > 1 else "1 attempt"
                raise FetchError(f"{what} failed after {tries}, last error: {err}") from None
            wait = min(settings.retry_wait * (2 ** (failures - 1)), MAX_WAIT_SECONDS)
            LOG.warning("%s: %s; retry %d of %d in %.1f s", what, err, failures, settings.retries, wait)
            time.sleep(wait)


def get_bytes(url: str, settings: Settings, bearer_token: Optional[str] = None, allow_http: bool = False,
              limit: int = MAX_DOCUMENT_BYTES) -> bytes:
    """GET a small document (an API answer) into memory, with the limits and retries of fetch().

    With a key, a redirect to another origin is refused: the answer must come from the API itself.
    """
    request = Request(url, bearer_token, follow_keyless=False, allow_http=allow_http)

    def once(attempt: Attempt) -> bytes:
        resp, answered = open_get(attempt, request, {"Accept": "application/json"})
        with resp:
            body = b""
            while True:
                block = read_block(attempt, resp, min(attempt.settings.block, limit + 1 - len(body)))
                if not block:
                    return body
                body += block
                if len(body) > limit:
                    raise FetchError(f"{redact_url(answered)} answered with more than {limit} bytes; refused")

    return with_retries("GET " + request.shown, settings, once)
