"""The step outputs the register_model step assembles a model asset from, as the pipeline's steps write them.

FaceNet: the export output (a real ONNX model with TAO's tensors), the engine output (engine, INT8 cache,
engine.json, the Experiment spec copy with this node's paths), the inference output (the Inference spec copy
naming the .hdf5 model on the node) and the run report. BodyPoseNet: the export output (ONNX, engine,
engine.json, specs/) and the inference output's specs/. Specs are the shipped templates with the edits the
steps make, so every path in them is an absolute path of "the node" (NODE).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tao_aml.simulate import onnx_models
from tao_aml.steps.deploy import engine_info
from tao_aml.steps.specs import prototext, spec_edit
from tao_aml.steps.specs.spec_templates import SHIPPED

NODE = "/mnt/azureml/cr/j/1234/cap/data-capability/wd"
FACENET, BODYPOSE = Path(SHIPPED) / "facenet", Path(SHIPPED) / "bodypose"


def _spec(template: Path, edit) -> str:  # type: ignore[no-untyped-def]
    tree = prototext.parse(template.read_text(), str(template))
    edit(tree)
    return prototext.format(tree)


def engine_spec(width: int, height: int) -> str:
    """The engine step's copy of the retrain template: input size and classes set, the pruned model's node path."""
    def edit(tree: prototext.Message) -> None:
        tree.set("augmentation_config.preprocessing.output_image_width", width)
        tree.set("augmentation_config.preprocessing.output_image_height", height)
        spec_edit.set_classes(tree, ["face"])
        tree.set("model_config.pretrained_model_file", f"{NODE}/prune/model_pruned.hdf5")
    return _spec(FACENET / "facenet_retrain_resnet18_kitti.txt", edit)


def inference_spec(width: int, height: int, clustering: dict[str, object] | None = None) -> str:
    """The inference step's copy: the .hdf5 model on the node, the pipeline's size; `clustering` overrides."""
    def edit(tree: prototext.Message) -> None:
        tree.set("inferencer_config.tlt_config.model", f"{NODE}/retrain/weights/resnet18_detector_pruned.hdf5")
        tree.set("inferencer_config.image_width", width)
        tree.set("inferencer_config.image_height", height)
        for field, value in (clustering or {}).items():
            path = f'bbox_handler_config.classwise_bbox_handler_config["face"].value.clustering_config.{field}'
            tree.set(path, prototext.Enum(value) if field == "clustering_algorithm" else value)
    return _spec(FACENET / "facenet_inference_kitti_tlt.txt", edit)


def facenet_outputs(root: Path, width: int = 160, height: int = 96, boxes: list | None = None,
                    data_type: str = "int8", max_batch_size: int = 4, engine_check: dict | None = None,
                    clustering: dict[str, object] | None = None) -> dict[str, Path]:
    export, engine, inference, report = (root / n for n in ("export", "engine", "inference", "report"))
    for folder in (export, engine / "specs", inference / "specs", report):
        folder.mkdir(parents=True)
    box = onnx_models.Box(width * 0.25, height * 0.25, width * 0.75, height * 0.75)
    onnx_models.save(onnx_models.detectnet_v2(width, height, boxes or [box]), str(export / "model.onnx"))
    (export / "labels.txt").write_text("face\n")
    (export / "status.json").write_text('{"status": "SUCCESS"}\n')
    (export / "step_metrics.json").write_text(json.dumps({"family": "detectnet_v2", "metrics": {}}))
    (engine / "model.engine").write_bytes(b"serialized TensorRT engine")
    cache = engine / "cal.bin" if data_type == "int8" else None
    if cache:
        cache.write_text("TRT-8503-EntropyCalibration2\ninput_1:0: 3c010a14\n")
    engine_info.write_engine_info(str(engine), str(engine / "model.engine"), data_type, max_batch_size,
                                    str(cache) if cache else None)
    (engine / "specs" / "facenet_retrain_resnet18_kitti.txt").write_text(engine_spec(width, height))
    (inference / "specs" / "facenet_inference_kitti_tlt.txt").write_text(inference_spec(width, height, clustering))
    check = {"metric": "eval/mAP", "model": "pruned + retrained", "model_value": 84.25, "engine_value": 83.5,
             "drop": 0.75, "precision": data_type} if engine_check is None else engine_check
    (report / "report.json").write_text(json.dumps({
        "title": "TAO FaceNet (DetectNet_v2) run",
        "accuracy": [{"model": "pretrained", "metric": "eval/mAP", "value": 80.1},
                     {"model": "pruned + retrained", "metric": "eval/mAP", "value": 84.25}],
        "engine_check": check or None,
        "parameters": {"before_pruning": 1000.0, "after_pruning": 250.0, "pruning_ratio": 0.25}}))
    return {"export": export, "engine": engine, "inference": inference, "report": report, "out": root / "model"}


def facenet_args(outputs: dict[str, Path], *extra: str) -> list[str]:
    return ["--export", str(outputs["export"]), "--engine", str(outputs["engine"]), "--specs",
            str(outputs["inference"]), "--report", str(outputs["report"]), "--model_name", "tao-facenet",
            "--grayscale", "true", "--output_dir", str(outputs["out"]), *extra]


def detectnet_v2_outputs(root: Path, classes: tuple[str, ...] = ("car", "pedestrian"), width: int = 160,
                         height: int = 96, boxes: list | None = None,
                         clustering: dict[str, object] | None = None) -> dict[str, Path]:
    """A DetectNet_v2 model trained on your own classes (the detectnet_v2 pipeline's templates), else as FaceNet's:
    the engine step's Experiment spec and the inference step's Inference spec with the classes and this node's
    paths, an ONNX model with one coverage channel per class; `clustering` overrides every class's."""
    outputs = facenet_outputs(root, width, height)
    template = Path(SHIPPED) / "detectnet_v2"
    default = [onnx_models.Box(16 + 48 * c, 10, 56 + 48 * c, 60, class_index=c) for c in range(len(classes))]
    onnx_models.save(onnx_models.detectnet_v2(width, height, boxes or default, len(classes)),
                     str(outputs["export"] / "model.onnx"))
    (outputs["export"] / "labels.txt").write_text("".join(f"{c}\n" for c in classes))

    def experiment(tree: prototext.Message) -> None:
        tree.set("augmentation_config.preprocessing.output_image_width", width)
        tree.set("augmentation_config.preprocessing.output_image_height", height)
        spec_edit.set_classes(tree, list(classes))
        tree.set("model_config.pretrained_model_file", f"{NODE}/prune/model_pruned.hdf5")

    def inference(tree: prototext.Message) -> None:
        spec_edit.set_inference_classes(tree, list(classes))
        tree.set("inferencer_config.tlt_config.model", f"{NODE}/retrain/weights/detectnet_v2_detector_pruned.hdf5")
        tree.set("inferencer_config.image_width", width)
        tree.set("inferencer_config.image_height", height)
        for name in classes:
            for field, value in (clustering or {}).items():
                path = f'bbox_handler_config.classwise_bbox_handler_config["{name}"].value.clustering_config.{field}'
                tree.set(path, prototext.Enum(value) if field == "clustering_algorithm" else value)

    for old in (outputs["engine"] / "specs").iterdir():
        old.unlink()
    for old in (outputs["inference"] / "specs").iterdir():
        old.unlink()
    (outputs["engine"] / "specs" / "detectnet_v2_retrain_resnet18_kitti.txt").write_text(
        _spec(template / "detectnet_v2_retrain_resnet18_kitti.txt", experiment))
    (outputs["inference"] / "specs" / "detectnet_v2_inference_kitti_tlt.txt").write_text(
        _spec(template / "detectnet_v2_inference_kitti_tlt.txt", inference))
    return outputs


def bodypose_outputs(root: Path, height: int = 288, width: int = 384, max_batch_size: int = 2) -> dict[str, Path]:
    """What bpnet export writes (tao/ and sdk_compatible/, tao_aml.steps.bpnet.export) and inference's specs."""
    export, inference = root / "export", root / "inference"
    for folder in (export / "specs", inference / "specs"):
        folder.mkdir(parents=True)
    for name, sdk_compatible in (("tao", False), ("sdk_compatible", True)):
        (export / name).mkdir()
        onnx_models.save(onnx_models.bpnet(height, width, sdk_compatible), str(export / name / "model.onnx"))
        (export / name / "model.engine").write_bytes(b"serialized TensorRT engine")
        (export / name / "cal.bin").write_text("TRT-8503-EntropyCalibration2\n")
        engine_info.write_engine_info(str(export / name), str(export / name / "model.engine"), "int8",
                                        max_batch_size, str(export / name / "cal.bin"),
                                        input_dims=[height, width, 3])
    (export / "model_info.json").write_text(json.dumps({"model_file": "tao/model.engine"}))
    (export / "step_metrics.json").write_text(json.dumps({"family": "bpnet", "metrics": {}}))
    train = yaml.safe_load((BODYPOSE / "bpnet_retrain_m1_coco.yaml").read_text())
    train["checkpoint_dir"] = f"{NODE}/export"
    train["pretrained_weights"] = f"{NODE}/prune/model_pruned.hdf5"
    train["inference_spec"] = f"{NODE}/export/specs/infer_spec_retrained_strict.yaml"
    train["dataloader"]["pose_config"]["pose_config_path"] = f"{NODE}/export/specs/bpnet_18joints.json"
    train["dataloader"]["dataset_config"]["root_data_path"] = "/tmp/tao-aml-data-root/"
    infer = yaml.safe_load((BODYPOSE / "infer_spec_retrained_strict.yaml").read_text())
    infer["model_path"] = f"{NODE}/export/tao/model.engine"
    infer["train_spec"] = f"{NODE}/export/specs/bpnet_retrain_m1_coco.yaml"
    infer["input_shape"] = [height, width]
    for folder in (export / "specs", inference / "specs"):
        (folder / "bpnet_retrain_m1_coco.yaml").write_text(yaml.safe_dump(train))
        (folder / "infer_spec_retrained_strict.yaml").write_text(yaml.safe_dump(infer))
        (folder / "bpnet_18joints.json").write_text((BODYPOSE / "bpnet_18joints.json").read_text())
    return {"export": export, "engine": export, "inference": inference, "out": root / "model"}
