"""README.md of a model asset: what the model is, its tensors, metrics, thresholds and how to deploy it.

Written from model_card.json (the same facts, for people), so the two never disagree.
"""

from typing import Any, Dict, List, Optional


def _value(value: Any) -> str:
    if isinstance(value, float):
        return "{:.4g}".format(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return "{:,}".format(value)
    return "-" if value is None else str(value)


def _tensors(card: Dict[str, Any]) -> List[str]:
    lines = ["| | name | type | shape |", "|---|---|---|---|"]
    for kind in ("inputs", "outputs"):
        for tensor in card.get("graph", {}).get(kind, []):
            shape = ", ".join(str(d) if isinstance(d, int) else "batch" if axis == 0 else "dynamic"
                              for axis, d in enumerate(tensor["shape"]))
            lines.append("| {} | `{}` | {} | [{}] |".format(kind[:-1], tensor["name"], tensor["type"], shape))
    return lines


def _metrics(report: Optional[Dict[str, Any]]) -> List[str]:
    if not report:
        return ["No run report was connected: no metrics."]
    lines = ["| model | metric | value |", "|---|---|---|"]
    for row in report.get("accuracy", []):
        lines.append("| {} | {} | {} |".format(row["model"], row["metric"] or "-", _value(row["value"])))
    check = report.get("engine_check")
    if check:
        lines.append("| TensorRT engine ({}) | {} | {} (drop {}) |".format(
            check["precision"] or "-", check["metric"], _value(check["engine_value"]), _value(check["drop"])))
    return lines


def _size_mb(size: Any) -> str:
    return _value(size / 1e6) if isinstance(size, (int, float)) else "-"


def _pruning_sweep(sweep: Optional[Dict[str, Any]]) -> List[str]:
    """Which pruning threshold the model was pruned with, why, and what the other thresholds gave."""
    if not sweep:
        return []
    chosen, unit = sweep["chosen"], sweep.get("unit") or ""
    limit = sweep.get("max_map_drop")
    lines = ["", "## Pruning sweep", "",
             "This model was pruned with threshold {}, chosen among {} thresholds tried ({}): {}. {}.".format(
                 _value(chosen.get("threshold")), len(sweep["thresholds"]),
                 ", ".join(_value(t) for t in sweep["thresholds"]), str(chosen.get("why") or "-").rstrip("."),
                 "max_map_drop {} {}".format(_value(limit), unit).strip() if limit is not None
                 else "max_map_drop was unset: the most accurate branch is chosen"), "",
             "| pruning threshold | {} | parameters | model (MB) | status |".format(sweep.get("metric") or "metric"),
             "|---|---|---|---|---|",
             "| unpruned | {} | {} | - | - |".format(_value((sweep.get("unpruned") or {}).get("value")),
                                                  _value((sweep.get("unpruned") or {}).get("parameters")))]
    for branch in sweep["branches"]:
        status = str(branch.get("status")) + (": " + str(branch["reason"]) if branch.get("reason") else "")
        lines.append("| {}{} | {} | {} | {} | {} |".format(
            _value(branch.get("threshold")), " (chosen)" if branch.get("branch") == chosen.get("branch") else "",
            _value(branch.get("value")), _value(branch.get("parameters")), _size_mb(branch.get("model_bytes")),
            " ".join(status.replace("|", "/").split())))
    return lines


def _thresholds(post: Dict[str, Any]) -> List[str]:
    lines = ["| class | clustering | coverage threshold | DBSCAN eps / min samples | confidence threshold | "
             "NMS IoU / confidence | min box height |", "|---|---|---|---|---|---|---|"]
    for name in post["classes"]:
        c = post["clustering"][name]
        lines.append("| {} | {} | {} | {} / {} | {} | {} / {} | {} |".format(
            name, c["algorithm"], _value(c["coverage_threshold"]), _value(c["dbscan_eps"]), c["dbscan_min_samples"],
            _value(c["dbscan_confidence_threshold"]), _value(c["nms_iou_threshold"]),
            _value(c["nms_confidence_threshold"]), _value(c["minimum_bounding_box_height"])))
    return lines


def _plan(plan: Dict[str, Any]) -> List[str]:
    if plan.get("included"):
        return ["- The Triton repository also holds the TensorRT engine as `model.plan`: it loads only on {} GPUs "
                "(compute capability {}) in a Triton with TensorRT {}.".format(
                    plan.get("gpu"), plan.get("compute_capability"), plan.get("tensorrt"))]
    return ["- The Triton repository holds the ONNX model alone: no TensorRT plan, because {}.".format(
        plan.get("reason") or "none was asked for")]


def _deepstream_vs_tao(notes: Optional[Dict[str, Any]]) -> List[str]:
    if not notes:
        return []
    lines = ["", "## DeepStream and TAO", "", "The inference spec clusters with {}: {}. Where nvinfer differs from "
             "TAO Deploy (and `tao-aml predict`):".format(notes["clustering"].upper(), notes["reproduces"]), ""]
    return lines + ["- {}.".format(text) for text in notes["differences"]]


def readme(card: Dict[str, Any], report: Optional[Dict[str, Any]]) -> str:
    family, name = card.get("family"), card.get("name") or "(no name: pipeline input model_name unset)"
    engine = card.get("engine") or {}
    lines = [
        "# {}".format(name), "",
        "NVIDIA TAO {} {} model trained by the tao-aml pipeline{}.".format(
            card.get("tao_version"), family, " ({})".format(report["title"]) if report and report.get("title") else ""),
        "",
        "## Files", "",
        "| file | size (MB) |", "|---|---|",
    ]
    lines += ["| `{}` | {} |".format(path, _value(info["size_mb"])) for path, info in card["files"].items()]
    lines += ["", "model_card.json lists the same files with their sha256.", ""]
    for folder, model in (card.get("models") or {}).items():  # BodyPoseNet: two exports of one model
        lines += ["- `{}/`: for {}.".format(folder, model["use"])]
    if card.get("models"):
        lines += ["", "The inputs and outputs below are those of the model for deployment.", ""]
    lines += ["## Inputs and outputs", ""]
    lines += _tensors(card)
    post = card.get("postprocessing")
    if post:
        net, pre = post["network"], post["preprocessing"]
        lines += [
            "", "Input: {} x {} pixels, {} channels, NCHW, RGB scaled by 1/255 (no mean). Images are letterboxed "
            "to that size (aspect kept, centred, black padding){}.".format(
                net["width"], net["height"], net["channels"],
                ", grayscale replicated to 3 channels as the model was trained" if pre["grayscale"] else ""),
            "Outputs: a {} x {} grid (stride {}) of coverage per class and of box edges per class: distances "
            "from each cell centre (i * {} + {}) in units of {} pixels (left, top, right, bottom).".format(
                net["grid_width"], net["grid_height"], net["stride"], net["stride"], net["bbox_offset"],
                net["bbox_scale"]),
            "", "## Decoding thresholds (from the inference spec the pipeline used)", "",
        ]
        lines += _thresholds(post)
    lines += ["", "## Metrics", ""] + _metrics(report)
    lines += _pruning_sweep(card.get("pruning_sweep"))
    if engine:
        lines += ["", "## TensorRT engine", "",
                  "`{}`: {} precision, max batch size {}, TensorRT {} ({}). An engine runs only on the TensorRT "
                  "version and GPU family that built it.".format(
                      engine.get("engine_file"), engine.get("data_type"), engine.get("max_batch_size"),
                      engine.get("tensorrt"), engine.get("built_with"))]
    lines += ["", "## How to deploy it", ""]
    if card.get("deepstream"):
        lines += ["- DeepStream (Gst-nvinfer): " + ", ".join("`deepstream/{}`".format(f) for f in card["deepstream"])
                  + "; paths inside are relative to deepstream/."]
    triton = card.get("triton")
    if triton:
        lines += ["- Triton: `triton/` is a model repository ({}); `tao-aml model register` registers it as a "
                  "`triton_model` asset <name>-triton and `tao-aml deploy --model <name>-triton:VERSION --endpoint "
                  "NAME` serves it on an Azure ML managed online endpoint.".format(
                      ", ".join("`{}`".format(m) for m in triton["models"]))]
        lines += _plan(triton.get("plan") or {})
    if post:
        lines += ["- On this machine: `tao-aml predict --local <this folder> IMAGE...` (onnxruntime, CPU) writes "
                  "boxes as JSON and annotated images, decoded as TAO Deploy decodes them."]
    lines += _deepstream_vs_tao(card.get("deepstream_vs_tao"))
    notes = card.get("spec_notes") or {}
    if notes:
        lines += ["", "## Specs", ""]
        lines += ["- `specs/{}`: {}.".format(spec, note) for spec, note in notes.items()]
    return "\n".join(lines) + "\n"
