"""A pruning sweep on the user side: the literal branches in the job as sent, its cost beside one threshold's,
every refusal before anything is sent, Designer's `_sweep<N>` pipelines and the local run's branch nodes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_recorder import FakeAzure, fake_azure, submit  # noqa: F401  (fixture)
from tao_aml.azure.register import Refs, plan
from tao_aml.azure.submit import build_job
from tao_aml.local.local_run import Direct, Docker, LocalRunner
from tao_aml.repo import run_cost
from tao_aml.repo.pipelines import Pipeline, SettingError, resolve_settings

REPO = Path(__file__).resolve().parents[1]
PIPELINES = ["facenet", "bodypose", "detectnet_v2"]
THRESHOLDS = "1e-06,0.0000052,0.1"
VALUES = [1e-06, 5.2e-06, 0.1]
BRANCH_STEPS = {"prune": "pruned", "retrain": "results", "evaluate_retrained": "results"}
# What select_model gives later steps in place of each branch step's output (sweep_contract.md).
SELECTED = {"prune": "pruned", "retrain": "model", "evaluate_retrained": "evaluation"}
SWEEP_LINE = re.compile(r"pruning sweep: 3 branches \(thresholds 1e-06, 5\.2e-06, 0\.1\): ~([0-9.]+) GPU-hours, "
                        r"about \$([0-9.,]+); one threshold: ~([0-9.]+) GPU-hours, about \$([0-9.,]+)")


def job(step: str, port: str) -> str:
    return f"${{{{parent.jobs.{step}.outputs.{port}}}}}"


def value(node: dict[str, Any], name: str) -> Any:
    return node["inputs"][name]["value"]


def sent_jobs(out: Path, name: str) -> dict[str, Any]:
    """The pipeline component's nodes in the REST body the dry run wrote."""
    body = json.loads((out / name / f"{name}.rest.json").read_text(encoding="utf-8"))
    return body["properties"]["jobs"]["main"]["componentId"]["component_spec"]["jobs"]


