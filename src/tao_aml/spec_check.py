"""User-side checks of the TAO spec templates a pipeline uses, with the same code the steps run.

A template plus the user's overrides is parsed and validated here before anything is submitted,
so a misspelt field or a wrong type costs seconds on a laptop, not a GPU node's start-up.
"""

from __future__ import annotations

from pathlib import Path

from .problems import Problem
from .steps import detectnet_v2_schema, prototext, spec_edit
from .steps.bpnet import specs as bpnet_specs
from .steps.common import StepError
from .yaml_model import Component

# Which spec root each spec-reading component's template must be.
SPEC_ROOTS = {
    "tao_detectnet_v2_dataset_convert": "DatasetExportConfig",
    "tao_detectnet_v2_train": "Experiment",
    "tao_detectnet_v2_evaluate": "Experiment",
    "tao_detectnet_v2_gen_trt_engine": "Experiment",
    "tao_detectnet_v2_inference": "Inference",
    # bpnet specs are YAML/JSON trees, checked by the bpnet steps' own rule code.
    "tao_bpnet_dataset_convert": bpnet_specs.COCO,
    "tao_bpnet_train": bpnet_specs.TRAIN,
    "tao_bpnet_evaluate": bpnet_specs.INFER,
    "tao_bpnet_inference": bpnet_specs.INFER,
}


def check_spec(path: Path, root: str, overrides: list[str] | None = None) -> list[str]:
    """Every problem of a template after the overrides are applied; [] when TAO 5.0 accepts it."""
    if root in bpnet_specs.PATH_FIELDS:
        return bpnet_specs.template_problems(str(path), root, overrides or [])
    try:
        tree = prototext.parse(path.read_text(encoding="utf-8"), str(path))
        spec_edit.apply_overrides(tree, root, overrides or [], "overrides")
    except StepError as err:
        return [str(err)]
    return detectnet_v2_schema.validate(tree, root, str(path))


def spec_uses(pipeline: Component) -> list[tuple[str, Path, str]]:
    """(step name, template path, root) for every step of the pipeline that reads a spec template."""
    specs_dir = pipeline.path.parent / "specs"
    uses = []
    for step in pipeline.jobs.values():
        root = SPEC_ROOTS.get(step.component.name if step.component else "")
        spec_file = step.inputs.get("spec_file")
        if root and isinstance(spec_file, str):
            uses.append((step.name, specs_dir / spec_file, root))
    return uses


def spec_problems(pipeline: Component) -> list[Problem]:
    problems: list[Problem] = []
    for step, path, root in spec_uses(pipeline):
        key = f"jobs.{step}.inputs.spec_file"
        if not path.is_file():
            problems.append(Problem(pipeline.path, key, f"spec template {path.name} not found in {path.parent}"))
            continue
        problems += [Problem(path, root, message) for message in check_spec(path, root)]
    return problems
