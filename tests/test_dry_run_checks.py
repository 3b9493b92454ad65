"""Issue 18, item 9: mistakes that used to pass the dry run and fail on the GPU node after hours.

Each is refused by `tao-aml submit --dry-run` and found by `tao-aml validate` (in a pipeline's defaults or
a profile), with a message naming the input, its value and the rule; a spec override that replaces what a
pipeline input says is shown by the dry run, which estimates what TAO will really run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.submit import build_job
from tao_aml.cli import main

REPO = Path(__file__).resolve().parents[1]
STRIDE = "must be a multiple of 16, DetectNet_v2's output stride"
QAT = 'TAO Deploy builds a QAT model only as INT8 (nvidia_tao_deploy/engine/builder.py'
ONE_GPU = ("on gpu_compute=gpu-cluster (compute/gpu-cluster.yml: size Standard_NC24ads_A100_v4): "
           "Standard_NC24ads_A100_v4 has 1 GPU(s) (A100 80 GB), fewer than gpus_per_node=2")

# (pipeline, --set values, what the refusal says: the input, its value and the rule)
MISTAKES = [
    ("facenet", ["image_width=740"], f"image_width=740: {STRIDE}", "use 736 or 752"),
    ("facenet", ["image_height=420"], f"image_height=420: {STRIDE}", "use 416 or 432"),
    ("detectnet_v2", ["image_width=1250"], f"image_width=1250: {STRIDE}", "use 1248 or 1264"),
    ("detectnet_v2", ["qat=true", "engine_precision=fp32"], "qat=true with engine_precision=fp32: " + QAT,
     "set engine_precision=int8"),
    ("facenet", ["gpus_per_node=2"], f"gpus_per_node=2 {ONE_GPU}", "name a cluster of a larger size"),
    ("bodypose", ["nodes=3"], "nodes=3 on gpu_compute=gpu-cluster (compute/gpu-cluster.yml: size "
     "Standard_NC24ads_A100_v4, max_instances 2): a job cannot have more nodes than its cluster", "lower nodes"),
    ("facenet", ["retrain.augmentation_config.preprocessing.output_image_width=960"],
     "--set retrain.augmentation_config.preprocessing.output_image_width=960 contradicts image_width=736: "
     "retrain would use 960 while image_width sizes the letterboxed images", "set image_width instead"),
    ("detectnet_v2", ["inference.inferencer_config.image_height=400"],
     "--set inference.inferencer_config.image_height=400 contradicts image_height=384", "set image_height instead"),
    ("facenet", ["retrain.training_config.enable_qat=true"],
     "--set retrain.training_config.enable_qat=true contradicts qat=false: retrain would use true while qat "
     "decides QAT for export and the TensorRT engine", "set qat instead"),
    ("bodypose", ["retrain_epochs=12"], "retrain spec bpnet_retrain_m1_coco.yaml with retrain_epochs=12, "
     "batch_size=10: num_epoch 12 is not a multiple of checkpoint_n_epoch 5", "TAO 5.0 bpnet refuses it"),
]


@pytest.mark.parametrize(("name", "settings", "message", "fix"), MISTAKES)
def test_submit_dry_run_refuses_each_mistake(
    name: str, settings: list[str], message: str, fix: str, tmp_path: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]
    assert submit(REPO, tmp_path, name, "--dry-run", *args) == 2
    err = capsys.readouterr().err
    assert message in err and fix in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err  # this mistake alone, said once
    assert not (tmp_path / name).exists(), "no job file or REST body is left looking complete"
    assert fake_azure.clients == []


def test_every_mistake_of_a_run_is_reported_at_once(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    """The smoke profile's fp16 engine with QAT: the message says where fp16 came from."""
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--profile", "smoke", "--set", "qat=true",
                  "--set", "image_width=100", "--set", "gpus_per_node=2") == 2
    err = capsys.readouterr().err
    assert "qat=true with engine_precision=fp16: " + QAT in err
    assert "(profile smoke sets images_per_split=24, train_epochs=1, retrain_epochs=1, batch_size=4, " \
           "engine_precision=fp16; --set wins over it)" in err
    assert f"image_width=100: {STRIDE}" in err and "use 96 or 112" in err
    assert f"gpus_per_node=2 {ONE_GPU}" in err


def test_the_fixes_the_messages_name_pass(tmp_path: Path) -> None:
    built = build_job("facenet", ["image_width=752", "qat=true", "engine_precision=int8",
                                  "retrain.augmentation_config.preprocessing.output_image_width=752"],
                      profile="smoke", out_dir=tmp_path)
    assert built.inputs["image_width"] == 752 and built.inputs["qat"] is True


def test_a_cluster_the_repository_does_not_define_is_not_guessed(tmp_path: Path) -> None:
    """Only compute/*.yml says what a cluster holds; any other name is the user's (checked at submission)."""
    built = build_job("facenet", ["gpus_per_node=4", "gpu_compute=my-a100-x4"], out_dir=tmp_path)
    assert {step.gpus_per_node for step in built.steps if step.name in ("train", "retrain")} == {4}


# ------------------------------------------------------------------ the same mistakes in `tao-aml validate`

