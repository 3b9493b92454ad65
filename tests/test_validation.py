"""`tao-aml validate` passes on the repository and names each problem in broken copies."""

import shutil
from pathlib import Path

import pytest
import yaml

from tao_aml.cli import main
from tao_aml.repo.validation import validate_repository

FACENET = Path("pipelines/facenet/pipeline_component.yml")
TRAIN = Path("components/detectnet_v2/train/component.yml")


def edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def rendered(root: Path) -> list[str]:
    """The project's own checks; azure-ai-ml's are run once, on the intact repository."""
    return [problem.render(root) for problem in validate_repository(root, with_azure=False)]


def test_repository_is_valid(repo_copy: Path, capsys) -> None:
    assert main(["validate", "--root", str(repo_copy)]) == 0
    assert "valid" in capsys.readouterr().out


def test_dangling_step_binding(repo_copy: Path) -> None:
    def change(data):
        data["jobs"]["train"]["inputs"]["train_kitti"] = "${{parent.jobs.convert_trian.outputs.kitti}}"

    edit_yaml(repo_copy / FACENET, change)
    assert any(
        "jobs.train.inputs.train_kitti" in p and "no step named 'convert_trian'" in p for p in rendered(repo_copy)
    )


def test_dangling_parent_input_and_output(repo_copy: Path) -> None:
    def change(data):
        data["jobs"]["prune"]["inputs"]["key"] = "${{parent.inputs.kee}}"
        data["jobs"]["prune"]["outputs"]["pruned"] = "${{parent.outputs.pruned_modle}}"

    edit_yaml(repo_copy / FACENET, change)
    problems = rendered(repo_copy)
    assert any("jobs.prune.inputs.key" in p and "no input 'kee'" in p for p in problems)
    assert any("jobs.prune.outputs.pruned" in p and "not an output of this pipeline" in p for p in problems)
    assert any("outputs.pruned_model: no step writes this pipeline output" in p for p in problems)


def test_type_mismatch_across_an_edge(repo_copy: Path) -> None:
    def change(data):
        data["jobs"]["train"]["inputs"]["epochs"] = "${{parent.inputs.classes}}"

    edit_yaml(repo_copy / FACENET, change)
    assert any("type mismatch: string 'classes' feeds integer 'epochs'" in p for p in rendered(repo_copy))


def test_literal_out_of_range_and_enum(repo_copy: Path) -> None:
    def change(data):
        data["jobs"]["convert_train"]["inputs"]["split"] = "test"
        data["inputs"]["pruning_threshold"]["default"] = 2.0

    edit_yaml(repo_copy / FACENET, change)
    problems = rendered(repo_copy)
    assert any("jobs.convert_train.inputs.split: 'test' is not one of train, val" in p for p in problems)
    assert any("inputs.pruning_threshold.default: 2.0 is above the maximum 1" in p for p in problems)


def test_cycle(repo_copy: Path) -> None:
    def change(data):
        data["jobs"]["pretrained"]["inputs"]["model"] = "${{parent.jobs.train.outputs.results}}"
        data["jobs"]["train"]["inputs"]["pretrained_model"] = "${{parent.jobs.pretrained.outputs.model_dir}}"

    edit_yaml(repo_copy / FACENET, change)
    problems = rendered(repo_copy)
    assert any("cycle: " in p and "pretrained" in p and "train" in p for p in problems)


def test_unknown_step_input_and_missing_required(repo_copy: Path) -> None:
    def change(data):
        inputs = data["jobs"]["export"]["inputs"]
        inputs["clases"] = inputs.pop("classes")

    edit_yaml(repo_copy / FACENET, change)
    problems = rendered(repo_copy)
    assert any("jobs.export.inputs.clases: tao_detectnet_v2_export has no input 'clases'" in p for p in problems)
    assert any(
        "jobs.export.inputs.classes: required input of tao_detectnet_v2_export is not set" in p for p in problems
    )


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d.update(environment_variables={"A": "1"}), "environment_variables: unknown command component key"),
        (
            lambda d: d.update(command=d["command"].replace("$[[--overrides '${{inputs.overrides}}']]",
                                                            "--overrides '${{inputs.overrides}}'")),
            "inputs.overrides: optional input used outside $[[...]]",
        ),
        (
            lambda d: d["inputs"].update(home={"type": "string", "description": "x"}),
            "inputs.home: reserved name",
        ),
        (lambda d: d.update(name="tao-train"), "name: 'tao-train' must be lowercase letters, digits and _ only"),
        (lambda d: d.update(command=d["command"] + " ${{inputs.ghost}}"), "${{inputs.ghost}} is not declared"),
        (
            lambda d: d["inputs"]["gpus"].update(optional=True),
            "inputs.gpus: both optional and defaulted",
        ),
    ],
)
def test_command_component_problems(repo_copy: Path, change, expected: str) -> None:
    edit_yaml(repo_copy / TRAIN, change)
    problems = rendered(repo_copy)
    assert any(str(TRAIN) in p and expected in p for p in problems), problems


