"""What the service receives, read from the serialized REST body, for every way of submitting.

The REST contract types `resources.instance_count`, `resources.instance_type` and
`distribution.process_count_per_instance` as literals: the body must carry literals there, for
`tao-aml submit`, for `az ml job create --file` on the job it writes, and for the pipeline components
`tao-aml register` publishes for Designer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.ai.ml import load_job

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.register import Refs, plan
from tao_aml.azure.render import RunShape, rest_body
from tao_aml.azure.submit import build_job
from tao_aml.repo.pipelines import SettingError

REPO = Path(__file__).resolve().parents[1]
PIPELINES = ["facenet", "bodypose", "detectnet_v2"]
DISTRIBUTED = {"train", "retrain"}
SHAPES = [(1, 1), (2, 4)]
# A cluster of the user's own, of a size with 4 GPUs: compute/gpu-cluster.yml's has one (repo/run_checks.py).
OWN_CLUSTER = "gpu_compute=a100-x4"
LITERAL_FIELDS = (("resources", "instance_count"), ("resources", "instance_type"),
                  ("distribution", "process_count_per_instance"))


def nodes(body: dict, prefix: str = "") -> Iterator[tuple[str, dict]]:
    """(step path, node) for every node of a REST body, into expanded pipeline components."""
    jobs = body.get("properties", body).get("jobs") or {}
    for name, node in jobs.items():
        yield prefix + name, node
        spec = (node.get("componentId") or {}).get("component_spec") if isinstance(node.get("componentId"), dict) \
            else None
        if spec and spec.get("jobs"):
            yield from nodes(spec, f"{prefix}{name}.")


def assert_documented(body: dict, nodes_count: int, gpus: int) -> dict[str, dict]:
    """Literal integers on train/retrain, nothing on the other steps, no binding where a literal belongs."""
    found = dict(nodes(body))
    for path, node in found.items():
        for group, field in LITERAL_FIELDS:
            value = (node.get(group) or {}).get(field)
            assert not (isinstance(value, str) and "${{" in value), f"{path}.{group}.{field} = {value}"
        step = path.rsplit(".", 1)[-1]
        if step in DISTRIBUTED:
            assert node["resources"]["instance_count"] == nodes_count, path
            assert node["distribution"] == {"distribution_type": "Mpi", "process_count_per_instance": gpus}, path
    assert {path.rsplit(".", 1)[-1] for path, node in found.items() if node.get("distribution")} == DISTRIBUTED
    return found


def assert_no_empty_strings(body: dict) -> None:
    for path, node in nodes(body):
        for name, value in (node.get("inputs") or {}).items():
            assert value.get("value") != "", f"{path}.inputs.{name} is sent as an empty string"


@pytest.mark.parametrize("name", PIPELINES)
@pytest.mark.parametrize("shape", SHAPES)
def test_submitter_body_has_literal_counts(name: str, shape: tuple[int, int], tmp_path: Path) -> None:
    built = build_job(name, [f"nodes={shape[0]}", f"gpus_per_node={shape[1]}", OWN_CLUSTER], out_dir=tmp_path)
    body = rest_body(built.job)
    assert_documented(body, *shape)
    assert_no_empty_strings(body)
    main = body["properties"]["jobs"]["main"]["inputs"]
    assert main["nodes"]["value"] == str(shape[0]) and main["gpus_per_node"]["value"] == str(shape[1])


@pytest.mark.parametrize("name", PIPELINES)
def test_the_written_job_loads_back_to_an_equal_job(name: str, tmp_path: Path) -> None:
    # 5: BodyPoseNet's num_epoch must be a multiple of its checkpoint_n_epoch (5)
    settings = ["nodes=2", "gpus_per_node=4", "train_epochs=5", "gpu_instance_type=Standard_NC96ads_A100_v4"]
    built = build_job(name, settings, out_dir=tmp_path, serverless=True)
    again = load_job(built.job_file)
    assert again._validate().passed
    assert rest_body(again) == rest_body(built.job)


@pytest.mark.parametrize("name", PIPELINES)
def test_az_ml_job_create_on_the_written_file_with_set_keeps_the_literals(name: str, tmp_path: Path) -> None:
    """`az ml job create --file build/<name>/<name>.pipeline.yml --set jobs.main.inputs.train_epochs=7`."""
    built = build_job(name, ["nodes=2", "gpus_per_node=4", OWN_CLUSTER], out_dir=tmp_path)
    job = load_job(built.job_file, params_override=[{"jobs.main.inputs.train_epochs": "7"}])
    assert job._validate().passed
    body = rest_body(job)
    assert_documented(body, 2, 4)
    assert body["properties"]["jobs"]["main"]["inputs"]["train_epochs"]["value"] == "7"


@pytest.mark.parametrize("name", PIPELINES)
def test_az_ml_job_create_on_the_repository_file_sends_one_node_one_gpu(name: str) -> None:
    body = rest_body(load_job(REPO / "pipelines" / name / "pipeline.yml"))
    assert_documented(body, 1, 1)
    assert_no_empty_strings(body)


@pytest.mark.parametrize("shape", SHAPES)
def test_designer_components_published_by_register_have_literal_counts(shape: tuple[int, int]) -> None:
    assets = plan(REPO, Refs("0.1.0"), RunShape(*shape))
    pipelines = {asset.entity.name: asset.entity for asset in assets if asset.kind == "pipeline component"}
    suffix = "" if shape == (1, 1) else f"_{shape[0]}x{shape[1]}"
    assert set(pipelines) == {f"tao_facenet_pipeline{suffix}", f"tao_bodypose_pipeline{suffix}",
                              f"tao_detectnet_v2_pipeline{suffix}"}
    for entity in pipelines.values():
        spec = entity._to_rest_object().properties.component_spec
        body = json.loads(json.dumps(spec, default=str))
        assert_documented(body, *shape)
        assert spec["inputs"]["nodes"]["default"] == str(shape[0])
        assert spec["inputs"]["gpus_per_node"]["default"] == str(shape[1])


@pytest.mark.parametrize("name", PIPELINES)
def test_use_amp_reaches_train_and_retrain(name: str, tmp_path: Path) -> None:
    """On by default (README: NVIDIA's AMP page), and --set use_amp=false turns it off."""
    for setting, value in (([], True), (["use_amp=false"], False)):
        built = build_job(name, setting, out_dir=tmp_path)
        assert built.inputs["use_amp"] is value
        found = dict(nodes(rest_body(built.job)))
        for step in DISTRIBUTED:
            assert found[f"main.{step}"]["inputs"]["use_amp"]["value"] == "${{parent.inputs.use_amp}}"
        main = rest_body(built.job)["properties"]["jobs"]["main"]["inputs"]
        assert ("use_amp" in main) == (not value) and (value or main["use_amp"]["value"] == "False")


def test_empty_set_values_are_omitted_not_sent(tmp_path: Path) -> None:
    built = build_job("facenet", ["train_overrides=", "inference_overrides= "], out_dir=tmp_path)
    main = rest_body(built.job)["properties"]["jobs"]["main"]["inputs"]
    assert "train_overrides" not in main and "inference_overrides" not in main
    assert built.settings.omitted == ["train_overrides", "inference_overrides"]
    with pytest.raises(SettingError, match="--set classes=: an empty value; classes is required"):
        build_job("facenet", ["classes="], out_dir=tmp_path)


@pytest.mark.parametrize("name", PIPELINES)
def test_serverless_sends_instance_types_and_no_clusters(name: str, tmp_path: Path) -> None:
    built = build_job(name, ["nodes=2", "spot=true"], out_dir=tmp_path, serverless=True)
    body = rest_body(built.job)
    assert body["properties"]["settings"]["default_compute"] == "serverless"
    found = assert_documented(body, 2, 1)
    plan_by_step = {step.name: step for step in built.steps}
    for path, node in found.items():
        step = path.rsplit(".", 1)[-1]
        if step == "main":
            continue
        assert node.get("computeId") is None, path
        gpu = plan_by_step[step].compute_input == "gpu_compute"
        assert node["resources"]["instance_type"] == ("Standard_NC24ads_A100_v4" if gpu else "Standard_D4s_v3"), path
        assert node["queue_settings"] == {"job_tier": "Spot"}, path


def test_serverless_dry_run_prints_each_steps_size(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    code = submit(REPO, tmp_path, "facenet", "--dry-run", "--serverless",
                  "--set", "gpu_instance_type=Standard_NC96ads_A100_v4", "--set", "gpus_per_node=4")
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "train                tao_detectnet_v2_train, on serverless Standard_NC96ads_A100_v4, 1 node x 4 GPUs" in out
    assert "tao_download_archives, on serverless Standard_D4s_v3, 1 node x 0 GPUs" in out
    assert (tmp_path / "facenet" / "facenet.rest.json").is_file()
    assert fake_azure.clients == []


@pytest.mark.parametrize(("size", "message"), [
    ("Standard_D4s_v3", "Standard_D4s_v3 is a size without an NVIDIA GPU"),
    ("Standard_E8s_v5", "Standard_E8s_v5 is a size without an NVIDIA GPU"),
    ("Standard_NC6s_v3", "Standard_NC6s_v3 was retired by Azure"),
])
def test_a_gpu_step_on_a_cpu_only_size_is_refused(size: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(SettingError, match=message):
        build_job("facenet", [f"gpu_instance_type={size}"], out_dir=tmp_path, serverless=True)


def test_more_gpus_per_node_than_the_size_has_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="has 1 GPU.*fewer than gpus_per_node=4"):
        build_job("facenet", ["gpus_per_node=4"], out_dir=tmp_path, serverless=True)


def test_serverless_settings_without_serverless_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingError, match="gpu_instance_type: serverless settings; add --serverless"):
        build_job("facenet", ["gpu_instance_type=Standard_NC24ads_A100_v4"], out_dir=tmp_path)


def test_submitted_serverless_job_checks_no_cluster(
    tmp_path: Path, config: Path, fake_azure: FakeAzure  # noqa: F811
) -> None:
    fake_azure.computes = set()
    assert submit(REPO, tmp_path, "facenet", "--config", str(config), "--serverless") == 0
    assert fake_azure.compute_gets == []
    [sent] = fake_azure.jobs
    rest: Any = sent["rest"].properties.settings
    assert rest["default_compute"] == "serverless"


def gpu_step_modes(built) -> dict[str, dict[str, str | None]]:
    """Step -> {input bound to an earlier step's output: its mode}, for the GPU steps of the body."""
    found = dict(nodes(rest_body(built.job)))
    plan = {step.name: step for step in built.steps}
    modes = {}
    for path, node in found.items():
        step = path.rsplit(".", 1)[-1]
        if step in plan and plan[step].compute_input == "gpu_compute":
            modes[step] = {name: value.get("mode") for name, value in (node.get("inputs") or {}).items()
                           if str(value.get("value", "")).startswith("${{parent.jobs.")}
    return modes


@pytest.mark.parametrize("name", PIPELINES)
def test_train_and_retrain_download_their_data_and_the_rest_mount_it(name: str, tmp_path: Path) -> None:
    """README, Data on the GPU node: read every epoch, so copied to local disk once; read once, mounted."""
    modes = gpu_step_modes(build_job(name, [], out_dir=tmp_path))
    for step, inputs in modes.items():
        if step in DISTRIBUTED:
            data = {k: v for k, v in inputs.items() if k != "pretrained_model"}
            assert data and set(data.values()) == {"Download"}, (step, inputs)
        else:
            assert set(inputs.values()) <= {None}, (step, inputs)  # the default, ro_mount


@pytest.mark.parametrize(("setting", "sent"), [("ro_mount", "ReadOnlyMount"), ("download", "Download")])
def test_input_mode_sets_every_gpu_step_the_same_way(setting: str, sent: str, tmp_path: Path) -> None:
    built = build_job("facenet", [f"input_mode={setting}"], out_dir=tmp_path)
    for step, inputs in gpu_step_modes(built).items():
        assert set(inputs.values()) == {sent}, (step, inputs)
    cpu = dict(nodes(rest_body(built.job)))["main.convert_train"]["inputs"]["wider_root"]
    assert "mode" not in cpu, "CPU steps keep their modes"
    with pytest.raises(SettingError, match="'copy' is not one of auto, download, ro_mount"):
        build_job("facenet", ["input_mode=copy"], out_dir=tmp_path)


def shm_sizes(body: dict) -> dict[str, str | None]:
    """Step name -> resources.shm_size of its node as sent, for every command step of a body."""
    return {path.rsplit(".", 1)[-1]: (node.get("resources") or {}).get("shm_size")
            for path, node in nodes(body) if node.get("type") == "command"}


def tao_steps(name: str) -> set[str]:
    """The steps of a pipeline whose component runs a TAO container (its environment is tao_tf1 or tao_deploy)."""
    raw = yaml.safe_load((REPO / "pipelines" / name / "pipeline_component.yml").read_text())
    found = set()
    for step_name, step in raw["jobs"].items():
        component = yaml.safe_load((REPO / "pipelines" / name / step["component"]).read_text())
        if "/tao_tf1/" in component["environment"] or "/tao_deploy/" in component["environment"]:
            found.add(step_name)
    return found


@pytest.mark.parametrize("name", PIPELINES)
def test_every_tao_step_is_sent_with_16g_of_shared_memory(name: str, tmp_path: Path) -> None:
    """Azure ML's default /dev/shm is 2g; NVIDIA runs TAO with 16G: submitter, az ml job create, Designer."""
    expected = {step: ("16g" if step in tao_steps(name) else None) for step in shm_sizes(
        rest_body(load_job(REPO / "pipelines" / name / "pipeline.yml")))}
    assert {"train", "retrain", "export"} <= {step for step, size in expected.items() if size}
    bodies = {
        "az ml job create on the repository's file": rest_body(load_job(REPO / "pipelines" / name / "pipeline.yml")),
        "tao-aml submit": rest_body(build_job(name, ["nodes=2"], out_dir=tmp_path).job),
        "az ml job create on the written file": rest_body(load_job(tmp_path / f"{name}.pipeline.yml")),
    }
    for how, body in bodies.items():
        assert shm_sizes(body) == expected, how
    [designer] = [asset.entity for asset in plan(REPO, Refs("0.1.0"), RunShape())
                  if asset.kind == "pipeline component" and asset.entity.name == f"tao_{name}_pipeline"]
    spec = json.loads(json.dumps(designer._to_rest_object().properties.component_spec, default=str))
    assert shm_sizes(spec) == expected, "Designer"


def test_shm_size_is_a_setting_checked_offline(tmp_path: Path, fake_azure: FakeAzure, capsys) -> None:  # noqa: F811
    """`--set shm_size=32g` reaches every TAO step of the REST body the dry run writes, and only those."""
    assert submit(REPO, tmp_path, "bodypose", "--dry-run", "--set", "shm_size=32g") == 0, capsys.readouterr().err
    sizes = shm_sizes(json.loads((tmp_path / "bodypose" / "bodypose.rest.json").read_text()))
    assert {step: size for step, size in sizes.items() if size} == dict.fromkeys(tao_steps("bodypose"), "32g")
    assert submit(REPO, tmp_path / "bad", "bodypose", "--dry-run", "--set", "shm_size=16 GB") == 2
    assert "--set shm_size: input shm_size: expected a shared-memory size <number><b|k|m|g>, e.g. 16g, got '16 GB'" \
        in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
