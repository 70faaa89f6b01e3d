"""One clear error type for bad input, shown as a single message (no long traceback) in notebooks."""
from __future__ import annotations

from typing import Any, Iterable


class CourseError(Exception):
    """Bad input the learner can fix: the message says what went wrong and how to fix it."""


def shown(values: Iterable[Any], first: int = 5) -> str:
    """The first few values (repr) and how many there are in all, so that a message stays one readable line."""
    items = list(values)
    head = ", ".join(repr(v) for v in items[:first])
    return head if len(items) <= first else f"{head}, … ({len(items)} in all)"


def _show_short(shell, etype, value, tb, tb_offset=None):  # noqa: ANN001 - IPython handler signature
    """IPython custom-exception handler: print only 'CourseError: message'."""
    shell._showtraceback(etype, value, [f"{etype.__name__}: {value}"])


def install_notebook_handler() -> bool:
    """In IPython/Jupyter, show CourseError as one line; return True if installed."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.set_custom_exc((CourseError,), _show_short)
    return True
