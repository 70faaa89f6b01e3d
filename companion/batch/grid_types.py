"""The value types of a sweep grid (YAML): `jobs: two` or `params:` written as a list is one CourseError that says
where and what to write instead, before anything runs. Key names are checked by companion.batch.sweep.load_grid."""
from __future__ import annotations

from typing import Any

from ..core.errors import CourseError


def _is_int(value: Any) -> bool:
    """An int that is not a bool (YAML reads `yes` as True)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _seeds_problem(value: Any, where: str) -> str | None:
    """What is wrong with a `seeds:` value (an int ≥ 0 or a non-empty list of them), or None."""
    seeds = [value] if _is_int(value) else value
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s) and s >= 0 for s in seeds):
        return f"{where}seeds must be an integer ≥ 0 or a non-empty list of them (e.g. [0, 1, 2]), got {value!r}"
    return None


def _mapping_problem(value: Any, key: str, where: str, example: str) -> str | None:
    """What is wrong with a value that must be a mapping of names (params:, grid:, resources:), or None."""
    if value is None or (isinstance(value, dict) and all(isinstance(k, str) for k in value)):
        return None
    return f"{where}{key} must be a mapping of names to values (e.g. {example}), got {type(value).__name__} {value!r}"


def _entry_problems(entry: dict[str, Any], where: str) -> list[str]:
    """The type problems of one `notebooks:` entry."""
    problems = [p for p in (_mapping_problem(entry.get("params"), "params", where, "{profile: smoke}"),
                            _mapping_problem(entry.get("grid"), "grid", where, "{strategy: [full, lora]}")) if p]
    if "seeds" in entry:
        problems += [p for p in [_seeds_problem(entry["seeds"], where)] if p]
    if not isinstance(entry.get("notebook"), str):
        problems.append(f"{where}notebook must be text: a number or name in quotes such as \"07\", or an .ipynb "
                        f"path (YAML reads 07 as the number 7 and 010 as the octal number 8), got "
                        f"{entry.get('notebook')!r}")
    if "name" in entry and not isinstance(entry["name"], str):
        problems.append(f"{where}name must be text, got {entry['name']!r}")
    if isinstance(entry.get("grid"), dict):
        problems += [f"{where}grid.{k} must be a non-empty list of values, e.g. [1, 2]; a single value goes "
                     f"under params:" for k, v in entry["grid"].items() if not isinstance(v, list) or not v]
    return problems


def check_grid_types(grid: dict[str, Any], name: str) -> None:
    """Check the types of a loaded grid's values; one CourseError listing every problem."""
    problems = []
    jobs = grid.get("jobs")
    if jobs is not None and not (_is_int(jobs) and jobs >= 1):
        problems.append(f"jobs must be a whole number ≥ 1 (e.g. jobs: 2), got {jobs!r}")
    for key in ("name", "description", "out"):
        if grid.get(key) is not None and not isinstance(grid[key], str):
            problems.append(f"{key} must be text, got {grid[key]!r}")
    if "seeds" in grid:
        problems += [p for p in [_seeds_problem(grid["seeds"], "")] if p]
    problems += [p for p in (_mapping_problem(grid.get("params"), "params", "", "{profile: smoke}"),
                             _mapping_problem(grid.get("resources"), "resources", "", "{cores: 2}")) if p]
    for i, entry in enumerate(grid.get("notebooks") or []):
        if isinstance(entry, dict):
            problems += _entry_problems(entry, f"notebooks[{i}].")
    if problems:
        raise CourseError(f"{name}: " + "; ".join(problems) + " (schema: sweeps/README.md)")
