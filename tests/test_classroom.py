"""Classroom tools: student notebooks lose their solutions and outputs; `check` summarises the exercise checks."""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from companion.__main__ import main
from companion.classroom import check, make_student, summarise, verdicts
from companion.runner import find_notebook

TINY = (Path(__file__).parent / "assets" / "tiny.ipynb").resolve()


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


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


def test_verdicts_and_summary_from_outputs():
    nb = new_notebook(cells=[
        new_code_cell("a", outputs=[new_output("stream", name="stdout", text="⏳ q1: replace the `None`\n")]),
        new_code_cell("b", metadata={"tags": ["solution"]},
                      outputs=[new_output("stream", name="stdout", text="x\n✅ q1: correct\n")]),
        new_code_cell("c", outputs=[new_output("stream", name="stdout", text="❌ q2: not yet. Hint: h\n")]),
        new_code_cell("d", outputs=[new_output("error", ename="ValueError", evalue="bad", traceback=[])]),
    ])
    found, errors = verdicts(nb)
    assert [(f["cell"], f["mark"], f["name"], f["solution"]) for f in found] == [
        (0, "⏳", "q1", False), (1, "✅", "q1", True), (2, "❌", "q2", False)]
    assert errors == ["cell 3: ValueError: bad"]
    assert summarise(found, {"q3": ""}) == {"q1": "✅", "q2": "❌", "q3": "⏳"}


def test_check_executes_and_summarises(tmp_path, capsys):
    assert check(str(TINY), out=tmp_path / "executed") == 0
    out = capsys.readouterr().out
    assert "⏳ tiny_answer" in out and "✅ tiny_answer: correct  (solution cell)" in out
    assert "1 of 1 exercise(s) correct" in out
    student = make_student(tmp_path / "student", [str(TINY)])[0]
    capsys.readouterr()
    assert main(["check", str(student), "--no-execute"]) == 1  # nothing executed yet: nothing to summarise
    assert "no check output in this notebook" in capsys.readouterr().out
