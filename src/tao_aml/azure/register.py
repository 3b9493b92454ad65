"""`tao-aml register`: publish environments, command components, pipeline components and spec folders.

Order matters: each asset is published after the ones it names, and every reference is rewritten
to a registered, named asset first (an inline `file:` environment becomes `azureml:tao_tf1:0.1.0`,
a local component path `azureml:tao_detectnet_v2_train:0.1.0`, or their `azureml://registries/...`
forms), so a published copy never points at an anonymous asset. Every asset carries the SHA-256 of
its content in a tag: re-running skips unchanged assets and refuses to overwrite a changed asset
under an existing version (versions are immutable in Azure ML).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from azure.ai.ml import MLClient, load_component, load_environment
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Component, Data, Environment
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tao_aml.azure import images
from tao_aml.repo import sweep as sweeps
from tao_aml.repo import yaml_model
from tao_aml.repo.run_shape import RunShape, apply_overrides, shape_overrides, shm_overrides

LOG = logging.getLogger(__name__)
HASH_TAG = "tao_aml_content_sha256"
SKIPPED_FILES = ("__pycache__", ".pyc", ".egg-info", ".pytest_cache", ".DS_Store")


class RegisterError(ValueError):
    """An asset that cannot be published as it stands; the message says what to change."""


@dataclass
class Asset:
    kind: str  # "environment", "component", "pipeline component" or "data"
    source: Path
    entity: Environment | Component | Data
    content_hash: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.entity.name}:{self.entity.version}"


@dataclass(frozen=True)
class Refs:
    """How published assets name each other: in a workspace, or in a registry."""

    version: str
    registry: str | None = None
    images: str | None = None  # container registry holding the environments' prebuilt images

    def environment(self, name: str) -> str:
        if self.registry:
            return f"azureml://registries/{self.registry}/environments/{name}/versions/{self.version}"
        return f"azureml:{name}:{self.version}"

    def component(self, name: str) -> str:
        if self.registry:
            return f"azureml://registries/{self.registry}/components/{name}/versions/{self.version}"
        return f"azureml:{name}:{self.version}"

    def usable(self, reference: str) -> bool:
        """A reference that a published copy may keep as it is."""
        if self.registry:
            return reference.startswith("azureml://registries/")
        return reference.startswith("azureml:")


def files_hash(paths: Iterable[Path], base: Path, digest: Any | None = None) -> Any:
    """Add each file's path (relative to base) and bytes to a SHA-256; skip caches and build leftovers."""
    digest = digest or hashlib.sha256()
    for path in sorted(paths):
        relative = path.relative_to(base).as_posix()
        if path.is_file() and not any(part in relative for part in SKIPPED_FILES):
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest


def folder_hash(folder: Path) -> str:
    return files_hash(folder.rglob("*"), folder).hexdigest()


def yaml_hash(raw: dict, *folders: Path) -> str:
    """The asset's YAML (references rewritten, version left out) plus the folders it uploads."""
    content = {key: value for key, value in raw.items() if key != "version"}
    digest = hashlib.sha256(yaml.safe_dump(content, sort_keys=True).encode())
    for folder in folders:
        digest = files_hash(folder.rglob("*"), folder, digest)
    return digest.hexdigest()


def with_hash(entity: Any, content_hash: str) -> Any:
    entity.tags = {**(entity.tags or {}), HASH_TAG: content_hash}
    return entity


