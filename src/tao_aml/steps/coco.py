"""COCO 2017 person-keypoint data as the BodyPose steps read it: layout, loading, checks.

Every check names the file and the entry that is wrong, so a broken annotation file fails on the
CPU node in seconds instead of inside TAO on a GPU node.
"""

import json
import os
from typing import Any, Dict, List, Optional

from .common import StepError

# split -> (images folder, annotation file), as the COCO 2017 zips extract.
SPLITS = {
    "train": ("train2017", "annotations/person_keypoints_train2017.json"),
    "val": ("val2017", "annotations/person_keypoints_val2017.json"),
}
REQUIRED_KEYS = ("images", "annotations", "categories")
IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd")


def data_root(downloaded: str, provided: Optional[str]) -> str:
    """The folder holding train2017/, val2017/ and annotations/: the user's when connected."""
    root = provided or downloaded
    if not os.path.isdir(root):
        raise StepError("COCO folder {} does not exist".format(root))
    return root


def images_dir(root: str, split: str) -> str:
    folder = os.path.join(root, SPLITS[split][0])
    if not os.path.isdir(folder):
        raise StepError("{} has no {}/ folder: expected the extracted COCO 2017 {}.zip".format(
            root, SPLITS[split][0], SPLITS[split][0]))
    return folder


def annotation_file(root: str, split: str) -> str:
    path = os.path.join(root, SPLITS[split][1])
    if not os.path.isfile(path):
        raise StepError("{} has no {}: expected the extracted annotations_trainval2017.zip".format(
            root, SPLITS[split][1]))
    return path


def load_keypoints(path: str) -> Dict[str, Any]:
    """Read and check a COCO keypoint file: its three lists, their entries, and the links between them."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except ValueError as err:
        raise StepError("{} is not valid JSON: {}".format(path, err)) from None
    if not isinstance(data, dict):
        raise StepError("{} is not a COCO annotation file: the top level is not an object".format(path))
    missing = [key for key in REQUIRED_KEYS if not isinstance(data.get(key), list)]
    if missing:
        raise StepError("{} is not a COCO keypoint file: missing or not a list: {}".format(
            path, ", ".join(missing)))
    if not any(isinstance(c, dict) and c.get("name") == "person" for c in data["categories"]):
        raise StepError("{}: categories has no 'person' entry".format(path))
    ids = set()
    for index, image in enumerate(data["images"]):
        _require(path, "images", index, image, IMAGE_KEYS)
        ids.add(image["id"])
    for index, ann in enumerate(data["annotations"]):
        _require(path, "annotations", index, ann, ANNOTATION_KEYS)
        if ann["image_id"] not in ids:
            raise StepError("{}: annotations[{}] (id {}) points at image_id {}, which is not in images".format(
                path, index, ann.get("id"), ann["image_id"]))
        if not isinstance(ann["keypoints"], list) or len(ann["keypoints"]) % 3:
            raise StepError("{}: annotations[{}].keypoints must be a list of x, y, visibility triples".format(
                path, index))
    return data


def _require(path: str, section: str, index: int, entry: Any, keys: tuple) -> None:
    if not isinstance(entry, dict):
        raise StepError("{}: {}[{}] is not an object".format(path, section, index))
    missing = [key for key in keys if key not in entry]
    if missing:
        raise StepError("{}: {}[{}] lacks {}".format(path, section, index, ", ".join(missing)))


def check_image_files(data: Dict[str, Any], folder: str, source: str) -> None:
    """Every image the annotations list must be in `folder` (listed once: a mount is slow to stat)."""
    present = set(os.listdir(folder))
    missing = [image["file_name"] for image in data["images"] if image["file_name"] not in present]
    if missing:
        raise StepError("{} lists {} image(s) missing from {}, e.g. {}".format(
            source, len(missing), folder, ", ".join(missing[:3])))


def first_images(data: Dict[str, Any], limit: Optional[int]) -> Dict[str, Any]:
    """The file restricted to its first `limit` images (file order) and their annotations."""
    if limit is None:
        return data
    images = data["images"][:limit]
    kept = {image["id"] for image in images}
    subset = dict(data)
    subset["images"] = images
    subset["annotations"] = [ann for ann in data["annotations"] if ann["image_id"] in kept]
    return subset


def well_labelled_images(data: Dict[str, Any], min_keypoints: int) -> List[Dict[str, Any]]:
    """Images with at least one non-crowd person with at least `min_keypoints` labelled keypoints."""
    good = {ann["image_id"] for ann in data["annotations"]
            if not ann["iscrowd"] and ann["num_keypoints"] >= min_keypoints}
    return [image for image in data["images"] if image["id"] in good]
