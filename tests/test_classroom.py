"""Classroom tools: student notebooks lose their solutions and outputs, never overwrite a learner's work nor the
stored notebooks; `check` reads the structured verdicts of the exercise checks and leaves no temporary folder."""
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from companion.batch.cli import main
from companion.batch.classroom import check, is_solution, make_student, summarise, verdicts
from companion.core.errors import CourseError
from companion.checks import VERDICT_MIME, checks_for
from companion.core.paths import NOTEBOOKS_DIR
from companion.batch.runner import find_notebook

TINY = (Path(__file__).parent / "assets" / "tiny.ipynb").resolve()


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def _verdict(name: str, status: str, message: str = "m"):
    """A display_data output as `Verdict.emit()` writes it in a kernel."""
    return new_output("display_data", data={"text/plain": f"{name}: {message}",
                                            VERDICT_MIME: {"name": name, "status": status, "message": message}})


def test_student_versions_have_no_solutions_and_no_outputs(tmp_path):
    stored = find_notebook("00")
    original = nbformat.read(stored, as_version=4)
    assert any("solution" in _tags(c) for c in original.cells)
    assert any(c.get("outputs") for c in original.cells if c.cell_type == "code")  # stored with outputs
    written = make_student(tmp_path, ["00", str(TINY)])
    assert [p.name for p in written] == [stored.name, "tiny.ipynb"]
    for path, source in zip(written, (stored, TINY)):
        nb = nbformat.read(path, as_version=4)
        before = nbformat.read(source, as_version=4).cells
        assert not any("solution" in _tags(c) for c in nb.cells)
        assert len(nb.cells) == len(before) - sum("solution" in _tags(c) for c in before)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code)
        assert any("= None  # your answer" in c.source for c in code)  # the learner's exercise cells stay
        assert any("parameters" in _tags(c) for c in code)


def test_student_cli_default_folder_is_student(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["student", str(TINY)]) == 0
    assert (tmp_path / "student" / "tiny.ipynb").is_file()


def test_student_never_overwrites_a_learners_notebook_without_force(tmp_path, capsys):
    target = make_student(tmp_path, [str(TINY)])[0]
    target.write_text(target.read_text().replace("None  # your answer", "41  # my edit"))
    assert main(["student", str(TINY), "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert "41  # my edit" in target.read_text()  # untouched
    assert main(["student", str(TINY), "--out", str(tmp_path), "--force"]) == 0
    assert "41  # my edit" not in target.read_text()


@pytest.mark.parametrize("inside", [".", "sub"])
def test_student_never_writes_into_the_stored_notebooks(inside):
    before = {p: p.stat().st_mtime_ns for p in NOTEBOOKS_DIR.rglob("*") if p.is_file()}
    with pytest.raises(CourseError, match="notebooks/"):
        make_student(NOTEBOOKS_DIR / inside, ["00"], force=True)
    assert {p: p.stat().st_mtime_ns for p in NOTEBOOKS_DIR.rglob("*") if p.is_file()} == before
    assert not (NOTEBOOKS_DIR / "sub").exists()


def test_student_refuses_to_replace_its_own_source(tmp_path):
    own = tmp_path / "mine.ipynb"
    own.write_bytes(TINY.read_bytes())
    with pytest.raises(CourseError, match="being exported"):
        make_student(tmp_path, [str(own)], force=True)
    assert own.read_bytes() == TINY.read_bytes()


def test_verdicts_are_read_from_the_structured_output_only():
    nb = new_notebook(cells=[
        new_code_cell("a", outputs=[_verdict("q1", "pending")]),
        new_code_cell("b", metadata={"tags": ["solution"]},
                      outputs=[new_output("stream", name="stdout", text="x\n"), _verdict("q1", "correct")]),
        new_code_cell("c", outputs=[_verdict("q2", "not_yet", "not yet. Hint: h")]),
        new_code_cell("d", outputs=[new_output("stream", name="stdout", text="✅ q3: correct\n")]),  # only text
        new_code_cell("e", outputs=[new_output("error", ename="ValueError", evalue="bad", traceback=[])]),
    ])
    found, errors = verdicts(nb)
    assert [(f["cell"], f["status"], f["name"], f["solution"]) for f in found] == [
        (0, "pending", "q1", False), (1, "correct", "q1", True), (2, "not_yet", "q2", False)]
    assert errors == ["cell 4: ValueError: bad"]
    assert summarise(found, {"q3": ""}) == {"q1": "correct", "q2": "not_yet", "q3": "pending"}


@pytest.mark.kernel
def test_check_executes_summarises_and_removes_its_temporary_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert check(str(TINY)) == 0
    out = capsys.readouterr().out
    assert "⏳ tiny_answer" in out and "✅ tiny_answer: correct  (solution cell)" in out
    assert "1 of 1 exercise(s) correct" in out
    assert list((tmp_path / "tmp").iterdir()) == []  # the executed copy went with its temporary folder
    student = make_student(tmp_path / "student", [str(TINY)])[0]
    capsys.readouterr()
    assert main(["check", str(student), "--no-execute"]) == 1  # nothing executed yet: nothing to summarise
    assert "no exercise check output in this notebook" in capsys.readouterr().out
    assert check(str(student), out=tmp_path / "executed") == 1  # executed student copy: not done yet
    out = capsys.readouterr().out
    assert "0 of 1 exercise(s) correct: ⏳ tiny_answer (pending)" in out
    assert (tmp_path / "executed" / "tiny.ipynb").is_file()  # an explicit --out is kept


@pytest.mark.notebook
def test_check_on_a_student_copy_of_a_course_notebook_reports_pending(tmp_path, capsys):
    student = make_student(tmp_path, ["02"])[0]
    capsys.readouterr()
    assert check(str(student)) == 1
    summary = [line for line in capsys.readouterr().out.splitlines() if "exercise(s) correct" in line]
    exercises = sum(is_solution(c) for c in nbformat.read(find_notebook("02"), as_version=4).cells)
    assert len(summary) == 1 and summary[0].startswith(f"0 of {exercises} exercise(s) correct: ")
    assert summary[0].count("(pending)") == exercises  # registered checks and inline ones alike
    assert set(checks_for("02")) <= {item.split()[1] for item in summary[0].split(": ", 1)[1].split(", ")}
