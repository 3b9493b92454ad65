"""Turn a spec template into the spec TAO reads: run-time paths, user overrides, schema check.

Every detectnet_v2 step goes through `write_spec`, so a template, a pipeline setting and a user
override are all edits of one protobuf-text tree, checked against TAO 5.0's schema before TAO starts.
"""

import argparse
import logging
import os
from typing import Callable, List, Optional

from tao_aml.steps.cli_types import of_kind, override_list
from tao_aml.steps.common import StepError, atomic_write_text
from tao_aml.steps.specs import detectnet_v2_schema, prototext, spec_edit, spec_templates

LOG = logging.getLogger("tao_aml.detectnet_v2.spec")

Edit = Callable[[prototext.Message], None]


def add_spec_arguments(parser: argparse.ArgumentParser, overrides: bool = True) -> None:
    parser.add_argument("--spec_dir", default=None,
                        help="folder of spec templates (default: the shipped folder holding --spec_file)")
    parser.add_argument("--spec_file", type=of_kind("file_name"), required=True,
                        help="template's file name inside --spec_dir or the shipped folders")
    if overrides:
        parser.add_argument(
            "--overrides", type=override_list, default=[],
            help="spec field overrides 'a.b=1;c.d=text', applied after the step's own edits",
        )


def spec_copy_path(output_dir: str, spec_file: str) -> str:
    """Where a step keeps the spec TAO read: TAO writes its own experiment_spec.txt beside it."""
    return os.path.join(output_dir, "specs", spec_file)


def write_step_spec(args: argparse.Namespace, root: str, edit: Edit, output_dir: str) -> str:
    """Create the step's output folder and write into its specs/ the spec TAO reads: the step's
    --spec_file (from --spec_dir) with `edit` and --overrides applied."""
    os.makedirs(output_dir, exist_ok=True)
    return write_spec(args.spec_dir, args.spec_file, root, edit, args.overrides,
                      spec_copy_path(output_dir, args.spec_file))


def write_spec(
    spec_dir: Optional[str], spec_file: str, root: str, edit: Edit, overrides: List[str], out_path: str
) -> str:
    """Read the template (from `spec_dir`, or the shipped templates when None), apply the step's
    edits then the user's overrides, validate, write."""
    template = os.path.join(spec_templates.folder(spec_dir, spec_file), spec_file)
    if not os.path.isfile(template):
        raise StepError("spec template {} does not exist".format(template))
    with open(template, encoding="utf-8") as handle:
        tree = prototext.parse(handle.read(), template)
    edit(tree)
    spec_edit.apply_overrides(tree, root, overrides, "--overrides")
    text = prototext.format(tree)
    problems = detectnet_v2_schema.validate(tree, root, out_path)
    problems += detectnet_v2_schema.validate_with_tao(text, root, out_path)
    if problems:
        raise StepError(
            "spec {} (from template {}) is not valid for TAO 5.0 {}:\n  {}".format(
                out_path, template, root, "\n  ".join(problems)
            )
        )
    atomic_write_text(out_path, text)
    LOG.info("wrote %s spec %s from template %s", root, out_path, template)
    return out_path
