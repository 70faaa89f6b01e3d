"""Papermill smoke runs of notebooks 06–08 (profile smoke), asserting on the result JSON they write."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def _swept_settings() -> set[str]:
    """The settings of the committed strategy sweep (the smoke runs read it)."""
    from companion.core.paths import PROJECT_ROOT
    from companion.engine.comparison import load_sweep

    return set(load_sweep(PROJECT_ROOT / "sweeps" / "results" / "strategies-cpu.csv")["setting"])


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
    swept = _swept_settings()
    layers = result["layers"]  # the stored sweep's k comparison: each k at its own rate, with intervals
    ks = [s for s in ("full", "freeze k=2", "freeze k=4", "freeze k=6") if s in swept]
    assert set(layers) == set(ks) and len(ks) >= 3  # every depth the committed sweep has, full (k = 0) included
    trainable = [layers[s]["trainable"] for s in ks]
    assert trainable == sorted(trainable, reverse=True)  # more frozen, fewer trainable
    assert len({layers[s]["lr"] for s in layers}) > 1  # not one shared rate: each k chose its own
    assert {"discriminative", "gradual", "ulmfit"} & swept <= set(result["tricks"] or {})  # each one the sweep has


def test_08_prompt_tuning(smoke_run):
    result = smoke_run("08")
    assert result["notebook"] == "08_prompt_tuning" and result["profile"] == "smoke" and result["seconds"] > 0
    assert result["protocol"]["profile"] == "smoke" and result["precision"] in ("fp32", "bf16")
    _hard_prompts(result)
    assert all(c["by_hand"] == c["peft"] for c in result["peft_counts"].values())  # counts derived = peft's own
    assert set(result["peft_counts"]) == {"prompt tuning", "prefix tuning", "p-tuning"}
    assert result["prompt_by_hand_equal"]
    lora = result["lora"]  # hand-written LoRA == peft's layer, model and merge_and_unload()
    assert max(lora["layer_diff"], lora["model_diff"], lora["weight_diff"], lora["merged_diff"]) < 1e-5
    assert lora["params_by_hand"] == lora["peft_params"] == 2 * lora["r"] * 384
    multi = result["multitask"]  # two soft prompts on one frozen encoder, far smaller than a full copy
    assert all(0.0 <= multi[t]["macro_f1"] <= 1.0 and 0 < multi[t]["bytes"] < multi["full_copy_bytes"] / 100
               for t in ("topic", "domain"))
    checks = {c["name"]: c for c in result["training_checks"]}  # what 08 trains itself carries a did-it-train check
    assert set(checks) == {"topic task prompt", "domain task prompt"}
    assert all(multi[t]["trained"] == checks[f"{t} task prompt"]["trained"] and multi[t]["steps"] > 0
               for t in ("topic", "domain"))
    _sweep(result)


def _hard_prompts(result: dict) -> None:
    """08's hard prompts: a generated search on validation, the winner's curse read on test, zero/few × base/adapted
    with bootstrap intervals on macro-F1."""
    hard = result["hard_prompts"]
    search = hard["search"]  # a generated space of >= 20 combinations, scored on validation
    assert search["combinations"] == len(search["table"]) >= 20
    assert search["worst"] <= search["median"] <= search["best"] == search["table"][0]["macro_f1"]
    assert (hard["best_template"], hard["best_verbalizer"]) == (search["table"][0]["template"],
                                                               search["table"][0]["verbalizer"])
    assert search["forward_passes"] == search["templates"] * search["validation_texts"]  # one pass per template
    assert hard["test_texts"] == result["protocol"]["eval_size"] or hard["test_texts"] == hard["test_split"]
    chosen, curse = hard["chosen"], hard["winners_curse"]  # validation and test side by side
    assert chosen["validation_macro_f1"] == search["best"] == curse["table"][0]["validation"]
    assert chosen["test_macro_f1"] == curse["table"][0]["test"] == pytest.approx(hard["base"]["zero_shot"]["macro_f1"])
    assert len(curse["table"]) == curse["top"] and [r["validation rank"] for r in curse["table"]] == list(
        range(1, curse["top"] + 1))
    low, high = chosen["validation_interval"]["low"], chosen["validation_interval"]["high"]
    assert low <= chosen["validation_macro_f1"] <= high
    for lm in ("base", "adapted"):
        for shots in ("zero_shot", "few_shot"):
            run = hard[lm][shots]
            assert 0.0 <= run["macro_f1"] <= 1.0 and run["interval"]["mean"] == pytest.approx(run["macro_f1"])
            assert run["interval"]["low"] <= run["macro_f1"] <= run["interval"]["high"]
    differences = hard["macro_f1_differences"]  # intervals on the table's metric, not accuracy
    assert set(differences) == {"adapted_minus_base_zero_shot", "adapted_minus_base_few_shot",
                                "few_minus_zero_shot_base", "few_minus_zero_shot_adapted"}
    assert differences["adapted_minus_base_zero_shot"]["mean"] == pytest.approx(
        hard["adapted"]["zero_shot"]["macro_f1"] - hard["base"]["zero_shot"]["macro_f1"])
    assert hard["fast_macro_f1_max_diff"] < 1e-9


def _sweep(result: dict) -> None:
    """08 reads the strategy sweep (the committed one is of the medical abstracts): every method of 08 with its
    rate search, mean and interval, paired difference to full fine-tuning, did-it-train and convergence shares."""
    sweep = result["sweep"]
    assert sweep is not None, "the default sweep is of the medical abstracts: 08 must read it"
    methods = sweep["methods"]
    names = {"full": "full fine-tuning", "lora": "LoRA", "prompt_tuning": "prompt tuning, random init",
             "prompt_tuning_text": "prompt tuning, text init", "p_tuning": "p-tuning", "prefix_tuning": "prefix tuning"}
    swept = _swept_settings()
    assert set(methods) == {name for setting, name in names.items() if setting in swept}  # every one the sweep has
    assert {"full fine-tuning", "prompt tuning, random init"} <= set(methods)
    for name, row in methods.items():
        assert row["95 % low"] <= row["macro_f1"] <= row["95 % high"] and row["seeds"] >= 2
        if name != "full fine-tuning":
            assert row["vs full low"] <= row["vs full"] <= row["vs full high"]
    assert all(methods[m]["trainable"] < 0.01 * methods["full fine-tuning"]["trainable"] for m in methods
               if m not in ("full fine-tuning", "LoRA"))
    assert set(sweep["rates"]) <= set(methods) and all(r["position"] in ("interior", "lowest tried", "highest tried")
                                                       for r in sweep["rates"].values())
    if "prompt tuning, text init" in methods:  # the two initialisations compared by their paired interval
        assert any("text init" in line and "random init" in line for line in sweep["sentences"])
    assert sweep["best_soft"] is None or sweep["full_minus_best_soft"] is not None
    kinds = {row["kind"] for row in result["side_by_side"]}
    assert kinds == {"rule (no training)", "hard prompt", "trained (sweep)"}
