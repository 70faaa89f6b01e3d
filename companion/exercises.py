"""Automatic exercise checks: each check tells the learner right / not yet, with a hint, and returns a bool.

Topic modules register their checks with `@exercise("01", "perplexity")`; `python -m companion check 01`
lists and runs what a notebook registered (the notebooks call the same functions inline).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

REGISTRY: dict[str, dict[str, Callable[..., Verdict]]] = {}


def exercise(notebook: str, name: str) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Decorator: register a check function under a notebook number and an exercise name."""
    def wrap(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        REGISTRY.setdefault(notebook, {})[name] = fn
        return fn
    return wrap


class Verdict:
    """The outcome of a check: truthy when correct; printed once, so Jupyter shows no extra `True`/`False`."""

    def __init__(self, ok: bool, message: str) -> None:
        self.ok, self.message = bool(ok), message
        print(message)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """Already printed: show nothing more."""


def feedback(ok: bool, name: str, hint: str) -> Verdict:
    """Print a one-line verdict (✅ correct / ❌ not yet + hint) and return it."""
    return Verdict(ok, f"✅ {name}: correct" if ok else f"❌ {name}: not yet. Hint: {hint}")


def not_attempted(answer: Any, name: str) -> Verdict | None:
    """A falsy verdict with a friendly note when the learner has not filled in the answer yet, else None."""
    if answer is None or answer is Ellipsis:
        return Verdict(False, f"⏳ {name}: replace the `None` / `...` with your answer, then run the cell again")
    return None


def check_close(answer: Any, expected: Any, name: str, hint: str, atol: float = 1e-4, rtol: float = 1e-4) -> Verdict:
    """Check a number / array answer against the expected value within tolerances."""
    pending = not_attempted(answer, name)
    if pending is not None:
        return pending
    try:
        a = np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer, dtype=float)
        e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected, dtype=float)
        ok = a.shape == e.shape and bool(np.allclose(a, e, atol=atol, rtol=rtol))
    except (TypeError, ValueError):
        ok = False
    return feedback(ok, name, hint)


def check_equal(answer: Any, expected: Any, name: str, hint: str) -> Verdict:
    """Check an exact answer (a label, a count, a list)."""
    pending = not_attempted(answer, name)
    if pending is not None:
        return pending
    return feedback(answer == expected, name, hint)


def checks_for(notebook: str) -> dict[str, Callable[..., Verdict]]:
    """The registered checks of one notebook ('01' or '01_probability'), importing the topic modules first."""
    import importlib
    import pkgutil

    import companion

    for mod in pkgutil.iter_modules(companion.__path__):
        if mod.name not in ("__main__", "cli"):
            importlib.import_module(f"companion.{mod.name}")
    return REGISTRY.get(notebook.split("_")[0], {})
