"""The training loop: it runs, records history and costs, repeats exactly with a seed, stops early."""
from __future__ import annotations

import pytest
import torch
from datasets import DatasetDict

from companion import load_model, load_tokenizer
from companion.engine.batches import LengthGroupedBatches, padding_collator, tokenize_dataset
from companion.engine.training import TrainConfig, linear_warmup_decay, train


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_balanced_class_weights_are_the_weighted_cross_entropy(tiny):
    """class_weights="balanced": each example's loss weighted by n / (classes × n_c), as a weighted mean."""
    from companion.engine.training import class_weights, weighted_loss

    weights = class_weights([0, 0, 0, 1], 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])  # an absent class weighs 0
    logits, labels = torch.randn(4, 3), torch.tensor([0, 0, 0, 1])
    per_example = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    by_hand = (weights[labels] * per_example).sum() / weights[labels].sum()
    assert float(weighted_loss(logits, labels, weights)) == pytest.approx(float(by_hand), rel=1e-6)
    plain, weighted = _run(tiny, class_weights="none", seed=2), _run(tiny, class_weights="balanced", seed=2)
    assert plain.history["loss"].tolist() != weighted.history["loss"].tolist()
    with pytest.raises(Exception, match="unknown class_weights"):
        _run(tiny, class_weights="inverse")


@pytest.mark.slow
def test_patience_waits_for_the_plateau_to_be_left(tiny):
    """A run whose best score never rises above the plateau (here: unreachable) is not stopped early."""
    stuck = _run(tiny, epochs=4, patience=1, lr=0.0, plateau=1.01)
    assert stuck.epochs_run == 4 and not stuck.stopped_early and stuck.left_plateau is False
    stopped = _run(tiny, epochs=4, patience=1, lr=0.0, plateau=-1.0)
    assert stopped.epochs_run == 2 and stopped.stopped_early and stopped.left_plateau is True


def test_epochs_none_means_enough_for_the_step_budget(tiny):
    result = _run(tiny, epochs=None, max_steps=7, patience=None)  # 3 steps per epoch: 3 epochs, cut at step 7
    assert result.steps == 7 and result.epochs_run == 3 and result.max_steps == 7 and not result.stopped_early
    with pytest.raises(Exception, match="needs epochs or max_steps"):
        _run(tiny, epochs=None)


def test_a_non_finite_loss_stops_training_naming_the_step_and_the_rate(tiny):
    from companion.core.errors import CourseError

    with pytest.raises(CourseError, match=r"at step 2 \(learning rate [0-9.e+]+ at that step, peak 1e\+30\)"):
        _run(tiny, lr=1e30, max_grad_norm=0.0, epochs=3)


def test_custom_evaluation_every_few_steps(tiny):
    data, collate = tiny
    calls = []

    def score(model) -> dict[str, float]:
        calls.append(model.training)
        return {"perplexity": 10.0 - len(calls)}  # lower is better, and it improves every time

    torch.manual_seed(0)
    model = load_model("minilm", "classifier", num_labels=5)
    config = TrainConfig(epochs=3, batch_size=8, lr=1e-4, progress=False, log_every=1, eval_every=4,
                         eval_at_start=True, metric="perplexity", greater_is_better=False, restore_best=False)
    result = train(model, data["train"], None, collate, config, evaluate_fn=score)
    val = result.history[result.history["split"] == "validation"]
    assert val["step"].tolist() == [0, 4, 8, 9] and calls == [False] * 4  # evaluated in eval mode
    assert result.best["perplexity"] == 6.0 and result.examples == 3 * 24 and not model.training


def test_best_tracker_keeps_the_best_and_counts_stale_evaluations():
    from companion.engine.training import BestTracker

    model = torch.nn.Linear(2, 1)
    tracker = BestTracker("loss", greater_is_better=False)
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.2], start=1):
        tracker.update({"loss": loss}, epoch, model)
    assert tracker.scores == {"loss": 2.0} and tracker.epoch == 2 and tracker.stale == 2
    assert set(tracker.state) == {"weight", "bias"}
    tracker.update({"other": 1.0}, 5, model)  # without the metric: ignored
    assert tracker.stale == 2


def test_overfit_epoch_check():
    from companion.checks.n06 import check_overfit_epoch

    losses = [1.5, 1.2, 1.1, 1.3, 1.6, 1.9, 2.0, 2.2]  # lowest after epoch 3
    assert check_overfit_epoch(4, losses) and not check_overfit_epoch(1, losses)  # one seed: ±1
    assert check_overfit_epoch(1, losses, [3, 5, 2]) and check_overfit_epoch(6, losses, [3, 5, 2])  # spread 3: ±3
    assert not check_overfit_epoch(7, losses, [3, 5, 2]) and not check_overfit_epoch(None, losses, [3])
