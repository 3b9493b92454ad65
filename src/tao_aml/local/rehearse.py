"""`tao-aml rehearse NAME`: the whole pipeline on this machine with TAO simulated, before a GPU is paid for.

Every step runs in order through the local runner (local_run.py), with the command line the service runs,
the pipeline's defaults and the user's `--set` values. TAO's CLIs are the project's simulation
(tao_aml/simulate: each command line checked against TAO 5.0's flags, the files TAO writes written), NGC is
simulated on 127.0.0.1, and the data is generated (shaped like the real data set) or the user's own folder,
read up to `--sample` images per split (the pipeline's images_per_split). Nothing leaves this machine.

A rehearsal proves paths, specs, data and settings, not accuracy: its model folder is marked simulated
(SIMULATED.json, tag `simulated`), which `predict --local` shows the output format of and which
`model register`, `deploy` and `triton` refuse.

    <workdir>/rehearsal.json     what was rehearsed (a rerun clears a folder that has it, and only such a one)
    <workdir>/data/<input>/      generated data
    <workdir>/run/<step>/...     the local run: every step's outputs, step.log and state
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tao_aml import simulate
from tao_aml.local.local_run import LocalRunner, StepRun
from tao_aml.repo.pipelines import Pipeline, SettingError, effective_inputs, resolve_settings
from tao_aml.repo.sweep import SELECT_STEP
from tao_aml.simulate import data, ngc
from tao_aml.steps.asset.register_model import MODEL_CARD
from tao_aml.steps.asset.report import SWEEP_JSON

RECORD = "rehearsal.json"
QUIET = "tao_aml.tracking"
DEFAULT_SAMPLE = 24  # images per split: the smoke profile's
# Each pipeline's data input and how a rehearsal makes one: train and validation images of `count` each.
DATA_INPUTS: dict[str, str] = {"facenet": "wider_data", "bodypose": "coco_data", "detectnet_v2": "kitti_data"}
NOTICE = ("TAO was simulated: this rehearsal proves paths, specs, data and settings, not accuracy; "
          "its model is marked simulated (predict --local shows its output format; register, deploy and "
          "triton refuse it)")


@dataclass
class Rehearsal:
    pipeline: str
    workdir: Path
    runs: list[StepRun]
    outputs: dict[str, Path]  # the pipeline's outputs, named as in the Azure ML job
    data: dict[str, Path]  # the data inputs it read

    @property
    def model(self) -> Path | None:
        return self.outputs.get("model")


def generate(pipeline: str, folder: Path, count: int, values: dict) -> Path:
    """Data shaped like the pipeline's real data set: `count` training and count // 2 validation images."""
    val = max(2, count // 2)
    if pipeline == "facenet":
        return data.make_wider_download(folder, data.random_images(count, seed=1), data.random_images(val, seed=2))
    if pipeline == "bodypose":
        return data.make_coco(folder, train=count, val=val)
    classes = tuple(name.strip() for name in str(values.get("classes") or "").split(",") if name.strip())
    return data.make_kitti(folder, count=count + val, classes=classes or data.KITTI_CLASSES)


def prepare_workdir(workdir: Path, pipeline: str) -> None:
    """A new or empty folder, or an earlier rehearsal's (cleared): never a folder of anything else."""
    if workdir.exists() and not workdir.is_dir():
        raise SettingError(f"--workdir {workdir}: is a file; give a folder (it is made when missing)")
    if workdir.is_dir() and any(workdir.iterdir()):
        if not (workdir / RECORD).is_file():
            raise SettingError(f"--workdir {workdir}: not empty and not the folder of a rehearsal (it has no "
                               f"{RECORD}); give an empty or new folder")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / RECORD).write_text(json.dumps({"pipeline": pipeline, "simulated": True}) + "\n", encoding="utf-8")


