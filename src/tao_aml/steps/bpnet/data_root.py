"""One data root per node, from which TAO bpnet finds both the COCO images and the masks.

TAO's converter stores `train2017/<file>` and `train_mask2017/<file>` in the TFRecords (relative
to the coco spec's root_directory_path) and writes masks under <root>/<mask dir>; the training
loader reads `root_data_path + path` by string concatenation. The images are a read-only input
mount, the masks a step output, and each node mounts them at other paths. So every bpnet step
builds, on the node's local disk, a folder of symlinks named as the spec's relative paths and
pointing at this node's mounts; that folder (with a trailing '/') is both root_directory_path and
root_data_path. The links live on local disk because Azure ML's blob mounts do not keep symlinks.
"""

import os
import tempfile
from typing import Dict

from tao_aml.steps.common import StepError

IMAGES = {"train": "train2017", "val": "val2017"}
MASKS = {"train": "train_mask2017", "val": "val_mask2017"}
ANNOTATIONS = "annotations"
ANNOTATION_FILES = {
    "train": ANNOTATIONS + "/person_keypoints_train2017.json",
    "val": ANNOTATIONS + "/person_keypoints_val2017.json",
}


def build(links: Dict[str, str]) -> str:
    """A new local folder holding `name -> target` links; returned with its trailing '/'."""
    for name, target in links.items():
        if not os.path.isdir(target):
            raise StepError("{} (for {}/ in the bpnet data root) is not a folder".format(target, name))
    root = tempfile.mkdtemp(prefix="bpnet_root_")
    for name, target in sorted(links.items()):
        os.symlink(os.path.abspath(target), os.path.join(root, name))
    return os.path.join(root, "")


def coco_layout(spec: Dict[str, object]) -> None:
    """Give a coco spec the relative layout the links above provide."""
    for key, split in (("train_data", "train"), ("test_data", "val")):
        section = spec.get(key)
        if not isinstance(section, dict):
            raise StepError("the coco spec's {} must be a section, not {!r}".format(key, section))
        section["images_root_dir_path"] = IMAGES[split]
        section["mask_root_dir_path"] = MASKS[split]
        section["annotation_root_dir_path"] = ANNOTATION_FILES[split]
