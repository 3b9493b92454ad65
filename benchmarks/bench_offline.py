"""The offline commands against azure-ai-ml alone, in the same run, as whole processes (import time included).

- `tao-aml submit NAME --dry-run` vs azure-ai-ml's own `load_job` + `_validate()` of the same pipeline job
  (what a user of azure-ai-ml alone runs before submitting); target: within 1.25x.
- `tao-aml validate` vs azure-ai-ml loading every YAML of the repository once (`load_component` /
  `load_job`); target: under 2x.

Run: `.venv/bin/python benchmarks/bench_offline.py [--repeat 5]`. Prints the median seconds and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAO_AML = [sys.executable, "-m", "tao_aml.cli"]

LOAD_JOB = """
import sys
from azure.ai.ml import load_job
job = load_job(sys.argv[1])
result = job._validate()
assert result.passed, result.error_messages
job._to_rest_object()
"""
LOAD_ALL = """
import sys
from pathlib import Path
from azure.ai.ml import load_component, load_job
root = Path(sys.argv[1])
for path in sorted(root.glob("components/*/*/component.yml")) + sorted(root.glob("pipelines/*/pipeline_component.yml")):
    load_component(path)
for path in sorted(root.glob("pipelines/*/pipeline.yml")):
    load_job(path)
"""


def median_seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for name in ("facenet", "bodypose"):
            ours = median_seconds([*TAO_AML, "submit", name, "--dry-run", "--output-dir", out], args.repeat)
            job = str(REPO / "pipelines" / name / "pipeline.yml")
            baseline = median_seconds([sys.executable, "-c", LOAD_JOB, job], args.repeat)
            rows.append((f"submit {name} --dry-run", ours, "load_job + _validate", baseline, 1.25))
    ours = median_seconds([*TAO_AML, "validate"], args.repeat)
    baseline = median_seconds([sys.executable, "-c", LOAD_ALL, str(REPO)], args.repeat)
    rows.append(("validate", ours, "load every YAML once", baseline, 2.0))
    print(f"{'command':<28} {'ours s':>7}  {'baseline':<22} {'base s':>7} {'ratio':>6}  target")
    for command, ours, base_name, base, target in rows:
        ratio = ours / base
        print(f"{command:<28} {ours:7.2f}  {base_name:<22} {base:7.2f} {ratio:5.2f}x  <= {target}x "
              + ("met" if ratio <= target else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
