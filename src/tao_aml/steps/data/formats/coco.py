"""COCO keypoint annotation files (`person_keypoints_<split>2017.json`), read and checked field by field.

The format, as cocodataset.org's data format page defines it: an object with the lists `images`
(`id`, `file_name`, `width`, `height`), `annotations` (`id`, `image_id`, `category_id`, `keypoints`:
x, y, v for each of the category's keypoints with v 0 = not labelled, 1 = labelled but hidden,
2 = visible; `num_keypoints`: how many have v > 0; `bbox` x, y, width, height; `area`; `iscrowd` 0 or 1;
`segmentation`: polygons or run-length encoding, the RLE of crowds as {counts, size}) and `categories`
(`id`, `name`, `keypoints`: the names, `skeleton`: pairs of 1-based keypoint numbers). Every problem
names the file, the entry by its position and its id, and the field; ids must be unique and every
reference must resolve. Files made by other tools may state a `num_keypoints` that disagrees with the
labelled keypoints: TAO's BPNet uses the stated value (`nvidia_tao_tf1/cv/bpnet/dataio/coco_dataset.py`
picks main persons by it, `get_segmentation_masks` and `coco_converter.py` mask and skip persons by it),
so such an annotation is accepted with a warning naming the file, the entry and its id, and these steps
use the stated value too.
"""

import json
import logging
import math
from typing import Any, Dict, List

from tao_aml.steps.common import StepError
from tao_aml.steps.data.formats.listing import warn_listed

LOG = logging.getLogger("tao_aml.steps.data.formats.coco")

LISTS = ("images", "annotations", "categories")
IMAGE_KEYS = ("id", "file_name", "width", "height")
CATEGORY_KEYS = ("id", "name", "keypoints", "skeleton")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "bbox", "area", "iscrowd",
                   "segmentation")
VISIBILITY = (0, 1, 2)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


class _Entries:
    """Names entries in messages: `file: annotations[4] (id 17): field ...`."""

    def __init__(self, path: str, section: str) -> None:
        self.path = path
        self.section = section

    def fail(self, index: int, entry: Any, problem: str) -> StepError:
        ident = f" (id {entry['id']!r})" if isinstance(entry, dict) and "id" in entry else ""
        return StepError(f"{self.path}: {self.section}[{index}]{ident}: {problem}")

    def check(self, entries: List[Any], keys: tuple) -> Dict[Any, int]:
        """Every entry an object with `keys` and an integer id of its own; returns id -> position."""
        positions: Dict[Any, int] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise self.fail(index, entry, "is not an object")
            missing = [key for key in keys if key not in entry]
            if missing:
                raise self.fail(index, entry, "lacks {}".format(", ".join(missing)))
            if not _is_int(entry["id"]):
                raise self.fail(index, entry, "id must be a whole number")
            if entry["id"] in positions:
                raise self.fail(index, entry, "the same id as {}[{}]".format(self.section, positions[entry["id"]]))
            positions[entry["id"]] = index
        return positions


