"""The COCO data steps on a tiny generated keypoint set: subset and checks, calibration sampling.

The annotation files' field checks are in tests/test_format_coco.py.
"""

import json
import logging
import random
from pathlib import Path

import pytest

from coco_fixtures import file_name, make_coco
from tao_aml.steps.data import coco_calibration, coco_subset


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_coco(tmp_path / "coco", train=8, val=4)


def subset(root: Path, out: Path, *extra: str) -> int:
    return coco_subset.main(["--coco_root", str(root), "--output_dir", str(out), *extra])


def calibrate(root: Path, annotations: Path, out: Path, *extra: str) -> int:
    return coco_calibration.main(["--coco_root", str(root), "--annotations", str(annotations),
                                  "--output_dir", str(out), *extra])


def test_subset_keeps_the_first_images_and_their_annotations(root: Path, tmp_path: Path) -> None:
    assert subset(root, tmp_path / "out", "--limit", "3") == 0
    train = json.loads((tmp_path / "out" / "annotations" / "person_keypoints_train2017.json").read_text())
    assert [image["file_name"] for image in train["images"]] == [file_name("train", i) for i in range(3)]
    assert sorted({ann["image_id"] for ann in train["annotations"]}) == [2, 3]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["splits"]["train"] == {"images": 3, "persons": 2, "persons_with_keypoints": 1,
                                         "crowd_annotations": 1}
    assert summary["splits"]["val"]["images"] == 3


def test_subset_without_limit_keeps_everything(root: Path, tmp_path: Path) -> None:
    assert subset(root, tmp_path / "out") == 0
    val = json.loads((tmp_path / "out" / "annotations" / "person_keypoints_val2017.json").read_text())
    assert val == json.loads((root / "annotations" / "person_keypoints_val2017.json").read_text())


def test_a_listed_image_missing_on_disk_is_refused(root: Path, tmp_path: Path, caplog) -> None:
    (root / "train2017" / file_name("train", 5)).unlink()
    assert subset(root, tmp_path / "out") == 2
    assert f"lists 1 image(s) missing from {root / 'train2017'}, e.g. {file_name('train', 5)}" in caplog.text


def test_a_missing_split_folder_is_named(root: Path, tmp_path: Path, caplog) -> None:
    (root / "val2017").rename(root / "elsewhere")
    assert subset(root, tmp_path / "out") == 2
    assert "has no val2017/ folder" in caplog.text


def test_calibration_picks_well_labelled_images_reproducibly(root: Path, tmp_path: Path) -> None:
    assert calibrate(root, root, tmp_path / "a", "--num_images", "2", "--seed", "7") == 0
    assert calibrate(root, root, tmp_path / "b", "--num_images", "2", "--seed", "7") == 0
    first = json.loads((tmp_path / "a" / "calibration.json").read_text())
    assert first == json.loads((tmp_path / "b" / "calibration.json").read_text())
    # Images 1, 3, 5, 7 have a person with >= 5 keypoints; 0, 2, 4, 6 do not (none, 0 + crowd).
    assert first["qualifying_images"] == 4
    assert set(first["images"]) <= {file_name("train", i) for i in (1, 3, 5, 7)} and len(first["images"]) == 2
    assert sorted(p.name for p in (tmp_path / "a" / "images").iterdir()) == first["images"]
    # Another seed draws from the same qualifying images, in a documented way.
    assert calibrate(root, root, tmp_path / "c", "--num_images", "2", "--seed", "8") == 0
    qualifying = sorted(file_name("train", i) for i in (1, 3, 5, 7))
    other = json.loads((tmp_path / "c" / "calibration.json").read_text())["images"]
    assert other == sorted(random.Random(8).sample(qualifying, 2))


def test_calibration_takes_all_when_fewer_qualify(root: Path, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    assert calibrate(root, root, tmp_path / "out") == 0
    assert len(list((tmp_path / "out" / "images").iterdir())) == 4
    assert "only 4 images qualify for calibration; using all of them, not 2000" in caplog.text


def test_calibration_with_no_qualifying_image_is_refused(root: Path, tmp_path: Path, caplog) -> None:
    assert calibrate(root, root, tmp_path / "out", "--min_keypoints", "11") == 2
    assert "no image has a person with at least 11 labelled keypoints" in caplog.text


def test_calibration_checks_every_chosen_image_before_copying_any(root: Path, tmp_path: Path, caplog) -> None:
    out = tmp_path / "out"
    assert calibrate(root, root, out) == 0
    (root / "train2017" / file_name("train", 7)).unlink()
    assert calibrate(root, root, out) == 2
    assert f"names 1 image(s) not in {root / 'train2017'}, e.g. {file_name('train', 7)}" in caplog.text
    assert not (out / "calibration.json").exists(), "a failed run leaves no record, not even an earlier one"
    assert not (out / ".images.partial").exists()


def test_calibration_rerun_replaces_the_images(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert calibrate(root, root, out, "--num_images", "2", "--seed", "1") == 0
    assert calibrate(root, root, out, "--num_images", "1", "--seed", "1") == 0
    chosen = json.loads((out / "calibration.json").read_text())["images"]
    assert sorted(p.name for p in (out / "images").iterdir()) == chosen and len(chosen) == 1
    assert sorted(p.name for p in out.iterdir()) == ["calibration.json", "images"]


def test_subset_removes_an_earlier_summary_when_it_fails(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert subset(root, out) == 0
    (root / "val2017" / file_name("val", 1)).unlink()
    assert subset(root, out) == 2
    assert not (out / "summary.json").exists()
