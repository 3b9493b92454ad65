"""Azure VM sizes a TAO step may run on, by the NVIDIA GPUs they carry.

From Microsoft's size pages (learn.microsoft.com/azure/virtual-machines/sizes: NCasT4_v3, NC_A100_v4,
ND_A100_v4, NCads_H100_v5, ND_H100_v5, NVadsA10_v5; checked 2026-12-03). TAO 5.0 needs a whole CUDA GPU:
AMD (NVv4) and fractional A10 sizes are left out, and the V100 NC*s_v3 sizes were retired on 2025-09-30.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_GPU_SIZE = "Standard_NC24ads_A100_v4"  # 1 x A100 80 GB
DEFAULT_CPU_SIZE = "Standard_D4s_v3"  # 4 vCPUs, 16 GiB: downloads, conversion, report

# size -> (GPUs, GPU model)
GPU_SIZES: dict[str, tuple[int, str]] = {
    "Standard_NC4as_T4_v3": (1, "T4 16 GB"),
    "Standard_NC8as_T4_v3": (1, "T4 16 GB"),
    "Standard_NC16as_T4_v3": (1, "T4 16 GB"),
    "Standard_NC64as_T4_v3": (4, "T4 16 GB"),
    "Standard_NC24ads_A100_v4": (1, "A100 80 GB"),
    "Standard_NC48ads_A100_v4": (2, "A100 80 GB"),
    "Standard_NC96ads_A100_v4": (4, "A100 80 GB"),
    "Standard_ND96asr_v4": (8, "A100 40 GB"),
    "Standard_ND96amsr_A100_v4": (8, "A100 80 GB"),
    "Standard_NC40ads_H100_v5": (1, "H100 NVL 94 GB"),
    "Standard_NC80adis_H100_v5": (2, "H100 NVL 94 GB"),
    "Standard_ND96isr_H100_v5": (8, "H100 80 GB"),
    "Standard_NV36ads_A10_v5": (1, "A10 24 GB"),
    "Standard_NV72ads_A10_v5": (2, "A10 24 GB"),
}
RETIRED = re.compile(r"^Standard_NC(6|12|24)s_v[23]r?$|^Standard_NC(6|12|24)r?$|^Standard_ND(6|12|24)r?s?$")
GPU_FAMILY = re.compile(r"^Standard_N[CDV]", re.I)


def gpu_size_problem(size: str, gpus_per_node: int = 1) -> str | None:
    """Why `size` cannot run a GPU step with this many GPUs per node, or None."""
    if RETIRED.match(size):
        return f"{size} was retired by Azure (V100/K80/P100 sizes); use one of: {', '.join(GPU_SIZES)}"
    known = GPU_SIZES.get(size)
    if known is None:
        kind = "not a size this project knows" if GPU_FAMILY.match(size) else "a size without an NVIDIA GPU"
        return f"{size} is {kind}; GPU steps need one of: {', '.join(GPU_SIZES)}"
    if gpus_per_node > known[0]:
        return f"{size} has {known[0]} GPU(s) ({known[1]}), fewer than gpus_per_node={gpus_per_node}"
    return None


@dataclass(frozen=True)
class ClusterFile:
    """A cluster as compute/*.yml defines it for `az ml compute create -f` (and `tao-aml compute create`)."""

    path: Path
    size: str
    max_nodes: int
    idle_s: int = 0  # idle_time_before_scale_down: how long a node stays up, billed, after its last job


def repository_cluster(root: Path, name: str) -> ClusterFile | None:
    """The compute/*.yml whose cluster is called `name`, or None (a cluster this repository does not define)."""
    for path in sorted((root / "compute").glob("*.yml")):
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if spec.get("name") == name:
            return ClusterFile(path, str(spec.get("size", "")), int(spec.get("max_instances", 1)),
                               int(spec.get("idle_time_before_scale_down", 0)))
    return None
