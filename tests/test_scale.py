"""Issue 7, scale and cost: profiles (`--profile`, `profile show`), `--resume-from`, nodes and GPUs per step."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace

import pytest
from azure.ai.ml import load_job

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.submit import ESTIMATE_INPUT, build_job
from tao_aml.cli import main
from tao_aml.repo.pipelines import WRAPPER_STEP, Pipeline, SettingError, params_override, resolve_settings
from tao_aml.repo.profiles import format_value, load_profiles, profile_assignments

REPO = Path(__file__).resolve().parents[1]
PIPELINES = sorted(p.parent.name for p in (REPO / "pipelines").glob("*/pipeline.yml"))
URI = "azureml://jobs/{}/outputs/results/paths/"



def main_inputs(job) -> dict:
    """The wrapped component's inputs, less the GPU-hour estimate that only the submitter computes."""
    inputs = job._to_rest_object().as_dict()["properties"]["jobs"][WRAPPER_STEP]["inputs"]
    return {name: value for name, value in inputs.items() if name != ESTIMATE_INPUT}


@pytest.mark.parametrize("name", PIPELINES)
def test_every_pipeline_has_full_and_smoke_and_smoke_compiles(name: str) -> None:
    pipeline = Pipeline.load(name)
    profiles = load_profiles(pipeline)
    assert profiles["full"] == {} and profiles["smoke"]
    built = build_job(name, [], profile="smoke")
    for key, value in profiles["smoke"].items():
        assert built.inputs[key] == value, key
        assert main_inputs(built.job)[key]["value"] == format_value(value), key
    assert built.inputs["train_epochs"] < 10 and built.inputs["images_per_split"] <= 32


def test_bodypose_smoke_epochs_are_multiples_of_checkpoint_n_epoch() -> None:
    import yaml

    smoke = load_profiles(Pipeline.load("bodypose"))["smoke"]
    for spec, key in (("bpnet_train_m1_coco.yaml", "train_epochs"), ("bpnet_retrain_m1_coco.yaml", "retrain_epochs")):
        every = yaml.safe_load((REPO / "src/tao_aml/templates/bodypose" / spec).read_text())["checkpoint_n_epoch"]
        assert smoke[key] % every == 0, (spec, smoke[key], every)


