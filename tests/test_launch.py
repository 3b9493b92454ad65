"""Training under Azure ML's MPI launcher, and resuming after a preemption or from an earlier run."""

import json
import logging
import zipfile
from pathlib import Path

import pytest

from tao_aml.simulate import RUNNERS, invocations, status_lines
from tao_aml.steps.common import StepError
from tao_aml.steps.detectnet_v2 import train
from tao_aml.steps.tao import launch
from test_detectnet_v2_steps import data, train_args  # noqa: F401  (data is a fixture)

SPEC = "facenet_train_resnet18_kitti.txt"
EVERY_EPOCH = "training_config.checkpoint_interval=1"


@pytest.fixture
def tao_log(tmp_path, monkeypatch) -> Path:
    log = tmp_path / "tao.jsonl"
    monkeypatch.setenv("TAO_STANDIN_LOG", str(log))
    # Where `python -m nvidia_tao_tf1.cv.<family>.scripts.train` finds the runner stand-ins.
    monkeypatch.setenv("PYTHONPATH", str(RUNNERS))
    return log


def as_rank(monkeypatch, rank: int, size: int) -> None:
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", str(rank))
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", str(size))
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", str(rank % 2))
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2")  # 2 nodes x 2 processes


def test_under_mpi_each_rank_runs_the_train_runner_without_a_second_mpirun(data, tmp_path, monkeypatch, tao_log):
    as_rank(monkeypatch, 0, 4)
    results = tmp_path / "results"
    assert train.main(train_args(data, results, "--gpus", "2", "--scale_learning_rate", "true")) == 0
    call = invocations(tao_log)[-1]
    assert call["runner"] and call["rank"] == 0 and call["ok"]
    assert "--gpus" not in call["argv"] and not any("mpirun" in a for a in call["argv"])
    assert (results / "weights" / "resnet18_detector.hdf5").is_file()
    spec = (results / "specs" / SPEC).read_text()
    assert "max_learning_rate: 0.0002" in spec and "min_learning_rate: 2e-06" in spec  # 5e-05 x 4 GPUs


def test_other_ranks_write_nothing_into_the_output(data, tmp_path, monkeypatch, tao_log):
    as_rank(monkeypatch, 3, 4)
    results = tmp_path / "results"
    assert train.main(train_args(data, results, "--gpus", "2")) == 0
    call = invocations(tao_log)[-1]
    assert call["runner"] and call["rank"] == 3 and call["ok"]
    assert not (results / "specs").exists() and not (results / "weights").exists()
    assert not (results / "status.json").exists()


def test_processes_per_node_other_than_gpus_per_node_stop_before_tao(data, tmp_path, monkeypatch, tao_log, caplog):
    """A 1x1 pipeline component whose gpus_per_node input was changed alone (e.g. in Designer)."""
    as_rank(monkeypatch, 0, 4)
    assert train.main(train_args(data, tmp_path / "results", "--gpus", "4")) != 0
    err = caplog.text
    assert "runs 2 process(es) per node" in err and "gpus_per_node is 4" in err
    assert not tao_log.exists() or not invocations(tao_log)


def test_without_mpi_the_entrypoint_gets_the_gpu_count(data, tmp_path, monkeypatch, tao_log):
    monkeypatch.delenv("OMPI_COMM_WORLD_RANK", raising=False)
    assert train.main(train_args(data, tmp_path / "results", "--gpus", "2")) == 0
    call = invocations(tao_log)[-1]
    assert not call.get("runner") and call["argv"][1] == "train" and "--gpus" in call["argv"]


@pytest.mark.parametrize("amp", ["true", "false"])
def test_use_amp_reaches_the_entrypoint_and_the_mpi_runner(amp, data, tmp_path, monkeypatch, tao_log):
    monkeypatch.delenv("OMPI_COMM_WORLD_RANK", raising=False)
    assert train.main(train_args(data, tmp_path / "a", "--use_amp", amp)) == 0
    entry = invocations(tao_log)[-1]
    assert ("--use_amp" in entry["argv"]) == (amp == "true") and entry["ok"]
    as_rank(monkeypatch, 0, 2)
    assert train.main(train_args(data, tmp_path / "b", "--gpus", "2", "--use_amp", amp)) == 0
    runner = invocations(tao_log)[-1]
    assert runner["runner"] and runner["amp"] == (amp == "true") and "--use_amp" not in runner["argv"]


def epochs_run(results: Path) -> list[int]:
    return [line["epoch"] for line in status_lines(results) if "epoch" in line]


def test_a_killed_run_resumes_from_its_last_checkpoint_on_the_same_folder(data, tmp_path, monkeypatch, tao_log,
                                                                           caplog):
    caplog.set_level(logging.INFO)
    results = tmp_path / "results"
    args = train_args(data, results, "--overrides", EVERY_EPOCH)
    args[args.index("--epochs") + 1] = "3"
    monkeypatch.setenv("TAO_STANDIN_KILL_AFTER_EPOCHS", "1")
    assert train.main(args) == 2  # the node was taken after one epoch
    assert launch.find_checkpoints(str(results)).epoch == 1
    monkeypatch.delenv("TAO_STANDIN_KILL_AFTER_EPOCHS")
    assert train.main(args) == 0
    assert epochs_run(results) == [0, 1, 2]  # epoch 0 once, then only the remaining ones
    assert "resuming from checkpoint model.epoch-1" in caplog.text


