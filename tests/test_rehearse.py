"""`tao-aml rehearse NAME`: every pipeline on this machine, offline, TAO simulated, on a sample of data shaped
like a user's own folder (the end-to-end tests rehearse on generated data); the model folder it leaves is
accepted by `predict --local` and refused by `model register`, `deploy` and `triton`.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.ai.ml.entities import Model

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from tao_aml import simulate
from tao_aml.cli import main
from tao_aml.repo.pipelines import Pipeline
from tao_aml.simulate import invocations
from tao_aml.simulate.data import make_coco, make_kitti, make_wider_download, random_images

REFUSED = "was made by `tao-aml rehearse` with TAO simulated (SIMULATED.json)"


def users_wider(folder: Path) -> tuple[Path, int]:
    """WIDER FACE as a user extracts it: one folder deeper than the download step leaves it, 30 + 12 images."""
    make_wider_download(folder, random_images(30, seed=11), random_images(12, seed=12), top_folder="WIDER")
    return folder / "WIDER", 30


def users_coco(folder: Path) -> tuple[Path, int]:
    return make_coco(folder, train=20, val=8), 20


def users_kitti(folder: Path) -> tuple[Path, int]:
    """A user's KITTI folder: capitalised class names (TAO lower-cases them) and a class not trained."""
    root = make_kitti(folder, count=30, size=(320, 192), extra_class="Van")
    for label in (root / "labels").glob("frame_00[0-4].txt"):
        label.write_text(label.read_text().replace("car ", "Car "))
    return root, 30


USERS = {"facenet": ("wider_data", users_wider), "bodypose": ("coco_data", users_coco),
         "detectnet_v2": ("kitti_data", users_kitti)}


def rehearse(workdir: Path, *args: str) -> int:
    return main(["rehearse", *args, "--workdir", str(workdir)])


@dataclass
class Rehearsed:
    folder: Path  # the user's data
    images: int  # training images in it
    workdir: Path
    out: str
    calls: list[dict]
    elapsed: float

    @property
    def model(self) -> Path:
        return self.workdir / "run" / "register_model" / "model"


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Rehearsed]:
    """One rehearsal per pipeline on a sample of 10 images per split of a user's folder, shared by the tests."""
    done: dict[str, Rehearsed] = {}

    def of(name: str) -> Rehearsed:
        if name not in done:
            base = tmp_path_factory.mktemp(name)
            data_input, make = USERS[name]
            folder, images = make(base / "mine")
            with pytest.MonkeyPatch.context() as patch, redirect_stdout(io.StringIO()) as out:
                patch.setenv("TAO_STANDIN_LOG", str(base / "tao.jsonl"))
                started = time.monotonic()
                code = rehearse(base / "rehearsal", name, "--input", f"{data_input}={folder}", "--sample", "10")
                elapsed = time.monotonic() - started
            assert code == 0, out.getvalue()
            done[name] = Rehearsed(folder, images, base / "rehearsal", out.getvalue(), invocations(base / "tao.jsonl"),
                                   elapsed)
        return done[name]

    return of


