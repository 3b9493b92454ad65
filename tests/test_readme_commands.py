"""Every `tao-aml` command of README.md other than `submit` (tests/test_submit.py runs those) runs as shown,
from a folder holding Studio's config.json, against the recorded fake of the service and a fake `az`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from azure_recorder import FakeAzure, fake_azure  # noqa: F401  (fixture)
from tao_aml.cli import main
from test_images import fake_az  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
JOB = "tao_job_7"


def readme_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8").replace("<job name>", JOB)
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line.split("#")[0])
            if tokens and tokens[0].endswith("tao-aml") and tokens[1] != "submit":
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
    assert main([*args, "--root", str(REPO)] if args[0] != "model" else args) == 0, capsys.readouterr().err
    sent = bool(fake_azure.published or fake_azure.models or fake_az.exists())
    assert sent == ("--dry-run" not in args and args[0] not in ("profile", "validate")), args


def test_readme_shows_the_commands_of_this_release() -> None:
    shown = {" ".join(args[:2]) for args in readme_commands()}
    assert {"register --config", "register --registry", "model register", "images build", "validate"} <= shown
