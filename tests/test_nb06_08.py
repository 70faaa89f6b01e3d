"""Papermill smoke runs of notebooks 06–08 (profile smoke), asserting on the result JSON they write."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def _common(result: dict, notebook: str) -> None:
    assert result["notebook"] == notebook and result["profile"] == "smoke" and result["seconds"] > 0
    assert result["protocol"]["profile"] == "smoke"  # every training notebook records the one protocol it ran


def test_06_full_finetuning(smoke_run):
    result = smoke_run("06")
    _common(result, "06_full_finetuning")
    assert 0.0 <= result["test"]["macro_f1"] <= 1.0 and 0.0 <= result["test"]["accuracy"] <= 1.0
    assert result["params"]["trainable"] == result["params"]["total"]  # full fine-tuning: 100 % trainable
    assert set(result["baselines"]) == {"majority class", "TF-IDF + LR (class-weighted, C on validation)"}
    vs = result["vs_tfidf"]  # the comparison with TF-IDF carries a paired bootstrap interval over test texts
    assert vs["low"] <= vs["difference"] <= vs["high"] and vs["verdict"] in ("above", "below", "tied with")
    assert result["overfitting"]["train_size"] <= 100 and result["samples_per_s"] > 0
    loop = result["loop_equivalence"]  # the notebook's loop and companion.engine.training.train: same per-step losses
    assert loop["equal"] is True and loop["steps"] >= 4 and loop["max_loss_difference"] < loop["tolerance"]
    assert 1 <= result["steps"] <= result["max_steps"] and isinstance(result["stopped_early"], bool)
    (check,) = result["training_checks"]  # the did-it-train line, stored
    assert set(check) >= {"trained", "classes_predicted", "majority_macro_f1", "chance_macro_f1"}
    change = result["general_change"]  # the one forgetting test: an interval over the probe's sentences
    assert change["low"] <= change["mean"] <= change["high"]
    assert 0 <= result["forgetting"]["general_acc_before"] <= 1 and 0.0 <= result["forgetting"]["cka"] <= 1.0 + 1e-9


def test_07_layered_finetuning(smoke_run):
    result = smoke_run("07")
    _common(result, "07_layered_finetuning")
    assert result["cache_check"]["equal"]  # the cached run equals the plain run
    freeze = result["freeze_check"]  # requires_grad_(False) by hand: count derived from the layer sizes
    assert freeze["equal"] and freeze["by_hand"] == freeze["trainable"]
    assert freeze["adam_state_bytes"] == 8 * freeze["trainable"] + 4 * freeze["trained_tensors"]  # AdamW: 2 moments
    assert all(result["by_hand_checks"].values()), result["by_hand_checks"]  # cache split, groups, unfreezing
    layers = result["layers"]  # the stored sweep's k comparison: each k at its own rate, with intervals
    assert set(layers) == {"full", "freeze k=2", "freeze k=4", "freeze k=6"}
    trainable = [layers[s]["trainable"] for s in ("full", "freeze k=2", "freeze k=4", "freeze k=6")]
    assert trainable == sorted(trainable, reverse=True)  # more frozen, fewer trainable
    assert len({layers[s]["lr"] for s in layers}) > 1  # not one shared rate: each k chose its own
    assert {"discriminative", "gradual", "ulmfit"} <= set(result["tricks"])


def test_08_prompt_tuning(smoke_run):
    result = smoke_run("08")
    _common(result, "08_prompt_tuning")
    _hard_and_seeds(result)
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


def _hard_and_seeds(result: dict) -> None:
    """08's hard prompts (generated search on validation, zero/few × base/adapted) and its seeded soft prompts."""
    hard = result["hard_prompts"]
    search = hard["search"]  # a generated space of >= 20 combinations, scored on validation
    assert search["combinations"] == len(search["table"]) >= 20
    assert search["worst"] <= search["median"] <= search["best"] == search["table"][0]["macro_f1"]
    assert (hard["best_template"], hard["best_verbalizer"]) == (search["table"][0]["template"],
                                                               search["table"][0]["verbalizer"])
    assert search["forward_passes"] == search["templates"] * search["validation_texts"]  # one pass per template
    assert 0 < hard["test_texts"] <= hard["test_split"]
    for lm in ("base", "adapted"):
        assert all(0.0 <= hard[lm][shots]["macro_f1"] <= 1.0 for shots in ("zero_shot", "few_shot"))
    seeds, soft = result["seeds"], result["soft_prompts"]
    assert len(seeds) >= 2 and len({len(m["rate_search"]) for m in soft.values()}) == 1  # same search budget
    for m in soft.values():
        assert len(m["macro_f1_per_seed"]) == len(seeds) and m["lr"] in [r["lr"] for r in m["rate_search"]]
        assert m["interval"]["low"] <= m["macro_f1"] == m["interval"]["mean"] <= m["interval"]["high"]
    assert "text_minus_random_init" in result["soft_differences"]

