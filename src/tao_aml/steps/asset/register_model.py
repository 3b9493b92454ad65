"""Assemble the deployable model folder, with a model card that carries the model asset's name and tags.

The folder written to --output_dir (the component's `model` output) holds what a user needs to run the
model: the ONNX file and its labels (export step), the TensorRT engine, its engine.json and the INT8
calibration cache (engine step), the specs TAO read (portable_specs: no node paths, checked as TAO checks
them), DeepStream nvinfer configs (deepstream/), for DetectNet_v2 a Triton model repository (triton/), for
BodyPoseNet both exported models (tao/ for TAO's evaluate and inference, sdk_compatible/ for DeepStream and
Triton, with the DeepStream config built from it) and the pose config beside the specs, and
the model card: model_card.json (files with sizes and sha256; `name`, the model asset name from
--model_name; the ONNX inputs and outputs; for DetectNet_v2 the decoding parameters tao_aml.serve reads;
`tags`, the key metrics from the run report, the engine's accuracy, drop and precision, family and TAO
version; for a pruning sweep, `pruning_sweep` and the chosen `pruning_threshold` tag) and README.md. With
--max_engine_accuracy_drop, an engine that lost more accuracy than that against the .hdf5 model
(report.json's engine_check) fails the step before anything is written. Everything
is assembled in a temporary folder and moved into --output_dir only when complete. The step does
not register anything: after the job completes, `tao-aml model register JOB` (tao_aml.azure.model_asset) makes
the output a model asset through `ml_client.models.create_or_update`, with the card's name and tags.
"""

import argparse
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import tempfile
from typing import Any, Dict, List, Optional

from tao_aml.steps.asset import deploy_bundle, model_card, onnx_graph, portable_specs
from tao_aml.steps.bpnet import specs as bpnet_specs
from tao_aml.steps.bpnet.models import SDK_COMPATIBLE, TAO_MODEL
from tao_aml.steps.cli_types import boolean, of_kind
from tao_aml.steps.common import StepError, atomic_write_text, read_json, run_main
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.detectnet_v2.portable_spec import detectnet_root
from tao_aml.steps.specs import prototext
from tao_aml.steps.tao.observe import STEP_METRICS

LOG = logging.getLogger("tao_aml.register_model")

MODEL_CARD = "model_card.json"
TAO_VERSION = "5.0.0"
# What a deployment reads, by extension, from the export and engine folders.
DEPLOYABLE = (".onnx", ".engine", ".trt", ".bin", ".cache", ".etlt", ".uff")
# Not TAO's own `--gen_ds_config` nvinfer_config.txt: it is partial and holds `tlt-model-key=<key>`
# (cv/common/types/base_ds_config.py); the asset's DeepStream configs are written by deploy_bundle.
DEPLOY_FILES = ("labels.txt", engine_info.ENGINE_INFO)
SPEC_EXTENSIONS = (".txt", ".yaml", ".yml", ".json")
NOT_SPECS = ("status.json", STEP_METRICS, "labels.txt", "nvinfer_config.txt", engine_info.ENGINE_INFO)
README = "README.md"
BPNET_MODELS = {TAO_MODEL: "TAO's bpnet evaluate and inference (heatmap and PAF at stride 8)",
                SDK_COMPATIBLE: "DeepStream bodypose2d and Triton (bpnet export --sdk_compatible_model: PAF "
                                "upsampled, conv2d_transpose_1/BiasAdd:0)"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="register_model", description=__doc__)
    parser.add_argument("--export", required=True, help="export step output (ONNX, labels.txt)")
    parser.add_argument("--engine", help="engine step output (TensorRT engine, calibration cache)")
    parser.add_argument("--specs", help="a step output whose specs/ (or spec files) go with the model")
    parser.add_argument("--trained_model", help="the (re)train step output (DetectNet_v2): its Experiment spec, as "
                        "the model was trained with it, replaces the engine step's")
    parser.add_argument("--report", help="run report output (report.json): key metrics become tags")
    parser.add_argument("--model_name", type=of_kind("name"), help="model asset name written into model_card.json")
    parser.add_argument("--grayscale", type=boolean, default=None,
                        help="the model was trained on grayscale replicated to 3 channels (FaceNet)")
    parser.add_argument("--max_engine_accuracy_drop", type=float, default=None,
                        help="fail when the engine is more than this below the .hdf5 model (report's engine_check)")
    parser.add_argument("--triton_plan", type=boolean, default=False,
                        help="also put the TensorRT engine into the Triton repository, when it can load where the "
                             "model is served (--serving_gpu, --serving_tensorrt); the card says why not otherwise")
    parser.add_argument("--serving_gpu", choices=sorted(deploy_bundle.COMPUTE_CAPABILITY),
                        default=deploy_bundle.DEFAULT_SERVING_GPU, help="the GPU the Triton model is served on")
    parser.add_argument("--serving_tensorrt", default=None,
                        help="TensorRT version of the serving Triton (unset: Azure ML's no-code Triton, unstated)")
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


