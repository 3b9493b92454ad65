"""Protobuf text parser/writer and the path API on its tree."""

import math
import struct
from pathlib import Path

import pytest

from tao_aml.steps.common import StepError
from tao_aml.steps.specs.prototext import Enum, Message, format, parse, parse_path

SPECS = Path(__file__).resolve().parents[1] / "src" / "tao_aml" / "templates" / "facenet"

# Short snippets in the styles found in TAO's own detectnet_v2 specs (backend experiment_specs,
# dataset_specs and the launcher notebooks): map entries, `value: {`, scientific floats, enums.
TAO_STYLE_SNIPPETS = [
    """
random_seed: 42
dataset_config {
  data_sources: {
    tfrecords_path: "/workspace/tfrecords/kitti_trainval/*"
    image_directory_path: "/workspace/data/training"
  }
  image_extension: "png"
  target_class_mapping {
      key: "car"
      value: "car"
  }
  target_class_mapping {
      key: "van"
      value: "car"
  }
  validation_fold: 0
}
""",
    """
training_config {
  batch_size_per_gpu: 4
  num_epochs: 120
  learning_rate {
  soft_start_annealing_schedule {
    min_learning_rate: 5e-06
    max_learning_rate: 5e-04
    soft_start: 0.10000000149
    annealing: 0.699999988079
    }
  }
  regularizer {
    type: L1
    weight: 3.00000002618e-09
  }
  optimizer {
    adam {
      epsilon: 9.99999993923e-09
      beta1: 0.899999976158
      beta2: 0.999000012875
    }
  }
  cost_scaling {
    initial_exponent: 20.0
    increment: 0.005
    decrement: 1.0
  }
  checkpoint_interval: 10
}
""",
    """
bbox_handler_config{
  kitti_dump: true
  disable_overlay: false
  overlay_linewidth: 2
  classwise_bbox_handler_config{
    key:"person"
    value: {
      confidence_model: "aggregate_cov"
      output_map: "person"
      bbox_color{
        R: 0
        G: 255
        B: 0
      }
      clustering_config{
        clustering_algorithm: DBSCAN
        coverage_threshold: 0.005
        dbscan_eps: 0.3
        dbscan_min_samples: 1
        dbscan_confidence_threshold: 0.9
        minimum_bounding_box_height: 4
      }
    }
  }
}
""",
    """
coco_config {
  root_directory_path: "/workspace/coco"
  img_dir_names: ["val2017", "train2017"]
  annotation_files: ["annotations/instances_val2017.json", "annotations/instances_train2017.json"]
  num_partitions: 2
  num_shards: [32, 256]
}
image_directory_path: "/workspace/coco"
""",
]


@pytest.mark.parametrize("text", TAO_STYLE_SNIPPETS)
def test_tao_style_snippets_round_trip(text: str) -> None:
    tree = parse(text)
    written = format(tree)
    assert parse(written) == tree
    assert format(parse(written)) == written  # canonical: writing is a fixed point


@pytest.mark.parametrize("template", sorted(SPECS.glob("*.txt")), ids=lambda p: p.name)
def test_every_template_round_trips(template: Path) -> None:
    tree = parse(template.read_text(encoding="utf-8"), str(template))
    assert tree.fields
    assert parse(format(tree)) == tree


def test_parse_keeps_order_repeats_and_types() -> None:
    tree = parse(TAO_STYLE_SNIPPETS[0] + TAO_STYLE_SNIPPETS[3])
    assert [name for name, _ in tree.items()] == ["random_seed", "dataset_config", "coco_config",
                                                  "image_directory_path"]
    assert tree.get("random_seed") == 42
    mapping = tree.get_all("dataset_config.target_class_mapping")
    assert [(m.get("key"), m.get("value")) for m in mapping] == [("car", "car"), ("van", "car")]
    assert tree.get_all("coco_config.num_shards") == [32, 256]
    assert tree.get_all("coco_config.img_dir_names") == ["val2017", "train2017"]


def test_scalars_of_every_kind() -> None:
    tree = parse(
        """
        a: 1e-06  b: 5.2e-06 c: -3 d: -0.5 e: .5 f: 2E+3 g: 1.5f h: 0x1F i: -inf j: nan
        t1: true t2: True t3: t f1: false f2: False f3: f
        mode: INTEGRATE
        """
    )
    assert tree.get("a") == 1e-06 and isinstance(tree.get("a"), float)
    assert tree.get("b") == 5.2e-06
    assert tree.get("c") == -3 and isinstance(tree.get("c"), int)
    assert tree.get("d") == -0.5
    assert tree.get("e") == 0.5
    assert tree.get("f") == 2000.0
    assert tree.get("g") == 1.5
    assert tree.get("h") == 31
    assert tree.get("i") == -math.inf
    assert math.isnan(tree.get("j"))
    assert [tree.get(n) for n in ("t1", "t2", "t3")] == [True, True, True]
    assert [tree.get(n) for n in ("f1", "f2", "f3")] == [False, False, False]
    assert tree.get("mode") == Enum("INTEGRATE")


