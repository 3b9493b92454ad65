"""The NGC model step against a fake NGC API and a separate fake storage host on 127.0.0.1."""

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from http_server import FakeServer, add_ngc_model, ngc_files_route, serving
from tao_aml.steps.data import ngc_model

FACENET = "nvidia/tao/facenet:unpruned_v2.0"
# Small limits so that a stalled request ends in about a second.
QUICK = ["--connect_timeout", "1", "--read_timeout", "1", "--min_speed", "100"]
SRC = Path(__file__).resolve().parents[1] / "src"
KEY = "nvapi-TOPSECRET-0123456789"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.delenv("NGC_API_KEY", raising=False)
    with serving(tmp_path / "api") as srv:
        yield srv


@pytest.fixture
def storage(tmp_path: Path, api: FakeServer) -> Iterator[FakeServer]:
    """A second origin, like NGC's signed-URL storage host."""
    with serving(tmp_path / "storage") as srv:
        yield srv


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "models"


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)


def run(api: FakeServer, out: Path, model: str = FACENET, *extra: str) -> int:
    return ngc_model.main(["--model", model, "--output_dir", str(out), "--api_base", api.base_url,
                           "--retry_wait", "0", *extra])


def info(out: Path) -> dict:
    return json.loads((out / "model_info.json").read_text())


def test_public_model_listing_and_download(api: FakeServer, storage: FakeServer, out: Path) -> None:
    weights = os.urandom(4096)
    sums = add_ngc_model(api, FACENET, {"model.tlt": weights, "labels.txt": b"face\n"}, storage=storage)
    assert run(api, out) == 0
    folder = out / "facenet_vunpruned_v2.0"
    assert (folder / "model.tlt").read_bytes() == weights
    assert (folder / "labels.txt").read_bytes() == b"face\n"
    meta = info(out)
    assert meta["model"] == FACENET and meta["version"] == "unpruned_v2.0"
    assert meta["model_file"] == "facenet_vunpruned_v2.0/model.tlt"
    assert meta["files"] == ["facenet_vunpruned_v2.0/labels.txt", "facenet_vunpruned_v2.0/model.tlt"]
    assert meta["sha256s"]["facenet_vunpruned_v2.0/model.tlt"] == sums["model.tlt"]
    listing = ngc_files_route(FACENET)
    assert listing == "/v2/models/nvidia/tao/facenet/versions/unpruned_v2.0/files"
    assert [r.route for r in api.requests] == [listing, f"{listing}/model.tlt", f"{listing}/labels.txt"]
    assert len(storage.requests) == 2  # each file followed the redirect to the storage host
    assert not any("authorization" in r.headers for r in api.requests + storage.requests)


def test_older_listing_with_signed_urls(api: FakeServer, storage: FakeServer, out: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    model = "nvidia/tao/bodyposenet:trainable_v1.0"
    sums = add_ngc_model(api, model, {"model.tlt": b"bpnet-weights"}, storage=storage, listing="V1")
    assert run(api, out, model) == 0
    meta = info(out)
    assert meta["model_file"] == "bodyposenet_vtrainable_v1.0/model.tlt"
    assert meta["sha256s"] == {"bodyposenet_vtrainable_v1.0/model.tlt": sums["model.tlt"]}
    assert len(storage.requests) == 1 and "Signature=" in storage.requests[0].path
    assert "s3cr3t-signature" not in caplog.text
    assert "s3cr3t-signature" not in (out / "model_info.json").read_text()


def test_model_without_team(api: FakeServer, out: Path) -> None:
    add_ngc_model(api, "nvidia/detector:v1", {"weights/model.hdf5": b"h5"})
    assert run(api, out, "nvidia/detector:v1") == 0
    assert info(out)["model_file"] == "detector_vv1/weights/model.hdf5"
    assert api.requests[0].route == "/v2/models/nvidia/detector/versions/v1/files"


def test_resume_through_the_redirect(api: FakeServer, storage: FakeServer, out: Path) -> None:
    weights = os.urandom(200_000)
    add_ngc_model(api, FACENET, {"model.tlt": weights}, storage=storage)
    blob = "/ngc-storage/nvidia/tao/facenet/unpruned_v2.0/model.tlt"
    storage.drop_after(blob, 50_000)
    assert run(api, out) == 0
    assert (out / "facenet_vunpruned_v2.0/model.tlt").read_bytes() == weights
    assert [r.headers.get("range") for r in storage.requests_for(blob)] == [None, "bytes=50000-"]


def test_size_mismatch_with_listing_leaves_nothing(api: FakeServer, storage: FakeServer, out: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"12345"}, storage=storage)
    (storage.root / "ngc-storage/nvidia/tao/facenet/unpruned_v2.0/model.tlt").write_bytes(b"123")
    assert run(api, out) == 2
    assert "model.tlt: the server sends 3 bytes but 5 are expected; nothing was kept" in caplog.text
    assert not (out / "facenet_vunpruned_v2.0").exists() or list((out / "facenet_vunpruned_v2.0").iterdir()) == []
    assert not (out / "model_info.json").exists()


