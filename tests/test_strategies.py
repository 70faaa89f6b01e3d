"""Layered strategies: which parameters get gradients, discriminative LR groups, gradual unfreezing, the cache;
the strategy table: every entry prepares a real MiniLM classifier with the expected parameters trainable."""
from __future__ import annotations

import pytest
import torch
from datasets import DatasetDict

from companion import CourseError, count_parameters, load_model, load_tokenizer
from companion.engine.strategies import STRATEGIES, prepare_strategy
from companion.engine.finetune import make_task, run_strategy
from companion.engine.layered import (UpperStack, cache_lower_features, collate_features, discriminative_groups,
                                      freeze_lower, gradual_unfreezing, model_parts, parameter_shares, trainable_parts)
from companion.engine.training import TrainConfig
from companion.engine.batches import padding_collator, tokenize_dataset

D, LAYERS, LABELS, TOKENS, RANK, MLP = 384, 6, 5, 4, 4, 128  # MiniLM's width and depth; the options below
HEAD = D * LABELS + LABELS  # the new classifier (peft trains it too)
POOLER = D * D + D


def _sizes(model, *parts):
    """Parameters of some of the model's parts (model_parts names)."""
    return sum(p.numel() for name in parts for p in model_parts(model)[name].parameters())


# strategy → (options, trainable parameters derived by hand from the fresh model)
EXPECTED = {
    "full": ({}, lambda m: count_parameters(m)["total"]),
    "freeze": ({"k": 2}, lambda m: _sizes(m, "layer_2", "layer_3", "layer_4", "layer_5", "head")),
    "head_only": ({}, lambda m: POOLER + HEAD),
    "gradual": ({}, lambda m: POOLER + HEAD),  # epoch 0 trains the head; the hook thaws the rest later
    "discriminative": ({"decay": 2.6}, lambda m: count_parameters(m)["total"]),
    "ulmfit": ({}, lambda m: POOLER + HEAD),
    "prompt_tuning": ({"num_virtual_tokens": TOKENS}, lambda m: TOKENS * D + HEAD),
    "prompt_tuning_text": ({"num_virtual_tokens": TOKENS}, lambda m: TOKENS * D + HEAD),
    "p_tuning": ({"num_virtual_tokens": TOKENS},  # the table + the MLP D → 128 → 128 → D that writes it
                 lambda m: TOKENS * D + (D * MLP + MLP) + (MLP * MLP + MLP) + (MLP * D + D) + HEAD),
    "prefix_tuning": ({"num_virtual_tokens": TOKENS}, lambda m: TOKENS * LAYERS * 2 * D + HEAD),  # keys + values
    "lora": ({"r": RANK}, lambda m: LAYERS * 2 * (D * RANK + RANK * D) + HEAD),  # A and B on query and value
}


@pytest.fixture()
def classifier():
    return load_model("minilm", "classifier", num_labels=5)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


def test_parameter_shares_add_up(classifier):
    table = parameter_shares(classifier)
    assert list(table["part"]) == ["embeddings"] + [f"layer_{i}" for i in range(6)] + ["head"]
    assert table["params"].sum() == count_parameters(classifier)["total"]
    assert table["share_pct"].sum() == pytest.approx(100.0)


def test_freeze_lower_k_only_upper_parameters_get_gradients(classifier, tokenizer):
    freeze_lower(classifier, 2)
    batch = tokenizer(["a heart attack", "a brain tumour was removed"], padding=True, return_tensors="pt")
    classifier(**batch, labels=torch.tensor([3, 0])).loss.backward()
    for name, p in classifier.named_parameters():
        lower = "embeddings" in name or ".layer.0." in name or ".layer.1." in name
        assert (p.grad is None) == lower, name
    assert trainable_parts(classifier) == ["layer_2", "layer_3", "layer_4", "layer_5", "head"]
    with pytest.raises(CourseError):
        freeze_lower(classifier, 7)


def test_freeze_zero_is_full_fine_tuning(classifier):
    freeze_lower(classifier, 0)
    assert count_parameters(classifier)["trainable_pct"] == 100.0