def test_strings_escapes_quotes_and_concatenation() -> None:
    tree = parse(
        r"""
        a: 'single "quoted"'
        b: "tab\there\nnew \"q\" back\\slash"
        c: "con" 'cat' "enated"
        d: "\303\251t\xC3\xA9"
        e: "été"
        """
    )
    assert tree.get("a") == 'single "quoted"'
    assert tree.get("b") == 'tab\there\nnew "q" back\\slash'
    assert tree.get("c") == "concatenated"
    assert tree.get("d") == "été"
    assert tree.get("e") == "été"
    assert parse(format(tree)) == tree
    assert 'b: "tab\\there\\nnew \\"q\\" back\\\\slash"' in format(tree)


def test_message_syntaxes_separators_and_comments() -> None:
    tree = parse(
        """
        # a comment line
        a { x: 1; y: 2, }   # trailing comment
        b: { x: 3 }
        c < x: 4 >
        d: < x: 5 >
        e [ { x: 6 }, { x: 7 } ]
        f: []
        g: "# not a comment"
        """
    )
    assert tree.get("a") == Message([("x", 1), ("y", 2)])
    assert tree.get("b.x") == 3 and tree.get("c.x") == 4 and tree.get("d.x") == 5
    assert [m.get("x") for m in tree.get_all("e")] == [6, 7]
    assert tree.get_all("f") == []
    assert tree.get("g") == "# not a comment"


def test_format_is_canonical() -> None:
    tree = parse('a{b:1 c{}} d: "x" e: FOO f: false g: 1.0')
    assert format(tree) == 'a {\n  b: 1\n  c {\n  }\n}\nd: "x"\ne: FOO\nf: false\ng: 1.0\n'


@pytest.mark.parametrize("text", ["9.99999974738e-05", "0.899999976158", "5.2e-06", "1e-06",
                                  "0.20000000298", "3.00000002618e-09", "0.1", "1e+16", "123456789.0"])
def test_floats_are_written_so_they_read_back_exactly(text: str) -> None:
    written = format(Message([("v", float(text))]))
    again = parse(written).get("v")
    assert again == float(text)
    # TAO's float fields hold float32: the same double gives the same float32.
    assert struct.pack("<f", again) == struct.pack("<f", float(text))


def test_int_stays_int_in_float_field_text() -> None:
    assert format(parse("val_split: 10")) == "val_split: 10\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("a {\n  b 1\n}", "<spec>:2:5: expected ':' or '{' after field name b, found '1'"),
        ("a {\n  b: 1\n", "<spec>:3:1: expected a field name or '}', found end of file"),
        ("a: 1\nb: }", "<spec>:2:4: expected a value (number, string, true/false, enum name), found '}'"),
        ("a: 1\n  b: @", "<spec>:2:6: unexpected character '@'"),
        ('x: "abc\\q"', "<spec>:1:8: unknown escape \\q in string"),
        ("x: [1 2]", "<spec>:1:7: expected ',' or ']' in the list of x, found '2'"),
        ("x: 12abc", "<spec>:1:4: malformed number '12abc'"),
        ("x: 1.2.3", "<spec>:1:4: malformed number '1.2.3'"),
        ("}", "<spec>:1:1: expected a field name, found '}'"),
        ("x: -foo", "<spec>:1:4: expected a value (number, string, true/false, enum name), found '-foo'"),
        ('x: "open\n"', "<spec>:1:4: string is not closed on this line"),
    ],
)
def test_parse_errors_name_line_column_and_expectation(text: str, message: str) -> None:
    with pytest.raises(StepError) as err:
        parse(text)
    assert str(err.value) == message


def test_parse_error_names_the_source() -> None:
    expected = r"^specs/train.txt:1:4: expected a field name or '}', found end of file$"
    with pytest.raises(StepError, match=expected):
        parse("a {", "specs/train.txt")


# ---------------------------------------------------------------- path API

def sample() -> Message:
    return parse(
        """
        dataset_config {
          data_sources { tfrecords_path: "a" }
          data_sources { tfrecords_path: "b" }
          validation_data_source { tfrecords_path: "v" }
        }
        postprocessing_config {
          target_class_config { key: "face" value { clustering_config { dbscan_eps: 0.15 } } }
          target_class_config { key: "mask" value { clustering_config { dbscan_eps: 0.2 } } }
        }
        cost_function_config { target_classes { name: "face" class_weight: 1.0 } }
        inferencer_config { target_classes: "face" target_classes: "mask" }
        """
    )


