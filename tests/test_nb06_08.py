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
    loop = result["loop_equivalence"]  # the notebook's loop and companion.engine.training.train: same per-step losses
    assert loop["equal"] is True and loop["steps"] >= 8 and loop["max_loss_difference"] < loop["tolerance"]


def test_07_layered_finetuning(smoke_run):
    result = smoke_run("07")
    _common(result, "07_layered_finetuning")
    assert result["cache_check"]["equal"]  # the cached run equals the plain run
    ks = [row["k"] for row in result["sweep"]]
    trainable = [row["trainable"] for row in result["sweep"]]
    assert ks == sorted(ks) and trainable == sorted(trainable, reverse=True)  # more frozen, fewer trainable
    assert {"discriminative LR", "gradual unfreezing", "gradual + discriminative (ULMFiT)"} <= set(result["comparison"])
    freeze = result["freeze_check"]  # requires_grad_(False) by hand: count derived from the layer sizes
    assert freeze["equal"] and freeze["by_hand"] == freeze["trainable"]
    assert freeze["adam_state_bytes"] == 8 * freeze["trainable"] + 4 * freeze["trained_tensors"]  # AdamW: 2 moments
    assert all(result["by_hand_checks"].values()), result["by_hand_checks"]  # cache split, groups, unfreezing


def test_08_prompt_tuning(smoke_run):
    result = smoke_run("08")
    _common(result, "08_prompt_tuning")
    assert result["hard_prompts"]["best_template"] == result["hard_prompts"]["templates"][0]["template"]
    soft = result["soft_prompts"]
    assert {"prompt tuning, random init", "prompt tuning, text init", "p-tuning", "prefix tuning"} <= set(soft)
    assert all(soft[m]["trainable"] < 0.01 * soft[m]["total"] for m in soft if m != "full fine-tuning")
    assert soft["prompt tuning, text init"]["forgetting"]["cka"] == pytest.approx(1.0)  # the encoder is frozen
    assert all(c["by_hand"] == c["peft"] for c in result["peft_counts"].values())  # counts derived = peft's own
    assert set(result["peft_counts"]) == {"prompt tuning", "prefix tuning", "p-tuning"}
    assert result["prompt_by_hand_equal"]
    lora = result["lora"]  # hand-written LoRA == peft's layer, model and merge_and_unload()
    assert max(lora["layer_diff"], lora["model_diff"], lora["weight_diff"], lora["merged_diff"]) < 1e-5
    assert lora["params_by_hand"] == lora["peft_params"] == 2 * lora["r"] * 384
    multi = result["multitask"]  # two soft prompts on one frozen encoder, far smaller than a full copy
    assert all(0.0 <= multi[t]["macro_f1"] <= 1.0 and 0 < multi[t]["bytes"] < multi["full_copy_bytes"] / 100
               for t in ("topic", "domain"))
