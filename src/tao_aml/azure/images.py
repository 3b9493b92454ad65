"""Prebuilt environment images: build each environment's context once with `az acr build`, then name the image.

Building an environment from its context on every new workspace runs an ACR task on a 15-20 GB TAO base
image (shared/facts/azureml.md, "Environments"). With `az acr build` the image is built and pushed once
(Microsoft: "az acr build", Azure Container Registry tasks quickstart), and environments can name it with
`image:` (the environment YAML schema's documented key) instead of `build:`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tao_aml.repo import yaml_model

REPOSITORY = "tao-aml"


class ImageError(RuntimeError):
    """`az` is missing or an image build failed."""


@dataclass(frozen=True)
class EnvironmentImage:
    name: str  # environment name, e.g. tao_tf1
    version: str
    context: Path  # the build context folder
    spec: Path  # environments/<name>/environment.yml

    def reference(self, registry: str) -> str:
        return f"{login_server(registry)}/{REPOSITORY}/{self.name}:{self.version}"

    @property
    def local_tag(self) -> str:
        """The image name on this machine (`tao-aml run --local`): the ACR image's name without the registry."""
        return f"{REPOSITORY}/{self.name}:{self.version}"

    def build_command(self, registry: str) -> list[str]:
        return ["az", "acr", "build", "--registry", registry_name(registry), "--image", self.local_tag,
                str(self.context)]

    def docker_build_command(self) -> list[str]:
        """Build the context into `local_tag` with this machine's Docker (its layer cache makes a rebuild quick)."""
        return ["docker", "build", "--tag", self.local_tag, str(self.context)]


def login_server(registry: str) -> str:
    """`myacr` or `myacr.azurecr.io` -> `myacr.azurecr.io`."""
    return registry if "." in registry else f"{registry}.azurecr.io"


def registry_name(registry: str) -> str:
    return registry.split(".", 1)[0]


def environments(root: Path) -> dict[Path, EnvironmentImage]:
    """environment.yml path -> its image, for every environment of the repository built from a context."""
    found = {}
    for spec in sorted(root.glob("environments/*/environment.yml")):
        raw = yaml_model.read_yaml(spec)
        build = (raw.get("build") or {}).get("path")
        if build:
            image = EnvironmentImage(str(raw["name"]), str(raw["version"]), (spec.parent / build).resolve(), spec)
            found[spec.resolve()] = image
    return found


def build_all(root: Path, registry: str, run: bool = True) -> list[list[str]]:
    """Run (or, with run=False, only list) `az acr build` for every environment; the first failure stops."""
    commands = [image.build_command(registry) for image in environments(root).values()]
    if not run:
        return commands
    if shutil.which("az") is None:
        raise ImageError("the Azure CLI `az` is not on PATH: install it (https://aka.ms/azcli) and `az login`")
    for command in commands:
        done = subprocess.run(command, check=False)
        if done.returncode != 0:
            raise ImageError(f"`{' '.join(command)}` failed with exit code {done.returncode}")
    return commands
