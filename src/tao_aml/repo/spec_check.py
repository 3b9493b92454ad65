"""User-side checks of the TAO spec templates a pipeline uses, with the same code the steps run.

A template plus the user's overrides is parsed and validated here before anything is submitted,
so a misspelt field or a wrong type costs seconds on a laptop, not a GPU node's start-up. The
templates checked are the ones shipped in each step's code snapshot (src/tao_aml/templates/), found
by the rule the steps use when their `specs` input is not connected (steps/specs/spec_templates.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tao_aml.repo.problems import Problem
from tao_aml.repo.yaml_model import Component
from tao_aml.steps.bpnet import specs as bpnet_specs
from tao_aml.steps.common import StepError
from tao_aml.steps.specs import detectnet_v2_schema, prototext, spec_edit, spec_templates

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
Spec = prototext.Message | bpnet_specs.Tree
OVERRIDES = "overrides"  # how a refused override's message names where it came from (bpnet_specs says it too)


def check_spec(path: Path, root: str, overrides: list[str] | None = None,
               classes: list[str] | None = None) -> list[str]:
    """Every problem of a template after the overrides are applied; [] when TAO 5.0 accepts it.

    With `classes`, the class blocks are first made per class as the steps do (spec_edit.set_classes),
    so per-class overrides (`target_classes[car].class_weight=4`) are checked against the run's classes."""
    if root in bpnet_specs.PATH_FIELDS:
        return bpnet_specs.template_problems(str(path), root, overrides or [])
    try:
        tree = prototext.parse(path.read_text(encoding="utf-8"), str(path))
        if classes and root == "Experiment":
            spec_edit.set_classes(tree, classes)
        elif classes and root == "Inference":
            spec_edit.set_inference_classes(tree, classes)
        spec_edit.apply_overrides(tree, root, overrides or [], OVERRIDES)
    except StepError as err:
        return [str(err)]
    return detectnet_v2_schema.validate(tree, root, str(path))


def override_problems(path: Path, root: str, overrides: list[str],
                      classes: list[str] | None = None) -> list[tuple[str | None, str]]:
    """check_spec's problems as (the override at fault, what is wrong with it), every bad override named once;
    None for a problem of the spec the good overrides make together."""
    accepted: list[str] = []
    found: list[tuple[str | None, str]] = []
    for override in overrides:
        said = f"{OVERRIDES}: override {override!r}: "  # how spec_edit names an override it refuses
        own = [m for m in check_spec(path, root, [*accepted, override], classes) if m.startswith(said)]
        if not own:
            accepted.append(override)
            continue
        message = own[0].removeprefix(said)
        for repeat in (f"{override.strip()}: ", f"{override.partition('=')[0].strip()}: "):
            message = message.removeprefix(repeat)  # the field, already named by the override
        found.append((override, message))
    return found + [(None, message) for message in check_spec(path, root, accepted, classes)]


def effective_spec(path: Path, root: str, edits: dict[str, Any], overrides: list[str]) -> Spec:
    """The template as its step writes it: the fields the step sets from its inputs (`edits`), then the
    user's overrides, which win. StepError when an override does not apply."""
    if root in bpnet_specs.PATH_FIELDS:
        tree = bpnet_specs.load(str(path))
        for field, value in edits.items():
            bpnet_specs.put(tree, field, value)
        spec_edit.apply_dict_overrides(tree, overrides, "overrides")
        return tree
    message = prototext.parse(path.read_text(encoding="utf-8"), str(path))
    for field, value in edits.items():
        message.set(field, value)
    spec_edit.apply_overrides(message, root, overrides, "overrides")
    return message


def spec_value(tree: Spec, field: str) -> Any:
    """A field of an effective spec (None when absent)."""
    if isinstance(tree, prototext.Message):
        return tree.get(field) if tree.has(field) else None
    return bpnet_specs.get(tree, field)


def rule_problems(tree: Spec, root: str, path: Path) -> list[str]:
    """TAO 5.0's rules for an effective spec, paths not looked at (they are written on the node)."""
    if isinstance(tree, prototext.Message):
        return detectnet_v2_schema.validate(tree, root, str(path))
    return bpnet_specs.problems(tree, root, resolve_paths=False)


def shipped_templates(component: Component) -> Path:
    """tao_aml/templates/ in the component's code snapshot: where its step looks when `specs` is not connected."""
    code = os.path.normpath(component.path.parent / str(component.raw.get("code", ".")))
    return Path(code) / "tao_aml" / "templates"


def _templates(pipeline: Component) -> Iterator[tuple[str, str, Path | StepError]]:
    """(step name, root, template) for every step of the pipeline that reads a spec template: the
    template its step reads with `specs` not connected, found by the steps' own rule, or why none is."""
    for step in pipeline.jobs.values():
        root = SPEC_ROOTS.get(step.component.name if step.component else "")
        spec_file = step.inputs.get("spec_file")
        if step.component and root and isinstance(spec_file, str):
            shipped = shipped_templates(step.component)
            try:
                found: Path | StepError = Path(spec_templates.folder(None, spec_file, str(shipped))) / spec_file
            except StepError as err:
                found = err
            yield step.name, root, found


def spec_uses(pipeline: Component) -> list[tuple[str, Path, str]]:
    """(step name, template path, root) for every step whose shipped template is found; a name the
    rule refuses is reported by spec_problems."""
    return [(step, found, root) for step, root, found in _templates(pipeline) if isinstance(found, Path)]


def spec_problems(pipeline: Component) -> list[Problem]:
    problems: list[Problem] = []
    for step, root, found in _templates(pipeline):
        if isinstance(found, StepError):
            problems.append(Problem(pipeline.path, f"jobs.{step}.inputs.spec_file", str(found)))
        else:
            problems += [Problem(found, root, message) for message in check_spec(found, root)]
    return problems
