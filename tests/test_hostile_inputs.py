"""Values are data: no value a string input may hold, and no path, changes a component's command.

Every component command is rendered as Azure ML renders it (each `${{inputs.x}}` replaced by the value as
plain text, shared/facts/azureml.md) with hostile values from one table, in every string input and every
path. Each value is either refused offline by its input's rule, with the input named, or stays exactly one
argument: checked with a shell lexer and by running the command through bash with a printer in place of
the step, with a marker file that any executed text would create.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tao_aml.local.local_run import LocalRunner, local_inputs
from tao_aml.repo import yaml_model
from tao_aml.repo.input_rules import command_problems, literal_problem, override_problem
from tao_aml.repo.pipelines import Pipeline, SettingError, resolve_settings
from tao_aml.steps import input_kinds
from tao_aml.steps.asset import report
from tao_aml.steps.data import kitti_prepare
from tao_aml.steps.detectnet_v2 import dataset_convert as detectnet_dataset_convert
from tao_aml.steps.detectnet_v2 import train as detectnet_train
from wider_fixtures import make_wider_download, random_images

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = {path.parent.relative_to(REPO / "components").as_posix(): yaml_model.load(path)
              for path in sorted(REPO.glob("components/*/*/component.yml"))}
MARKER = "owned"  # the file a value that ran as code would create
HOSTILE = [
    "it's", f"x' ; touch {MARKER} ; echo '", f"a;touch {MARKER}", f"$(touch {MARKER})", f"`touch {MARKER}`",
    f"a\ntouch {MARKER}", "two words", f"a && touch {MARKER}", f"a || touch {MARKER}", f"a | tee {MARKER}",
    f"a > {MARKER}", "*", "?", "$HOME", "~", "-rf", "naïve→ü", '"', "a\\", "\t", "",
]
# A valid value of each kind: what fills the inputs a case is not about (and each must pass its own rule).
SAMPLES = {
    "name": "face", "names": "car,cyclist", "file_name": "spec.txt", "key": "nvidia_tlt",
    "ngc_model": "nvidia/tao/facenet:unpruned_v2.0", "backbone": "resnet18",
    "https_urls": "https://example.org/a.zip,https://example.org/b.zip", "sha256_list": "," + "ab" * 32,
    "size_list": "1,,2", "overrides": "training_config.num_epochs=3;model_config.arch=resnet",
    "estimates": "train=0.8,retrain=1e-3", "compute": "gpu-cluster", "text": "TAO pipeline run",
    "choice": "int8", "key_vault_url": "https://my-vault.vault.azure.net/", "secret_name": "ngc-api-key",
    "shm_size": "16g",
}
PRIMITIVES = {"integer": 1, "number": 0.5, "boolean": True}
MOUNT = "/mnt/azureml/cr/j/0a1b/cap/data-capability/wd/INPUT_{}"
# Paths are the service's, not the user's: its mount paths hold no quote, but a local run's may hold anything.
HOSTILE_PATH = f"/mnt/azureml/cr/j/0a1b/cap/data-capability/wd/my data $(touch {MARKER}) `touch {MARKER}`;x"
OPTIONAL_BLOCK = re.compile(r"\$\[\[(.*?)\]\]", re.S)
PORT_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")


def string_inputs() -> list[tuple[str, str]]:
    return [(where, name) for where, component in COMPONENTS.items()
            for name, port in component.inputs.items() if port.type == "string" and not port.enum]


def sample(component: yaml_model.Component, name: str) -> object:
    port = component.inputs[name]
    if port.type in PRIMITIVES:
        return PRIMITIVES[port.type]
    if port.type == "string":
        return port.enum[0] if port.enum else SAMPLES[input_kinds.INPUTS[name]]
    return MOUNT.format(name)


def azure_render(component: yaml_model.Component, values: dict[str, object]) -> str:
    """The service's substitution: plain text, every optional block kept (every input has a value)."""
    command = OPTIONAL_BLOCK.sub(lambda match: match.group(1), component.command)
    return PORT_REF.sub(lambda match: str(values.get(match.group(2), MOUNT.format(match.group(2)))), command)


def flag_of(component: yaml_model.Component, kind: str, name: str) -> str:
    match = re.search(r"(--\w+) '\$\{\{" + kind + r"\." + name + r"\}\}'", component.command)
    assert match, f"{name} is not given as --flag '${{{{{kind}.{name}}}}}'"
    return match.group(1)


def run_printed(command: str, cwd: Path) -> list[str]:
    """The arguments the step would get, with `printf` in place of `python -m module`; asserts nothing ran."""
    words = command.split(None, 3)
    assert words[:2] == ["python", "-m"], command
    printed = subprocess.run(["bash", "-c", "printf '%s\\0' " + words[3]], cwd=cwd, capture_output=True,
                             check=True, timeout=30).stdout.decode()
    assert not (cwd / MARKER).exists(), f"the command ran text of a value: {command}"
    return printed.split("\0")[:-1]


def test_every_sample_fits_its_own_rule() -> None:
    assert {input_kinds.INPUTS[name] for _, name in string_inputs()} <= set(SAMPLES)
    for kind, value in SAMPLES.items():
        assert input_kinds.KINDS[kind].problem(value) is None, kind


def test_every_string_input_has_a_kind_and_every_reference_is_quoted() -> None:
    for where, component in COMPONENTS.items():
        assert command_problems(component.command) == [], where
        for name, port in component.inputs.items():
            if port.type == "string" and not port.enum:
                assert name in input_kinds.INPUTS, f"{where}: {name}"


