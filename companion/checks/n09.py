"""Exercise checks of notebook 09."""
from __future__ import annotations

import pandas as pd

from ..engine.comparison import pair
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
    """Exercise: the setting with the fewest trainable parameters among those whose whole interval beats TF-IDF."""
    above = summary[summary["macro_f1_low"] > tfidf_f1]["trainable"].astype(float)
    tied = above.index[above == above.min()].tolist() if len(above) else ["none"]  # equal counts: any of them
    return check_equal(answer, answer if answer in tied else tied[0], "cheapest_above_tfidf",
                       "keep the rows whose macro_f1_low (the interval's lower end) is above the TF-IDF score, then "
                       "take the row with the fewest trainable parameters (idxmin(); settings with equal counts all count)")


@exercise("09", "pareto")
def check_pareto(answer: list | None, summary: pd.DataFrame) -> Verdict:
    """Exercise: the settings on the quality vs trainable-parameters Pareto front."""
    return check_equal(sorted(answer) if answer is not None else None, sorted(pareto_front(summary)), "pareto",
                       "a setting is on the front if no other one has both higher (or equal) macro-F1 and fewer "
                       "(or equal) trainable parameters, strictly better in one")


@exercise("09", "ranking_prediction")
def check_ranking_prediction(prediction: list[str] | None, runs: pd.DataFrame) -> Verdict:
    """Predict-then-measure: the order of full fine-tuning, LoRA and prompt tuning by macro-F1,
    judged by the paired intervals: an order holds unless a setting placed above another is significantly worse."""
    present = [s for s in RANKED if s in set(runs["setting"])]
    lines = [f"{a} − {b} {pair(runs, a, b)}" for i, a in enumerate(present) for b in present[i + 1:]]
    guess = list(prediction) if isinstance(prediction, (list, tuple)) else prediction
    valid = isinstance(guess, list) and sorted(guess) == sorted(present)
    contradicted = [f"{a} above {b}" for i, a in enumerate(guess or []) for b in (guess or [])[i + 1:]
                    if valid and pair(runs, a, b).high < 0]  # a placed above b, but a is significantly worse
    explanation = ("Paired differences on the same seeds: " + "; ".join(lines) + ". "
                   + (f"Contradicted by the intervals: {', '.join(contradicted)}." if contradicted else
                      "A pair whose interval includes 0 may go either way: any order of a tied pair holds."))
    means = runs[runs["setting"].isin(present)].groupby("setting")["macro_f1"].mean()
    measured = sorted(present, key=lambda setting: -means[setting])  # best first, by mean test macro-F1
    return check_prediction(guess, guess if valid and not contradicted else measured, "ranking_prediction",
                            explanation)