def copy_specs(folder: str, target: str) -> Dict[str, str]:
    """<folder>/specs/* (what the project's steps save), else the spec-like files at the top: {name: source}."""
    nested = os.path.join(folder, "specs")
    source = nested if os.path.isdir(nested) else folder
    copied = {}
    for name in sorted(os.listdir(source)):
        path = os.path.join(source, name)
        if os.path.isfile(path) and name.endswith(SPEC_EXTENSIONS) and name not in NOT_SPECS:
            os.makedirs(target, exist_ok=True)
            shutil.copy2(path, os.path.join(target, name))
            copied[name] = path
    return copied


def copy_trained_experiment(trained: str, target: str) -> Dict[str, str]:
    """The Experiment spec the (re)train step wrote and trained from, in place of the engine step's (which
    has the template's epochs and batch size, and no validation data): {name: source}."""
    source = os.path.join(trained, "specs")
    found = spec_by_root(source, ["Experiment"])
    if "Experiment" not in found:
        raise StepError("--trained_model {} holds no Experiment spec in specs/: connect the retrain step's "
                        "output".format(trained))
    for name in sorted(os.listdir(target)) if os.path.isdir(target) else []:
        if name.endswith(".txt") and detectnet_spec_root(os.path.join(target, name)) == "Experiment":
            os.remove(os.path.join(target, name))
    os.makedirs(target, exist_ok=True)
    name = os.path.basename(found["Experiment"])
    shutil.copy2(found["Experiment"], os.path.join(target, name))
    return {name: found["Experiment"]}


def load_report(report_dir: Optional[str]) -> Optional[Dict[str, Any]]:
    if not report_dir:
        return None
    return read_json(os.path.join(report_dir, "report.json"),
                     "--report {} holds no report.json (connect the run_report step's output)".format(report_dir))


def key_metrics(report: Optional[Dict[str, Any]]) -> Dict[str, str]:
    """Tags from report.json: final and pretrained accuracy, the engine's accuracy, drop and precision,
    parameter counts, ONNX and engine sizes."""
    if not report:
        return {}
    tags: Dict[str, str] = {}
    accuracy = [row for row in report.get("accuracy", []) if row.get("value") is not None]
    if accuracy:
        final = accuracy[-1]
        tags["accuracy_metric"] = str(final["metric"])
        tags["accuracy"] = "{:.4g}".format(final["value"])
        tags["accuracy_of"] = str(final["model"])
        tags["pretrained_accuracy"] = "{:.4g}".format(accuracy[0]["value"]) if len(accuracy) > 1 else ""
    check = report.get("engine_check")
    if check:
        tags["engine_accuracy"] = "{:.4g}".format(check["engine_value"])
        tags["engine_accuracy_drop"] = "{:.4g}".format(check["drop"])
        tags["engine_precision"] = str(check.get("precision") or "")
    for name, value in report.get("parameters", {}).items():
        tags["parameters_" + name] = "{:.6g}".format(value)
    sweep = pruning_sweep(report)
    if sweep:
        tags["pruning_threshold"] = "{:.6g}".format(sweep["chosen"]["threshold"])
    for what, info in report.get("sizes", {}).items():
        if info.get("stage") in ("export", "engine"):
            tags[what.replace(" ", "_") + "_mb"] = "{:.4g}".format(info["size_mb"])
    return {k: v for k, v in tags.items() if v}


