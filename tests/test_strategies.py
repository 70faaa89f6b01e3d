"""Layered strategies: which parameters get gradients, discriminative LR groups, gradual unfreezing, the cache."""
from __future__ import annotations

import pytest
import torch
from datasets import DatasetDict

from companion import CourseError, count_parameters, load_model, load_tokenizer
from companion.finetune import run_strategy
from companion.strategies import (UpperStack, cache_lower_features, collate_features, discriminative_groups,
                                  freeze_lower, gradual_unfreezing, parameter_shares, trainable_parts)
from companion.training import padding_collator, tokenize_dataset


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


def test_cached_training_equals_uncached(medical):
    small = DatasetDict({"train": medical["train"].select(range(24)), "validation": medical["validation"].select(range(12)),
                         "test": medical["test"].select(range(12))})
    kw = dict(k=4, epochs=2, batch_size=8, max_length=24, lr=1e-3, progress=False, seed=1)
    cached = run_strategy("freeze", small, use_cache=True, **kw)
    plain = run_strategy("freeze", small, use_cache=False, **kw)
    assert cached["cached"] and not plain["cached"]
    assert cached["trainable"] == plain["trainable"]
    for a, b in zip(cached["history"], plain["history"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
    assert cached["macro_f1"] == pytest.approx(plain["macro_f1"])
