"""Build a pipeline job exactly as it would be sent, validate it, and send it (or, dry-run, stop there)."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.ai.ml import MLClient, load_job
from azure.ai.ml.entities import Job, PipelineComponent, PipelineJob
from azure.ai.ml.exceptions import JobException

from tao_aml.azure import render, vm_sizes
from tao_aml.azure.workspace import WorkspaceError, missing_computes
from tao_aml.repo import data_assets, gpu_time, run_checks, yaml_model
from tao_aml.repo import sweep as sweeps
from tao_aml.repo.pipelines import (
    ESTIMATE_INPUT,
    PRIMITIVE_TYPES,
    REPO_ROOT,
    RESUME_PORT,
    WRAPPER_STEP,
    Pipeline,
    SettingError,
    Settings,
    effective_inputs,
    params_override,
    resolve_settings,
    unknown_name,
)
from tao_aml.repo.profiles import profile_assignments
from tao_aml.repo.run_shape import GPU_COMPUTE_INPUT, GPUS_INPUT, NODES_INPUT, SERVERLESS, SERVERLESS_SETTINGS, RunShape
from tao_aml.repo.secret_rules import azure_secret_problems, environment_problems
from tao_aml.repo.step_plan import StepPlan
from tao_aml.repo.yaml_model import parse_binding

LOG = logging.getLogger(__name__)
# The job-level input whose cluster also serves as settings.default_compute.
CPU_INPUT = "cpu_compute"
FINISHED_OK = "Completed"
PIPELINE_COMPONENT_FILE = "pipeline_component.yml"
# A training step's number of epochs.
EPOCHS_PORT = "epochs"
# The output a training step's resume_from input reads an earlier run's results from.
RESUME_OUTPUT = "results"
# The documented job-output URI (the SDK's own pattern requires `/paths/`); a child job's name for a step.
JOB_OUTPUT_URI = "azureml://jobs/{job}/outputs/{output}/paths/"
# Job statuses of a step that never ran, so wrote no checkpoint (azure-ai-ml JobStatus values).
NEVER_STARTED = {"NotStarted", "Queued", "Preparing", "Provisioning", "Starting"}


@dataclass
class BuiltJob:
    pipeline: Pipeline
    settings: Settings
    job: PipelineJob
    steps: list[StepPlan]
    inputs: dict[str, Any]  # the pipeline component's effective input values
    job_file: Path  # the job as sent; load_job reads it back to an equal job
    shape: RunShape
    data_plan: data_assets.DataPlan
    overridden: list[run_checks.Overridden]  # pipeline inputs a spec override replaces in TAO
    sweep: sweeps.Sweep | None = None  # a pruning sweep: its branches are among `steps`


def shape_of_run(values: dict[str, Any], settings: Settings, serverless: bool) -> RunShape:
    """The literal run settings; a GPU step on a size without enough GPUs is refused here, offline."""
    shape = RunShape(
        nodes=int(values.get(NODES_INPUT) or 1), gpus_per_node=int(values.get(GPUS_INPUT) or 1),
        serverless=serverless, **{name: value for name, value in settings.run.items() if name not in sweeps.SETTINGS},
    )
    if not serverless:
        given = sorted(name for name in settings.run if name in SERVERLESS_SETTINGS and name != "spot")
        given += ["spot"] if shape.spot else []
        if given:
            raise SettingError(f"--set {', '.join(given)}: serverless settings; add --serverless")
        return shape
    problem = vm_sizes.gpu_size_problem(shape.gpu_instance_type, shape.gpus_per_node)
    if problem:
        raise SettingError(f"--set gpu_instance_type: {problem}")
    return shape


def build_job(
    name: str,
    assignments: list[str],
    experiment: str | None = None,
    root: Path = REPO_ROOT,
    profile: str | None = None,
    data: dict[str, str] | None = None,
    out_dir: Path | None = None,
    serverless: bool = False,
    lookup: data_assets.Lookup | None = None,
    registry: str | None = None,
    resuming: bool = False,
) -> BuiltJob:
    """The job as it would be sent: profile values, then `assignments` (which win), then data inputs (URIs).

    The job and its pipeline component are written to out_dir (a temporary folder when not given) with
    the run's literals, and the job is loaded back from there: what is validated is that file. `lookup`
    finds data assets in the workspace (repo/data_assets.py); without it (a dry run) none is looked up.
    With a container `registry`, the steps name the prebuilt images there (images.py). `resuming`: the caller
    will add an earlier job's checkpoints (--resume-from), which a pruning sweep cannot use.
    """
    pipeline = Pipeline.load(name, root)
    first = profile_assignments(pipeline, profile) if profile else []
    settings = resolve_settings(pipeline, first + assignments)
    settings.data.update(data or {})
    for input_name in settings.data:
        port = pipeline.component.inputs.get(input_name)
        if port is None or port.type in PRIMITIVE_TYPES:
            raise SettingError(unknown_name("--input", input_name, "data input", pipeline.settable_inputs(data=True),
                                            f" in {name}"))
    data_plan = data_assets.plan(pipeline, root, effective_inputs(pipeline, settings), lookup)
    settings.data.update(data_plan.inputs)
    values = effective_inputs(pipeline, settings)
    shape = shape_of_run(values, settings, serverless)
    checked = run_checks.check_run(pipeline, values, root, serverless)
    checked.problems += [problem.render(root) for component in (pipeline.component, pipeline.job)
                         for problem in environment_problems(component)]
    checked.problems += azure_secret_problems(values)
    resumed = resuming or any(name in settings.data for name in pipeline.resume_inputs().values())
    checked.problems += sweeps.run_problems(settings.run, settings.inputs, resumed)
    planned = sweeps.of(settings.run)
    if checked.problems:
        origin = [f"(profile {profile} sets {', '.join(first)}; --set wins over it)"] if profile else []
        raise SettingError("\n".join(checked.problems + origin))
    overrides = params_override(pipeline, settings) + data_plan.overrides
    if CPU_INPUT in settings.inputs and "default_compute" in (pipeline.job.raw.get("settings") or {}):
        # Steps without a compute of their own (none today) must not fall back to a cluster the user replaced.
        overrides.append({"settings.default_compute": f"azureml:{settings.inputs[CPU_INPUT]}"})
    if experiment:
        overrides.append({"experiment_name": experiment})
    target = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="tao_aml_job_"))
    component_path = pipeline.job_path.parent / PIPELINE_COMPONENT_FILE
    job_file = render.write_job(pipeline.job_path, component_path, overrides, shape, target, name, registry, planned)
    component = pipeline.component if planned is None else yaml_model.from_raw(
        pipeline.component.path, sweeps.fan_out(pipeline.component.raw, planned.thresholds, planned.max_map_drop))
    steps = plan_steps(component, yaml_model.load(target / f"{name}.pipeline_component.yml"), values,
                       shape, name, checked.step_inputs(), root)
    estimate = report_estimate(component, steps)
    if estimate and ESTIMATE_INPUT in pipeline.component.inputs and ESTIMATE_INPUT not in settings.inputs:
        # The report prints the measured GPU-hours beside these (repo/gpu_time.py).
        values[ESTIMATE_INPUT] = estimate
        overrides.append({f"jobs.{WRAPPER_STEP}.inputs.{ESTIMATE_INPUT}": estimate})
        job_file = render.write_job(pipeline.job_path, component_path, overrides, shape, target, name, registry,
                                    planned)
    job = load_job(job_file)
    result = job._validate()  # the public validate needs a workspace
    if not result.passed:
        raise SettingError(
            "azure-ai-ml refused the job:\n"
            + "\n".join(f"  {where}: {message}" for where, message in result.error_messages.items())
        )
    job._to_rest_object()  # what the service would receive; raises if it cannot be serialized
    return BuiltJob(pipeline, settings, job, steps, values, job_file, shape, data_plan, checked.overridden, planned)


def plan_steps(
    component: yaml_model.Component, rendered: yaml_model.Component, values: dict[str, Any], shape: RunShape,
    pipeline_name: str = "", overridden: dict[str, dict[str, Any]] | None = None, root: Path = REPO_ROOT,
) -> list[StepPlan]:
    """Each step as printed and drawn: its compute from the component, counts and sizes from the rendered copy.

    `overridden` holds, by step, the inputs whose spec field an override replaces, with the value TAO uses."""
    steps = []
    clusters: dict[str, vm_sizes.ClusterFile | None] = {}
    for step_name in component.topological_order():
        step, sent = component.jobs[step_name], rendered.jobs[step_name].raw
        binding = parse_binding(step.compute)
        compute = values.get(binding.name) if binding is not None else step.compute
        upstream = tuple(sorted(name for name in step.upstream() if name in component.jobs))
        compute_input = binding.name if binding else None
        resources = sent.get("resources") or {}
        # Only steps the YAML distributes (resources/distribution) use more than one node or GPU.
        gpus = 1 if compute_input == GPU_COMPUTE_INPUT else 0
        per_node = int((sent.get("distribution") or {}).get("process_count_per_instance", gpus))
        nodes = int(resources.get("instance_count", 1))
        name = step.component.name if step.component else step.component_ref
        # A sweep branch (retrain_2) is its base step (retrain) with another threshold.
        inputs = {**run_checks.step_values(step.inputs, values),
                  **(overridden or {}).get(sweeps.base_step(step_name), {})}
        size = resources.get("instance_type")
        if not shape.serverless:
            cluster = clusters.setdefault(str(compute), vm_sizes.repository_cluster(root, str(compute)))
            size = cluster.size if cluster else None
        timing = (pipeline_name, name, inputs, values, nodes * per_node, size, bool(values.get("use_amp")))
        steps.append(StepPlan(
            step_name, name, SERVERLESS if shape.serverless else str(compute), compute_input, upstream,
            nodes, per_node, resources.get("instance_type"), shape.spot,
            gpu_time.estimate(*timing) if gpus else None, inputs.get(EPOCHS_PORT), gpu_time.wall_hours(*timing), size,
        ))
    return steps


def report_estimate(component: yaml_model.Component, steps: list[StepPlan]) -> str:
    """`port=hours,...` for the report step: each of its inputs bound to a step with an estimate."""
    hours = {step.name: step.gpu_hours for step in steps if step.gpu_hours is not None}
    pairs = []
    for step in (step for step in component.jobs.values() if ESTIMATE_INPUT in step.inputs):
        for port, value in step.inputs.items():
            binding = parse_binding(value)
            # A selection output stands for one branch: the chosen one, which the report measures.
            source = sweeps.estimate_source(binding.name, binding.port) if binding is not None else ""
            if binding is not None and binding.kind == "jobs" and source in hours:
                pairs.append(f"{port}={hours[source]:g}")
    return ",".join(pairs)


def child_jobs(client: MLClient, job_name: str, prefix: str = "") -> dict[str, Any]:
    """Step path (`main.train`) -> child job, for every step of a pipeline job, nested pipelines included."""
    found: dict[str, Any] = {}
    for child in client.jobs.list(parent_job_name=job_name):
        # A child job's display name is its node name in the pipeline unless the YAML sets one.
        path = prefix + str(child.display_name or child.name)
        found[path] = child
        if child.type == "pipeline":
            found.update(child_jobs(client, str(child.name), path + "."))
    return found


def step_jobs(client: MLClient, job_name: str) -> dict[str, str]:
    """Step path (`main.train`) -> child job name."""
    return {path: str(child.name) for path, child in child_jobs(client, job_name).items()}


def resume_data(client: MLClient, pipeline: Pipeline, job_name: str) -> dict[str, str]:
    """The `*_resume_from` inputs pointing at the `results` of the earlier job's train and retrain steps.

    A step that failed or was canceled (a preempted node, a stopped job) still has the checkpoints it
    wrote into its mounted output; a step that never started has none and is left out.
    """
    steps = child_jobs(client, job_name)
    if not steps:
        raise WorkspaceError(
            f"--resume-from {job_name}: no pipeline job of that name with steps in the workspace "
            "(give the job's Name from Studio's Overview, not its display name)"
        )
    wanted = pipeline.resume_inputs()
    if not wanted:
        raise SettingError(f"--resume-from: no step of pipeline {pipeline.name} takes a {RESUME_PORT} input")
    # The first training step must exist; later ones may not have run before the earlier job stopped.
    first = next(iter(wanted))
    if f"{WRAPPER_STEP}.{first}" not in steps:
        raise WorkspaceError(
            f"--resume-from {job_name}: the job has no step {WRAPPER_STEP}.{first} to resume from; "
            f"its steps: {', '.join(sorted(steps))}"
        )
    data = {}
    for step_name, input_name in wanted.items():
        child = steps.get(f"{WRAPPER_STEP}.{step_name}")
        if child is None or str(getattr(child, "status", "")) in NEVER_STARTED:
            continue
        data[input_name] = JOB_OUTPUT_URI.format(job=child.name, output=RESUME_OUTPUT)
    return data


def write_rest(built: BuiltJob) -> Path:
    """The REST body next to the job file, for diffing two runs."""
    return render.write_rest_body(built.job, built.job_file.with_name(f"{built.pipeline.name}.rest.json"))


def sent_computes(job: PipelineJob) -> dict[str, str]:
    """Step path (`main.train`) -> compute name, read from the REST form the service would receive."""
    properties = job._to_rest_object().as_dict()["properties"]
    values = {name: _literal(value) for name, value in (properties.get("inputs") or {}).items()}
    default = _compute_name((properties.get("settings") or {}).get("default_compute"))
    return _node_computes(properties.get("jobs") or {}, values, default, "")


def _node_computes(jobs: dict[str, Any], parent: dict[str, Any], default: str | None, prefix: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, node in jobs.items():
        inputs = {key: _resolve(_literal(value), parent) for key, value in (node.get("inputs") or {}).items()}
        component = node.get("componentId")
        if isinstance(component, PipelineComponent):
            spec = component._to_rest_object().properties.component_spec
            values = {key: port.get("default") for key, port in (spec.get("inputs") or {}).items()}
            values.update({key: value for key, value in inputs.items() if value is not None})
            found.update(_node_computes(spec.get("jobs") or {}, values, default, f"{prefix}{name}."))
            continue
        compute = _compute_name(_resolve(node.get("computeId") or node.get("compute"), parent)) or default
        found[prefix + name] = compute or ""
    return found


def _literal(value: Any) -> Any:
    return value.get("value", value.get("uri")) if isinstance(value, dict) else value


def _resolve(value: Any, parent: dict[str, Any]) -> Any:
    binding = parse_binding(value)
    if binding is not None and binding.kind == "inputs":
        return parent.get(binding.name)
    return value


def _compute_name(value: Any) -> str | None:
    return str(value).removeprefix("azureml:") if value else None


def send(client: MLClient, built: BuiltJob) -> Job:
    """Check every compute the job names exists, then create the job."""
    kinds = {step.compute: step.compute_input or "" for step in built.steps}
    names = sorted(set(sent_computes(built.job).values()) - {"", SERVERLESS})
    problems = missing_computes(client, names, lambda name: "gpu" if "gpu" in kinds.get(name, "") else "cpu")
    if problems:
        raise WorkspaceError("\n".join(problems))
    return client.jobs.create_or_update(built.job, experiment_name=built.job.experiment_name)


def follow(client: MLClient, name: str) -> str:
    """Stream the job's logs until it ends; its final status ('Completed' on success)."""
    try:
        client.jobs.stream(name)
    except JobException as err:
        if isinstance(err.__cause__, KeyboardInterrupt):
            raise KeyboardInterrupt from err  # azure-ai-ml wraps Ctrl-C; the job itself keeps running
        LOG.debug("job %s ended with an error: %s", name, err)
    return str(client.jobs.get(name).status)
