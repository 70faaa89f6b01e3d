"""Notebook parameters: read the `parameters` cell, and reject unknown names, wrong types and bad choices.

Convention for every notebook's parameters cell (one per line, typed, documented)::

    profile: str = "auto"  # one of: auto, smoke, cpu, gpu
    max_steps: Optional[int] = None  # optimiser steps; None means the profile's default

Papermill silently accepts names the notebook never declared; `check_parameters` closes that hole.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from .errors import CourseError

_TYPES = {"int": (int,), "float": (float, int), "str": (str,), "bool": (bool,), "list": (list, tuple),
          "dict": (dict,)}


def declared_parameters(notebook: str | Path) -> dict[str, dict[str, Any]]:
    """Name → {type, default, help, choices} for the notebook's `parameters` cell."""
    import papermill

    info = papermill.inspect_notebook(str(notebook))
    declared = {}
    for name, p in info.items():
        match = re.search(r"one of:\s*([\w\-., ]+)", p["help"] or "")
        choices = [c.strip() for c in match.group(1).split(",") if c.strip()] if match else None
        declared[name] = {"type": p["inferred_type_name"], "default": p["default"], "help": p["help"],
                          "choices": choices}
    if not declared:
        raise CourseError(f"{Path(notebook).name} has no cell tagged 'parameters'")
    return declared


def _type_ok(value: Any, type_name: str) -> bool:
    """Whether `value` fits an annotation such as int, Optional[float] or str."""
    optional = re.fullmatch(r"Optional\[(\w+)\]", type_name)
    if optional:
        return value is None or _type_ok(value, optional.group(1))
    allowed = _TYPES.get(type_name)
    if allowed is None:
        return True  # unannotated or an exotic type: accept
    if isinstance(value, bool) and type_name in ("int", "float"):
        return False
    return isinstance(value, allowed)


def coerce(value: str) -> Any:
    """Turn a command-line string into a Python value: 3 → int, 0.1 → float, None, True, [1,2] or plain text."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def check_parameters(notebook: str | Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Validate `parameters` against the notebook's declarations; raise one CourseError listing every problem."""
    declared = declared_parameters(notebook)
    problems = []
    for name, value in parameters.items():
        if name not in declared:
            problems.append(f"unknown parameter {name!r}")
            continue
        spec = declared[name]
        if not _type_ok(value, spec["type"]):
            problems.append(f"{name}={value!r} is not of type {spec['type']}")
        elif spec["choices"] and value not in spec["choices"]:
            problems.append(f"{name}={value!r} is not one of {spec['choices']}")
    if problems:
        valid = "; ".join(f"{n}: {s['type']} (default {s['default']}){' — ' + s['help'] if s['help'] else ''}"
                          for n, s in declared.items())
        raise CourseError(f"{Path(notebook).name}: {', '.join(problems)}. Valid parameters: {valid}")
    return parameters
