"""Offline checks that a string input holds only what its kind allows, and that commands quote every input.

The kinds and their rules live in steps/input_kinds.py, which the steps' own parsers use too; this
module applies them, and each input's type, range and enum, to what `tao-aml validate`, `submit` and `run`
see: literal values, defaults, `--set` values and component commands.
"""

from __future__ import annotations

import re
from typing import Any

from tao_aml.repo.yaml_model import DATA_TYPES, Component, Port
from tao_aml.steps import input_kinds

PORT_REF = re.compile(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
# A reference as every command must write it: one single-quoted word of its own.
QUOTED_REF = re.compile(r"'\$\{\{\s*(?:inputs|outputs)\.[A-Za-z0-9_]+\s*\}\}'")


def string_problem(port: Port, value: str) -> str | None:
    """Why `value` may not be given to the string input `port`, or None (an enum's values are checked elsewhere)."""
    if port.enum:
        return None
    found = input_kinds.problem(port.name, value)
    return f"input {port.name}: {found}" if found else None


def literal_problem(port: Port, value: Any) -> str | None:
    """Why a literal value does not fit an input port, or None."""
    kind = port.type
    if kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{value!r} is not {'an' if kind == 'integer' else 'a'} {kind}"
        if kind == "integer" and isinstance(value, float):
            return f"{value!r} is not an integer"
        if port.min is not None and value < port.min:
            return f"{value} is below the minimum {port.min}"
        if port.max is not None and value > port.max:
            return f"{value} is above the maximum {port.max}"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return f"{value!r} is not a boolean"
    elif kind == "string":
        if not isinstance(value, str):
            return f"{value!r} is not a string"
        if port.enum and value not in port.enum:
            return f"{value!r} is not one of {', '.join(map(str, port.enum))}"
        return string_problem(port, value)
    elif kind in DATA_TYPES:
        return f"a {kind} input needs data or a binding, not the literal {value!r}"
    return None


def declaration_problems(port: Port) -> list[str]:
    """A string input must have a kind, and every value an enum lists must be a safe word."""
    if port.type != "string":
        return []
    if not port.enum:
        return ["declares no kind: add it to INPUTS of tao_aml/steps/input_kinds.py"] \
            if port.name not in input_kinds.INPUTS else []
    choice = input_kinds.KINDS["choice"]
    return [f"enum value {value!r}: {choice.rule}" for value in port.enum
            if choice.pattern.fullmatch(str(value)) is None]


def command_problems(command: str) -> list[str]:
    """Every `${{inputs.x}}` / `${{outputs.x}}` must stand alone in single quotes: '${{inputs.x}}'."""
    bare = PORT_REF.findall(QUOTED_REF.sub("", command))
    return [f"${{{{{kind}.{name}}}}} is not quoted: write '${{{{{kind}.{name}}}}}' (Azure ML pastes the value "
            "into a shell command as plain text)" for kind, name in bare]


def value_problems(component: Component, values: dict[str, Any]) -> list[str]:
    """What a step of a local run would be given that its string inputs may not hold."""
    found = []
    for name, port in component.inputs.items():
        value = values.get(name)
        if port.type == "string" and isinstance(value, str):
            problem = string_problem(port, value)
            if problem:
                found.append(f"{component.name}: {problem}")
    return found


def override_problem(override: str) -> str | None:
    """Why one `--set STEP.FIELD=VALUE` override may not join the step's overrides input, or None.

    The input holds all of a step's overrides separated by ';', which the step splits again: a ';' in a
    value would become a second override on the GPU node, after the offline check saw one."""
    problem = input_kinds.KINDS["overrides"].problem(override)
    if problem is None and ";" in override:
        return (f"{override!r}: a ';' in a value would split it into two overrides on the node; "
                "give each with its own --set")
    return problem
