"""companion.core.stats: the t-interval and the paired difference agree with scipy, and the wording follows the interval."""
import math

import numpy as np
import pytest
from scipy import stats

from companion.core.stats import compare, mean_ci, paired_difference


def test_mean_ci_is_scipys_t_interval():
    x = [0.61, 0.58, 0.64, 0.60, 0.57]
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    got = mean_ci(x)
    assert got.mean == pytest.approx(np.mean(x)) and (got.low, got.high) == pytest.approx((low, high))
    assert math.isinf(mean_ci([0.5]).half_width)  # one value: no interval


def test_paired_difference_matches_the_paired_t_test():
    a, b = [0.61, 0.58, 0.64, 0.60, 0.57], [0.55, 0.56, 0.60, 0.58, 0.50]
    d = paired_difference(a, b)
    p = stats.ttest_rel(a, b).pvalue
    assert d.excludes_zero() == (p < 0.05) and d.mean == pytest.approx(np.mean(np.subtract(a, b)))
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference(a, b[:3])


def test_compare_names_a_winner_only_when_the_interval_excludes_zero():
    clear = paired_difference([0.7, 0.71, 0.69, 0.72, 0.70], [0.6, 0.62, 0.6, 0.61, 0.6])
    noisy = paired_difference([0.7, 0.6, 0.72, 0.58, 0.66], [0.65, 0.66, 0.64, 0.63, 0.65])
    assert compare("A", "B", clear).startswith("A beats B")
    assert "tied within noise" in compare("A", "B", noisy)
    assert compare("A", "B", clear, "seconds", higher_is_better=False).startswith("B beats A")