def test_validate_finds_the_mistakes_in_defaults_and_profiles(repo_copy: Path, capsys) -> None:
    shutil.copytree(REPO / "compute", repo_copy / "compute")
    component = repo_copy / "pipelines/facenet/pipeline_component.yml"
    data = yaml.safe_load(component.read_text())
    data["inputs"]["image_width"]["default"] = 740
    component.write_text(yaml.safe_dump(data, sort_keys=False))
    profiles = repo_copy / "pipelines/facenet/profiles.yml"
    profiles.write_text(profiles.read_text() + "qat_smoke:\n  qat: true\n  engine_precision: fp16\n"
                        "  gpus_per_node: 2\n  train.training_config.enable_qat: true\n")
    bodypose = repo_copy / "pipelines/bodypose/profiles.yml"
    bodypose.write_text(bodypose.read_text() + "odd:\n  train_epochs: 7\n  nodes: 3\n")
    assert main(["validate", "--root", str(repo_copy)]) == 1
    out = capsys.readouterr().out
    facenet, facenet_profiles = "pipelines/facenet/pipeline_component.yml: inputs: ", "pipelines/facenet/profiles.yml: "
    assert f"{facenet}image_width=740: {STRIDE}" in out
    assert f"{facenet_profiles}qat_smoke: qat=true with engine_precision=fp16: {QAT}" in out
    assert f"{facenet_profiles}qat_smoke: gpus_per_node=2 {ONE_GPU}" in out
    # train takes no qat input: its enable_qat override is the user's; retrain's would contradict qat
    assert "--set train.training_config.enable_qat" not in out
    # what the defaults already show is said once, not again for every profile
    assert out.count(f"image_width=740: {STRIDE}") == 1
    assert "pipelines/bodypose/profiles.yml: odd: train spec bpnet_train_m1_coco.yaml with train_epochs=7, " \
           "batch_size=10: num_epoch 7 is not a multiple of checkpoint_n_epoch 5" in out
    assert "pipelines/bodypose/profiles.yml: odd: nodes=3 on gpu_compute=gpu-cluster" in out


def test_validate_names_a_broken_profile_value(repo_copy: Path) -> None:
    from tao_aml.repo.validation import validate_repository

    profiles = repo_copy / "pipelines/facenet/profiles.yml"
    profiles.write_text(profiles.read_text() + "bad:\n  train_epochs: many\n")
    found = [problem.render(repo_copy) for problem in validate_repository(repo_copy, with_azure=False)]
    assert "pipelines/facenet/profiles.yml: bad.train_epochs: --set train_epochs: 'many' is not an integer" in found


# ------------------------------------------------------------------ the epochs TAO will really train

def test_dry_run_shows_and_estimates_the_epochs_of_an_override(
    tmp_path: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    """`train.training_config.num_epochs=5` with train_epochs=80: TAO trains 5 (the step's override wins)."""
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--set", "train.training_config.num_epochs=5") == 0
    out = capsys.readouterr().out
    assert "  train_epochs = 80 (train uses 5: --set train.training_config.num_epochs=5 overrides it)\n" in out
    assert "tao_detectnet_v2_train, on gpu-cluster, 1 node x 1 GPU, 5 epochs, ~" in out
    assert "tao_detectnet_v2_train, on gpu-cluster, 1 node x 1 GPU, 80 epochs, ~" in out  # retrain: no override
    overridden = build_job("facenet", ["train.training_config.num_epochs=5"], out_dir=tmp_path / "a")
    five = build_job("facenet", ["train_epochs=5"], out_dir=tmp_path / "b")
    hours = {step.name: step.gpu_hours for step in overridden.steps}
    assert hours == {step.name: step.gpu_hours for step in five.steps}
    assert f"train={hours['train']:g}," in overridden.inputs["gpu_hours_estimate"]  # what the report compares


def test_bodypose_override_of_num_epoch_is_shown_and_checked(tmp_path: Path) -> None:
    built = build_job("bodypose", ["train.num_epoch=10"], out_dir=tmp_path)
    [item] = built.overridden
    assert (item.step, item.source, item.value, item.effective) == ("train", "train_epochs", 20, 10)
    assert {step.name: step.epochs for step in built.steps if step.epochs} == {"train": 10, "retrain": 50}


# ------------------------------------------------------------------ shm_size in a local run

def test_a_local_run_gives_tao_containers_the_same_shared_memory(tmp_path: Path) -> None:
    """`tao-aml run --local` with Docker: `docker run --shm-size` as Azure ML gives each step, TAO steps only."""
    from tao_aml.local.local_run import Docker, LocalRunner
    from tao_aml.repo.pipelines import Pipeline, resolve_settings

    pipeline = Pipeline.load("bodypose")
    for settings, size in (([], "16g"), (["shm_size=32g"], "32g")):
        runner = LocalRunner(pipeline, resolve_settings(pipeline, settings), tmp_path / size, docker=Docker(REPO))
        launches = [runner.launch(pipeline.component.jobs[name]) for name in pipeline.component.topological_order()]
        for launch in launches:
            argv = runner.executor.argv(launch, {})
            tao = launch.environment.parent.name in ("tao_tf1", "tao_deploy")
            assert (argv[argv.index("--shm-size") + 1] if "--shm-size" in argv else None) == (size if tao else None), \
                launch.step
        assert any(launch.step == "train" and launch.shm_size == size for launch in launches)
