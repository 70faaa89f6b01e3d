"""Smoke run (profile=smoke, papermill) of notebook 09 on the stored sweeps."""
from __future__ import annotations

import pandas as pd
import pytest

from companion.core.paths import PROJECT_ROOT

pytestmark = pytest.mark.notebook

REPORT = PROJECT_ROOT / "sweeps" / "results" / "strategies-cpu.csv"


def test_09_reads_the_stored_sweeps(smoke_run):
    r = smoke_run("09")
    stored = pd.read_csv(REPORT)
    assert r["profile"] == "smoke" and r["sweep_profile"] == "cpu" and r["runs"] == int((stored["status"] == "ok").sum())
    assert r["best"] in r["table"] and r["best_macro_f1"] == max(row["macro_f1"] for row in r["table"].values())
    assert set(r["pareto_front"]) <= set(r["table"]) and r["guide"]
    assert 0 < r["majority_macro_f1"] < r["tfidf_macro_f1"] < 1
    assert len(r["seeds"]) >= 5 and set(r["rates"]) >= {"full", "lora"} and r["rates_interior"] is not None
    assert set(r["paired"]) == set(r["table"]) - {"full"}
    verdicts = {p["verdict"].split()[0] for p in r["paired"].values()}
    assert verdicts <= {"better", "worse", "equivalent", "tied"}
    adapt = r["adapted_vs_full"]  # adapt first, or not: the paired difference with its interval
    if "adapted + full" in set(stored["setting"]):
        assert adapt["seeds"] >= 5 and adapt["low"] <= adapt["difference"] <= adapt["high"]
    else:
        assert adapt is None
    assert set(r["representatives"]) == {"layered", "prompt tuning"}
    for claim in r["source_claims"] + r["literature_claims"]:
        assert claim["verdict"].split()[0] in ("supported", "contradicted", "not", "true"), claim