def test_bad_spec_field(repo_copy: Path, capsys) -> None:
    spec = repo_copy / "src/tao_aml/templates/facenet/facenet_train_resnet18_kitti.txt"
    spec.write_text(spec.read_text().replace("batch_size_per_gpu", "batch_size_per_gpuu", 1))
    problems = rendered(repo_copy)
    assert any("facenet_train_resnet18_kitti.txt: Experiment:" in p and "batch_size_per_gpuu" in p for p in problems)
    assert main(["validate", "--root", str(repo_copy)]) == 1
    assert "batch_size_per_gpuu" in capsys.readouterr().out  # also through azure-ai-ml and the CLI


def test_missing_spec_template(repo_copy: Path) -> None:
    (repo_copy / "src/tao_aml/templates/facenet/facenet_inference_kitti_tlt.txt").unlink()
    assert any(
        "jobs.inference.inputs.spec_file: spec template facenet_inference_kitti_tlt.txt not found in the templates "
        f"shipped in {repo_copy / 'src/tao_aml/templates'} (bodypose/: " in p and "facenet/: README.md, " in p
        for p in rendered(repo_copy)
    )


def test_spec_template_in_two_shipped_folders(repo_copy: Path) -> None:
    templates = repo_copy / "src/tao_aml/templates"
    shutil.copy(templates / "facenet/facenet_train_resnet18_kitti.txt", templates / "bodypose")
    assert any(
        "jobs.train.inputs.spec_file: spec template facenet_train_resnet18_kitti.txt is in several shipped template "
        f"folders of {templates} (bodypose, facenet)" in p
        for p in rendered(repo_copy)
    )


def test_placeholder_left_in_a_value(repo_copy: Path) -> None:
    edit_yaml(repo_copy / TRAIN, lambda d: d["tags"].update(registry="<registry_name>"))
    assert any("tags.registry: placeholder '<registry_name>'" in p for p in rendered(repo_copy))


def test_every_tao_step_gets_16g_of_shared_memory_in_a_form_azure_ml_reads(repo_copy: Path) -> None:
    """Azure ML's default /dev/shm is 2g; NVIDIA runs TAO with 16G (shared/facts/azureml.md)."""
    export = Path("components/detectnet_v2/export/component.yml")
    prune = Path("components/detectnet_v2/prune/component.yml")
    edit_yaml(repo_copy / export, lambda data: data.pop("resources"))
    edit_yaml(repo_copy / prune, lambda data: data["resources"].update(shm_size="16G"))
    edit_yaml(repo_copy / FACENET, lambda data: data["jobs"]["retrain"]["resources"].pop("shm_size"))
    edit_yaml(repo_copy / FACENET, lambda data: data["jobs"]["train"]["resources"].update(shm_size="lots"))
    problems = rendered(repo_copy)
    assert f"{export}: resources.shm_size: missing: a TAO container gets Azure ML's 2g /dev/shm; NVIDIA runs TAO " \
           "with 16G (multi-GPU training and TF data loaders fail below that): 16g" in problems
    assert f"{prune}: resources.shm_size: expected a shared-memory size <number><b|k|m|g>, e.g. 16g, got '16G'" \
        in problems
    assert f"{FACENET}: jobs.retrain.resources.shm_size: missing: a step's own resources replace those of its " \
           "component (tao_detectnet_v2_train sets shm_size 16g): repeat it here" in problems
    assert f"{FACENET}: jobs.train.resources.shm_size: expected a shared-memory size <number><b|k|m|g>, e.g. 16g, " \
           "got 'lots'" in problems
    data_step = yaml.safe_load((repo_copy / "components/data/wider_to_kitti/component.yml").read_text())
    assert "resources" not in data_step, "CPU data steps run no TAO container: Azure ML's default is theirs"
