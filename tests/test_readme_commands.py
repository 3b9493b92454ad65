"""The README's two first commands stay what CI runs; every `tao-aml` command of README.md and docs/ runs as
shown, from a folder holding Studio's config.json, against the recorded fake of the service and a fake `az`;
except `submit` (tests/test_submit.py runs those), `run` (tests/test_local_run_cli.py checks those: they run
whole pipelines) and `rehearse` (the quickstart's rehearsal runs below, then `predict` on its model, as the
README and docs/workstation.md show it)."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
from azure.ai.ml.entities import Model
from PIL import Image

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from doc_commands import EXAMPLE_VALUES, REPO, doc_text, shown_commands, tao_aml_commands
from model_fixtures import facenet_args, facenet_outputs
from tao_aml.cli import main
from tao_aml.steps.asset import register_model
from test_images import fake_az  # noqa: F401  (fixture)

JOB = EXAMPLE_VALUES["JOB"]
QUICKSTART = "Quickstart"


def test_the_readme_starts_with_the_dry_run_and_the_ci_command() -> None:
    first = [shown.line for shown in shown_commands([REPO / "README.md"])][:2]
    ci = (REPO / ".ci/run").read_text().strip().splitlines()[-1]
    assert first == [
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/tao-aml submit facenet --dry-run",
        ci,
    ]
    readme = doc_text(REPO / "README.md")
    assert readme.index("```bash") < readme.index("\n## "), "the two commands come before any section"


def on_a_rehearsal(args: list[str]) -> bool:
    """A command on a rehearsal's folders, which the quickstart's test runs after its rehearsal."""
    return any(word.startswith("runs/rehearse-") for word in args)


def runnable_commands() -> list:
    return [pytest.param(args, id=str(shown)) for shown, args in tao_aml_commands()
            if args[0] not in ("submit", "run", "rehearse") and not on_a_rehearsal(args)]


@pytest.mark.parametrize("args", runnable_commands())
def test_documented_command_runs(
    args: list[str], tmp_path: Path, config: Path, fake_azure: FakeAzure, fake_az: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    if args[:2] == ["model", "register"]:  # a completed job whose register_model step wrote a model card
        fake_azure.pipeline_job(JOB, {"main.register_model": f"{JOB}_register_model"})
        card = {"name": "tao-facenet", "tags": {"family": "detectnet_v2", "accuracy": "84.2"}}
        fake_azure.outputs[(f"{JOB}_register_model", "model")] = {"model_card.json": json.dumps(card)}
    if args[0] == "predict":  # a downloaded FaceNet model asset and two photos
        outputs = facenet_outputs(tmp_path / "steps")
        assert register_model.main(facenet_args(outputs, "--output_dir", "dl/named-outputs/model")) == 0
        for name in ("photo1.jpg", "photo2.png"):
            Image.new("RGB", (320, 200)).save(name)
    if args[0] == "deploy":  # the Triton model `tao-aml model register` made
        fake_azure.models[("tao-facenet-triton", "1")] = {"entity": Model(
            name="tao-facenet-triton", version="1", type="triton_model", path="azureml://jobs/j/outputs/m/paths/"),
            "rest": {}}
    assert main([*args, "--root", str(REPO)] if args[0] != "model" else args) == 0, capsys.readouterr().err
    created = [call for call in fake_azure.calls if call[0].endswith("create_or_update")]
    sent = bool(fake_azure.published or created or fake_az.exists())
    assert sent == ("--dry-run" not in args and args[0] not in ("profile", "validate", "predict")), args


def test_the_docs_show_the_commands_of_this_release() -> None:
    shown = {" ".join(args[:2]) for _, args in tao_aml_commands()}
    assert {"register --registry", "model register", "images build", "validate", "deploy --model",
            "predict --local", "profile show", "rehearse facenet"} <= shown


def test_the_quickstart_rehearsal_gives_predict_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
) -> None:
    """Step 2 of the quickstart as pasted: the rehearsal, then predict --local on the folders it names."""
    monkeypatch.chdir(tmp_path)
    rehearse, predict = [args for shown, args in tao_aml_commands([REPO / "README.md"])
                         if shown.section == QUICKSTART and args[0] in ("rehearse", "predict")]
    assert main(rehearse) == 0, capsys.readouterr().err
    shown = [args for _, args in tao_aml_commands() if args[0] == "predict" and on_a_rehearsal(args)]
    assert predict in shown and len(shown) > 1, "docs/workstation.md shows it too"
    for args in shown:
        expanded = [found for word in args for found in (sorted(glob.glob(word)) if "*" in word else [word])]
        assert len(expanded) > len(args), f"no image matches {args}"
        assert main(expanded) == 0, capsys.readouterr().err
        assert (tmp_path / "predictions" / "detections.json").is_file()
