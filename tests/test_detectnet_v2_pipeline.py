"""DetectNet_v2 on your own KITTI data: the data step's checks, and the whole pipeline locally with the
TAO simulated: `tao-aml rehearse` on a user's KITTI folder (three classes, per-class overrides, QAT through
export and engine)."""

import json
from pathlib import Path

import pytest

from tao_aml.local.local_run import StepFailed
from tao_aml.local.rehearse import rehearse
from tao_aml.repo.pipelines import Pipeline
from tao_aml.repo.profiles import profile_assignments
from tao_aml.simulate import invocations
from tao_aml.simulate.data import KITTI_CLASSES as CLASSES
from tao_aml.simulate.data import kitti_line, make_kitti
from tao_aml.steps.data import kitti_prepare
from tao_aml.steps.specs import detectnet_v2_schema, prototext
from tao_aml.steps.specs.spec_templates import SHIPPED

MODEL = "nvidia/tao/pretrained_detectnet_v2:resnet18"
SMALL = profile_assignments(Pipeline.load("detectnet_v2"), "smoke") + [
    "image_width=160", "image_height=96", "train_epochs=2", "retrain_epochs=2", "classes=car,cyclist,pedestrian",
]
ROOTS = {"tfrecords": "DatasetExportConfig", "inference": "Inference"}


def run_pipeline(tmp_path: Path, assignments: list[str]) -> dict:
    """`tao-aml rehearse detectnet_v2 --input kitti_data=...` on a user's 12 images with a class not trained."""
    data = make_kitti(tmp_path / "mydata", extra_class="van")
    done = rehearse(Pipeline.load("detectnet_v2"), SMALL + assignments, {"kitti_data": data}, tmp_path / "rehearsal",
                    progress=lambda line: None, env={"TAO_STANDIN_LOG": str(tmp_path / "tao.jsonl")})
    return {step.name: step for step in done.runs}


def written_specs(steps: dict) -> list[Path]:
    return [spec for step in steps.values() for folder in step.outputs.values()
            for spec in folder.glob("specs/detectnet_v2_*.txt")]


