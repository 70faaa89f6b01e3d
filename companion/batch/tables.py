"""Tables a reader can read: counts as integers with thousands separators, numbers never in scientific notation."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd


def plain(value: Any, digits: int = 4) -> str:
    """A number for people: whole numbers and numbers from 1,000 up as 22,715,141; others to `digits` significant
    digits, positional (0.000032, never 3.2e-05); missing values as '–'."""
    v = float(value)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v.is_integer() or abs(v) >= min(1000, 10 ** digits):
        return f"{round(v):,}"
    return np.format_float_positional(v, precision=digits, unique=True, fractional=False, trim="-")


def readable(frame: pd.DataFrame, counts: Sequence[str] = (),
             decimals: Mapping[str, int] | None = None) -> pd.DataFrame:
    """A copy of `frame` for display: `counts` columns as whole numbers with thousands separators, `decimals`
    columns as fixed-point text with that many decimals; missing values left blank."""
    out = frame.copy()
    for col in counts:
        out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{round(float(v)):,}")
    for col, places in (decimals or {}).items():
        out[col] = out[col].map(lambda v, p=places: "" if pd.isna(v) else f"{round(float(v), p) or 0.0:,.{p}f}")
    return out
