"""Real-world inputs (tests/real_world_fixtures.py) through every step that reads their format.

KITTI labels go through kitti_prepare (your own data) and dataset_convert's check (formats/kitti.py,
then TAO's stand-in); WIDER annotations and images through wider_to_kitti; COCO keypoint files through
coco_subset and coco_calibration. Each step accepts what TAO 5.0 accepts, refuses what it refuses
(file and line, exit 2, no traceback, no output) and warns (file and line) where TAO drops data silently.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import real_world_fixtures as real
from tao_aml.azure.submit import build_job
from tao_aml.repo.pipelines import SettingError
from tao_aml.simulate import use_standins
from tao_aml.steps.asset import register_model
from tao_aml.steps.common import StepError
from tao_aml.steps.data import coco_calibration, coco_subset, kitti_prepare
from tao_aml.steps.data import wider_to_kitti as w2k
from tao_aml.steps.data.formats import kitti
from tao_aml.steps.deploy import detectnet_v2_evaluate as engine_evaluate
from tao_aml.steps.detectnet_v2 import dataset_convert
from tao_aml.steps.specs import spec_edit

REPO = Path(__file__).resolve().parents[1]
FACENET_SPECS = REPO / "src" / "tao_aml" / "templates" / "facenet"
NETWORK = (160, 96)  # width, height of the small network the image tests prepare for


def prepare(data: Path, out: Path, classes: str, size: tuple[int, int], *extra: str) -> int:
    return kitti_prepare.main(["--kitti_data", str(data), "--val_data", str(data), "--classes", classes,
                               "--width", str(size[0]), "--height", str(size[1]), "--train_dir", str(out / "train"),
                               "--val_dir", str(out / "val"), *extra])


def warnings_of(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def the_error(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "Traceback" not in caplog.text + capsys.readouterr().err
    return errors[0]


def label_lines(folder: Path, name: str) -> list[list[str]]:
    return [line.split() for line in (folder / "labels" / f"{name}.txt").read_text().splitlines()]


# ------------------------------------------------------------------------------ KITTI: NVIDIA's own labels

def test_nvidias_kitti_labels_keep_every_listed_object_dontcare_included(tmp_path: Path, caplog) -> None:
    data = real.write_kitti(tmp_path / "kitti", real.NVIDIA_KITTI_LABELS)
    classes = ",".join(sorted(real.NVIDIA_KITTI_CLASSES))
    assert prepare(data, tmp_path / "out", classes, (1248, 384)) == 0
    for split in ("train", "val"):
        summary = json.loads((tmp_path / "out" / split / "summary.json").read_text())
        assert summary["objects_per_class"] == real.NVIDIA_KITTI_CLASSES
        assert summary["objects_left_out"] == {"outside_image": 0, "tao_would_skip": 0}
    out = tmp_path / "out" / "train"
    for name, text in real.NVIDIA_KITTI_LABELS.items():
        written, source = label_lines(out, name), [line.split() for line in text.splitlines()]
        assert [line[0] for line in written] == [line[0].lower() for line in source]
        # Every field but the box is kept (occlusion as the whole number TAO Deploy's int() reads).
        assert [line[1:4] + line[8:] for line in written] == [line[1:4] + line[8:] for line in source]
    dontcare = label_lines(out, "000012")[2]
    # 1242x375 letterboxed into 1248x384: scale 1248/1242, offset (0, 3).
    assert [float(v) for v in dontcare[4:8]] == pytest.approx(
        [610.50 * 1248 / 1242, 179.95 * 377 / 375 + 3, 629.68 * 1248 / 1242, 196.31 * 377 / 375 + 3], abs=0.006)
    notes = warnings_of(caplog)
    assert "000000.txt:1: class 'Pedestrian' is read by TAO as 'pedestrian'" in notes
    assert "000001.txt:4: class 'DontCare' is read by TAO as 'dontcare'" in notes


def test_nvidias_kitti_labels_unlisted_classes_dontcare_included_are_dropped_and_counted(tmp_path: Path) -> None:
    data = real.write_kitti(tmp_path / "kitti", real.NVIDIA_KITTI_LABELS)
    assert prepare(data, tmp_path / "out", "car,pedestrian", (1248, 384)) == 0
    summary = json.loads((tmp_path / "out" / "train" / "summary.json").read_text())
    assert summary["objects_per_class"] == {"car": 2, "pedestrian": 1}
    assert summary["dropped_unlisted_classes"] == {"cyclist": 1, "dontcare": 7, "truck": 1, "van": 1}


def test_nvidias_kitti_labels_pass_dataset_convert_as_they_pass_taos(tmp_path: Path, monkeypatch) -> None:
    data = real.write_kitti(tmp_path / "kitti", real.NVIDIA_KITTI_LABELS)
    assert kitti.check_folder(str(data), ".png") == {
        "images": 3, "objects": 13, "objects_per_class": real.NVIDIA_KITTI_CLASSES, "skipped_by_tao": 0}
    use_standins(monkeypatch.setenv, "tf1")
    assert dataset_convert.main(["--spec_dir", str(FACENET_SPECS), "--spec_file", "facenet_tfrecords_kitti_train.txt",
                                 "--kitti_dir", str(data), "--output_dir", str(tmp_path / "records")]) == 0


# ------------------------------------------------------------------------------ KITTI: quirks of real sets

def test_kitti_quirks_are_kept_or_left_out_with_a_warning_naming_file_and_line(tmp_path: Path, caplog) -> None:
    data = real.write_kitti(tmp_path / "kitti", real.KITTI_QUIRKS)
    assert prepare(data, tmp_path / "out", "car,pedestrian", real.KITTI_SIZE) == 0
    out = tmp_path / "out" / "train"
    assert {name: len(label_lines(out, name)) for name in real.KITTI_QUIRKS} == real.KITTI_QUIRKS_KEPT
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objects_left_out"] == real.KITTI_QUIRKS_LEFT_OUT
    assert summary["objects_per_class"] == {"car": 8, "pedestrian": 1}
    notes = warnings_of(caplog)
    labels = data / "labels"
    for expected in (
        f"{labels / 'sub_pixel_box.txt'}:1: Pedestrian written box (100.2 50 100.9 80) is under one whole pixel "
        "after TAO's integer truncation (int: x1 100, y1 50, x2 100, y2 80); TAO skips it silently",
        f"{labels / 'inverted_box.txt'}:1: Car box (110 20 10 90) is empty or inverted",
        f"{labels / 'box_outside_the_image.txt'}:1: Car box (1300.00 20.00 1400.00 90.00) has nothing inside its "
        "1242x375 image",
        f"{labels / 'blank_lines_and_crlf.txt'}:2: class 'Car' is read by TAO as 'car'",  # its first file
        f"{labels / 'mixed_case_classes.txt'}:3: class 'CAR' is read by TAO as 'car'",
    ):
        assert expected in notes, (expected, notes)
    assert label_lines(out, "box_crossing_the_border")[0][4:8] == ["0.00", "300.00", "40.00", "375.00"]
    assert label_lines(out, "numbers_as_float_reads_them")[0][:8] == [
        "car", "0", "0", "-0.", "10.00", "20.00", "110.00", "90.00"]
    assert (out / "labels" / "empty_label_file.txt").read_text() == ""
    assert all(line[0] == "car" for line in label_lines(out, "mixed_case_classes"))


def test_kitti_quirks_pass_dataset_convert_with_taos_silent_skips_warned(tmp_path: Path, caplog) -> None:
    data = real.write_kitti(tmp_path / "kitti", real.KITTI_QUIRKS)
    found = kitti.check_folder(str(data), ".png")
    # TAO's converter keeps the box outside the image (its data loader crops it away later).
    assert found == {"images": 8, "objects": 10, "objects_per_class": {"car": 9, "pedestrian": 1},
                     "skipped_by_tao": 2}
    notes = warnings_of(caplog)
    assert f"{data / 'labels' / 'sub_pixel_box.txt'}:1: Pedestrian box (100.2 50 100.9 80) is under one whole " \
           "pixel" in notes
    assert f"{data / 'labels' / 'inverted_box.txt'}:1: Car box (110 20 10 90) is empty or inverted" in notes


@pytest.mark.parametrize("name", sorted(real.KITTI_REFUSED))
def test_lines_tao_refuses_are_refused_with_file_and_line_and_no_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], name: str,
) -> None:
    text, words = real.KITTI_REFUSED[name]
    labels = dict(real.NVIDIA_KITTI_LABELS, bad=real.NVIDIA_KITTI_LABELS["000001"] + text)
    data = real.write_kitti(tmp_path / "kitti", labels)
    out = tmp_path / "out"
    assert prepare(data, out, "car", (1248, 384)) == 2
    message = the_error(caplog, capsys)
    assert f"{data / 'labels' / 'bad.txt'}:8:" in message, message
    for word in words:
        assert word in message, (word, message)
    assert not (out / "train" / "summary.json").exists() and not (out / "train" / "images").exists()
    caplog.clear()
    records = tmp_path / "records"
    assert dataset_convert.main(["--spec_dir", str(FACENET_SPECS), "--spec_file", "facenet_tfrecords_kitti_train.txt",
                                 "--kitti_dir", str(data), "--output_dir", str(records)]) == 2
    assert f"{data / 'labels' / 'bad.txt'}:8:" in the_error(caplog, capsys)
    assert not records.exists()


def test_class_names_with_capitals_are_refused_where_they_name_spec_classes(tmp_path: Path, caplog, capsys) -> None:
    data = real.write_kitti(tmp_path / "kitti", real.NVIDIA_KITTI_LABELS)
    assert prepare(data, tmp_path / "out", "Car,pedestrian", (1248, 384)) == 2
    assert "class name(s) Car have capitals" in the_error(caplog, capsys)
    with pytest.raises(StepError, match="class name\\(s\\) Face have capitals"):
        spec_edit._check_classes(["Face"])
    with pytest.raises(SystemExit):
        w2k.main(["--images_dir", str(tmp_path), "--annotations", "x", "--output_dir", str(tmp_path / "o"),
                  "--class_name", "Face"])
    assert "argument --class_name: class name(s) Face have capitals" in capsys.readouterr().err
    with pytest.raises(SettingError, match="--set classes=Car,pedestrian: class name\\(s\\) Car have capitals"):
        build_job("detectnet_v2", ["classes=Car,pedestrian"], out_dir=tmp_path / "build")  # the dry run's check


# ------------------------------------------------------------------------------ images in every mode

@pytest.mark.parametrize("mode", sorted(real.IMAGE_MODES))
def test_kitti_prepare_writes_each_image_mode_as_tao_reads_it(tmp_path: Path, mode: str) -> None:
    extension, write = real.IMAGE_MODES[mode]
    data = tmp_path / "kitti"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    source = data / "images" / f"{mode}{extension}"
    write(source, NETWORK)  # already at the network size: no resize, so the pixels compare exactly
    (data / "labels" / f"{mode}.txt").write_text(real.kitti_line("Car", "10", "20", "60", "70"))
    assert prepare(data, tmp_path / "out", "car", NETWORK) == 0
    with Image.open(tmp_path / "out" / "train" / "images" / f"{mode}.png") as written:
        assert (written.mode, written.size, "exif" in written.info) == ("RGB", NETWORK, False)
        pixels = np.asarray(written)
    np.testing.assert_array_equal(pixels, real.tao_pixels(source))
    assert pixels.min() < 250, "not clipped to solid white"
    assert label_lines(tmp_path / "out" / "train", mode)[0][4:8] == ["10.00", "20.00", "60.00", "70.00"]


def test_sixteen_bit_gray_is_scaled_not_clipped_when_letterboxed(tmp_path: Path) -> None:
    data = real.write_kitti(tmp_path / "kitti", {"sensor": real.kitti_line("Car", "10", "20", "60", "70")},
                            size=(320, 192), image=real.sixteen_bit_gray)
    assert prepare(data, tmp_path / "out", "car", NETWORK) == 0
    with Image.open(tmp_path / "out" / "train" / "images" / "sensor.png") as written:
        row = np.asarray(written)[48, :, 0].astype(int)
    assert row[0] < 5 and row[-1] > 250 and 100 < row.mean() < 155  # the ramp, not 255 everywhere
    assert np.all(np.diff(row) >= -1)


def test_exif_orientation_is_not_applied_so_boxes_still_match_the_pixels(tmp_path: Path) -> None:
    _, write = real.IMAGE_MODES["exif_rotated"]
    data = tmp_path / "kitti"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    write(data / "images" / "phone.jpg", (320, 192))  # stored landscape; EXIF says display it portrait
    (data / "labels" / "phone.txt").write_text(real.kitti_line("Car", "0", "0", "160", "192"))  # the dark half
    assert prepare(data, tmp_path / "out", "car", NETWORK) == 0
    with Image.open(tmp_path / "out" / "train" / "images" / "phone.png") as written:
        pixels = np.asarray(written).astype(int)
    assert pixels[:, :70].mean() < 60 and pixels[:, 90:].mean() > 190  # still dark left, bright right
    assert label_lines(tmp_path / "out" / "train", "phone")[0][4:8] == ["0.00", "0.00", "80.00", "96.00"]


@pytest.mark.parametrize("breaker", [real.corrupt_png, real.truncated_jpeg], ids=["corrupt_png", "truncated_jpeg"])
def test_a_corrupt_image_already_at_the_network_size_is_refused_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], breaker,
) -> None:
    extension = ".png" if breaker is real.corrupt_png else ".jpg"
    data = real.write_kitti(tmp_path / "kitti", {"good": real.kitti_line("Car", "1", "2", "30", "40")}, size=NETWORK)
    bad = data / "images" / f"bad{extension}"
    breaker(bad, NETWORK)
    (data / "labels" / "bad.txt").write_text(real.kitti_line("Car", "1", "2", "30", "40"))
    assert prepare(data, tmp_path / "out", "car", NETWORK) == 2
    assert f"cannot decode image {bad}" in the_error(caplog, capsys)
    assert not (tmp_path / "out" / "train").exists()


WIDER_MODES = {name: (name, (400, 300)) for name in real.IMAGE_MODES}


@pytest.mark.parametrize("grayscale", ["true", "false"])
def test_wider_to_kitti_reads_quirky_annotations_and_every_image_mode_as_tao_does(
    tmp_path: Path, grayscale: str,
) -> None:
    images_dir, annotations = real.write_wider(tmp_path / "wider", WIDER_MODES)
    out = tmp_path / "out"
    assert w2k.main(["--images_dir", str(images_dir), "--annotations", str(annotations), "--output_dir", str(out),
                     "--grayscale", grayscale, "--channels", "3", "--workers", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faces_dropped"] == {"invalid": 1, "outside": 0, "too_small": 2}
    assert (summary["images_written"], summary["images_empty"]) == (2 + len(WIDER_MODES), 1)
    assert (out / "labels" / "1--Handshaking__1_Handshaking_zero_count.txt").read_text() == ""
    # 400x300 letterboxed into 736x416: 555x416 at x offset 90, whatever the file's EXIF says.
    geometry = w2k.letterbox_geometry(400, 300, 736, 416)
    assert (geometry.offset_x, geometry.content_width) == (90, 555)
    for name in WIDER_MODES:
        source = images_dir / "2--Modes" / f"{name}{real.IMAGE_MODES[name][0]}"
        with Image.open(out / "images" / f"2--Modes__{name}.png") as written:
            pixels = np.asarray(written.convert("RGB")).astype(int)
        assert pixels[:, :88].max() == 0 and pixels[:, -88:].max() == 0, name  # the padding: not rotated
        expected = real.tao_pixels(source).astype(int)
        if grayscale == "true":
            expected = np.asarray(Image.fromarray(expected.astype(np.uint8)).convert("L")).astype(int)[..., None]
        # Column means of the content against the source's, resampled: same picture, not white, not rotated.
        content = pixels[:, 90:645].mean(axis=(0, 2))
        source_columns = expected.mean(axis=(0, 2))
        resampled = np.interp(np.linspace(0, 399, 555), np.arange(400), source_columns)
        assert np.abs(content - resampled).mean() < 6, name
        face = (out / "labels" / f"2--Modes__{name}.txt").read_text().split()
        assert [float(v) for v in face[4:8]] == pytest.approx(
            [100 * 555 / 400 + 90, 75 * 416 / 300, 300 * 555 / 400 + 90, 225 * 416 / 300], abs=0.006)


def test_wider_to_kitti_refuses_a_corrupt_png_naming_it(tmp_path: Path, caplog, capsys) -> None:
    images_dir, annotations = real.write_wider(tmp_path / "wider", {"broken": ("palette", (400, 300))})
    broken = images_dir / "2--Modes" / "broken.png"
    real.corrupt_png(broken, (400, 300))
    out = tmp_path / "out"
    assert w2k.main(["--images_dir", str(images_dir), "--annotations", str(annotations), "--output_dir", str(out),
                     "--workers", "1"]) == 2
    assert f"cannot read image {broken}" in the_error(caplog, capsys)
    assert not (out / "summary.json").exists() and not list(out.rglob("*.png"))


# ------------------------------------------------------------------------------ COCO

def test_coco_crowd_rle_and_stated_num_keypoints_are_used_as_tao_uses_them(tmp_path: Path, caplog) -> None:
    from coco_fixtures import file_name, make_coco

    root = make_coco(tmp_path / "coco", train=8, val=4)
    quirks = real.add_coco_quirks(root, "train")
    assert coco_subset.main(["--coco_root", str(root), "--output_dir", str(tmp_path / "subset")]) == 0
    notes = warnings_of(caplog)
    source = root / "annotations" / "person_keypoints_train2017.json"
    assert f"annotations whose num_keypoints disagrees with their keypoints; TAO uses the stated num_keypoints " \
           f"(bpnet coco_dataset.py), and so do these steps ({quirks['disagreeing']}):" in notes
    assert f"{source}: annotations[0] (id 1): num_keypoints is 3 but 10 keypoints are labelled (v > 0)" in notes
    train = json.loads((tmp_path / "subset" / "summary.json").read_text())["splits"]["train"]
    assert train["crowd_annotations"] == 2 + quirks["crowds"]
    written = json.loads((tmp_path / "subset" / "annotations" / "person_keypoints_train2017.json").read_text())
    assert [a["segmentation"] for a in written["annotations"] if a["iscrowd"]][-1]["counts"] == \
        real.compressed_rle([48 * 2, 48 * 3, 48 * 59])
    # Calibration takes persons with at least 5 keypoints by the stated number, as TAO picks main persons:
    # image 1 (10 labelled, stated 3) no longer qualifies; image 3 (stated 8 for 6 labelled) still does.
    assert coco_calibration.main(["--coco_root", str(root), "--annotations", str(tmp_path / "subset"),
                                  "--output_dir", str(tmp_path / "cal"), "--num_images", "8"]) == 0
    chosen = json.loads((tmp_path / "cal" / "calibration.json").read_text())["images"]
    assert chosen == [file_name("train", i) for i in (3, 5, 7)]


# ------------------------------------------------------------------------------ numbers TAO writes

def test_a_nan_engine_map_is_recorded_and_fails_max_engine_map_drop(tmp_path: Path, caplog) -> None:
    results = tmp_path / "results.json"
    results.write_text('{"AP_car": NaN, "AP_pedestrian": 0.5}')  # json.dump writes NaN for a float nan
    metrics = engine_evaluate.engine_metrics(str(results))
    assert math.isnan(metrics["eval/mAP"]) and metrics["eval/AP_pedestrian"] == 50.0
    assert "TAO Deploy reports AP_car as nan" in warnings_of(caplog)
    check = {"metric": "eval/mAP", "model": "pruned + retrained", "model_value": 61.0, "engine_value": math.nan,
             "drop": math.nan, "precision": "int8"}
    with pytest.raises(StepError, match="the TensorRT engine's eval/mAP is nan and the pruned \\+ retrained model's "
                                        "61.0: the accuracy drop is unknown, so max_engine_accuracy_drop 1.5 cannot "
                                        "be met"):
        register_model.check_engine_drop({"engine_check": check}, 1.5)
    register_model.check_engine_drop({"engine_check": dict(check, engine_value=60.0, drop=1.0)}, 1.5)
