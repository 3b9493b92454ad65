"""COCO keypoint files are checked field by field (formats/coco.py) by every step that reads them.

The bad-input table is written from cocodataset.org's data format: `images` (id, file_name, width,
height), `annotations` (id, image_id, category_id, keypoints as x, y, v triples with v 0/1/2,
num_keypoints a number (TAO uses it even where it disagrees with the labelled keypoints:
tests/test_real_world_data.py), bbox, area, iscrowd 0/1, segmentation as polygons or RLE) and
`categories` (id, name, keypoints, skeleton of 1-based keypoint pairs). Each case breaks the
validation file (so that a step which wrote the training file first would be caught) or the training
file (which calibration reads).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from coco_fixtures import file_name, make_coco
from tao_aml.steps.data import coco_calibration, coco_subset
from tao_aml.steps.data.formats import coco


def path_of(root: Path, split: str) -> Path:
    return root / "annotations" / f"person_keypoints_{split}2017.json"


def edit(root: Path, split: str, change) -> None:
    path = path_of(root, split)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def first(section: str, **fields):
    return lambda data: data[section][0].update(fields)


def drop(section: str, key: str, index: int = 0):
    return lambda data: data[section][index].pop(key)


def same_as_first(section: str, key: str):
    return lambda data: data[section][1].update({key: data[section][0][key]})


def replace(key: str, value):
    return lambda data: data.update({key: value})


def keypoints(change):
    def apply(data):
        points = data["annotations"][0]["keypoints"]
        change(points)

    return apply


# Words name entries by id: in the fixture, image i of a split has id 1 + i (train) or 1001 + i (val);
# annotations[0] (id 1 or 10001) is a person with 10 labelled keypoints, annotations[2] a crowd region (RLE).
IDS = {
    split: {"image0": first_id, "image1": first_id + 1, "ann0": first_ann, "ann2": first_ann + 2,
            "file0": file_name(split, 0)}
    for split, first_id, first_ann in (("train", 1, 1), ("val", 1001, 10001))
}
BAD_FILES = [
    ("top-level-list", lambda d: None, "[]", ["the top level is not an object"]),
    ("invalid-json", lambda d: None, '{"images": [', ["is not valid JSON", "line 1 column 13"]),
    ("not-utf8", lambda d: None, b'{"images": "caf\xe9"}', ["is not UTF-8 text (byte 15 of the file)"]),
    ("images-missing", lambda d: d.pop("images"), None,
     ["is not a COCO keypoint file", "missing or not a list: images"]),
    ("categories-not-a-list", replace("categories", {"id": 1}), None, ["missing or not a list: categories"]),
    ("category-without-keypoints", drop("categories", "keypoints"), None, ["categories[0] (id 1): lacks keypoints"]),
    ("category-without-skeleton", drop("categories", "skeleton"), None, ["categories[0] (id 1): lacks skeleton"]),
    ("category-keypoints-empty", first("categories", keypoints=[]), None,
     ["categories[0] (id 1): keypoints must be a non-empty list of keypoint names"]),
    ("category-keypoint-named-twice", lambda d: d["categories"][0]["keypoints"].__setitem__(1, "joint_0"), None,
     ["categories[0] (id 1): keypoints names a keypoint twice"]),
    ("skeleton-beyond-the-keypoints", first("categories", skeleton=[[16, 18]]), None,
     ["categories[0] (id 1): skeleton must be a list of [a, b] pairs of keypoint numbers from 1 to 17"]),
    ("skeleton-zero-based", first("categories", skeleton=[[0, 1]]), None, ["from 1 to 17"]),
    ("no-person-category", first("categories", name="dog"), None, ["categories has no 'person' entry"]),
    ("category-id-not-a-number", first("categories", id="1"), None, ["categories[0] (id '1'): id must be a whole"]),
    ("image-not-an-object", lambda d: d["images"].__setitem__(0, "x.jpg"), None, ["images[0]: is not an object"]),
    ("image-without-file-name", drop("images", "file_name"), None, ["images[0] (id {image0}): lacks file_name"]),
    ("image-id-twice", same_as_first("images", "id"), None, ["images[1] (id {image0}): the same id as images[0]"]),
    ("image-id-a-string", first("images", id="x"), None, ["images[0] (id 'x'): id must be a whole number"]),
    ("image-width-zero", first("images", width=0), None,
     ["images[0] (id {image0}): width must be a whole number above 0"]),
    ("image-height-fractional", first("images", height=47.5), None, ["images[0] (id {image0}): height must be"]),
    ("file-name-with-a-folder", first("images", file_name="../x.jpg"), None,
     ["images[0] (id {image0}): file_name must be a file name without folders, got '../x.jpg'"]),
    ("file-name-twice", same_as_first("images", "file_name"), None,
     ["images[1] (id {image1}): file_name '{file0}' is also images[0]'s"]),
    ("annotation-not-an-object", lambda d: d["annotations"].__setitem__(0, []), None,
     ["annotations[0]: is not an object"]),
    ("annotation-without-id", drop("annotations", "id"), None, ["annotations[0]: lacks id"]),
    ("annotation-id-twice", same_as_first("annotations", "id"), None,
     ["annotations[1] (id {ann0}): the same id as annotations[0]"]),
    ("annotation-of-an-unknown-image", first("annotations", image_id=999), None,
     ["annotations[0] (id {ann0}): points at image_id 999, which is not in images"]),
    ("annotation-of-an-unknown-category", first("annotations", category_id=7), None,
     ["annotations[0] (id {ann0}): points at category_id 7, which is not in categories"]),
    ("keypoints-one-short", keypoints(lambda p: p.pop()), None,
     ["annotations[0] (id {ann0}): keypoints must be a list of x, y, visibility triples",
      "51 numbers for the 17 keypoints category 1 declares, got 50"]),
    ("keypoints-not-a-list", first("annotations", keypoints="10 10 2"), None, ["51 numbers", "got str"]),
    ("keypoint-a-string", keypoints(lambda p: p.__setitem__(0, "10")), None,
     ["annotations[0] (id {ann0}): keypoints must hold numbers only"]),
    ("visibility-3", keypoints(lambda p: p.__setitem__(2, 3)), None,
     ["annotations[0] (id {ann0}): keypoints has visibility 3; it must be 0, 1 or 2"]),
    ("num-keypoints-a-string", first("annotations", num_keypoints="4"), None,
     ["annotations[0] (id {ann0}): num_keypoints must be a number, got '4'"]),
    ("bbox-three-values", first("annotations", bbox=[5, 5, 40]), None,
     ["annotations[0] (id {ann0}): bbox must be [x, y, width, height]"]),
    ("bbox-negative-width", first("annotations", bbox=[5, 5, -40, 35]), None, ["bbox must be", "[5, 5, -40, 35]"]),
    ("area-negative", first("annotations", area=-1.0), None, ["annotations[0] (id {ann0}): area must be a number, 0"]),
    ("iscrowd-2", first("annotations", iscrowd=2), None, ["annotations[0] (id {ann0}): iscrowd must be 0 or 1, got 2"]),
    ("segmentation-missing", drop("annotations", "segmentation"), None,
     ["annotations[0] (id {ann0}): lacks segmentation"]),
    ("polygon-with-an-odd-count", first("annotations", segmentation=[[5, 5, 45]]), None,
     ["annotations[0] (id {ann0}): segmentation must be a list of polygons"]),
    ("rle-without-size", lambda d: d["annotations"][2]["segmentation"].pop("size"), None,
     ["annotations[2] (id {ann2}): segmentation must be run-length encoded"]),
]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "coco", train=8, val=4)


def outcome(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    return errors[0]


def break_file(root: Path, split: str, change, text) -> Path:
    if text is None:
        edit(root, split, change)
    elif isinstance(text, bytes):
        path_of(root, split).write_bytes(text)
    else:
        path_of(root, split).write_text(text)
    return path_of(root, split)


@pytest.mark.parametrize(("change", "text", "words"), [case[1:] for case in BAD_FILES],
                         ids=[case[0] for case in BAD_FILES])
def test_coco_subset_refuses_a_bad_file_and_writes_nothing(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    change, text, words: list[str],
) -> None:
    path = break_file(root, "val", change, text)
    out = tmp_path / "out"
    assert coco_subset.main(["--coco_root", str(root), "--output_dir", str(out)]) == 2
    message = outcome(caplog, capsys)
    assert message.startswith(str(path)), message
    for word in words:
        assert word.format(**IDS["val"]) in message, (word, message)
    # The training file is fine and comes first: it must not have been written either.
    assert not out.exists() or [p.name for p in out.rglob("*")] == []


@pytest.mark.parametrize(("change", "text", "words"), [case[1:] for case in BAD_FILES[::3]],
                         ids=[case[0] for case in BAD_FILES[::3]])
def test_coco_calibration_refuses_a_bad_file_and_copies_nothing(
    root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    change, text, words: list[str],
) -> None:
    path = break_file(root, "train", change, text)
    out = tmp_path / "out"
    assert coco_calibration.main(["--coco_root", str(root), "--annotations", str(root), "--output_dir", str(out)]) == 2
    message = outcome(caplog, capsys)
    assert message.startswith(str(path)), message
    for word in words:
        assert word.format(**IDS["train"]) in message, (word, message)
    assert not out.exists() or [p.name for p in out.rglob("*")] == []


def test_the_fixture_and_its_subsets_pass(root: Path) -> None:
    for split in ("train", "val"):
        data = coco.load_keypoints(str(path_of(root, split)))
        assert data["categories"][0]["name"] == "person"
