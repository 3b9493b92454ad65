"""A run's settings checked together, offline: mistakes that every per-input check lets through and that
TAO or Azure ML find only on the GPU node, after hours (issue 18, item 9).

`tao-aml submit` (dry run or not) refuses them, `tao-aml validate` finds them in the pipelines' defaults
and profiles, each with a message that names the input, its value and the rule. Where a spec override
sets a field that its step writes from a pipeline input, the override wins in TAO: the dry run shows and
estimates the value TAO will use, or, where other steps read the input too, the run is refused.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tao_aml.azure import vm_sizes
from tao_aml.repo.pipelines import Pipeline
from tao_aml.repo.run_shape import GPU_COMPUTE_INPUT, GPUS_INPUT, NODES_INPUT
from tao_aml.repo.spec_check import effective_spec, rule_problems, spec_uses, spec_value
from tao_aml.repo.yaml_model import parse_binding
from tao_aml.steps.cli_types import override_list
from tao_aml.steps.common import StepError
from tao_aml.steps.specs.spec_edit import parse_override

# DetectNet_v2 maps each box onto the output grid by output_width / input_width
# (nvidia_tao_tf1/cv/detectnet_v2/rasterizers/bbox_rasterizer.py, `_scale_x`), but every decoder places the
# grid cells at a fixed stride of 16 (postprocessor/bbox_handler.py and TAO Deploy's
# cv/detectnet_v2/postprocessor.py: `stride` 16, centres at arange(cells) * stride), and the network's
# feature map has ceil(size / 16) cells (model/detectnet_model.py). Only multiples of 16 make them agree.
STRIDE = 16
STRIDE_RULE = ("a multiple of 16, DetectNet_v2's output stride (TAO rasterizes boxes onto the output grid at "
               "size / cells, detectnet_v2/rasterizers/bbox_rasterizer.py, but decodes them at stride 16, "
               "postprocessor/bbox_handler.py)")
IMAGE_SIZE_INPUTS = ("image_width", "image_height")
QAT_RULE = ("TAO Deploy builds a QAT model only as INT8 (nvidia_tao_deploy/engine/builder.py: "
            "\"QAT model only supports data_type int8\")")


@dataclass(frozen=True)
class StepField:
    """A spec field a step writes from one of its inputs before the user's overrides, which win."""

    field: str
    step_input: str
    # Why an override that disagrees is refused: other steps read the input too. None: only this step
    # reads it, so the override wins and the dry run shows it.
    shared: str | None = None


SIZE_SHARED = "sizes the letterboxed images and every other step's spec"
# By component name, as the steps set them (steps/detectnet_v2/train.py, experiment.py set_common,
# inference.py; steps/bpnet/train.py).
STEP_FIELDS: dict[str, tuple[StepField, ...]] = {
    "tao_detectnet_v2_train": (
        StepField("training_config.num_epochs", "epochs"),
        StepField("training_config.batch_size_per_gpu", "batch_size"),
        StepField("augmentation_config.preprocessing.output_image_width", "image_width", SIZE_SHARED),
        StepField("augmentation_config.preprocessing.output_image_height", "image_height", SIZE_SHARED),
        StepField("training_config.enable_qat", "qat", "decides QAT for export and the TensorRT engine"),
    ),
    "tao_detectnet_v2_inference": (
        StepField("inferencer_config.image_width", "image_width", SIZE_SHARED),
        StepField("inferencer_config.image_height", "image_height", SIZE_SHARED),
    ),
    "tao_bpnet_train": (
        StepField("num_epoch", "epochs"),
        StepField("dataloader.batch_size", "batch_size"),
    ),
}


@dataclass(frozen=True)
class Overridden:
    """A step input whose spec field an override replaces: TAO uses `effective`, not the input's value."""

    step: str
    field: str
    step_input: str
    source: str  # the pipeline input bound to the step input (or `<step>.inputs.<name>` for a literal)
    value: Any
    effective: Any

    def note(self) -> str:
        return f"{self.step} uses {self.effective}: --set {self.step}.{self.field}={self.effective} overrides it"


@dataclass
class RunCheck:
    problems: list[str] = field(default_factory=list)
    overridden: list[Overridden] = field(default_factory=list)

    def step_inputs(self) -> dict[str, dict[str, Any]]:
        """Step -> {step input: the value TAO will use} where an override replaces the input's."""
        found: dict[str, dict[str, Any]] = {}
        for item in self.overridden:
            found.setdefault(item.step, {})[item.step_input] = item.effective
        return found


