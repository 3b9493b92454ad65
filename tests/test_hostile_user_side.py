"""Hostile and careless input at the user-side boundaries, through the real CLI entry (issue 19).

Each case gives `tao-aml` an input a careless or hostile user might: a path for a pipeline name, settings
files that are not UTF-8 or not the expected shape, a downloaded model card that points outside its folder
or holds tensor names that would need escaping, an endpoint that answers nonsense or redirects elsewhere, a
step folder that is a link. Each asserts the exit code, one clear line naming the file, URL or argument, no
traceback, and that nothing was written where it should not be (the repository's pipelines/, the output
folder, the link's target) and no key went where it should not.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from azure.ai.ml.entities import ManagedOnlineEndpoint
from PIL import Image

from azure_recorder import FakeAzure, FakeMLClient, fake_azure  # noqa: F401  (fixture)
from model_fixtures import facenet_args, facenet_outputs
from tao_aml.cli import main
from tao_aml.repo.pipelines import REPO_ROOT
from tao_aml.steps.asset import register_model

NOT_UTF8 = b"smoke:\n  train_epochs: \xff\xfe 3\n"
KEY = "endpoint-key-never-elsewhere"


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def copy_repository(tmp_path: Path) -> Path:
    """The YAML of the repository in a folder of its own, to break one settings file per case."""
    root = tmp_path / "repo"
    for name in ("components", "environments", "pipelines", "compute"):
        shutil.copytree(REPO_ROOT / name, root / name)
    (root / "src").symlink_to(REPO_ROOT / "src")  # the components' code snapshot
    return root


@dataclass
class Case:
    """argv built from a tmp folder (where it may break files first); what must come back."""

    name: str
    argv: Callable[[Path], list[str]]
    code: int
    message: str
    # folders (relative to tmp_path, or absolute) whose content must not change
    unchanged: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()  # paths (relative to tmp_path) that must not exist afterwards
    fixtures: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- pipeline names

def _submit(name: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["submit", name.format(repo=REPO_ROOT), "--dry-run", "--output-dir", str(tmp / "build")]


NAMES = [
    Case("absolute path", _submit("{repo}/pipelines/facenet"), 2,
         f"no pipeline '{REPO_ROOT}/pipelines/facenet'; known pipelines: bodypose, detectnet_v2, facenet (the "
         "PIPELINE argument is a folder name of pipelines/, not a path)", (str(REPO_ROOT / "pipelines"),), ("build",)),
    Case("relative climb", _submit("../pipelines/facenet"), 2, "no pipeline '../pipelines/facenet'",
         (str(REPO_ROOT / "pipelines"),), ("build",)),
    Case("through another folder", _submit("facenet/../bodypose"), 2, "no pipeline 'facenet/../bodypose'",
         (str(REPO_ROOT / "pipelines"),), ("build",)),
    Case("profile show with a path", lambda tmp: ["profile", "show", f"{REPO_ROOT}/pipelines/facenet", "smoke"], 2,
         "the PIPELINE argument is a folder name of pipelines/"),
    Case("local run with a path", lambda tmp: ["run", "../facenet", "--local", "--workdir", str(tmp / "w")], 2,
         "no pipeline '../facenet'", absent=("w",)),
]


# ------------------------------------------------------------------------- settings files

def _broken(relative: str, content: bytes, *argv: str) -> Callable[[Path], list[str]]:
    def build(tmp: Path) -> list[str]:
        root = copy_repository(tmp)
        (root / relative).write_bytes(content)
        return [arg.format(root=root, tmp=tmp) for arg in argv]
    return build


SETTINGS = [
    Case("config.json not UTF-8", lambda tmp: _write(tmp / "config.json", b'{"subscription_id": "\xff"}')
         + ["submit", "facenet", "--config", str(tmp / "config.json"), "--output-dir", str(tmp / "build")], 3,
         "config.json: not a readable JSON file ('utf-8' codec can't decode byte 0xff", absent=("build",)),
    Case("profiles.yml not UTF-8", _broken("pipelines/facenet/profiles.yml", NOT_UTF8, "submit", "facenet",
                                           "--root", "{root}", "--profile", "smoke", "--dry-run", "--output-dir",
                                           "{tmp}/build"), 2,
         "pipelines/facenet/profiles.yml: not UTF-8 text (byte 0xff at offset 23)", absent=("build",)),
    Case("profiles.yml not UTF-8, profile show", _broken("pipelines/facenet/profiles.yml", NOT_UTF8, "profile",
                                                         "show", "facenet", "smoke", "--root", "{root}"), 2,
         "profiles.yml: not UTF-8 text"),
    Case("profiles.yml not YAML", _broken("pipelines/facenet/profiles.yml", b"smoke: [train_epochs: 3\n",
                                          "profile", "show", "facenet", "smoke", "--root", "{root}"), 2,
         # the parser's own words follow (libyaml's or PyYAML's, whichever the wheel has)
         "profiles.yml: not valid YAML (line 2, column 1: "),
    Case("data_assets.yml not UTF-8", _broken("pipelines/facenet/data_assets.yml", b"wider: \xe9\n", "submit",
                                              "facenet", "--root", "{root}", "--dry-run", "--output-dir",
                                              "{tmp}/build"), 2,
         "pipelines/facenet/data_assets.yml: not UTF-8 text (byte 0xe9 at offset 7)", absent=("build",)),
    Case("data_assets.yml a list", _broken("pipelines/facenet/data_assets.yml", b"- wider\n- coco\n", "submit",
                                           "facenet", "--root", "{root}", "--dry-run", "--output-dir",
                                           "{tmp}/build"), 2,
         "data_assets.yml: expected a mapping of entry names to `asset` and `output`", absent=("build",)),
]


def _write(path: Path, content: bytes) -> list[str]:
    path.write_bytes(content)
    return []


# ------------------------------------------------------------------------- tao-aml triton

@pytest.fixture
def asset(tmp_path: Path) -> Path:
    """A FaceNet model asset as `az ml model download` leaves it."""
    outputs = facenet_outputs(tmp_path / "steps")
    assert register_model.main(facenet_args(outputs)) == 0
    return outputs["out"]


def _card(edit: Callable[[dict, Path], None]) -> Callable[[Path], list[str]]:
    """`tao-aml triton --plan` on the asset after `edit(card, asset folder)`; the engine is a T4 engine."""
    def build(tmp: Path) -> list[str]:
        folder = tmp / "steps" / "model"
        card = json.loads((folder / "model_card.json").read_text())
        card["engine"]["gpu"] = {"name": "Tesla T4", "compute_capability": "7.5"}
        edit(card, folder)
        (folder / "model_card.json").write_text(json.dumps(card))
        (tmp / "secret.txt").write_text("ssh-rsa PRIVATE")
        return ["triton", str(folder), "--output-dir", str(tmp / "triton"), "--plan"]
    return build


def _set(path: str, value: object) -> Callable[[dict, Path], None]:
    def edit(card: dict, folder: Path) -> None:
        node = card
        *parents, last = path.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def _link(name: str) -> Callable[[dict, Path], None]:
    def edit(card: dict, folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).symlink_to(folder.parent.parent / "secret.txt")
    return edit


TRITON = [
    Case("engine_file climbs out", _card(_set("engine.engine_file", "../../secret.txt")), 2,
         "the engine's engine_file '../../secret.txt' is not a file name inside"),
    Case("engine_file absolute", _card(lambda card, folder: _set("engine.engine_file", str(folder.parent.parent
                                                                                        / "secret.txt"))(card, folder)),
         2, "secret.txt' is not a file name inside"),
    Case("engine a link out", _card(_link("model.engine")), 2, "model.engine is a link to"),
    Case("model.onnx a link out", _card(_link("model.onnx")), 2, "model.onnx is a link to"),
    Case("card lists a file outside", _card(_set("files", {"../../secret.txt": {}})), 2,
         "a file of the card '../../secret.txt' is not a file name inside"),
    Case("tensor name closes the message", _card(_set("postprocessing.network.input", 'input_1:0" } ] output [ {')),
         2, "tensor name 'input_1:0\" } ] output [ {' is not a TensorFlow tensor name"),
    Case("tensor name with a newline", _card(_set("postprocessing.network.cov", "output_cov/Sigmoid:0\nplatform")),
         2, "tensor name 'output_cov/Sigmoid:0\\nplatform' is not a TensorFlow tensor name"),
    Case("dimension that is text", _card(_set("postprocessing.network.height", "96 ] } instance_group [")), 2,
         "tensor dimension '96 ] } instance_group [' is not a whole number"),
    Case("model name that is a list", _card(_set("triton.model", ["a", "b"])), 2,
         "model name ['a', 'b'] cannot name a Triton model"),
    Case("engine GPU that is text", _card(_set("engine.gpu", "T4")), 2,
         "no TensorRT plan for T4 GPUs: engine.json does not record the GPU that built the engine"),
    Case("postprocessing without network", _card(_set("postprocessing", {"classes": ["face"]})), 2,
         "the model card's postprocessing section lacks 'network'"),
    Case("card not an object", lambda tmp: _write(tmp / "steps" / "model" / "model_card.json", b"[1, 2]")
         + ["triton", str(tmp / "steps" / "model"), "--output-dir", str(tmp / "triton")], 2,
         "model_card.json is not a model card: a JSON object is expected"),
]
for case in TRITON:
    case.absent, case.fixtures = ("triton",), ["asset"]


# ------------------------------------------------------------------------- local run step folders

def _linked_step(tmp: Path) -> list[str]:
    workdir, elsewhere = tmp / "w", tmp / "elsewhere"
    workdir.mkdir()
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not ours")
    (workdir / "run.json").write_text(json.dumps({"pipeline": "facenet"}))
    (workdir / "download_wider").symlink_to(elsewhere)
    return ["run", "facenet", "--local", "--no-docker", "--workdir", str(workdir)]


LOCAL = [
    Case("a step folder that is a link", _linked_step, 2,
         "download_wider is a symbolic link (to {tmp}/elsewhere); step download_wider writes only into real folders",
         unchanged=("elsewhere",)),
]


CASES = NAMES + SETTINGS + TRITON + LOCAL


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input_is_one_clear_line(case: Case, tmp_path: Path, request, capsys) -> None:
    for name in case.fixtures:
        request.getfixturevalue(name)
    argv = case.argv(tmp_path)
    folders = [Path(f) if os.path.isabs(f) else tmp_path / f for f in case.unchanged]
    before = {folder: files_under(folder) for folder in folders}
    assert main(argv) == case.code
    captured = capsys.readouterr()
    assert case.message.replace("{tmp}", str(tmp_path)) in captured.err
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in captured.err
    for folder in folders:
        assert files_under(folder) == before[folder], f"{folder} changed"
    for name in case.absent:
        assert not (tmp_path / name).exists(), f"{name} was written"
    assert "ssh-rsa PRIVATE" not in captured.out + captured.err


# ------------------------------------------------------------------------- predict --endpoint

class Hostile(BaseHTTPRequestHandler):
    """A Triton endpoint gone wrong: `answer` decides the reply; every request's path and key are recorded."""

    answer: Callable[[BaseHTTPRequestHandler], None]
    seen: list[tuple[str, str | None]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, self.headers.get("Authorization")))
        type(self).answer(self)

    do_GET = do_POST  # noqa: N815 (a redirected POST comes back as a GET)

    def log_message(self, *args: object) -> None:
        pass


