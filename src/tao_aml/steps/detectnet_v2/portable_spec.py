"""A DetectNet_v2 spec made self-contained for the model asset (called by steps/asset/portable_specs.py).

Dataset paths become the relative layout the pipeline used (`data/...`), the model paths are emptied with a
note, and the result is checked against TAO 5.0's schema and TAO's own validator (tf1_validator; TAO Deploy
parses the same schema).
"""

from typing import Tuple

from tao_aml.steps.common import StepError, atomic_write_text
from tao_aml.steps.detectnet_v2 import tf1_validator
from tao_aml.steps.specs import detectnet_v2_schema, prototext
from tao_aml.steps.specs.prototext import Message

# Relative data paths a shipped Experiment spec names: the layout of the pipeline's own outputs.
DATA_SOURCES = {
    "data_sources": ("data/tfrecords_train/tfrecords/*", "data/kitti_train"),
    "validation_data_source": ("data/tfrecords_val/tfrecords/*", "data/kitti_val"),
}
EXPERIMENT_NOTE = ("dataset paths are relative to the folder TAO runs in (data/tfrecords_<split>/tfrecords/* "
                   "and data/kitti_<split>, as the pipeline laid them out); model_config.pretrained_model_file "
                   "is left empty (the model it started from is not in this asset): set both before training")
INFERENCE_NOTE = ("inferencer_config.tlt_config.model is left empty: give the model with -m "
                  "(TAO Deploy: -m model.engine)")


def detectnet_root(tree: Message) -> str:
    names = {name for name, _ in tree.fields}
    if "inferencer_config" in names:
        return "Inference"
    if names & {"dataset_config", "model_config", "training_config"}:
        return "Experiment"
    return "DatasetExportConfig"


def make_portable(path: str, origin: str) -> Tuple[str, str]:
    """Rewrite one Experiment or Inference spec in place, check it as TAO would; (its root, the note)."""
    with open(path, encoding="utf-8") as handle:
        tree = prototext.parse(handle.read(), path)
    root = detectnet_root(tree)
    if root == "Experiment":
        dataset = tree.get("dataset_config") if tree.has("dataset_config") else None
        if isinstance(dataset, Message):
            for field, (records, images) in DATA_SOURCES.items():
                if field == "validation_data_source" and not dataset.values(field):
                    continue
                dataset.remove(field)
                source = Message()
                source.add("tfrecords_path", records)
                source.add("image_directory_path", images)
                dataset.add(field, source)
        tree.remove("model_config.pretrained_model_file")
        note = EXPERIMENT_NOTE
    elif root == "Inference":
        tree.remove("inferencer_config.tlt_config.model")
        note = INFERENCE_NOTE
    else:
        raise StepError("{}: only Experiment and Inference specs go into a model asset".format(origin))
    problems = detectnet_v2_schema.validate(tree, root, origin) + tf1_validator.validate(tree, root, origin)
    if problems:
        raise StepError("spec {}, as shipped with the model, would be refused by TAO 5.0:\n  {}".format(
            origin, "\n  ".join(problems)))
    header = "# Shipped with the model by tao-aml: {}.\n".format(note)
    atomic_write_text(path, header + prototext.format(tree))
    return root, note