def plan(root: Path, refs: Refs, shape: RunShape | None = None, sweep_branches: int | None = None) -> list[Asset]:
    """Every asset in publishing order, references rewritten; all problems raised together.

    Pipeline components carry the shape's node and process counts as literals; a shape other than
    1 node x 1 GPU is published under its own name (`tao_facenet_pipeline_2x4`), so each published
    component runs the shape its name says and Designer lists them side by side. With `sweep_branches` N,
    each pipeline is also published with a pruning sweep of N branches (`tao_facenet_pipeline_sweep3`,
    repo/sweep.py), its thresholds pipeline inputs.
    """
    shape = shape or RunShape()
    problems: list[str] = []
    environments = plan_environments(root, refs)
    env_refs = {asset.source: refs.environment(asset.entity.name) for asset in environments}
    components = [
        asset
        for path in sorted(root.glob("components/*/*/component.yml"))
        if (asset := plan_component(root, path, refs, env_refs, problems)) is not None
    ]
    component_refs = {asset.source: refs.component(asset.entity.name) for asset in components}
    pipelines = [
        asset
        for path in sorted(root.glob("pipelines/*/pipeline_component.yml"))
        for branches in (None, *([sweep_branches] if sweep_branches else []))
        if (asset := plan_pipeline(root, path, refs, component_refs, problems, shape, branches)) is not None
    ]
    if problems:
        raise RegisterError("\n".join(problems))
    return [*environments, *components, *pipelines, *plan_specs(root, refs)]


def plan_environments(root: Path, refs: Refs) -> list[Asset]:
    """Each environment from its build context, or, with `refs.images`, naming its prebuilt image."""
    assets = []
    prebuilt = images.environments(root) if refs.images else {}
    for path in sorted(root.glob("environments/*/environment.yml")):
        raw = yaml_model.read_yaml(path)
        build = (raw.get("build") or {}).get("path")
        image = prebuilt.get(path.resolve())
        if image is not None and refs.images:
            raw = {**{k: v for k, v in raw.items() if k != "build"}, "image": image.reference(refs.images)}
            build = None
        content_hash = yaml_hash(raw, *([path.parent / build] if build else []))
        entity = load_environment(path, params_override=[{"version": refs.version}])
        if image is not None and refs.images:
            entity.build, entity.image = None, raw["image"]
        assets.append(Asset("environment", path.resolve(), with_hash(entity, content_hash), content_hash))
    return assets


def plan_component(
    root: Path, path: Path, refs: Refs, env_refs: dict[Path, str], problems: list[str]
) -> Asset | None:
    raw = yaml_model.read_yaml(path)
    shown = path.relative_to(root)
    env = raw.get("environment")
    if isinstance(env, str) and env.startswith("file:"):
        env_path = (path.parent / env.removeprefix("file:")).resolve()
        reference = env_refs.get(env_path)
        if reference is None:
            problems.append(
                f"{shown}: environment {env} is not one of environments/*/environment.yml, so it would be "
                "published as an anonymous environment: move it to environments/<name>/environment.yml"
            )
            return None
    elif isinstance(env, str) and refs.usable(env):
        reference = env
    else:
        where = "a registry" if refs.registry else "a workspace"
        problems.append(
            f"{shown}: environment {env!r} is anonymous or not reachable from {where}; a published component "
            "must name a registered environment: use `file:../../../environments/<name>/environment.yml`"
        )
        return None
    raw["environment"] = reference
    code = raw.get("code")
    content_hash = yaml_hash(raw, *([path.parent / code] if isinstance(code, str) else []))
    entity = load_component(path, params_override=[{"version": refs.version}, {"environment": reference}])
    return Asset("component", path.resolve(), with_hash(entity, content_hash), content_hash)