def _read(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except UnicodeDecodeError as err:
        raise StepError("{} is not UTF-8 text (byte {} of the file): COCO annotation files are JSON".format(
            path, err.start)) from None
    except ValueError as err:
        raise StepError("{} is not valid JSON: {}".format(path, err)) from None


def _check_categories(entries: _Entries, categories: List[Any]) -> Dict[int, int]:
    """id -> number of keypoints the category declares."""
    entries.check(categories, CATEGORY_KEYS)
    declared = {}
    for index, category in enumerate(categories):
        names = category["keypoints"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise entries.fail(index, category, "keypoints must be a non-empty list of keypoint names")
        if len(set(names)) != len(names):
            raise entries.fail(index, category, "keypoints names a keypoint twice")
        skeleton = category["skeleton"]
        if not isinstance(skeleton, list) or not all(
                isinstance(pair, list) and len(pair) == 2 and all(_is_int(p) and 1 <= p <= len(names) for p in pair)
                for pair in skeleton):
            raise entries.fail(index, category, "skeleton must be a list of [a, b] pairs of keypoint numbers "
                                                f"from 1 to {len(names)}")
        declared[category["id"]] = len(names)
    if not any(category["name"] == "person" for category in categories):
        raise StepError("{}: categories has no 'person' entry".format(entries.path))
    return declared


def _check_images(entries: _Entries, images: List[Any]) -> Dict[Any, int]:
    """id -> position."""
    positions = entries.check(images, IMAGE_KEYS)
    names: Dict[str, int] = {}
    for index, image in enumerate(images):
        name = image["file_name"]
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise entries.fail(index, image, f"file_name must be a file name without folders, got {name!r}")
        if name in names:
            raise entries.fail(index, image, f"file_name {name!r} is also images[{names[name]}]'s")
        names[name] = index
        for key in ("width", "height"):
            if not _is_int(image[key]) or image[key] < 1:
                raise entries.fail(index, image, f"{key} must be a whole number above 0, got {image[key]!r}")
    return positions


def _segmentation_problem(segmentation: Any) -> str:
    if isinstance(segmentation, list):
        if all(isinstance(poly, list) and len(poly) % 2 == 0 and all(_is_number(v) for v in poly)
               for poly in segmentation):
            return ""
        return "segmentation must be a list of polygons, each a list of x, y numbers"
    if isinstance(segmentation, dict):
        size = segmentation.get("size")
        if isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size) and \
                isinstance(segmentation.get("counts"), (list, str)):
            return ""
        return "segmentation must be run-length encoded as {counts, size: [height, width]}"
    return "segmentation must be a list of polygons or a run-length encoding"


def _annotation_problem(ann: Dict[str, Any], image_ids: Dict[Any, int], declared: Dict[int, int]) -> str:
    if ann["image_id"] not in image_ids:
        return "points at image_id {!r}, which is not in images".format(ann["image_id"])
    if ann["category_id"] not in declared:
        return "points at category_id {!r}, which is not in categories".format(ann["category_id"])
    expected = 3 * declared[ann["category_id"]]
    keypoints = ann["keypoints"]
    if not isinstance(keypoints, list) or len(keypoints) != expected:
        got = len(keypoints) if isinstance(keypoints, list) else type(keypoints).__name__
        return (f"keypoints must be a list of x, y, visibility triples: {expected} numbers for the "
                f"{expected // 3} keypoints category {ann['category_id']} declares, got {got}")
    if not all(_is_number(value) for value in keypoints):
        return "keypoints must hold numbers only"
    visibility = keypoints[2::3]
    wrong = [v for v in visibility if v not in VISIBILITY]
    if wrong:
        return f"keypoints has visibility {wrong[0]!r}; it must be 0, 1 or 2"
    if not _is_number(ann["num_keypoints"]):
        return f"num_keypoints must be a number, got {ann['num_keypoints']!r}"
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)) \
            or bbox[2] < 0 or bbox[3] < 0:
        return f"bbox must be [x, y, width, height] with width and height 0 or more, got {bbox!r}"
    if not _is_number(ann["area"]) or ann["area"] < 0:
        return f"area must be a number, 0 or more, got {ann['area']!r}"
    if ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], float):
        return f"iscrowd must be 0 or 1, got {ann['iscrowd']!r}"
    return _segmentation_problem(ann["segmentation"])


def load_keypoints(path: str) -> Dict[str, Any]:
    """Read and check a COCO keypoint file: its three lists, their entries, and the links between them."""
    data = _read(path)
    if not isinstance(data, dict):
        raise StepError("{} is not a COCO annotation file: the top level is not an object".format(path))
    missing = [key for key in LISTS if not isinstance(data.get(key), list)]
    if missing:
        raise StepError("{} is not a COCO keypoint file: missing or not a list: {}".format(path, ", ".join(missing)))
    declared = _check_categories(_Entries(path, "categories"), data["categories"])
    image_ids = _check_images(_Entries(path, "images"), data["images"])
    annotations = _Entries(path, "annotations")
    annotations.check(data["annotations"], ANNOTATION_KEYS)
    disagreeing = []
    for index, ann in enumerate(data["annotations"]):
        problem = _annotation_problem(ann, image_ids, declared)
        if problem:
            raise annotations.fail(index, ann, problem)
        labelled = sum(1 for v in ann["keypoints"][2::3] if v > 0)
        if ann["num_keypoints"] != labelled:
            disagreeing.append("{}: annotations[{}] (id {!r}): num_keypoints is {!r} but {} keypoints are labelled "
                               "(v > 0)".format(path, index, ann["id"], ann["num_keypoints"], labelled))
    warn_listed(LOG, "annotations whose num_keypoints disagrees with their keypoints; TAO uses the stated "
                     "num_keypoints (bpnet coco_dataset.py), and so do these steps", disagreeing)
    return data
