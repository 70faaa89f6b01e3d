"""Learning rates chosen on validation: candidate grids, the choice of the best rate, the rate search's table."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import pandas as pd

from .errors import CourseError


def choose_rates(search: pd.DataFrame) -> pd.DataFrame:
    """From a rate search's runs (report.csv rows: strategy, lr, val_macro_f1), every candidate with its validation
    score and `chosen` = the best rate per strategy; a strategy whose candidates tie keeps the smallest rate."""
    ok = search[search["status"] == "ok"] if "status" in search else search
    if ok.empty or "val_macro_f1" not in ok:
        raise CourseError("the rate search has no finished runs with val_macro_f1: run sweeps/rates.yaml first")
    if "test_scored" in ok and ok["test_scored"].astype(str).str.lower().eq("true").any():
        raise CourseError("a rate-search run scored the test split: run the search with test=False")
    table = (ok.groupby(["strategy", "lr"], as_index=False)["val_macro_f1"].mean()
             .sort_values(["strategy", "lr"]).reset_index(drop=True))
    best = table.sort_values(["val_macro_f1", "lr"], ascending=[False, True]).groupby("strategy").head(1).index
    table["chosen"] = table.index.isin(best)
    runs = ok.groupby("strategy").size()
    if runs.nunique() > 1:
        raise CourseError(f"unequal search budgets (runs per strategy: {runs.to_dict()}): give each the same grid")
    return table


def rate_grid(centre: float, n: int, factor: float = 3.0) -> list[float]:
    """`n` learning rates spaced by `factor` (geometrically) around `centre`, smallest first."""
    if n < 1 or centre <= 0 or factor <= 1:
        raise ValueError(f"rate_grid needs n >= 1, centre > 0 and factor > 1, got {n}, {centre}, {factor}")
    return [float(centre * factor ** (i - (n - 1) / 2)) for i in range(n)]


def choose_rate(train: Callable[[float, int], dict[str, Any]], rates: Sequence[float], seed: int
                ) -> tuple[float, dict[str, Any], list[dict[str, float]]]:
    """Train once per rate at `seed`, keep the best validation macro-F1 (ties: the first, smallest rate).

    `train(lr, seed)` returns a run with "val_macro_f1"; returns (rate, its run, one record per rate)."""
    runs = [(lr, train(lr, seed)) for lr in rates]
    records = [{"lr": lr, "val_macro_f1": float(run["val_macro_f1"])} for lr, run in runs]
    best = max(range(len(runs)), key=lambda i: (records[i]["val_macro_f1"], -i))
    return runs[best][0], runs[best][1], records


def runs_over_seeds(train: Callable[[float, int], dict[str, Any]], rates: Sequence[float], seeds: Sequence[int]
                    ) -> dict[str, Any]:
    """Choose the rate on validation at the first seed, then train at the other seeds with it.

    Returns the chosen rate, the search records and the runs of every seed (the search's run for the first)."""
    lr, first, search = choose_rate(train, rates, seeds[0])
    return {"lr": lr, "search": search, "runs": [first] + [train(lr, s) for s in seeds[1:]]}
