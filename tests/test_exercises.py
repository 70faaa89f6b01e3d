"""Exercise checks say right / not yet with a hint, tell an unattempted answer apart, and return a Verdict that
the classroom tools read (name, status, message), recorded in the process's HISTORY."""
import pytest
import torch

from companion.checks import HISTORY, VERDICT_MIME, Verdict, check_close, check_equal, checks_for


def test_check_close_right_wrong_and_pending(capsys):
    assert check_close(0.5, torch.tensor(0.5), "demo", "hint")
    assert not check_close(0.6, 0.5, "demo", "divide by n")
    assert not check_close(None, 0.5, "demo", "hint")
    assert not check_close([1.0, 2.0], [1.0], "demo", "shape")
    out = capsys.readouterr().out
    assert "✅ demo: correct" in out and "Hint: divide by n" in out and "⏳ demo" in out


def test_check_equal():
    assert check_equal(3, 3, "n", "h") and not check_equal(4, 3, "n", "h")


def test_verdict_is_a_result_object_and_is_recorded():
    start = len(HISTORY)
    verdicts = [check_equal(3, 3, "n", "h"), check_equal(4, 3, "n", "more"), check_equal(None, 3, "n", "h")]
    assert [v.status for v in verdicts] == ["correct", "not_yet", "pending"]
    assert HISTORY[start:] == verdicts
    assert verdicts[1].to_json() == {"name": "n", "status": "not_yet", "message": "not yet. Hint: more"}
    assert verdicts[1].line == "❌ n: not yet. Hint: more" and repr(verdicts[0]) == "✅ n: correct"
    with pytest.raises(ValueError, match="status"):
        Verdict("n", "ok", "m")


def test_in_ipython_the_verdict_is_display_data_with_its_json(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, **kw: shown.append(data))
    try:
        check_equal(4, 3, "n", "h")
    finally:
        InteractiveShell.clear_instance()
    assert shown == [{"text/plain": "❌ n: not yet. Hint: h",
                      VERDICT_MIME: {"name": "n", "status": "not_yet", "message": "not yet. Hint: h"}}]


def test_notebook_00_registers_its_checks():
    assert {"majority_share", "head_params", "subword_count"} <= set(checks_for("00"))
