"""detectnet_v2 train (and retrain): fine-tune a model on our TFRecords.

Train starts from the NGC model; retrain starts from the pruned model with a template that has
`model_config.load_graph: true`. Writes TAO's results into --results_dir: weights/<model_name>.hdf5,
checkpoints, status.json, and specs/ (the spec TAO read).
"""

import argparse
import logging
import os
import sys
from typing import List, Optional

from tao_aml.steps.cli_types import boolean, of_kind, positive_int
from tao_aml.steps.common import StepError
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.experiment import (
    ROOT,
    add_dataset_arguments,
    add_model_arguments,
    set_common,
    set_datasets,
)
from tao_aml.steps.detectnet_v2.spec_files import add_spec_arguments, spec_copy_path, write_spec
from tao_aml.steps.secret_refs import model_key
from tao_aml.steps.tao import launch, sweep_branch
from tao_aml.steps.tao.model_files import find_model

LOG = logging.getLogger("tao_aml.detectnet_v2.train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.train", description=__doc__)
    add_spec_arguments(parser)
    add_dataset_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--pretrained_model", required=True, help="folder holding the starting model")
    parser.add_argument("--results_dir", required=True)
    parser.add_argument("--model_name", type=of_kind("name"), required=True,
                        help="TAO writes weights/<model_name>.hdf5")
    parser.add_argument("--epochs", type=positive_int, required=True)
    parser.add_argument("--batch_size", type=positive_int, required=True, help="per GPU")
    launch.add_training_arguments(parser)
    parser.add_argument("--qat", type=boolean, default=False,
                        help="quantization-aware training: training_config.enable_qat true "
                             "(retrain of the pruned model)")
    parser.add_argument("--backbone", type=of_kind("backbone"), default=None,
                        help="NGC pretrained_detectnet_v2 version (resnet18, ... or the full NGC name): sets "
                             "model_config.arch and num_layers to match it")
    return parser


# NGC nvidia/tao/pretrained_detectnet_v2 versions -> (model_config.arch, num_layers or None).
BACKBONES = {
    "resnet10": ("resnet", 10), "resnet18": ("resnet", 18), "resnet34": ("resnet", 34), "resnet50": ("resnet", 50),
    "vgg16": ("vgg", 16), "vgg19": ("vgg", 19), "googlenet": ("googlenet", None),
    "mobilenet_v1": ("mobilenet_v1", None), "mobilenet_v2": ("mobilenet_v2", None),
    "squeezenet": ("squeezenet", None), "darknet19": ("darknet", 19), "darknet53": ("darknet", 53),
}


def set_backbone(tree, backbone: Optional[str]) -> None:
    if not backbone:
        return
    version = backbone.rsplit(":", 1)[-1]
    if version not in BACKBONES:
        raise StepError("backbone {!r}: not one of the pretrained_detectnet_v2 versions this step knows: {}".format(
            backbone, ", ".join(sorted(BACKBONES))))
    arch, layers = BACKBONES[version]
    tree.set("model_config.arch", arch)
    if layers is not None:
        tree.set("model_config.num_layers", layers)
    elif tree.get("model_config").has("num_layers"):
        tree.get("model_config").remove("num_layers")
    if version == "resnet34":  # NVIDIA's pretrained_detectnet_v2 model card: all_projections false for ResNet-34
        tree.set("model_config.all_projections", False)


LEARNING_RATES = (
    "training_config.learning_rate.soft_start_annealing_schedule.min_learning_rate",
    "training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate",
)


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    pretrained = find_model(args.pretrained_model)
    world = launch.mpi_world()
    gpus = launch.training_gpus(args, world)

    def edit(tree):
        set_datasets(tree, [args.train_tfrecords, args.train_kitti], [args.val_tfrecords, args.val_kitti])
        set_common(tree, args.image_width, args.image_height, args.classes)
        tree.set("model_config.pretrained_model_file", pretrained)
        tree.set("training_config.num_epochs", args.epochs)
        tree.set("training_config.batch_size_per_gpu", args.batch_size)
        set_backbone(tree, args.backbone)
        if args.qat:
            # TAO 5.0: training_config.enable_qat converts the (pruned) model to QAT and trains it so;
            # export then writes the tensor scales (--cal_json_file) and TAO Deploy reads is_qat from this field.
            tree.set("training_config.enable_qat", True)
        if args.scale_learning_rate:
            scaled = launch.scale_learning_rates({p: float(tree.get(p)) for p in LEARNING_RATES}, gpus)
            for path, value in scaled.items():
                tree.set(path, value)
            LOG.info("learning rates scaled x%d: %s", gpus, scaled)

    os.makedirs(args.results_dir, exist_ok=True)
    spec = write_spec(
        args.spec_dir, args.spec_file, ROOT, edit, args.overrides,
        spec_copy_path(launch.step_output_dir(args.results_dir, world), args.spec_file),
    )
    launch.run_training(
        EXECUTABLE,
        [
            ("--experiment_spec_file", spec),
            ("--results_dir", args.results_dir),
            ("--model_name", args.model_name),
            ("--key", model_key(args)),
        ],
        args.results_dir, args.gpus, world, args.resume_from, args.use_amp,
    )
    weights = os.path.join(args.results_dir, "weights", args.model_name + ".hdf5")
    # Only TAO's master writes the model: the other ranks have nothing to check.
    if launch.is_rank_zero(world) and not os.path.isfile(weights):
        raise StepError("TAO train finished but wrote no {}".format(weights))


def main(argv: Optional[List[str]] = None) -> int:
    return sweep_branch.run(body, argv, inputs=("pretrained_model",), outputs=("results_dir",))


if __name__ == "__main__":
    sys.exit(main())
