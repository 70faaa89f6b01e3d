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
    assert r["profile"] == "smoke" and r["embeddings_tied"] is True and "Instruct" in r["provenance"]
    assert 1 <= r["steps"] <= r["max_steps"] == 2 and r["rates_tried"] >= 2 and r["lr"] > 0
    for key in ("domain_ppl_before", "domain_ppl_after", "general_ppl_before", "general_ppl_after"):
        assert 1 < r[key] < 1e5
    assert r["domain_drop_pct"] == pytest.approx(100 * (1 - r["domain_ppl_after"] / r["domain_ppl_before"]))
    assert {f"{m}/{s}" for m in ("base", "adapted", "control", "replay") for s in ("domain", "general")} == set(
        r["perplexity"])  # the control and replay runs are in the record
    for difference in ("adapted-base", "control-base", "adapted-control", "replay-adapted"):
        for name in ("domain", "general"):  # per-block paired differences with their intervals
            change = r["paired"][difference][name]
            assert change["low"] <= change["change"] <= change["high"]
    assert isinstance(r["attribution"]["domain_specific"], bool) and r["attribution"]["verdict"]
    assert r["embedding_only"]["trainable_params"] < r["embedding_only"]["full_trainable_params"]
    assert r["embedding_only"]["seconds_per_step"] > 0 and r["embedding_only"]["full_seconds_per_step"] > 0
    share = r["embedding_only"]["trainable_params"] / r["embedding_only"]["full_trainable_params"]
    assert abs(r["embedding_only"]["flops_ratio"] - (2 + share) / 3) < 0.02  # counted operations: forward 1, backward 2
    assert r["replay"]["fraction"] == 0.25 and r["reload_matches"] is True
    assert r["saved_model"] == "smollm2-medical_abstracts-dapt-smoke"  # the cache's copy, one per profile
    assert set(r["augmentation"]["macro_f1"]) == {"2", "10"}
    versus = r["augmentation"]["versus"]["2"]  # 2 originals + 8 EDA copies vs 10 real examples, paired by seed
    assert versus["eda_minus_real_low"] <= versus["eda_minus_real"] <= versus["eda_minus_real_high"]
    mlm = r["mlm"]  # masked-LM DAPT of the classifier's encoder: before / after / control with paired intervals
    assert mlm["eval_sequences"] >= 2 and mlm["adapted_dir_name"].startswith("minilm-medical_abstracts-mlm-dapt")
    assert mlm["head_matches_library"] is True and mlm["masking_equals_collator"] is True
    assert mlm["head"]["held_out_loss"] < mlm["head"]["loss_at_start"]  # the warm-up learned
    for name in ("medical", "general"):
        assert mlm[f"{name}_unigram_loss"] > 0 and mlm[f"{name}_loss_control"] > 0
        for difference in ("after-before", "control-before", "after-control"):
            change = mlm["paired"][difference][name]
            assert change["low"] <= change["change"] <= change["high"]
    assert mlm["dapt"]["steps"] >= 1 and mlm["rates_tried"] >= 2 and isinstance(mlm["domain_specific"], bool)