def test_pipeline_end_to_end_with_three_classes_qat_and_per_class_overrides(tmp_path: Path) -> None:
    steps = run_pipeline(tmp_path, [
        "qat=true", "engine_precision=int8",
        "train.cost_function_config.target_classes[car].class_weight=4.0",
        "train.postprocessing_config.target_class_config[pedestrian].value.clustering_config.dbscan_eps=0.25",
    ])
    calls = [(c["kind"], c["task"]) for c in invocations(tmp_path / "tao.jsonl")]
    assert calls == [
        # No evaluation of the pretrained model: pretrained_detectnet_v2 is a backbone without a detection head.
        ("tf1", "dataset_convert"), ("tf1", "dataset_convert"), ("tf1", "train"),
        ("tf1", "evaluate"), ("tf1", "prune"), ("tf1", "train"), ("tf1", "evaluate"), ("tf1", "inference"),
        ("tf1", "export"), ("deploy", "gen_trt_engine"), ("deploy", "evaluate"), ("deploy", "inference"),
    ]
    assert all(c["ok"] for c in invocations(tmp_path / "tao.jsonl"))
    for name in ("tfrecords_train", "train", "retrain", "inference", "engine"):
        assert f"from template {SHIPPED}/detectnet_v2/" in steps[name].log.read_text(), name

    train_kitti, val_kitti = steps["prepare"].outputs["train"], steps["prepare"].outputs["val"]
    summary = json.loads((train_kitti / "summary.json").read_text())
    val_summary = json.loads((val_kitti / "summary.json").read_text())
    assert summary["images"] + val_summary["images"] == 12 and val_summary["images"] > 0
    assert set(summary["objects_per_class"]) == set(CLASSES) and summary["dropped_unlisted_classes"]["van"] > 0
    assert summary["resized_images"] > 0
    assert all(Image_size(p) == (160, 96) for p in (train_kitti / "images").iterdir())
    assert "van" not in "".join(p.read_text() for p in (train_kitti / "labels").iterdir())

    # Every spec a step wrote passes TAO 5.0's schema, and has one class block per class.
    specs = written_specs(steps)
    assert len(specs) >= 8
    for spec in specs:
        root = next((r for key, r in ROOTS.items() if key in spec.name), "Experiment")
        tree = prototext.parse(spec.read_text(), str(spec))
        assert detectnet_v2_schema.validate(tree, root, str(spec)) == [], spec
    train_spec = (steps["train"].outputs["results"] / "specs" / "detectnet_v2_train_resnet18_kitti.txt").read_text()
    tree = prototext.parse(train_spec, "train")
    targets = {t.get("name"): t.get("class_weight") for t in tree.get("cost_function_config").get_all("target_classes")}
    assert targets == {"car": 4.0, "cyclist": 1.0, "pedestrian": 1.0}
    assert train_spec.count('key: "pedestrian"') >= 4 and "dbscan_eps: 0.25" in train_spec
    assert 'arch: "resnet"' in train_spec and "num_layers: 18" in train_spec and "enable_qat" not in train_spec
    retrained = steps["retrain"].outputs["results"]
    retrain_spec = (retrained / "specs" / "detectnet_v2_retrain_resnet18_kitti.txt").read_text()
    assert "enable_qat: true" in retrain_spec and "load_graph: true" in retrain_spec

    # QAT: export wrote the tensor scales, the engine was built from them without calibration images.
    tf1 = {c["task"]: c["argv"] for c in invocations(tmp_path / "tao.jsonl") if c["kind"] == "tf1"}
    export_dir = steps["export"].outputs["onnx"]
    assert tf1["export"][tf1["export"].index("--cal_json_file") + 1] == str(export_dir / "cal.json")
    assert "tensor_scales" in json.loads((export_dir / "cal.json").read_text())
    deploy = next(c["argv"] for c in invocations(tmp_path / "tao.jsonl") if c["task"] == "gen_trt_engine")
    assert deploy[deploy.index("--cal_json_file") + 1] == str(export_dir / "cal.json")
    assert "--cal_image_dir" not in deploy and "--force_ptq" not in deploy
    engine = steps["engine"].outputs["engine"]
    assert json.loads((engine / "engine.json").read_text())["int8_route"] == "qat_scales"
    assert "enable_qat: true" in (engine / "specs" / "detectnet_v2_retrain_resnet18_kitti.txt").read_text()
    # TAO Deploy's calibration_cache_from_dict: one line per tensor of cal.json, after TensorRT's header.
    cache = (engine / "cal.bin").read_text().splitlines()
    assert cache[0].startswith("TRT-") and {line.split(":")[0] for line in cache[1:]} == set(
        json.loads((export_dir / "cal.json").read_text())["tensor_scales"])
    report = steps["report"].outputs["report"]
    assert json.loads((report / "report.json").read_text())["engine_check"]["int8_route"] == "qat_scales"
    assert "INT8 route: tensor scales from quantization-aware training" in (report / "report.md").read_text()
    assert (engine / "labels.txt").read_text() == "car\ncyclist\npedestrian\n"


def Image_size(path: Path) -> tuple:
    from PIL import Image

    with Image.open(path) as image:
        return image.size


