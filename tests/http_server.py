"""A real HTTP server on 127.0.0.1 for tests of network code, with failures on demand.

    with serving(tmp_path / "www") as server:
        (server.root / "data.zip").write_bytes(...)
        server.fail("/data.zip", 503, times=2)       # two 503s, then normal service
        server.drop_after("/data.zip", 1000)          # once: send 1000 body bytes, then hang up
        server.require_bearer("/v2/", "secret")       # 401 without that bearer token
        server.add_unsized("/cut.zip", data, cut_after=500)  # no Content-Length, body ends at byte 500
        server.expire_signed("/ngc-storage/")         # signed URLs there answer 403, as S3 does once expired
        server.validators("/data.zip", etag=False)    # only Last-Modified identifies the file
        server.ignore_if_range("/data.zip")           # a lying server: 206 for a file that changed
        server.trickle("/slow.zip", 1000, 0.2)        # states 1000 bytes, sends one every 0.2 s
        url = server.url("/data.zip")
        ...
        assert server.requests_for("/data.zip")[-1].headers.get("range") == "bytes=1000-"

Files are served from `root` (GET and HEAD, single-range requests answered with 206 / 416), with a
strong ETag (from the content) and Last-Modified (from the file's mtime), and If-Range honoured as a
server must: a Range whose If-Range does not match the file is ignored and the whole file sent (200);
`add_json`, `add_redirect` (to any URL, `file://` included), `add_bytes`, `add_html` (an error or sign-in
page answered with 200, as some hosts do), `add_status` (any status and reason phrase), `add_unsized` and
`trickle` add routes. `add_ngc_model` publishes a fake NGC model
the way api.ngc.nvidia.com does (file listing, per-file download redirecting to signed storage).
The `http_server` fixture gives one server on `tmp_path / "www"` (make it available with
`from http_server import http_server  # noqa: F401` in tests/conftest.py, or call `serving`).
"""

