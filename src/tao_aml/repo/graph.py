"""A picture of a pipeline's step graph: Mermaid in Markdown always, SVG when Graphviz `dot` is installed.

Each node shows the step's name and `StepPlan.details()` (component, compute, nodes x GPUs); nodes are coloured by
the pipeline input that names their compute, so GPU and CPU steps stand apart.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from tao_aml.repo.step_plan import StepPlan

LOG = logging.getLogger(__name__)
# (colour name, fill, stroke) per compute input, in order of first use.
PALETTE = [
    ("green", "#d8f3dc", "#2d6a4f"), ("blue", "#dbe7fb", "#1d4e89"),
    ("orange", "#fde2cf", "#9a4a12"), ("grey", "#eeeeee", "#555555"),
]


def _colours(steps: list[StepPlan]) -> dict[str, tuple[str, str, str]]:
    inputs = list(dict.fromkeys(step.compute_input or "fixed" for step in steps))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(inputs)}


def mermaid(name: str, steps: list[StepPlan]) -> str:
    """A Markdown page: the Mermaid flowchart, then the same steps as a table."""
    colours = _colours(steps)
    lines = ["flowchart TD"]
    for step in steps:
        label = "<br/>".join([f"<b>{step.name}</b>", *step.details()]).replace('"', "#quot;")
        lines.append(f'  s_{step.name}["{label}"]:::{step.compute_input or "fixed"}')
    lines += [f"  s_{before} --> s_{step.name}" for step in steps for before in step.upstream]
    lines += [f"  classDef {key} fill:{fill},stroke:{stroke}" for key, (_, fill, stroke) in colours.items()]
    legend = ", ".join(f"{colour}: steps on `{key}`" for key, (colour, _, _) in colours.items())
    table = ["| step | runs after | compute | component |", "|---|---|---|---|"]
    table += [
        f"| `{step.name}` | {', '.join(step.upstream) or '-'} | `{step.compute}` ({step.compute_input or 'fixed'}) "
        f"| `{step.component}` |"
        for step in steps
    ]
    return "\n".join(
        [f"# Pipeline `{name}`: {len(steps)} steps", "", f"Node colours: {legend}.", "", "```mermaid", *lines, "```",
         "", *table, ""]
    )


def _dot_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def dot_source(name: str, steps: list[StepPlan]) -> str:
    colours = _colours(steps)
    lines = [
        f'digraph "{_dot_text(name)}" {{',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
    ]
    for step in steps:
        _, fill, stroke = colours[step.compute_input or "fixed"]
        label = "\\n".join(_dot_text(line) for line in [step.name, *step.details()])
        lines.append(f'  "{step.name}" [label="{label}", fillcolor="{fill}", color="{stroke}"];')
    lines += [f'  "{before}" -> "{step.name}";' for step in steps for before in step.upstream]
    return "\n".join([*lines, "}", ""])


def write_graph(name: str, steps: list[StepPlan], out_dir: Path) -> list[Path]:
    """`<name>.graph.md`, plus `<name>.graph.svg` when `dot` is on PATH; the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / f"{name}.graph.md"
    markdown.write_text(mermaid(name, steps), encoding="utf-8")
    written = [markdown]
    dot = shutil.which("dot")
    if dot is None:
        LOG.info("Graphviz `dot` not found: no SVG, the Mermaid graph is in %s", markdown)
        return written
    svg = out_dir / f"{name}.graph.svg"
    try:
        subprocess.run(
            [dot, "-Tsvg", "-o", str(svg)], input=dot_source(name, steps), text=True,
            check=True, capture_output=True, timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as err:
        # The picture is a convenience: a broken Graphviz must not fail the dry run.
        LOG.warning("Graphviz `dot` failed, no SVG written: %s", err)
        return written
    return [*written, svg]
