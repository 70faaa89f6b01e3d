"""Issue 23, behind the front door: training stops at the first non-finite loss; `check` bounds every cell's time and
reports a student's endless loop as that exercise's verdict, finds a renamed copy's checks by the notebook's own
metadata and names the cell of an error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch
from torch import nn

from companion import CourseError
from companion.batch.classroom import check, registered
from companion.batch.runner import find_notebook
from companion.engine.training import TrainConfig, train

TINY = (Path(__file__).parent / "assets" / "tiny.ipynb").resolve()


class Square(nn.Module):
    """loss = (w·x)²: finite at the start, infinite once a huge rate has thrown w far out."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, input_ids, attention_mask, labels):  # noqa: ANN001, ANN201 - the loop's batch keys
        """A classifier's output: loss and logits."""
        value = self.w * input_ids.float().mean()
        return SimpleNamespace(loss=(value ** 2).sum(), logits=torch.stack([value, -value], -1).expand(len(labels), 2))


def _batch(items: list[dict]) -> dict:
    """Collate: stack the examples' tensors."""
    return {k: torch.stack([torch.as_tensor(item[k]) for item in items]) for k in items[0]}


def test_training_stops_at_the_first_non_finite_loss_naming_the_step_and_the_rate():
    """`-p lr 1e999` trained on a NaN loss, printed a macro-F1 and died later in scikit-learn."""
    data = [{"input_ids": [1, 1], "attention_mask": [1, 1], "labels": 0} for _ in range(8)]
    config = TrainConfig(epochs=2, batch_size=1, lr=1e38, warmup_steps=0, progress=False, max_grad_norm=0)
    expected = r"the loss is inf at step 2 \(learning rate 9.37e\+37 at that step, peak 1e\+38\)"
    with pytest.raises(CourseError, match=expected):
        train(Square(), data, data[:2], _batch, config)
    result = train(Square(), data, data[:2], _batch, TrainConfig(epochs=1, batch_size=2, lr=1e-3, progress=False))
    assert result.steps == 4  # a finite run is unchanged


def _tiny_copy(tmp_path: Path, name: str, student_cell: str) -> Path:
    """The tiny notebook with its learner's exercise cell replaced."""
    nb = json.loads(TINY.read_text())
    cell = next(c for c in nb["cells"] if "answer = None" in "".join(c["source"]))
    cell["source"] = student_cell
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return path


def test_check_stops_an_endless_loop_and_reports_it_as_that_exercises_verdict(tmp_path, capsys):
    """A student's `while True: pass` kept `check` running until it was killed (230 s)."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile: str = "auto"  # one of: auto, smoke, cpu, gpu',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('answer = None\nwhile True:\n    pass\n'
                                  'check_equal(answer, 42, "loop_answer", "6 × 7")')])
    nbformat.write(nb, tmp_path / "loop.ipynb")  # cells that take no time before the loop: any machine, any load
    assert check(str(tmp_path / "loop.ipynb"), timeout=2) == 1
    out = capsys.readouterr().out
    assert "cell   1 ❌ loop_answer: not yet: the cell ran longer than 2 s and was stopped" in out
    assert "0 of 1 exercise(s) correct: ❌ loop_answer (not_yet)" in out


def test_a_syntax_error_is_reported_with_its_cell(tmp_path, capsys):
    path = _tiny_copy(tmp_path, "typo.ipynb", 'answer = 6 *\ncheck_equal(answer, 42, "tiny_answer", "6 × 7")')
    assert check(str(path)) == 1
    assert "stopped on an error: cell 4: SyntaxError: invalid syntax (line 1 of the cell)" in capsys.readouterr().out


def test_check_on_a_renamed_copy_finds_the_checks_by_the_notebooks_metadata(tmp_path):
    """`check my_copy.ipynb` found "0 registered checks": they were looked up by the file name."""
    copy = tmp_path / "my_copy.ipynb"
    shutil.copy(find_notebook("02"), copy)
    assert registered(copy) == registered(find_notebook("02")) != {}
    from companion.batch.notebooks import course_number

    assert course_number(copy) == "02"
    nb = nbformat.read(copy, as_version=4)
    del nb.metadata["companion"]  # an older build: the notebook's own check_values("02", …) call still says it
    nbformat.write(nb, copy)
    assert course_number(copy) == "02"
    assert course_number(TINY) == "tiny"


def test_built_notebooks_carry_their_course_number(tmp_path, script):
    tool = script("tools/build_notebooks.py")
    src = tmp_path / "04_topic.py"
    src.write_text('# %%\nprint("hi")\n')
    assert nbformat.read(tool.convert(src), as_version=4).metadata["companion"] == {"notebook": "04"}
    for path in sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert nbformat.read(path, as_version=4).metadata["companion"] == {"notebook": path.stem[:2]}, path.name
