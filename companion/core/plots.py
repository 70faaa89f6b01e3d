"""Plot helpers the notebooks share: log axes a reader can read (plain numbers, no overprinted minor labels)."""
from __future__ import annotations

from typing import Any, Sequence

from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter


def plain_number(value: float, _pos: Any = None) -> str:
    """A tick label without scientific notation: 20, 1,000, 0.5."""
    return f"{value:,.0f}" if abs(value) >= 1 else f"{value:g}"


def plain_log_axis(ax: Any, axis: str = "x", ticks: Sequence[float] | None = None) -> Any:
    """Log-scale one axis, labelled with plain numbers at `ticks` (default 1-2-5 steps), minor ticks unlabelled."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', not {axis!r}")
    getattr(ax, f"set_{axis}scale")("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(list(ticks)) if ticks is not None else LogLocator(10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(plain_number))
    target.set_minor_formatter(NullFormatter())
    return ax


def span_ticks(values: Sequence[float], count: int = 5) -> list[float]:
    """About `count` log-spaced tick values across the range of `values`, rounded to two significant digits."""

    low, high = min(values), max(values)
    if not 0 < low < high:
        return [low] if low > 0 else []
    ticks = [low * (high / low) ** (i / (count - 1)) for i in range(count)]
    return sorted({float(f"{t:.2g}") for t in ticks})
