"""WIDER FACE annotation files are checked field by field (formats/wider.py), by the converter step too.

The bad-input table is written from the format (WIDER FACE readme): an image path line, a face count,
then ten numbers per face `x1 y1 w h blur expression illumination invalid occlusion pose` with blur
0-2, expression 0-1, illumination 0-1, invalid 0-1, occlusion 0-2, pose 0-1; UTF-8 text.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tao_aml.steps.common import StepError
from tao_aml.steps.data import wider_to_kitti as w2k
from tao_aml.steps.data.formats import wider
from wider_fixtures import SplitPaths, make_split, quirky_images

FACE = "1 2 3 4 0 0 0 0 0 0"


def write(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "wider.txt"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> SplitPaths:
    return make_split(tmp_path_factory.mktemp("wider"), "train", quirky_images())


def test_parse_reads_counts_flags_and_the_ten_zeros_line(quirky: SplitPaths) -> None:
    records = wider.parse_annotations(str(quirky.annotations))
    assert [record.rel_path for record in records] == [image.rel_path for image in quirky_images()]
    # Path lines: Parade has 7 faces, Handshaking 2, the zero-face image one line of zeros.
    assert [record.line for record in records] == [1, 10, 14, 17, 20]
    assert records[0].faces[0] == wider.Face(100, 50, 200, 100, False)
    assert [face.invalid for face in records[0].faces] == [False, False, True, False, False, False, False]
    assert records[2].faces == ()


@pytest.mark.parametrize("text", [
    "a/x.jpg\n0\nb/y.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n\n",  # a zero count without the zeros line
    "a/x.jpg\r\n0\r\n0 0 0 0 0 0 0 0 0 0 \r\nb/y.jpg\r\n1\r\n1 2 3 4 0 0 0 0 0 0\r\n",  # Windows line ends
    "\ufeffa/x.jpg\n0\nb/y.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n",  # a UTF-8 byte order mark
    "a/x.jpg\n0\nb/y.jpg\n1\n1 2 0 4 2 1 1 1 2 1\n",  # a zero width (real files have them) and the top values
])
def test_parse_accepts_what_the_real_files_hold(tmp_path: Path, text: str) -> None:
    records = wider.parse_annotations(write(tmp_path, text))
    assert [(record.rel_path, len(record.faces)) for record in records] == [("a/x.jpg", 0), ("b/y.jpg", 1)]


# text of the annotation file, the words the error must hold (file:line, field)
BAD_ANNOTATIONS = [
    ("count-not-a-number", "a/x.jpg\nabc\n", ["wider.txt:2:", "number of faces of a/x.jpg", "got 'abc'"]),
    ("count-negative", "a/x.jpg\n-1\n", ["wider.txt:2:", "a whole number, 0 or more", "got '-1'"]),
    ("count-fractional", "a/x.jpg\n1.5\n" + FACE + "\n", ["wider.txt:2:", "got '1.5'"]),
    ("nine-fields", "a/x.jpg\n1\n1 2 3 4 0 0 0 0 0\n",
     ["wider.txt:3:", "expected 10 numbers (x1 y1 w h blur expression illumination invalid occlusion pose)",
      "got 9 field(s)"]),
    ("eleven-fields", f"a/x.jpg\n1\n{FACE} 0\n", ["wider.txt:3:", "got 11 field(s)"]),
    ("height-not-a-number", "a/x.jpg\n1\n1 2 3 h 0 0 0 0 0 0\n", ["wider.txt:3:", "field h is not a number: 'h'"]),
    ("x1-nan", "a/x.jpg\n1\nnan 2 3 4 0 0 0 0 0 0\n", ["wider.txt:3:", "field x1 is not a number: 'nan'"]),
    ("width-infinite", "a/x.jpg\n1\n1 2 inf 4 0 0 0 0 0 0\n", ["wider.txt:3:", "field w is not a number: 'inf'"]),
    ("width-negative", "a/x.jpg\n1\n1 2 -3 4 0 0 0 0 0 0\n", ["wider.txt:3:", "field w is negative (-3)"]),
    ("height-negative", "b/y.jpg\n0\na/x.jpg\n2\n" + FACE + "\n1 2 3 -4 0 0 0 0 0 0\n",
     ["wider.txt:6:", "field h is negative (-4)"]),
    ("blur-3", "a/x.jpg\n1\n1 2 3 4 3 0 0 0 0 0\n", ["wider.txt:3:", "field blur is 3", "defines 0, 1, 2 only"]),
    ("expression-2", "a/x.jpg\n1\n1 2 3 4 0 2 0 0 0 0\n", ["wider.txt:3:", "field expression is 2", "0, 1 only"]),
    ("illumination-negative", "a/x.jpg\n1\n1 2 3 4 0 0 -1 0 0 0\n", ["wider.txt:3:", "field illumination is -1"]),
    ("invalid-2", "a/x.jpg\n1\n1 2 3 4 0 0 0 2 0 0\n", ["wider.txt:3:", "field invalid is 2"]),
    ("occlusion-fractional", "a/x.jpg\n1\n1 2 3 4 0 0 0 0 1.5 0\n", ["wider.txt:3:", "field occlusion is 1.5"]),
    ("pose-7", "a/x.jpg\n1\n1 2 3 4 0 0 0 0 0 7\n", ["wider.txt:3:", "field pose is 7"]),
    ("count-missing", "a/x.jpg\n", ["wider.txt:1:", "file ends after image path 'a/x.jpg'", "count is missing"]),
    ("fewer-faces-than-counted", f"a/x.jpg\n2\n{FACE}\n",
     ["wider.txt:3:", "file ends after 1 of the 2 faces of a/x.jpg (count on line 2)"]),
    ("more-faces-than-counted", f"a/x.jpg\n1\n{FACE}\n5 6 7 8 0 0 0 0 0 0\n",
     ["wider.txt:4:", "expected an image path, got numbers '5 6 7 8 0 0 0 0 0 0'", "for a/x.jpg on line 1"]),
    ("box-after-a-zero-count", f"a/x.jpg\n0\n{FACE}\n", ["wider.txt:3:", "a/x.jpg has 0 faces (line 2)",
                                                          "expected ten zeros"]),
    ("absolute-path", "/abs/x.jpg\n0\n", ["wider.txt:1:", "image path '/abs/x.jpg' must be relative"]),
    ("path-leaving-the-folder", "a/../../x.jpg\n0\n", ["wider.txt:1:", "'a/../../x.jpg' must be relative"]),
    ("not-utf8", b"a/x.jpg\n1\n1 2 3 4 0 0 0 0 0 0\nb/caf\xe9.jpg\n0\n",
     ["wider.txt:4:", "not UTF-8 text", "column 6"]),
    ("utf16", "a/x.jpg\n0\n".encode("utf-16"), ["wider.txt:1:", "not UTF-8 text"]),
    ("no-images", "\n\n", ["wider.txt lists no images"]),
]


@pytest.mark.parametrize(("text", "words"), [case[1:] for case in BAD_ANNOTATIONS],
                         ids=[case[0] for case in BAD_ANNOTATIONS])
def test_bad_annotation_files_are_refused_by_the_step_before_anything_is_written(
    tmp_path: Path, quirky: SplitPaths, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
    text: str | bytes, words: list[str],
) -> None:
    annotations = write(tmp_path, text)
    out = tmp_path / "out"
    code = w2k.main(["--images_dir", str(quirky.images_dir), "--annotations", annotations,
                     "--output_dir", str(out), "--workers", "1"])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert annotations in errors[0], errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    assert not out.exists(), "nothing is written before the whole annotation file has been checked"


def test_a_missing_annotation_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StepError, match=re.escape(f"annotation file {tmp_path}/nope.txt does not exist")):
        wider.parse_annotations(str(tmp_path / "nope.txt"))
