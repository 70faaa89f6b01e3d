"""Smoke runs (profile=smoke, papermill) of notebook 09: from the stored sweep report, and launching a tiny sweep."""
from __future__ import annotations

import pandas as pd
import pytest

from companion.core.paths import PROJECT_ROOT

pytestmark = pytest.mark.notebook

REPORT = PROJECT_ROOT / "sweeps" / "results" / "strategies-cpu.csv"


def test_09_reads_the_stored_sweep(smoke_run):
    r = smoke_run("09")
    stored = pd.read_csv(REPORT)
    finished = stored[stored["status"] == "ok"] if "status" in stored else stored
    assert r["profile"] == "smoke" and r["launched"] is False and r["sweep_profile"] == "cpu"
    assert r["runs"] == len(finished)
    assert r["best"] in r["table"] and r["best_macro_f1"] == max(row["macro_f1"] for row in r["table"].values())
    assert set(r["pareto_front"]) <= set(r["table"]) and r["guide"]
    assert 0 < r["majority_macro_f1"] < r["tfidf_macro_f1"] < 1
    assert len(r["seeds"]) >= 5 and r["rate_candidates"] == 3 and set(r["rates"]) >= {"full", "lora"}
    adapt = r["adapted_vs_full"]  # adapt first, or not: the paired difference with its interval
    assert adapt["seeds"] >= 5 and adapt["low"] <= adapt["difference"] <= adapt["high"]
    assert r["claims"] and all(c["verdict"].split()[0] in ("supported", "contradicted", "not") for c in r["claims"])
    assert set(r["paired"]) == set(r["table"]) - {"full"}


def test_09_launches_a_small_sweep(smoke_run):
    r = smoke_run("09", launch=True, launch_strategies=["full", "lora"], launch_seeds=[0])
    assert r["launched"] is True and r["sweep_profile"] == "smoke"
    assert r["runs"] == 2 and r["settings"] == 2 and set(r["table"]) == {"full", "lora"}
