"""The dry run's step graph: Mermaid always, SVG through Graphviz `dot` when it is installed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tao_aml.azure.submit import build_job
from tao_aml.repo.graph import dot_source, mermaid, write_graph

# Stand-in for Graphviz: checks its command line and that it was given a DOT digraph, then writes an SVG.
FAKE_DOT = """#!/bin/sh
[ "$1" = "-Tsvg" ] && [ "$2" = "-o" ] && [ -n "$3" ] && [ $# -eq 3 ] || { echo "usage: dot -Tsvg -o FILE" >&2; exit 2; }
source=$(cat)
case "$source" in "digraph "*"}"*) ;; *) echo "syntax error: not a digraph" >&2; exit 1;; esac
printf '<svg xmlns="http://www.w3.org/2000/svg"><!-- %s --></svg>' "$(echo "$source" | grep -c -- '->')" > "$3"
"""


@pytest.fixture(scope="module")
def steps():
    return build_job("facenet", ["gpu_compute=my-gpu"]).steps


def test_mermaid_shows_every_step_edge_and_compute(steps) -> None:
    text = mermaid("facenet", steps)
    for step in steps:
        assert f's_{step.name}["<b>{step.name}</b><br/>{step.component}<br/>on {step.compute}<br/>' in text
        for before in step.upstream:
            assert f"s_{before} --> s_{step.name}" in text
    assert ('s_train["<b>train</b><br/>tao_detectnet_v2_train<br/>on my-gpu<br/>1 node x 1 GPU<br/>80 epochs<br/>~'
            in text)
    assert "| `download_wider` | - | `cpu-cluster` (cpu_compute) |" in text
    assert "s_train --> s_prune" in text and "s_prune --> s_retrain" in text


def test_dot_source_matches_the_steps(steps) -> None:
    source = dot_source("facenet", steps)
    assert source.startswith('digraph "facenet" {') and source.rstrip().endswith("}")
    assert '"train" [label="train\\ntao_detectnet_v2_train\\non my-gpu\\n1 node x 1 GPU\\n80 epochs\\n~' in source
    assert source.count(" -> ") == sum(len(step.upstream) for step in steps)


def test_svg_only_when_dot_is_installed(steps, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert write_graph("facenet", steps, tmp_path / "a") == [tmp_path / "a" / "facenet.graph.md"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dot").write_text(FAKE_DOT)
    (bin_dir / "dot").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    written = write_graph("facenet", steps, tmp_path / "b")
    assert written == [tmp_path / "b" / "facenet.graph.md", tmp_path / "b" / "facenet.graph.svg"]
    edges = sum(len(step.upstream) for step in steps)
    assert f"<!-- {edges} -->" in written[1].read_text()


def test_a_broken_dot_does_not_fail_the_dry_run(steps, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "dot").write_text("#!/bin/sh\necho 'dot: crashed' >&2\nexit 1\n")
    (tmp_path / "dot").chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert write_graph("facenet", steps, tmp_path / "out") == [tmp_path / "out" / "facenet.graph.md"]
