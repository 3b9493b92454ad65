"""A pruning sweep rehearsed end to end (`tao-aml rehearse NAME --set pruning_thresholds=...`): one prune,
retrain and evaluation per threshold, one branch failing in TAO, the selection, and the chosen model in the
asset with the sweep in its card and the run report.

The simulated TAO prunes more the higher the threshold and scores a model that kept too few parameters
lower (tao_standin.py, PRUNING); TAO_STANDIN_FAIL_PRUNE_FROM makes prune fail from a threshold on.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from tao_aml.cli import main
from tao_aml.simulate import invocations

# pipeline: (thresholds, max_map_drop, the branch the selection must choose). The third threshold fails in
# prune; the second prunes more than the first and stays within max_map_drop, so it is the smallest model.
SWEEPS = {
    "facenet": ((0.0000052, 0.00002, 0.5), 5.0, 2),
    "bodypose": ((0.2, 0.5, 0.9), 0.01, 2),
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Swept:
    workdir: Path
    out: str
    calls: list[dict]

    @property
    def run(self) -> Path:
        return self.workdir / "run"

    @property
    def model(self) -> Path:
        return self.run / "register_model" / "model"

    @property
    def report(self) -> Path:
        return self.run / "report" / "report"


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Swept]:
    done: dict[str, Swept] = {}

    def of(name: str) -> Swept:
        if name not in done:
            base = tmp_path_factory.mktemp(name)
            thresholds, limit, _ = SWEEPS[name]
            with pytest.MonkeyPatch.context() as patch, redirect_stdout(io.StringIO()) as out:
                patch.setenv("TAO_STANDIN_LOG", str(base / "tao.jsonl"))
                patch.setenv("TAO_STANDIN_FAIL_PRUNE_FROM", str(thresholds[2]))
                code = main(["rehearse", name, "--sample", "8", "--workdir", str(base / "rehearsal"),
                             "--set", "pruning_thresholds=" + ",".join(str(t) for t in thresholds),
                             "--set", f"max_map_drop={limit}"])
            assert code == 0, out.getvalue()
            done[name] = Swept(base / "rehearsal", out.getvalue(), invocations(base / "tao.jsonl"))
        return done[name]

    return of


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_every_threshold_ran_as_a_branch_and_prune_follows_the_threshold(swept, name: str) -> None:
    thresholds, _, _ = SWEEPS[name]
    run = swept(name)
    pruned = {float(c["argv"][c["argv"].index("--pruning_threshold") + 1]): c["ok"]
              for c in run.calls if c["task"] == "prune"}
    assert pruned == {thresholds[0]: True, thresholds[1]: True, thresholds[2]: False}
    sweep = json.loads((run.run / "select_model" / "sweep" / "sweep.json").read_text())
    ok = [b for b in sweep["branches"] if b["status"] == "ok"]
    # A higher threshold: fewer parameters, a smaller model file, an accuracy no higher.
    assert [b["threshold"] for b in ok] == list(thresholds[:2])
    assert sweep["unpruned"]["parameters"] > ok[0]["parameters"] > ok[1]["parameters"]
    assert ok[0]["model_bytes"] > ok[1]["model_bytes"]
    assert sweep["unpruned"]["value"] >= ok[0]["value"] > ok[1]["value"]


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_the_chosen_model_is_in_the_asset_with_the_sweep_in_its_card(swept, name: str) -> None:
    thresholds, limit, chosen = SWEEPS[name]
    run = swept(name)
    card = json.loads((run.model / "model_card.json").read_text())
    sweep = card["pruning_sweep"]
    assert sweep["thresholds"] == list(thresholds) and sweep["max_map_drop"] == limit
    assert sweep["chosen"]["branch"] == chosen and sweep["chosen"]["threshold"] == thresholds[chosen - 1]
    assert [b["status"] for b in sweep["branches"]] == ["ok", "ok", "failed"]
    assert card["tags"]["pruning_threshold"] == f"{thresholds[chosen - 1]:.6g}"
    # The asset's model is the chosen branch's: its pruned parameter count, its retrained weights.
    branch = sweep["branches"][chosen - 1]
    assert card["tags"]["parameters_after_pruning"] == f"{branch['parameters']:.6g}"
    chosen_files = {p.relative_to(run.run / f"retrain_{chosen}" / "results"): p.read_bytes()
                    for p in (run.run / f"retrain_{chosen}" / "results").rglob("*.hdf5")}
    assert chosen_files and all((run.run / "select_model" / "model" / rel).read_bytes() == data
                                for rel, data in chosen_files.items())
    exports = [c for c in run.calls if c["task"] == "export"]
    assert exports and all(str(run.run / "select_model" / "model") in " ".join(c["argv"]) for c in exports)
    readme = (run.model / "README.md").read_text()
    assert f"This model was pruned with threshold {thresholds[chosen - 1]:.4g}, chosen among 3 thresholds" in readme
    assert f"| {thresholds[2]:.4g} | - | - | - | failed: " in readme


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_the_report_has_the_sweeps_table_and_plot_and_names_the_failed_branch(swept, name: str) -> None:
    thresholds, _, chosen = SWEEPS[name]
    run = swept(name)
    report = json.loads((run.report / "report.json").read_text())
    assert report["sweep"] == json.loads((run.run / "select_model" / "sweep" / "sweep.json").read_text())
    markdown = (run.report / "report.md").read_text()
    assert "## Pruning sweep" in markdown and "| unpruned | - |" in markdown
    assert f"| branch {chosen} (chosen) | {thresholds[chosen - 1]:.4g} |" in markdown
    assert f"Chosen: branch {chosen}, pruning threshold {thresholds[chosen - 1]:.4g}: " in markdown
    assert f"Left out: branch 3 (threshold {thresholds[2]:.4g}): " in markdown and "prune" in markdown
    assert "](sweep.png)" in markdown
    assert (run.report / "sweep.png").read_bytes().startswith(PNG_SIGNATURE)
    # What the rehearsal prints at its end.
    assert f"pruning sweep of 3 thresholds: threshold {thresholds[chosen - 1]:g} chosen: the " in run.out
    assert f"  left out: branch 3 (threshold {thresholds[2]:g}): failed: " in run.out
