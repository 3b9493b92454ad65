"""TAO Deploy detectnet_v2 evaluate: the mAP of the TensorRT engine on the validation images.

TAO Deploy 5.0 (nvidia_tao_deploy/cv/detectnet_v2/scripts/evaluate.py) reads the images and KITTI labels
with its own loader (-i, -l), clusters with the Experiment spec's postprocessing_config, and writes the AP
of each class (a fraction, 11-point VOC) to <results_dir>/results.json; its mAP (their mean) is only
printed. This step reports them as `eval/AP_<class>` and `eval/mAP` in percent, as TAO's TF1 evaluate
reports the .hdf5 model, so the two can be compared. TAO Deploy batches with -b and drops a last partial
batch: the default batch of 1 evaluates every image. Writes results.json, status.json, step_metrics.json,
specs/ and engine.json (the engine's precision) into --results_dir.
"""

import argparse
import math
import os
import shutil
import sys
from typing import Dict, List, Optional

from tao_aml.steps.common import LOG, StepError, read_json, run_main
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.deploy.engine_args import add_engine_arguments, engine_for
from tao_aml.steps.detectnet_v2 import EXECUTABLE
from tao_aml.steps.detectnet_v2.experiment import ROOT, set_common
from tao_aml.steps.detectnet_v2.spec_files import write_step_spec
from tao_aml.steps.tao import command as tao
from tao_aml.steps.tao import observe, tracking

RESULTS = "results.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detectnet_v2.engine_evaluate", description=__doc__)
    add_engine_arguments(parser)
    parser.add_argument("--kitti", required=True, help="KITTI folder with images/ and labels/ (validation split)")
    return parser


def kitti_folders(folder: str, batch_size: int) -> List[str]:
    images, labels = os.path.join(folder, "images"), os.path.join(folder, "labels")
    for path in (images, labels):
        if not os.path.isdir(path):
            raise StepError("{} has no {}/ folder: connect the KITTI converter's output".format(
                folder, os.path.basename(path)))
    names = [n for n in os.listdir(images) if os.path.isfile(
        os.path.join(labels, os.path.splitext(n)[0] + ".txt"))]
    if len(names) < batch_size:
        raise StepError("{} holds {} labelled images, fewer than --batch_size {} (TAO Deploy would evaluate none)"
                        .format(folder, len(names), batch_size))
    return [images, labels]


def engine_metrics(results: str) -> Dict[str, float]:
    """results.json {"AP_<class>": fraction} -> eval/AP_<class> and eval/mAP in percent."""
    found = read_json(results, "TAO Deploy evaluate finished but wrote no {}".format(results))
    ap = {k: float(v) * 100.0 for k, v in found.items() if k.startswith("AP_") and isinstance(v, (int, float))}
    if not ap:
        raise StepError("{} holds no AP_<class> values".format(results))
    unknown = sorted(k for k, v in ap.items() if not math.isfinite(v))
    if unknown:
        # Recorded as reported, so that register_model's max_engine_accuracy_drop refuses it, never passes it.
        LOG.warning("%s: TAO Deploy reports %s as %s: the engine's mAP is unknown, and a max_engine_map_drop "
                    "check will fail", results, ", ".join(unknown), ", ".join(str(found[k]) for k in unknown))
    metrics = {"eval/" + k: round(v, 4) for k, v in ap.items()}
    metrics["eval/mAP"] = round(sum(ap.values()) / len(ap), 4)
    return metrics


def record(results_dir: str, metrics: Dict[str, float]) -> None:
    """Log the metrics and add them to step_metrics.json (which tao.run wrote), for the run report."""
    tracking.tracker().log_metrics(metrics)
    observe.add_step_metrics(results_dir, "evaluate", EXECUTABLE, metrics)


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    engine = engine_for(args.engine, args.batch_size)
    images, labels = kitti_folders(args.kitti, args.batch_size)

    def edit(tree):
        set_common(tree, args.image_width, args.image_height, args.classes)

    spec = write_step_spec(args, ROOT, edit, args.results_dir)
    results = os.path.join(args.results_dir, RESULTS)
    if os.path.exists(results):
        os.remove(results)  # a rerun on the same output must not report the previous engine
    tao.run(
        tao.build_command(EXECUTABLE, "evaluate", [
            ("--experiment_spec", spec),
            ("--model_path", engine),
            ("--image_dir", images),
            ("--label_dir", labels),
            ("--batch_size", args.batch_size),
            ("--results_dir", args.results_dir),
        ]),
        args.results_dir,
    )
    record(args.results_dir, engine_metrics(results))
    shutil.copy(os.path.join(args.engine, engine_info.ENGINE_INFO),
                os.path.join(args.results_dir, engine_info.ENGINE_INFO))


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