SWEEP_BRANCH_FIELDS = ("branch", "threshold", "status", "reason", "value", "parameters", "model_bytes", "drop",
                       "within_limit")


def pruning_sweep(report: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The pruning sweep the run report carries (the select_model step's sweep.json) as the card records it:
    the thresholds tried, each branch's metric, parameters, size and status, the chosen one and why."""
    sweep = (report or {}).get("sweep")
    if not sweep:
        return None
    branches = [{field: branch.get(field) for field in SWEEP_BRANCH_FIELDS} for branch in sweep["branches"]]
    return {"metric": sweep.get("metric"), "unit": sweep.get("unit"), "max_map_drop": sweep.get("max_map_drop"),
            "thresholds": [branch["threshold"] for branch in branches], "unpruned": sweep.get("unpruned"),
            "branches": branches, "chosen": sweep["chosen"]}


def family(export_dir: str) -> str:
    path = os.path.join(export_dir, STEP_METRICS)
    try:
        with open(path, encoding="utf-8") as handle:
            return str(json.load(handle).get("family", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def check_engine_drop(report: Optional[Dict[str, Any]], limit: Optional[float]) -> None:
    if limit is None:
        return
    check = (report or {}).get("engine_check")
    if not check:
        raise StepError("--max_engine_accuracy_drop needs the run report's engine_check (connect the report with "
                        "an evaluation of the engine and of the pruned and retrained model)")
    if not math.isfinite(check["drop"]):
        raise StepError("the TensorRT engine's {} is {} and the {} model's {}: the accuracy drop is unknown, so "
                        "max_engine_accuracy_drop {:.4g} cannot be met; the model was not assembled (see the run "
                        "report)".format(check["metric"], check["engine_value"], check["model"], check["model_value"],
                                         limit))
    if check["drop"] > limit:
        raise StepError("the TensorRT engine ({}) scores {} {:.4g}, {:.4g} below the {} model's {:.4g}: more than "
                        "max_engine_accuracy_drop {:.4g}; the model was not assembled (see the run report)".format(
                            check.get("precision"), check["metric"], check["engine_value"], check["drop"],
                            check["model"], check["model_value"], limit))


def spec_by_root(folder: str, roots: List[str]) -> Dict[str, str]:
    """{root: spec file} of the detectnet_v2 specs in `folder` (the first file of each root)."""
    found: Dict[str, str] = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".txt"):
            path = os.path.join(folder, name)
            root = detectnet_spec_root(path)
            if root in roots:
                found.setdefault(root, path)
    return found


def detectnet_spec_root(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return detectnet_root(prototext.parse(handle.read(), path))


def detectnet_bundle(folder: str, onnx: str, grayscale: Optional[bool], engine: Optional[Dict[str, Any]],
                     args: argparse.Namespace) -> Dict[str, Any]:
    """Decoding parameters, DeepStream configs and the Triton repository of a DetectNet_v2 model."""
    specs_dir = os.path.join(folder, "specs")
    specs = spec_by_root(specs_dir, ["Experiment", "Inference"])
    for root, what in (("Experiment", "the engine step's"), ("Inference", "the inference step's")):
        if root not in specs:
            raise StepError("no {} spec among the model's specs ({}): connect {} output".format(root, specs_dir, what))
    trees = {}
    for root, path in specs.items():
        with open(path, encoding="utf-8") as handle:
            trees[root] = prototext.parse(handle.read(), path)
    params = deploy_bundle.detectnet_params(onnx, trees["Experiment"], trees["Inference"], specs["Inference"],
                                            grayscale)
    extra: Dict[str, Any] = {"postprocessing": params}
    model = args.model_name or "detectnet_v2"  # Triton and DeepStream need a name; the card's stays unset
    if engine is not None:
        os.makedirs(os.path.join(folder, "deepstream"))
        configs = deploy_bundle.deepstream_config_names(model)
        for name, use_engine in configs.items():
            atomic_write_text(os.path.join(folder, "deepstream", name),
                              deploy_bundle.deepstream_detectnet(params, engine, use_engine, model))
        extra["deepstream"] = sorted(configs)
        extra["deepstream_vs_tao"] = deploy_bundle.deepstream_notes(params)
    triton = deploy_bundle.triton_repository(folder, os.path.join(folder, "triton"), params, engine, args.triton_plan,
                                             model, args.serving_gpu, args.serving_tensorrt)
    extra["triton"] = dict(triton, path="triton")
    return extra


def bodypose_models(export_dir: str, folder: str) -> Dict[str, Dict[str, Any]]:
    """Both models of the bpnet export step into tao/ and sdk_compatible/: {name: use, graph, engine}."""
    models: Dict[str, Dict[str, Any]] = {}
    for name, use in BPNET_MODELS.items():
        source = os.path.join(export_dir, name)
        onnx = os.path.join(source, "model.onnx")
        if not os.path.isfile(onnx):
            raise StepError("--export {} has no {}: connect the bpnet export step's output (it exports the TAO "
                            "model into {}/ and the SDK-compatible one into {}/)".format(
                                export_dir, onnx, TAO_MODEL, SDK_COMPATIBLE))
        os.makedirs(os.path.join(folder, name))
        copy_deployables(source, os.path.join(folder, name))
        engine = engine_info.read_engine_info(source)
        for key in ("engine_file", "calibration_cache"):
            if engine.get(key):
                engine[key] = "{}/{}".format(name, engine[key])
        models[name] = {"use": use, "graph": onnx_graph.describe(onnx_graph.read(onnx)), "engine": engine}
    outputs = [t["name"] for t in models[TAO_MODEL]["graph"]["outputs"]]
    if deploy_bundle.BP_PAF in outputs:
        raise StepError("{}/model.onnx of {} has the SDK-compatible output {}: TAO's bpnet evaluate and inference "
                        "refuse that model (export it without --sdk_compatible_model)".format(
                            TAO_MODEL, export_dir, deploy_bundle.BP_PAF))
    return models


def bodypose_bundle(folder: str, export_dir: str) -> Dict[str, Any]:
    """Both models, and the bodypose2d DeepStream config and post-processing file of the SDK-compatible one,
    from the inference spec and the pose config the model was trained with."""
    models = bodypose_models(export_dir, folder)
    sdk = models[SDK_COMPATIBLE]
    extra: Dict[str, Any] = {"models": models, "graph": sdk["graph"], "engine": sdk["engine"]}
    specs_dir = os.path.join(folder, "specs")
    trees = {n: bpnet_specs.load(os.path.join(specs_dir, n)) for n in sorted(os.listdir(specs_dir))
             if n.endswith((".yaml", ".yml"))} if os.path.isdir(specs_dir) else {}
    infer = [t for t in trees.values() if "model_path" in t]
    train = [t for t in trees.values() if "dataloader" in t]
    if not infer or not train:  # no specs connected: no DeepStream config either
        return extra
    pose_config = os.path.join(specs_dir, os.path.basename(str(
        bpnet_specs.get(train[-1], "dataloader.pose_config.pose_config_path"))))
    if not os.path.isfile(pose_config):
        raise StepError("the pose config the model was trained with ({}) is not among its specs".format(pose_config))
    files = deploy_bundle.deepstream_bodypose(os.path.join(export_dir, SDK_COMPATIBLE, "model.onnx"), sdk["engine"],
                                              infer[-1], bpnet_specs.load(pose_config),
                                              onnx_file="{}/model.onnx".format(SDK_COMPATIBLE))
    os.makedirs(os.path.join(folder, "deepstream"))
    for name, text in files.items():
        atomic_write_text(os.path.join(folder, "deepstream", name), text)
    extra["deepstream"] = sorted(files)
    return extra


def file_list(folder: str) -> Dict[str, Dict[str, object]]:
    files = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            if relative != MODEL_CARD:
                files[relative] = {"size_mb": round(os.path.getsize(path) / 1e6, 6), "sha256": sha256(path)}
    return dict(sorted(files.items()))


def build(args: argparse.Namespace, folder: str) -> Dict[str, object]:
    """Everything of the model folder, in `folder` (empty); returns the card."""
    report = load_report(args.report)
    check_engine_drop(report, args.max_engine_accuracy_drop)
    kind = family(args.export)
    if kind != "bpnet":  # bpnet: two models in subfolders (bodypose_models)
        copy_deployables(args.export, folder)
        if not any(n.endswith((".onnx", ".etlt", ".uff")) for n in os.listdir(folder)):
            raise StepError("--export {} holds no exported model (.onnx/.etlt/.uff)".format(args.export))
    engine = None
    origins: Dict[str, str] = {}  # spec name -> the step output it came from (named in errors)
    if args.engine:
        copy_deployables(args.engine, folder)
        origins.update(copy_specs(args.engine, os.path.join(folder, "specs")))
        if os.path.isfile(os.path.join(args.engine, engine_info.ENGINE_INFO)):
            engine = engine_info.read_engine_info(args.engine)
    if args.trained_model:
        origins.update(copy_trained_experiment(args.trained_model, os.path.join(folder, "specs")))
    if args.specs:
        origins.update(copy_specs(args.specs, os.path.join(folder, "specs")))
    card: Dict[str, Any] = {"name": args.model_name, "family": kind, "tao_version": TAO_VERSION}
    onnx = os.path.join(args.export, "model.onnx")  # read where it came from: errors name that file
    if os.path.isfile(onnx):
        card["graph"] = onnx_graph.describe(onnx_graph.read(onnx))
    if engine is not None:
        card["engine"] = engine
    if kind == "detectnet_v2":
        card.update(detectnet_bundle(folder, onnx, args.grayscale, engine, args))
    elif kind == "bpnet":
        card.update(bodypose_bundle(folder, args.export))
    card["spec_notes"] = portable_specs.make_portable(os.path.join(folder, "specs"), folder, origins)
    sweep = pruning_sweep(report)
    if sweep:
        card["pruning_sweep"] = sweep
    card["tags"] = dict(key_metrics(report), family=kind, tao_version=TAO_VERSION)
    card["files"] = file_list(folder)  # README.md lists these files; the card then lists README.md too
    atomic_write_text(os.path.join(folder, README), model_card.readme(card, report))
    card["files"] = file_list(folder)
    atomic_write_text(os.path.join(folder, MODEL_CARD), json.dumps(card, indent=2) + "\n")
    return card


def assemble(args: argparse.Namespace) -> Dict[str, object]:
    if not os.path.isdir(args.export):
        raise StepError("--export {} does not exist".format(args.export))
    os.makedirs(args.output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".assembling-", dir=args.output_dir)
    try:
        card = build(args, staging)
        for name in sorted(os.listdir(staging)):
            target = os.path.join(args.output_dir, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(os.path.join(staging, name), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def body(argv: Optional[List[str]]) -> None:
    args = build_parser().parse_args(argv)
    card = assemble(args)
    LOG.info("model folder %s: %s", args.output_dir, ", ".join(card["files"]))  # type: ignore[arg-type]


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(body, argv)


if __name__ == "__main__":
    sys.exit(main())
