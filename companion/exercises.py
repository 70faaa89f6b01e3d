"""Automatic exercise checks: each check tells the learner right / not yet, with a hint, and returns a bool.

Topic modules register their checks with `@exercise("01", "perplexity")`; `python -m companion check 01`
lists and runs what a notebook registered (the notebooks call the same functions inline).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

REGISTRY: dict[str, dict[str, Callable[..., bool]]] = {}


def exercise(notebook: str, name: str) -> Callable[[Callable[..., bool]], Callable[..., bool]]:
    """Decorator: register a check function under a notebook number and an exercise name."""
    def wrap(fn: Callable[..., bool]) -> Callable[..., bool]:
        REGISTRY.setdefault(notebook, {})[name] = fn
        return fn
    return wrap


def feedback(ok: bool, name: str, hint: str) -> bool:
    """Print a one-line verdict (✅ correct / ❌ not yet + hint) and return `ok`."""
    print(f"✅ {name}: correct" if ok else f"❌ {name}: not yet. Hint: {hint}")
    return ok


def not_attempted(answer: Any, name: str) -> bool:
    """True (and a friendly note) when the learner has not filled in the answer yet."""
    if answer is None or answer is Ellipsis:
        print(f"⏳ {name}: replace the `None` / `...` with your answer, then run the cell again")
        return True
    return False


def check_close(answer: Any, expected: Any, name: str, hint: str, atol: float = 1e-4, rtol: float = 1e-4) -> bool:
    """Check a number / array answer against the expected value within tolerances."""
    if not_attempted(answer, name):
        return False
    try:
        a = np.asarray(answer.detach().cpu() if hasattr(answer, "detach") else answer, dtype=float)
        e = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected, dtype=float)
        ok = a.shape == e.shape and bool(np.allclose(a, e, atol=atol, rtol=rtol))
    except (TypeError, ValueError):
        ok = False
    return feedback(ok, name, hint)


def check_equal(answer: Any, expected: Any, name: str, hint: str) -> bool:
    """Check an exact answer (a label, a count, a list)."""
    if not_attempted(answer, name):
        return False
    return feedback(answer == expected, name, hint)


def checks_for(notebook: str) -> dict[str, Callable[..., bool]]:
    """The registered checks of one notebook ('01' or '01_probability'), importing the topic modules first."""
    import importlib
    import pkgutil

    import companion

    for mod in pkgutil.iter_modules(companion.__path__):
        if mod.name not in ("__main__", "cli"):
            importlib.import_module(f"companion.{mod.name}")
    return REGISTRY.get(notebook.split("_")[0], {})