def test_private_model_with_key_sends_it_to_the_api_only(api: FakeServer, storage: FakeServer,
                                                          out: Path) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"private weights"}, storage=storage, token=KEY)
    env = dict(os.environ, PYTHONPATH=str(SRC), MY_NGC_KEY=KEY, NO_PROXY="127.0.0.1", TAO_AML_VERBOSE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tao_aml.steps.data.ngc_model", "--model", FACENET, "--output_dir", str(out),
         "--api_base", api.base_url, "--api_key_env", "MY_NGC_KEY"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "facenet_vunpruned_v2.0/model.tlt").read_bytes() == b"private weights"
    assert [r.headers.get("authorization") for r in api.requests] == [f"Bearer {KEY}"] * 2
    assert [r.headers.get("authorization") for r in storage.requests] == [None]
    assert "with the API key from MY_NGC_KEY" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    assert "TOPSECRET" not in proc.stdout + proc.stderr
    for path in out.rglob("*"):
        if path.is_file():
            assert b"TOPSECRET" not in path.read_bytes(), path


def test_private_model_without_key_explains(
    api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"w"}, token=KEY)
    assert run(api, out) == 2
    url = api.url(ngc_files_route(FACENET))
    assert f"NGC refused access to {FACENET} (HTTP 401 Unauthorized from {url})" in caplog.text
    assert "the model may be private: set environment variable NGC_API_KEY" in caplog.text
    assert len(api.requests) == 1  # a 401 is final, not retried


def test_wrong_key_is_refused_and_not_shown(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"w"}, token=KEY)
    monkeypatch.setenv("NGC_API_KEY", "nvapi-WRONG-KEY-VALUE")
    assert run(api, out) == 2
    assert "the API key in NGC_API_KEY was refused" in caplog.text
    assert api.requests[0].headers["authorization"] == "Bearer nvapi-WRONG-KEY-VALUE"
    captured = capsys.readouterr()
    assert "WRONG-KEY" not in caplog.text + captured.out + captured.err


def test_key_with_whitespace_is_refused_without_echo(
    api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NGC_API_KEY", "nvapi-abc def")
    add_ngc_model(api, FACENET, {"model.tlt": b"w"})
    assert run(api, out) == 2
    assert "environment variable NGC_API_KEY contains whitespace or control characters" in caplog.text
    assert "abc def" not in caplog.text
    assert api.requests == []


def test_unknown_model_404(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert run(api, out, "nvidia/tao/nosuchnet:v9") == 2
    url = api.url("/v2/models/nvidia/tao/nosuchnet/versions/v9/files")
    assert f"NGC has no model version nvidia/tao/nosuchnet:v9 (HTTP 404 Not Found from {url})" in caplog.text


def test_listing_retries_exhausted(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"w"})
    api.fail(ngc_files_route(FACENET), 502)
    assert run(api, out, FACENET, "--retries", "1") == 2
    url = api.url(ngc_files_route(FACENET))
    assert f"GET {url} failed after 2 attempts, last error: HTTP 502" in caplog.text


def test_rerun_skips_without_requests(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"w" * 10})
    assert run(api, out) == 0
    seen = len(api.requests)
    assert run(api, out) == 0
    assert len(api.requests) == seen
    for damage in (b"short", b"W" * 10):  # cut short, or the same size with other bytes: fetched again
        (out / "facenet_vunpruned_v2.0/model.tlt").write_bytes(damage)
        assert run(api, out) == 0
        assert (out / "facenet_vunpruned_v2.0/model.tlt").read_bytes() == b"w" * 10
    assert caplog.text.count("facenet_vunpruned_v2.0/model.tlt is missing or changed since the earlier run") == 2
    assert len(api.requests) == 3 * seen  # the listing and the file (and its redirect), twice more


@pytest.mark.parametrize("info_text", ["[]", '{"model": "nvidia/tao/facenet:unpruned_v2.0", "bytes": 3}', "\xff"])
def test_a_malformed_model_info_is_redone_not_a_traceback(api: FakeServer, out: Path, info_text: str) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"w" * 10})
    out.mkdir()
    (out / "model_info.json").write_text(info_text, encoding="latin-1")
    assert run(api, out) == 0
    assert info(out)["model_file"] == "facenet_vunpruned_v2.0/model.tlt"


