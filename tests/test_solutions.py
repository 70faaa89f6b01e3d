"""Exercise solutions: every stored solution cell passes its check, and a collapsed solution shows no answer.

The stored notebooks are read through the structured verdicts the checks emit (`VERDICT_MIME`); a notebook stored
before checks emitted them is read from the printed verdict lines instead.
"""
import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from companion.batch.classroom import is_solution, verdicts
from companion.checks import MARKS, checks_for
from companion.batch.runner import list_notebooks

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
NOTEBOOKS = list_notebooks()
STATUS = {mark: status for status, mark in MARKS.items()}
LINE = re.compile(r"^(✅|❌|⏳) ([^:\n]+):", re.M)


def solution_cells(path: Path) -> list:
    """The solution cells of a notebook source."""
    return [c for c in jupytext.read(path).cells if c.cell_type == "code" and is_solution(c)]


def stored_verdicts(cell) -> list[tuple[str, str]]:
    """(name, status) of each verdict in a stored cell's outputs: structured, else the printed lines."""
    found, _ = verdicts(nbformat.v4.new_notebook(cells=[cell]))
    if found:
        return [(f["name"], f["status"]) for f in found]
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
    return [(name.strip(), STATUS[mark]) for mark, name in LINE.findall(text)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_solution_cells_open_with_a_comment_and_print_nothing(path):
    cells = solution_cells(path)
    assert cells, "each notebook ends with exercises that have solution cells"
    for cell in cells:
        lines = cell.source.splitlines()
        assert lines[0].startswith("#"), f"collapsed, this first line shows: {lines[0]!r}"
        described = [x for x in lines if not x.startswith("# NBVAL_")][0]
        assert described.startswith("#"), f"start with a comment that describes the approach: {described!r}"
        calls = [n.func.id for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Name)]
        assert not {"print", "display"} & set(calls), f"a solution prints only its check's verdict:\n{cell.source}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_stored_solution_cell_passes_its_check(path):
    nb = nbformat.read(path, as_version=4)
    solved = set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not is_solution(cell):
            continue
        found = stored_verdicts(cell)
        assert found, f"cell {index}: a solution cell shows its check's verdict"
        wrong = [(name, status) for name, status in found if status != "correct"]
        assert not wrong, f"cell {index}: the solution does not pass its check: {wrong}"
        others = [o for o in cell.outputs if o.get("output_type") != "stream" and "data" not in o
                  or o.get("name") == "stderr"]
        assert not others, f"cell {index}: a solution cell shows only its verdict, not {others}"
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
        assert all(LINE.match(x) for x in text.splitlines()), f"cell {index} prints more than its verdict:\n{text}"
        solved |= {name for name, _ in found}
    missing = set(checks_for(path.stem)) - solved
    assert not missing, f"registered checks with no passing solution in the stored notebook: {sorted(missing)}"


# Issue 25: in notebooks 00–04, each predict-then-measure solution derives its prediction without the measurement
# (these names hold the measurement; only the check call may read them), and 01–08 each have an exercise
# where the learner writes the mechanism as a function that the check runs on fresh inputs.
MEASURED = {"00": {"similarity"}, "01": {"reversal", "measured_ratio"},
            "02": {"text_ppl", "measured_order", "shuffles"}, "03": {"variance"}, "04": {"ppl", "gap", "blocks", "scored"}}
MECHANISMS = {"01": "check_log_prob_function", "02": "check_masked_ce_function",
              "03": "check_causal_attention_function", "04": "check_tokens_per_word_function",
              "05": "check_whole_word_function",
              "06": "check_weighted_ce_function", "07": "check_freeze_lowest_function",
              "08": "check_lora_forward_function"}


def _source(number: str) -> Path:
    return next(p for p in SOURCES if p.stem.startswith(f"{number}_"))


@pytest.mark.parametrize("number", sorted(MEASURED))
def test_predictions_are_derived_not_read_from_the_measurement(number):
    derived = 0
    for cell in solution_cells(_source(number)):
        tree = ast.parse(cell.source)
        targets = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
                   if isinstance(t, ast.Name)}
        if not any(name.endswith("_prediction") for name in targets):
            continue
        derived += 1
        body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call))]
        read = {n.id for node in body for n in ast.walk(node) if isinstance(n, ast.Name)}
        assert not read & MEASURED[number], f"{number}: the prediction reads the measurement {read & MEASURED[number]}"
    assert derived >= 1


@pytest.mark.parametrize("number", sorted(MECHANISMS))
def test_a_mechanism_exercise_has_a_function_to_write(number):
    check = MECHANISMS[number]
    cells = [c for c in jupytext.read(_source(number)).cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(cells) if is_solution(c) and check in c.source)
    learner, solution = cells[index - 1], cells[index]
    own = [n for n in ast.parse(learner.source).body if isinstance(n, ast.FunctionDef)]
    solved = [n for n in ast.parse(solution.source).body if isinstance(n, ast.FunctionDef)]
    assert own and solved and own[0].name == solved[0].name, "the learner completes the function the solution defines"
    assert isinstance(own[0].body[-1], ast.Return) and ast.literal_eval(own[0].body[-1].value) is None
    assert sum(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in own[0].body) == 1  # docstring
    assert "#" in learner.source.split(f"def {own[0].name}(")[1], "the learner's function carries hints"
    assert check in learner.source and set(checks_for(number)) >= {check.removeprefix("check_")}
