"""The download step and its HTTP core, against a real HTTP server on 127.0.0.1."""

import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_server import FakeServer, serving
from tao_aml.steps import download, http_fetch

FAST = ["--retry_wait", "0"]


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


def test_complete_part_file_from_interrupted_run_is_finished(server: FakeServer, out: Path) -> None:
    data = b"x" * 5000
    url = publish(server, "done.bin", data)
    out.mkdir()
    (out / "done.bin.part").write_bytes(data)  # every byte arrived, the rename did not happen
    assert download.main(["--urls", url, "--output_dir", str(out), "--sha256", sha(data)]) == 0
    assert (out / "done.bin").read_bytes() == data
    assert [r.headers.get("range") for r in server.requests_for("/done.bin")] == ["bytes=5000-"]


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


def test_rerun_skips_download_and_extraction(server: FakeServer, out: Path) -> None:
    archive = make_zip({"d/a.txt": b"a"})
    url = publish(server, "d.zip", archive)
    args = ["--urls", url, "--output_dir", str(out), "--sha256", sha(archive)]
    assert download.main(args) == 0
    (out / "d/a.txt").write_bytes(b"edited")  # extraction must not run again either
    assert download.main(args) == 0
    assert len(server.requests_for("/d.zip")) == 1
    assert (out / "d/a.txt").read_bytes() == b"edited"
    entry = manifest(out)[0]
    assert entry["skipped"] is True and entry["sha256"] == sha(archive) and entry["extracted_files"] == 1


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
    fetch_lines = [r.getMessage() for r in caplog.records if r.name == "tao_aml.steps.http_fetch"]
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
    assert manifest == {"downloads": [], "provided_data": str(provided)}


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
    allowed = {".download_markers"} | ({name + ".part"} if part_may_stay else set())
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
    done = subprocess.run([sys.executable, "-m", "tao_aml.steps.download", "--urls", server.url("/WIDER_train.zip"),
                           "--output_dir", str(out)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if " ERROR " in line] == [
        line for line in done.stderr.splitlines() if "WIDER_train.zip is an HTML or XML page" in line]
    assert looks_complete(out, "WIDER_train.zip", False) == []


def test_only_https_is_fetched_unless_http_is_allowed(server: FakeServer, tmp_path: Path) -> None:
    url = publish(server, "a.txt", b"a")
    with pytest.raises(http_fetch.FetchError, match=re.escape(
            f"refusing {url}: only https (http only where an http URL was given) URLs are fetched, not http: ones")):
        http_fetch.fetch(url, str(tmp_path / "a.txt"))
    with pytest.raises(http_fetch.FetchError, match="not file: ones"):
        http_fetch.get_bytes("file:///etc/hostname", allow_http=True)
    assert server.requests == []
    assert http_fetch.fetch(url, str(tmp_path / "a.txt"), allow_http=True).size == 1


def test_a_redirect_to_plain_http_is_refused_where_http_was_not_given(server: FakeServer) -> None:
    # As an https URL that redirects to http: the request does not allow http, its redirect target is http.
    server.add_redirect("/start", server.url("/a.txt"))
    request = urllib.request.Request(server.url("/start"))
    request.allow_http = False  # type: ignore[attr-defined]
    with pytest.raises(http_fetch.FetchError) as refused:
        http_fetch._open(request, 10)
    assert str(refused.value) == (f"{server.url('/start')} redirected (HTTP 302) to {server.url('/a.txt')}; refused: "
                                  "only https (http only where an http URL was given) URLs are fetched, not http: ones")
    assert [r.route for r in server.requests] == ["/start"]


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
        ".download_markers/a.zip.json", ".download_markers/b.zip.json", "annotations/a.json", "annotations/b.json",
        "download_manifest.json", "images/x.jpg"]


def test_a_member_where_a_folder_is_is_refused_before_anything_moves(
    server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (out / "data").mkdir(parents=True)
    url = publish(server, "d.zip", make_zip({"other.txt": b"o", "data": b"a file"}))
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    assert f"d.zip: cannot put 'data' in place: {out / 'data'} is already there as a folder" in caplog.text
    assert not (out / "other.txt").exists() and not (out / "d.zip").exists()
    assert [p.name for p in out.iterdir() if not p.name.startswith(".download")] == ["data"]
