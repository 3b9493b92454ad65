"""`az ml job create --file pipelines/<name>/pipeline.yml --set ...`, loaded exactly as the Azure CLI does.

The CLI's ml extension passes each `--set a.b=c` to azure-ai-ml's `load_job` as `params_override`
`[{"a.b": "c"}]`, the value always a string. These tests do the same and read the REST form.
"""

from __future__ import annotations

import json
import re
import shlex
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml import load_job

from doc_commands import DOC_FILES, doc_text, shown_commands
from tao_aml.azure.render import rest_body
from tao_aml.azure.submit import ESTIMATE_INPUT, build_job, sent_computes
from tao_aml.cli import main
from tao_aml.repo.input_rules import literal_problem
from tao_aml.repo.pipelines import WRAPPER_STEP, Pipeline, parse_value

REPO = Path(__file__).resolve().parents[1]
PIPELINES = sorted(p.parent.name for p in (REPO / "pipelines").glob("*/pipeline.yml"))


def az_arguments(command: str) -> tuple[Path, list[dict[str, str]]]:
    """The `--file` and the `--set` pairs of an `az ml job create` command line, as the CLI reads them."""
    tokens = shlex.split(command)
    file = Path(tokens[tokens.index("--file") + 1])
    pairs = []
    for flag, value in pairwise(tokens):
        if flag == "--set":
            key, _, text = value.partition("=")
            pairs.append({key: text})
    return file, pairs


def readme_commands(prefix: str) -> list[str]:
    """Every command in the bash blocks of README.md and docs/ that starts with prefix, in page order."""
    return [shown.line for shown in shown_commands() if shown.line.startswith(prefix)]


def rest_inputs(job: Any) -> tuple[dict, dict, Any]:
    """Job inputs, the wrapped component's inputs and the default compute, less the estimate only the
    submitter computes (it feeds the run report, not a step's work)."""
    properties = job._to_rest_object().as_dict()["properties"]
    main_inputs = {k: v for k, v in properties["jobs"][WRAPPER_STEP]["inputs"].items() if k != ESTIMATE_INPUT}
    return properties["inputs"], main_inputs, properties["settings"]["default_compute"]


@pytest.mark.parametrize("name", PIPELINES)
def test_az_defaults_are_the_submitters(name: str) -> None:
    job = load_job(REPO / "pipelines" / name / "pipeline.yml")
    assert job._validate().passed
    built = build_job(name, [])
    assert sent_computes(job) == {f"{WRAPPER_STEP}.{step.name}": step.compute for step in built.steps}
    assert rest_inputs(job) == rest_inputs(built.job)


@pytest.mark.parametrize("name", PIPELINES)
def test_az_set_strings_reach_each_step(name: str) -> None:
    pipeline = Pipeline.load(name)
    integer = next(p for p in pipeline.component.inputs.values() if p.type == "integer" and p.default is not None)
    job = load_job(
        pipeline.job_path,
        params_override=[
            {"inputs.gpu_compute": "my-gpu"},
            {"inputs.cpu_compute": "my-cpu"},
            {"settings.default_compute": "azureml:my-cpu"},
            {f"jobs.main.inputs.{integer.name}": "7"},
        ],
    )
    assert job._validate().passed
    job_inputs, main_inputs, default_compute = rest_inputs(job)
    assert job_inputs["gpu_compute"]["value"] == "my-gpu"
    assert main_inputs[integer.name]["value"] == "7"
    assert default_compute == "my-cpu"
    plan = {step.name: step.compute_input for step in build_job(name, []).steps}
    expected = {f"main.{step}": "my-gpu" if source == "gpu_compute" else "my-cpu" for step, source in plan.items()}
    assert sent_computes(job) == expected
    assert "gpu_compute" in plan.values() and "cpu_compute" in plan.values()


def test_az_and_the_submitter_send_the_same_job() -> None:
    submitted = build_job("facenet", ["gpu_compute=my-gpu", "cpu_compute=my-cpu", "train_epochs=40"])
    _, az = az_arguments(
        "az ml job create --file pipelines/facenet/pipeline.yml --set inputs.gpu_compute=my-gpu "
        "--set inputs.cpu_compute=my-cpu --set settings.default_compute=azureml:my-cpu "
        "--set jobs.main.inputs.train_epochs=40"
    )
    assert rest_inputs(load_job(REPO / "pipelines/facenet/pipeline.yml", params_override=az)) == rest_inputs(
        submitted.job
    )


def readme_job_file(command: str, out: Path) -> Path:
    """The file an `az ml job create --file` line names; a `build/...` file is written first by the
    `tao-aml submit ... --dry-run` line that precedes it in the README, as a user would run it."""
    file, _ = az_arguments(command)
    if file.parts[0] != "build":
        return REPO / file
    lines = readme_commands("")
    before = lines[: lines.index(command)]
    dry_run = next(line for line in reversed(before) if " submit " in line and "--dry-run" in line)
    tokens = shlex.split(dry_run.split("#")[0])
    assert main([*tokens[tokens.index("submit"):], "--output-dir", str(out / "build")]) == 0, dry_run
    return out / file


@pytest.mark.parametrize("command", readme_commands("az ml job create"))
def test_readme_az_ml_job_create_commands(command: str, tmp_path: Path) -> None:
    """Each documented command loads, validates and serializes, and every --set names a real input."""
    file, pairs = az_arguments(command)
    job = load_job(readme_job_file(command, tmp_path), params_override=pairs)
    assert job._validate().passed, job._validate().error_messages
    assert_documented(rest_body(job))
    pipeline = Pipeline.load(file.parent.name)
    for key, text in (item for pair in pairs for item in pair.items()):
        if key.startswith(f"jobs.{WRAPPER_STEP}.inputs."):
            # azure-ai-ml accepts unknown names and wrong types on a step: check them here.
            name, _, field = key.removeprefix(f"jobs.{WRAPPER_STEP}.inputs.").partition(".")
            port = pipeline.component.inputs.get(name)
            assert port is not None, f"{command}: {key} is not an input of the pipeline"
            if field:  # a data input given as {type, path}
                assert field in ("type", "path") and port.type not in ("string", "integer", "number", "boolean")
                assert field != "type" or text == port.type, key
            else:
                assert literal_problem(port, parse_value(port, text)) is None, key
        else:
            assert key.split(".")[0] in ("inputs", "settings", "experiment_name", "display_name", "outputs"), key


def assert_documented(body: dict) -> None:
    """No binding where the REST contract wants a literal, anywhere in the body."""
    text = json.dumps(body)
    for field in ("instance_count", "process_count_per_instance", "instance_type"):
        assert not re.search(rf'"{field}": "\$\{{\{{', text), field


def test_readme_data_asset_versions_are_the_computed_ones() -> None:
    """The versions the README gives for the default URLs are what the submitter computes."""
    text = "".join(doc_text(path) for path in DOC_FILES)
    for name, entry, asset in (("facenet", "wider", "tao_wider_face"), ("bodypose", "coco", "tao_coco2017")):
        number = build_job(name, []).data_plan.versions[entry]
        for found in re.findall(rf"{asset}:([0-9a-f]{{12}})", text):
            assert found == number, (asset, found, number)


def test_readme_documents_az_ml_job_create() -> None:
    assert readme_commands("az ml job create"), "README.md and docs/ must show `az ml job create`"