def plan_pipeline(
    root: Path, path: Path, refs: Refs, component_refs: dict[Path, str], problems: list[str], shape: RunShape,
    sweep_branches: int | None = None,
) -> Asset | None:
    raw = yaml_model.read_yaml(path)
    shown = path.relative_to(root)
    known_problems = len(problems)
    if sweep_branches:
        try:
            raw = sweeps.fan_out(raw, (), None, designer_branches=sweep_branches)
        except sweeps.SweepError as err:
            problems.append(f"{shown}: --sweep-branches {sweep_branches}: {err}")
            return None
    # Each TAO step names its registered component: its /dev/shm is written on the step (render.shm_overrides).
    overrides: list[dict[str, Any]] = [{"version": refs.version}, *shape_overrides(raw, shape),
                                       *shm_overrides(raw, path.parent, shape.shm_size)]
    suffix = (f"_{shape.label}" if shape != RunShape() else "") + (f"_sweep{sweep_branches}" if sweep_branches else "")
    if suffix:
        overrides.append({"name": f"{raw['name']}{suffix}"})
    rewritten = apply_overrides(raw, overrides[1:])
    for step_name, step in (raw.get("jobs") or {}).items():
        ref = str(step.get("component", ""))
        if refs.usable(ref):
            continue
        reference = component_refs.get((path.parent / ref.removeprefix("file:")).resolve())
        if reference is None:
            problems.append(
                f"{shown}: jobs.{step_name}.component {ref!r} is neither a components/*/*/component.yml "
                "of this repository nor a reference usable from the target"
            )
            continue
        overrides.append({f"jobs.{step_name}.component": reference})
        rewritten["jobs"][step_name]["component"] = reference
    if len(problems) > known_problems:
        return None
    content_hash = yaml_hash(rewritten)
    # The YAML as rewritten (a sweep's is no file of the repository); every component it names is registered.
    entity = load_component(io.StringIO(yaml.safe_dump({**rewritten, "version": refs.version}, sort_keys=False)),
                            relative_origin=str(path))
    return Asset("pipeline component", path.resolve(), with_hash(entity, content_hash), content_hash)


def specs_asset_name(pipeline: str) -> str:
    return f"tao_{pipeline}_specs"


def plan_specs(root: Path, refs: Refs) -> list[Asset]:
    """Each pipeline's shipped templates (src/tao_aml/templates/<pipeline>/) as a uri_folder data asset,
    for Designer users who connect edited templates to the pipeline's optional `specs` port."""
    assets = []
    for folder in sorted(p for p in root.glob("src/tao_aml/templates/*") if p.is_dir()):
        pipeline = folder.name
        content_hash = folder_hash(folder)
        entity = Data(
            name=specs_asset_name(pipeline),
            version=refs.version,
            type=AssetTypes.URI_FOLDER,
            path=str(folder),
            description=f"TAO spec templates of the {pipeline} pipeline, as its steps ship them: edit a copy and "
            "connect it to the pipeline's `specs` input to use it instead.",
            tags={"family": pipeline, HASH_TAG: content_hash},
        )
        assets.append(Asset("data", folder.resolve(), entity, content_hash))
    return assets


def _operations(client: MLClient, asset: Asset) -> Any:
    return {"environment": client.environments, "data": client.data}.get(asset.kind, client.components)


def _existing(client: MLClient, asset: Asset) -> Any | None:
    try:
        return _operations(client, asset).get(name=asset.entity.name, version=asset.entity.version)
    except ResourceNotFoundError:
        return None
    except HttpResponseError as err:
        if err.status_code == 404:  # registries answer 404 without the not-found error type
            return None
        raise


def publish(client: MLClient, assets: list[Asset], report: Callable[[str], None]) -> list[Asset]:
    """Publish what is new, in order; unchanged assets are skipped; a changed existing version stops all."""
    new, conflicts = [], []
    for asset in assets:
        existing = _existing(client, asset)
        if existing is None:
            new.append(asset)
        elif (existing.tags or {}).get(HASH_TAG) == asset.content_hash:
            report(f"unchanged  {asset.label}")
        else:
            conflicts.append(
                f"{asset.label} already exists with different content: versions are immutable, bump the "
                "version (tao-aml register --version X.Y.Z, or tao_aml.__version__)"
            )
    if conflicts:
        raise RegisterError("\n".join(conflicts) + "\nnothing was published")
    for asset in new:
        _operations(client, asset).create_or_update(asset.entity)
        report(f"published  {asset.label}")
    return new
