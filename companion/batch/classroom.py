"""Classroom tools: student versions of the notebooks (solutions removed, outputs cleared) and `check`, which
runs a notebook (a course notebook or a learner's edited copy) and summarises the verdicts of its exercise checks.

Checks (`companion.exercises`) put a structured verdict in each cell's outputs (MIME `VERDICT_MIME`); this module
reads those, never the human line.
"""
from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from ..core.errors import CourseError
from ..checks import MARKS, VERDICT_MIME, checks_for
from ..core.paths import NOTEBOOKS_DIR
from .params import declared_parameters
from .runner import find_notebook, list_notebooks, run_notebook

SOLUTION_TAG = "solution"
RANK = {"correct": 2, "not_yet": 1, "pending": 0}
CELL_TIMEOUT = 300  # seconds one cell may run under `check` (a student's endless loop fails its exercise)
INJECTED = "injected-parameters"  # papermill's cell in an executed copy (not in the learner's notebook)


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """True for a cell tagged `solution`."""
    return SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])


def clear_outputs(cell: nbformat.NotebookNode) -> None:
    """Drop a cell's outputs, execution count and run metadata."""
    cell.metadata.pop("papermill", None)
    cell.metadata.pop("execution", None)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None


def student_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Drop cells tagged `solution`, clear outputs, counts and run metadata; return it and the cells dropped."""
    kept = [c for c in nb.cells if not is_solution(c)]
    dropped = len(nb.cells) - len(kept)
    for cell in kept:
        clear_outputs(cell)
    nb.cells = kept
    nb.metadata.pop("papermill", None)
    return nb, dropped


def course_sources(notebooks: list[str] | None) -> list[Path]:
    """The notebooks to export: `notebooks` (numbers, names or paths) or every course notebook."""
    sources = [find_notebook(n).resolve() for n in notebooks] if notebooks else list_notebooks()
    if not sources:
        raise CourseError("no notebooks found: build them first with `python tools/build_notebooks.py`")
    names = [p.name for p in sources]
    if len(set(names)) != len(names):
        raise CourseError(f"two notebooks with the same file name in {names}: export them one at a time")
    return sources


def check_targets(out_dir: Path, targets: list[Path], sources: list[Path], force: bool) -> None:
    """Refuse (before writing anything) to write into notebooks/, over a source, or over files unless `force`."""
    out = out_dir.resolve()
    if out == NOTEBOOKS_DIR or NOTEBOOKS_DIR in out.parents:
        raise CourseError(f"{out_dir} is inside the course's notebooks/ folder, which holds the stored notebooks: "
                          "choose another output folder, e.g. --out student")
    over_source = [t for t in targets if t.resolve() in {s.resolve() for s in sources}]
    if over_source:
        raise CourseError(f"{over_source[0]} is the notebook being exported: choose another output folder")
    existing = sorted(str(t) for t in targets if t.exists())
    if existing and not force:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise CourseError(f"{shown} already exist(s) and may hold someone's edits: choose another "
                          "output folder, or pass --force to overwrite")


def make_student(out_dir: str | Path = "student", notebooks: list[str] | None = None,
                 force: bool = False) -> list[Path]:
    """Write student versions of the course notebooks (or of `notebooks`: numbers, names or paths)."""
    sources = course_sources(notebooks)
    out_dir = Path(out_dir)
    targets = {out_dir / src.name: src for src in sources}
    check_targets(out_dir, list(targets), sources, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    for target, src in targets.items():
        nb, dropped = student_notebook(nbformat.read(src, as_version=4))
        nbformat.write(nb, target)
        print(f"{target}: {len(nb.cells)} cells, {dropped} solution cell(s) removed")
    return list(targets)


def _learner_cells(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    """The cells as the learner's notebook numbers them (papermill's injected parameters cell left out)."""
    cells = [c for c in nb.cells if INJECTED not in c.get("metadata", {}).get("tags", [])]
    return list(enumerate(cells))


def verdicts(nb: nbformat.NotebookNode) -> tuple[list[dict[str, Any]], list[str]]:
    """The structured verdicts the notebook's cells emitted (in order), and the errors it stopped on."""
    found, errors = [], []
    for index, cell in _learner_cells(nb):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if VERDICT_MIME in data:
                item = dict(data[VERDICT_MIME])
                found.append({"cell": index, "name": item["name"], "status": item["status"],
                              "message": item["message"], "solution": is_solution(cell)})
            elif out.get("output_type") == "error":
                errors.append(f"cell {index}: {out.get('ename')}: {_readable(str(out.get('evalue')))}")
    return found, errors


def _readable(evalue: str) -> str:
    """An error value without the kernel's temporary file name: `(3284617.py, line 2)` → `(line 2 of the cell)`."""
    return re.sub(r"\(\w+\.py, line (\d+)\)", r"(line \1 of the cell)", evalue)


def _learner_index(path: Path, index: int) -> int:
    """An executed copy's cell index as the learner's notebook counts it (papermill's injected cell left out)."""
    try:
        cells = nbformat.read(path, as_version=4).cells
    except (OSError, ValueError):
        return index
    return index - sum(INJECTED in c.get("metadata", {}).get("tags", []) for c in cells[:index])


