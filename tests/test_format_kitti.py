"""KITTI label folders are checked (formats/kitti.py) the way TAO's dataset_convert reads them, before it does.

The tables follow TAO 5.0's converter (`nvidia_tao_tf1/cv/detectnet_v2/dataio/kitti_converter_lib.py`,
`_add_targets`): it asserts 15 fields per object, reads every field after the class with float(),
truncates the box corners with int() and checks no range, and skips (debug log only) an object whose
int(x1) < int(x2) and int(y1) < int(y2) fails. What it refuses is refused here with file and line; what
it accepts is accepted; what it skips silently is accepted with a warning (file and line). Real KITTI
lines (NVIDIA's own test labels, DontCare regions) are in tests/test_real_world_data.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PIL import Image

from tao_aml.steps.common import StepError
from tao_aml.steps.data.formats import kitti
from tao_aml.steps.detectnet_v2 import dataset_convert

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
    assert kitti.check_folder(str(root), ".png") == {"images": 2, "objects": 2, "skipped_by_tao": 0,
                                                     "objects_per_class": {"face": 1, "mask": 1}}


# Lines TAO's converter accepts although they are outside the KITTI devkit's ranges: (name, line).
ACCEPTED = [
    ("truncation-above-1", f"face 1.50 0 0.00 1 2 3 4 {TAIL}"),
    ("occlusion-4", f"face 0.00 4 0.00 1 2 3 4 {TAIL}"),
    ("occlusion-fractional", f"face 0.00 0.5 0.00 1 2 3 4 {TAIL}"),
    ("rotation-infinite", "face 0.00 0 0.00 1 2 3 4 0 0 0 0 0 0 inf"),
    ("alpha-nan", f"face 0.00 0 nan 1 2 3 4 {TAIL}"),
    ("box-left-of-the-image", f"face 0.00 0 0.00 -5 2 3 4 {TAIL}"),
    ("dontcare", "DontCare -1 -1 -10 503.89 169.71 590.61 190.13 -1 -1 -1 -1000 -1000 -1000 -10"),
    ("exponents-and-signs", "face 0 0 -0. 1e1 +2 3.5E1 40 0 0 0 0 0 0 0"),
]


@pytest.mark.parametrize("line", [case[1] for case in ACCEPTED], ids=[case[0] for case in ACCEPTED])
def test_lines_taos_converter_accepts_are_accepted(tmp_path: Path, line: str) -> None:
    root = make_kitti(tmp_path / "k", {"a.txt": f"{line}\n"})
    found = kitti.check_folder(str(root), ".png")
    assert (found["objects"], found["skipped_by_tao"]) == (1, 0)


# Objects TAO's converter skips silently: (name, line, words of the warning).
SKIPPED = [
    ("box-inverted", f"face 0.00 0 0.00 30 2 10 4 {TAIL}", ["a.txt:2: face box (30 2 10 4) is empty or inverted"]),
    ("box-without-height", f"face 0.00 0 0.00 1 4 3 4 {TAIL}", ["a.txt:2:", "empty or inverted"]),
    ("under-one-pixel", f"face 0.00 0 0.00 10.2 4 10.9 8 {TAIL}",
     ["a.txt:2: face box (10.2 4 10.9 8) is under one whole pixel after TAO's integer truncation "
      "(int: x1 10, y1 4, x2 10, y2 8); TAO skips it silently"]),
]


@pytest.mark.parametrize(("line", "words"), [case[1:] for case in SKIPPED], ids=[case[0] for case in SKIPPED])
def test_objects_tao_skips_silently_are_warned_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str, words: list[str],
) -> None:
    root = make_kitti(tmp_path / "k", {"a.txt": f"{GOOD}\n{line}\n"})
    found = kitti.check_folder(str(root), ".png")
    assert (found["objects"], found["skipped_by_tao"]) == (1, 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("objects TAO's converter would skip silently (1):")
    for word in words:
        assert word in warnings[0], (word, warnings[0])


# label files (name -> text), images (stems; None: one per label file), words of the error
BAD_FOLDERS = [
    ("fourteen-fields", {"a.txt": f"{GOOD}\nface 0.00 0 0.00 1 2 3 4 0 0 0 0 0 0\n"}, None,
     ["labels/a.txt:2:", "expected 15 fields (class truncation occlusion alpha x1 y1 x2 y2", "got 14"]),
    ("a-score-column", {"a.txt": f"{GOOD} 0.98\n"}, None, ["labels/a.txt:1:", "got 16"]),
    ("x1-not-a-number", {"a.txt": f"face 0.00 0 0.00 left 2 3 4 {TAIL}\n"}, None,
     ["labels/a.txt:1:", "field x1 is not a number: 'left'"]),
    ("a-comma-for-a-point", {"a.txt": f"face 0,5 0 0.00 1 2 3 4 {TAIL}\n"}, None,
     ["field truncation is not a number: '0,5'"]),
    ("y2-nan", {"a.txt": f"face 0.00 0 0.00 1 2 3 nan {TAIL}\n"}, None,
     ["labels/a.txt:1:", "field y2 is 'nan'; TAO truncates box corners with int(), which stops on it"]),
    ("x2-infinite", {"a.txt": f"face 0.00 0 0.00 1 2 inf 4 {TAIL}\n"}, None, ["field x2 is 'inf'"]),
    ("occlusion-nan", {"a.txt": f"face 0.00 nan 0.00 1 2 3 4 {TAIL}\n"}, None,
     ["field occlusion is 'nan'; TAO reads it with int()"]),
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
    root = make_kitti(tmp_path / "k", {f"{i:02d}.txt": f"face 0.00 x 0.00 1 2 3 4 {TAIL}\n" for i in range(13)})
    with pytest.raises(StepError) as refused:
        kitti.check_folder(str(root), ".png")
    lines = str(refused.value).splitlines()
    assert lines[0] == f"KITTI folder {root} has 13 problem(s):"
    assert lines[1].endswith("labels/00.txt:1: field occlusion is not a number: 'x'")
    assert len(lines) == 12 and lines[-1] == "  ... and 3 more"


def test_a_folder_without_images_is_refused(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "k", {}, ())
    with pytest.raises(StepError, match="holds no .png images"):
        kitti.check_folder(str(root), ".png")


def test_a_single_line_is_parsed_with_its_box(tmp_path: Path) -> None:
    found = kitti.parse_line("x.txt", 3, GOOD.replace("face", "Face"))
    assert (found.line, found.class_name, found.box, found.tao_class) == (3, "Face", (10.0, 20.0, 50.5, 60.25), "face")
    assert found.tokens == tuple(GOOD.replace("face", "Face").split())


def test_class_names_with_capitals_are_refused_for_specs() -> None:
    kitti.check_class_names(["car", "traffic_sign", "ärger"])
    with pytest.raises(StepError, match=r"class name\(s\) Car, Pedestrian have capitals: TAO reads KITTI classes "
                                        r"lower-cased .* write them in lower case \(car, pedestrian\)"):
        kitti.check_class_names(["Car", "Pedestrian", "van"])
