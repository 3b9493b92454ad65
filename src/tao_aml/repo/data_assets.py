"""Download once per workspace: the data a pipeline fetches or converts, kept as named, versioned data assets.

`pipelines/<name>/data_assets.yml` lists each piece of data, the pipeline output that holds it, and what
decides its content. Its version is a digest of those values (and of the source of the step that makes it),
so the same URL list gives the same version whatever else changed in the repository, and a changed URL
list, checksum or setting gives a new one. A run finds an existing version by name and gives it to the
pipeline input that skips the download (`reuse_input`); otherwise it names the pipeline output with that
name and version, which Azure ML registers as a data asset when the job ends (how-to-manage-inputs-outputs-
pipeline, "Register output as a named asset").

A download's asset holds its own proof: SHA256SUMS, the sha256 of every file as the first download wrote
it; the download step given the asset (`reuse_input`) checks every file against it before anything reads it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tao_aml.repo.pipelines import Pipeline, SettingError, read_settings_file

FILE = "data_assets.yml"
VERSION_DIGITS = 12
# Looks a data asset up by name and version: True when the workspace has it.
Lookup = Callable[[str, str], bool]


@dataclass(frozen=True)
class Entry:
    key: str
    asset: str
    output: str
    description: str
    reuse_input: str | None
    sources: tuple[str, ...]  # pipeline inputs or earlier entries
    code: tuple[str, ...]  # repository files whose bytes decide the content


@dataclass
class DataPlan:
    """What a run does about each entry: the data inputs it sets, the outputs it names, lines to print."""

    inputs: dict[str, str] = field(default_factory=dict)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def load_entries(pipeline: Pipeline, root: Path) -> list[Entry]:
    """The pipeline's entries, each checked against its outputs and inputs; none when it has no file."""
    path = pipeline.job_path.parent / FILE
    if not path.is_file():
        return []
    raw = read_settings_file(path) or {}
    if not isinstance(raw, dict):
        raise SettingError(f"{path}: expected a mapping of entry names to `asset` and `output`")
    entries, problems = [], []
    for key, item in raw.items():
        where = f"{path}: {key}"
        if not isinstance(item, dict) or not item.get("asset") or not item.get("output"):
            problems.append(f"{where}: needs `asset` and `output`")
            continue
        entry = Entry(
            key=str(key), asset=str(item["asset"]), output=str(item["output"]),
            description=str(item.get("description", "")), reuse_input=item.get("reuse_input"),
            sources=tuple(item.get("from") or ()), code=tuple(item.get("code") or ()),
        )
        if entry.output not in pipeline.component.outputs or entry.output not in pipeline.job.outputs:
            problems.append(f"{where}: output {entry.output!r} is not an output of the pipeline component and job")
        if entry.reuse_input and entry.reuse_input not in pipeline.component.inputs:
            problems.append(f"{where}: reuse_input {entry.reuse_input!r} is not a pipeline input")
        known = {e.key for e in entries}
        for source in entry.sources:
            if source not in pipeline.component.inputs and source not in known:
                problems.append(f"{where}: `from` names {source!r}, neither a pipeline input nor an entry above")
        problems += [f"{where}: code file {name} does not exist" for name in entry.code if not (root / name).is_file()]
        entries.append(entry)
    if problems:
        raise SettingError("\n".join(problems))
    return entries


def version(entry: Entry, values: dict[str, Any], versions: dict[str, str], root: Path) -> str:
    """A digest of what decides the entry's content: its sources' values and its code's bytes."""
    decided = {source: versions.get(source, values.get(source)) for source in entry.sources}
    digest = hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode())
    for name in entry.code:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()[:VERSION_DIGITS]


def plan(pipeline: Pipeline, root: Path, values: dict[str, Any], lookup: Lookup | None) -> DataPlan:
    """For each entry: reuse the registered version, or register this run's output under it.

    `lookup` is None in a dry run: nothing is looked up and every output is named, as on a first run.
    Data the user gave (`reuse_input` already set) is theirs: it is neither looked up nor registered.
    """
    result = DataPlan()
    for entry in load_entries(pipeline, root):
        given = values.get(entry.reuse_input) if entry.reuse_input else None
        if given is not None:
            result.versions[entry.key] = str(given)
            result.lines.append(f"{entry.asset}: not registered, {entry.reuse_input} is given ({given})")
            continue
        number = version(entry, values, result.versions, root)
        result.versions[entry.key] = number
        if lookup is not None and lookup(entry.asset, number):
            # Registered by an earlier run: give it to the step that skips the work, and never register
            # the same name and version twice.
            if entry.reuse_input:
                result.inputs[entry.reuse_input] = f"azureml:{entry.asset}:{number}"
                result.lines.append(f"{entry.asset}:{number}: in the workspace, given to {entry.reuse_input}")
            else:
                result.lines.append(f"{entry.asset}:{number}: in the workspace already (the step that makes it "
                                    "is reused when its inputs and code are unchanged)")
            continue
        result.overrides += [
            {f"outputs.{entry.output}.name": entry.asset},
            {f"outputs.{entry.output}.version": number},
        ]
        state = "not looked up (dry run)" if lookup is None else "not in the workspace"
        result.lines.append(f"{entry.asset}:{number}: {state}, registered from output {entry.output} when the job ends")
    return result
