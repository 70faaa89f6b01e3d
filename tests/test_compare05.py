"""Notebook 05's reading of an adaptation with a control: per-sequence tables, paired intervals and the attribution
(domain-specific or generic) on hand-made losses whose answer is known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from companion.core.errors import CourseError
from companion.core.stats import paired_difference
from companion.lessons.n05_compare import attribution, attribution_lines, interval, loss_table, paired_table

RNG = np.random.default_rng(0)
BASE = {"domain": 4 + RNG.normal(0, 0.5, 40), "general": 3.5 + RNG.normal(0, 0.5, 40)}
NOISE = lambda: RNG.normal(0, 0.02, 40)  # noqa: E731
PAIRS = [("adapted", "base"), ("control", "base"), ("adapted", "control")]


def losses(adapted: dict[str, float], control: dict[str, float]) -> dict:
    """Per-sequence losses: each model is the base plus a shift per set and a little noise per sequence."""
    return {"base": BASE, "adapted": {k: v + adapted[k] + NOISE() for k, v in BASE.items()},
            "control": {k: v + control[k] + NOISE() for k, v in BASE.items()}}


def test_tables_are_means_and_paired_differences():
    data = losses({"domain": -0.3, "general": -0.1}, {"domain": -0.1, "general": -0.2})
    table = loss_table(data)
    assert table.loc[("base", "domain"), "loss"] == pytest.approx(BASE["domain"].mean())
    assert table.loc[("base", "domain"), "perplexity"] == pytest.approx(math.exp(BASE["domain"].mean()))
    pairs = paired_table(data, PAIRS)
    expected = paired_difference(data["adapted"]["general"], data["control"]["general"])
    got = interval(pairs, "adapted", "control", "general")
    assert (got.mean, got.low, got.high, got.n) == pytest.approx((expected.mean, expected.low, expected.high, 40))
    with pytest.raises(CourseError, match="no paired difference"):
        interval(pairs, "replay", "base", "domain")


def test_a_domain_specific_fall_beyond_a_generic_one():
    found = attribution(paired_table(losses({"domain": -0.3, "general": -0.1}, {"domain": -0.1, "general": -0.2}),
                                     PAIRS))
    assert found["domain_specific"] and found["generic_part"] and found["verdict"].startswith("both")
    assert found["generic_share"] == pytest.approx(1 / 3, abs=0.03)
    assert found["general_fell"] and not found["general_fell_as_much_as_control"]  # general training did more
    lines = attribution_lines(found, {"domain": "medical", "a": "adapted", "c": "control", "b": "before"})
    assert len(lines) == 4 and "a domain-specific part" in lines[0] and lines[-1].startswith("verdict: both")
    assert "33% of the fall" in lines[1] and "less than under general training" in lines[2]


def test_a_fall_that_general_training_gives_as_well_is_generic():
    found = attribution(paired_table(losses({"domain": -0.2, "general": -0.2}, {"domain": -0.2, "general": -0.2}),
                                     PAIRS))
    assert not found["domain_specific"] and found["generic_part"] and found["verdict"].startswith("generic")
    assert found["general_fell_as_much_as_control"]
    lines = attribution_lines(found, {"domain": "medical", "a": "adapted", "c": "control", "b": "before"})
    assert "tied within noise" in lines[0] and "as much as under general training" in lines[2]
    assert "generic (a generic effect)" in lines[2]


def test_forgetting_is_named():
    found = attribution(paired_table(losses({"domain": -0.3, "general": 0.2}, {"domain": 0.0, "general": -0.3}),
                                     PAIRS))
    assert found["verdict"].startswith("domain-specific") and not found["general_fell"]
    lines = attribution_lines(found, {"domain": "medical", "a": "adapted", "c": "control", "b": "before"})
    assert "forgetting" in lines[2]