import email.utils
import hashlib
import json
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class Request:
    """One request as the server saw it; header names are lower case."""

    method: str
    path: str  # path and query, as sent
    headers: dict[str, str]

    @property
    def route(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: forever


@dataclass
class FakeServer:
    """State shared by the handler threads; configure it from the test thread."""

    root: Path
    base_url: str = ""
    requests: list[Request] = field(default_factory=list)
    _failures: dict[str, _Failure] = field(default_factory=dict)
    _drops: dict[str, list[int]] = field(default_factory=dict)
    _bearer: list[tuple[str, str]] = field(default_factory=list)
    _expired: list[str] = field(default_factory=list)
    _routes: dict[str, Callable[["_Handler"], None]] = field(default_factory=dict)
    _validators: dict[str, tuple[bool, bool]] = field(default_factory=dict)
    _ignore_if_range: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        """Absolute URL for a server path (quoted as needed)."""
        return self.base_url + urllib.parse.quote(path if path.startswith("/") else "/" + path)

    def fail(self, path: str, status: int, times: int | None = None) -> None:
        """Answer `path` with `status` (`times` times, or always) before serving it normally."""
        self._failures[path] = _Failure(status, times)

    def drop_after(self, path: str, nbytes: int, times: int = 1) -> None:
        """Send headers and `nbytes` of the body of `path`, then close the connection."""
        self._drops[path] = [nbytes] * times

    def require_bearer(self, prefix: str, token: str) -> None:
        """Paths starting with `prefix` answer 401 unless `Authorization: Bearer <token>` is sent."""
        self._bearer.append((prefix, token))

    def expire_signed(self, prefix: str) -> None:
        """Requests under `prefix` that carry a query (a signed URL) get S3's 403 for an expired signature."""
        self._expired.append(prefix)

    def validators(self, path: str, etag: bool = True, last_modified: bool = True) -> None:
        """Which of ETag and Last-Modified the file at `path` is served with (both by default)."""
        self._validators[path] = (etag, last_modified)

    def ignore_if_range(self, path: str) -> None:
        """Answer a Range request for `path` with 206 even when its If-Range no longer matches (a lying server)."""
        self._ignore_if_range.add(path)

    def trickle(self, path: str, length: int, interval: float, in_headers: bool = False) -> None:
        """`path` states Content-Length `length` and then sends one byte every `interval` seconds (or, with
        `in_headers`, sends its status line and then one header byte every `interval` seconds) until the
        client goes away: a server that never stops and never finishes."""

        def trickle(handler: "_Handler") -> None:
            if in_headers:  # a header line that never ends
                handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                chunks = iter(lambda: b"a", None)
            else:
                handler.send_response(200)
                handler.send_header("Content-Length", str(length))
                handler.end_headers()
                chunks = (b"x" for _ in range(length))
            try:
                for chunk in chunks:
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
                    if self.stopping.wait(interval):
                        break
            except OSError:
                pass  # the client hung up, as it should
            handler.close_connection = True

        self._routes[path] = trickle

    def add_bytes(self, path: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._routes[path] = lambda h: h.send_body(200, body, content_type)

    def add_html(self, path: str) -> None:
        """`path` answers 200 with an HTML page, as a host does that sends a sign-in or error page."""
        page = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in.</body></html>\n"
        self.add_bytes(path, page, "text/html; charset=utf-8")

    def add_unsized(self, path: str, body: bytes, cut_after: int | None = None) -> None:
        """`path` answers 200 without Content-Length: the body (or its first `cut_after` bytes), then the
        connection closes, which is all a client sees of the end of such a body."""

        def unsized(handler: "_Handler") -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(body if cut_after is None else body[:cut_after])
            handler.close_connection = True

        self._routes[path] = unsized

    def add_status(self, path: str, status: int, reason: str) -> None:
        """`path` answers `status` with its own reason phrase (which may hold anything, escape codes too)."""

        def answer(handler: "_Handler") -> None:
            handler.send_response(status, reason)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self._routes[path] = answer

    def add_json(self, path: str, document: object) -> None:
        self.add_bytes(path, json.dumps(document).encode("utf-8"), "application/json")

    def add_redirect(self, path: str, location: str, status: int = 302) -> None:
        def redirect(handler: "_Handler") -> None:
            handler.send_response(status)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self._routes[path] = redirect

    def requests_for(self, route: str) -> list[Request]:
        """Recorded requests whose unquoted path (without query) is `route`."""
        with self._lock:
            return [r for r in self.requests if r.route == route]

    # -- used by the handler ------------------------------------------------------------------
    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _take_failure(self, route: str) -> int | None:
        with self._lock:
            failure = self._failures.get(route)
            if failure is None or failure.remaining == 0:
                return None
            if failure.remaining is not None:
                failure.remaining -= 1
            return failure.status

    def _take_drop(self, route: str) -> int | None:
        with self._lock:
            drops = self._drops.get(route)
            return drops.pop(0) if drops else None

    def _is_expired(self, request: Request) -> bool:
        return bool(urllib.parse.urlsplit(request.path).query) and any(
            request.route.startswith(prefix) for prefix in self._expired)

    def _bearer_for(self, route: str) -> str | None:
        for prefix, token in self._bearer:
            if route.startswith(prefix):
                return token
        return None


class _Handler(BaseHTTPRequestHandler):
    server_state: FakeServer  # set on the per-server subclass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
        pass

    def send_body(self, status: int, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        state = self.server_state
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
        state._record(request)
        route = request.route
        token = state._bearer_for(route)
        if token is not None and request.headers.get("authorization") != "Bearer " + token:
            body = json.dumps({"requestStatus": {"statusCode": "UNAUTHORIZED"}}).encode()
            self.send_body(401, body, "application/json")
            return
        if state._is_expired(request):
            body = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code>" \
                   b"<Message>Request has expired</Message></Error>"
            self.send_body(403, body, "application/xml")
            return
        status = state._take_failure(route)
        if status is not None:
            self.send_body(status, f"injected {status}".encode(), "text/plain")
            return
        if route in state._routes:
            state._routes[route](self)
            return
        self._serve_file(route, request.headers.get("range"))

    def _serve_file(self, route: str, range_header: str | None) -> None:
        state = self.server_state
        root = state.root.resolve()
        target = (root / route.lstrip("/")).resolve()
        if root not in target.parents or not target.is_file():
            self.send_body(404, b"not found", "text/plain")
            return
        data = target.read_bytes()
        with_etag, with_modified = state._validators.get(route, (True, True))
        validators = {
            "ETag": f'"{hashlib.sha256(data).hexdigest()[:16]}"' if with_etag else None,
            "Last-Modified": email.utils.formatdate(target.stat().st_mtime, usegmt=True) if with_modified else None,
        }
        if_range = self.headers.get("If-Range")
        if if_range is not None and if_range not in validators.values() and route not in state._ignore_if_range:
            range_header = None  # the file changed: RFC 9110 says send all of it
        start, end, status = 0, len(data), 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", range_header or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) + 1, len(data)) if match.group(2) else len(data)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:end]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for name, value in validators.items():
            if value:
                self.send_header(name, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            return
        drop = self.server_state._take_drop(route)
        if drop is not None:
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


@contextmanager
def serving(root: os.PathLike[str] | str) -> Iterator[FakeServer]:
    """Start a server for `root` on 127.0.0.1 (ephemeral port); stop it on exit."""
    state = FakeServer(Path(root))
    state.root.mkdir(parents=True, exist_ok=True)
    handler = type("BoundHandler", (_Handler,), {"server_state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="fake-http", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """One server serving `tmp_path / "www"`; proxies are bypassed for it."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with serving(tmp_path / "www") as server:
        yield server


def parse_ngc_model(model: str) -> tuple[str, str | None, str, str]:
    """'org/team/name:version' or 'org/name:version' -> (org, team, name, version)."""
    path, version = model.split(":", 1)
    parts = path.split("/")
    if len(parts) == 3:
        return parts[0], parts[1], parts[2], version
    return parts[0], None, parts[1], version


def ngc_files_route(model: str) -> str:
    """The path of a model version's file listing on api.ngc.nvidia.com."""
    org, team, name, version = parse_ngc_model(model)
    scope = f"{org}/{team}" if team else org
    return f"/v2/models/{scope}/{name}/versions/{version}/files"


def add_ngc_model(
    api: FakeServer,
    model: str,
    files: dict[str, bytes],
    storage: FakeServer | None = None,
    token: str | None = None,
    listing: str = "V2",
) -> dict[str, str]:
    """Publish a fake NGC model version; return {relative path: sha256}.

    `listing="V2"`: the listing holds `modelFiles` ({path, sizeInBytes}) and each file is fetched
    from `<listing>/<path>`, which redirects (302) to a signed URL on `storage` (another origin
    when a second server is given). `listing="V1"`: the listing holds parallel `filepath` and
    `urls` lists of signed storage URLs. With `token`, the API paths of this model need
    `Authorization: Bearer <token>` (storage never does: signed URLs carry their own credential).
    """
    storage = storage or api
    org, team, name, version = parse_ngc_model(model)
    files_route = ngc_files_route(model)
    blob_prefix = f"/ngc-storage/{org}/{team or 'no-team'}/{name}/{version}/"
    signed: dict[str, str] = {}
    for rel, data in files.items():
        blob = storage.root / blob_prefix.lstrip("/") / rel
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        signed[rel] = storage.url(blob_prefix + rel) + "?Signature=s3cr3t-signature&Expires=1"
        api.add_redirect(f"{files_route}/{rel}", signed[rel])
    if listing == "V2":
        document: dict[str, object] = {
            "modelFiles": [{"path": rel, "sizeInBytes": len(data)} for rel, data in files.items()],
            "modelVersion": {"versionId": version, "storageVersion": "V2"},
        }
    else:
        document = {"filepath": list(files), "urls": [signed[rel] for rel in files]}
    document["paginationInfo"] = {"index": 0, "size": len(files), "totalPages": 1}
    document["requestStatus"] = {"statusCode": "SUCCESS"}
    api.add_json(files_route, document)
    if token:
        api.require_bearer(files_route.rsplit("/files", 1)[0], token)
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()}