@pytest.mark.parametrize("name", PIPELINES)
def test_dry_run_sends_three_literal_branches_and_selects_among_them(
    name: str, repo_copy: Path, tmp_path: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    shutil.copytree(REPO / "compute", repo_copy / "compute")  # the clusters' sizes, so their prices
    out = tmp_path / "build"
    assert submit(repo_copy, out, name, "--dry-run", "--set", f"pruning_thresholds={THRESHOLDS}") == 0
    printed = capsys.readouterr().out
    assert fake_azure.clients == []
    jobs = sent_jobs(out, name)
    assert not set(BRANCH_STEPS) & set(jobs), "the single branch is replaced"
    select = jobs["select_model"]
    for i, threshold in enumerate(VALUES, 1):
        prune, retrain, evaluate = (jobs[f"{step}_{i}"] for step in BRANCH_STEPS)
        assert float(value(prune, "pruning_threshold")) == threshold
        assert value(prune, "model") == job("train", "results")
        assert value(retrain, "pretrained_model") == job(f"prune_{i}", "pruned")
        assert value(evaluate, "model") == job(f"retrain_{i}", "results")
        for node in (prune, retrain, evaluate):
            assert node["environment_variables"] == {"TAO_AML_SWEEP_BRANCH": str(i)}
            assert not node.get("outputs"), "a branch's outputs are its own, not the pipeline's"
        assert float(value(select, f"threshold_{i}")) == threshold
        assert value(select, f"pruned_{i}") == job(f"prune_{i}", "pruned")
        assert value(select, f"retrained_{i}") == job(f"retrain_{i}", "results")
        assert value(select, f"evaluation_{i}") == job(f"evaluate_retrained_{i}", "results")
    assert value(select, "unpruned_evaluation") == job("evaluate_trained", "results")
    assert "threshold_4" not in select["inputs"] and "max_map_drop" not in select["inputs"]
    assert {port: out["value"] for port, out in select["outputs"].items()} == {
        "pruned": "${{parent.outputs.pruned_model}}", "model": "${{parent.outputs.retrained_model}}",
        "evaluation": "${{parent.outputs.retrained_evaluation}}"}
    # Downstream, every step reads the chosen branch through select_model, none a branch directly.
    branch_names = {f"{step}_{i}" for step in BRANCH_STEPS for i in (1, 2, 3)}
    for node_name, node in jobs.items():
        if node_name in branch_names or node_name == "select_model":
            continue
        for port in node.get("inputs", {}).values():
            text = str(port.get("value", ""))
            assert not any(f"parent.jobs.{branch}." in text for branch in branch_names), (node_name, text)
            for step, output in BRANCH_STEPS.items():
                assert text != job(step, output), (node_name, text)
    assert value(jobs["export"], "model") == job("select_model", "model")
    assert value(jobs["register_model"], "export") == value(jobs["report"], "export")  # still the export's
    report = jobs["report"]
    assert value(report, "prune") == job("select_model", "pruned")
    assert value(report, "retrain") == job("select_model", "model")
    assert value(report, "retrained_evaluation") == job("select_model", "evaluation")
    assert value(report, "sweep") == job("select_model", "sweep")
    assert value(report, "trained_evaluation") == job("evaluate_trained", "results")
    if "trained_model" in jobs["register_model"]["inputs"]:
        assert value(jobs["register_model"], "trained_model") == job("select_model", "model")
    if "inference" in jobs and "model" in jobs["inference"]["inputs"]:
        assert value(jobs["inference"], "model") in (job("select_model", "model"), job("export", "exported"))

    # The estimate: each branch costs what the single one does, printed beside one threshold's.
    swept = build_job(name, [f"pruning_thresholds={THRESHOLDS}"], root=repo_copy, out_dir=tmp_path / "swept")
    single = build_job(name, [], root=repo_copy, out_dir=tmp_path / "single")
    hours = {step.name: step.gpu_hours or 0.0 for step in swept.steps}
    single_hours = {step.name: step.gpu_hours or 0.0 for step in single.steps}
    for step in BRANCH_STEPS:
        assert hours[f"{step}_1"] == hours[f"{step}_2"] == hours[f"{step}_3"] == single_hours[step] > 0
    extra = 2 * sum(single_hours[step] for step in BRANCH_STEPS)
    assert sum(hours.values()) == pytest.approx(sum(single_hours.values()) + extra)
    match = SWEEP_LINE.search(printed)
    assert match, printed
    sweep_h, sweep_usd, one_h, one_usd = match.groups()
    assert sweep_h == f"{sum(hours.values()):.3g}" and one_h == f"{sum(single_hours.values()):.3g}"
    single_usd = sum(run_cost.bill(step).usd or 0.0 for step in single.steps)
    assert float(one_usd.replace(",", "")) == pytest.approx(single_usd, abs=0.01)
    assert float(sweep_usd.replace(",", "")) > float(one_usd.replace(",", ""))
    assert "select_model keeps the most accurate branch" in printed
    assert "pruning_threshold = " in printed and "not used: the sweep prunes with pruning_thresholds" in printed
    # The report compares its measured hours with one branch's estimate: the chosen branch is what it reads.
    estimate = dict(pair.split("=") for pair in str(swept.inputs["gpu_hours_estimate"]).split(","))
    assert float(estimate["retrain"]) == single_hours["retrain"]


def test_max_map_drop_reaches_the_selection_step(repo_copy: Path, tmp_path: Path) -> None:
    built = build_job("facenet", ["pruning_thresholds=0.01,0.05", "max_map_drop=1.5"], root=repo_copy,
                      out_dir=tmp_path)
    spec = built.job.jobs["main"].component.jobs
    assert float(spec["select_model"].inputs["max_map_drop"]._data) == 1.5
    assert built.sweep is not None and built.sweep.thresholds == (0.01, 0.05)
    assert "keeps the smallest model at most 1.5 points of accuracy" in built.sweep.choice()


SEVEN = ",".join(str(0.01 * i) for i in range(1, 8))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (["pruning_thresholds=0.1,,0.2"], "pruning_thresholds=0.1,,0.2: item 2 is empty"),
        (["pruning_thresholds=0.1,0.2,"], "item 3 is empty (a trailing comma leaves an empty last item)"),
        (["pruning_thresholds=0.1,1.2.3"], "item 2 '1.2.3' is not a number"),
        (["pruning_thresholds=0.1,1e999"], "item 2 '1e999' is not a finite number"),
        (["pruning_thresholds=0.1,abc"], "expected comma-separated numbers"),
        (["pruning_thresholds=0.1, 0.2"], "expected comma-separated numbers"),
        (["pruning_thresholds=0.1,1"], "1 is outside TAO's accepted range 0 <= threshold < 1"),
        (["pruning_thresholds=0.1,1.5"], "1.5 is outside the input pruning_threshold's range [0, 1]"),
        (["pruning_thresholds=-0.1,0.1"], "-0.1 is outside the input pruning_threshold's range [0, 1]"),
        (["pruning_thresholds=1e-6,0.1,0.000001"], "1e-6 and 0.000001 are the same threshold (1e-06)"),
        ([f"pruning_thresholds={SEVEN}"], "7 thresholds, more than max_sweep_branches=6"),
        ([f"pruning_thresholds={SEVEN}"], "raise the limit with --set max_sweep_branches=7 (at most 12"),
        (["pruning_thresholds=0.1", "max_sweep_branches=13"], "--set max_sweep_branches: 13 is above the maximum 12"),
        ([f"pruning_thresholds={','.join(str(0.01 * i) for i in range(1, 14))}", "max_sweep_branches=12"],
         "13 thresholds, more than the selection step's 12 branch slots"),
        (["max_map_drop=1"], "--set max_map_drop: it chooses among the branches of a pruning sweep"),
        (["pruning_threshold=1"], "--set pruning_threshold=1.0: outside TAO's accepted range 0 <= threshold < 1"),
        (["pruning_thresholds=0.1,0.2", "max_map_drop=-1"], "--set max_map_drop: -1.0 is below the minimum 0"),
        (["pruning_thresholds=0.1,0.2", "pruning_threshold=0.3"],
         "--set pruning_threshold and --set pruning_thresholds: a sweep prunes with each"),
    ],
)
def test_bad_sweeps_are_refused_offline_with_the_rule(
    settings: list[str], message: str, repo_copy: Path, tmp_path: Path, config: Path,
    fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    flags = [arg for setting in settings for arg in ("--set", setting)]
    assert submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config), *flags) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and fake_azure.clients == [] and fake_azure.jobs == []