def step_values(inputs: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A step's literal inputs and the pipeline input values its bindings name."""
    resolved = {}
    for name, value in inputs.items():
        binding = parse_binding(value)
        resolved[name] = values.get(binding.name) if binding is not None and binding.kind == "inputs" else value
    return resolved


def check_run(pipeline: Pipeline, values: dict[str, Any], root: Path, serverless: bool = False) -> RunCheck:
    """Every item-9 mistake of a run with these effective pipeline input values."""
    result = RunCheck(input_problems(pipeline, values) + cluster_problems(values, root, serverless))
    spec_check_run(pipeline, values, result)
    return result


def shown(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def source_name(step_name: str, value: Any, step_input: str) -> str:
    """The pipeline input a step input is bound to, or `<step>.inputs.<name>` for a literal."""
    binding = parse_binding(value)
    return binding.name if binding is not None and binding.kind == "inputs" else f"{step_name}.inputs.{step_input}"


def input_problems(pipeline: Pipeline, values: dict[str, Any]) -> list[str]:
    problems = []
    detectnet = any(step.component is not None and step.component.name.startswith("tao_detectnet_v2")
                    for step in pipeline.component.jobs.values())
    for name in IMAGE_SIZE_INPUTS if detectnet else ():
        value = values.get(name)
        if isinstance(value, int) and value % STRIDE:
            below, above = value // STRIDE * STRIDE, (value // STRIDE + 1) * STRIDE
            nearest = f"{below} or {above}" if below else str(above)
            problems.append(f"{name}={value}: must be {STRIDE_RULE}; use {nearest}")
    precision = values.get("engine_precision")
    if values.get("qat") is True and precision is not None and precision != "int8":
        problems.append(f"qat=true with engine_precision={precision}: {QAT_RULE}; set engine_precision=int8 "
                        "(the INT8 scales come from the QAT training, no calibration images are read) or qat=false")
    return problems


def cluster_problems(values: dict[str, Any], root: Path, serverless: bool) -> list[str]:
    """Nodes and GPUs against the GPU cluster compute/*.yml defines, when the run names that cluster.

    Serverless sizes are checked where the run's shape is made (submit.run_shape)."""
    name = str(values.get(GPU_COMPUTE_INPUT) or "").removeprefix("azureml:")
    cluster = None if serverless else vm_sizes.repository_cluster(root, name)
    if cluster is None:
        return []
    nodes, gpus = int(values.get(NODES_INPUT) or 1), int(values.get(GPUS_INPUT) or 1)
    where = f"{GPU_COMPUTE_INPUT}={name} ({cluster.path.parent.name}/{cluster.path.name}: size {cluster.size}"
    problems = []
    problem = vm_sizes.gpu_size_problem(cluster.size, gpus)
    if problem:
        problems.append(f"{GPUS_INPUT}={gpus} on {where}): {problem}; lower {GPUS_INPUT}, or name a cluster "
                        f"of a larger size with --gpu-compute")
    if nodes > cluster.max_nodes:
        problems.append(f"{NODES_INPUT}={nodes} on {where}, max_instances {cluster.max_nodes}): a job cannot "
                        f"have more nodes than its cluster; lower {NODES_INPUT}, or raise max_instances")
    return problems


def spec_check_run(pipeline: Pipeline, values: dict[str, Any], result: RunCheck) -> None:
    """Each spec step's template with this run's inputs and overrides: TAO's rules, and overrides that
    replace what a pipeline input says."""
    override_inputs = pipeline.spec_override_inputs()
    for step_name, template, root in spec_uses(pipeline.component):
        step = pipeline.component.jobs[step_name]
        fields = STEP_FIELDS.get(step.component.name if step.component else "", ())
        step_inputs = step_values(step.inputs, values)
        edits = {item.field: step_inputs[item.step_input] for item in fields
                 if step_inputs.get(item.step_input) is not None}
        overrides_input = override_inputs.get(step_name, ("",))[0]
        text = values.get(overrides_input)
        try:
            overrides = override_list(text) if isinstance(text, str) and text else []
            set_fields = {parse_override(override)[0] for override in overrides}
            tree = effective_spec(template, root, edits, overrides)
        except (StepError, argparse.ArgumentTypeError):
            continue  # refused with its own message where the override is read (pipelines.resolve_settings)
        sources = {item.step_input: source_name(step_name, step.inputs[item.step_input], item.step_input)
                   for item in fields if item.step_input in step.inputs}
        given = ", ".join(f"{sources[item.step_input]}={shown(edits[item.field])}" for item in fields
                          if item.field in edits and item.field not in set_fields)
        result.problems += [f"{step_name} spec {template.name} with {given or 'this run'}: {problem}"
                            for problem in rule_problems(tree, root, template)]
        for item in fields:
            if item.field not in set_fields or item.step_input not in sources:
                continue
            source = sources[item.step_input]
            value, effective = step_inputs.get(item.step_input), spec_value(tree, item.field)
            if effective == value:
                continue
            if item.shared:
                result.problems.append(
                    f"--set {step_name}.{item.field}={shown(effective)} contradicts {source}={shown(value)}: "
                    f"{step_name} would use {shown(effective)} while {source} {item.shared}; set {source} instead")
            else:
                result.overridden.append(Overridden(step_name, item.field, item.step_input, source, value, effective))
