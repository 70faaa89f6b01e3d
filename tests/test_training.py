"""The training loop: it runs, records history and costs, repeats exactly with a seed, stops early."""
from __future__ import annotations

import pytest
import torch
from datasets import DatasetDict

from companion import load_model, load_tokenizer
from companion.training import (LengthGroupedBatches, TrainConfig, linear_warmup_decay, padding_collator,
                                tokenize_dataset, train)


@pytest.fixture(scope="module")
def tiny(medical):
    """24 / 16 examples, 24 tokens: a run takes seconds."""
    tokenizer = load_tokenizer("minilm")
    small = DatasetDict({"train": medical["train"].select(range(24)), "validation": medical["validation"].select(range(16))})
    return tokenize_dataset(small, tokenizer, max_length=24), padding_collator(tokenizer)


def _run(tiny, **kw):
    data, collate = tiny
    torch.manual_seed(0)
    model = load_model("minilm", "classifier", num_labels=5)
    config = TrainConfig(**{"epochs": 2, "batch_size": 8, "lr": 1e-4, "progress": False, "log_every": 1, **kw})
    return train(model, data["train"], data["validation"], collate, config)


def test_loop_runs_and_measures(tiny):
    result = _run(tiny)
    hist = result.history
    assert set(hist["split"]) == {"train", "validation"}
    assert (hist["split"] == "validation").sum() == 2 and result.steps == 6
    assert {"loss", "accuracy", "macro_f1"} <= set(hist.columns)
    assert result.params["trainable"] == result.params["total"] > 22_000_000
    assert result.samples_per_s > 0 and result.peak_memory_mb > 100 and result.seconds >= result.train_seconds
    assert 0 <= result.best["macro_f1"] <= 1 and result.best_epoch in (1, 2)


def test_seeded_runs_repeat_exactly(tiny):
    a, b = _run(tiny, seed=3), _run(tiny, seed=3)
    assert a.history["loss"].tolist() == b.history["loss"].tolist()
    assert a.best == b.best


def test_early_stopping_without_improvement(tiny):
    result = _run(tiny, epochs=5, patience=1, lr=0.0)  # lr 0: validation never improves
    assert result.epochs_run == 2


def test_length_grouped_batches_cover_each_index_once():
    lengths = [5, 50, 7, 48, 6, 49, 8, 47, 9, 46]
    sampler = LengthGroupedBatches(lengths, batch_size=2, seed=1, mega=5)
    first = sampler.batches()
    assert sorted(i for b in first for i in b) == list(range(10)) and len(sampler) == 5
    sampler.set_epoch(1)
    assert sampler.batches() != first  # a new order each epoch ...
    sampler.set_epoch(0)
    assert sampler.batches() == first  # ... that repeats with the seed
    spread = sum(abs(lengths[b[0]] - lengths[b[-1]]) for b in first)
    assert spread < sum(abs(lengths[2 * i] - lengths[2 * i + 1]) for i in range(5))  # less padding


def test_warmup_then_linear_decay():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = linear_warmup_decay(opt, warmup_steps=2, total_steps=6)
    rates = []
    for _ in range(6):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([0.0, 0.5, 1.0, 0.75, 0.5, 0.25])
