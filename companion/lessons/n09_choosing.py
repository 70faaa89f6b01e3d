"""Notebook 09 (choosing a strategy): summarise a strategy sweep, find the Pareto front, derive a decision guide."""
from __future__ import annotations

import pandas as pd

from ..core.stats import Interval, equivalence



def pareto_front(summary: pd.DataFrame, quality: str = "macro_f1", cost: str = "trainable") -> list[str]:
    """Settings that no other setting beats on quality (higher) and cost (lower) at once."""
    front = []
    for name, row in summary.iterrows():
        dominated = ((summary[quality] >= row[quality]) & (summary[cost] <= row[cost])
                     & ((summary[quality] > row[quality]) | (summary[cost] < row[cost]))).any()
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: summary.loc[n, cost])


def _listing(names: list[str]) -> str:
    """'a, b and c' (or 'none')."""
    return "none" if not names else names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def decision_guide(summary: pd.DataFrame, paired: pd.DataFrame, tfidf_f1: float, majority_f1: float,
                   reference: str = "full", margin: float = 0.02) -> list[str]:
    """Plain-language recommendations chosen by the intervals: better / worse only where the paired interval
    excludes 0, equivalent only where it lies within ±margin, tied otherwise; every setting is named once."""
    verdicts = pd.Series([equivalence(Interval(float(r["difference"]), float(r["low"]), float(r["high"]),
                                               int(r["seeds"])), margin) for _, r in paired.iterrows()],
                         index=paired.index, dtype=str)
    better = verdicts.index[verdicts == "better"].tolist()
    worse = verdicts.index[verdicts == "worse"].tolist()
    equivalent = verdicts.index[verdicts.str.startswith("equivalent")].tolist()
    tied = [s for s in paired.index if s not in better + worse + equivalent]
    lines = [f"Against **{reference}** fine-tuning on the same seeds (paired macro-F1 difference, 95 % interval): "
             f"better: {_listing(better)}; worse: {_listing(worse)}; equivalent within ±{margin:g}: "
             f"{_listing(equivalent)}; tied (the data cannot tell): {_listing(tied)}."]
    level = [reference] + equivalent + better
    counts = summary.loc[level, "trainable"].astype(float)
    cheapest = [s for s in level if counts[s] == counts.min()]  # settings with equal counts are named together
    lines.append(f"Among {reference} and the settings equivalent to or better than it, the fewest trainable "
                 f"parameters: **{_listing(cheapest)}** ({counts.min():,.0f}).")
    timed = summary.loc[level, "seconds_per_step"].astype(float).dropna() if "seconds_per_step" in summary else ()
    if len(timed):
        fastest = timed.idxmin()
        untimed = [s for s in level if s not in timed.index]
        lines.append(f"Among them, the fastest training step: **{fastest}** ({timed[fastest]:.3f} s per step"
                     + (f"; not timed: {_listing(untimed)}" if untimed else "") + ").")
    if tied:
        lines.append(f"Tied is not equivalent: {_listing(tied)} may be better or worse than {reference}; more seeds "
                     f"would tell.")
    above = summary[summary["macro_f1_low"] > tfidf_f1].index.tolist()
    lines.append(f"Above TF-IDF + LR ({tfidf_f1:.3f}) with the whole interval: {_listing(above)}.")
    weak = summary[summary["macro_f1_low"] <= majority_f1].index.tolist()
    if weak:
        lines.append(f"Not clearly above the majority class ({majority_f1:.3f}) at this budget: {_listing(weak)}.")
    return lines


RANKED = ("full", "lora", "prompt_tuning")  # the settings whose order the learner predicts (notebook 09)
