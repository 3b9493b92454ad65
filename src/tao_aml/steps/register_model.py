"""Assemble the deployable model folder, with a model card that carries the model asset's name and tags.

The folder written to --output_dir (the component's `model` output) holds what a user needs to run the
model: the ONNX file and its labels (export step), the TensorRT engine and INT8 calibration cache (engine
step), the specs TAO read, and model_card.json (files with sizes and sha256; `name`, the model asset name
from --model_name; `tags`, the key metrics from the run report plus family and TAO version). The step does
not register anything: after the job completes, `tao-aml model register JOB` (tao_aml.model_asset) makes
the output a model asset through `ml_client.models.create_or_update`, with the card's name and tags.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
from typing import Dict, List, Optional

from .common import StepError, atomic_write_text, run_main
from .observe import STEP_METRICS

LOG = logging.getLogger("tao_aml.register_model")

MODEL_CARD = "model_card.json"
TAO_VERSION = "5.0.0"
# What a deployment reads, by extension, from the export and engine folders.
DEPLOYABLE = (".onnx", ".engine", ".trt", ".bin", ".cache", ".etlt", ".uff")
DEPLOY_FILES = ("labels.txt", "nvinfer_config.txt")
SPEC_EXTENSIONS = (".txt", ".yaml", ".yml", ".json")
NOT_SPECS = ("status.json", STEP_METRICS, "labels.txt", "nvinfer_config.txt")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="register_model", description=__doc__)
    parser.add_argument("--export", required=True, help="export step output (ONNX, labels.txt)")
    parser.add_argument("--engine", help="engine step output (TensorRT engine, calibration cache)")
    parser.add_argument("--specs", help="a step output whose specs/ (or spec files) go with the model")
    parser.add_argument("--report", help="run report output (report.json): key metrics become tags")
    parser.add_argument("--model_name", help="model asset name written into model_card.json")
    parser.add_argument("--output_dir", required=True)
    return parser


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_deployables(folder: str, output_dir: str) -> List[str]:
    copied = []
    for name in sorted(os.listdir(folder)):
        source = os.path.join(folder, name)
        if os.path.isfile(source) and (name.endswith(DEPLOYABLE) or name in DEPLOY_FILES):
            shutil.copy2(source, os.path.join(output_dir, name))
            copied.append(name)
    return copied


def copy_specs(folder: str, target: str) -> List[str]:
    """<folder>/specs/* (what the project's steps save), else the spec-like files at the top."""
    nested = os.path.join(folder, "specs")
    source = nested if os.path.isdir(nested) else folder
    copied = []
    for name in sorted(os.listdir(source)):
        path = os.path.join(source, name)
        if os.path.isfile(path) and name.endswith(SPEC_EXTENSIONS) and name not in NOT_SPECS:
            os.makedirs(target, exist_ok=True)
            shutil.copy2(path, os.path.join(target, name))
            copied.append(name)
    return copied


def key_metrics(report_dir: Optional[str]) -> Dict[str, str]:
    """Tags from report.json: final and pretrained accuracy, parameter counts, ONNX and engine sizes."""
    if not report_dir:
        return {}
    path = os.path.join(report_dir, "report.json")
    if not os.path.isfile(path):
        raise StepError("--report {} holds no report.json (connect the run_report step's output)".format(report_dir))
    with open(path, encoding="utf-8") as handle:
        report = json.load(handle)
    tags: Dict[str, str] = {}
    accuracy = [row for row in report.get("accuracy", []) if row.get("value") is not None]
    if accuracy:
        final = accuracy[-1]
        tags["accuracy_metric"] = str(final["metric"])
        tags["accuracy"] = "{:.4g}".format(final["value"])
        tags["accuracy_of"] = str(final["model"])
        tags["pretrained_accuracy"] = "{:.4g}".format(accuracy[0]["value"]) if len(accuracy) > 1 else ""
    for name, value in report.get("parameters", {}).items():
        tags["parameters_" + name] = "{:.6g}".format(value)
    for what, info in report.get("sizes", {}).items():
        if info.get("stage") in ("export", "engine"):
            tags[what.replace(" ", "_") + "_mb"] = "{:.4g}".format(info["size_mb"])
    return {k: v for k, v in tags.items() if v}


def family(export_dir: str) -> str:
    path = os.path.join(export_dir, STEP_METRICS)
    try:
        with open(path, encoding="utf-8") as handle:
            return str(json.load(handle).get("family", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def assemble(args: argparse.Namespace) -> Dict[str, object]:
    if not os.path.isdir(args.export):
        raise StepError("--export {} does not exist".format(args.export))
    os.makedirs(args.output_dir, exist_ok=True)
    copy_deployables(args.export, args.output_dir)
    if not any(n.endswith((".onnx", ".etlt", ".uff")) for n in os.listdir(args.output_dir)):
        raise StepError("--export {} holds no exported model (.onnx/.etlt/.uff)".format(args.export))
    if args.engine:
        copy_deployables(args.engine, args.output_dir)
        copy_specs(args.engine, os.path.join(args.output_dir, "specs"))
    if args.specs:
        copy_specs(args.specs, os.path.join(args.output_dir, "specs"))
    files = {}
    for root, _, names in os.walk(args.output_dir):
        for name in sorted(names):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, args.output_dir)
            if relative != MODEL_CARD:
                files[relative] = {"size_mb": round(os.path.getsize(path) / 1e6, 6), "sha256": sha256(path)}
    kind = family(args.export)
    tags = dict(key_metrics(args.report), family=kind, tao_version=TAO_VERSION)
    card = {"name": args.model_name, "family": kind, "tao_version": TAO_VERSION,
            "tags": tags, "files": dict(sorted(files.items()))}
    atomic_write_text(os.path.join(args.output_dir, MODEL_CARD), json.dumps(card, indent=2) + "\n")
    return card


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    card = assemble(args)
    LOG.info("model folder %s: %s", args.output_dir, ", ".join(card["files"]))  # type: ignore[arg-type]


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
