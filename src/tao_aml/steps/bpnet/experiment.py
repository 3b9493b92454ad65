"""What several bpnet steps share: their command-line arguments and the spec set they write.

Every step that runs a bpnet model (train, evaluate, inference, export) writes, into its output's
specs/ folder, a train spec and an inference spec that name each other and this node's paths, and a
copy of the pose config, so each `train_spec`, `inference_spec` and `pose_config_path` resolves where
TAO reads it, and the spec a model was trained with travels on with the model.
"""

import argparse
import logging
import os
import shutil
from typing import Callable, Dict, List, Optional

from tao_aml.steps.bpnet import data_root, specs
from tao_aml.steps.cli_types import of_kind, override_list, positive_int
from tao_aml.steps.common import StepError
from tao_aml.steps.data import coco
from tao_aml.steps.specs import spec_templates

LOG = logging.getLogger("tao_aml.bpnet.experiment")
SPECS = "specs"


def add_spec_arguments(parser: argparse.ArgumentParser, train_step: bool) -> None:
    """The train step's own template is --spec_file (with --overrides); the steps that only run a
    model name the inference template so, and get the train template and overrides train used."""
    add_spec_dir_argument(parser, "--spec_file")
    parser.add_argument("--pose_config_file", type=of_kind("file_name"), default="bpnet_18joints.json",
                        help="pose config JSON in --spec_dir")
    parser.add_argument("--spec_file", type=of_kind("file_name"), required=True,
                        help="{} YAML template in --spec_dir".format("train" if train_step else "inference"))
    parser.add_argument("--overrides", type=override_list, default=[], help="overrides 'a.b=1;c.d=x' of --spec_file")
    other = "--infer_spec_file" if train_step else "--train_spec_file"
    parser.add_argument(other, type=of_kind("file_name"), required=True, help="the other template the first one names")
    if not train_step:
        parser.add_argument("--train_overrides", type=override_list, default=[],
                            help="train spec overrides, as the train step applied them")


def add_spec_dir_argument(parser: argparse.ArgumentParser, own: str) -> None:
    parser.add_argument("--spec_dir", default=None,
                        help="folder of bpnet spec templates (default: the shipped folder holding {})".format(own))


def spec_dir(args: argparse.Namespace) -> str:
    """--spec_dir, or the shipped folder holding the step's own template (--spec_file, or
    dataset_convert's --coco_spec_file): every template the step reads comes from that one folder."""
    own = args.spec_file if hasattr(args, "spec_file") else args.coco_spec_file
    return spec_templates.folder(args.spec_dir, own)


def add_input_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The network input of the steps that run a model: an engine's export size, else the template's."""
    parser.add_argument("--input_height", type=positive_int, default=None,
                        help="network input height (an engine's export size); the template's when not given")
    parser.add_argument("--input_width", type=positive_int, default=None)


def input_shape_edit(args: argparse.Namespace) -> Callable[[specs.Tree], None]:
    """The inference spec's edit for --input_height and --input_width (both or neither): input_shape
    when given, else the template's."""
    if (args.input_height is None) != (args.input_width is None):
        raise StepError("give both --input_height and --input_width, or neither")

    def edit_infer(tree: specs.Tree) -> None:
        if args.input_height is not None:
            tree["input_shape"] = [args.input_height, args.input_width]

    return edit_infer


def add_coco_arguments(parser: argparse.ArgumentParser, coco_spec: bool = True) -> None:
    parser.add_argument("--coco_root", required=True, help="extracted COCO 2017 download")
    parser.add_argument("--coco_data", default=None, help="COCO already in Azure ML; used instead of --coco_root")
    parser.add_argument("--annotations", required=True, help="coco_subset output (annotations/)")
    if coco_spec:
        parser.add_argument("--coco_spec_file", type=of_kind("file_name"), default="coco_spec.json",
                            help="coco spec JSON in --spec_dir")


