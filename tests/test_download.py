"""The download step and its HTTP core, against a real HTTP server on 127.0.0.1."""

import base64
import hashlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import tarfile
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_server import FakeServer, serving
from tao_aml.steps.data import download, http_client, http_fetch

FAST = ["--retry_wait", "0"]
SETTINGS = http_client.Settings(retry_wait=0)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with serving(tmp_path / "www") as srv:
        yield srv


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def make_tar(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def publish(server: FakeServer, name: str, data: bytes) -> str:
    (server.root / name).write_bytes(data)
    return server.url("/" + name)


def manifest(out: Path) -> list[dict]:
    return json.loads((out / "download_manifest.json").read_text())["downloads"]


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*.part"))


def test_zip_and_plain_file_with_checksums(server: FakeServer, out: Path) -> None:
    archive = make_zip({"WIDER_train/images/0--Parade/a.jpg": b"jpeg-a", "WIDER_train/readme.txt": b"hi"})
    notes = b"plain text, not an archive\n"
    urls = [publish(server, "WIDER_train.zip", archive), publish(server, "notes.txt", notes)]
    code = download.main(["--urls", ",".join(urls), "--output_dir", str(out),
                          "--sha256", f"{sha(archive)},{sha(notes).upper()}"])
    assert code == 0
    assert (out / "WIDER_train/images/0--Parade/a.jpg").read_bytes() == b"jpeg-a"
    assert (out / "WIDER_train/readme.txt").read_bytes() == b"hi"
    assert not (out / "WIDER_train.zip").exists(), "archives are deleted after extraction by default"
    assert (out / "notes.txt").read_bytes() == notes
    assert leftovers(out) == []
    entries = manifest(out)
    assert [(e["file"], e["sha256"], e["bytes"], e["extracted"], e["extracted_files"]) for e in entries] == [
        ("WIDER_train.zip", sha(archive), len(archive), True, 2),
        ("notes.txt", sha(notes), len(notes), False, 0),
    ]
    assert entries[0]["url"] == urls[0]


def test_tar_gz_extraction_keeps_archive_when_asked(server: FakeServer, out: Path) -> None:
    archive = make_tar({"annotations/person_keypoints_val2017.json": b"{}", "annotations/x.json": b"[]"})
    url = publish(server, "annotations.tar.gz", archive)
    assert download.main(["--urls", url, "--output_dir", str(out), "--keep_archives", "True"]) == 0
    assert (out / "annotations/person_keypoints_val2017.json").read_bytes() == b"{}"
    assert (out / "annotations.tar.gz").read_bytes() == archive
    assert manifest(out)[0]["extracted_files"] == 2


def test_extract_false_leaves_archive_packed(server: FakeServer, out: Path) -> None:
    archive = make_zip({"a.txt": b"a"})
    url = publish(server, "a.zip", archive)
    assert download.main(["--urls", url, "--output_dir", str(out), "--extract", "false"]) == 0
    assert (out / "a.zip").read_bytes() == archive
    assert not (out / "a.txt").exists()


def test_resume_after_dropped_connection(server: FakeServer, out: Path) -> None:
    data = os.urandom(300_000)
    url = publish(server, "big.bin", data)
    server.drop_after("/big.bin", 100_000)
    assert download.main(["--urls", url, "--output_dir", str(out), "--sha256", sha(data), *FAST]) == 0
    assert (out / "big.bin").read_bytes() == data
    ranges = [r.headers.get("range") for r in server.requests_for("/big.bin")]
    assert ranges == [None, "bytes=100000-"]


def interrupted(out: Path, name: str, url: str, data: bytes, etag: str = '"v1"', total: int | None = None) -> None:
    """`name`.part as a killed run leaves it: the bytes so far, and what identified the file then."""
    out.mkdir(exist_ok=True)
    (out / (name + ".part")).write_bytes(data)
    (out / (name + ".part.json")).write_text(json.dumps(
        {"url_key": sha(url.encode()), "etag": etag, "last_modified": None, "if_range": etag, "total": total}))


def test_complete_part_file_from_interrupted_run_is_finished(server: FakeServer, out: Path) -> None:
    data = b"x" * 5000
    url = publish(server, "done.bin", data)
    interrupted(out, "done.bin", url, data, total=len(data))  # every byte arrived, the rename did not happen
    assert download.main(["--urls", url, "--output_dir", str(out), "--sha256", sha(data)]) == 0
    assert (out / "done.bin").read_bytes() == data
    assert server.requests_for("/done.bin") == []
    assert sorted(p.name for p in out.iterdir()) == [".download_markers", "SHA256SUMS", "done.bin",
                                                     "download_manifest.json"]


def test_a_part_file_without_validators_is_started_again(server: FakeServer, out: Path) -> None:
    data = os.urandom(3000)
    url = publish(server, "a.bin", data)
    out.mkdir()
    (out / "a.bin.part").write_bytes(b"stale bytes of some other file")  # nothing says what it is
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 0
    assert (out / "a.bin").read_bytes() == data
    assert [r.headers.get("range") for r in server.requests_for("/a.bin")] == [None]


def test_checksum_mismatch_names_url_and_hashes_and_leaves_nothing(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = b"corrupted payload"
    url = publish(server, "model.zip", data)
    wrong = "0" * 64
    assert download.main(["--urls", url, "--output_dir", str(out), "--sha256", wrong]) == 2
    assert f"checksum mismatch for {url}: expected sha256 {wrong}, got {sha(data)}" in caplog.text
    assert not (out / "model.zip").exists()
    assert leftovers(out) == []
    assert not (out / "download_manifest.json").exists()


def test_404_names_url_and_is_not_retried(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.url("/missing.zip")
    assert download.main(["--urls", url, "--output_dir", str(out), *FAST]) == 2
    assert f"HTTP 404 Not Found from {url}" in caplog.text
    assert len(server.requests_for("/missing.zip")) == 1


def test_transient_errors_are_retried(server: FakeServer, out: Path) -> None:
    url = publish(server, "flaky.txt", b"finally")
    server.fail("/flaky.txt", 503, times=2)
    assert download.main(["--urls", url, "--output_dir", str(out), *FAST]) == 0
    assert (out / "flaky.txt").read_bytes() == b"finally"
    assert len(server.requests_for("/flaky.txt")) == 3


def test_retries_exhausted(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = publish(server, "down.txt", b"never")
    server.fail("/down.txt", 503)
    assert download.main(["--urls", url, "--output_dir", str(out), "--retries", "2", *FAST]) == 2
    assert f"download of {url} failed after 3 attempts, last error: HTTP 503" in caplog.text
    assert len(server.requests_for("/down.txt")) == 3
    assert not (out / "down.txt").exists()


def test_rerun_skips_download_and_extraction(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    archive = make_zip({"d/a.txt": b"a"})
    url = publish(server, "d.zip", archive)
    args = ["--urls", url, "--output_dir", str(out), "--sha256", sha(archive)]
    assert download.main(args) == 0
    assert download.main(args) == 0
    assert len(server.requests_for("/d.zip")) == 1
    assert "already done by an earlier run (d.zip, every file as it was), skipping" in caplog.text
    entry = manifest(out)[0]
    assert entry["skipped"] is True and entry["sha256"] == sha(archive) and entry["extracted_files"] == 1
    assert (out / "SHA256SUMS").read_text() == f"{sha(b'a')}  d/a.txt\n"


@pytest.mark.parametrize(("name", "payload", "changed", "damage"), [
    ("d.zip", make_zip({"d/a.txt": b"aaaa", "d/b.txt": b"b"}), "d/a.txt", b"AAAA"),  # same size, other bytes
    ("notes.txt", b"plain notes\n", "notes.txt", b"PLAIN notes\n"),
    ("e.zip", make_zip({"e/a.txt": b"a", "e/b.txt": b"b"}), "e/b.txt", None),  # deleted
])
def test_a_rerun_redoes_a_download_whose_files_changed(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
                                                       name: str, payload: bytes, changed: str,
                                                       damage: bytes | None) -> None:
    url = publish(server, name, payload)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 0
    before = (out / changed).read_bytes()
    if damage is None:
        (out / changed).unlink()
    else:
        (out / changed).write_bytes(damage)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 0
    assert f"{url}: {changed} is missing or changed since the earlier run: redoing {name}" in caplog.text
    assert len(server.requests_for("/" + name)) == 2
    assert (out / changed).read_bytes() == before
    assert manifest(out)[0]["skipped"] is False


def test_rerun_with_other_url_downloads_again(server: FakeServer, out: Path) -> None:
    publish(server, "v1.txt", b"one")
    (server.root / "v2").mkdir()
    publish(server, "v2/v1.txt", b"two")  # same file name, different URL
    assert download.main(["--urls", server.url("/v1.txt"), "--output_dir", str(out)]) == 0
    assert download.main(["--urls", server.url("/v2/v1.txt"), "--output_dir", str(out)]) == 0
    assert (out / "v1.txt").read_bytes() == b"two"
    assert manifest(out)[0]["skipped"] is False


def test_signed_query_is_never_logged_or_recorded(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish(server, "blob.txt", b"data")
    url = server.url("/blob.txt") + "?sv=2024&sig=SAS-SECRET-VALUE"
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 0
    assert server.requests_for("/blob.txt")[0].path.endswith("sig=SAS-SECRET-VALUE")
    assert "SAS-SECRET-VALUE" not in caplog.text
    for path in out.rglob("*"):
        if path.is_file():
            assert b"SAS-SECRET-VALUE" not in path.read_bytes(), path
    assert manifest(out)[0]["url"] == server.url("/blob.txt") + "?..."


def test_progress_is_not_logged_per_chunk(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = publish(server, "five.bin", b"z" * (5 * 1024 * 1024 + 7))
    assert download.main(["--urls", url, "--output_dir", str(out), "--extract", "false"]) == 0
    fetch_lines = [r.getMessage() for r in caplog.records if r.name == "tao_aml.steps.data.http_fetch"]
    assert len(fetch_lines) == 2, fetch_lines  # "downloading ..." and "downloaded ..."


@pytest.mark.parametrize(
    ("name", "payload", "member"),
    [
        ("zip-slip.zip", make_zip({"ok/first.txt": b"1", "../evil.txt": b"x"}), "'../evil.txt'"),
        ("abs.tar.gz", make_tar({"ok/first.txt": b"1", "/tmp/evil.txt": b"x"}), "'/tmp/evil.txt'"),
        ("link.tar.gz", make_tar({"ok/first.txt": b"1"}, symlinks={"ok/link": "/etc/passwd"}), "'ok/link'"),
    ],
)
def test_archive_escaping_output_is_refused(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, name: str, payload: bytes, member: str
) -> None:
    url = publish(server, name, payload)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    assert f"{name}: refusing member {member}" in caplog.text
    assert not (out / "ok").exists(), "nothing is extracted when any member is refused"
    assert not (out.parent / "evil.txt").exists()
    assert not (out / "download_manifest.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--urls", "ftp://example.com/a.zip"],
         "--urls entry 1 (ftp://example.com/a.zip) is not an http(s) URL"),
        (["--urls", " , "], "--urls is empty"),
        (["--urls", "https://h/a.zip,https://h/b.zip", "--sha256", "0" * 64],
         "--sha256 has 1 entries but --urls has 2"),
        (["--urls", "https://h/a.zip", "--sha256", "abc123"],
         "--sha256 entry 1 (for https://h/a.zip) is not a 64-digit hex sha256: 'abc123'"),
        (["--urls", "https://h/x/a.zip,https://h/y/a.zip"],
         "two URLs would be saved as the same file 'a.zip': https://h/x/a.zip and https://h/y/a.zip"),
        (["--urls", "https://h/dir/"], "cannot name a file after URL https://h/dir/"),
        (["--urls", "https://h/a.zip", "--retries", "-1"], "--retries must be 0 or more, got -1"),
        (["--urls", "https://h/a.zip,https://h/b.zip", "--sizes", "12"], "--sizes has 1 entries but --urls has 2"),
        (["--urls", "https://h/a.zip", "--sizes", "1.5e9"],
         "--sizes entry 1 (for https://h/a.zip) is not a size in bytes: '1.5e9'"),
        (["--urls", "https://h/a.zip", "--sizes", "-3"],
         "--sizes entry 1 (for https://h/a.zip) is not a size in bytes"),
    ],
)
def test_bad_arguments(out: Path, caplog: pytest.LogCaptureFixture, args: list[str], message: str) -> None:
    assert download.main([*args, "--output_dir", str(out)]) == 2
    assert message in caplog.text


def test_bad_boolean_is_refused_by_the_parser(out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        download.main(["--urls", "https://h/a.zip", "--output_dir", str(out), "--extract", "maybe"])
    assert exit_info.value.code == 2
    assert "--extract: expected true or false, got 'maybe'" in capsys.readouterr().err


def test_provided_data_skips_the_download(tmp_path):
    provided = tmp_path / "provided"
    provided.mkdir()
    out = tmp_path / "out"
    assert download.main(["--urls", "http://127.0.0.1:9/never.zip", "--output_dir", str(out),
                          "--provided_data", str(provided)]) == 0
    manifest = json.loads((out / "download_manifest.json").read_text())
    assert manifest == {"downloads": [], "provided_data": str(provided), "checked_files": 0}


def test_provided_data_must_be_a_folder(tmp_path, caplog):
    assert download.main(["--urls", "http://127.0.0.1:9/x.zip", "--output_dir", str(tmp_path / "o"),
                          "--provided_data", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in caplog.text


# ---------------------------------------------------------------------------------------------
# Bad downloads never pass as good: each case is served by the real HTTP server on 127.0.0.1.

SRC = Path(__file__).resolve().parents[1] / "src"
MEMBERS = {"data/a.txt": b"a" * 2000, "data/b.txt": b"b" * 3000}


def stored_zip(members: dict[str, bytes]) -> bytes:
    """A zip whose member data is stored as it is, so a test can damage one member's bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def crc_broken_zip() -> bytes:
    """A zip that opens (its directory is intact) but whose second member fails its CRC."""
    data = bytearray(stored_zip(MEMBERS))
    second = bytes(data).index(b"b" * 100)
    data[second + 10] ^= 0xFF
    return bytes(data)


def plain_tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def folders_only_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("data/"), b"")
    return buffer.getvalue()


ZIP = make_zip(MEMBERS)
TGZ = make_tar(MEMBERS)
# Header 512 + data 2000 padded to 2048 for data/a.txt: the second member's header starts at 2560.
TAR_CUT_AT_MEMBER = plain_tar(MEMBERS)[:2560]


def serve_file(data: bytes):
    return lambda server, route: publish(server, route.lstrip("/"), data)


def serve_html(server: FakeServer, route: str) -> None:
    server.add_html(route)


def serve_unsized(data: bytes, cut_after: int | None = None):
    return lambda server, route: server.add_unsized(route, data, cut_after)


def serve_redirect(location: str):
    return lambda server, route: server.add_redirect(route, location)


def serve_cut_with_length(server: FakeServer, route: str) -> None:
    publish(server, route.lstrip("/"), ZIP)
    server.drop_after(route, 1000, times=2)


def serve_expired(server: FakeServer, route: str) -> None:
    publish(server, route.lstrip("/"), ZIP)
    server.expire_signed(route)


BAD_DOWNLOADS = [
    # id, file name, how the server answers, extra arguments, words the message must hold, .part may stay
    ("html-page-named-zip", "d.zip", serve_html, [],
     ["d.zip is an HTML or XML page", "bytes received", "not a zip archive", "sign-in page"], False),
    ("html-page-named-tar", "d.tar.gz", serve_html, [],
     ["d.tar.gz is an HTML or XML page", "not a tar archive"], False),
    ("empty-file-named-zip", "d.zip", serve_file(b""), [], ["d.zip is empty (0 bytes received)"], False),
    ("half-a-zip", "d.zip", serve_file(ZIP[: len(ZIP) // 2]), [],
     ["d.zip is not a complete zip archive", f"{len(ZIP) // 2} bytes received", "File is not a zip file"], False),
    ("cut-short-of-its-content-length", "d.zip", serve_cut_with_length, ["--retries", "1"],
     [f"connection closed after 2000 of {len(ZIP)} bytes", "failed after 2 attempts"], True),
    ("zip-cut-without-length", "d.zip", serve_unsized(ZIP, len(ZIP) - 40), [],
     ["d.zip is not a complete zip archive", f"{len(ZIP) - 40} bytes received", "the server gave no length",
      "cut short"], False),
    ("zip-cut-without-length-size-known", "d.zip", serve_unsized(ZIP, len(ZIP) - 40),
     ["--sizes", str(len(ZIP)), "--retries", "1"],
     [f"connection closed after {len(ZIP) - 40} of {len(ZIP)} bytes", "failed after 2 attempts"], True),
    ("zip-failing-its-crc", "d.zip", serve_file(crc_broken_zip()), [],
     ["d.zip is not a complete zip archive", "Bad CRC-32 for file 'data/b.txt'"], False),
    ("zip-failing-its-crc-check-only", "d.zip", serve_file(crc_broken_zip()), ["--extract", "false"],
     ["d.zip is not a complete zip archive", "Bad CRC-32 for file 'data/b.txt'"], False),
    ("empty-zip", "d.zip", serve_file(make_zip({})), [],
     ["d.zip is a zip archive without any file", "--allow_empty_archives true accepts that"], False),
    ("zip-of-folders-only", "d.zip", serve_file(folders_only_zip()), [], ["d.zip is a zip archive without any file"],
     False),
    ("empty-tar", "d.tar.gz", serve_file(make_tar({})), [], ["d.tar.gz is a tar archive without any file"], False),
    ("tar-gz-cut", "d.tar.gz", serve_file(TGZ[: len(TGZ) // 2]), [],
     ["d.tar.gz is not a complete tar archive", f"{len(TGZ) // 2} bytes received"], False),
    ("tar-cut-at-a-member-boundary", "d.tar", serve_file(TAR_CUT_AT_MEMBER), [],
     ["d.tar is not a complete tar archive", "end-of-archive block"], False),
    ("tar-gz-cut-without-length", "d.tgz", serve_unsized(TGZ, len(TGZ) - 30), [],
     ["d.tgz is not a complete tar archive", "the server gave no length"], False),
    ("size-stated-differs", "d.zip", serve_file(ZIP), ["--sizes", str(len(ZIP) + 1)],
     [f"the server sends {len(ZIP)} bytes but {len(ZIP) + 1} are expected", "nothing was kept"], False),
    ("signed-url-expired", "d.zip", serve_expired, [],
     ["HTTP 403 Forbidden from", "?...; a signed URL: it may have expired or been refused"], False),
    ("redirect-to-a-local-file", "d.zip", serve_redirect("file:///etc/passwd"), [],
     ["redirected (HTTP 302) to file:///etc/passwd", "refused: only https and http URLs are fetched, not file: ones"],
     False),
    ("redirect-to-ftp", "d.zip", serve_redirect("ftp://127.0.0.1/d.zip"), [],
     ["redirected (HTTP 302) to ftp://127.0.0.1/d.zip", "not ftp: ones"], False),
]


def looks_complete(out: Path, name: str, part_may_stay: bool) -> list[str]:
    """What in `out` would pass for a finished download of `name` (or its extraction)."""
    found = [p.relative_to(out).as_posix() for p in out.rglob("*")] if out.exists() else []
    allowed = {".download_markers"} | ({name + ".part", name + ".part.json"} if part_may_stay else set())
    return [path for path in found if path not in allowed]


@pytest.mark.parametrize(("name", "serve", "extra", "words", "part_may_stay"),
                         [case[1:] for case in BAD_DOWNLOADS], ids=[case[0] for case in BAD_DOWNLOADS])
def test_bad_downloads_fail_naming_url_and_bytes_and_leave_nothing_complete(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    name: str, serve, extra: list[str], words: list[str], part_may_stay: bool,
) -> None:
    route = "/" + name
    serve(server, route)
    url = server.url(route) + ("?sig=SECRET-SIG&se=2020-01-01" if serve is serve_expired else "")
    assert download.main(["--urls", url, "--output_dir", str(out), "--retry_wait", "0", *extra]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert server.url(route) in errors[0], errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert "SECRET-SIG" not in caplog.text
    assert looks_complete(out, name, part_may_stay) == []


def test_a_bad_download_as_a_command_exits_2_with_one_line(server: FakeServer, out: Path) -> None:
    server.add_html("/WIDER_train.zip")
    env = dict(os.environ, PYTHONPATH=str(SRC), NO_PROXY="127.0.0.1")
    done = subprocess.run([sys.executable, "-m", "tao_aml.steps.data.download",
                           "--urls", server.url("/WIDER_train.zip"), "--output_dir", str(out)],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if " ERROR " in line] == [
        line for line in done.stderr.splitlines() if "WIDER_train.zip is an HTML or XML page" in line]
    assert looks_complete(out, "WIDER_train.zip", False) == []


def test_only_https_is_fetched_unless_http_is_allowed(server: FakeServer, tmp_path: Path) -> None:
    url = publish(server, "a.txt", b"a")
    with pytest.raises(http_client.FetchError, match=re.escape(
            f"refusing {url}: only https (http only where an http URL was given) URLs are fetched, not http: ones")):
        http_fetch.fetch(url, str(tmp_path / "a.txt"), SETTINGS)
    with pytest.raises(http_client.FetchError, match="not file: ones"):
        http_client.get_bytes("file:///etc/hostname", SETTINGS, allow_http=True)
    assert server.requests == []
    assert http_fetch.fetch(url, str(tmp_path / "a.txt"), SETTINGS, allow_http=True).size == 1


def test_a_redirect_to_plain_http_is_refused_where_http_was_not_given() -> None:
    # The tests serve plain http only: the rule is checked on the redirect an https URL would get.
    request = http_client.Request("https://data.example.org/start", None, follow_keyless=False, allow_http=False)
    with pytest.raises(http_client.FetchError) as refused:
        http_client._redirect_target(request, request.url, 302, "http://data.example.org/a.txt")
    assert str(refused.value) == ("https://data.example.org/start redirected (HTTP 302) to http://data.example.org/"
                                  "a.txt; refused: only https (http only where an http URL was given) URLs are "
                                  "fetched, not http: ones")


def test_a_body_without_length_that_is_complete_is_accepted(server: FakeServer, out: Path) -> None:
    server.add_unsized("/d.zip", ZIP)
    assert download.main(["--urls", server.url("/d.zip"), "--output_dir", str(out)]) == 0
    assert (out / "data/b.txt").read_bytes() == MEMBERS["data/b.txt"]


def test_sizes_are_checked_and_recorded_and_decide_reuse(server: FakeServer, out: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    url = publish(server, "d.zip", ZIP)
    assert download.main(["--urls", url, "--output_dir", str(out), "--sizes", str(len(ZIP))]) == 0
    marker = json.loads((out / ".download_markers/d.zip.json").read_text())
    assert (marker["bytes"], marker["sha256"]) == (len(ZIP), sha(ZIP))
    assert download.main(["--urls", url, "--output_dir", str(out), "--sizes", str(len(ZIP))]) == 0
    assert len(server.requests_for("/d.zip")) == 1
    # Another expected size is other work: the earlier marker does not satisfy it.
    assert download.main(["--urls", url, "--output_dir", str(out), "--sizes", "7"]) == 2
    assert f"the server sends {len(ZIP)} bytes but 7 are expected" in caplog.text
    assert not (out / "download_manifest.json").exists()
    assert not (out / ".download_markers/d.zip.json").exists()


def test_empty_archive_is_accepted_when_allowed(server: FakeServer, out: Path) -> None:
    url = publish(server, "empty.zip", make_zip({}))
    assert download.main(["--urls", url, "--output_dir", str(out), "--allow_empty_archives", "true"]) == 0
    assert manifest(out)[0]["extracted_files"] == 0


def test_a_failure_after_a_good_file_leaves_no_manifest_and_the_rerun_resumes(
    server: FakeServer, out: Path
) -> None:
    first, second = publish(server, "one.zip", make_zip({"one/a.txt": b"1"})), publish(server, "two.zip", ZIP)
    assert download.main(["--urls", f"{first},{second}", "--output_dir", str(out)]) == 0
    (server.root / "two.zip").write_bytes(b"<html>maintenance</html>")
    (out / ".download_markers/two.zip.json").unlink()  # as if two.zip had never been done
    assert download.main(["--urls", f"{first},{second}", "--output_dir", str(out)]) == 2
    assert not (out / "download_manifest.json").exists(), "an earlier run's manifest must not survive a failure"
    assert sorted(p.name for p in (out / ".download_markers").iterdir()) == ["one.zip.json"]
    (server.root / "two.zip").write_bytes(ZIP)
    assert download.main(["--urls", f"{first},{second}", "--output_dir", str(out)]) == 0
    assert [e["skipped"] for e in manifest(out)] == [True, False]
    assert len(server.requests_for("/one.zip")) == 1


def test_extraction_merges_into_folders_and_cleans_a_killed_run(server: FakeServer, out: Path) -> None:
    out.mkdir()
    (out / ".extracting-old.zip" / "half").mkdir(parents=True)  # a run killed while extracting
    urls = [publish(server, "a.zip", make_zip({"annotations/a.json": b"{}"})),
            publish(server, "b.zip", make_zip({"annotations/b.json": b"[]", "images/x.jpg": b"x"}))]
    assert download.main(["--urls", ",".join(urls), "--output_dir", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        ".download_markers/a.zip.json", ".download_markers/b.zip.json", "SHA256SUMS", "annotations/a.json",
        "annotations/b.json", "download_manifest.json", "images/x.jpg"]
    assert (out / "SHA256SUMS").read_text().splitlines() == [
        f"{sha(b'{}')}  annotations/a.json", f"{sha(b'[]')}  annotations/b.json", f"{sha(b'x')}  images/x.jpg"]


def test_a_member_where_a_folder_is_is_refused_before_anything_moves(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (out / "data").mkdir(parents=True)
    url = publish(server, "d.zip", make_zip({"other.txt": b"o", "data": b"a file"}))
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    assert f"d.zip: cannot put 'data' in place: {out / 'data'} is already there as a folder" in caplog.text
    assert not (out / "other.txt").exists() and not (out / "d.zip").exists()
    assert [p.name for p in out.iterdir() if not p.name.startswith(".download")] == ["data"]


# ---------------------------------------------------------------------------------------------
# Every download ends, and no lie gets in: servers that stall, lie or send bombs, on 127.0.0.1.

# Small limits so that a stalled request ends in about a second: a block of 100 bytes must arrive within 1 s.
QUICK = ["--connect_timeout", "1", "--read_timeout", "1", "--min_speed", "100", "--retries", "1", "--retry_wait", "0"]


def fails_cleanly(out: Path, name: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
                  *words: str, part_may_stay: bool = False) -> str:
    """The single error line holds every word; no traceback; nothing of `name` looks complete."""
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert looks_complete(out, name, part_may_stay) == []
    return errors[0]


@pytest.mark.parametrize(("in_headers", "words"), [
    (False, ["stalled after", "fewer than 100 bytes in 1 s, below --min_speed 100 bytes/s"]),
    (True, ["no answer within 2 s"]),
], ids=["trickling-body", "trickling-headers"])
def test_a_server_that_trickles_is_cut_off_in_bounded_time(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    in_headers: bool, words: list[str],
) -> None:
    server.trickle("/slow.zip", 10_000, 0.2, in_headers=in_headers)  # 5 bytes/s: it would take 33 minutes
    started = time.monotonic()
    assert download.main(["--urls", server.url("/slow.zip"), "--output_dir", str(out), *QUICK]) == 2
    assert time.monotonic() - started < 10
    fails_cleanly(out, "slow.zip", caplog, capsys, server.url("/slow.zip"), "failed after 2 attempts", *words,
                  part_may_stay=True)
    assert len(server.requests_for("/slow.zip")) == 2


def test_a_server_that_never_answers_ends_with_a_timeout(out: Path, caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/d.zip"
        started = time.monotonic()
        assert download.main(["--urls", url, "--output_dir", str(out), *QUICK]) == 2
    assert time.monotonic() - started < 10
    fails_cleanly(out, "d.zip", caplog, capsys, f"download of {url} failed after 2 attempts, last error: no answer")


def test_a_file_changed_between_the_partial_download_and_the_resume_is_started_again(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = os.urandom(300_000), os.urandom(300_000)
    url = publish(server, "big.bin", old)
    server.drop_after("/big.bin", 100_000)
    assert download.main(["--urls", url, "--output_dir", str(out), "--retries", "0"]) == 2
    assert (out / "big.bin.part").stat().st_size == 100_000
    (server.root / "big.bin").write_bytes(new)  # same size, new ETag
    assert download.main(["--urls", url, "--output_dir", str(out), "--sha256", sha(new)]) == 0
    assert (out / "big.bin").read_bytes() == new
    resume = server.requests_for("/big.bin")[-1]
    assert resume.headers["range"] == "bytes=100000-" and resume.headers["if-range"].startswith('"')
    assert "the server sent the whole file instead of the rest from byte 100000 (it changed" in caplog.text


def test_a_lying_server_that_resumes_a_changed_file_is_caught_by_its_validator(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = os.urandom(300_000), os.urandom(300_000)
    url = publish(server, "big.bin", old)
    server.ignore_if_range("/big.bin")  # answers 206 for whatever file it has now
    server.drop_after("/big.bin", 100_000)
    assert download.main(["--urls", url, "--output_dir", str(out), "--retries", "0"]) == 2
    (server.root / "big.bin").write_bytes(new)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 0
    assert (out / "big.bin").read_bytes() == new, "a file stitched from two versions must never pass"
    assert [r.headers.get("range") for r in server.requests_for("/big.bin")] == [None, "bytes=100000-", None]
    assert "not resuming at byte 100000: its ETag changed from" in caplog.text


def test_last_modified_alone_identifies_the_file_for_a_resume(server: FakeServer, out: Path) -> None:
    old, new = os.urandom(300_000), os.urandom(300_000)
    url = publish(server, "big.bin", old)
    server.validators("/big.bin", etag=False)
    server.drop_after("/big.bin", 100_000)
    assert download.main(["--urls", url, "--output_dir", str(out), "--retries", "0"]) == 2
    (server.root / "big.bin").write_bytes(new)
    os.utime(server.root / "big.bin", (time.time() + 60, time.time() + 60))
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 0
    assert (out / "big.bin").read_bytes() == new
    resume = server.requests_for("/big.bin")[1]
    assert resume.headers["if-range"].endswith(" GMT")


def test_a_file_the_server_does_not_identify_is_never_resumed(server: FakeServer, out: Path) -> None:
    data = os.urandom(300_000)
    url = publish(server, "big.bin", data)
    server.validators("/big.bin", etag=False, last_modified=False)
    server.drop_after("/big.bin", 100_000)
    assert download.main(["--urls", url, "--output_dir", str(out), *FAST]) == 0
    assert (out / "big.bin").read_bytes() == data
    assert [r.headers.get("range") for r in server.requests_for("/big.bin")] == [None, None]


def test_a_server_sending_more_than_the_known_size_is_cut_off(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_unsized("/d.zip", ZIP + os.urandom(50_000))  # states no length, sends more than it should
    assert download.main(["--urls", server.url("/d.zip"), "--output_dir", str(out), "--sizes", str(len(ZIP))]) == 2
    fails_cleanly(out, "d.zip", caplog, capsys, f"the server sent more than the {len(ZIP)} bytes expected",
                  "nothing was kept")


def bomb_tar(size: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for index in range(3):
            info = tarfile.TarInfo(f"zeros/{index}.bin")
            info.size = size
            archive.addfile(info, io.BytesIO(bytes(size)))
    return buffer.getvalue()


def bomb_zip(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", bytes(size))
    return buffer.getvalue()


BOMB_ZIP = bomb_zip(20_000_000)  # 20 MB of zeros deflate to about 20 KB


@pytest.mark.parametrize(("name", "payload", "extra", "words"), [
    ("bomb.zip", BOMB_ZIP, [], [f"more than --max_ratio 100 times its own {len(BOMB_ZIP)} bytes", "zip bomb"]),
    ("bomb.tar.gz", bomb_tar(5_000_000), [], ["more than --max_ratio 100 times its own"]),
    ("big.zip", ZIP, ["--max_extracted_bytes", "4000"], ["more than --max_extracted_bytes 4000 (5000 bytes so far)"]),
    ("bomb-checked-only.zip", BOMB_ZIP, ["--extract", "false"], ["more than --max_ratio 100"]),
], ids=["zip-bomb", "tar-gz-bomb", "over-max-bytes", "zip-bomb-check-only"])
def test_an_archive_that_explodes_is_refused_before_it_is_inflated(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    name: str, payload: bytes, extra: list[str], words: list[str],
) -> None:
    url = publish(server, name, payload)
    assert download.main(["--urls", url, "--output_dir", str(out), *extra]) == 2
    fails_cleanly(out, name, caplog, capsys, f"{name}: refusing to extract: its files add up to", *words)


def test_an_archive_within_raised_limits_extracts(server: FakeServer, out: Path) -> None:
    url = publish(server, "zeros.zip", BOMB_ZIP)
    assert download.main(["--urls", url, "--output_dir", str(out), "--max_ratio", "2000"]) == 0
    assert (out / "zeros.bin").stat().st_size == 20_000_000


def zip_with_duplicates(*names: str) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a name given twice, and writes it
        with zipfile.ZipFile(buffer, "w") as archive:
            for index, name in enumerate(names):
                archive.writestr(name, f"version {index}".encode())
    return buffer.getvalue()


def tar_with_duplicates(*names: str) -> bytes:
    """A tar that lists a name again, as `tar --append` leaves one (tar's own rule: the last one wins)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for index, name in enumerate(names):
            data = f"version {index}".encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "payload", "words"), [
    ("dup.zip", zip_with_duplicates("d/a.txt", "d/b.txt", "d/a.txt"),
     ["refusing member 'd/a.txt': member 'd/a.txt' is extracted to the same path d/a.txt"]),
    ("dup.tar", tar_with_duplicates("d/a.txt", "d/a.txt"),
     ["refusing member 'd/a.txt': member 'd/a.txt' is extracted to the same path d/a.txt"]),
    ("dot.zip", zip_with_duplicates("d/a.txt", "d/./a.txt"), ["refusing member 'd/./a.txt'", "same path d/a.txt"]),
    ("slashes.zip", zip_with_duplicates("d/a.txt", "d//a.txt"), ["refusing member 'd//a.txt'", "same path d/a.txt"]),
    ("file-and-folder.zip", zip_with_duplicates("d", "d/a.txt"),
     ["refusing member 'd/a.txt': member 'd' is a file where it needs the folder d"]),
    ("records.zip", zip_with_duplicates("SHA256SUMS"), ["refusing member 'SHA256SUMS': the step keeps its own"]),
    ("control.zip", zip_with_duplicates("d/a\x1b[31m.txt"), ["its name holds a control character"]),
], ids=["zip-duplicate", "tar-duplicate", "dot-segment", "double-slash", "file-and-folder", "own-records",
        "control-character"])
def test_archive_members_may_not_overwrite_each_other(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    name: str, payload: bytes, words: list[str],
) -> None:
    url = publish(server, name, payload)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    fails_cleanly(out, name, caplog, capsys, f"{name}: ", *words)


def test_a_tar_that_lists_a_file_twice_is_refused_even_when_only_checked(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    url = publish(server, "dup.tar", tar_with_duplicates("a.txt", "a.txt"))  # once counted as 2 files
    assert download.main(["--urls", url, "--output_dir", str(out), "--extract", "false"]) == 2
    fails_cleanly(out, "dup.tar", caplog, capsys, "refusing member 'a.txt'", "same path a.txt")


@pytest.mark.parametrize(("first", "second", "words", "done", "kept"), [
    (("notes.txt", b"verified notes\n"), ("a.zip", make_zip({"notes.txt": b"replaced"})),
     "a.zip: refusing member 'notes.txt': it would replace notes.txt, the file downloaded from",
     ["notes.txt.json"], {"notes.txt": b"verified notes\n"}),
    (("a.zip", make_zip({"data/x.txt": b"from a"})), ("b.zip", make_zip({"data/x.txt": b"from b"})),
     "b.zip: refusing member 'data/x.txt': it would replace data/x.txt, a file verified with a.zip",
     ["a.zip.json"], {"data/x.txt": b"from a"}),
    (("a.zip", make_zip({"b.zip": b"not the archive"})), ("b.zip", make_zip({"b/x.txt": b"x"})),
     "a.zip: refusing member 'b.zip': it would replace b.zip, the file downloaded from", [], {}),
], ids=["member-over-a-downloaded-file", "member-over-another-archives-file", "member-named-as-a-later-download"])
def test_no_download_replaces_a_file_another_verified(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    first: tuple[str, bytes], second: tuple[str, bytes], words: str, done: list[str], kept: dict[str, bytes],
) -> None:
    urls = [publish(server, first[0], first[1]), publish(server, second[0], second[1])]
    assert download.main(["--urls", ",".join(urls), "--output_dir", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and words in errors[0], errors
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert not (out / "download_manifest.json").exists() and not (out / "SHA256SUMS").exists()
    assert sorted(p.name for p in (out / ".download_markers").iterdir()) == done
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
             if p.is_file() and not p.relative_to(out).as_posix().startswith(".download_markers")}
    assert files == kept, "the verified files are untouched and the refused download left nothing"


def test_a_download_may_not_replace_a_file_an_archive_left(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = publish(server, "a.zip", make_zip({"notes.txt": b"from a"}))
    assert download.main(["--urls", first, "--output_dir", str(out)]) == 0
    second = publish(server, "notes.txt", b"plain notes\n")  # a rerun with a longer list
    assert download.main(["--urls", f"{first},{second}", "--output_dir", str(out)]) == 2
    assert f"{second}: refusing to save it as notes.txt: that is a file verified with a.zip" in caplog.text
    assert (out / "notes.txt").read_bytes() == b"from a"
    assert server.requests_for("/notes.txt") == []
    assert not (out / "download_manifest.json").exists()


def with_login(url: str, login: str = "reader:s3cr3t-pw") -> str:
    return url.replace("http://", f"http://{login}@", 1)


def test_a_login_in_the_url_is_sent_to_its_host_and_never_shown(server: FakeServer, out: Path) -> None:
    publish(server, "data.zip", ZIP)
    server.add_redirect("/start/data.zip", server.url("/data.zip"))  # same host: the login goes along
    url = with_login(server.url("/start/data.zip")) + "?sig=SAS-SECRET"
    env = dict(os.environ, PYTHONPATH=str(SRC), NO_PROXY="127.0.0.1", TAO_AML_VERBOSE="1")  # urllib3 logs at DEBUG
    done = subprocess.run([sys.executable, "-m", "tao_aml.steps.data.download", "--urls", url,
                           "--output_dir", str(out)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    basic = "Basic " + base64.b64encode(b"reader:s3cr3t-pw").decode()
    assert [r.headers.get("authorization") for r in server.requests] == [basic, basic]
    assert "s3cr3t-pw" not in done.stdout + done.stderr and "SAS-SECRET" not in done.stderr
    assert server.url("/start/data.zip") + "?..." in done.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-pw" not in path.read_bytes() and b"reader" not in path.read_bytes(), path


@pytest.mark.parametrize(("url_of", "words"), [
    (lambda server: with_login(server.url("/missing.zip")), "HTTP 404 Not Found from http://127.0.0.1:"),
    (lambda server: "http://reader:s3cr3t-pw@127.0.0.1:port/x.zip", "--urls entry 1 ((a malformed URL)) is not an"),
    (lambda server: "http://reader:s3cr3t-pw@[::1/x.zip", "--urls entry 1 ((a malformed URL)) is not an"),
], ids=["refused", "port-not-a-number", "bad-ipv6-host"])
def test_a_login_in_a_failing_url_is_never_shown(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str], url_of, words: str) -> None:
    assert download.main(["--urls", url_of(server), "--output_dir", str(out), *FAST]) == 2
    message = fails_cleanly(out, "x.zip", caplog, capsys, words)
    assert "s3cr3t-pw" not in caplog.text and "reader" not in message


def test_a_request_with_a_login_is_not_redirected_to_another_host(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    with serving(tmp_path / "elsewhere") as elsewhere:
        publish(elsewhere, "data.zip", ZIP)
        server.add_redirect("/data.zip", elsewhere.url("/data.zip"))
        assert download.main(["--urls", with_login(server.url("/data.zip")), "--output_dir", str(out)]) == 2
        assert elsewhere.requests == []
    fails_cleanly(out, "data.zip", caplog, capsys, f"{server.url('/data.zip')} redirected (HTTP 302) to "
                  f"{elsewhere.url('/data.zip')}, another host; refused: the request carries a key")
    assert "s3cr3t-pw" not in caplog.text


@pytest.mark.parametrize(("location", "words"), [
    ("http://[::1", "redirected (HTTP 302) to a malformed URL; refused"),
    ("http://[zz::1]/d.zip", "redirected (HTTP 302) to a malformed URL; refused"),
    ("http://127.0.0.1:notaport/d.zip", "refused: it is not a valid URL"),
    ("", "redirected (HTTP 302) without saying where to"),
], ids=["ipv6-unclosed", "ipv6-not-an-address", "port-not-a-number", "no-location"])
def test_a_malformed_redirect_is_one_clear_line(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str], location: str, words: str) -> None:
    server.add_redirect("/d.zip", location)
    assert download.main(["--urls", server.url("/d.zip"), "--output_dir", str(out)]) == 2
    fails_cleanly(out, "d.zip", caplog, capsys, server.url("/d.zip"), words)


@pytest.mark.parametrize("path", ["/a%00.zip", "/a%0a.zip", "/dir%2Fa.zip", "/a%5C..%5Cb.zip", "/SHA256SUMS"])
def test_a_file_name_that_is_not_plain_is_refused(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
                                                  capsys: pytest.CaptureFixture[str], path: str) -> None:
    url = server.base_url + path
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    fails_cleanly(out, "", caplog, capsys, f"cannot name a file after URL {url}: its path must end in a plain file "
                  "name")
    assert server.requests == []


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--read_timeout", "0", "--read_timeout must be more than 0, got 0.0"),
    ("--connect_timeout", "-1", "--connect_timeout must be more than 0, got -1.0"),
    ("--min_speed", "0", "--min_speed must be more than 0, got 0"),
    ("--max_ratio", "0", "--max_ratio must be more than 0, got 0.0"),
    ("--max_extracted_bytes", "-5", "--max_extracted_bytes must be more than 0, got -5"),
])
def test_limits_must_be_positive(out: Path, caplog: pytest.LogCaptureFixture, flag: str, value: str,
                                 message: str) -> None:
    assert download.main(["--urls", "https://h/a.zip", "--output_dir", str(out), flag, value]) == 2
    assert message in caplog.text


# ---------------------------------------------------------------------------------------------
# A data asset is checked on every reuse against the sha256s its first download recorded.


@pytest.fixture
def asset(server: FakeServer, tmp_path: Path) -> Path:
    """A folder as the first download leaves it, and as Azure ML registers it as a data asset."""
    folder = tmp_path / "asset"
    urls = [publish(server, "d.zip", ZIP), publish(server, "notes.txt", b"notes\n")]
    assert download.main(["--urls", ",".join(urls), "--output_dir", str(folder)]) == 0
    return folder


def test_a_reused_data_asset_is_checked_file_by_file(asset: Path, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "out"
    assert download.main(["--urls", "https://h/d.zip", "--output_dir", str(out), "--provided_data", str(asset)]) == 0
    assert json.loads((out / "download_manifest.json").read_text())["checked_files"] == 3
    assert f"checked 3 files against {asset / 'SHA256SUMS'} in" in caplog.text
    assert sorted(line.split("  ")[1] for line in (asset / "SHA256SUMS").read_text().splitlines()) == [
        "data/a.txt", "data/b.txt", "notes.txt"]


@pytest.mark.parametrize(("damage", "words"), [
    (lambda a: (a / "data/b.txt").write_bytes(b"B" * 3000), ["data/b.txt: sha256", "when it was downloaded",
                                                             "SHA256SUMS line 2", "the data changed since"]),
    (lambda a: (a / "notes.txt").unlink(), ["notes.txt is missing: ", "SHA256SUMS line 3 lists it"]),
    (lambda a: (a / "SHA256SUMS").write_text("0" * 64 + "  ../../etc/passwd\n"), ["SHA256SUMS line 1 names a path "
                                                                                   "outside the folder"]),
    (lambda a: (a / "SHA256SUMS").write_text("not a sum\n"), ["SHA256SUMS line 1 is not '<sha256>  <path>'"]),
    (lambda a: (a / "SHA256SUMS").write_bytes(b"\xff\xfe"), ["SHA256SUMS is not UTF-8 text"]),
], ids=["changed-file", "missing-file", "path-outside", "not-a-sum", "not-utf8"])
def test_a_reused_data_asset_that_changed_is_refused(asset: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                     capsys: pytest.CaptureFixture[str], damage, words) -> None:
    damage(asset)
    out = tmp_path / "out"
    assert download.main(["--urls", "https://h/d.zip", "--output_dir", str(out), "--provided_data", str(asset)]) == 2
    fails_cleanly(out, "", caplog, capsys, *words)


def test_provided_data_without_sums_is_used_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    provided = tmp_path / "mine"
    (provided / "WIDER_train").mkdir(parents=True)
    assert download.main(["--urls", "https://h/d.zip", "--output_dir", str(tmp_path / "out"),
                          "--provided_data", str(provided)]) == 0
    assert f"{provided} has no SHA256SUMS (it was not made by this step): its files are not checked" in caplog.text


def test_the_environments_proxy_is_used(server: FakeServer, out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(server, "a.txt", b"through the proxy")  # the test server answers as a plain http proxy would
    monkeypatch.setenv("http_proxy", server.base_url)
    monkeypatch.setenv("no_proxy", "localhost")
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert download.main(["--urls", "http://data.example.invalid/a.txt", "--output_dir", str(out)]) == 0
    assert (out / "a.txt").read_bytes() == b"through the proxy"
    assert [r.path for r in server.requests] == ["http://data.example.invalid/a.txt"]


@pytest.mark.parametrize(("in_the_way", "words"), [
    ("a.bin.part", "cannot write "),
    ("a.bin", "cannot put "),
], ids=["partial-file-is-a-folder", "file-is-a-folder"])
def test_a_folder_in_the_way_is_one_clear_line(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
                                               capsys: pytest.CaptureFixture[str], in_the_way: str,
                                               words: str) -> None:
    url = publish(server, "a.bin", b"data")
    (out / in_the_way).mkdir(parents=True)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and words in errors[0] and str(out / in_the_way) in errors[0], errors
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert not (out / "download_manifest.json").exists()


def test_a_servers_reason_phrase_cannot_put_escape_codes_in_the_log(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    server.add_status("/d.zip", 404, "Not Found\x1b]0;owned\x07\x1b[2J")
    assert download.main(["--urls", server.url("/d.zip"), "--output_dir", str(out)]) == 2
    fails_cleanly(out, "d.zip", caplog, capsys, f"HTTP 404 Not Found?]0;owned??[2J from {server.url('/d.zip')}")
    assert "\x1b" not in caplog.text and "\x07" not in caplog.text
