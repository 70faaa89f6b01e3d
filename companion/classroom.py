"""Classroom tools: student versions of the notebooks (solutions removed, outputs cleared) and `check`, which
runs a notebook (a course notebook or a learner's edited copy) and summarises its exercise checks (✅/❌/⏳).
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from .errors import CourseError
from .runner import find_notebook, list_notebooks

SOLUTION_TAG = "solution"
VERDICT = re.compile(r"^(✅|❌|⏳) ([^:\n]+):\s*(.*)$", re.M)
RANK = {"✅": 2, "❌": 1, "⏳": 0}


def student_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """Drop cells tagged `solution`, clear outputs, counts and run metadata; return it and the cells dropped."""
    kept = [c for c in nb.cells if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    dropped = len(nb.cells) - len(kept)
    for cell in kept:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.cells = kept
    nb.metadata.pop("papermill", None)
    return nb, dropped


def make_student(out_dir: str | Path = "student", notebooks: list[str] | None = None) -> list[Path]:
    """Write student versions of the course notebooks (or of `notebooks`: numbers, names or paths)."""
    sources = [find_notebook(n) for n in notebooks] if notebooks else list_notebooks()
    if not sources:
        raise CourseError("no notebooks found: build them first with `python tools/build_notebooks.py`")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources:
        nb, dropped = student_notebook(nbformat.read(src, as_version=4))
        target = out_dir / src.name
        nbformat.write(nb, target)
        print(f"{target}: {len(nb.cells)} cells, {dropped} solution cell(s) removed")
        written.append(target)
    return written


def verdicts(nb: nbformat.NotebookNode) -> tuple[list[dict[str, Any]], list[str]]:
    """The ✅/❌/⏳ lines the notebook's cells printed, and the errors it stopped on."""
    found, errors = [], []
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                for mark, name, message in VERDICT.findall(out.get("text", "")):
                    found.append({"cell": index, "mark": mark, "name": name.strip(), "message": message.strip(),
                                  "solution": SOLUTION_TAG in cell.metadata.get("tags", [])})
            elif out.get("output_type") == "error":
                errors.append(f"cell {index}: {out.get('ename')}: {out.get('evalue')}")
    return found, errors


def execute_for_check(notebook: Path, out_dir: Path, profile: str) -> tuple[Path, str | None]:
    """Execute the notebook (profile `profile` when it declares one) into `out_dir`; return it and any error."""
    from .params import declared_parameters
    from .runner import run_notebook

    params = {"profile": profile} if "profile" in declared_parameters(notebook) else {}
    try:
        return run_notebook(notebook, out_dir, params, progress=False), None
    except CourseError:
        raise
    except Exception as err:  # the executed copy holds the outputs up to the failing cell: still summarise
        return out_dir / notebook.name, f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}"


def registered(notebook: Path) -> dict[str, str]:
    """Name → first docstring line of the exercise checks `companion` registered for this notebook."""
    from .exercises import checks_for

    try:
        checks = checks_for(notebook.stem)
    except Exception as err:  # a topic module that does not import must not hide the notebook's own checks
        print(f"(could not load every companion module: {type(err).__name__}: {err})")
        checks = {}
    return {name: (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else "" for name, fn in checks.items()}


def summarise(found: list[dict[str, Any]], checks: dict[str, str]) -> dict[str, str]:
    """Per exercise the best verdict printed (✅ > ❌ > ⏳); registered checks never printed count as ⏳."""
    best: dict[str, str] = {name: "⏳" for name in checks}
    seen: set[str] = set()
    for item in found:
        name = item["name"]
        if name not in seen or RANK[item["mark"]] > RANK[best[name]]:
            best[name] = item["mark"]
        seen.add(name)
    return best


def check(notebook: str, profile: str = "smoke", execute: bool = True, out: str | Path | None = None) -> int:
    """The `check` command: run the notebook, print every check line and a per-exercise summary; 0 if all ✅."""
    path = find_notebook(notebook).resolve()
    checks = registered(path)
    print(f"{path.name}: {len(checks)} registered check(s)"
          + "".join(f"\n  - {n}{': ' + d if d else ''}" for n, d in sorted(checks.items())))
    error = None
    if execute:
        out_dir = Path(out or tempfile.mkdtemp(prefix="companion-check-"))
        print(f"executing with profile={profile} into {out_dir} …", flush=True)
        path, error = execute_for_check(path, out_dir, profile)
    found, errors = verdicts(nbformat.read(path, as_version=4))
    for item in found:
        print(f"  cell {item['cell']:>3} {item['mark']} {item['name']}: {item['message']}"
              + ("  (solution cell)" if item["solution"] else ""))
    best = summarise(found, checks)
    done = sum(mark == "✅" for mark in best.values())
    print(f"{done} of {len(best)} exercise(s) correct: "
          + ", ".join(f"{mark} {name}" for name, mark in sorted(best.items())))
    for problem in ([error] if error else []) + [e for e in errors if error is None]:
        print(f"stopped on an error: {problem}")
    if not found and not execute:
        print("no check output in this notebook: run it first, or drop --no-execute")
    return 0 if best and done == len(best) and not error and not errors else 1