def _timed_out_cell(path: Path) -> int | None:
    """The (learner's) index of the cell that ran when the run stopped: the last one papermill started."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None
    started = [i for i, c in _learner_cells(nb) if (c.get("metadata", {}).get("papermill") or {}).get("start_time")]
    return started[-1] if started else None


def execute_for_check(notebook: Path, out_dir: Path, profile: str, timeout: float | None = CELL_TIMEOUT,
                      force: bool = False) -> tuple[Path, str | None, int | None]:
    """Execute the notebook (profile `profile` when it declares one; each cell at most `timeout` seconds) into
    `out_dir`; return it, any error (with its cell) and the cell that ran out of time (or None)."""
    from nbclient.exceptions import CellTimeoutError


    params = {"profile": profile} if "profile" in declared_parameters(notebook) else {}
    executed = out_dir / notebook.name
    log = logging.getLogger("papermill")  # its "Timeout waiting for execute reply": reported below, in one line
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        return run_notebook(notebook, out_dir, params, progress=False, timeout=timeout, force=force), None, None
    except CourseError:
        raise
    except CellTimeoutError:
        cell = _timed_out_cell(executed)
        return executed, f"cell {cell} ran longer than {timeout:g} s (an endless loop?) and was stopped", cell
    except Exception as err:  # the executed copy holds the outputs up to the failing cell: still summarise
        index = getattr(err, "cell_index", None)
        where = f"cell {_learner_index(executed, index)}: " if index is not None else ""
        text = _readable(str(getattr(err, "evalue", err)))
        return executed, f"{where}{getattr(err, 'ename', type(err).__name__)}: {text}", None
    finally:
        log.setLevel(level)


def exercises_in(source: str, checks: dict[str, Any]) -> list[str]:
    """The exercises a cell checks: the names passed to inline checks (check_equal / check_close /
    check_prediction), and the registered `checks` (name → function) it calls by function or exercise name."""
    found = re.findall(r"check_(?:equal|close|prediction)\([^\n]*?[\"']([\w\-]+)[\"']", source)
    found += [name for name, fn in checks.items() if f"{getattr(fn, '__name__', name)}(" in source
              or f"'{name}'" in source or f'"{name}"' in source]
    return list(dict.fromkeys(found))


def timeout_verdicts(path: Path, cell: int | None, checks: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
    """A not-yet verdict for each exercise of the cell that ran out of time (its check never ran)."""
    cells = dict(_learner_cells(nbformat.read(path, as_version=4))) if path.is_file() else {}
    if cell not in cells:
        return []
    message = f"not yet: the cell ran longer than {timeout:g} s and was stopped (an endless loop?)"
    return [{"cell": cell, "name": name, "status": "not_yet", "message": message, "solution": is_solution(cells[cell])}
            for name in exercises_in(cells[cell].source, checks)]


def course_checks(notebook: Path) -> dict[str, Any]:
    """The registered checks (name → function) of a notebook, found by the course number the notebook itself
    declares (so a renamed copy keeps them); {} when a topic module does not import."""
    from .notebooks import course_number

    try:
        return checks_for(course_number(notebook))
    except Exception as err:  # a topic module that does not import must not hide the notebook's own checks
        print(f"(could not load every companion module: {type(err).__name__}: {err})")
        return {}


def registered(notebook: Path) -> dict[str, str]:
    """Name → first docstring line of the exercise checks `companion` registered for this notebook."""
    checks = course_checks(notebook)
    return {name: (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "" for name, fn in checks.items()}


def summarise(found: list[dict[str, Any]], checks: dict[str, str]) -> dict[str, str]:
    """Per exercise the best status emitted (correct > not_yet > pending); checks never emitted are pending."""
    best: dict[str, str] = {name: "pending" for name in checks}
    seen: set[str] = set()
    for item in found:
        name = item["name"]
        if name not in seen or RANK[item["status"]] > RANK[best[name]]:
            best[name] = item["status"]
        seen.add(name)
    return best


def report_check(path: Path, checks: dict[str, str], error: str | None,
                 extra: list[dict[str, Any]] | None = None) -> int:
    """Print every verdict of an executed notebook (and `extra` ones, e.g. of a cell that timed out) and a
    per-exercise summary; 0 if every exercise is correct."""
    found, errors = verdicts(nbformat.read(path, as_version=4))
    found += extra or []
    for item in found:
        print(f"  cell {item['cell']:>3} {MARKS[item['status']]} {item['name']}: {item['message']}"
              + ("  (solution cell)" if item["solution"] else ""))
    best = summarise(found, checks)
    done = sum(status == "correct" for status in best.values())
    print(f"{done} of {len(best)} exercise(s) correct: "
          + ", ".join(f"{MARKS[status]} {name} ({status})" for name, status in sorted(best.items())))
    for problem in ([error] if error else []) + [e for e in errors if error is None]:
        print(f"stopped on an error: {problem}")
    if not found and not error:
        print("no exercise check output in this notebook: run it first (drop --no-execute), "
              "with a companion version that emits structured verdicts")
    return 0 if best and done == len(best) and not error and not errors else 1


def check(notebook: str, profile: str = "smoke", execute: bool = True, out: str | Path | None = None,
          timeout: float | None = None, force: bool = False) -> int:
    """The `check` command: run the notebook (into `out`, else a temporary folder removed afterwards; each cell at
    most `timeout` seconds, default CELL_TIMEOUT), summarise."""
    path = find_notebook(notebook).resolve()
    checks = registered(path)
    print(f"{path.name}: {len(checks)} registered check(s)"
          + "".join(f"\n  - {n}{': ' + d if d else ''}" for n, d in sorted(checks.items())))
    if not execute:
        return report_check(path, checks, None)
    with tempfile.TemporaryDirectory(prefix="companion-check-") as tmp:
        out_dir = Path(out) if out else Path(tmp)
        print(f"executing with profile={profile} into {out if out else 'a temporary folder'} …", flush=True)
        timeout = CELL_TIMEOUT if timeout is None else timeout
        executed, error, late = execute_for_check(path, out_dir, profile, timeout, force)
        extra = timeout_verdicts(executed, late, course_checks(path), timeout) if late is not None else []
        return report_check(executed, checks, error, extra)
