"""KITTI label folders are checked field by field (formats/kitti.py) before TAO's dataset_convert reads them.

The bad-input table is written from the KITTI devkit's label format as TAO 5.0's converter reads it
(`kitti_converter_lib.py`): 15 fields per object (class, truncation 0..1, occlusion 0/1/2/3, alpha,
x1 y1 x2 y2 with x1 < x2 and y1 < y2, three dimensions, three location values, rotation_y), one
label file per image, plain text.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from tao_aml.steps.common import StepError
from tao_aml.steps.detectnet_v2 import dataset_convert
from tao_aml.steps.formats import kitti

GOOD = "face 0.00 0 0.00 10.00 20.00 50.50 60.25 0.00 0.00 0.00 0.00 0.00 0.00 0.00"
TAIL = "0.00 0.00 0.00 0.00 0.00 0.00 0.00"


def make_kitti(root: Path, labels: dict[str, str | bytes], images: tuple[str, ...] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem in images if images is not None else tuple(name[:-4] for name in labels):
        Image.new("RGB", (64, 48)).save(root / "images" / f"{stem}.png")
    for name, text in labels.items():
        path = root / "labels" / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return root


def test_a_good_folder_is_counted(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "k", {"a.txt": f"{GOOD}\n{GOOD.replace('face', 'mask')}\n", "b.txt": ""})
    assert kitti.check_folder(str(root), ".png") == {"images": 2, "objects": 2,
                                                     "objects_per_class": {"face": 1, "mask": 1}}


# label files (name -> text), images (stems; None: one per label file), words of the error
BAD_FOLDERS = [
    ("fourteen-fields", {"a.txt": f"{GOOD}\nface 0.00 0 0.00 1 2 3 4 0 0 0 0 0 0\n"}, None,
     ["labels/a.txt:2:", "expected 15 fields (class truncation occlusion alpha x1 y1 x2 y2", "got 14"]),
    ("a-score-column", {"a.txt": f"{GOOD} 0.98\n"}, None, ["labels/a.txt:1:", "got 16"]),
    ("truncation-above-1", {"a.txt": f"face 1.50 0 0.00 1 2 3 4 {TAIL}\n"}, None,
     ["labels/a.txt:1:", "field truncation is 1.50; it must be between 0 and 1"]),
    ("occlusion-4", {"a.txt": f"face 0.00 4 0.00 1 2 3 4 {TAIL}\n"}, None,
     ["labels/a.txt:1:", "field occlusion is 4; it must be 0, 1, 2 or 3"]),
    ("occlusion-fractional", {"a.txt": f"face 0.00 0.5 0.00 1 2 3 4 {TAIL}\n"}, None, ["field occlusion is 0.5"]),
    ("x1-not-a-number", {"a.txt": f"face 0.00 0 0.00 left 2 3 4 {TAIL}\n"}, None,
     ["labels/a.txt:1:", "field x1 is not a number: 'left'"]),
    ("y2-nan", {"a.txt": f"face 0.00 0 0.00 1 2 3 nan {TAIL}\n"}, None, ["field y2 is not a number: 'nan'"]),
    ("rotation-infinite", {"a.txt": "face 0.00 0 0.00 1 2 3 4 0 0 0 0 0 0 inf\n"}, None,
     ["field rotation_y is not a number: 'inf'"]),
    ("box-inverted", {"a.txt": f"face 0.00 0 0.00 30 2 10 4 {TAIL}\n"}, None,
     ["labels/a.txt:1:", "the box is empty or inverted (x1 30, y1 2, x2 10, y2 4)", "TAO would drop it silently"]),
    ("box-without-height", {"a.txt": f"face 0.00 0 0.00 1 4 3 4 {TAIL}\n"}, None, ["the box is empty or inverted"]),
    ("box-left-of-the-image", {"a.txt": f"face 0.00 0 0.00 -5 2 3 4 {TAIL}\n"}, None,
     ["labels/a.txt:1:", "the box starts outside the image (x1 -5, y1 2)"]),
    ("not-utf8", {"a.txt": f"{GOOD}\ncaf\xe9 0.00 0 0.00 1 2 3 4 {TAIL}\n".encode("latin-1")}, None,
     ["labels/a.txt:2:", "not UTF-8 text"]),
    ("image-without-label", {"a.txt": GOOD}, ("a", "b"), ["images/b.png has no label file", "labels/b.txt"]),
    ("label-without-image", {"a.txt": GOOD, "c.txt": GOOD}, ("a",), ["labels/c.txt has no image", "images/c.png"]),
    ("not-a-label-file", {"a.txt": GOOD, "notes.md": "x"}, ("a",), ["labels/notes.md is not a .txt label file"]),
]


@pytest.mark.parametrize(("labels", "images", "words"), [case[1:] for case in BAD_FOLDERS],
                         ids=[case[0] for case in BAD_FOLDERS])
def test_dataset_convert_refuses_bad_labels_before_tao_or_any_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    labels: dict[str, str | bytes], images: tuple[str, ...] | None, words: list[str],
) -> None:
    root = make_kitti(tmp_path / "kitti", labels, images)
    out = tmp_path / "out"
    code = dataset_convert.main(["--spec_file", "facenet_tfrecords_kitti_train.txt", "--kitti_dir", str(root),
                                 "--output_dir", str(out)])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"KITTI folder {root} has 1 problem(s):"), errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert not out.exists(), "nothing is written and TAO does not start"


def test_many_problems_are_listed_up_to_ten_then_counted(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "k", {f"{i:02d}.txt": f"face 0.00 9 0.00 1 2 3 4 {TAIL}\n" for i in range(13)})
    with pytest.raises(StepError) as refused:
        kitti.check_folder(str(root), ".png")
    lines = str(refused.value).splitlines()
    assert lines[0] == f"KITTI folder {root} has 13 problem(s):"
    assert lines[1].endswith("labels/00.txt:1: field occlusion is 9; it must be 0, 1, 2 or 3")
    assert len(lines) == 12 and lines[-1] == "  ... and 3 more"


def test_a_folder_without_images_is_refused(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "k", {}, ())
    with pytest.raises(StepError, match="holds no .png images"):
        kitti.check_folder(str(root), ".png")


def test_a_single_line_is_parsed_with_its_box(tmp_path: Path) -> None:
    assert kitti.parse_line("x.txt", 1, GOOD) == kitti.KittiObject("face", (10.0, 20.0, 50.5, 60.25))
