"""The WIDER FACE -> KITTI converter step, on generated WIDER-style data."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import notebook_baseline
from tao_aml.steps.common import StepError
from tao_aml.steps.data import wider_to_kitti as w2k
from wider_fixtures import (
    DANCING_ONLY_INVALID,
    HANDSHAKE_GRAY,
    PARADE,
    PROTEST_NO_FACES,
    RIOT_SMALL,
    FixtureFace,
    FixtureImage,
    SplitPaths,
    annotation_text,
    make_split,
    make_wider_download,
    quirky_images,
    random_images,
)

SRC = Path(__file__).resolve().parents[1] / "src"
TAIL = "0.00 0.00 0.00 0.00 0.00 0.00 0.00"


@pytest.fixture(scope="module")
def quirky(tmp_path_factory: pytest.TempPathFactory) -> SplitPaths:
    return make_split(tmp_path_factory.mktemp("wider"), "train", quirky_images())


def run(split: SplitPaths, out: Path, *extra: str) -> dict:
    w2k.body(["--images_dir", str(split.images_dir), "--annotations", str(split.annotations),
              "--output_dir", str(out), "--workers", "1", *extra])
    return json.loads((out / "summary.json").read_text())


def labels(out: Path, image: FixtureImage) -> list[str]:
    return (out / "labels" / f"{image.flat_name}.txt").read_text().splitlines()


def all_files(folder: Path) -> dict[str, bytes]:
    files = (path for path in folder.rglob("*") if path.is_file())
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in files}


# ---------------------------------------------------------------------------------------------
# Names (the annotation file's checks are in tests/test_format_wider.py)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "wider.txt"
    path.write_text(text)
    return str(path)


def test_names_that_flatten_to_the_same_file_are_refused(tmp_path: Path) -> None:
    records = w2k.parse_annotations(write(tmp_path, "a/b__c.jpg\n0\na__b/c.jpg\n0\n"))
    with pytest.raises(StepError, match=re.escape("lines 1 (a/b__c.jpg) and 3 (a__b/c.jpg) would both be "
                                                  "written as a__b__c")):
        w2k.check_unique_names("wider.txt", records)


# ---------------------------------------------------------------------------------------------
# Geometry


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ((1000, 500), w2k.Geometry(0, 24, 736, 368)),  # wide: bands top and bottom
        ((300, 600), w2k.Geometry(264, 0, 208, 416)),  # tall: bands left and right
        ((1472, 832), w2k.Geometry(0, 0, 736, 416)),  # same aspect: no padding
        ((160, 90), w2k.Geometry(0, 1, 736, 414)),  # small source is scaled up
        ((1000, 501), w2k.Geometry(0, 23, 736, 369)),  # odd padding: the extra row goes at the bottom
        ((5000, 10), w2k.Geometry(0, 207, 736, 1)),  # a sliver keeps at least one row
    ],
)
def test_letterbox_geometry(source: tuple[int, int], expected: w2k.Geometry) -> None:
    assert w2k.letterbox_geometry(*source, 736, 416) == expected


def test_boxes_are_rounded_once() -> None:
    # 9 * 416 / 768 is exactly 4.875; scaling by a rounded 416 / 768 would print 4.87.
    geometry = w2k.letterbox_geometry(1024, 768, 736, 416)
    box, reason = w2k.map_face(w2k.Face(0, 9, 10, 10, False), 1024, 768, geometry, 1.0)
    assert reason is None and w2k.kitti_line("face", box).split()[5] == "4.88"


# ---------------------------------------------------------------------------------------------
# Conversion


def test_labels_have_exact_scaled_and_clipped_boxes(quirky: SplitPaths, tmp_path: Path) -> None:
    run(quirky, tmp_path)
    assert labels(tmp_path, PARADE) == [
        f"face 0.00 0 0.00 73.60 60.80 220.80 134.40 {TAIL}",  # x 0.736, y 0.736 + 24
        f"face 0.00 0 0.00 662.40 318.40 736.00 392.00 {TAIL}",  # clipped to the image's right/bottom
        f"face 0.00 0 0.00 0.00 171.20 22.08 200.64 {TAIL}",  # clipped at the left
    ]
    assert labels(tmp_path, HANDSHAKE_GRAY) == [
        f"face 0.00 0 0.00 264.00 0.00 284.80 27.73 {TAIL}",  # touching the corner, offset 264 px
        f"face 0.00 0 0.00 368.00 208.00 409.60 263.47 {TAIL}",
    ]
    assert labels(tmp_path, RIOT_SMALL) == [f"face 0.00 0 0.00 92.00 47.00 165.60 120.60 {TAIL}"]
    assert labels(tmp_path, PROTEST_NO_FACES) == []
    assert labels(tmp_path, DANCING_ONLY_INVALID) == []


def test_summary_counts(quirky: SplitPaths, tmp_path: Path) -> None:
    summary = run(quirky, tmp_path)
    assert summary["images"] == 5
    assert summary["images_written"] == 5
    assert summary["images_empty"] == 2
    assert summary["images_skipped"] == {"missing": 0, "unreadable": 0, "no_faces": 0}
    assert summary["faces"] == 11
    assert summary["faces_kept"] == 6
    assert summary["faces_dropped"] == {"invalid": 2, "outside": 1, "too_small": 2}
    assert summary["settings"]["grayscale"] is True
    assert sorted(os.listdir(tmp_path / "images")) == sorted(f"{i.flat_name}.png" for i in quirky_images())


def test_images_are_letterboxed_gray_in_three_channels(quirky: SplitPaths, tmp_path: Path) -> None:
    run(quirky, tmp_path)
    for image, content in ((PARADE, (0, 24, 736, 392)), (HANDSHAKE_GRAY, (264, 0, 472, 416))):
        with Image.open(tmp_path / "images" / f"{image.flat_name}.png") as out:
            assert (out.size, out.mode) == ((736, 416), "RGB")
            red, green, blue = out.split()
            assert red.tobytes() == green.tobytes() == blue.tobytes()
            # Padding is black, the source (never black) fills exactly the letterboxed area.
            assert out.getbbox() == content
            assert out.crop(content).convert("L").getextrema()[0] > 0


def test_rgb_output_keeps_colour(quirky: SplitPaths, tmp_path: Path) -> None:
    summary = run(quirky, tmp_path, "--grayscale", "false")
    assert summary["settings"]["grayscale"] is False
    with Image.open(tmp_path / "images" / f"{PARADE.flat_name}.png") as out:
        red, green, _ = out.split()
        assert out.mode == "RGB" and red.tobytes() != green.tobytes()
    with Image.open(tmp_path / "images" / f"{HANDSHAKE_GRAY.flat_name}.png") as out:
        assert out.mode == "RGB"  # a grayscale source still gives three channels


def test_size_class_format_and_min_box_options(quirky: SplitPaths, tmp_path: Path) -> None:
    summary = run(quirky, tmp_path, "--width", "368", "--height", "208", "--class_name", "face_1",
                  "--image_format", "jpg", "--min_box_size", "15")
    with Image.open(tmp_path / "images" / f"{PARADE.flat_name}.jpg") as out:
        assert (out.format, out.size) == ("JPEG", (368, 208))
    # Half the default size: the left-clipped face is 11.04 px wide and now too small.
    assert labels(tmp_path, PARADE) == [
        f"face_1 0.00 0 0.00 36.80 30.40 110.40 67.20 {TAIL}",
        f"face_1 0.00 0 0.00 331.20 159.20 368.00 196.00 {TAIL}",
    ]
    assert summary["faces_dropped"]["too_small"] == 2 + 1 + 1  # + Handshaking's 10.4 px-wide face


def test_keep_empty_false_skips_images_without_faces(quirky: SplitPaths, tmp_path: Path) -> None:
    summary = run(quirky, tmp_path, "--keep_empty", "false")
    assert summary["images_written"] == 3
    assert summary["images_skipped"]["no_faces"] == 2
    assert not (tmp_path / "labels" / f"{DANCING_ONLY_INVALID.flat_name}.txt").exists()
    assert not (tmp_path / "images" / f"{PROTEST_NO_FACES.flat_name}.png").exists()


def test_limit_takes_the_first_images_in_annotation_order(quirky: SplitPaths, tmp_path: Path) -> None:
    summary = run(quirky, tmp_path, "--limit", "2")
    assert summary["images"] == 2
    assert sorted(os.listdir(tmp_path / "labels")) == sorted(
        [f"{PARADE.flat_name}.txt", f"{HANDSHAKE_GRAY.flat_name}.txt"]
    )


def test_one_and_two_workers_write_identical_files(tmp_path: Path) -> None:
    split = make_split(tmp_path / "wider", "val", quirky_images() + random_images(30, seed=7))
    one, two = tmp_path / "one", tmp_path / "two"
    run(split, one)
    w2k.body(["--images_dir", str(split.images_dir), "--annotations", str(split.annotations),
              "--output_dir", str(two), "--workers", "2"])
    files = all_files(one)
    assert len(files) == 2 * 35 + 1
    assert files == all_files(two)


# ---------------------------------------------------------------------------------------------
# Against NVIDIA's notebook script (cv2); channels and the PNG writer


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[SplitPaths, list[notebook_baseline.NotebookImage]]:
    """WIDER-sized photos (1024 px wide, the benchmark's aspects, faces of 2 to 256 px) and the notebook's output."""
    root = tmp_path_factory.mktemp("photos")
    images = random_images(12, seed=3, width=1024, aspects=(0.56, 0.66, 0.75, 1.0, 1.33, 1.5), max_faces=20)
    split = make_split(root / "wider", "train", images, seed=3)
    return split, notebook_baseline.convert(split.images_dir, split.annotations, root / "notebook")


@pytest.mark.parametrize(
    ("channels", "image_format"), [("3", "png"), ("1", "png"), ("3", "jpg"), ("1", "jpg")]
)
def test_geometry_and_labels_match_the_notebook(
    photos: tuple[SplitPaths, list[notebook_baseline.NotebookImage]], tmp_path: Path, channels: str,
    image_format: str,
) -> None:
    split, notebook = photos
    run(split, tmp_path, "--channels", channels, "--image_format", image_format)
    expected_format = {"png": "PNG", "jpg": "JPEG"}[image_format]
    check = notebook_baseline.compare(notebook, tmp_path, int(channels), expected_format)
    # Letterboxed area and every box within 1 px of the notebook's; format and channels of every image.
    assert check.problems == []
    assert check.formats == {expected_format: 12} and check.channels == {int(channels): 12}
    # Every face the notebook maps is matched, but WIDER's invalid ones and a few of 1 to 3 px.
    assert check.boxes_matched > 80 and check.faces_invalid > 0
    assert check.faces_tiny_dropped <= check.faces_tiny
    assert json.loads((tmp_path / "summary.json").read_text())["settings"]["channels"] == int(channels)


def test_channels_auto_is_one_for_the_train_split_only(tmp_path: Path) -> None:
    root = make_wider_download(tmp_path / "dl", [PARADE, HANDSHAKE_GRAY], [PARADE, HANDSHAKE_GRAY])
    for split, extra, mode in (("train", [], "L"), ("val", [], "RGB"), ("train", ["--channels", "3"], "RGB")):
        out = tmp_path / f"{split}{len(extra)}"
        w2k.body(["--wider_root", str(root), "--split", split, "--output_dir", str(out), "--workers", "1", *extra])
        assert json.loads((out / "summary.json").read_text())["settings"]["channels"] == len(mode)
        for path in sorted((out / "images").iterdir()):
            with Image.open(path) as image:
                assert (image.format, image.mode, image.size) == ("PNG", mode, (736, 416))


def test_one_channel_files_decode_to_the_three_channel_pixels(quirky: SplitPaths, tmp_path: Path) -> None:
    # What TAO's readers see: tf.image.decode_png(channels=3) and libpng expand gray to three equal
    # channels, Pillow's convert("RGB") likewise.
    run(quirky, tmp_path / "one", "--channels", "1")
    run(quirky, tmp_path / "three", "--channels", "3")
    for image in quirky_images():
        one, three = (tmp_path / folder / "images" / f"{image.flat_name}.png" for folder in ("one", "three"))
        with Image.open(one) as gray, Image.open(three) as rgb:
            assert (gray.mode, rgb.mode) == ("L", "RGB")
            assert gray.convert("RGB").tobytes() == rgb.tobytes()
        assert np.array_equal(cv2.imread(str(one), cv2.IMREAD_COLOR), cv2.imread(str(three), cv2.IMREAD_COLOR))
        assert labels(tmp_path / "one", image) == labels(tmp_path / "three", image)


@pytest.mark.parametrize("deflate", ["zlib", "isal"])  # isal: as in the tao_data image
def test_png_writer_is_lossless(deflate: str) -> None:
    rng = np.random.default_rng(5)
    for shape, channels in (((37, 53), 1), ((37, 53), 3), ((41, 29, 3), 3), ((1, 7), 1), ((1, 1, 3), 3)):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        data = w2k.encode_png(pixels, channels, deflate)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # chunk CRCs
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and len(image.getbands()) == channels
            decoded = np.asarray(image)
        expected = np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 and channels == 3 else pixels
        assert np.array_equal(decoded, expected)
        libpng = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(libpng if libpng.ndim == 2 else libpng[:, :, ::-1], expected)


def test_zlib_writes_the_same_pixels_as_isal(
    quirky: SplitPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(quirky, tmp_path / "isal")
    monkeypatch.setattr(w2k, "DEFLATE", "zlib")
    run(quirky, tmp_path / "zlib")
    for image in quirky_images():
        with Image.open(tmp_path / "isal" / "images" / f"{image.flat_name}.png") as a, \
                Image.open(tmp_path / "zlib" / "images" / f"{image.flat_name}.png") as b:
            assert a.tobytes() == b.tobytes()


def test_large_shrinks_average_instead_of_aliasing() -> None:
    # A non-JPEG source gets no DCT-scaled decode: shrinking it 4x is INTER_AREA, not cubic.
    board = (np.indices((400, 400)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = w2k.resize(board, (100, 100))
    assert small.shape == (100, 100) and 126 <= small.min() <= small.max() <= 129


def test_channels_1_needs_grayscale(quirky: SplitPaths, tmp_path: Path) -> None:
    with pytest.raises(StepError, match="--channels 1 needs --grayscale true"):
        run(quirky, tmp_path, "--grayscale", "false", "--channels", "1")


def test_missing_opencv_is_named_before_any_output(
    quirky: SplitPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(w2k, "_OPENCV", [])
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    with pytest.raises(StepError, match="install opencv-python-headless"):
        run(quirky, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Bad images and output folder hygiene


@pytest.fixture()
def broken(tmp_path: Path) -> SplitPaths:
    """The quirky set with Handshaking missing and Riot not an image."""
    split = make_split(tmp_path / "wider", "train", quirky_images())
    (split.images_dir / HANDSHAKE_GRAY.rel_path).unlink()
    (split.images_dir / RIOT_SMALL.rel_path).write_bytes(b"<html>not a jpeg</html>")
    return split


@pytest.mark.parametrize("workers", ["1", "2"])
def test_missing_image_fails_naming_it_and_leaves_no_output(
    broken: SplitPaths, tmp_path: Path, workers: str
) -> None:
    out = tmp_path / "out"
    expected = f"image {broken.images_dir / HANDSHAKE_GRAY.rel_path} (annotation line 10) does not exist"
    with pytest.raises(StepError, match=re.escape(expected)):
        w2k.body(["--images_dir", str(broken.images_dir), "--annotations", str(broken.annotations),
                  "--output_dir", str(out), "--workers", workers])
    assert all_files(out) == {}


def test_unreadable_image_fails_naming_it(broken: SplitPaths, tmp_path: Path) -> None:
    (broken.images_dir / HANDSHAKE_GRAY.rel_path).write_bytes(b"")
    with pytest.raises(StepError, match=re.escape(
        f"cannot read image {broken.images_dir / HANDSHAKE_GRAY.rel_path} (annotation line 10): "
        "cannot identify image file"
    )):
        run(broken, tmp_path / "out")


def test_skip_bad_images_counts_them(broken: SplitPaths, tmp_path: Path) -> None:
    summary = run(broken, tmp_path, "--skip_bad_images")
    assert summary["images_written"] == 3
    assert summary["images_skipped"] == {"missing": 1, "unreadable": 1, "no_faces": 0}
    assert summary["skipped_images"] == [
        {"image": HANDSHAKE_GRAY.rel_path, "line": 10, "reason": "missing"},
        {"image": RIOT_SMALL.rel_path, "line": 17, "reason": "unreadable"},
    ]
    assert not (tmp_path / "labels" / f"{RIOT_SMALL.flat_name}.txt").exists()


def test_nothing_written_is_an_error(broken: SplitPaths, tmp_path: Path) -> None:
    with pytest.raises(StepError, match=r"no image was written: 5 of 5 skipped \(missing 5, unreadable 0"):
        w2k.body(["--images_dir", str(broken.images_dir / "0--Parade"),
                  "--annotations", str(broken.annotations),
                  "--output_dir", str(tmp_path / "out"), "--skip_bad_images", "true"])
    assert all_files(tmp_path / "out") == {}


def test_rerun_overwrites_but_foreign_files_are_refused(quirky: SplitPaths, tmp_path: Path) -> None:
    run(quirky, tmp_path)
    assert run(quirky, tmp_path)["images_written"] == 5  # a retried step may find its own files
    (tmp_path / "labels" / "stale.txt").write_text("")
    with pytest.raises(StepError, match=re.escape(
        f"output folder {tmp_path / 'labels'} already holds 1 file(s) this conversion would not write "
        "(e.g. stale.txt)"
    )):
        run(quirky, tmp_path)
    assert not (tmp_path / "summary.json").exists()


# ---------------------------------------------------------------------------------------------
# Finding a split in a download folder, and the command line


def test_wider_root_with_an_extra_top_folder(tmp_path: Path) -> None:
    root = make_wider_download(tmp_path / "dl", [PARADE], [RIOT_SMALL, PROTEST_NO_FACES], top_folder="WIDER")
    images, annotations = w2k.find_split(str(root), "val")
    assert images == str(root / "WIDER" / "WIDER_val" / "images")
    assert annotations == str(root / "WIDER" / "wider_face_split" / "wider_face_val_bbx_gt.txt")
    w2k.body(["--wider_root", str(root), "--split", "val", "--output_dir", str(tmp_path / "out")])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["images"] == 2


def test_wider_root_without_the_split_lists_what_was_looked_for(tmp_path: Path) -> None:
    root = make_wider_download(tmp_path, [PARADE], [RIOT_SMALL])
    (root / "WIDER_val" / "images").rename(root / "WIDER_val" / "pictures")
    message = (f"WIDER_val/images not found: looked for {root}/WIDER_val/images and "
               f"{root}/*/WIDER_val/images; {root} holds: WIDER_train, WIDER_val, wider_face_split")
    with pytest.raises(StepError, match=re.escape(message)):
        w2k.find_split(str(root), "val")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wider_root", "r", "--images_dir", "i"], "give either --wider_root and --split, or --images_dir"),
        (["--wider_root", "r"], "--wider_root needs --split train or --split val"),
        (["--images_dir", "i"], "give --images_dir and --annotations, or --wider_root and --split"),
        (["--images_dir", "i", "--annotations", "a", "--split", "val"], "--split goes with --wider_root"),
        (["--images_dir", "/nonexistent", "--annotations", "a"], "--images_dir /nonexistent is not a folder"),
        (["--wider_root", "/nonexistent", "--split", "val"], "--wider_root /nonexistent is not a folder"),
    ],
)
def test_source_arguments(argv: list[str], message: str) -> None:
    with pytest.raises(StepError, match=re.escape(message)):
        w2k.body([*argv, "--output_dir", "unused"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--class_name", "my face"], "expected one word without spaces"),
        (["--min_box_size", "0"], "expected a number above 0"),
        (["--grayscale", "maybe"], "expected true or false"),
        (["--width", "0"], "expected a number of at least 1"),
    ],
)
def test_bad_option_values(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        w2k.build_parser().parse_args(["--output_dir", "o", *argv])
    assert message in capsys.readouterr().err


def test_runs_as_a_module_and_exits_2_on_a_user_error(quirky: SplitPaths, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "tao_aml.steps.data.wider_to_kitti", "--images_dir", str(quirky.images_dir),
               "--output_dir", str(tmp_path / "out")]
    done = subprocess.run([*command, "--annotations", str(quirky.annotations), "--limit", "1"],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "done: 1 images, 1 written (0 without faces)" in done.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text(annotation_text([FixtureImage("a/x.jpg", (10, 10), faces=(FixtureFace(1, 2, 3, 4),))])
                   .replace("1 2 3 4 ", "1 2 3 "))
    done = subprocess.run([*command, "--annotations", str(bad)], env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 2
    assert f"{bad}:3: expected 10 numbers" in done.stderr
    assert "Traceback" not in done.stderr


def test_provided_wider_data_is_read_instead_of_the_download(tmp_path: Path) -> None:
    provided = make_wider_download(tmp_path / "provided", quirky_images()[:2], quirky_images()[2:3])
    empty_download = tmp_path / "download"
    empty_download.mkdir()
    w2k.body(["--wider_root", str(empty_download), "--wider_data", str(provided), "--split", "val",
              "--output_dir", str(tmp_path / "out"), "--workers", "1"])
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["images"] == 1
    with pytest.raises(StepError, match="--wider_data needs --split"):
        w2k.body(["--wider_data", str(provided), "--output_dir", str(tmp_path / "o2")])
