"""Learning rates chosen on validation: one rule for the best rate, grids that bracket it, and the rate search's
table (`companion rates`). The same rule serves a search run by a sweep and one run inside a notebook.

The rule: start from a few rates spaced by a constant factor around a strategy's default; keep the best validation
macro-F1 (a tie keeps the smaller rate); while the best is the smallest or the largest rate tried, add the next rate
beyond it, up to a stated number of extensions on each side. A rate whose search hit that cap is reported as such.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import pandas as pd

from .errors import CourseError

POSITIONS = ("interior", "lowest tried", "highest tried")


def setting_name(strategy: str, k: Any = None, adapted: Any = False) -> str:
    """A run's setting label: the strategy, `freeze k=4` for frozen layers, `adapted + full` for the adapted encoder."""
    if str(adapted).lower() in ("true", "1", "yes"):
        return f"adapted + {strategy}"
    if strategy == "freeze" and k is not None and k == k:  # k == k: not NaN (a CSV's empty cell)
        return f"freeze k={int(k)}"
    return strategy


def rate_grid(centre: float, n: int, factor: float = 3.0) -> list[float]:
    """`n` learning rates spaced by `factor` (geometrically) around `centre`, smallest first."""
    if n < 1 or centre <= 0 or factor <= 1:
        raise ValueError(f"rate_grid needs n >= 1, centre > 0 and factor > 1, got {n}, {centre}, {factor}")
    return [float(centre * factor ** (i - (n - 1) / 2)) for i in range(n)]


def best_rate(records: pd.DataFrame, score: str = "val_macro_f1") -> float:
    """The rate with the highest score (columns lr and `score`; the mean over repeats); ties: the smaller rate."""
    table = records.groupby("lr", as_index=False)[score].mean()
    return float(table.sort_values([score, "lr"], ascending=[False, True])["lr"].iloc[0])


def position(records: pd.DataFrame, score: str = "val_macro_f1") -> str:
    """Where the best rate lies among those tried: interior, lowest tried or highest tried."""
    best, rates = best_rate(records, score), sorted(set(records["lr"]))
    if len(rates) > 1 and math.isclose(best, rates[0]):
        return "lowest tried"
    if len(rates) > 1 and math.isclose(best, rates[-1]):
        return "highest tried"
    return "interior"


def next_rate(records: pd.DataFrame, start: Sequence[float], factor: float = 3.0, extensions: int = 3,
              score: str = "val_macro_f1") -> float | None:
    """The next rate to try: one `factor` beyond the best when the best is at an edge of the rates tried and fewer
    than `extensions` rates beyond the `start` grid lie on that side; None when the best is bracketed or capped."""
    where, rates = position(records, score), sorted(set(records["lr"]))
    if where == "lowest tried":
        used = sum(lr < min(start) * (1 - 1e-9) for lr in rates)
        return None if used >= extensions else float(rates[0] / factor)
    if where == "highest tried":
        used = sum(lr > max(start) * (1 + 1e-9) for lr in rates)
        return None if used >= extensions else float(rates[-1] * factor)
    return None


def search_rate(train: Callable[[float], float], centre: float, factor: float = 3.0, candidates: int = 3,
                extensions: int = 3) -> pd.DataFrame:
    """Run a rate search in this process: `train(lr)` returns a validation score, higher is better (a macro-F1, or
    minus a loss). Starts from `candidates` rates around `centre`, extends while the best is at an edge (up to
    `extensions` per side); every rate tried (lr, score), with `chosen` and the best rate's `position`."""
    start = rate_grid(centre, candidates, factor)
    records = pd.DataFrame([{"lr": lr, "score": float(train(lr))} for lr in start])
    while (lr := next_rate(records, start, factor, extensions, "score")) is not None:
        records = pd.concat([records, pd.DataFrame([{"lr": lr, "score": float(train(lr))}])], ignore_index=True)
    return mark_chosen(records.sort_values("lr").reset_index(drop=True), "score")


def mark_chosen(records: pd.DataFrame, score: str = "val_macro_f1") -> pd.DataFrame:
    """Add `chosen` (the best rate by the one rule) and `position` (where it lies) to one setting's candidates."""
    best = best_rate(records, score)
    return records.assign(chosen=[math.isclose(lr, best) for lr in records["lr"]], position=position(records, score))


def choose_rates(search: pd.DataFrame) -> pd.DataFrame:
    """From a rate search's runs (report.csv rows: setting or strategy, lr, val_macro_f1), every candidate of every
    setting with its validation score, `chosen` and the chosen rate's `position`; refuses runs that scored test."""
    ok = search[search["status"] == "ok"] if "status" in search else search
    if ok.empty or "val_macro_f1" not in ok:
        raise CourseError("the rate search has no finished runs with val_macro_f1: run `companion rates search` first")
    if "test_scored" in ok and ok["test_scored"].astype(str).str.lower().eq("true").any():
        raise CourseError("a rate-search run scored the test split: run the search with test=False")
    key = "setting" if "setting" in ok else "strategy"
    table = (ok.groupby([key, "lr"], as_index=False)["val_macro_f1"].mean()
             .sort_values([key, "lr"]).reset_index(drop=True))
    return pd.concat([mark_chosen(group) for _, group in table.groupby(key, sort=True)], ignore_index=True) \
        .rename(columns={key: "setting"})


def chosen_rate(rates: pd.DataFrame, setting: str) -> float | None:
    """The chosen rate of one setting in a rate table (choose_rates' output), or None when it has none."""
    key = "setting" if "setting" in rates else "strategy"
    rows = rates[(rates[key] == setting) & rates["chosen"].astype(str).str.lower().eq("true")]
    return float(rows["lr"].iloc[0]) if len(rows) else None


def runs_over_seeds(train: Callable[[float, int], dict[str, Any]], rates: Sequence[float], seeds: Sequence[int]
                    ) -> dict[str, Any]:
    """Choose the rate on validation at the first seed, then train at the other seeds with it (a small in-notebook
    comparison; the course's comparisons use a selection seed that is not compared: `search_rate`)."""
    first = {lr: train(lr, seeds[0]) for lr in rates}
    records = pd.DataFrame([{"lr": lr, "val_macro_f1": float(run["val_macro_f1"])} for lr, run in first.items()])
    lr = best_rate(records)
    return {"lr": lr, "search": records.to_dict("records"),
            "runs": [first[lr]] + [train(lr, s) for s in seeds[1:]]}