def test_set_wins_over_the_profile_and_dry_run_prints_inputs_and_resources(
    tmp_path: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    code = submit(REPO, tmp_path, "facenet", "--dry-run", "--profile", "smoke", "--set", "train_epochs=3",
                  "--set", "nodes=2", "--set", "gpus_per_node=4", "--gpu-compute", "a100-x4")
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "  train_epochs = 3\n" in out and "  retrain_epochs = 1\n" in out and "  images_per_split = 24\n" in out
    assert "tao_detectnet_v2_train, on a100-x4, 2 nodes x 4 GPUs, 1 epoch, ~" in out
    assert "tao_detectnet_v2_prune, on a100-x4, 1 node x 1 GPU, ~" in out
    assert "tao_wider_to_kitti, on cpu-cluster, 1 node x 0 GPUs" in out
    assert fake_azure.clients == []


def test_distributed_steps_come_from_the_pipeline_yaml(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/facenet/pipeline_component.yml"
    text = path.read_text()
    # Distribute prune too: the shape goes to every step the YAML distributes, not to a list of step names.
    path.write_text(text.replace(
        "      equalization_criterion: union\n",
        "      equalization_criterion: union\n    resources:\n      instance_count: 1\n"
        "    distribution:\n      type: mpi\n      process_count_per_instance: 1\n",
    ))
    steps = {step.name: step for step in build_job("facenet", ["nodes=2", "gpus_per_node=2"], root=repo_copy).steps}
    assert (steps["prune"].nodes, steps["prune"].gpus_per_node) == (2, 2)
    assert (steps["train"].nodes, steps["retrain"].nodes, steps["export"].nodes) == (2, 2, 1)


def test_profile_problems_name_the_file_and_key(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/facenet/profiles.yml"
    path.write_text("full: {}\nsmoke:\n  train_epochs: many\n  no_such_input: 1\n  train.no_such.field: 2\n"
                    "  nodes: 0\n  images_per_split: [1]\n")
    with pytest.raises(SettingError) as err:
        profile_assignments(Pipeline.load("facenet", repo_copy), "smoke")
    lines = str(err.value).splitlines()
    assert all(line.startswith(f"{path}: smoke.") for line in lines), lines
    for key in ("train_epochs", "no_such_input", "train.no_such.field", "nodes", "images_per_split"):
        assert any(line.startswith(f"{path}: smoke.{key}: ") for line in lines), key
    assert "no pipeline input 'no_such_input'" in str(err.value)


def test_unknown_or_malformed_profile_exits_2(repo_copy: Path, tmp_path: Path, capsys) -> None:
    assert submit(repo_copy, tmp_path, "facenet", "--dry-run", "--profile", "huge") == 2
    assert "profiles.yml: no profile 'huge'; profiles: full, smoke" in capsys.readouterr().err
    (repo_copy / "pipelines/facenet/profiles.yml").write_text("smoke: [1, 2]\n")
    assert main(["profile", "show", "facenet", "smoke", "--root", str(repo_copy)]) == 2
    assert "expected a mapping of profile names" in capsys.readouterr().err
    (repo_copy / "pipelines/facenet/profiles.yml").unlink()
    assert main(["profile", "show", "facenet", "smoke", "--root", str(repo_copy)]) == 2
    assert "has no profiles" in capsys.readouterr().err


@pytest.mark.parametrize("name", PIPELINES)
def test_profile_show_lines_work_with_az_ml_and_the_submitter(name: str, capsys) -> None:
    assert main(["profile", "show", name, "smoke"]) == 0
    lines = capsys.readouterr().out.splitlines()
    az = [shlex.split(line)[1] for line in lines[1:lines.index(next(x for x in lines[1:] if x.startswith("#")))]]
    ours = [shlex.split(line)[1] for line in lines if line.startswith("--set ") and not line.startswith(
        "--set jobs.") and not line.startswith("--set inputs.")]
    assert lines[0] == f"# az ml job create --file pipelines/{name}/pipeline.yml with:"
    # As the Azure CLI passes them: every value a string.
    job = load_job(REPO / "pipelines" / name / "pipeline.yml",
                   params_override=[{key: text} for key, _, text in (pair.partition("=") for pair in az)])
    assert job._validate().passed
    assert main_inputs(job) == main_inputs(build_job(name, [], profile="smoke").job)
    assert main_inputs(build_job(name, ours).job) == main_inputs(job)


def earlier_job(
    azure: FakeAzure, steps: tuple[str, ...] = ("train", "retrain"), statuses: dict[str, str] | None = None
) -> None:
    azure.children["old_job"] = [SimpleNamespace(name="old_main", display_name=WRAPPER_STEP, type="pipeline",
                                                 status="Failed")]
    azure.children["old_main"] = [
        SimpleNamespace(name=f"old_{step}", display_name=step, type="command",
                        status=(statuses or {}).get(step, "Completed"))
        for step in ("prune", *steps)
    ]


@pytest.mark.parametrize("ended", ["Failed", "Canceled"])
def test_resume_from_a_run_whose_train_was_preempted_or_canceled(
    ended: str, tmp_path: Path, config: Path, fake_azure: FakeAzure  # noqa: F811
) -> None:
    """The earlier train step ended early with checkpoints in its output; its retrain never started."""
    earlier_job(fake_azure, statuses={"train": ended, "retrain": "NotStarted"})
    assert submit(REPO, tmp_path, "facenet", "--config", str(config), "--resume-from", "old_job") == 0
    inputs = fake_azure.jobs[0]["rest"].properties.jobs[WRAPPER_STEP]["inputs"]
    assert inputs["train_resume_from"] == {"job_input_type": "uri_folder", "uri": URI.format("old_train")}
    assert "retrain_resume_from" not in inputs, "a step that never started wrote no checkpoint"


def test_the_resume_uri_is_the_documented_job_output_form() -> None:
    """`azureml://jobs/<job>/outputs/<output>/paths/` (shared/facts/azureml.md): the output's root folder."""
    assert URI.format("x") == "azureml://jobs/x/outputs/results/paths/"
    pipeline = Pipeline.load("facenet")
    settings = resolve_settings(pipeline, [])
    settings.data["train_resume_from"] = URI.format("old_train")
    job = load_job(pipeline.job_path, params_override=params_override(pipeline, settings))
    assert job._validate().passed
    assert main_inputs(job)["train_resume_from"]["uri"] == "azureml://jobs/old_train/outputs/results/paths/"


@pytest.mark.parametrize("name", PIPELINES)
def test_resume_from_sets_both_resume_inputs_to_the_earlier_results(
    name: str, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    earlier_job(fake_azure)
    code = submit(REPO, tmp_path, name, "--config", str(config), "--resume-from", "old_job", "--profile", "smoke")
    assert code == 0, capsys.readouterr().err
    [sent] = fake_azure.jobs
    inputs = sent["rest"].properties.jobs[WRAPPER_STEP]["inputs"]
    for step in ("train", "retrain"):
        assert inputs[f"{step}_resume_from"] == {"job_input_type": "uri_folder", "uri": URI.format(f"old_{step}")}
    assert inputs["train_epochs"]["value"] == str(load_profiles(Pipeline.load(name))["smoke"]["train_epochs"])
    assert len(fake_azure.clients) == 1, "the lookup and the submission share one client"
    assert f"train_resume_from = {URI.format('old_train')}" in capsys.readouterr().out


def test_resume_data_goes_through_params_override_as_a_uri_folder() -> None:
    pipeline = Pipeline.load("facenet")
    settings = resolve_settings(pipeline, [])
    settings.data["train_resume_from"] = URI.format("old_train")
    pairs = params_override(pipeline, settings)
    assert pairs == [{"jobs.main.inputs.train_resume_from": {"type": "uri_folder", "path": URI.format("old_train")}}]
    job = load_job(pipeline.job_path, params_override=pairs)
    assert main_inputs(job)["train_resume_from"] == {"job_input_type": "uri_folder", "uri": URI.format("old_train")}


def test_resume_from_a_job_without_retrain_resumes_train_only(
    tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    earlier_job(fake_azure, steps=("train",))
    assert submit(REPO, tmp_path, "facenet", "--config", str(config), "--resume-from", "old_job") == 0
    inputs = fake_azure.jobs[0]["rest"].properties.jobs[WRAPPER_STEP]["inputs"]
    assert "train_resume_from" in inputs and "retrain_resume_from" not in inputs


def test_resume_from_an_unknown_job_or_one_without_train_exits_3(
    tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    assert submit(REPO, tmp_path, "facenet", "--config", str(config), "--resume-from", "nope") == 3
    assert "--resume-from nope: no pipeline job of that name with steps" in capsys.readouterr().err
    earlier_job(fake_azure, steps=())
    assert submit(REPO, tmp_path, "facenet", "--config", str(config), "--resume-from", "old_job") == 3
    err = capsys.readouterr().err
    assert "--resume-from old_job: the job has no step main.train to resume from" in err
    assert "its steps: main, main.prune" in err
    assert fake_azure.jobs == []


def test_resume_from_refuses_a_dry_run(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    assert submit(REPO, tmp_path, "facenet", "--dry-run", "--resume-from", "old_job") == 2
    assert "--resume-from needs a workspace" in capsys.readouterr().err
    assert fake_azure.clients == []


def test_profile_show_sends_literal_counts_through_the_written_job(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/facenet/profiles.yml"
    path.write_text(path.read_text() + "big:\n  nodes: 2\n  gpus_per_node: 4\n")
    from tao_aml.repo.profiles import show

    lines = show(Pipeline.load("facenet", repo_copy), "big")
    assert lines[0].startswith("# gpus_per_node, nodes: write the job first with `tao-aml submit facenet --profile big")
    assert lines[1] == "# az ml job create --file build/facenet/facenet.pipeline.yml with:"