def reply(status: int, body: bytes, reason: str | None = None, **headers: str) -> Callable:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status, reason)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)
    return answer


@pytest.fixture
def servers():  # type: ignore[no-untyped-def]
    """Start a hostile endpoint and a second host on 127.0.0.1; yields a function that starts one."""
    started = []

    def start(answer: Callable) -> tuple[str, list]:
        handler = type("Handler", (Hostile,), {"answer": answer, "seen": []})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", handler.seen

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


ENDPOINT_CASES = {
    "html instead of JSON": (reply(200, b"<html>\x1b[2J maintenance</html>"),
                             "answered something that is not a v2 inference response: Expecting value"),
    "JSON of another shape": (reply(200, b'{"outputs": {"output_cov/Sigmoid:0": 1}}'),
                              "answered something that is not a v2 inference response: string indices"),
    "a list": (reply(200, b"[1, 2, 3]"), "not a v2 inference response: list indices must be integers"),
    "header length past the body": (reply(200, b"{}", Inference_Header_Content_Length="99"),
                                    "Inference-Header-Content-Length 99 for a body of 2 bytes"),
    "binary size past the body": (reply(200, json.dumps({"outputs": [{"name": "x", "shape": [4], "parameters": {
        "binary_data_size": 16}}]}).encode()), "binary_data_size 16 does not fit the FP32 data sent"),
    "escape codes in an error": (reply(500, b"\x1b]0;pwned\x07\x1b[31mdown", reason="\x1b[31mEVIL"),
                                 "answered 500: ?]0;pwned??[31mdown"),
}


