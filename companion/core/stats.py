"""Intervals for comparisons: mean ± 95 % t-interval over seeds (or sequences), paired differences, and wording.

A difference is called a difference only when its interval excludes 0; otherwise the words say "tied within noise".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided confidence interval over n observations."""
    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        """Half the interval's width (the ± of 'mean ± h')."""
        return (self.high - self.low) / 2

    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0."""
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.mean:+.3f} (95% CI {self.low:+.3f} to {self.high:+.3f}, n={self.n})"


def mean_ci(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean and Student-t interval of independent values (seeds, sequences); n = 1 gives an infinite interval."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        raise ValueError("mean_ci needs at least one value")
    mean = float(x.mean())
    if len(x) == 1:
        return Interval(mean, -math.inf, math.inf, 1)
    from scipy import stats as scipy_stats  # here: the command line's `report` imports this module, scipy is slow

    half = float(scipy_stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return Interval(mean, mean - half, mean + half, len(x))


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of a − b over matched pairs (same seed, same sequence) with its t-interval."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return mean_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), level)


def compare(name_a: str, name_b: str, difference: Interval, what: str = "macro-F1", higher_is_better: bool = True) -> str:
    """One sentence chosen by the interval: who is better and by how much, or 'tied within noise'."""
    if not difference.excludes_zero():
        return (f"{name_a} and {name_b} are tied within noise on {what}: difference {difference} includes 0")
    a_better = (difference.mean > 0) == higher_is_better
    winner, loser = (name_a, name_b) if a_better else (name_b, name_a)
    return f"{winner} beats {loser} on {what}: difference ({name_a} − {name_b}) {difference} excludes 0"


def equivalence(difference: Interval, margin: float) -> str:
    """better / worse when the interval excludes 0; equivalent when the whole interval lies within ±margin (a
    stated equivalence margin); else tied (the data cannot tell a difference from no difference)."""
    if difference.excludes_zero():
        return "better" if difference.mean > 0 else "worse"
    if -margin <= difference.low and difference.high <= margin:
        return f"equivalent within ±{margin:g}"
    return "tied"


def percentile_interval(samples: np.ndarray, estimate: float, n: int, level: float = 0.95) -> Interval:
    """An Interval from bootstrap samples: the estimate with the samples' central `level` percentiles."""
    low, high = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return Interval(float(estimate), float(low), float(high), n)


def paired_bootstrap(labels: Sequence[int], preds_a: Sequence[int], preds_b: Sequence[int], metric=None,
                     resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Interval:
    """metric(a) − metric(b) on the same test items, with a bootstrap interval over the items (resampled together,
    so the two predictions stay paired): how much a difference on one test set could move with other test texts."""
    metric = metric or macro_f1
    y, a, b = np.asarray(labels), np.asarray(preds_a), np.asarray(preds_b)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(y), size=(resamples, len(y)))
    samples = np.array([metric(y[i], a[i]) - metric(y[i], b[i]) for i in draws])
    return percentile_interval(samples, metric(y, a) - metric(y, b), len(y), level)


def change_over_items_and_seeds(before: Sequence[float], after: Sequence[Sequence[float]], resamples: int = 2000,
                                seed: int = 0, level: float = 0.95) -> Interval:
    """The mean change after − before of a per-item score (e.g. a probe sentence answered correctly), over runs:
    `before` has one value per item, `after` one row per run (seed). The bootstrap resamples the runs and, within
    them, the items, so the interval counts both the seeds' spread and the items' sampling."""
    b, a = np.asarray(before, dtype=float), np.atleast_2d(np.asarray(after, dtype=float))
    if a.shape[1] != len(b):
        raise ValueError(f"after has {a.shape[1]} items per run, before has {len(b)}")
    rng = np.random.default_rng(seed)
    runs = rng.integers(0, len(a), size=(resamples, len(a)))
    items = rng.integers(0, len(b), size=(resamples, len(b)))
    samples = np.array([(a[r][:, i] - b[i]).mean() for r, i in zip(runs, items)])
    return percentile_interval(samples, float((a - b).mean()), len(a) * len(b), level)


def macro_f1(labels: Sequence[int], preds: Sequence[int]) -> float:
    """Macro-F1 from class counts (2·TP / (true + predicted) per class that occurs in either, averaged): the same
    number as `classification_metrics`, fast enough to be recomputed on thousands of bootstrap resamples."""
    y, p = np.asarray(labels, dtype=int), np.asarray(preds, dtype=int)
    k = int(max(y.max(), p.max())) + 1
    tp = np.bincount(y[y == p], minlength=k)
    size = np.bincount(y, minlength=k) + np.bincount(p, minlength=k)  # TP + FN + TP + FP
    present = size > 0
    return float((2 * tp[present] / size[present]).mean())


def bootstrap_score(labels: Sequence[int], preds: Sequence[int], metric=macro_f1, resamples: int = 2000,
                    seed: int = 0, level: float = 0.95) -> Interval:
    """One run's score with a bootstrap interval over its test items: how much the score could move with other
    texts of the same kind (the interval of a single run, which has no seeds to average)."""
    y, p = np.asarray(labels), np.asarray(preds)
    draws = np.random.default_rng(seed).integers(0, len(y), size=(resamples, len(y)))
    samples = np.array([metric(y[i], p[i]) for i in draws])
    return percentile_interval(samples, metric(y, p), len(y), level)
