"""A failed TAO task fails its step, and the step's error output says why: status.json's FAILURE and the log's tail."""

import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tao_aml.simulate import use_standins
from tao_aml.steps.detectnet_v2 import prune
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao import tracking


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> str:
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    tracking.reset()
    yield uri
    tracking.reset()


def fake(tmp_path: Path, monkeypatch, script: str) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    path = folder / "detectnet_v2"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")


def test_pass_and_exit_zero_with_failure_in_status_json_is_a_failure(tmp_path: Path, monkeypatch, store) -> None:
    # TAO's train catches its spec validator's SystemExit, writes FAILURE and exits 0 printing PASS.
    fake(tmp_path, monkeypatch, """
echo '{"status": "STARTED", "message": "Starting DetectNet_v2 Training job"}' > "$5/status.json"
echo "Spec file validation failed: training_config missing"
echo '{"status": "FAILURE", "message": "Training was interrupted"}' >> "$5/status.json"
echo "Execution status: PASS"
exit 0
""")
    with pytest.raises(tao.TaoFailed) as failure:
        tao.run(["detectnet_v2", "train", "--experiment_spec_file", "s", "--results_dir", str(tmp_path)],
                str(tmp_path))
    message = str(failure.value)
    assert "detectnet_v2 train failed (exit code 0): Training was interrupted" in message
    assert "Spec file validation failed: training_config missing" in message
    assert message.rstrip().endswith("Execution status: PASS")
    tracking.reset()
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("tao-aml").experiment_id])
    assert run.info.status == "FAILED"


def test_non_zero_exit_keeps_only_the_last_lines(tmp_path: Path, monkeypatch, store) -> None:
    fake(tmp_path, monkeypatch, """
i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done
echo "ValueError: boom" >&2
exit 255
""")
    with pytest.raises(tao.TaoFailed) as failure:
        tao.run(["detectnet_v2", "train", "--results_dir", str(tmp_path)], str(tmp_path))
    message = str(failure.value)
    assert "(exit code 255)" in message and "ValueError: boom" in message
    assert f"last {tao.TAIL_LINES} lines" in message and "line 99" in message and "line 50" not in message


def test_a_failing_step_exits_non_zero_with_tao_failure_in_its_error_output(tmp_path: Path, monkeypatch,
                                                                            caplog) -> None:
    use_standins(monkeypatch.setenv, "tf1")
    monkeypatch.setenv("TAO_STANDIN_FAIL_TASK", "prune")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracking.reset()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.hdf5").write_text("{}")
    with caplog.at_level(logging.ERROR):
        code = prune.main(["--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "out"),
                           "--key", "k", "--pruning_threshold", "0.1"])
    assert code == 2
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "detectnet_v2 prune failed (exit code 255): Simulated failure of detectnet_v2 prune" in error
    assert "Execution status: FAIL" in error
