"""Papermill smoke runs of notebooks 06–08 (profile smoke), asserting on the result JSON they write."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def _common(result: dict, notebook: str) -> None:
    assert result["notebook"] == notebook and result["profile"] == "smoke"
    assert 0.0 <= result["test"]["macro_f1"] <= 1.0 and 0.0 <= result["test"]["accuracy"] <= 1.0
    assert 0 < result["params"]["trainable"] <= result["params"]["total"]
    assert result["peak_memory_mb"] > 0 and result["seconds"] > 0
    assert 0.0 <= result["forgetting"]["cka"] <= 1.0 + 1e-9


def test_06_full_finetuning(smoke_run):
    result = smoke_run("06")
    _common(result, "06_full_finetuning")
    assert result["params"]["trainable"] == result["params"]["total"]  # full fine-tuning: 100 % trainable
    assert set(result["baselines"]) == {"majority class", "TF-IDF + LR", "TF-IDF + LR (class-balanced)"}
    assert result["overfitting"]["train_size"] <= 100 and result["samples_per_s"] > 0


def test_07_layered_finetuning(smoke_run):
    result = smoke_run("07")
    _common(result, "07_layered_finetuning")
    assert result["cache_check"]["equal"]  # the cached run equals the plain run
    ks = [row["k"] for row in result["sweep"]]
    trainable = [row["trainable"] for row in result["sweep"]]
    assert ks == sorted(ks) and trainable == sorted(trainable, reverse=True)  # more frozen, fewer trainable
    assert {"discriminative LR", "gradual unfreezing", "gradual + discriminative (ULMFiT)"} <= set(result["comparison"])


def test_08_prompt_tuning(smoke_run):
    result = smoke_run("08")
    _common(result, "08_prompt_tuning")
    assert result["hard_prompts"]["best_template"] == result["hard_prompts"]["templates"][0]["template"]
    soft = result["soft_prompts"]
    assert {"prompt tuning, random init", "prompt tuning, text init", "p-tuning", "prefix tuning"} <= set(soft)
    assert all(soft[m]["trainable"] < 0.01 * soft[m]["total"] for m in soft if m != "full fine-tuning")
    assert soft["prompt tuning, text init"]["forgetting"]["cka"] == pytest.approx(1.0)  # the encoder is frozen