def coco_links(args: argparse.Namespace, masks: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Links for a data root: both image splits, the checked annotations, and given mask folders."""
    root = coco.data_root(args.coco_root, args.coco_data)
    links = {data_root.IMAGES[split]: coco.images_dir(root, split) for split in coco.SPLITS}
    for split in coco.SPLITS:
        coco.annotation_file(args.annotations, split)
    links[data_root.ANNOTATIONS] = os.path.join(args.annotations, data_root.ANNOTATIONS)
    for split, folder in (masks or {}).items():
        links[data_root.MASKS[split]] = folder
    return links


def write_coco_spec(args: argparse.Namespace, root: str, out_dir: str, overrides: List[str]) -> str:
    """The coco spec with this node's data root (the annotation files TAO always loads are there)."""

    def edit(tree: specs.Tree) -> None:
        tree["root_directory_path"] = root
        data_root.coco_layout(tree)

    return specs.write(os.path.join(spec_dir(args), args.coco_spec_file), specs.COCO, edit, overrides,
                       os.path.join(out_dir, SPECS, args.coco_spec_file))


def write_model_specs(
    args: argparse.Namespace, out_dir: str, model: str,
    edit_train: Optional[Callable[[specs.Tree], None]] = None,
    edit_infer: Optional[Callable[[specs.Tree], None]] = None,
) -> Dict[str, str]:
    """Train and inference specs naming each other, the model and the pose config copied beside them.

    With `edit_train` the train spec is the one TAO trains from (its data paths are checked).
    Without, it is read only for the model's settings: the spec the model was trained with
    (<--model>/specs/<train spec>, which train, retrain and export save and pass on), else the
    template with --train_overrides. Each template gets its own step's overrides.
    """
    train_step = hasattr(args, "infer_spec_file")
    train_file, infer_file = (
        (args.spec_file, args.infer_spec_file) if train_step else (args.train_spec_file, args.spec_file))
    train_overrides, infer_overrides = (args.overrides, []) if train_step else (args.train_overrides, args.overrides)
    folder = os.path.join(out_dir, SPECS)
    train_path = os.path.join(folder, train_file)
    infer_path = os.path.join(folder, infer_file)
    templates = spec_dir(args)
    train_source = os.path.join(templates, train_file)
    pose_source = os.path.join(templates, args.pose_config_file)
    trained = None if train_step else os.path.join(args.model, SPECS, train_file)
    if trained is not None and os.path.isfile(trained):
        LOG.info("the model's settings come from %s, the spec it was trained with", trained)
        train_source, train_overrides = trained, []
        named = specs.get(specs.load(trained), "dataloader.pose_config.pose_config_path")
        beside = os.path.join(args.model, SPECS, os.path.basename(str(named)))
        if named and os.path.isfile(beside):
            pose_source = beside
    # TAO opens pose_config_path as given: the copy beside the specs travels with them.
    pose_config = os.path.join(folder, os.path.basename(pose_source))
    if not os.path.isfile(pose_source):
        raise StepError("pose config {} does not exist".format(pose_source))
    os.makedirs(folder, exist_ok=True)
    if os.path.realpath(pose_source) != os.path.realpath(pose_config):
        shutil.copyfile(pose_source, pose_config)
        LOG.info("copied pose config %s to %s", pose_source, pose_config)

    def train_edit(tree: specs.Tree) -> None:
        tree["checkpoint_dir"] = out_dir
        tree["inference_spec"] = infer_path
        specs.put(tree, "dataloader.pose_config.pose_config_path", pose_config)
        if edit_train is not None:
            edit_train(tree)

    def infer_edit(tree: specs.Tree) -> None:
        tree["model_path"] = model
        tree["train_spec"] = train_path
        if edit_infer is not None:
            edit_infer(tree)

    specs.write(train_source, specs.TRAIN, train_edit, train_overrides, train_path, check=False)
    specs.write(os.path.join(templates, infer_file), specs.INFER, infer_edit, infer_overrides,
                infer_path, check=False)
    specs.check_written(train_path, specs.TRAIN, data=edit_train is not None)
    specs.check_written(infer_path, specs.INFER)
    return {"train": train_path, "infer": infer_path}
