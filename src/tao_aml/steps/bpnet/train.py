"""bpnet train (and retrain): fine-tune BodyPoseNet on the TFRecords of dataset_convert.

Train starts from the NGC model; retrain from the pruned model, with a template that sets
`load_graph: True`. Writes TAO's results into --results_dir: model.epoch-N.hdf5 checkpoints,
bpnet_model.hdf5 (the last epoch), status.json, and specs/ (the specs TAO read). The learning rate
is the template's unless --scale_learning_rate multiplies it by the number of GPUs.
"""

import argparse
import logging
import os
import sys
from typing import List, Optional

from tao_aml.steps.bpnet import EXECUTABLE, data_root, specs
from tao_aml.steps.bpnet.dataset_convert import TFRECORDS, records
from tao_aml.steps.bpnet.experiment import (
    add_coco_arguments,
    add_spec_arguments,
    coco_links,
    write_coco_spec,
    write_model_specs,
)
from tao_aml.steps.bpnet.models import FINAL, final_model
from tao_aml.steps.cli_types import positive_int
from tao_aml.steps.common import StepError
from tao_aml.steps.secret_refs import add_model_key_arguments, model_key
from tao_aml.steps.tao import launch, sweep_branch

LOG = logging.getLogger("tao_aml.bpnet.train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpnet.train", description=__doc__)
    add_spec_arguments(parser, train_step=True)
    add_coco_arguments(parser)
    parser.add_argument("--train_dataset", required=True, help="bpnet dataset_convert output (train)")
    parser.add_argument("--val_dataset", required=True, help="bpnet dataset_convert output (val)")
    parser.add_argument("--pretrained_model", required=True, help="folder holding the starting model")
    parser.add_argument("--results_dir", required=True)
    add_model_key_arguments(parser)
    parser.add_argument("--epochs", type=positive_int, required=True)
    parser.add_argument("--batch_size", type=positive_int, required=True, help="per GPU")
    launch.add_training_arguments(parser)
    return parser


LEARNING_RATES = (
    "optimizer.learning_rate_schedule.base_learning_rate",
    "optimizer.learning_rate_schedule.min_learning_rate",
)


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    pretrained = final_model(args.pretrained_model)
    world = launch.mpi_world()
    gpus = launch.training_gpus(args, world)
    spec_dir = launch.step_output_dir(args.results_dir, world)
    train_records, val_records = records(args.train_dataset), records(args.val_dataset)
    masks = {"train": os.path.join(args.train_dataset, data_root.MASKS["train"]),
             "val": os.path.join(args.val_dataset, data_root.MASKS["val"])}
    root = data_root.build(coco_links(args, masks))
    os.makedirs(args.results_dir, exist_ok=True)
    coco_spec = write_coco_spec(args, root, spec_dir, [])

    def edit(tree: specs.Tree) -> None:
        tree["num_epoch"] = args.epochs
        tree["pretrained_weights"] = pretrained
        specs.put(tree, "dataloader.batch_size", args.batch_size)
        specs.put(tree, specs.DATASET + "root_data_path", root)
        specs.put(tree, specs.DATASET + "train_records_folder_path", os.path.join(args.train_dataset, TFRECORDS))
        specs.put(tree, specs.DATASET + "train_records_path", train_records)
        specs.put(tree, specs.DATASET + "val_records_folder_path", os.path.join(args.val_dataset, TFRECORDS))
        specs.put(tree, specs.DATASET + "val_records_path", val_records)
        specs.put(tree, specs.DATASET + "dataset_specs", {"coco": coco_spec})
        if args.scale_learning_rate:
            scaled = launch.scale_learning_rates({p: float(specs.get(tree, p)) for p in LEARNING_RATES}, gpus)
            for path, value in scaled.items():
                specs.put(tree, path, value)
            LOG.info("learning rates scaled x%d: %s", gpus, scaled)

    written = write_model_specs(args, spec_dir, pretrained, edit_train=edit)
    launch.run_training(
        EXECUTABLE,
        [("--experiment_spec_file", written["train"]), ("--results_dir", args.results_dir), ("--key", model_key(args))],
        args.results_dir, args.gpus, world, args.resume_from, args.use_amp,
    )
    # Only TAO's master writes the model: the other ranks have nothing to check.
    if launch.is_rank_zero(world) and not os.path.isfile(os.path.join(args.results_dir, FINAL)):
        raise StepError("TAO bpnet train finished but wrote no {} in {}".format(FINAL, args.results_dir))


def main(argv: Optional[List[str]] = None) -> int:
    return sweep_branch.run(body, argv, inputs=("pretrained_model",), outputs=("results_dir",))


if __name__ == "__main__":
    sys.exit(main())
