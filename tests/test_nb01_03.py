"""Papermill smoke runs of notebooks 01–03 (profile smoke), asserting on the result JSON each one writes."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_nb01_smoke(smoke_run):
    r = smoke_run("01")
    assert r["profile"] == "smoke" and r["model"] == "smollm2"
    assert r["chain_rule"]["abs_diff_mean_nll_vs_loss"] < 1e-5
    assert r["chain_rule"]["tokens"] > 5 and r["chain_rule"]["log_prob"] < 0
    ppl = r["strided"]["perplexity_by_stride"]
    assert set(ppl) == {"32", "16", "8"} and all(1 < v < 1e4 for v in ppl.values())
    assert ppl["8"] <= ppl["32"] * 1.05  # more context does not make it clearly worse
    assert r["bigram"]["word_perplexity"]["bigram, no smoothing (k=0)"] is None  # zeros without smoothing
    assert 0 < r["bigram"]["unseen_pair_share"] < 1
    assert all(v > 1 for v in r["domain_perplexity_median"].values()) and r["domain_gap_ratio"] > 0
    reversal = r["reversal"]  # the sentence of the chain rule and the validation sentences, reversed word by word
    assert reversal["sentences"] == 5 and reversal["geometric_mean_ratio"] > 1 and reversal["bigram_ratio"] > 1


def test_nb02_smoke(smoke_run):
    r = smoke_run("02")
    assert r["profile"] == "smoke"
    assert r["classifier"]["abs_diff_hand_vs_torch_vs_model"] < 1e-5
    assert r["causal_lm"]["abs_diff_hand_vs_torch_vs_model"] < 1e-5
    assert r["mlm"]["abs_diff_hand_vs_torch"] < 1e-5 and r["mlm"]["masked"] >= 1
    assert r["label_smoothing"]["abs_diff"] < 1e-5
    assert r["causal_lm"]["loss_no_shift"] > r["causal_lm"]["loss"]


def test_nb02_runs_without_label_smoothing(smoke_run):
    r = smoke_run("02", label_smoothing=0.0)
    assert r["label_smoothing"]["epsilon"] == 0.0 and r["label_smoothing"]["optimum_margin"] is None
    assert r["label_smoothing"]["abs_diff"] < 1e-5


def test_nb03_smoke(smoke_run):
    r = smoke_run("03")
    assert r["profile"] == "smoke"
    assert r["abs_diff_vs_sdpa"] < 1e-6
    assert r["abs_diff_minilm_layer"] < 1e-5 and r["abs_diff_smollm2_layer"] < 1e-5
    unscaled, scaled = r["variance_unscaled_by_dk"], r["variance_scaled_by_dk"]
    assert unscaled["1024"] > 100 * unscaled["4"] / 4 and 0.7 < scaled["1024"] < 1.3
    assert len(r["subword_self_share_by_layer"]) == 6
    over = r["subword_ratio_by_layer"]  # the same measure on several sentences
    assert over["sentences"] >= 2 and len(over["mean"]) == 6 and sum(over["top_layer_counts"]) == over["sentences"]