def test_an_unquoted_or_half_quoted_reference_is_refused() -> None:
    for command in ("python -m x --model ${{inputs.model}}", "python -m x --a '${{inputs.a}}${{inputs.b}}'",
                    "python -m x --a \"${{inputs.a}}\"", "python -m x $[[--a ${{inputs.a}}]]"):
        problems = command_problems(command)
        assert problems and all("is not quoted: write '${{" in problem for problem in problems), command


@pytest.mark.parametrize(("where", "name"), string_inputs())
def test_a_hostile_value_is_refused_with_its_input_named_or_stays_one_argument(
    where: str, name: str, tmp_path: Path
) -> None:
    component = COMPONENTS[where]
    port = component.inputs[name]
    flag = flag_of(component, "inputs", name)
    values = {other: sample(component, other) for other in component.inputs}
    kept = 0
    for value in HOSTILE:
        refused = literal_problem(port, value)  # what validate, submit and run say of the value
        if refused is not None:
            assert refused.startswith(f"input {name}: "), refused
            assert input_kinds.problem(name, value) is not None
            continue
        kept += 1
        assert "'" not in value and "\n" not in value
        command = azure_render(component, {**values, name: value})
        words = shlex.split(command)
        assert words[words.index(flag) + 1] == value, command
        assert run_printed(command, tmp_path) == words[3:]
    assert kept < len(HOSTILE)  # the rule refuses something


@pytest.mark.parametrize("where", sorted(COMPONENTS))
def test_a_path_with_spaces_and_shell_text_stays_one_argument(where: str, tmp_path: Path) -> None:
    component = COMPONENTS[where]
    values = {name: sample(component, name) for name in component.inputs}
    paths = [("inputs", name) for name, port in component.inputs.items() if port.type not in (*PRIMITIVES, "string")]
    paths += [("outputs", name) for name in component.outputs]
    for kind, name in paths:
        flag = flag_of(component, kind, name)
        command = azure_render(component, {**values, name: HOSTILE_PATH})
        words = shlex.split(command)
        assert words[words.index(flag) + 1] == HOSTILE_PATH
        assert run_printed(command, tmp_path) == words[3:]


@pytest.mark.parametrize(("module", "argv", "flag"), [
    (kitti_prepare, ["--classes", "car;touch x"], "--classes"),
    (report, ["--output_dir", "o", "--title", "a\nb"], "--title"),
    (report, ["--output_dir", "o", "--title", "it's"], "--title"),
    (detectnet_dataset_convert, ["--kitti_dir", "k", "--output_dir", "o", "--spec_file", "../x.txt"], "--spec_file"),
    (detectnet_dataset_convert, ["--kitti_dir", "k", "--output_dir", "o", "--spec_file", "s.txt",
                                 "--overrides", "a.b=x'"], "--overrides"),
    (detectnet_train, ["--model_name", "$(id)"], "--model_name"),
    (detectnet_train, ["--key", "a b"], "--key"),
    (detectnet_train, ["--backbone", "resnet18;id"], "--backbone"),
])
def test_the_step_parser_refuses_what_the_rule_refuses(
    module, argv: list[str], flag: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as stop:
        module.build_parser().parse_args(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err, err
    assert "expected" in err or "is not allowed in any input value" in err, err


@pytest.mark.parametrize(("assignment", "message"), [
    ("classes=face,$(id)", "--set classes: input classes: expected comma-separated names"),
    ("wider_urls=https://x/a'; touch owned; echo '", "--set wider_urls: input wider_urls: \"'\" is not allowed"),
    ("wider_urls=http://example.org/a.zip", "--set wider_urls: input wider_urls: expected comma-separated https://"),
    ("key=a b", "--set key: input key: expected a key"),
    ("model_name=../x", "--set model_name: input model_name: expected a name"),
    ("pretrained_model=nvidia/tao/facenet:v1;id", "--set pretrained_model: input pretrained_model: expected an NGC"),
    ("train_overrides=a.b=1\nc.d=2", "--set train_overrides: input train_overrides: '\\n' is not allowed"),
])
def test_submit_and_run_refuse_a_value_with_its_input_named(assignment: str, message: str) -> None:
    with pytest.raises(SettingError) as refused:
        resolve_settings(Pipeline.load("facenet"), [assignment])
    assert message in str(refused.value)


def test_one_override_may_not_smuggle_a_second() -> None:
    assert "a ';' in a value would split it" in override_problem("model_config.arch=resnet;num_epochs=3")
    assert override_problem("model_config.arch=resnet") is None


def test_a_local_run_in_folders_with_spaces_and_shell_text_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both CPU steps that read the WIDER folder and write KITTI, from and into such folders."""
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]]))
    odd = tmp_path / f"my data $(touch {MARKER}) `touch {MARKER}` it's"
    wider = make_wider_download(odd / "wider", random_images(3, seed=5), random_images(2, seed=6))
    pipeline = Pipeline.load("facenet")
    settings = resolve_settings(pipeline, ["wider_urls=http://127.0.0.1:9/unused.zip"])
    runner = LocalRunner(pipeline, settings, odd / "work", local_inputs(pipeline, [f"wider_data={wider}"]))
    code_dir = REPO / "src"
    before = set(os.listdir(code_dir))
    runs = runner.run(only=["download_wider", "convert_val"])
    assert [run.name for run in runs] == ["download_wider", "convert_val"]
    assert json.loads((odd / "work" / "convert_val" / "kitti" / "summary.json").read_text())["images"] == 2
    assert set(os.listdir(code_dir)) == before  # the steps run there: nothing was created by a folder name
    assert not list(tmp_path.rglob(MARKER))
