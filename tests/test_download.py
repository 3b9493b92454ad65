"""The download step and its HTTP core, against a real HTTP server on 127.0.0.1."""

import hashlib
import io
import json
import logging
import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_server import FakeServer, serving
from tao_aml.steps import download

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


def test_corrupt_archive_is_reported(server: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = make_zip({"a.txt": b"a" * 1000})
    broken = good[:200] + b"\0" * 300 + good[500:]  # central directory intact, data damaged
    url = publish(server, "broken.zip", broken)
    assert download.main(["--urls", url, "--output_dir", str(out)]) == 2
    assert f"cannot extract {out / 'broken.zip'}" in caplog.text


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
