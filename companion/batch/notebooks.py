"""Find the course notebooks, and check that a run's output never replaces a notebook the learner made."""
from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import CourseError
from ..core.paths import NOTEBOOKS_DIR


def list_notebooks(folder: Path | None = None) -> list[Path]:
    """The course notebooks in order (00_… to 09_…)."""
    return sorted(p for p in (folder or NOTEBOOKS_DIR).glob("[0-9][0-9]_*.ipynb"))


def find_notebook(name: str) -> Path:
    """Resolve '00', '00_setup', '00_setup.ipynb' or a path to a notebook file."""
    path = Path(name).expanduser()
    if path.suffix == ".ipynb" and path.is_file():
        return path
    if path.is_file():
        raise CourseError(f"{name} is not a notebook: pass an .ipynb file, or a course number such as 06")
    for nb in list_notebooks():
        if nb.stem == name or nb.name == name or nb.stem.split("_")[0] == name:
            return nb
    known = ", ".join(nb.stem for nb in list_notebooks())
    raise CourseError(f"no notebook {name!r}: use a number or a name from {known}, or a path to an .ipynb file")


def select_notebooks(only: list[str] | None) -> list[Path]:
    """The course notebooks, or only those named by number or name; an unknown name is a CourseError."""
    notebooks = list_notebooks()
    if not only:
        return notebooks
    keys = {key: nb for nb in notebooks for key in (nb.stem, nb.name, nb.stem.split("_")[0])}
    unknown = [name for name in only if name not in keys]
    if unknown:
        raise CourseError(f"no course notebook {', '.join(map(repr, unknown))}: use numbers from "
                          f"{', '.join(nb.stem.split('_')[0] for nb in notebooks)} (e.g. --only 00 01)")
    return [nb for nb in notebooks if any(keys[name] == nb for name in only)]


def _written_by_a_run(path: Path) -> bool:
    """Whether an existing .ipynb is papermill's output (its metadata says so, or the run folder's status.json
    names it: a run killed while papermill wrote it leaves it truncated), i.e. safe to replace."""
    try:
        status = json.loads((path.parent / "status.json").read_text(encoding="utf-8"))
        if isinstance(status, dict) and status.get("notebook_file") == path.name:
            return True
    except (OSError, ValueError):
        pass
    try:
        return "papermill" in json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return False


def output_path(notebook: Path, out_dir: str | Path) -> Path:
    """Where a run of `notebook` into `out_dir` writes; refuse when that would replace the notebook itself
    or a notebook that no run wrote (a learner's own copy)."""
    output = Path(out_dir).expanduser().resolve() / notebook.name
    if output == notebook.resolve():
        raise CourseError(f"--out {out_dir} would overwrite the notebook being run ({notebook}) with its executed "
                          f"copy: choose another folder, e.g. --out runs/single")
    if output.exists() and not _written_by_a_run(output):
        raise CourseError(f"{output} exists and was not written by a run (a notebook of yours?): it is never "
                          f"replaced; move it away or choose another --out folder")
    return output