def test_the_branch_limit_can_be_raised(repo_copy: Path, tmp_path: Path) -> None:
    built = build_job("facenet", [f"pruning_thresholds={SEVEN}", "max_sweep_branches=7"], root=repo_copy,
                      out_dir=tmp_path)
    assert [step.name for step in built.steps if step.name.startswith("retrain_")] == \
        [f"retrain_{i}" for i in range(1, 8)]


def test_a_sweep_does_not_resume(
    repo_copy: Path, tmp_path: Path, config: Path, fake_azure: FakeAzure, capsys  # noqa: F811
) -> None:
    code = submit(repo_copy, tmp_path / "b", "facenet", "--config", str(config), "--resume-from", "earlier_job",
                  "--set", f"pruning_thresholds={THRESHOLDS}")
    assert code == 2
    err = capsys.readouterr().err
    assert "--set pruning_thresholds with a resume (--resume-from or a *_resume_from input)" in err
    assert fake_azure.clients == [], "refused before signing in"
    with pytest.raises(SettingError, match="no branch can continue one earlier retrain's checkpoints"):
        build_job("facenet", [f"pruning_thresholds={THRESHOLDS}"], root=repo_copy, out_dir=tmp_path / "c",
                  data={"retrain_resume_from": "azureml://jobs/earlier/outputs/results/paths/"})
    pipeline = Pipeline.load("facenet", repo_copy)
    earlier = tmp_path / "earlier_results"
    earlier.mkdir()
    with pytest.raises(SettingError, match="a resume"):
        LocalRunner(pipeline, resolve_settings(pipeline, [f"pruning_thresholds={THRESHOLDS}"]), tmp_path / "run",
                    data_inputs={"train_resume_from": earlier})


@pytest.mark.parametrize("name", PIPELINES)
def test_designer_publishes_a_sweep_pipeline_with_threshold_inputs(name: str) -> None:
    assets = {asset.entity.name: asset for asset in plan(REPO, Refs("0.1.0"), sweep_branches=3)}
    plain, swept = assets[f"tao_{name}_pipeline"], assets[f"tao_{name}_pipeline_sweep3"]
    assert "pruning_threshold" in plain.entity.inputs and "prune" in plain.entity.jobs
    inputs = swept.entity.inputs
    assert "pruning_threshold" not in inputs
    for i in (1, 2, 3):
        port = inputs[f"pruning_threshold_{i}"]
        assert port.type == "number" and not port.optional and port.min == 0 and port.max == 1
        prune = swept.entity.jobs[f"prune_{i}"]
        assert prune.inputs["pruning_threshold"]._data == f"${{{{parent.inputs.pruning_threshold_{i}}}}}"
        assert prune.environment_variables == {"TAO_AML_SWEEP_BRANCH": str(i)}
    assert "pruning_threshold_4" not in inputs
    assert inputs["max_map_drop"].optional and inputs["max_map_drop"].type == "number"
    select = swept.entity.jobs["select_model"]
    assert str(select.component).removeprefix("azureml:") == "tao_select_model:0.1.0"
    assert select.inputs["max_map_drop"]._data == "${{parent.inputs.max_map_drop}}"
    assert select.inputs["threshold_2"]._data == "${{parent.inputs.pruning_threshold_2}}"
    assert swept.content_hash != plain.content_hash
    assert "tao_select_model" in assets