@pytest.mark.parametrize("name", sorted(USERS))
def test_a_rehearsal_on_a_sample_of_the_users_data_runs_every_step_offline(
    name: str, rehearsed: Callable[[str], Rehearsed], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    done = rehearsed(name)
    out = done.out
    print(f"rehearse {name}: {done.elapsed:.1f} s")  # the figure the report gives (-s shows it)

    # Every step, in order, with the command line the service runs (the key masked).
    order = Pipeline.load(name).component.topological_order()
    shown = re.findall(r"^  ([a-z_0-9]+): python -m tao_aml\.steps\.\S+ ", out, re.M)
    assert shown == order
    assert "--key nvidia_tlt" not in out and "--key ***" in out
    assert "TAO was simulated: this rehearsal proves paths, specs, data and settings, not accuracy" in out
    assert done.calls and all(call["ok"] for call in done.calls)

    # The user's folder, read up to --sample images per split; nothing downloaded, NGC answered on 127.0.0.1.
    run = done.workdir / "run"
    assert re.search(r"--(limit|max_images) 10\b", out) and done.images > 10
    assert str(done.folder) in out and not (done.workdir / "data").exists()
    pretrained = json.loads(next((run / "pretrained").rglob("model_info.json")).read_text())
    assert pretrained["source"].startswith("http://127.0.0.1:")

    model = done.model
    assert re.search(rf"^model folder \(simulated\): {re.escape(str(model))}$", out, re.M)
    card = json.loads((model / "model_card.json").read_text())
    assert card["tags"]["simulated"] == "true" and "SIMULATED.json" in card["files"]
    assert json.loads((model / "SIMULATED.json").read_text())["simulated"] is True
    assert (run / "report" / "report" / "report.md").is_file()

    # The Triton repository is refused in one line, nothing written.
    assert main(["triton", str(model), "--output-dir", str(tmp_path / "triton")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and REFUSED in err
    assert not (tmp_path / "triton").exists()


def test_predict_runs_on_a_rehearsed_model_and_says_it_is_simulated(
    rehearsed: Callable[[str], Rehearsed], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    done = rehearsed("detectnet_v2")
    image = sorted((done.workdir / "run" / "prepare" / "val" / "images").iterdir())[0]
    assert main(["predict", "--local", str(done.model), str(image), "--output-dir", str(tmp_path / "pred")]) == 0
    out = capsys.readouterr().out
    assert "classes car, cyclist, pedestrian" in out
    assert "made by tao-aml rehearse with TAO simulated: its boxes show the output format" in out
    [found] = json.loads((tmp_path / "pred" / "detections.json").read_text())
    assert found["detections"], "the simulated export plants one box per class"


def test_model_register_and_deploy_refuse_a_rehearsed_model(
    rehearsed: Callable[[str], Rehearsed], tmp_path: Path, fake_azure: FakeAzure,  # noqa: F811
    config: Path, capsys: pytest.CaptureFixture
) -> None:
    """The card (and so the asset's tags) of a rehearsal, had its folder reached a job's output or a registry."""
    card = json.loads((rehearsed("detectnet_v2").model / "model_card.json").read_text())

    fake_azure.pipeline_job("job_1", {"main.register_model": "job_1_register_model"}, "Completed")
    fake_azure.outputs[("job_1_register_model", "model")] = {"model_card.json": json.dumps(card)}
    assert main(["model", "register", "job_1", "--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the model of job job_1 {REFUSED}" in err
    assert not [call for call in fake_azure.calls if call[0] == "models.create_or_update"]

    tags = {**card["tags"], "triton_model_name": "tao-detectnet-v2"}
    fake_azure.models[("tao-detectnet-v2-triton", "1")] = {"entity": Model(
        name="tao-detectnet-v2-triton", version="1", type="triton_model", tags=tags,
        path="azureml://jobs/j/outputs/model/paths/triton/"), "rest": {}}
    assert main(["deploy", "--model", "tao-detectnet-v2-triton:1", "--endpoint", "tao-cars", "--config", str(config),
                 "--output-dir", str(tmp_path / "build")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"model tao-detectnet-v2-triton:1 {REFUSED}" in err
    assert not [call for call in fake_azure.calls if call[0].startswith("online_")]


def test_faults_are_reported_as_a_real_run_reports_them(
    rehearsed: Callable[[str], Rehearsed], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # Capitals TAO lower-cases, and a class not trained, are shown as the data step warns of them.
    out = rehearsed("detectnet_v2").out
    assert re.search(r"^      warning: .*classes written with capitals \(TAO lower-cases them", out, re.M)
    assert re.search(r"^      warning: .*class van .* is not in --classes: its objects are dropped", out, re.M)

    folder, _ = users_kitti(tmp_path / "mine")
    # A spec override TAO would refuse: refused before anything runs.
    assert rehearse(tmp_path / "a", "detectnet_v2", "--set", "train.training_config.num_epoch=3") == 2
    assert "--set train.training_config.num_epoch" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    # A size off the 16-pixel grid: TAO's spec validator stops train, as on a GPU node.
    assert rehearse(tmp_path / "b", "detectnet_v2", "--set", "image_width=100") == 1
    err = capsys.readouterr().err
    assert "error: step train failed" in err
    assert "augmentation_config.preprocessing.output_image_width should be % 16. Wrong value: 100" in err

    # A bad label line: the data step fails naming the file and line; no model folder.
    (folder / "labels" / "frame_001.txt").write_text("Car 0.00 0 0.0 1 2 3\n")
    assert rehearse(tmp_path / "c", "detectnet_v2", "--input", f"kitti_data={folder}", "--sample", "10") == 1
    err = capsys.readouterr().err
    assert f"{folder}/labels/frame_001.txt:1: expected 15 fields" in err
    assert "error: step prepare failed with exit code" in err and "a run on Azure ML would fail the same way" in err
    assert not (tmp_path / "c" / "run" / "register_model").exists()


def test_the_workdir_of_something_else_is_refused_and_a_rehearsal_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    assert rehearse(tmp_path / "photos", "facenet") == 2
    assert "not empty and not the folder of a rehearsal (it has no rehearsal.json)" in capsys.readouterr().err
    assert [path.name for path in (tmp_path / "photos").iterdir()] == ["cat.jpg"]


def test_a_missing_extra_is_named_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(simulate.NEEDS, "onnx_not_installed_here", "onnx")
    assert rehearse(tmp_path / "r", "facenet") == 2
    err = capsys.readouterr().err
    assert err == "error: simulating TAO needs onnx, which this Python lacks: pip install -e '.[rehearse]'\n"
    assert not (tmp_path / "r").exists()
