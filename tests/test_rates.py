"""One rule for learning rates, everywhere: the best validation score (ties: the smaller rate), and grids extended
until the best rate is inside them or a stated cap is hit."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from companion.core.errors import CourseError
from companion.core.rates import (best_rate, choose_rates, chosen_rate, next_rate, position, rate_grid,
                                  runs_over_seeds, search_rate, setting_name)


def test_rate_grid_is_geometric_around_the_centre():
    assert rate_grid(1e-2, 3) == pytest.approx([1e-2 / 3, 1e-2, 3e-2])
    two = rate_grid(1e-2, 2)
    assert two[1] / two[0] == pytest.approx(3.0) and two[0] * two[1] == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        rate_grid(1e-2, 0)


def table(scores: dict[float, float]) -> pd.DataFrame:
    return pd.DataFrame({"lr": list(scores), "val_macro_f1": list(scores.values())})


def test_the_best_rate_and_where_it_lies():
    assert best_rate(table({1e-3: 0.5, 1e-2: 0.7, 1e-1: 0.6})) == 1e-2
    assert best_rate(table({1e-3: 0.5, 1e-2: 0.5})) == 1e-3  # a tie keeps the smaller rate
    assert position(table({1e-3: 0.5, 1e-2: 0.7, 1e-1: 0.6})) == "interior"
    assert position(table({1e-3: 0.8, 1e-2: 0.7, 1e-1: 0.6})) == "lowest tried"
    assert position(table({1e-3: 0.5, 1e-2: 0.7, 1e-1: 0.9})) == "highest tried"


def test_an_edge_extends_the_grid_until_the_cap():
    start = rate_grid(1e-2, 3)
    assert next_rate(table(dict(zip(start, [0.5, 0.7, 0.6]))), start) is None  # bracketed
    up = next_rate(table(dict(zip(start, [0.5, 0.6, 0.7]))), start)
    assert up == pytest.approx(9e-2)
    down = next_rate(table(dict(zip(start, [0.9, 0.6, 0.5]))), start)
    assert down == pytest.approx(1e-2 / 9)
    capped = dict(zip(start, [0.5, 0.6, 0.7])) | {9e-2: 0.8}
    assert next_rate(table(capped), start, extensions=1) is None  # one extension allowed: the cap is hit


def test_search_rate_brackets_a_peak_outside_the_start_grid():
    """A score that peaks at 0.3 (three factors of 3 above the centre 1e-2 · 3): the search walks up to it."""
    calls = []

    def score(lr: float) -> float:
        calls.append(lr)
        return -abs(math.log(lr / 0.3))

    found = search_rate(score, 1e-2, factor=3, candidates=3, extensions=3)
    chosen = found[found["chosen"]]
    assert float(chosen["lr"].iloc[0]) == pytest.approx(0.27) and chosen["position"].iloc[0] == "interior"
    assert len(calls) == 6 and calls == sorted(calls)  # 3 start rates, then 0.09, 0.27, and 0.81 shows 0.27 is a peak
    capped = search_rate(score, 1e-4, factor=3, candidates=3, extensions=1)
    assert capped["position"].iloc[0] == "highest tried" and len(capped) == 4


def test_choose_rates_per_setting_refuses_test_scoring():
    runs = pd.DataFrame({"setting": ["full"] * 3 + ["lora"] * 4, "lr": [1e-4, 2e-4, 6e-4, 1e-3, 3e-3, 9e-3, 2.7e-2],
                         "val_macro_f1": [0.5, 0.6, 0.55, 0.3, 0.4, 0.5, 0.45], "status": "ok", "test_scored": False})
    rates = choose_rates(runs)
    assert chosen_rate(rates, "full") == 2e-4 and chosen_rate(rates, "lora") == 9e-3
    assert set(rates["position"]) == {"interior"} and chosen_rate(rates, "prefix_tuning") is None
    with pytest.raises(CourseError, match="scored the test split"):
        choose_rates(runs.assign(test_scored=True))


def test_setting_names():
    assert setting_name("freeze", 4) == "freeze k=4" and setting_name("freeze", float("nan")) == "freeze"
    assert setting_name("full", None, True) == "adapted + full" and setting_name("lora") == "lora"


def test_runs_over_seeds_choose_once_then_reuse():
    calls = []

    def train(lr: float, seed: int) -> dict:
        calls.append((lr, seed))
        return {"val_macro_f1": -abs(lr - 1e-2), "seed": seed}

    out = runs_over_seeds(train, [1e-3, 1e-2, 1e-1], seeds=[5, 6])
    assert out["lr"] == 1e-2 and [r["seed"] for r in out["runs"]] == [5, 6]
    assert calls == [(1e-3, 5), (1e-2, 5), (1e-1, 5), (1e-2, 6)]
