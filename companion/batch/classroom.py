"""Classroom tools: student versions of the notebooks (solutions removed, outputs cleared) and `check`, which
runs a notebook (a course notebook or a learner's edited copy) and summarises the verdicts of its exercise checks.

Checks (`companion.checks`) put a structured verdict in each cell's outputs (MIME `VERDICT_MIME`); this module
reads those, never the human line.
"""
from __future__ import annotations

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


def verdicts(nb: nbformat.NotebookNode) -> tuple[list[dict[str, Any]], list[str]]:
    """The structured verdicts the notebook's cells emitted (in order), and the errors it stopped on."""
    found, errors = [], []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if VERDICT_MIME in data:
                item = dict(data[VERDICT_MIME])
                found.append({"cell": index, "name": item["name"], "status": item["status"],
                              "message": item["message"], "solution": is_solution(cell)})
            elif out.get("output_type") == "error":
                errors.append(f"cell {index}: {out.get('ename')}: {out.get('evalue')}")
    return found, errors


def execute_for_check(notebook: Path, out_dir: Path, profile: str) -> tuple[Path, str | None]:
    """Execute the notebook (profile `profile` when it declares one) into `out_dir`; return it and any error."""
    params = {"profile": profile} if "profile" in declared_parameters(notebook) else {}
    try:
        return run_notebook(notebook, out_dir, params, progress=False), None
    except CourseError:
        raise
    except Exception as err:  # the executed copy holds the outputs up to the failing cell: still summarise
        return out_dir / notebook.name, f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}"


def registered(notebook: Path) -> dict[str, str]:
    """Name → first docstring line of the exercise checks `companion` registered for this notebook."""
    try:
        checks = checks_for(notebook.stem)
    except Exception as err:  # a topic module that does not import must not hide the notebook's own checks
        print(f"(could not load every companion module: {type(err).__name__}: {err})")
        checks = {}
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


def report_check(path: Path, checks: dict[str, str], error: str | None) -> int:
    """Print every verdict of an executed notebook and a per-exercise summary; 0 if every exercise is correct."""
    found, errors = verdicts(nbformat.read(path, as_version=4))
    for item in found:
        print(f"  cell {item['cell']:>3} {MARKS[item['status']]} {item['name']}: {item['message']}"
              + ("  (solution cell)" if item["solution"] else ""))
    best = summarise(found, checks)
    done = sum(status == "correct" for status in best.values())
    print(f"{done} of {len(best)} exercise(s) correct: "
          + ", ".join(f"{MARKS[status]} {name} ({status})" for name, status in sorted(best.items())))
    for problem in ([error] if error else []) + [e for e in errors if error is None]:
        print(f"stopped on an error: {problem}")
    if not found:
        print("no exercise check output in this notebook: run it first (drop --no-execute), "
              "with a companion version that emits structured verdicts")
    return 0 if best and done == len(best) and not error and not errors else 1


def check(notebook: str, profile: str = "smoke", execute: bool = True, out: str | Path | None = None) -> int:
    """The `check` command: run the notebook (into `out`, else a temporary folder removed afterwards), summarise."""
    path = find_notebook(notebook).resolve()
    checks = registered(path)
    print(f"{path.name}: {len(checks)} registered check(s)"
          + "".join(f"\n  - {n}{': ' + d if d else ''}" for n, d in sorted(checks.items())))
    if not execute:
        return report_check(path, checks, None)
    with tempfile.TemporaryDirectory(prefix="companion-check-") as tmp:
        out_dir = Path(out) if out else Path(tmp)
        print(f"executing with profile={profile} into {out if out else 'a temporary folder'} …", flush=True)
        executed, error = execute_for_check(path, out_dir, profile)
        return report_check(executed, checks, error)
