"""The layout change (issue 21) sends the same jobs: every pipeline's REST body, for every way of running it,
equals the body the tree before the move wrote (commit f62d43d), once the moved module names are mapped.

tests/data/rest_bodies_before/<pipeline>-<profile>.json.gz holds `tao-aml submit <pipeline> --dry-run` bodies
(`<output-dir>/<pipeline>/<pipeline>.rest.json`) written by that tree, with the checkout path as `<repo>`.
They guard that move: a later change that alters a body on purpose re-captures them or retires this test.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tao_aml.azure.render import rest_body
from tao_aml.azure.submit import build_job

REPO = Path(__file__).resolve().parents[1]
BEFORE = REPO / "tests" / "data" / "rest_bodies_before"
PIPELINES = ["facenet", "bodypose", "detectnet_v2"]
# profile -> build_job keywords, as the CLI passes them for the flags the golden bodies were made with.
RUNS: dict[str, dict[str, Any]] = {
    "default": {},
    "smoke": {"profile": "smoke"},  # --profile smoke
    "serverless": {"serverless": True},  # --serverless
    "2x4": {"assignments": ["nodes=2", "gpus_per_node=4", "gpu_compute=a100-x4"]},  # + --gpu-compute a100-x4
}

S, U = "tao_aml.steps.", "tao_aml."
# Every module the layout change moved: old dotted name -> new (file paths follow: a/b.py -> c/a/b.py).
MOVED = {
    **{S + m: S + "data." + m for m in (
        "archives", "http_client", "http_fetch", "sha256sums", "download", "ngc_model", "wider_to_kitti",
        "kitti_prepare", "coco", "coco_subset", "coco_calibration", "formats")},
    **{S + m: S + "asset." + m for m in (
        "register_model", "deploy_bundle", "model_card", "onnx_graph", "portable_specs", "report")},
    **{S + m: S + "specs." + m for m in (
        "prototext", "detectnet_v2_schema", "spec_edit", "spec_templates")},
    S + "tao": S + "tao.command",
    **{S + m: S + "tao." + m for m in (
        "launch", "observe", "status_follow", "tracking", "metrics", "pruning", "model_files", "previews")},
    S + "detectnet_v2.engine_evaluate": S + "deploy.detectnet_v2_evaluate",
    S + "detectnet_v2.engine_inference": S + "deploy.detectnet_v2_inference",
    S + "detectnet_v2.gen_trt_engine": S + "deploy.detectnet_v2_gen_trt_engine",
    S + "detectnet_v2.engine_args": S + "deploy.engine_args",
    **{U + m: U + "repo." + m for m in (
        "pipelines", "profiles", "yaml_model", "validation", "spec_check", "graph", "gpu_time", "problems",
        "run_checks", "run_cost", "input_rules", "secret_rules", "data_assets")},
    **{U + m: U + "azure." + m for m in (
        "workspace", "submit", "render", "register", "model_asset", "endpoint", "images", "vm_sizes", "vm_prices")},
    **{U + m: U + "local." + m for m in ("local_run", "rehearse")},
}
# A dotted module (tao_aml.steps.report) or its file path (tao_aml/gpu_time.py, src/ in front or not).
MODULE = re.compile(r"(?<![\w.])tao_aml(?:\.\w+)+|(?<![\w.])tao_aml(?:/\w+)+(?:\.py)?")


def new_name(match: re.Match[str]) -> str:
    """The name after the move: its longest moved prefix replaced, in the same spelling (dots or slashes)."""
    text = match.group(0)
    slashed = "/" in text
    suffix = ".py" if text.endswith(".py") else ""
    parts = text.removesuffix(suffix).split("/" if slashed else ".")
    for end in range(len(parts), 1, -1):
        old = ".".join(parts[:end])
        if old in MOVED:
            moved = MOVED[old].split(".") + parts[end:]
            return ("/" if slashed else ".").join(moved) + suffix
    return text


def neutralised(body: dict[str, Any]) -> dict[str, Any]:
    """The body with the two digests of file contents replaced; the move rewrote those files' text.

    An anonymous environment's `version` is azure-ai-ml's hash of its build context (environments/tao_data's
    requirements.txt names a moved module in a comment); a data asset's `assetVersion` hashes the paths and bytes
    of the code that writes it (repo/data_assets.py `version`), whose paths and import lines the move changed.
    """
    def walk(value: Any) -> None:
        if isinstance(value, dict):
            environment = value.get("environment")
            if isinstance(environment, dict) and "build" in environment:
                environment["version"] = "<hash of the build context>"
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    for output in (body["properties"].get("outputs") or {}).values():
        if "assetVersion" in output:
            output["assetVersion"] = "<hash of the code that writes the asset>"
    return body


def first_difference(before: Any, now: Any, path: str = "") -> str | None:
    """The path of the first value that differs, with both values; None when equal."""
    if isinstance(before, dict) and isinstance(now, dict):
        for key in sorted(set(before) | set(now)):
            if key not in before or key not in now:
                return f"{path}.{key}: {'only now' if key in now else 'only before'}"
            found = first_difference(before[key], now[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(before, list) and isinstance(now, list) and len(before) == len(now):
        pairs = enumerate(zip(before, now, strict=True))
        return next(filter(None, (first_difference(b, n, f"{path}[{i}]") for i, (b, n) in pairs)), None)
    if json.dumps(before) == json.dumps(now):
        return None
    return f"{path}:\n  before (mapped): {before!r}\n  now:             {now!r}"


def test_the_table_maps_modules_that_left_to_modules_that_exist() -> None:
    def exists(name: str) -> bool:
        path = REPO / "src" / name.replace(".", "/")
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()

    assert [old for old in MOVED if exists(old) and old != S + "tao"] == []  # steps/tao/ is now a package
    assert [new for new in MOVED.values() if not exists(new)] == []


@pytest.mark.parametrize("profile", RUNS)
@pytest.mark.parametrize("name", PIPELINES)
def test_rest_body_is_unchanged_apart_from_module_paths(name: str, profile: str, tmp_path: Path) -> None:
    run = dict(RUNS[profile])
    built = build_job(name, run.pop("assignments", []), root=REPO, out_dir=tmp_path / name, **run)
    now = json.loads(json.dumps(rest_body(built.job), sort_keys=True).replace(str(REPO), "<repo>"))
    golden = gzip.decompress((BEFORE / f"{name}-{profile}.json.gz").read_bytes()).decode()
    before = json.loads(MODULE.sub(new_name, golden))
    before, now = neutralised(before), neutralised(now)
    # Compared as JSON text: True and 1 are equal in Python, not in the body.
    assert json.dumps(before, sort_keys=True) == json.dumps(now, sort_keys=True), (
        f"{name} ({profile}) body differs from commit f62d43d's at {first_difference(before, now)}")
