"""Export course notebooks as an nbgrader course: `companion student --nbgrader COURSE_DIR`.

Each notebook becomes one assignment, COURSE_DIR/source/<notebook>/<notebook>.ipynb, the instructor version that
`nbgrader generate_assignment <notebook>` turns into the student release:

* the learner's exercise cell becomes an autograded answer cell: its own lines (placeholders, context) followed by
  the solution code between `### BEGIN SOLUTION` / `### END SOLUTION`; the separate solution cell is dropped;
* the exercise's check call(s) move into a locked, graded test cell (`assert check_…(…)`, one point per check);
* a cell where the learner writes a prediction (`x = None  # your prediction`) stays editable; every other cell
  (the lesson) is locked read-only.

A new COURSE_DIR gets an nbgrader_config.py: the course id, a kernel timeout, the code stub of an answer;
adding notebooks to an existing course keeps its configuration.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

from .classroom import check_targets, clear_outputs, course_sources, is_solution
from ..core.errors import CourseError

SCHEMA_VERSION = 3
NBVAL_MARKER = re.compile(r"^\s*#\s*NBVAL_\w+\s*$")
PLACEHOLDER = re.compile(r"^\w+\s*=\s*(None|\.\.\.)\s*#\s*your\b", re.M)  # the learner's `answer = None  # your …`
CONFIG = '''"""nbgrader configuration of this course (written by `companion student --nbgrader`)."""
c = get_config()  # noqa: F821 - provided by nbgrader
c.CourseDirectory.course_id = {course_id!r}
# run nbgrader from this folder: the gradebook (sqlite, gradebook.db) and source/, release/, submitted/ live here
c.ExecutePreprocessor.timeout = {timeout}  # seconds per cell when autograding
c.ExecutePreprocessor.kernel_name = "python3"
# The learner's `answer = None  # your answer` line stays above the stub: an unanswered check is pending (0 points)
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE"}}
'''


def nbgrader_meta(grade_id: str, *, solution: bool = False, grade: bool = False, points: int = 0,
                  locked: bool = False) -> dict:
    """The `nbgrader` cell metadata (schema 3) for one cell."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA_VERSION,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return meta


def _is_check_call(node: ast.stmt) -> bool:
    """True for a statement `check_…(…)` / `module.check_…(…)`: an exercise check whose verdict is shown."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return False
    func = node.value.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name.startswith("check")


def split_checks(source: str) -> tuple[str, list[str]]:
    """Split a cell into (its code without the check calls, the check-call statements)."""
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics): fall back to lines that start with `check`
        checks = [line for line in lines if line.startswith("check")]
        return "\n".join(line for line in lines if not line.startswith("check")), checks
    spans = [(n.lineno, n.end_lineno) for n in tree.body if _is_check_call(n)]
    checks = ["\n".join(lines[a - 1:b]) for a, b in spans]
    drop = {i for a, b in spans for i in range(a, b + 1)}
    return "\n".join(line for i, line in enumerate(lines, 1) if i not in drop), checks


def solution_code(source: str) -> str:
    """A solution cell's code without its nbval markers and check calls."""
    code, _ = split_checks("\n".join(line for line in source.splitlines() if not NBVAL_MARKER.match(line)))
    return code.strip("\n")


def answer_cell(exercise: nbformat.NotebookNode, solution: nbformat.NotebookNode, grade_id: str
                ) -> tuple[nbformat.NotebookNode, list[str]]:
    """The autograded answer cell (learner's lines + the solution region) and the check calls to grade."""
    own, checks = split_checks(exercise.source)
    checks = checks or split_checks(solution.source)[1]
    body = "\n".join(part for part in (own.rstrip("\n"), "### BEGIN SOLUTION", solution_code(solution.source),
                                       "### END SOLUTION") if part)
    cell = nbformat.v4.new_code_cell(body, metadata={"nbgrader": nbgrader_meta(grade_id, solution=True)})
    return cell, checks


def test_cell(checks: list[str], grade_id: str) -> nbformat.NotebookNode:
    """A locked, graded cell that asserts each check (a check's verdict is truthy only when correct)."""
    source = "# autograded: one point per check\n" + "\n".join(f"assert {call}" for call in checks)
    meta = nbgrader_meta(grade_id, grade=True, points=len(checks), locked=True)
    return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})


def nbgrader_notebook(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """The instructor (source) version of one notebook for nbgrader; return it and its total points."""
    cells, total, exercise_no = [], 0, 0
    for index, cell in enumerate(nb.cells):
        clear_outputs(cell)
        cell.metadata.get("jupyter", {}).pop("source_hidden", None)
        if is_solution(cell):
            learner = cells.pop() if cells and cells[-1].cell_type == "code" else None
            if learner is None:
                raise CourseError(f"cell {index} is a solution cell with no exercise code cell before it: put the "
                                  "learner's cell (`answer = None` + its check) right above it")
            exercise_no += 1
            answer, checks = answer_cell(learner, cell, f"exercise{exercise_no}_answer")
            cells.append(answer)
            if checks:
                cells.append(test_cell(checks, f"exercise{exercise_no}_check"))
                total += len(checks)
            continue
        if not (cell.cell_type == "code" and PLACEHOLDER.search(cell.source)):  # a prediction cell stays editable
            cell.metadata["nbgrader"] = nbgrader_meta(f"cell{index}", locked=True)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("papermill", None)
    return nb, total


def _convert(src: Path) -> tuple[nbformat.NotebookNode, int]:
    """Read and convert one notebook; a malformed exercise names its notebook."""
    try:
        return nbgrader_notebook(nbformat.read(src, as_version=4))
    except CourseError as err:
        raise CourseError(f"{src.name}: {err}") from None


def export_course(course_dir: str | Path, notebooks: list[str] | None = None, force: bool = False,
                  timeout: int = 600) -> list[Path]:
    """Write an nbgrader course folder with one assignment per notebook; return the source notebooks written."""
    sources = course_sources(notebooks)
    course_dir = Path(course_dir)
    targets = {course_dir / "source" / src.stem / src.name: src for src in sources}
    config = course_dir / "nbgrader_config.py"
    check_targets(course_dir, list(targets), sources, force)
    converted = {target: _convert(src) for target, src in targets.items()}  # every notebook, before writing any
    for target, (nb, points) in converted.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        print(f"{target}: {points} point(s) in autograded checks")
    if not config.exists():  # an existing course keeps its own configuration
        config.write_text(CONFIG.format(course_id=course_dir.resolve().name, timeout=timeout))
    return list(targets)
