"""Notebook 09 (choosing a strategy): summarise a strategy sweep, find the Pareto front, derive a decision guide."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import CourseError
from .exercises import Verdict, check_close, check_equal, check_prediction, exercise

METRICS = {"macro_f1": "macro-F1", "accuracy": "accuracy", "trainable": "trainable params",
           "trainable_pct": "trainable %", "result.seconds": "seconds", "peak_memory_mb": "peak MiB",
           "forgetting.drift": "forgetting (1 − cosine)", "forgetting.cka": "CKA to original"}


def load_sweep(csv: str | Path) -> pd.DataFrame:
    """The finished runs of a strategy sweep (report.csv), one row per run, with a `setting` label."""
    path = Path(csv)
    if not path.is_file():
        raise CourseError(f"no sweep report at {path}: run `make sweep` (sweeps/strategies.yaml) or pass report_csv")
    frame = pd.read_csv(path)
    frame = frame[frame["status"] == "ok"].copy()
    if frame.empty or "macro_f1" not in frame:
        raise CourseError(f"{path.name} has no finished strategy runs (column macro_f1 missing)")
    k = frame.get("param.k")
    frame["setting"] = [f"freeze k={int(kk)}" if s == "freeze" and kk == kk else s
                        for s, kk in zip(frame["strategy"], k if k is not None else [None] * len(frame))]
    return frame


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per setting for every metric in METRICS, best macro-F1 first."""
    cols = [c for c in METRICS if c in frame]
    grouped = frame.groupby("setting")[cols]
    table = grouped.mean().join(grouped.std().add_suffix("_std")).join(grouped.size().rename("seeds"))
    return table.sort_values("macro_f1", ascending=False)


def pareto_front(summary: pd.DataFrame, quality: str = "macro_f1", cost: str = "trainable") -> list[str]:
    """Settings that no other setting beats on quality (higher) and cost (lower) at once."""
    front = []
    for name, row in summary.iterrows():
        dominated = ((summary[quality] >= row[quality]) & (summary[cost] <= row[cost])
                     & ((summary[quality] > row[quality]) | (summary[cost] < row[cost]))).any()
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: summary.loc[n, cost])


def decision_guide(summary: pd.DataFrame, tfidf_f1: float, majority_f1: float, tolerance: float = 0.02) -> list[str]:
    """Plain-language recommendations computed from the measured summary (nothing hard-coded)."""
    best = summary["macro_f1"].idxmax()
    close = summary[summary["macro_f1"] >= summary.loc[best, "macro_f1"] - tolerance]
    lines = [f"Best quality: **{best}** (macro-F1 {summary.loc[best, 'macro_f1']:.3f}).",
             f"Within {tolerance:.2f} macro-F1 of the best, the fewest trainable parameters: "
             f"**{close['trainable'].idxmin()}** ({close.loc[close['trainable'].idxmin(), 'trainable']:,.0f}); "
             f"the fastest: **{close['result.seconds'].idxmin()}** ({close['result.seconds'].min():.0f} s)."]
    if "forgetting.drift" in summary:
        drift = summary["forgetting.drift"].clip(lower=0.0)  # 1 − cosine ≥ 0; rounding can give −0.0000
        lines.append(f"Least forgetting of general English: **{drift.idxmin()}** (drift {drift.min():.4f}); "
                     f"most: **{drift.idxmax()}** ({drift.max():.4f}).")
    beat = summary[summary["macro_f1"] > tfidf_f1].index.tolist()
    lines.append(f"Beat the TF-IDF baseline ({tfidf_f1:.3f}): {', '.join(beat) if beat else 'none'}; "
                 f"at or below it: {', '.join(i for i in summary.index if i not in beat) or 'none'}.")
    weak = summary[summary["macro_f1"] < majority_f1 + 0.05].index.tolist()
    if weak:
        lines.append(f"Barely above the majority class ({majority_f1:.3f}) with this budget: {', '.join(weak)}.")
    return lines


@exercise("09", "mean_over_seeds")
def check_mean_over_seeds(answer: float | None, frame: pd.DataFrame, setting: str) -> Verdict:
    """Exercise: the mean test macro-F1 of one setting over its seeds."""
    expected = frame.loc[frame["setting"] == setting, "macro_f1"].mean()
    return check_close(answer, expected, "mean_over_seeds", f"select the rows of {setting!r} "
                       "(frame[frame['setting'] == …]) and average their macro_f1", atol=1e-6)


@exercise("09", "cheapest_above_tfidf")
def check_cheapest_above_tfidf(answer: str | None, summary: pd.DataFrame, tfidf_f1: float) -> Verdict:
    """Exercise: the setting with the fewest trainable parameters among those that beat TF-IDF."""
    above = summary[summary["macro_f1"] > tfidf_f1]
    expected = above["trainable"].idxmin() if len(above) else "none"
    return check_equal(answer, expected, "cheapest_above_tfidf", "keep the rows whose macro_f1 is above the "
                       "TF-IDF score, then take idxmin() of their trainable column")


@exercise("09", "pareto")
def check_pareto(answer: list | None, summary: pd.DataFrame) -> Verdict:
    """Exercise: the settings on the quality vs trainable-parameters Pareto front."""
    return check_equal(sorted(answer) if answer is not None else None, sorted(pareto_front(summary)), "pareto",
                       "a setting is on the front if no other one has both higher (or equal) macro-F1 and fewer "
                       "(or equal) trainable parameters, strictly better in one")


RANKED = ("full", "lora", "prompt_tuning_text")  # the strategies whose order the learner predicts (notebook 09)


@exercise("09", "ranking_prediction")
def check_ranking_prediction(prediction: list[str] | None, summary: pd.DataFrame) -> Verdict:
    """Predict-then-measure: the order of full fine-tuning, LoRA and text-initialised prompt tuning by macro-F1."""
    present = [s for s in RANKED if s in summary.index]
    table = summary.loc[present].sort_values("macro_f1", ascending=False)
    measured = table.index.tolist()
    spread = table["macro_f1"].max() - table["macro_f1"].min()
    std = float(table["macro_f1_std"].max()) if "macro_f1_std" in table else float("nan")
    listing = ", ".join(f"{name} {row.macro_f1:.3f}" for name, row in table.iterrows())
    verdict = ("smaller than the seed-to-seed standard deviation: on this budget the order is not evidence, "
               "the methods are level" if spread < std else "larger than the seed-to-seed standard deviation")
    full = ("" if "full" not in measured else " Training every parameter paid off here." if measured[0] == "full"
            else " Training every parameter did not buy quality on this budget.")
    explanation = (f"Measured (mean macro-F1 over seeds): {listing}. The whole spread, {spread:.3f}, is {verdict} "
                   f"(largest std {std:.3f}).{full}")
    guess = list(prediction) if isinstance(prediction, (list, tuple)) else prediction
    return check_prediction(guess, measured, "ranking_prediction", explanation)