def test_no_trainable_model_file(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    add_ngc_model(api, "nvidia/tao/facenet:deployable_v1.0", {"model.etlt": b"e", "int8.txt": b"c"})
    assert run(api, out, "nvidia/tao/facenet:deployable_v1.0") == 2
    assert ("expected exactly one .tlt/.hdf5 file to train from, found 0 among ['model.etlt', 'int8.txt']"
            in caplog.text)


def test_unsafe_path_in_listing(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    add_ngc_model(api, FACENET, {"../escape.tlt": b"x"})
    assert run(api, out) == 2
    assert "names an unsafe file path '../escape.tlt'" in caplog.text
    assert not (out / "escape.tlt").exists()


def test_listing_that_is_not_json(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture) -> None:
    api.add_bytes(ngc_files_route(FACENET), b"<html>maintenance</html>", "text/html")
    assert run(api, out) == 2
    assert f"NGC answered {api.url(ngc_files_route(FACENET))} with something that is not JSON" in caplog.text


@pytest.mark.parametrize(
    "model",
    ["facenet", "nvidia/tao/facenet", "nvidia/tao/facenet:", "../tao/facenet:v1", "a/b/c/d:v1",
     "nvidia/tao/face net:v1", "nvidia//facenet:v1"],
)
def test_bad_model_string(api: FakeServer, out: Path, caplog: pytest.LogCaptureFixture, model: str) -> None:
    assert run(api, out, model) == 2
    assert f"--model {model!r} is not an NGC model version: expected org/team/name:version" in caplog.text
    assert api.requests == []


@pytest.mark.parametrize(("api_base", "shown"), [
    ("ftp://ngc", "'ftp://ngc'"),
    ("http://[::1", "'(a malformed URL)'"),
    ("https://me:pa55word@ngc.example/?sig=x", "'https://ngc.example/?...'"),
])
def test_bad_api_base(out: Path, caplog: pytest.LogCaptureFixture, api_base: str, shown: str) -> None:
    assert ngc_model.main(["--model", FACENET, "--output_dir", str(out), "--api_base", api_base]) == 2
    assert f"--api_base {shown} is not an http(s) URL" in caplog.text
    assert "pa55word" not in caplog.text


def test_sha256_recorded_matches_file(api: FakeServer, out: Path) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"abc"})
    assert run(api, out) == 0
    path = out / info(out)["model_file"]
    assert info(out)["sha256s"][info(out)["model_file"]] == hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Bad answers never pass as good: every case exits 2 naming the cause, and no model_info.json is left.

STORAGE_BLOB = "/ngc-storage/nvidia/tao/facenet/unpruned_v2.0/model.tlt"
LISTING = ngc_files_route(FACENET)


def publish_facenet(api: FakeServer, storage: FakeServer, listing: str = "V2") -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"weights" * 100, "labels.txt": b"face\n"}, storage=storage,
                  listing=listing)