def test_get_with_index_and_key() -> None:
    tree = sample()
    assert tree.get("dataset_config.data_sources[1].tfrecords_path") == "b"
    assert tree.get("dataset_config.validation_data_source.tfrecords_path") == "v"
    assert tree.get("postprocessing_config.target_class_config[mask].value.clustering_config") == Message(
        [("dbscan_eps", 0.2)]
    )
    assert tree.get('postprocessing_config.target_class_config["face"].value.clustering_config.dbscan_eps') \
        == 0.15
    assert tree.get("cost_function_config.target_classes[face].class_weight") == 1.0
    assert tree.get("inferencer_config.target_classes[1]") == "mask"


def test_repeated_without_index_needs_exactly_one() -> None:
    tree = sample()
    assert tree.get("cost_function_config.target_classes.name") == "face"
    with pytest.raises(StepError) as err:
        tree.get("dataset_config.data_sources.tfrecords_path")
    assert str(err.value) == ("dataset_config.data_sources.tfrecords_path: data_sources is repeated "
                              "(2 entries here); say which one with [index]")


def test_index_and_key_errors() -> None:
    tree = sample()
    with pytest.raises(StepError) as err:
        tree.get("dataset_config.data_sources[2].tfrecords_path")
    assert str(err.value) == ("dataset_config.data_sources[2].tfrecords_path: data_sources has 2 entries, "
                              "so index 2 does not exist")
    with pytest.raises(StepError) as err:
        tree.get("postprocessing_config.target_class_config[person].value")
    assert str(err.value).endswith('target_class_config has no entry with key "person"; keys present: '
                                   '"face", "mask"')
    with pytest.raises(StepError, match=r"^model_config: field model_config is not set$"):
        tree.get("model_config")
    with pytest.raises(StepError, match=r"dataset_config.validation_data_source.tfrecords_path is a value "
                                        r"\(\"v\"\), not a message"):
        tree.set("dataset_config.validation_data_source.tfrecords_path.x", 1)


@pytest.mark.parametrize("path", ["a..b", "a.b[", "a.1b", "a.b[0]x", ""])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(StepError, match="bad field path"):
        parse_path(path)


def test_key_may_contain_dots() -> None:
    segments = parse_path('a.b["traffic.sign"].c')
    assert [s.name for s in segments] == ["a", "b", "c"] and segments[1].key == "traffic.sign"


def test_set_replaces_in_place_or_creates_on_the_way() -> None:
    tree = sample()
    tree.set("dataset_config.data_sources[0].tfrecords_path", "z")
    assert tree.get_all("dataset_config.data_sources")[0] == Message([("tfrecords_path", "z")])
    tree.set("inferencer_config.tlt_config.model", "/m.hdf5")
    assert tree.get("inferencer_config") == Message(
        [("target_classes", "face"), ("target_classes", "mask"),
         ("tlt_config", Message([("model", "/m.hdf5")]))]
    )
    with pytest.raises(StepError, match="say which one with"):
        tree.set("inferencer_config.target_classes", "x")


def test_remove_add_replace_and_find_keyed() -> None:
    tree = sample()
    assert tree.remove("dataset_config.data_sources") == 2
    assert tree.remove("dataset_config.data_sources") == 0
    assert tree.remove("model_config.pretrained_model_file") == 0
    assert tree.remove("postprocessing_config.target_class_config[face]") == 1
    assert [m.get("key") for m in tree.get_all("postprocessing_config.target_class_config")] == ["mask"]
    tree.add("dataset_config.data_sources", Message([("tfrecords_path", "new")]))
    assert [n for n, _ in tree.get("dataset_config").items()] == ["validation_data_source", "data_sources"]
    tree.get("inferencer_config").replace("target_classes", ["x", "y", "z"])
    assert tree.get_all("inferencer_config.target_classes") == ["x", "y", "z"]
    entry = tree.find_keyed("postprocessing_config.target_class_config", "mask")
    assert entry is not None and entry.get("value.clustering_config.dbscan_eps") == 0.2
    assert tree.find_keyed("postprocessing_config.target_class_config", "face") is None
    assert tree.find_keyed("cost_function_config.target_classes", "face", key_field="name") is not None
    assert tree.find_keyed("nothing.here", "face") is None
    with pytest.raises(StepError, match=r"takes no \[index\] or \[key\]"):
        tree.add("dataset_config.data_sources[0]", Message())


def test_replace_keeps_position_of_first_entry() -> None:
    msg = Message([("a", 1), ("b", 1), ("c", 1), ("b", 2), ("d", 1)])
    msg.replace("b", [7, 8, 9])
    assert msg.items() == [("a", 1), ("b", 7), ("b", 8), ("b", 9), ("c", 1), ("d", 1)]
    msg.replace("e", [5])
    assert msg.items()[-1] == ("e", 5)


def test_copy_is_deep() -> None:
    tree = sample()
    clone = tree.copy()
    clone.set("dataset_config.validation_data_source.tfrecords_path", "changed")
    assert tree.get("dataset_config.validation_data_source.tfrecords_path") == "v"
