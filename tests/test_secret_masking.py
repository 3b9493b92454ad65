"""The key is masked in every form it can take on a logged TAO command line, even forms the steps never build."""

import logging

import pytest

from tao_aml.steps.common import StepError
from tao_aml.steps.tao import command as tao

KEY = "nvidia_tlt-S3CRET"


@pytest.mark.parametrize(("argv", "shown"), [
    (["detectnet_v2", "train", "--key", KEY, "-e", "s.txt"], "detectnet_v2 train --key *** -e s.txt"),
    (["detectnet_v2", "train", f"--key={KEY}"], "detectnet_v2 train --key=***"),
    (["bpnet", "train", "-k", KEY, "-r", "out"], "bpnet train -k *** -r out"),
    (["bpnet", "train", f"-k={KEY}"], "bpnet train -k=***"),
    (["bpnet", "train", f"-k{KEY}"], "bpnet train -k***"),
    (["detectnet_v2", "prune", "--ke", KEY], "detectnet_v2 prune --ke ***"),
    (["detectnet_v2", "prune", f"--k={KEY}"], "detectnet_v2 prune --k=***"),
    (["python", "-m", "nvidia_tao_tf1.cv.bpnet.scripts.train", "--key", KEY, "--gpus", "2"],
     "python -m nvidia_tao_tf1.cv.bpnet.scripts.train --key *** --gpus 2"),
    (["detectnet_v2", "train", "--key"], "detectnet_v2 train --key"),  # a flag without its value
])
def test_every_form_of_the_key_is_masked(argv: list[str], shown: str) -> None:
    assert tao.printable(argv) == shown


def test_flags_that_only_look_alike_are_shown() -> None:
    argv = ["detectnet_v2", "evaluate", "--kpi", "x", "--keep", "y", "-m", "model"]
    assert tao.printable(argv) == "detectnet_v2 evaluate --kpi x --keep y -m model"


def test_the_running_line_never_holds_the_key(tmp_path, monkeypatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setenv("PATH", str(tmp_path))  # TAO is not there: the step stops after logging its command
    with pytest.raises(StepError):
        tao.run(["detectnet_v2", "train", f"--key={KEY}", "-k", KEY], str(tmp_path))
    assert "running: detectnet_v2 train --key=*** -k ***" in caplog.text
    assert "S3CRET" not in caplog.text
