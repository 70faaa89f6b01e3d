"""Exercise checks of notebook 09."""
from __future__ import annotations

import pandas as pd

from ..lessons.n09_choosing import RANKED, pareto_front
from . import Verdict, check_close, check_equal, check_prediction, exercise


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
