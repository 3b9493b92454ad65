"""Every `tao-aml` command of README.md other than `submit` (tests/test_submit.py runs those) and `run`
(tests/test_local_run_cli.py checks those: they run whole pipelines) runs as shown, from a folder holding
Studio's config.json, against the recorded fake of the service and a fake `az`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from azure.ai.ml.entities import Model
from PIL import Image

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from model_fixtures import facenet_args, facenet_outputs
from tao_aml.cli import main
from tao_aml.steps import register_model
from test_images import fake_az  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
JOB = "tao_job_7"


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8").replace("<job name>", JOB)
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line.split("#")[0])
            if tokens and tokens[0].endswith("tao-aml") and tokens[1] not in ("submit", "run"):
                commands.append(tokens[1:])
    return commands


@pytest.mark.parametrize("args", readme_commands(), ids=" ".join)
def test_readme_command_runs(
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
        fake_azure.models[("tao-facenet-triton", "M")] = {"entity": Model(
            name="tao-facenet-triton", version="M", type="triton_model", path="azureml://jobs/j/outputs/m/paths/"),
            "rest": {}}
    assert main([*args, "--root", str(REPO)] if args[0] != "model" else args) == 0, capsys.readouterr().err
    created = [call for call in fake_azure.calls if call[0].endswith("create_or_update")]
    sent = bool(fake_azure.published or created or fake_az.exists())
    assert sent == ("--dry-run" not in args and args[0] not in ("profile", "validate", "predict")), args


def test_readme_shows_the_commands_of_this_release() -> None:
    shown = {" ".join(args[:2]) for args in readme_commands()}
    assert {"register --config", "register --registry", "model register", "images build", "validate"} <= shown
