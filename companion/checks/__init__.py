"""Automatic exercise checks: each check tells the learner right / not yet, with a hint, and returns a `Verdict`.

One module per notebook, `companion.checks.nNN`, registers that notebook's checks with `@exercise("NN", "name")`;
`python -m companion check NN` runs the notebook and lists what it registered (the notebooks call the same
functions inline). This package's own module holds the machinery: the registry, `Verdict` and the comparisons. A verdict shows one
human line and, in Jupyter, travels in the same output as JSON under `VERDICT_MIME`, which the classroom tools
read; in a plain Python process it is printed. Every verdict of the process is kept in `HISTORY`.
"""
from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

VERDICT_MIME = "application/vnd.companion.verdict+json"
STATUSES = ("correct", "not_yet", "pending")
MARKS = {"correct": "✅", "not_yet": "❌", "pending": "⏳"}
REGISTRY: dict[str, dict[str, Callable[..., "Verdict"]]] = {}
HISTORY: list["Verdict"] = []


def exercise(notebook: str, name: str) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Decorator: register a check function under a notebook number and an exercise name."""
    def wrap(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        REGISTRY.setdefault(notebook, {})[name] = fn
        return fn
    return wrap


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: exercise name, status ('correct' / 'not_yet' / 'pending') and message.

    Truthy only when correct. `emit()` records it and shows it once, so Jupyter shows no extra `True`/`False`.
    """

    name: str
    status: str
    message: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")

    def __bool__(self) -> bool:
        return self.status == "correct"

    @property
    def line(self) -> str:
        """The learner's line: '✅ name: correct', '❌ name: not yet. Hint: …' or '⏳ name: …'."""
        return f"{MARKS[self.status]} {self.name}: {self.message}"

    def to_json(self) -> dict[str, str]:
        """The structured form the classroom tools read."""
        return asdict(self)

    def emit(self) -> Verdict:
        """Record the verdict in HISTORY and show it (display data in IPython, a printed line elsewhere)."""
        HISTORY.append(self)
        shell = _ipython()
        if shell is None:
            print(self.line, flush=True)
        else:
            from IPython.display import display

            display({"text/plain": self.line, VERDICT_MIME: self.to_json()}, raw=True)
        return self

    def __repr__(self) -> str:
        return self.line

    def _ipython_display_(self) -> None:
        """Already shown by emit(): show nothing more when a cell ends with a check."""


def _ipython() -> Any:
    """The running IPython shell, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def feedback(ok: bool, name: str, hint: str) -> Verdict:
    """Emit and return a correct / not-yet verdict (with the hint when not yet)."""
    if ok:
        return Verdict(name, "correct", "correct").emit()
    return Verdict(name, "not_yet", f"not yet. Hint: {hint}").emit()


def not_attempted(answer: Any, name: str) -> Verdict | None:
    """A pending verdict with a friendly note when the learner has not filled in the answer yet, else None."""
    if answer is None or answer is Ellipsis:
        return Verdict(name, "pending", "replace the `None` / `...` with your answer, then run the cell again").emit()
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


def check_prediction(prediction: Any, measured: Any, name: str, explanation: str, rtol: float = 0.25) -> Verdict:
    """A predict-then-measure check: the learner's prediction (a number, within `rtol` of the measured value, or an
    exact answer such as an ordering) against what the experiment measured; the message always explains the gap."""
    pending = not_attempted(prediction, name)
    if pending is not None:
        return pending
    if isinstance(measured, (int, float)) and not isinstance(measured, bool):
        try:
            ok = abs(float(prediction) - measured) <= rtol * abs(measured)
        except (TypeError, ValueError):
            ok = False
        shown = f"{measured:.3g}"
    else:
        ok, shown = prediction == measured, repr(measured)
    head = "your prediction holds" if ok else "not what was measured"
    return Verdict(name, "correct" if ok else "not_yet",
                   f"{head} (you said {prediction!r}, the run measured {shown}). {explanation}").emit()


def checks_for(notebook: str) -> dict[str, Callable[..., "Verdict"]]:
    """The registered checks of one notebook ('01', '01_probability' or a notebook's id from its metadata): imports
    that notebook's checks module, `companion.checks.nNN`, which registers them."""
    number = str(notebook).split("_")[0]
    try:
        importlib.import_module(f"{__name__}.n{number}")
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.n{number}":
            raise
    return REGISTRY.get(number, {})
