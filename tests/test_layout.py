"""The package's layers, read from its import statements (docs/map.md draws them).

steps/ runs inside the components and imports nothing of the user side; repo/ (the repository) sits above
it, azure/ above repo/, local/ and cli/ on top; serve/ and simulate/ stand aside. No import cycle anywhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "tao_aml"
USER_SIDE = ("repo", "azure", "local", "cli", "serve", "simulate")
# repo/'s one way up: the catalogue tables of VM sizes and prices, which import nothing of the package.
CATALOGUES = {"tao_aml.azure.vm_sizes", "tao_aml.azure.vm_prices"}
STEPS_TOP_LIMIT = 6


def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module in a package (folders without __init__.py are stand-in trees)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if all((PACKAGE / folder / "__init__.py").is_file() for folder in path.relative_to(PACKAGE).parents):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = modules()


def imports(name: str) -> set[str]:
    """Every name `name` imports (module level or inside a function), relative imports resolved.

    `from P import x` imports P.x when that is a module of the package, else P.
    """
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names)
    return found


GRAPH = {name: {target for target in imports(name) if target in MODULES and target != name} for name in MODULES}


def cycle() -> list[str]:
    """One import cycle among the package's modules, or [] (depth-first search, grey/black marks)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = "open"
        stack.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[name] = "done"
        return []

    return next((found for name in sorted(MODULES) if name not in state and (found := visit(name))), [])


def layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def reaching(source_layers: tuple[str, ...], target: str) -> list[str]:
    """`module -> imported` for every import of `target` (a prefix) from modules of the given layers."""
    return sorted(f"{name} -> {imported}" for name in MODULES if layer(name) in source_layers
                  for imported in imports(name) if imported == target or imported.startswith(target + "."))


def test_no_import_cycle() -> None:
    assert cycle() == [], "import cycle: " + " -> ".join(cycle())


def test_steps_import_nothing_of_the_user_side_nor_azure_ai_ml() -> None:
    wrong = [line for side in USER_SIDE for line in reaching(("steps",), f"tao_aml.{side}")]
    assert wrong + reaching(("steps",), "azure.ai.ml") == []


def test_repo_and_azure_stay_below_the_layers_above_them() -> None:
    wrong = [line for above in ("azure", "local", "cli") for line in reaching(("repo",), f"tao_aml.{above}")
             if line.split(" -> ")[1] not in CATALOGUES]
    wrong += [line for above in ("local", "cli") for line in reaching(("azure",), f"tao_aml.{above}")]
    wrong += [f"{table} -> {target}" for table in CATALOGUES for target in GRAPH[table]]
    assert wrong == []


def test_steps_top_is_small_and_every_component_command_module_exists() -> None:
    top = sorted(path.stem for path in (PACKAGE / "steps").glob("*.py") if path.stem != "__init__")
    assert len(top) <= STEPS_TOP_LIMIT, f"{len(top)} modules at the top of steps/: {top}"
    commands = {path.relative_to(REPO).as_posix(): yaml.safe_load(path.read_text(encoding="utf-8"))["command"]
                for path in sorted((REPO / "components").glob("*/*/component.yml"))}
    named = {path: re.findall(r"python -m (tao_aml[\w.]+)", command) for path, command in commands.items()}
    assert all(named.values()), [path for path, found in named.items() if not found]
    assert [f"{path}: {module}" for path, found in named.items() for module in found if module not in MODULES] == []