def test_discriminative_learning_rates_decay_by_2_6(classifier):
    groups = discriminative_groups(classifier, lr=1e-3)
    rates = {g["name"].split("/")[0]: g["lr"] for g in groups}
    assert rates["head"] == pytest.approx(1e-3)
    assert rates["layer_5"] == pytest.approx(1e-3 / 2.6)
    assert rates["layer_0"] == pytest.approx(1e-3 / 2.6 ** 6)
    assert rates["embeddings"] == pytest.approx(1e-3 / 2.6 ** 7)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(classifier.parameters()))
    assert all(g["weight_decay"] == 0.0 for g in groups if g["name"].endswith("/no_decay"))


def test_gradual_unfreezing_thaws_one_layer_per_epoch_top_down(classifier):
    hook = gradual_unfreezing(classifier)
    hook(0, classifier)
    assert trainable_parts(classifier) == ["head"]
    hook(1, classifier)
    assert trainable_parts(classifier) == ["layer_5", "head"]
    hook(2, classifier)
    assert trainable_parts(classifier) == ["layer_4", "layer_5", "head"]


def test_upper_stack_on_cached_features_equals_the_model(classifier, tokenizer, medical):
    data = tokenize_dataset(medical["validation"].select(range(6)), tokenizer, max_length=40)
    collate = padding_collator(tokenizer)
    features = cache_lower_features(classifier, data, collate, k=3)
    batch = collate([data[i] for i in range(6)])
    with torch.no_grad():
        full = classifier.eval()(**batch).logits
        cached = UpperStack(classifier, 3).eval()(**collate_features(features)).logits
    assert torch.allclose(full, cached, atol=1e-5)


def test_the_table_lists_every_strategy():
    assert set(STRATEGIES) == set(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_strategy_prepares_a_real_classifier(name, tokenizer):
    options, trainable = EXPECTED[name]
    torch.manual_seed(0)
    fresh = load_model("minilm", "classifier", num_labels=LABELS)
    expected = trainable(fresh)
    prepared = prepare_strategy(name, fresh, **options)
    assert count_parameters(prepared.model)["trainable"] == expected
    batch = tokenizer(["a heart attack", "a brain tumour was removed"], padding=True, return_tensors="pt")
    prepared.model(**batch, labels=torch.tensor([3, 0])).loss.backward()
    assert all(p.grad is not None for p in prepared.model.parameters() if p.requires_grad), name
    assert all(p.grad is None for p in prepared.model.parameters() if not p.requires_grad), name


def test_prepared_strategies_tell_training_what_it_needs(classifier):
    freeze = prepare_strategy("freeze", classifier, k=3)
    assert freeze.frozen == 3 and freeze.groups(1e-3, 0.01) is None and freeze.hook is None
    ulmfit = prepare_strategy("ulmfit", load_model("minilm", "classifier", num_labels=5), decay=2.0)
    rates = {g["name"].split("/")[0]: g["lr"] for g in ulmfit.groups(1e-3, 0.01)}
    assert rates["layer_5"] == pytest.approx(5e-4) and ulmfit.hook is not None
    assert sum(p.numel() for g in ulmfit.groups(1e-3, 0.01) for p in g["params"]) == count_parameters(
        ulmfit.model)["total"]  # the frozen layers are in the optimiser: they thaw later


def test_unknown_strategy_or_option_is_one_clear_error(classifier):
    with pytest.raises(CourseError, match="unknown strategy 'adapters': use one of full, freeze, .*lora"):
        prepare_strategy("adapters", classifier)
    with pytest.raises(CourseError, match="unknown strategy option kk: the strategies take .*k, .*r"):
        prepare_strategy("freeze", classifier, kk=3)
    full = prepare_strategy("full", classifier, k=3, r=4)  # options of other strategies are ignored
    assert count_parameters(full.model)["trainable_pct"] == 100.0


def test_cached_training_equals_uncached(medical):
    small = DatasetDict({"train": medical["train"].select(range(24)), "validation": medical["validation"].select(range(12)),
                         "test": medical["test"].select(range(12))})
    task = make_task(small, "minilm", max_length=24)
    config = TrainConfig(epochs=2, batch_size=8, lr=1e-3, progress=False, seed=1)
    cached = run_strategy("freeze", task, config, use_cache=True, k=4)
    plain = run_strategy("freeze", task, config, use_cache=False, k=4)
    assert cached["cached"] and not plain["cached"]
    assert cached["trainable"] == plain["trainable"]
    for a, b in zip(cached["history"], plain["history"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    assert cached["macro_f1"] == pytest.approx(plain["macro_f1"])
