"""Notebook 09's helpers: summary over seeds, Pareto front, a guide computed from the numbers."""
import pandas as pd
import pytest

import companion as cc
from companion.choosing import decision_guide, load_sweep, pareto_front, summarise


def _frame() -> pd.DataFrame:
    rows = []
    for setting, f1, trainable, secs, drift in [("full", 0.70, 22_000_000, 100, 0.05), ("lora", 0.69, 80_000, 60, 0.001),
                                                ("prompt_tuning", 0.30, 10_000, 50, 0.0), ("freeze k=4", 0.60, 9_000_000, 30, 0.01)]:
        for seed, jitter in ((0, 0.01), (1, -0.01)):
            rows.append({"status": "ok", "strategy": setting.split()[0].replace("freeze", "freeze"), "seed": seed,
                         "param.k": 4 if setting.startswith("freeze") else float("nan"), "macro_f1": f1 + jitter,
                         "accuracy": f1 + 0.05, "trainable": trainable, "trainable_pct": trainable / 22e6 * 100,
                         "result.seconds": secs, "peak_memory_mb": 900, "forgetting.drift": drift, "forgetting.cka": 1 - drift})
    return pd.DataFrame(rows)


def test_summary_front_and_guide(tmp_path):
    path = tmp_path / "report.csv"
    _frame().assign(strategy=lambda f: f["strategy"]).to_csv(path, index=False)
    runs = load_sweep(path)
    assert set(runs["setting"]) == {"full", "lora", "prompt_tuning", "freeze k=4"}
    summary = summarise(runs)
    assert summary.index[0] == "full" and summary.loc["full", "macro_f1"] == pytest.approx(0.70)
    assert summary.loc["full", "macro_f1_std"] == pytest.approx(0.01414, abs=1e-4) and summary.loc["full", "seeds"] == 2
    assert pareto_front(summary) == ["prompt_tuning", "lora", "full"]  # freeze k=4 is dominated by lora
    guide = decision_guide(summary, tfidf_f1=0.58, majority_f1=0.10, tolerance=0.02)
    assert "**full**" in guide[0] and "**lora**" in guide[1]
    assert any("prompt_tuning" in line and "at or below" in line for line in guide)


def test_missing_report_is_a_clear_error(tmp_path):
    with pytest.raises(cc.CourseError, match="make sweep"):
        load_sweep(tmp_path / "none.csv")
