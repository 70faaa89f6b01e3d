"""Continued pretraining (notebook 05) on the real SmolLM2: blocks, replay, perplexity, freezing, the loop, saving."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from companion.lessons.n05_adaptation import CausalDapt, blocks_perplexity, causal_dapt, continued_pretraining, embedding_change, embeddings_tied, replay_mix, set_trainable, step_times, token_blocks
from companion.checks.n05 import check_embedding_params, check_forgetting_pct, check_replay_blocks
from companion.core.errors import CourseError

TEXTS = ["Chronic obstructive pulmonary disease is a common cause of dyspnea in older patients.",
         "Coronary artery bypass grafting improved survival in patients with left main disease.",
         "The tumor was resected and the patient received adjuvant chemotherapy for six months."]


def test_token_blocks_concatenate_with_eos(smollm2):
    _, tokenizer = smollm2
    blocks = token_blocks(tokenizer, TEXTS, block_size=8)
    stream = sum((tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in TEXTS), [])
    assert blocks.shape == (len(stream) // 8, 8)
    assert blocks.flatten().tolist() == stream[: blocks.numel()]
    assert token_blocks(tokenizer, TEXTS, 8, max_blocks=2).shape == (2, 8)
    with pytest.raises(CourseError):
        token_blocks(tokenizer, ["short"], block_size=64)


def test_replay_mix_keeps_length_and_fraction():
    domain, general = torch.zeros(20, 4, dtype=torch.long), torch.ones(7, 4, dtype=torch.long)
    mixed = replay_mix(domain, general, 0.25, seed=0)
    assert mixed.shape == domain.shape and int(mixed[:, 0].sum()) == 5
    assert torch.equal(mixed, replay_mix(domain, general, 0.25, seed=0))
    assert int(replay_mix(domain, general, 1.0)[:, 0].sum()) == 20  # more than the pool: it cycles
    with pytest.raises(CourseError):
        replay_mix(domain, general, 1.5)


def test_blocks_perplexity_is_exp_of_model_loss(smollm2):
    model, tokenizer = smollm2
    blocks = token_blocks(tokenizer, TEXTS, block_size=16)
    with torch.no_grad():
        own = math.exp(model(input_ids=blocks, labels=blocks).loss.item())
    assert blocks_perplexity(model, blocks, batch_size=1) == pytest.approx(own, rel=1e-4)


def test_embedding_only_trains_the_tied_matrix(smollm2):
    model = copy.deepcopy(smollm2[0])
    assert embeddings_tied(model)
    counts = set_trainable(model, "embeddings")
    assert counts["trainable"] == model.config.vocab_size * model.config.hidden_size
    assert set_trainable(model, "full")["trainable"] == counts["total"]
    with pytest.raises(CourseError):
        set_trainable(model, "layers")


def lm_config(steps: int, lr: float, batch_size: int = 2, eval_every: int | None = None, **more):
    """A step budget for the tests (through CausalDapt, as the notebook builds it)."""
    settings = CausalDapt(batch_size=batch_size, max_steps=steps, eval_every=eval_every or steps, patience=None)
    config = settings.train_config(lr, steps=None if eval_every else steps, progress=False)
    for key, value in more.items():
        setattr(config, key, value)
    return config


@pytest.mark.slow
def test_continued_pretraining_lowers_the_held_out_loss_and_repeats(smollm2):
    base, tokenizer = smollm2
    blocks = token_blocks(tokenizer, TEXTS, block_size=16)[:2]
    runs = []
    for _ in range(2):
        model = copy.deepcopy(base)
        runs.append(continued_pretraining(model, blocks, {"held_out": blocks}, lm_config(3, 5e-4, eval_every=3)))
    result = runs[0]
    assert list(result.history["step"]) == [1, 2, 3] and list(result.evals["step"]) == [0, 3]
    assert result.perplexity("held_out") < 0.8 * result.perplexity("held_out", step=0)
    assert result.evals["perplexity"].tolist() == pytest.approx(result.evals["loss"].map(math.exp).tolist())
    assert result.best_step == 3 and not result.stopped_early
    assert result.tokens_seen == 3 * 2 * 16 and result.seconds > 0 and result.peak_memory_mb > 0
    assert runs[0].history["loss"].tolist() == runs[1].history["loss"].tolist()  # CPU runs repeat exactly
    assert all(p.requires_grad for p in model.parameters()) and not model.training
    with pytest.raises(CourseError):
        result.perplexity("nope")


def test_embedding_only_run_changes_only_embeddings(smollm2):
    base, tokenizer = smollm2
    model = copy.deepcopy(base)
    blocks = token_blocks(tokenizer, TEXTS, block_size=16)[:2]
    emb_before = model.get_input_embeddings().weight.detach().clone()
    layer_before = model.model.layers[0].mlp.up_proj.weight.detach().clone()
    result = continued_pretraining(model, blocks, {}, lm_config(2, 1e-3), mode="embeddings")
    assert torch.equal(model.model.layers[0].mlp.up_proj.weight, layer_before)
    moved = embedding_change(emb_before, model)
    assert moved["relative_change"] > 0 and 0 < moved["rows_changed_share"] <= 1
    assert result.params["trainable"] == emb_before.numel()


@pytest.mark.slow
def test_step_times_measures_both_modes_in_turn(smollm2):
    base, tokenizer = smollm2
    blocks = token_blocks(tokenizer, TEXTS, block_size=16)[:2]
    before = {k: v.clone() for k, v in base.state_dict().items()}
    times = step_times(base, blocks, lm_config(1, 1e-3), rounds=2)
    assert list(times["mode"]) == ["full", "embeddings", "embeddings", "full"]  # alternating order
    assert (times["seconds_per_step"] > 0).all() and (times["steps"] == 1).all()
    assert times.groupby("mode")["trainable"].first()["embeddings"] < times.groupby("mode")["trainable"].first()["full"]
    assert all(torch.equal(v, before[k]) for k, v in base.state_dict().items())  # trained copies, not the model


def test_a_search_run_and_a_final_run_get_their_settings_from_one_object():
    settings = causal_dapt("smoke", max_steps=7, lr=1e-3)
    assert isinstance(settings, CausalDapt) and settings.max_steps == 7 and settings.lr == 1e-3
    search = settings.train_config(settings.lr, seed=3, precision="bf16")
    assert search.epochs is None and search.max_steps == 7 and search.eval_every == settings.eval_every
    assert search.patience == settings.patience and search.restore_best and search.eval_at_start
    assert search.metric == "held_out" and not search.greater_is_better and search.mixed_precision == "bf16"
    final = settings.train_config(settings.lr, steps=4)
    assert final.max_steps == 4 and final.patience is None and final.eval_every is None and not final.restore_best
    assert CausalDapt.from_row({**settings.__dict__, "aug_seeds": [0, 1]}) == settings
    with pytest.raises(CourseError, match="unknown setting"):
        causal_dapt("smoke", epochs=3)


def test_exercise_checks(smollm2):
    model = smollm2[0]
    assert check_forgetting_pct(25.0, 20.0, 25.0)
    assert not check_forgetting_pct(5.0, 20.0, 25.0)
    assert check_embedding_params(model.config.vocab_size * model.config.hidden_size, model)
    assert not check_embedding_params(2 * model.config.vocab_size * model.config.hidden_size, model)
    assert check_replay_blocks(40, 100, 0.4)


@pytest.mark.slow
def test_causal_lm_batches_go_through_the_one_training_engine(smollm2, monkeypatch):
    import companion.lessons.n05_adaptation as adaptation
    from companion.lessons.n05_adaptation import causal_lm_batch

    blocks = torch.arange(12).view(3, 4)
    batch = causal_lm_batch(list(blocks[:2]))
    assert torch.equal(batch["input_ids"], blocks[:2]) and batch["labels"] is batch["input_ids"]
    calls = []
    real_train = adaptation.train
    monkeypatch.setattr(adaptation, "train", lambda *a, **k: calls.append(a[3]) or real_train(*a, **k))
    base, tokenizer = smollm2
    model = copy.deepcopy(base)
    data = token_blocks(tokenizer, TEXTS, block_size=16)[:2]
    result = continued_pretraining(model, data, {"held_out": data}, lm_config(3, 1e-4, batch_size=1, eval_every=2))
    assert calls == [causal_lm_batch]  # continued pretraining is companion.engine.training.train, fed causal-LM batches
    assert list(result.evals["step"]) == [0, 2, 3] and 0 < result.train_seconds <= result.seconds
    assert result.config["max_steps"] == 3 and result.history["step"].max() == 3  # epochs=None: enough epochs


def test_step_flops_ratio_check():
    from companion.checks.n05 import check_step_flops_ratio

    assert check_step_flops_ratio(0.74, 3.04e11, 4.13e11) and check_step_flops_ratio(0.7, 3.04e11, 4.13e11)
    assert not check_step_flops_ratio(0.5, 3.04e11, 4.13e11) and not check_step_flops_ratio(1.0, 3.04e11, 4.13e11)
    assert not check_step_flops_ratio(None, 3.04e11, 4.13e11)