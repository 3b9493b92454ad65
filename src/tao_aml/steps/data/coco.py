"""COCO 2017 person-keypoint data as the BodyPose steps find and select it: the download's layout,
the images a file lists, subsets and calibration candidates.

The annotation files themselves are read and checked by formats/coco.py, so a broken file fails on the
CPU node in seconds instead of inside TAO on a GPU node.
"""

import os
from typing import Any, Dict, List, Optional

from tao_aml.steps.common import StepError

# split -> (images folder, annotation file), as the COCO 2017 zips extract.
SPLITS = {
    "train": ("train2017", "annotations/person_keypoints_train2017.json"),
    "val": ("val2017", "annotations/person_keypoints_val2017.json"),
}


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
