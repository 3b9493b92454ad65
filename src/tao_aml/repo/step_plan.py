"""One step of a built job as the printout, the graph and the estimates see it.

The submitter fills it from the job it is about to send (azure/submit.py); the graph (repo/graph.py) and
the bill (repo/run_cost.py) read it, so it lives below all three.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StepPlan:
    """One step as the printout and the graph show it; add fields here to show more per step."""

    name: str
    component: str
    compute: str
    compute_input: str | None  # the pipeline input naming the compute, e.g. gpu_compute
    upstream: tuple[str, ...]
    nodes: int = 1
    gpus_per_node: int = 0
    instance_type: str | None = None  # serverless only
    spot: bool = False
    gpu_hours: float | None = None  # estimated (repo/gpu_time.py)
    epochs: int | None = None  # what TAO trains: the epochs input, or a spec override that replaces it
    hours: float | None = None  # estimated hours from start to end, each of its VMs billed for them (repo/gpu_time.py)
    vm_size: str | None = None  # the serverless size, or the size compute/*.yml gives its cluster; None: unknown

    def details(self) -> list[str]:
        """Lines under the step's name in the graph, and after it in the printout."""
        resources = f"{_count(self.nodes, 'node')} x {_count(self.gpus_per_node, 'GPU')}"
        where = f"on {self.compute}"
        if self.instance_type:
            where += f" {self.instance_type}" + (" (spot)" if self.spot else "")
        epochs = [] if self.epochs is None else [_count(self.epochs, "epoch")]
        estimate = [] if self.gpu_hours is None else [f"~{self.gpu_hours:g} GPU-h"]
        return [self.component, where, resources, *epochs, *estimate]


def _count(number: int, word: str) -> str:
    return f"{number} {word}" + ("" if number == 1 else "s")