def rehearse(
    pipeline: Pipeline,
    assignments: list[str],
    inputs: dict[str, Path],
    workdir: Path,
    sample: int | None = None,
    progress: Callable[[str], None] = print,
    env: dict[str, str] | None = None,
) -> Rehearsal:
    """Run the pipeline with TAO and NGC simulated; raise SettingError before anything runs, StepFailed from
    the step that failed, SimulationUnavailable when the `rehearse` extra is missing."""
    simulate.require()
    name = pipeline.name
    data_input = DATA_INPUTS[name]
    settings = resolve_settings(pipeline, [*assignments, f"images_per_split={sample or DEFAULT_SAMPLE}"])
    if sample is None and any(item.split("=", 1)[0].strip() == "images_per_split" for item in assignments):
        settings = resolve_settings(pipeline, assignments)  # the user's own images_per_split
    values = effective_inputs(pipeline, settings)
    count = int(values["images_per_split"])
    workdir = workdir.resolve()
    prepare_workdir(workdir, name)
    given = dict(inputs)
    if data_input not in given:
        progress(f"{data_input}: generating {count} training and {max(2, count // 2)} validation images shaped "
                 f"like the real data set in {workdir / 'data' / data_input}")
        given[data_input] = generate(name, workdir / "data" / data_input, count, values)
    (workdir / "tmp").mkdir()  # TMPDIR of the steps: the bpnet steps build their data root there
    with ngc.serving([str(values["pretrained_model"])]) as api:
        progress(f"pretrained_model {values['pretrained_model']}: served by a simulated NGC at {api}")
        runner = LocalRunner(
            pipeline, settings, workdir / "run", data_inputs=given, path_for_environment=simulate.environment_path,
            env={"TAO_AML_NGC_API_BASE": api, "TMPDIR": str(workdir / "tmp"), **(env or {})},
            progress=progress,
        )
        runs = runner.run()
    rehearsal = Rehearsal(name, workdir, runs, runner.pipeline_outputs(), given)
    if rehearsal.model is not None:
        mark_simulated(rehearsal.model, name)
    return rehearsal


def mark_simulated(model: Path, pipeline: str) -> None:
    """SIMULATED.json in the model folder, listed in its card, and the card's `simulated` tag."""
    marker = model / simulate.MARKER
    marker.write_text(json.dumps({"simulated": True, "by": f"tao-aml rehearse {pipeline}", "notice": NOTICE},
                                 indent=2) + "\n", encoding="utf-8")
    card_path = model / MODEL_CARD
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("tags", {})[simulate.TAG] = "true"
    card.setdefault("files", {})[simulate.MARKER] = {
        "size_mb": round(marker.stat().st_size / 1e6, 6), "sha256": hashlib.sha256(marker.read_bytes()).hexdigest()}
    draft = card_path.with_name(f".{MODEL_CARD}.partial")
    draft.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    os.replace(draft, card_path)


def sweep_lines(runs: list[StepRun]) -> list[str]:
    """A pruning sweep's outcome, from the selection step's sweep.json: the choice and why, every branch left out."""
    folder = next((run.outputs.get("sweep") for run in runs if run.name == SELECT_STEP), None)
    if folder is None or not (folder / SWEEP_JSON).is_file():
        return []
    sweep = json.loads((folder / SWEEP_JSON).read_text(encoding="utf-8"))
    chosen = sweep["chosen"]
    lines = [f"pruning sweep of {len(sweep['branches'])} thresholds: threshold {chosen['threshold']:g} chosen: "
             f"{chosen['why']}"]
    return lines + [f"  left out: branch {b['branch']} (threshold {b['threshold']:g}): {b['status']}: {b['reason']}"
                    for b in sweep["branches"] if b["status"] != "ok"]


def step_lines(run: StepRun, limit: int = 3) -> list[str]:
    """What a step wrote (files per output) and the warnings its log holds (what TAO would drop or change)."""
    lines = []
    for output, folder in run.outputs.items():
        files = [path for path in folder.rglob("*") if path.is_file()] if folder.is_dir() else []
        size = sum(path.stat().st_size for path in files)
        lines.append(f"wrote {output}: {len(files)} files, {size / 1e6:.2f} MB")
    text = run.log.read_text(encoding="utf-8", errors="replace") if run.log.is_file() else ""
    warnings: list[str] = []
    for line in text.splitlines():
        if "WARNING" in line:
            warnings.append(line.strip())
        elif warnings and line[:1].isspace() and line.strip():  # a warning's detail lines
            warnings[-1] += " " + line.strip()
    # Not the note that metrics go to the log only: a rehearsal sets no MLflow store on purpose.
    warnings = [line for line in warnings if QUIET not in line]
    lines += [f"warning: {line}" for line in warnings[:limit]]
    if len(warnings) > limit:
        lines.append(f"... {len(warnings) - limit} more warnings in {run.log}")
    return lines