def signed_url_expired(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    storage.expire_signed("/ngc-storage/")


def listing_url_is_a_local_file(api: FakeServer, storage: FakeServer) -> None:
    api.add_json(LISTING, {"filepath": ["model.tlt"], "urls": ["file:///etc/passwd"],
                           "requestStatus": {"statusCode": "SUCCESS"}})


def file_redirects_to_a_local_file(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    api.add_redirect(f"{LISTING}/model.tlt", "file:///etc/passwd")


def listing_without_sizes(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    api.add_json(LISTING, {"modelFiles": [{"path": "model.tlt"}], "requestStatus": {"statusCode": "SUCCESS"}})


def listing_entry_not_an_object(api: FakeServer, storage: FakeServer) -> None:
    api.add_json(LISTING, {"modelFiles": ["model.tlt"], "requestStatus": {"statusCode": "SUCCESS"}})


def storage_sends_an_html_page(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    storage.add_html(STORAGE_BLOB)


def storage_cuts_the_body_without_length(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    storage.add_unsized(STORAGE_BLOB, b"weights" * 100, cut_after=300)


def listing(document: dict):
    """A file listing of another shape than NGC's: each one once ended in a traceback."""

    def setup(api: FakeServer, storage: FakeServer) -> None:
        publish_facenet(api, storage)
        api.add_json(LISTING, dict(document, requestStatus=document.get("requestStatus", {"statusCode": "SUCCESS"})))

    return setup


def listing_redirects_elsewhere(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    api.add_redirect(LISTING, storage.url("/ngc-storage/listing.json"))


def storage_trickles(api: FakeServer, storage: FakeServer) -> None:
    publish_facenet(api, storage)
    storage.trickle(STORAGE_BLOB, 700, 0.2)


BAD_NGC = [
    ("signed-url-expired", signed_url_expired,
     ["the storage host refused a download of nvidia/tao/facenet:unpruned_v2.0", "HTTP 403 Forbidden",
      "signed download URLs are short-lived", "the API key is not involved"]),
    ("listing-url-is-a-local-file", listing_url_is_a_local_file,
     [f"{LISTING} gives 'model.tlt' the URL file:///etc/passwd",
      "refused: only https and http URLs are fetched, not file: ones"]),
    ("file-redirects-to-a-local-file", file_redirects_to_a_local_file,
     [f"{LISTING}/model.tlt redirected (HTTP 302) to file:///etc/passwd", "not file: ones"]),
    ("listing-without-sizes", listing_without_sizes, [f"{LISTING} gives 'model.tlt' no size in bytes"]),
    ("listing-entry-not-an-object", listing_entry_not_an_object, ["has a modelFiles entry that is not an object"]),
    ("storage-sends-an-html-page", storage_sends_an_html_page,
     [f"{LISTING}/model.tlt: the server sends", "but 700 are expected"]),
    ("storage-cuts-the-body-without-length", storage_cuts_the_body_without_length,
     ["connection closed after 300 of 700 bytes", "failed after 2 attempts"]),
    ("model-files-not-a-list", listing({"modelFiles": None}),
     [f"{LISTING} has 'modelFiles' that is not a list (NoneType); the API may have changed"]),
    ("request-status-not-an-object", listing({"modelFiles": [], "requestStatus": "SUCCESS"}),
     ["has 'requestStatus' that is not an object (str)"]),
    ("total-pages-not-a-number", listing({"modelFiles": [{"path": "model.tlt", "sizeInBytes": 700}],
                                          "paginationInfo": {"totalPages": "two"}}),
     ["gives totalPages 'two', not a number of pages from 1 to 100"]),
    ("total-pages-endless", listing({"modelFiles": [{"path": "model.tlt", "sizeInBytes": 700}],
                                     "paginationInfo": {"totalPages": 10 ** 9}}),
     ["gives totalPages 1000000000, not a number of pages"]),
    ("filepath-not-a-list", listing({"filepath": "model.tlt", "urls": ["https://x/model.tlt"]}),
     ["has 'filepath' that is not a list (str)"]),
    ("url-not-a-string", listing({"filepath": ["model.tlt"], "urls": [None]}),
     ["gives 'model.tlt' the URL None; refused: it is not a string"]),
    ("path-not-a-string", listing({"modelFiles": [{"path": 7, "sizeInBytes": 700}]}),
     ["names an unsafe file path 7"]),
    ("path-listed-twice", listing({"modelFiles": [{"path": "model.tlt", "sizeInBytes": 700},
                                                  {"path": "./model.tlt", "sizeInBytes": 5}]}),
     ["names 'model.tlt' twice ('model.tlt' and './model.tlt')"]),
    ("listing-redirects-to-another-host", listing_redirects_elsewhere,
     [f"{LISTING} redirected (HTTP 302) to", "another host; refused: the request carries a key"]),
    ("storage-trickles", storage_trickles,
     ["stalled after", "below --min_speed 100 bytes/s", "failed after 2 attempts"]),
]


@pytest.mark.parametrize(("setup", "words"), [case[1:] for case in BAD_NGC], ids=[case[0] for case in BAD_NGC])
def test_bad_ngc_answers_fail_clearly_and_leave_no_model_info(
    api: FakeServer, storage: FakeServer, out: Path, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, setup, words: list[str],
) -> None:
    monkeypatch.setenv("NGC_API_KEY", KEY)  # a key is set: a storage refusal must still not be blamed on it
    setup(api, storage)
    started = time.monotonic()
    assert run(api, out, FACENET, "--retries", "1", *QUICK) == 2
    assert time.monotonic() - started < 10
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert KEY not in caplog.text and "s3cr3t-signature" not in caplog.text
    assert not (out / "model_info.json").exists()
    assert not (out / "facenet_vunpruned_v2.0/model.tlt").exists()
    assert all(r.headers.get("authorization") is None for r in storage.requests)


def test_a_failed_fetch_removes_an_earlier_model_info(api: FakeServer, storage: FakeServer, out: Path) -> None:
    add_ngc_model(api, "nvidia/tao/bodyposenet:trainable_v1.0", {"model.tlt": b"bpnet"})
    assert run(api, out, "nvidia/tao/bodyposenet:trainable_v1.0") == 0
    signed_url_expired(api, storage)
    assert run(api, out) == 2
    assert not (out / "model_info.json").exists(), "the next step must not load the earlier model"


def test_api_refusing_the_key_is_still_blamed_on_the_key(api: FakeServer, out: Path, caplog,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    add_ngc_model(api, FACENET, {"model.tlt": b"w"})
    api.fail(LISTING, 403)
    monkeypatch.setenv("NGC_API_KEY", KEY)
    assert run(api, out) == 2
    assert "NGC refused access to nvidia/tao/facenet:unpruned_v2.0 (HTTP 403 Forbidden from" in caplog.text
    assert "the API key in NGC_API_KEY was refused" in caplog.text
