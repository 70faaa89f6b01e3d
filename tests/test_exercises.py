"""Exercise checks say right / not yet with a hint, and tell an unattempted answer apart."""
import torch

from companion.exercises import check_close, check_equal, checks_for


def test_check_close_right_wrong_and_pending(capsys):
    assert check_close(0.5, torch.tensor(0.5), "demo", "hint")
    assert not check_close(0.6, 0.5, "demo", "divide by n")
    assert not check_close(None, 0.5, "demo", "hint")
    assert not check_close([1.0, 2.0], [1.0], "demo", "shape")
    out = capsys.readouterr().out
    assert "✅ demo: correct" in out and "Hint: divide by n" in out and "⏳ demo" in out


def test_check_equal():
    assert check_equal(3, 3, "n", "h") and not check_equal(4, 3, "n", "h")


def test_notebook_00_registers_its_checks():
    assert {"majority_share", "head_params", "subword_count"} <= set(checks_for("00"))
