"""Smoke runs (profile=smoke, papermill) of notebooks 04 and 05, asserting on the result JSON they write."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_04_domain_gap(smoke_run):
    r = smoke_run("04")
    assert r["profile"] == "smoke"
    for name in ("medical", "general"):
        p = r["perplexity"][name]
        assert 1 < p["token_ppl"] < 1e4 and p["word_ppl"] > p["token_ppl"] and p["tokens"] > 0
    fert = r["fertility"]["smollm2 tokens/word"]
    assert 1.0 < fert["general"] < 3.0 and 1.0 < fert["medical"] < 3.0
    assert 0 < r["vocabulary"]["top_k_overlap"] < 1 and 0 < r["vocabulary"]["domain_oov_rate"] < 1
    assert len(r["most_split"]) == 5
    assert 0.5 <= r["embedding"]["separability"] <= 1 and -1 <= r["embedding"]["centroid_cosine"] <= 1


def test_05_domain_adaptation(smoke_run):
    r = smoke_run("05")
    assert r["profile"] == "smoke" and r["steps"] == 2 and r["embeddings_tied"] is True
    for key in ("domain_ppl_before", "domain_ppl_after", "general_ppl_before", "general_ppl_after"):
        assert 1 < r[key] < 1e5
    assert r["domain_drop_pct"] == pytest.approx(100 * (1 - r["domain_ppl_after"] / r["domain_ppl_before"]))
    assert r["embedding_only"]["trainable_params"] < r["full"]["trainable_params"]
    assert 0 < r["full"]["train_seconds"] <= r["full"]["seconds"] and r["embedding_only"]["train_seconds"] > 0
    assert r["replay"]["fraction"] == 0.25 and r["reload_matches"] is True
    assert r["saved_model"] == "smollm2-medical_abstracts-dapt-smoke"  # the cache's copy, one per profile
    assert set(r["augmentation"]["macro_f1"]) == {"2", "10"}
    versus = r["augmentation"]["versus"]["2"]  # 2 originals + 8 EDA copies vs 10 real examples, paired by seed
    assert versus["eda_minus_real_low"] <= versus["eda_minus_real"] <= versus["eda_minus_real_high"]
    for name in ("domain", "general"):  # per-block paired change of the next-token loss, with its interval
        change = r["perplexity_change"][name]
        assert change["low"] <= change["loss_change"] <= change["high"] and change["blocks"] >= 2
    mlm = r["mlm"]  # masked-LM DAPT of the classifier's encoder: before/after with intervals
    assert mlm["eval_sequences"] >= 2 and mlm["adapted_dir_name"].startswith("minilm-medical_abstracts-mlm-dapt")
    assert r["general_ppl_min"] <= min(r["general_ppl_before"], r["general_ppl_after"]) + 1e-9
    assert r["general_rise_from_min_pct"] == pytest.approx(100 * (r["general_ppl_after"] / r["general_ppl_min"] - 1))