def test_register_sweep_branches_is_2_to_12(capsys) -> None:
    from tao_aml.cli import main

    with pytest.raises(SystemExit):
        main(["register", "--root", str(REPO), "--dry-run", "--sweep-branches", "13"])
    assert "a sweep has 2 to 12 branches" in capsys.readouterr().err
    assert main(["register", "--root", str(REPO), "--dry-run", "--sweep-branches", "2"]) == 0
    assert "pipeline component tao_bodypose_pipeline_sweep2:" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["facenet", "bodypose"])
def test_a_local_run_holds_the_branch_nodes_with_their_variable(name: str, tmp_path: Path) -> None:
    pipeline = Pipeline.load(name, REPO)
    runner = LocalRunner(pipeline, resolve_settings(pipeline, [f"pruning_thresholds={THRESHOLDS}",
                                                               "max_map_drop=0.5"]),
                         tmp_path / "run", docker=Docker(REPO))
    order = runner.pipeline.component.topological_order()
    assert not set(BRANCH_STEPS) & set(order)
    launches = {step: runner.launch(runner.pipeline.component.jobs[step]) for step in order}
    direct = Direct()
    for i, threshold in enumerate(VALUES, 1):
        for step in BRANCH_STEPS:
            launch = launches[f"{step}_{i}"]
            assert launch.variables == {"TAO_AML_SWEEP_BRANCH": str(i)}
            assert direct.environ(launch, {})["TAO_AML_SWEEP_BRANCH"] == str(i)
            argv = runner.executor.argv(launch, {})  # type: ignore[attr-defined]
            assert argv[argv.index(f"TAO_AML_SWEEP_BRANCH={i}") - 1] == "--env"
        assert f"--pruning_threshold {threshold:g}" in launches[f"prune_{i}"].command \
            or f"--pruning_threshold {threshold}" in launches[f"prune_{i}"].command
        assert f"--retrained_{i} {tmp_path / 'run' / f'retrain_{i}' / 'results'}" in launches["select_model"].command
    select = launches["select_model"]
    assert select.variables == {} and "--max_map_drop 0.5" in select.command
    assert "--unpruned_evaluation " + str(tmp_path / "run" / "evaluate_trained" / "results") in select.command
    assert str(tmp_path / "run" / "select_model" / "model") in launches["export"].command
    assert "TAO_AML_SWEEP_BRANCH" not in " ".join(runner.executor.argv(launches["export"], {}))  # type: ignore
    assert f"--sweep {tmp_path / 'run' / 'select_model' / 'sweep'}" in launches["report"].command
    assert order.index("select_model") > max(order.index(f"evaluate_retrained_{i}") for i in (1, 2, 3))
    assert runner.pipeline_outputs()["retrained_model"] == tmp_path / "run" / "select_model" / "model"


def test_a_pipeline_without_the_steps_a_sweep_needs_is_refused(repo_copy: Path, tmp_path: Path) -> None:
    path = repo_copy / "pipelines" / "facenet" / "pipeline_component.yml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    del raw["jobs"]["evaluate_trained"]
    raw["jobs"]["report"]["inputs"].pop("trained_evaluation")
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(SettingError, match="facenet/pipeline_component.yml has no step evaluate_trained, which a "
                                           "pruning sweep needs"):
        build_job("facenet", ["pruning_thresholds=0.1,0.2"], root=repo_copy, out_dir=tmp_path)


@pytest.mark.parametrize("variables", [{"BAD-NAME": "1"}, {"STEP_NOTE": "two\nlines"}])
def test_a_node_variable_a_step_cannot_be_given_is_refused_by_name(repo_copy: Path, tmp_path: Path,
                                                                    variables: dict[str, str]) -> None:
    path = repo_copy / "pipelines" / "facenet" / "pipeline_component.yml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["jobs"]["export"]["environment_variables"] = variables
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    pipeline = Pipeline.load("facenet", repo_copy)
    runner = LocalRunner(pipeline, resolve_settings(pipeline, []), tmp_path / "run", docker=Docker(repo_copy))
    order = runner.pipeline.component.topological_order()
    for step in order[:order.index("export")]:  # the steps export reads from, as a run plans them
        runner.launch(runner.pipeline.component.jobs[step])
    with pytest.raises(SettingError, match=re.escape(
            f"step export: environment_variables.{next(iter(variables))}: a name of letters, digits and '_' "
            "(not from a digit) with a value of one line is what a step can be given")):
        runner.launch(runner.pipeline.component.jobs["export"])
