"""What a run is billed, before it runs: whole VMs for each step's estimated hours, at azure/vm_prices.py's prices.

Azure bills a VM for as long as it runs, whatever share of it a step uses: a step on 1 GPU of a 4-GPU
serverless VM is billed 4 GPU-hours an hour. So a step is billed nodes x hours VM-hours, its GPU-hours
billed are those VM-hours x the GPUs of its size (azure/vm_sizes.py), and its price those VM-hours x the size's
hourly price. The hours are gpu_time.py's guesses; everything printed here is marked as an estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tao_aml.azure import vm_prices, vm_sizes
from tao_aml.repo import sweep as sweeps


class Step(Protocol):
    """What a bill needs of a step (repo/step_plan.py)."""

    name: str
    compute: str
    nodes: int
    spot: bool
    hours: float | None
    vm_size: str | None
    gpu_hours: float | None


@dataclass(frozen=True)
class Bill:
    step: str
    size: str | None  # None: a cluster compute/*.yml does not define, so its size is unknown here
    vm_hours: float | None
    gpu_hours: float | None  # billed: every GPU of every VM, used or not
    usd: float | None


def bill(step: Step) -> Bill:
    vm_hours = None if step.hours is None else step.nodes * step.hours
    gpus = vm_sizes.GPU_SIZES.get(step.vm_size, (0, ""))[0] if step.vm_size else None
    price = vm_prices.hourly(step.vm_size, step.spot)
    return Bill(step.name, step.vm_size, vm_hours,
                None if vm_hours is None or gpus is None else vm_hours * gpus,
                None if vm_hours is None or price is None else vm_hours * price)


def _total(values: Sequence[float | None]) -> float | None:
    """The sum, or None when any part is unknown (a partial sum would read as the whole)."""
    return None if any(value is None for value in values) else sum(v for v in values if v is not None)


def _hours(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def idle_lines(steps: Sequence[Step], root: Path) -> list[str]:
    """Each repository cluster the run uses stays up, billed, idle_time_before_scale_down after its last step."""
    lines = []
    for name in dict.fromkeys(step.compute for step in steps):
        cluster = vm_sizes.repository_cluster(root, name)
        if cluster is None or not cluster.idle_s:
            continue
        hours = cluster.idle_s / 3600.0
        price = vm_prices.hourly(cluster.size)
        lines.append(f"{name} keeps each node up {cluster.idle_s} s after its last step (idle_time_before_scale_down "
                     f"in compute/{cluster.path.name}): up to {_hours(hours)} VM-h, "
                     f"{vm_prices.usd(None if price is None else hours * price)} more per node")
    return lines


def lines(steps: Sequence[Step], root: Path) -> list[str]:
    """The dry run's cost table: per step and in total, VM-hours and GPU-hours billed and the price, marked
    as an estimate with the prices' source and date."""
    bills = [bill(step) for step in steps]
    width = max(len(b.step) for b in bills)
    size_width = max(len(b.size or "unknown") for b in bills)
    row = f"  {{:<{width}}}  {{:<{size_width}}}  {{:>11}}  {{:>12}}  {{:>10}}"
    out = ["estimated cost (an estimate: guessed hours x list prices, not a quote):",
           row.format("step", "VM size", "VM-h billed", "GPU-h billed", "price")]
    for b in bills:
        out.append(row.format(b.step, b.size or "unknown", _hours(b.vm_hours), _hours(b.gpu_hours),
                              vm_prices.usd(b.usd)))
    total_usd = _total([b.usd for b in bills])
    out.append(row.format("total", "", _hours(_total([b.vm_hours for b in bills])),
                          _hours(_total([b.gpu_hours for b in bills])), vm_prices.usd(total_usd)))
    for compute in dict.fromkeys(step.compute for step in steps if step.vm_size is None):
        out.append(f"  unknown: {compute} is no cluster of compute/*.yml, so its VM size is not known offline")
    for size in dict.fromkeys(b.size for b in bills if b.size and b.usd is None and b.vm_hours is not None):
        out.append(f"  unknown: src/tao_aml/azure/vm_prices.py has no {'spot ' if any(st.spot for st in steps) else ''}"
                   f"price for {size}")
    out += [f"  + {line}" for line in idle_lines(steps, root)]
    out.append("  billed: whole VMs, nodes x hours; a step on 1 GPU of a 4-GPU VM is billed 4 GPU-hours an hour")
    out.append(f"  prices: {vm_prices.source_note(any(step.spot for step in steps))}")
    out.append("  hours: guesses in src/tao_aml/repo/gpu_time.py (the run report prints the measured ones); not "
               "included: node start-up and image pulls, storage, network, container registry")
    return out


def sweep_line(steps: Sequence[Step], sweep: sweeps.Sweep) -> str:
    """A pruning sweep's estimated GPU-hours and price beside a single threshold's: the same job without the
    extra branches and the selection step."""
    def totals(kept: list[Step]) -> str:
        hours = sum(step.gpu_hours or 0.0 for step in kept)
        price = _total([bill(step).usd for step in kept])
        return f"~{hours:.3g} GPU-hours, " + ("price unknown" if price is None else f"about {vm_prices.usd(price)}")

    single = [step for step in steps if not sweeps.is_extra(step.name)]
    return f"pruning sweep: {sweep.label()}: {totals(list(steps))}; one threshold: {totals(single)}"


def monthly_line(instance_type: str, instance_count: int) -> str:
    """A managed online deployment's price for a month: it is billed while it exists, requests or not."""
    price = vm_prices.hourly(instance_type)
    hours = f"{instance_count} x {vm_prices.HOURS_PER_MONTH} h"
    if price is None:
        return (f"estimated price: unknown ({instance_type} has no price in src/tao_aml/azure/vm_prices.py); the "
                f"endpoint is billed {hours} a month of its VMs, requests or not")
    return (f"estimated price: {vm_prices.usd(instance_count * vm_prices.HOURS_PER_MONTH * price)} a month "
            f"({hours} of {instance_type} at ${price:.3f}/h, billed while the deployment exists, requests "
            f"or not; an estimate from {vm_prices.source_note()})")
