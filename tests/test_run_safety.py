"""Nothing a learner made is lost: `run`/`course` never replace the notebook being run (or any notebook no run
wrote); opening a stored notebook in JupyterLab changes nothing on disk; `make lab` works as root."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from companion import CourseError
from companion.batch import notebooks as N
from companion.batch.runner import execute_run, find_notebook, list_notebooks, run_course, run_notebook

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "assets" / "tiny.ipynb"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m companion …` in `cwd`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "companion", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_run_into_the_notebooks_own_folder_is_refused_and_the_notebook_kept(tmp_path):
    """`companion run my_edited.ipynb --out .` once deleted the learner's only copy."""
    mine = tmp_path / "my_edited.ipynb"
    shutil.copy(TINY, mine)
    before = mine.read_bytes()
    proc = cli("run", "my_edited.ipynb", "--out", ".", "-p", "sleep", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --out . would overwrite the notebook being run")
    assert mine.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["my_edited.ipynb"]
    for call in (lambda: execute_run(mine, tmp_path), lambda: run_notebook(mine, tmp_path / "." / "")):
        with pytest.raises(CourseError, match="would overwrite the notebook being run"):
            call()
    assert mine.read_bytes() == before


def test_run_02_into_a_copy_of_notebooks_is_refused(tmp_path):
    """`run 02 --out notebooks` (on a temporary copy): the stored notebook stays as it was."""
    copy = tmp_path / "notebooks" / find_notebook("02").name
    copy.parent.mkdir()
    shutil.copy(find_notebook("02"), copy)
    before = copy.read_bytes()
    proc = cli("run", str(copy), "--out", "notebooks", cwd=tmp_path)
    assert proc.returncode == 2 and "would overwrite the notebook being run" in proc.stderr
    assert copy.read_bytes() == before
    with pytest.raises(CourseError, match="would overwrite"):  # the real folder: refused before anything is written
        N.output_path(find_notebook("02"), ROOT / "notebooks")


def test_course_into_the_notebooks_folder_is_refused_before_any_run(tmp_path, monkeypatch):
    """`course --out notebooks` (on a temporary copy of two stored notebooks)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for number in ("00", "01"):
        shutil.copy(find_notebook(number), folder / find_notebook(number).name)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(N, "NOTEBOOKS_DIR", folder)
    assert [p.parent for p in list_notebooks()] == [folder, folder]
    with pytest.raises(CourseError, match="would overwrite the notebook being run"):
        run_course(folder, "smoke", only=["01"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_notebook_no_run_wrote_is_never_replaced(tmp_path):
    """An edited copy with the same name in the --out folder is the learner's: refused, kept."""
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / TINY.name
    theirs.write_text(TINY.read_text().replace("a number the result depends on", "my own notes"))
    before = theirs.read_bytes()
    with pytest.raises(CourseError, match="was not written by a run"):
        execute_run(TINY, out, {"sleep": 0})
    assert theirs.read_bytes() == before and not (out / "status.json").exists()


def test_a_previous_runs_output_may_be_replaced(tmp_path):
    """A rerun into the same folder replaces papermill's output of the earlier run (that is what a run folder is)."""
    out = tmp_path / "out"
    out.mkdir()
    earlier = json.loads(TINY.read_text())
    earlier["metadata"]["papermill"] = {"input_path": str(TINY)}
    (out / TINY.name).write_text(json.dumps(earlier))
    assert N.output_path(TINY, out) == (out / TINY.name).resolve()


def test_course_only_an_unknown_number_is_one_error():
    with pytest.raises(CourseError, match="no course notebook '99'"):
        N.select_notebooks(["99"])
    assert [p.stem[:2] for p in N.select_notebooks(["03", "01"])] == ["01", "03"]


def test_stored_notebooks_carry_the_installed_kernelspec(script):
    """Opening a stored notebook in JupyterLab changes nothing: the kernelspec is what ipykernel installed."""
    listed = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "kernelspec", "list", "--json"],
                            capture_output=True, text=True, check=True)
    installed = json.loads(listed.stdout)["kernelspecs"]["python3"]["spec"]
    expected = {"display_name": installed["display_name"], "language": installed["language"], "name": "python3"}
    assert script("tools/build_notebooks.py").kernelspec() == expected
    for nb in list_notebooks():
        assert json.loads(nb.read_text())["metadata"]["kernelspec"] == expected, nb.name


def test_storing_the_kernelspec_changes_nothing_else(tmp_path, script):
    build = script("tools/build_notebooks.py")
    stored = find_notebook("03").read_text()
    old = json.loads(stored)
    old["metadata"]["kernelspec"]["display_name"] = "Python 3"
    copy = tmp_path / "03.ipynb"
    copy.write_text(stored.replace(json.dumps(build.kernelspec()["display_name"]), '"Python 3"', 1))
    assert json.loads(copy.read_text()) == old
    assert build.set_kernelspec(copy) and copy.read_text() == stored and not build.set_kernelspec(copy)


def test_make_lab_passes_lab_args_and_allows_root():
    proc = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--no-browser --port 9999"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    command = [line for line in proc.stdout.splitlines() if "jupyter lab" in line][-1]
    assert "--no-browser --port 9999" in command and command.endswith("notebooks/")
    assert ("--allow-root" in command) == (os.geteuid() == 0)
