"""Every pipeline's REST body, for every way of running it, changes only on purpose.

tests/data/rest_bodies/<pipeline>-<run>.json.gz holds the body `tao-aml submit <pipeline> --dry-run` writes
(`<output-dir>/<pipeline>/<pipeline>.rest.json`) with the checkout path as `<repo>`. A change that alters a body on
purpose re-captures them: `TAO_AML_UPDATE_REST_BODIES=1 python -m pytest tests/test_rest_bodies.py`, and a
reviewer reads the change in the decompressed files (`zcat`).

The layout change (issue 21) was proven with this test at commit b6bfdc5: the bodies written by the tree before it
(f62d43d), with the moved module names mapped, equalled the new ones. The pruning sweep (issue 22) changed them on
purpose (run_report's `sweep` input) and added the `sweep3` run.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tao_aml.azure.render import rest_body
from tao_aml.azure.submit import build_job

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "rest_bodies"
UPDATE = os.environ.get("TAO_AML_UPDATE_REST_BODIES") == "1"
PIPELINES = ["facenet", "bodypose", "detectnet_v2"]
# profile -> build_job keywords, as the CLI passes them for the flags the golden bodies were made with.
RUNS: dict[str, dict[str, Any]] = {
    "default": {},
    "smoke": {"profile": "smoke"},  # --profile smoke
    "serverless": {"serverless": True},  # --serverless
    "2x4": {"assignments": ["nodes=2", "gpus_per_node=4", "gpu_compute=a100-x4"]},  # + --gpu-compute a100-x4
    "sweep3": {"assignments": ["pruning_thresholds=0.05,0.1,0.2", "max_map_drop=2"]},  # a pruning sweep
}


def neutralised(body: dict[str, Any]) -> dict[str, Any]:
    """The body with the two digests of file contents replaced: any edit of those files changes them, not the job.

    An anonymous environment's `version` is azure-ai-ml's hash of its build context; a data asset's `assetVersion`
    hashes the paths and bytes of the code that writes it (repo/data_assets.py `version`).
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


@pytest.mark.parametrize("profile", RUNS)
@pytest.mark.parametrize("name", PIPELINES)
def test_rest_body_is_the_captured_one(name: str, profile: str, tmp_path: Path) -> None:
    run = dict(RUNS[profile])
    built = build_job(name, run.pop("assignments", []), root=REPO, out_dir=tmp_path / name, **run)
    text = json.dumps(rest_body(built.job), sort_keys=True, indent=1).replace(str(REPO), "<repo>")
    path = GOLDEN / f"{name}-{profile}.json.gz"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(text.encode() + b"\n", mtime=0))
    before = neutralised(json.loads(gzip.decompress(path.read_bytes())))
    now = neutralised(json.loads(text))
    # Compared as JSON text: True and 1 are equal in Python, not in the body.
    assert json.dumps(before, sort_keys=True) == json.dumps(now, sort_keys=True), (
        f"{name} ({profile}) body differs from tests/data/rest_bodies at {first_difference(before, now)} "
        "(on purpose? re-capture: see this module's docstring)")