def test_resume_from_an_earlier_run_seeds_the_new_results(data, tmp_path, monkeypatch, tao_log, caplog):
    caplog.set_level(logging.INFO)
    earlier = tmp_path / "earlier"
    args = train_args(data, earlier, "--overrides", EVERY_EPOCH)
    args[args.index("--epochs") + 1] = "3"
    monkeypatch.setenv("TAO_STANDIN_KILL_AFTER_EPOCHS", "2")
    assert train.main(args) == 2
    monkeypatch.delenv("TAO_STANDIN_KILL_AFTER_EPOCHS")
    fresh = tmp_path / "fresh"
    args = train_args(data, fresh, "--overrides", EVERY_EPOCH, "--resume_from", str(earlier))
    args[args.index("--epochs") + 1] = "3"
    assert train.main(args) == 0
    assert epochs_run(fresh) == [2]
    assert f"copied from {earlier}" in caplog.text
    assert json.loads((fresh / "status.json").read_text().splitlines()[-1])["status"] == "SUCCESS"


def test_resume_from_a_folder_without_checkpoints_is_refused(data, tmp_path, tao_log, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train.main(train_args(data, tmp_path / "r", "--resume_from", str(empty))) == 2
    assert "holds no TAO checkpoint (model.epoch-N.*)" in caplog.text
    assert invocations(tao_log) == [] or all(c["task"] != "train" for c in invocations(tao_log))


def test_mpi_variables_that_are_not_numbers() -> None:
    with pytest.raises(StepError, match="not numbers"):
        launch.mpi_world({"OMPI_COMM_WORLD_RANK": "x"})
    assert launch.mpi_world({}) is None
    assert launch.mpi_world({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "8"}) == launch.World(1, 8, 0, 1)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def killed_after_two_of_three(data, results: Path, monkeypatch, *extra: str) -> list[str]:
    args = train_args(data, results, "--overrides", EVERY_EPOCH, *extra)
    args[args.index("--epochs") + 1] = "3"
    monkeypatch.setenv("TAO_STANDIN_KILL_AFTER_EPOCHS", "2")
    assert train.main(args) == 2
    monkeypatch.delenv("TAO_STANDIN_KILL_AFTER_EPOCHS")
    return args


def test_a_checkpoint_cut_short_is_set_aside_and_the_one_before_resumed(data, tmp_path, monkeypatch, tao_log,
                                                                         caplog):
    caplog.set_level(logging.INFO)
    results = tmp_path / "results"
    args = killed_after_two_of_three(data, results, monkeypatch)
    truncate(results / "model.epoch-2.ckzip")  # the node was lost while TAO wrote it
    assert train.main(args) == 0  # TAO itself would stop: "The zipfile extracted was corrupt"
    assert epochs_run(results) == [0, 1, 1, 2]
    assert f"checkpoint model.epoch-2.ckzip in {results} cannot be resumed from: not a complete zip" in caplog.text
    assert "resuming from checkpoint model.epoch-1.ckzip (epoch 1)" in caplog.text
    assert sorted(p.name for p in (results / launch.SET_ASIDE).iterdir()) == ["model.epoch-2.ckzip"]
    assert launch.find_checkpoints(str(results)).epoch == 3


def test_no_readable_checkpoint_starts_again_with_a_warning(data, tmp_path, monkeypatch, tao_log, caplog):
    results = tmp_path / "results"
    args = killed_after_two_of_three(data, results, monkeypatch)
    truncate(results / "model.epoch-2.ckzip")
    (results / "model.epoch-1.ckzip").write_bytes(b"")
    assert train.main(args) == 0
    assert epochs_run(results) == [0, 1, 0, 1, 2]
    assert f"no checkpoint in {results} can be resumed from: training starts again from epoch 0" in caplog.text


def test_resume_from_skips_a_damaged_checkpoint_and_refuses_a_folder_of_damaged_ones(data, tmp_path, monkeypatch,
                                                                                    tao_log, caplog):
    earlier = tmp_path / "earlier"
    killed_after_two_of_three(data, earlier, monkeypatch)
    with zipfile.ZipFile(earlier / "model.epoch-2.ckzip", "w") as archive:  # a zip, but not TF's checkpoint
        archive.writestr("notes.txt", "hello")
    fresh = train_args(data, tmp_path / "fresh", "--overrides", EVERY_EPOCH, "--resume_from", str(earlier))
    fresh[fresh.index("--epochs") + 1] = "3"
    assert train.main(fresh) == 0
    assert epochs_run(tmp_path / "fresh") == [1, 2]
    assert f"model.epoch-2.ckzip in {earlier} cannot be resumed from: it holds no model.ckpt-2.index and " \
           "model.ckpt-2.data-*" in caplog.text
    truncate(earlier / "model.epoch-1.ckzip")
    assert train.main(train_args(data, tmp_path / "other", "--resume_from", str(earlier))) == 2
    assert f"--resume_from {earlier} holds no readable TAO checkpoint (model.epoch-N.*) (model.epoch-2.ckzip: it " \
           "holds no model.ckpt-2.index" in caplog.text
    assert "model.epoch-1.ckzip: not a complete zip" in caplog.text
