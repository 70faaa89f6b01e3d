"""Find the course notebooks, and check that a run's output never replaces a file the learner made: a run replaces
only files that a run of the same notebook wrote there (marked in the folder's MARKS_FILE), and never writes into
the course's stored folders."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from ..core.errors import CourseError
from ..core.paths import NOTEBOOKS_DIR, PROJECT_ROOT

MARKS_FILE = ".written-by-runs.json"  # in a run folder: {"files": {file name: notebook stem}} of what runs wrote
STORED_DIRS = ("notebooks", "sweeps/results")  # the committed notebooks, their results and the committed sweeps
# what a notebook's code calls when it needs WikiText-2, or turns the data's labels into words (hard prompts)
USES = {"general_text": re.compile(r"\b(load_wikitext2|general_sentences|article_probe|adapted_minilm)\("),
        "label_words": re.compile(r"\b(verbalizer_sets|admissible)\(")}


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


def _read_json(path: Path) -> dict:
    """A JSON object from a file, or {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_marks(folder: Path) -> dict[str, str]:
    """File name → notebook stem of the files that runs wrote in a run folder (its MARKS_FILE)."""
    files = _read_json(folder / MARKS_FILE).get("files")
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def written_by_a_run_of(path: Path, stem: str) -> bool:
    """Whether a file in a run folder was written by a run of notebook `stem`: the folder's marks say so, or (a
    folder of an earlier version, without marks) its status.json is that notebook's and names the file."""
    if read_marks(path.parent).get(path.name) == stem:
        return True
    status = _read_json(path.parent / "status.json")
    return status.get("notebook") == stem and path.name in (status.get("notebook_file"), status.get("result"),
                                                            f"{stem}.results.json")


def _written_by_a_run(path: Path) -> bool:
    """Whether an existing .ipynb is papermill's output (its metadata says so, the folder's marks or its status.json
    name it: a run killed while papermill wrote it leaves it truncated), i.e. safe to replace."""
    status = _read_json(path.parent / "status.json")
    if path.name in read_marks(path.parent) or status.get("notebook_file") == path.name:
        return True
    return "papermill" in (_read_json(path).get("metadata") or {})


def check_out_dir(out_dir: str | Path) -> Path:
    """The run folder, resolved; refuse a file (or /dev/null) and the course's stored folders (notebooks/ with its
    results, sweeps/results), which runs never write into."""
    out = Path(out_dir).expanduser().resolve()
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        what = "a file" if existing.is_file() else "not a folder"
        raise CourseError(f"--out {out_dir}: {existing} is {what}; pass a folder (created if missing), "
                          f"e.g. --out runs/single")
    for stored in STORED_DIRS:
        folder = (PROJECT_ROOT / stored).resolve()
        if out == folder or folder in out.parents:
            raise CourseError(f"--out {out_dir} is in the course's stored {stored}/ folder (the committed notebooks "
                              f"and results), which a run never writes into: choose another folder, e.g. "
                              f"--out runs/single")
    return out


def output_path(notebook: Path, out_dir: str | Path) -> Path:
    """Where a run of `notebook` into `out_dir` writes; refuse when that would replace the notebook itself
    or a notebook that no run wrote (a learner's own copy), or write into a file or a stored folder."""
    output = Path(out_dir).expanduser().resolve() / notebook.name
    if output == notebook.resolve():
        raise CourseError(f"--out {out_dir} would overwrite the notebook being run ({notebook}) with its executed "
                          f"copy: choose another folder, e.g. --out runs/single")
    check_out_dir(out_dir)
    if output.exists() and not _written_by_a_run(output):
        raise CourseError(f"{output} exists and was not written by a run (a notebook of yours?): it is never "
                          f"replaced; move it away or choose another --out folder")
    return output


def run_outputs(notebook: Path, out_dir: str | Path) -> tuple[Path, Path]:
    """The executed notebook and the result JSON a run of `notebook` writes into `out_dir`; refuse (before
    anything is written) when either would replace a file that no run of this notebook wrote."""
    output = output_path(notebook, out_dir)
    result = output.parent / f"{notebook.stem}.results.json"
    if result.exists() and not written_by_a_run_of(result, notebook.stem):
        raise CourseError(f"{result} exists and was not written by a run of {notebook.stem} (a file of yours, or a "
                          f"copy of stored results?): it is never replaced; move it away or choose another --out "
                          f"folder")
    status = output.parent / "status.json"
    if status.exists() and not {"status", "notebook"} <= set(_read_json(status)):
        raise CourseError(f"{status} exists and was not written by a run: it is never replaced; move it away or "
                          f"choose another --out folder")
    return output, result


@lru_cache(maxsize=64)
def _notebook_facts(path: str, mtime: float) -> tuple[str | None, frozenset[str]]:
    """The course number a notebook declares (metadata, else its `check_values("NN", …)` call) and what it USES."""
    nb = _read_json(Path(path))
    code = "\n".join("".join(c.get("source", "")) for c in nb.get("cells", []) if isinstance(c, dict)
                     and c.get("cell_type") == "code")
    number = ((nb.get("metadata") or {}).get("companion") or {}).get("notebook")
    call = re.search(r"check_values\(\s*[\"'](\d\d)[\"']", code)
    uses = frozenset(name for name, pattern in USES.items() if pattern.search(code))
    return (str(number) if number else call.group(1) if call else None), uses


def notebook_facts(notebook: Path) -> tuple[str | None, frozenset[str]]:
    """`_notebook_facts`, cached per file version."""
    try:
        mtime = notebook.stat().st_mtime
    except OSError:
        return None, frozenset()
    return _notebook_facts(str(notebook.resolve()), mtime)


def course_number(notebook: Path) -> str:
    """The course number of a notebook (e.g. '06'), from its own content, so a renamed copy keeps it; else the
    first part of its file name."""
    return notebook_facts(notebook)[0] or notebook.stem.split("_")[0]
