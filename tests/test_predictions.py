"""Predict-then-measure checks of notebooks 00, 03, 04, 09, and the readable-table / log-axis helpers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from companion.checks.n03 import check_variance_prediction
from companion.checks.n09 import check_ranking_prediction
from companion.checks.n04 import check_surprise_prediction
from companion.batch.tables import plain, readable
from companion.checks.n00 import check_most_similar_pair


def test_most_similar_pair_accepts_either_order_and_explains(capsys) -> None:
    """The pair with the highest cosine, in any order; the message lists every cosine and shared-word count."""
    names = ["infarction", "heart attack", "lobster"]
    sentences = ["The patient had an infarction.", "A heart attack was seen.", "The lobster is blue."]
    sim = np.array([[1.0, 0.6, 0.1], [0.6, 1.0, 0.05], [0.1, 0.05, 1.0]])
    assert check_most_similar_pair(("heart attack", "infarction"), names, sentences, sim)
    out = capsys.readouterr().out
    assert "cosine 0.60" in out and "infarction / lobster: cosine 0.10, 1 shared words" in out
    assert not check_most_similar_pair(["infarction", "lobster"], names, sentences, sim)
    assert not check_most_similar_pair(None, names, sentences, sim)


def test_variance_prediction_within_four_standard_errors() -> None:
    """256 passes a measured 250 ± 2.5; 16 (√d_k) does not; the scaled variance is quoted."""
    variance = pd.DataFrame({"d_k": [256, 256], "scores": ["q·k", "q·k / √d_k"], "variance": [250.0, 0.98],
                             "standard error": [2.5, 0.01]})
    assert check_variance_prediction(256, variance)
    assert not check_variance_prediction(16, variance)


def test_surprise_prediction_reads_the_measured_table(capsys) -> None:
    """The corpus with the higher token perplexity when its interval excludes a tie; case and spaces ignored; the
    per-word comparison worded from its interval (tests/test_corpus.py covers the tie)."""
    from companion.core.stats import Interval

    ppl = pd.DataFrame({"token_ppl": [18.3, 21.4], "word_ppl": [68.0, 40.0], "tokens_per_word": [1.9, 1.3]},
                       index=["medical", "general"])
    gap = {"token": Interval(-0.158, -0.3, -0.05, 32), "word": Interval(0.53, 0.3, 0.8, 32)}
    assert check_surprise_prediction(" General ", ppl, gap)
    out = capsys.readouterr().out
    assert "Per word: medical 68.0, general 40.0, perplexity per word medical / general = 1.70" in out
    assert not check_surprise_prediction("medical", ppl, gap)


def test_ranking_prediction_is_judged_by_the_paired_intervals(capsys) -> None:
    """An order holds unless a setting placed above another is significantly worse on the same seeds."""
    rows = [{"setting": s, "seed": seed, "macro_f1": f1 + jitter}
            for s, f1 in (("full", 0.60), ("lora", 0.60), ("prompt_tuning", 0.40))
            for seed, jitter in enumerate((0.01, -0.01, 0.02, 0.0, -0.02))]
    runs = pd.DataFrame(rows)
    runs.loc[runs["setting"] == "lora", "macro_f1"] += [0.004, -0.003, 0.001, -0.002, 0.0]  # lora − full: noise
    assert check_ranking_prediction(["full", "lora", "prompt_tuning"], runs)
    assert check_ranking_prediction(["lora", "full", "prompt_tuning"], runs)  # a tied pair may go either way
    out = capsys.readouterr().out
    assert "full − lora" in out and "either way" in out
    assert not check_ranking_prediction(["prompt_tuning", "full", "lora"], runs)
    assert "Contradicted by the intervals: prompt_tuning above full" in capsys.readouterr().out


def test_a_contradicted_ranking_fails_even_when_it_is_the_listed_order(capsys) -> None:
    """The guess equal to the check's own listing order (full, lora, prompt tuning) fails when the runs put prompt
    tuning significantly first, and the message shows the measured order, best first."""
    rows = [{"setting": s, "seed": seed, "macro_f1": f1 + jitter}
            for s, f1 in (("full", 0.55), ("lora", 0.555), ("prompt_tuning", 0.60))
            for seed, jitter in enumerate((0.01, -0.01, 0.02, 0.0, -0.02))]
    runs = pd.DataFrame(rows)
    runs.loc[runs["setting"] == "lora", "macro_f1"] += [0.004, -0.013, 0.001, -0.012, 0.0]  # lora − full: noise
    assert not check_ranking_prediction(["full", "lora", "prompt_tuning"], runs)
    out = capsys.readouterr().out
    assert "['prompt_tuning', 'lora', 'full']" in out and "Contradicted by the intervals" in out
    assert check_ranking_prediction(["prompt_tuning", "full", "lora"], runs)


def test_plain_numbers_never_scientific() -> None:
    """Counts get thousands separators, small numbers stay positional, missing ones show a dash."""
    assert plain(22715141.0) == "22,715,141"
    assert plain(0.000032) == "0.000032" and plain(0.57312) == "0.5731" and plain(float("nan")) == "–"
    table = readable(pd.DataFrame({"params": [3698693.0, None, 1], "f1": [0.12345, 0.5, -1e-9]}), ["params"], {"f1": 3})
    assert table["params"].tolist() == ["3,698,693", "", "1"] and table["f1"].tolist() == ["0.123", "0.500", "0.000"]


def test_plain_log_axis_labels() -> None:
    """A log axis labelled 20, 50, 100, 200 with no minor-tick labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from companion.core.plots import plain_log_axis

    fig, ax = plt.subplots()
    ax.plot([12, 300], [0, 1])
    plain_log_axis(ax, "x")
    fig.canvas.draw()
    major = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    minor = [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    plt.close(fig)
    assert {"20", "50", "100", "200"} <= set(major) and minor == []
    assert not any("10^" in m or "e+" in m or "times" in m for m in major)