@pytest.mark.parametrize("name", list(ENDPOINT_CASES))
def test_a_malformed_endpoint_answer_is_one_line(name: str, asset: Path, tmp_path: Path, servers, config,
                                                 fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    answer, message = ENDPOINT_CASES[name]
    base, seen = servers(answer)
    out = endpoint_call(fake_azure, base, asset, tmp_path)
    assert out == 2
    err = capsys.readouterr().err
    assert f"error: {base}/v2/models/tao-facenet/infer " in err and message in err, err
    assert "\x1b" not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    assert seen == [("/v2/models/tao-facenet/infer", f"Bearer {KEY}")]


def test_a_redirect_to_another_host_is_not_followed_with_the_key(asset: Path, tmp_path: Path, servers, config,
                                                                 fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    other, stolen = servers(reply(200, b"{}"))
    for status in (302, 307):
        base, seen = servers(reply(status, b"", Location=f"{other}/collect?sig=abc"))
        assert endpoint_call(fake_azure, base, asset, tmp_path) == 2
        err = capsys.readouterr().err
        assert f"answered {status}, a redirect to {other}/collect?...: not followed (the endpoint key is sent to " \
               "the endpoint only)" in err and "sig=abc" not in err
        assert len(seen) == 1
    assert stolen == []  # the other host never heard from us, with or without the key


def endpoint_call(azure: FakeAzure, base: str, asset: Path, tmp_path: Path) -> int:
    azure.scoring_base = base
    FakeMLClient(azure, "credential").online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name="faces", auth_mode="key"))
    azure.endpoint_keys["faces"] = KEY
    picture = tmp_path / "a.png"
    Image.new("RGB", (160, 96), (90, 120, 150)).save(picture)
    return main(["predict", "--endpoint", "faces", "--model-dir", str(asset), str(picture), "--output-dir",
                 str(tmp_path / "out"), "--config", str(tmp_path / "config.json")])
