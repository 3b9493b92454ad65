"""A tiny COCO 2017 person-keypoint look-alike: images, annotation files, folders and zips.

Image i of a split cycles through what the real files hold:
  i % 4 == 0  no annotation at all (an image without persons)
  i % 4 == 1  one person with 10 labelled keypoints (the only kind TAO trains around)
  i % 4 == 2  one person with no keypoints plus a crowd region (RLE), both masked out by TAO
  i % 4 == 3  two persons: 3 and 6 labelled keypoints
So images 1, 3, 5, 7, ... qualify for INT8 calibration (a person with at least 5 keypoints).

    root = make_coco(tmp_path / "coco", train=8, val=4)       # train2017/, val2017/, annotations/
    zips = make_coco_zips(server.root, train=8, val=4)        # the three COCO download zips
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

SIZE = (64, 48)


def file_name(split: str, index: int) -> str:
    # COCO names images by id, zero-padded to 12 digits; ids differ between splits.
    return f"{(1000 if split == 'val' else 0) + index + 1:012d}.jpg"


def person(ann_id: int, image_id: int, keypoints: int, crowd: bool = False) -> dict[str, Any]:
    points = []
    for joint in range(17):
        points += [10 + joint, 10 + joint, 2] if joint < keypoints else [0, 0, 0]
    segmentation: Any = (
        {"counts": [0, 600, SIZE[0] * SIZE[1] - 600], "size": [SIZE[1], SIZE[0]]} if crowd
        else [[5, 5, 45, 5, 45, 40, 5, 40]]
    )
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": int(crowd), "area": 1400.0,
            "bbox": [5, 5, 40, 35], "num_keypoints": keypoints, "keypoints": points,
            "segmentation": segmentation}


def annotations(split: str, count: int) -> dict[str, Any]:
    images, anns = [], []
    for index in range(count):
        image_id = int(file_name(split, index)[:-4])
        images.append({"id": image_id, "file_name": file_name(split, index), "width": SIZE[0], "height": SIZE[1]})
        kind = index % 4
        people = {0: [], 1: [(10, False)], 2: [(0, False), (0, True)], 3: [(3, False), (6, False)]}[kind]
        for keypoints, crowd in people:
            anns.append(person(len(anns) + 1 + 10000 * (split == "val"), image_id, keypoints, crowd))
    categories = [{"id": 1, "name": "person", "supercategory": "person",
                   "keypoints": [f"joint_{j}" for j in range(17)], "skeleton": [[16, 14], [14, 12]]}]
    return {"info": {"description": "tiny COCO"}, "images": images, "annotations": anns, "categories": categories}


def make_coco(root: Path, train: int = 8, val: int = 4) -> Path:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("val", val)):
        folder = root / f"{split}2017"
        folder.mkdir(exist_ok=True)
        for index in range(count):
            Image.new("RGB", SIZE, (index * 20 % 255, 80, 120)).save(folder / file_name(split, index))
        (root / "annotations" / f"person_keypoints_{split}2017.json").write_text(
            json.dumps(annotations(split, count)))
    return root


def make_coco_zips(folder: Path, train: int = 8, val: int = 4) -> dict[str, Path]:
    """train2017.zip, val2017.zip and annotations_trainval2017.zip, laid out as cocodataset.org's."""
    root = make_coco(folder / "unzipped", train, val)
    zips = {}
    for name, members in (("train2017.zip", ["train2017"]), ("val2017.zip", ["val2017"]),
                          ("annotations_trainval2017.zip", ["annotations"])):
        zips[name] = folder / name
        with zipfile.ZipFile(zips[name], "w") as archive:
            for member in members:
                for path in sorted((root / member).iterdir()):
                    archive.write(path, f"{member}/{path.name}")
    return zips
