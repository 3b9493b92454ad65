"""Train and retrain, and only they, run on several nodes and GPUs through Azure ML's MPI distribution."""

from pathlib import Path

import pytest
import yaml

from tao_aml.azure.submit import build_job
from tao_aml.repo.pipelines import Pipeline, SettingError, resolve_settings
from test_validation import edit_yaml, rendered

DISTRIBUTED = {"train", "retrain"}


@pytest.mark.parametrize("name", ["facenet", "bodypose"])
def test_rest_form_has_literal_instances_and_processes_on_train_and_retrain_only(name: str) -> None:
    # A cluster of the user's own: compute/gpu-cluster.yml's size has one GPU per node (repo/run_checks.py).
    built = build_job(name, ["nodes=2", "gpus_per_node=4", "gpu_compute=a100-x4"])
    component = built.job.jobs["main"].component
    for step_name, step in component.jobs.items():
        rest = step._to_rest_object()
        if step_name in DISTRIBUTED:
            assert rest["resources"]["instance_count"] == 2
            assert rest["distribution"] == {"process_count_per_instance": 4, "distribution_type": "Mpi"}
        else:
            assert set(rest.get("resources") or {}) <= {"shm_size"} and not rest.get("distribution"), step_name
    rest_inputs = built.job._to_rest_object().properties.jobs["main"]["inputs"]
    assert rest_inputs["nodes"]["value"] == "2" and rest_inputs["gpus_per_node"]["value"] == "4"


@pytest.mark.parametrize("setting", ["nodes=0", "gpus_per_node=0", "nodes=1.5"])
def test_counts_below_one_are_refused_before_building(setting: str) -> None:
    with pytest.raises(SettingError) as err:
        resolve_settings(Pipeline.load("facenet"), [setting])
    name = setting.split("=")[0]
    assert f"--set {name}:" in str(err.value)
    assert "below the minimum 1" in str(err.value) or "is not an integer" in str(err.value)


def test_a_count_bound_to_an_input_is_a_problem(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/facenet/pipeline_component.yml"
    edit_yaml(path, lambda d: d["jobs"]["train"]["resources"].update(instance_count="${{parent.inputs.nodes}}"))
    assert any("jobs.train.resources.instance_count: ${{parent.inputs.nodes}} is a binding: write a literal" in p
               for p in rendered(repo_copy))


def test_a_literal_count_must_equal_the_input_that_reports_it(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/facenet/pipeline_component.yml"
    edit_yaml(path, lambda d: d["jobs"]["retrain"]["distribution"].update(process_count_per_instance=2))
    assert any("jobs.retrain.distribution.process_count_per_instance: 2 differs from the default of input "
               "gpus_per_node (1)" in p for p in rendered(repo_copy))


def test_a_literal_zero_process_count_is_a_problem(repo_copy: Path) -> None:
    path = repo_copy / "pipelines/bodypose/pipeline_component.yml"
    edit_yaml(path, lambda d: d["jobs"]["retrain"]["distribution"].update(process_count_per_instance=0))
    assert any("jobs.retrain.distribution.process_count_per_instance: 0 is not a whole number" in p
               for p in rendered(repo_copy))
    assert yaml.safe_load(path.read_text())["jobs"]["retrain"]["distribution"]["type"] == "mpi"
