"""Execute notebooks with papermill into a run folder: executed notebook + its result JSON side by side."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .errors import CourseError
from .params import check_parameters
from .paths import NOTEBOOKS_DIR
from .results import RESULTS_ENV


def list_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course notebooks in order (00_… to 09_…)."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def find_notebook(name: str) -> Path:
    """Resolve '00', '00_setup', '00_setup.ipynb' or a path to a notebook file."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path
    for nb in list_notebooks():
        if nb.stem == name or nb.name == name or nb.stem.split("_")[0] == name:
            return nb
    known = ", ".join(nb.stem for nb in list_notebooks())
    raise CourseError(f"no notebook {name!r}: use a number or a name from {known}, or a path to an .ipynb file")


def run_notebook(notebook: str | Path, out_dir: str | Path, parameters: dict[str, Any] | None = None,
                 progress: bool = True) -> Path:
    """Validate parameters, then execute the notebook into `out_dir`; return the executed notebook's path."""
    import papermill

    nb = find_notebook(str(notebook))
    parameters = check_parameters(nb, dict(parameters or {}))
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / nb.name
    previous = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(out_dir)  # the kernel inherits it: the result JSON lands beside the notebook
    try:
        papermill.execute_notebook(str(nb), str(output), parameters=parameters, cwd=str(nb.parent),
                                   progress_bar=progress, kernel_name="python3")
    finally:
        if previous is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = previous
    return output


def run_course(out_dir: str | Path, profile: str = "cpu", only: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every notebook (or `only` these) in order with one profile; return name, seconds and status each."""
    rows = []
    for nb in list_notebooks():
        if only and nb.stem.split("_")[0] not in only and nb.stem not in only:
            continue
        start = time.perf_counter()
        status = "ok"
        try:
            run_notebook(nb, out_dir, {"profile": profile})
        except Exception as err:  # record and go on: one failing notebook must not hide the others
            status = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        rows.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - start, 1), "status": status})
        print(f"{nb.stem}: {status} ({rows[-1]['seconds']} s)", flush=True)
    return rows
