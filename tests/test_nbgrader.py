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


# The "write the mechanism" exercises of notebooks 01–08 (issue 25): the function the learner completes, and a
# deliberately wrong version of it (the same signature, a classic bug) that must cost exactly that exercise's marks.
WRONG_MECHANISMS = {
    "01": ("sentence_log_prob", '''def sentence_log_prob(model, tokenizer, text):
    ids = encode_with_start(tokenizer, text)
    with torch.no_grad():
        log_p = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return float(log_p[torch.arange(ids.shape[1]), ids[0]].sum())  # bug: no shift, token t read at position t'''),
    "02": ("masked_cross_entropy", '''def masked_cross_entropy(logits, labels):
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    nll = -torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[:, None])[:, 0]
    return (nll * (labels != -100)).mean()  # bug: ignored positions count as zeros in the mean'''),
    "03": ("causal_attention", '''def causal_attention(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v  # bug: no causal mask'''),
    "04": ("tokens_per_word", '''def tokens_per_word(tokenizer, texts):
    ratios = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) / len(t.split()) for t in texts]
    return sum(ratios) / len(ratios)  # bug: the mean of per-text ratios, not the ratio of totals'''),
    "05": ("whole_word_chosen", '''def whole_word_chosen(offsets, special, p, generator):
    chosen = torch.full(special.shape, p).masked_fill(special, 0.0)
    return torch.bernoulli(chosen, generator=generator).bool()  # bug: pieces drawn one by one, not whole words'''),
    "06": ("weighted_cross_entropy", '''def weighted_cross_entropy(logits, labels, class_weights):
    nll = -torch.log_softmax(logits, dim=-1)[torch.arange(len(labels)), labels]
    return (class_weights[labels] * nll).mean()  # bug: a plain mean, not divided by the sum of the weights'''),
    "07": ("freeze_lowest", '''def freeze_lowest(model, k):
    model.base_model.embeddings.requires_grad_(False)
    for layer in model.base_model.encoder.layer[:k + 1]:  # bug: k + 1 layers frozen
        layer.requires_grad_(False)
    return model'''),
    "08": ("lora_forward", '''def lora_forward(x, weight, bias, A, B, alpha, r):
    return x @ weight.T + bias + x @ A.T @ B.T  # bug: the update not scaled by alpha / r'''),
}


def _from_source(number: str, folder: Path, script) -> Path:
    """The notebook built from its source (notebooks/src), so the test follows the source, stored or not."""
    src = next((Path(__file__).resolve().parents[1] / "notebooks" / "src").glob(f"{number}_*.py"))
    folder.mkdir(parents=True, exist_ok=True)
    return script("tools/build_notebooks.py").convert(src, folder / f"{src.stem}.ipynb")


def _solved(source_nb) -> nbformat.NotebookNode:
    """A learner who wrote exactly the solutions: the instructor version without the solution markers."""
    solved = nbformat.from_dict(source_nb)
    for cell in solved.cells:
        cell.source = "\n".join(x for x in cell.source.splitlines() if "### BEGIN" not in x and "### END" not in x)
    return solved


@pytest.mark.notebook
@pytest.mark.parametrize("number", sorted(WRONG_MECHANISMS))
def test_nbgrader_grades_the_mechanism_exercise(number, tmp_path, script):
    """Solved → full marks; the mechanism written wrong (all else solved) → exactly that exercise's marks lost."""
    from nbgrader.api import Gradebook

    function, wrong = WRONG_MECHANISMS[number]
    course = tmp_path / "course"
    source = export_course(course, [str(_from_source(number, tmp_path / "built", script))], timeout=300)[0]
    assignment = source.stem
    _nbgrader(course, "generate_assignment", assignment)
    instructor = nbformat.read(source, as_version=4)
    answer = next(c for c in instructor.cells if c.metadata.get("nbgrader", {}).get("solution")
                  and f"def {function}(" in c.source.split("### BEGIN SOLUTION")[-1])
    exercise = answer.metadata["nbgrader"]["grade_id"].removesuffix("_answer")
    points = next(c.metadata["nbgrader"]["points"] for c in instructor.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == f"{exercise}_check")
    total = sum(c.metadata["nbgrader"].get("points", 0) for c in instructor.cells if "nbgrader" in c.metadata)
    wrong_nb = _solved(instructor)
    for cell, original in zip(wrong_nb.cells, instructor.cells):
        if original is answer:  # the learner's lines stay, the solution region becomes the wrong function
            cell.source = original.source.split("### BEGIN SOLUTION")[0] + wrong + "\n"
    for student, nb in (("solved", _solved(instructor)), ("wrong", wrong_nb)):
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / source.name)
    _nbgrader(course, "autograde", assignment)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        solved, wrong_sub = (gradebook.find_submission(assignment, s) for s in ("solved", "wrong"))
        assert solved.max_score == total and solved.score == total
        assert wrong_sub.score == total - points
        grade = gradebook.find_grade(f"{exercise}_check", assignment, assignment, "wrong")  # notebook = assignment
        assert grade.score == 0
    shutil.rmtree(course / "autograded")
