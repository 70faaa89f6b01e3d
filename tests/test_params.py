"""Parameter validation: unknown names, wrong types and bad choices stop a run with one message listing the valid ones."""
from pathlib import Path

import pytest

from companion import CourseError
from companion.batch.cli import main
from companion.batch.params import check_parameters, coerce, declared_parameters

TINY = Path(__file__).parent / "assets" / "tiny.ipynb"


def test_declared_parameters_of_the_tiny_notebook():
    declared = declared_parameters(TINY)
    assert list(declared) == ["profile", "seed", "x", "fail", "sleep"]
    assert declared["profile"]["choices"] == ["auto", "smoke", "cpu", "gpu"]
    assert declared["x"]["type"] == "float" and declared["fail"]["type"] == "bool"


def test_valid_parameters_pass_unchanged():
    params = {"profile": "smoke", "seed": 3, "x": 2, "fail": False}  # an int is a valid float
    assert check_parameters(TINY, params) == params


def test_unknown_name_lists_the_valid_parameters():
    with pytest.raises(CourseError, match="unknown parameter 'learning_rate'") as err:
        check_parameters(TINY, {"learning_rate": 0.1})
    message = str(err.value)
    assert "Valid parameters:" in message
    for name in ("profile", "seed", "x", "fail", "sleep"):
        assert f"{name}:" in message


@pytest.mark.parametrize("name, value, expected", [
    ("x", "abc", "x='abc' is not of type float"),
    ("seed", 1.5, "seed=1.5 is not of type int"),
    ("seed", True, "seed=True is not of type int"),
    ("fail", 1, "fail=1 is not of type bool"),
])
def test_wrong_type(name, value, expected):
    with pytest.raises(CourseError, match="Valid parameters") as err:
        check_parameters(TINY, {name: value})
    assert expected in str(err.value)


def test_bad_choice_names_the_choices():
    with pytest.raises(CourseError) as err:
        check_parameters(TINY, {"profile": "fast"})
    assert "profile='fast' is not one of ['auto', 'smoke', 'cpu', 'gpu']" in str(err.value)


def test_every_problem_in_one_message():
    with pytest.raises(CourseError) as err:
        check_parameters(TINY, {"profile": "fast", "bogus": 1, "x": "y"})
    message = str(err.value)
    assert "profile='fast'" in message and "'bogus'" in message and "x='y'" in message


def test_coerce_command_line_values():
    assert coerce("3") == 3 and coerce("0.5") == 0.5 and coerce("1e-4") == 1e-4
    assert coerce("True") is True and coerce("None") is None and coerce("[1, 2]") == [1, 2]
    assert coerce("cpu") == "cpu" and coerce("'1'") == "1"


def test_cli_run_rejects_bad_parameters_before_running(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(TINY), "--out", str(out), "-p", "bogus", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tiny.ipynb: unknown parameter 'bogus'") and "Valid parameters" in err
    assert not out.exists()