def test_qat_needs_an_int8_engine(tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as failed:
        run_pipeline(tmp_path, ["qat=true", "engine_precision=fp16"])
    assert failed.value.step == "engine"
    assert "a QAT model builds only INT8 engines" in failed.value.log.read_text()


# ------------------------------------------------------------------------------- the data step alone

def prepare(tmp_path: Path, data: Path, *extra: str) -> tuple[int, Path, Path]:
    train, val = tmp_path / "out_train", tmp_path / "out_val"
    code = kitti_prepare.main(["--kitti_data", str(data), "--classes", "car,cyclist,pedestrian", "--width", "160",
                               "--height", "96", "--train_dir", str(train), "--val_dir", str(val), *extra])
    return code, train, val


def break_too_few_fields(data: Path) -> str:
    (data / "labels" / "frame_002.txt").write_text("car 0.00 0 0.0 1 2 3\n")
    return "frame_002.txt:1: expected 15 fields"


def break_non_numeric_box(data: Path) -> str:
    good = kitti_line("car", (1, 2, 30, 40))
    (data / "labels" / "frame_004.txt").write_text(good + good.replace(" 30.00 ", " abc "))
    return "frame_004.txt:2: field x2 is not a number: 'abc'"


def break_label_without_image(data: Path) -> str:
    (data / "images" / "frame_003.png").unlink()
    return "label " + str(data / "labels" / "frame_003.txt") + " has no image"


def break_image_without_label(data: Path) -> str:
    (data / "labels" / "frame_006.txt").unlink()
    return "image " + str(data / "images" / "frame_006.png") + " has no label file"


def break_nan_corner(data: Path) -> str:
    (data / "labels" / "frame_007.txt").write_text(kitti_line("cyclist", (10, 10, 50, 20)).replace("50.00", "nan"))
    return "frame_007.txt:1: field x2 is 'nan'; TAO truncates box corners with int(), which stops on it"


def break_corrupt_image(data: Path) -> str:
    image = data / "images" / "frame_008.png"
    image.write_bytes(image.read_bytes()[:200])
    return "cannot decode image " + str(image)


def break_listed_class_absent(data: Path) -> str:
    for label in (data / "labels").iterdir():
        label.write_text(label.read_text().replace("pedestrian", "car"))
    return "class(es) pedestrian listed in --classes are not in the training data"


@pytest.mark.parametrize("breaker", [break_too_few_fields, break_non_numeric_box, break_label_without_image,
                                     break_image_without_label, break_nan_corner, break_corrupt_image,
                                     break_listed_class_absent])
def test_bad_data_is_refused_naming_file_line_and_class_with_no_output(tmp_path: Path, caplog, breaker) -> None:
    data = make_kitti(tmp_path / "data")
    expected = breaker(data)
    code, train, val = prepare(tmp_path, data)
    assert code != 0
    assert expected in caplog.text
    for out in (train, val):
        assert not (out / "summary.json").exists() and not (out / "images").exists()


def test_unlisted_classes_are_dropped_and_counted_or_refused(tmp_path: Path, caplog) -> None:
    data = make_kitti(tmp_path / "data", extra_class="van")
    code, train, val = prepare(tmp_path, data)
    assert code == 0
    assert "class van (" in caplog.text and "its objects are dropped" in caplog.text
    assert json.loads((train / "summary.json").read_text())["dropped_unlisted_classes"]["van"] > 0
    code, train, _ = prepare(tmp_path / "strict", data, "--unlisted", "error")
    assert code != 0 and "classes not in --classes: van" in caplog.text
    assert not (train / "summary.json").exists()


def test_split_is_deterministic_and_a_given_val_folder_is_used(tmp_path: Path) -> None:
    data = make_kitti(tmp_path / "data", count=20)
    _, train_a, val_a = prepare(tmp_path / "a", data, "--val_fraction", "0.3")
    _, train_b, val_b = prepare(tmp_path / "b", data, "--val_fraction", "0.3")
    assert sorted(p.name for p in (val_a / "images").iterdir()) == sorted(p.name for p in (val_b / "images").iterdir())
    assert 0 < len(list((val_a / "images").iterdir())) < 20
    other = make_kitti(tmp_path / "val", count=3)
    _, train, val = prepare(tmp_path / "c", data, "--val_data", str(other))
    assert len(list((train / "images").iterdir())) == 20 and len(list((val / "images").iterdir())) == 3
    assert json.loads((val / "summary.json").read_text())["split"] == "given"


def test_letterboxed_boxes_follow_the_pixels(tmp_path: Path) -> None:
    data = make_kitti(tmp_path / "data", count=1)  # frame_000 is 320x288: scaled by 1/3, centred
    out = tmp_path / "o"
    code = kitti_prepare.main(["--kitti_data", str(data), "--val_data", str(data), "--classes", "car,cyclist",
                               "--width", "160", "--height", "96", "--train_dir", str(out / "t"), "--val_dir",
                               str(out / "v")])
    assert code == 0
    line = (out / "t" / "labels" / "frame_000.txt").read_text().splitlines()[0].split()
    # 320x288 -> 107x96 content at offset x 26 (letterbox_geometry)
    assert float(line[4]) == pytest.approx(5 * 107 / 320 + 26, abs=0.01)
    assert float(line[5]) == pytest.approx(6 * 96 / 288, abs=0.01)
    assert line[0] == "car" and line[8:] == ["1.50", "1.60", "3.70", "1.0", "1.5", "20.0", "-1.55"]
