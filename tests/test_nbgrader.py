"""The nbgrader export round trip with nbgrader itself: generate_assignment, then autograde a solved copy (full
marks) and an unsolved copy (zero), offline, with a sqlite gradebook in a temporary course folder."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from companion.batch.classroom import is_solution
from companion.core.errors import CourseError
from companion.batch.nbgrader_export import export_course, split_checks
from companion.core.paths import NOTEBOOKS_DIR
from companion.batch.runner import find_notebook

ASSIGNMENT = "02_cross_entropy"


def _exercises() -> int:
    """The number of exercises (solution cells, one check each) of the stored notebook."""
    return sum(is_solution(c) for c in nbformat.read(find_notebook(ASSIGNMENT), as_version=4).cells)


def test_split_checks_moves_only_the_check_calls():
    code, checks = split_checks('x = None  # your answer\ncheck_x(\n    x, 2)\nprint(x)')
    assert code == "x = None  # your answer\nprint(x)"
    assert checks == ["check_x(\n    x, 2)"]


def test_export_marks_solutions_checks_and_locks(tmp_path):
    source = export_course(tmp_path / "course", ["02"])[0]
    assert source == tmp_path / "course" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cells = nbformat.read(source, as_version=4).cells
    editable = [c for c in cells if "nbgrader" not in c.metadata]
    assert editable and all("= None  # your prediction" in c.source for c in editable)  # predict-then-measure
    meta = [c.metadata["nbgrader"] for c in cells if "nbgrader" in c.metadata]
    answers = [m for m in meta if m["solution"]]
    tests = [m for m in meta if m["grade"]]
    assert len(answers) == len(tests) == _exercises() >= 3
    assert all(m["locked"] and m["points"] == 1 for m in tests)
    assert all(m["locked"] for m in meta if not m["solution"])  # every teaching cell is read-only
    assert len({m["grade_id"] for m in meta}) == len(meta)
    with pytest.raises(CourseError, match="--force"):  # a teacher's edited course is never overwritten silently
        export_course(tmp_path / "course", ["02"])
    with pytest.raises(CourseError, match="notebooks/"):
        export_course(NOTEBOOKS_DIR / "course", ["02"])
    assert not (NOTEBOOKS_DIR / "course").exists()


def test_a_solution_without_its_exercise_cell_is_refused_before_writing(tmp_path):
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("**1.** an exercise"),
        nbformat.v4.new_code_cell("# Solution: …\nx = 1\ncheck_x(x)", metadata={"tags": ["solution"]})]), bad)
    with pytest.raises(CourseError, match="bad.ipynb: cell 1 is a solution cell"):
        export_course(tmp_path / "course", ["02", str(bad)])
    assert not (tmp_path / "course").exists()


def _nbgrader(course, *args):
    """Run the nbgrader command line in the course folder (offline, smoke profile, results in the course)."""
    env = {**os.environ, "COURSE_FORCE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1",
           "COURSE_RESULTS_DIR": str(course / "results"),  # nbgrader calls `alembic` from the environment's bin/
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def _submit(course, student, nb):
    """Place a notebook as a student's submission."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")


@pytest.mark.notebook
def test_nbgrader_generate_and_autograde_round_trip(tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    source = export_course(course, ["02"], timeout=300)[0]
    _nbgrader(course, "generate_assignment", ASSIGNMENT)
    release = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert "BEGIN SOLUTION" not in str(release) and "# YOUR CODE HERE" in str(release)
    _submit(course, "unsolved", release)
    solved = nbformat.read(source, as_version=4)  # a learner who wrote exactly the solutions
    for cell in solved.cells:
        cell.source = "\n".join(x for x in cell.source.splitlines() if "### BEGIN" not in x and "### END" not in x)
    _submit(course, "solved", solved)
    _nbgrader(course, "autograde", ASSIGNMENT)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(ASSIGNMENT, s) for s in ("solved", "unsolved")}
        assert scores["solved"].max_score == _exercises()
        assert (scores["solved"].score, scores["unsolved"].score) == (_exercises(), 0)
    shutil.rmtree(course / "autograded")
