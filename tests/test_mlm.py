"""Masked-LM DAPT of MiniLM (notebook 05, section 7): the hand-written head against transformers, the tie, BERT's
masking against the library's collator, the head's warm-up on stored states, the unigram baseline, DAPT with the
head frozen, the cache of the adapted encoder (with its control), and the paired before/after intervals."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

import companion.lessons.n05_mlm as mlm
import companion.lessons.n05_mlm_recipe as recipe
from companion.core.data import load_medical_abstracts
from companion.core.models import count_parameters, load_model, resolve_model
from companion.engine.training import TrainConfig
from companion.lessons.n02_cross_entropy import IGNORE_INDEX
from companion.lessons.n05_mlm_eval import before_after_table, change_sentence, head_vs_unigram, masked_sentences, objectives_table, sequence_losses, token_loss, unigram_log_probs, unigram_losses


@pytest.fixture(scope="module")
def base():
    """MiniLM with a fresh head, its tokenizer, and a few medical training texts."""
    from companion.core.models import load_tokenizer

    return (mlm.MaskedLM(load_model("minilm", "encoder")), load_tokenizer("minilm"),
            list(load_medical_abstracts()["train"]["text"][:40]))


def test_head_equals_bert_for_masked_lm(base):
    model, tokenizer, texts = base
    torch.manual_seed(0)
    with torch.no_grad():
        model.head.dense.weight.normal_(0, 0.05)
        model.head.bias.normal_(0, 0.1)
    library = mlm.library_masked_lm(model, resolve_model("minilm"))
    batch = mlm.mlm_collator(tokenizer, 0.15, seed=0)(mlm.windows(tokenizer, texts[:4], 48))
    with torch.no_grad():
        ours, theirs = model.eval()(**batch), library(**batch)
    chosen = batch["labels"] != IGNORE_INDEX
    assert ours.logits.shape == (int(chosen.sum()), tokenizer.vocab_size)  # scored only where masked
    assert torch.allclose(ours.logits, theirs.logits[chosen], atol=1e-4)
    assert abs(float(ours.loss - theirs.loss)) < 1e-5


def test_decoder_is_the_word_embedding_parameter(base):
    model, _, _ = base
    embedding = model.encoder.embeddings.word_embeddings.weight
    assert model.head.decoder_weight is embedding
    own = sum(p.numel() for p in model.head.own_parameters())
    assert count_parameters(model)["total"] == count_parameters(model.encoder)["total"] + own


@pytest.mark.parametrize("seed", [0, 7])
def test_bert_masking_equals_the_library_collator(base, seed):
    """Same seed, same draws in the same order: the same inputs and labels, batch after batch."""
    from transformers import DataCollatorForLanguageModeling

    _, tokenizer, texts = base
    items = mlm.windows(tokenizer, texts + ["An unknown symbol ☃ here."], 64)
    library = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)
    ours = mlm.mlm_collator(tokenizer, 0.15, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    for batch_items in (items[:24], items[24:48]):  # the generator carries on from one batch to the next
        theirs = library([dict(i) for i in batch_items])
        mine = ours(batch_items)
        assert torch.equal(mine["input_ids"], theirs["input_ids"]) and torch.equal(mine["labels"], theirs["labels"])
        padded = tokenizer.pad([dict(i) for i in batch_items], return_tensors="pt")
        special = mlm.special_mask(padded["input_ids"], padded["attention_mask"], tokenizer)
        inputs, labels = mlm.bert_masking(padded["input_ids"], special, tokenizer.mask_token_id, len(tokenizer), 0.15,
                                          generator)
        assert torch.equal(inputs, theirs["input_ids"]) and torch.equal(labels, theirs["labels"])


def test_masking_follows_80_10_10_and_never_touches_special_tokens(base):
    _, tokenizer, texts = base
    items = mlm.windows(tokenizer, texts, 64)
    padded = tokenizer.pad(items, return_tensors="pt")
    special = mlm.special_mask(padded["input_ids"], padded["attention_mask"], tokenizer)
    inputs, labels = mlm.bert_masking(padded["input_ids"], special, tokenizer.mask_token_id, len(tokenizer), 0.15,
                                      torch.Generator().manual_seed(1))
    chosen = labels != IGNORE_INDEX
    assert not (chosen & special).any() and torch.equal(inputs[special], padded["input_ids"][special])
    assert torch.equal(labels[chosen], padded["input_ids"][chosen])
    assert torch.equal(inputs[~chosen], padded["input_ids"][~chosen])  # only chosen tokens change
    assert abs(float(chosen.sum()) / int((~special).sum()) - 0.15) < 0.02
    shown = inputs[chosen]
    assert abs(float((shown == tokenizer.mask_token_id).float().mean()) - 0.8) < 0.05
    assert abs(float((shown == labels[chosen]).float().mean()) - 0.1) < 0.04  # kept (+ the rare random hit)


def test_fixed_masks_are_fixed_and_never_empty(base):
    _, tokenizer, texts = base
    items = mlm.windows(tokenizer, texts[:10] + ["Fever."], 32)
    a, b = mlm.fixed_masks(tokenizer, items, seed=5), mlm.fixed_masks(tokenizer, items, seed=5)
    assert all(torch.equal(x["labels"], y["labels"]) and torch.equal(x["input_ids"], y["input_ids"])
               for x, y in zip(a, b))
    assert all(int((m["labels"] != IGNORE_INDEX).sum()) >= 1 for m in a)


def test_windows_read_the_whole_text(base):
    _, tokenizer, texts = base
    pieces = mlm.windows(tokenizer, texts[:3], 32)
    ids = tokenizer(texts[:3], add_special_tokens=False)["input_ids"]
    inner = [t for w in pieces for t in w["input_ids"][1:-1]]
    assert inner == [t for text in ids for t in text]  # every word piece, once, in order
    assert all(len(w["input_ids"]) <= 32 and w["input_ids"][0] == tokenizer.cls_token_id for w in pieces)


def test_unigram_baseline_on_a_hand_example():
    items = [{"input_ids": [101, 5, 5, 7, 102]}, {"input_ids": [101, 5, 9, 102]}]  # 101, 102: special
    log_probs = unigram_log_probs(items, vocab_size=12, special_ids=[101, 102])
    assert log_probs.shape == (12,)
    # counts 5: 3, 7: 1, 9: 1, plus one for each of the 12 entries: total 5 + 12 = 17
    assert float(log_probs[5]) == pytest.approx(math.log(4 / 17)) and float(log_probs[0]) == pytest.approx(math.log(1 / 17))
    masked = [{"labels": torch.tensor([IGNORE_INDEX, 5, IGNORE_INDEX, 7, IGNORE_INDEX])},
              {"labels": torch.tensor([IGNORE_INDEX, 9, IGNORE_INDEX])}]
    losses = unigram_losses(log_probs, masked)
    assert losses == pytest.approx([-(math.log(4 / 17) + math.log(2 / 17)) / 2, -math.log(2 / 17)])


def stored(tokenizer, encoder, items, seed):
    """Masked states of windows (the warm-up's data)."""
    return mlm.masked_states(encoder, mlm.fixed_masks(tokenizer, items, seed=seed))


@pytest.mark.slow
def test_warm_up_trains_the_head_alone_and_lowers_the_held_out_loss(base):
    _, tokenizer, texts = base
    model = mlm.MaskedLM(load_model("minilm", "encoder"))
    items = mlm.windows(tokenizer, texts, 32)
    train_states, val_states = stored(tokenizer, model.encoder, items[:-12], 0), stored(tokenizer, model.encoder, items[-12:], 1)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    config = TrainConfig(epochs=None, max_steps=40, batch_size=64, lr=3e-3, weight_decay=0.0, patience=None,
                         eval_every=20, eval_at_start=True, metric="loss", greater_is_better=False,
                         group_by_length=False, progress=False, mixed_precision="fp32")
    result = mlm.warm_head(model.head, train_states, val_states, config)
    held = result.history.query("split == 'validation'")
    assert list(held["step"]) == [0, 20, 40]
    assert result.best["loss"] < held["loss"].iloc[0] - 1.0  # a fresh head scores ~ln(30522) ≈ 10.3 nats
    assert result.params["trainable"] == sum(p.numel() for p in model.head.own_parameters())
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())  # the tied decoder trains again afterwards
    val_masks = mlm.fixed_masks(tokenizer, items[-12:], seed=1)  # the same masks as val_states
    assert token_loss(model, val_masks) == pytest.approx(result.best["loss"], abs=1e-3)


def test_dapt_trains_the_encoder_with_the_head_frozen(base):
    _, tokenizer, texts = base
    model = mlm.MaskedLM(load_model("minilm", "encoder"))
    head_before = {k: v.clone() for k, v in recipe.head_state(model).items()}
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    items = mlm.windows(tokenizer, texts[:8], 32)
    config = TrainConfig(epochs=None, max_steps=3, batch_size=4, lr=1e-3, patience=None, metric="loss",
                         greater_is_better=False, progress=False, mixed_precision="fp32")
    result = mlm.dapt(model, tokenizer, items, mlm.fixed_masks(tokenizer, items[:4], seed=3), config)
    assert all(torch.equal(v, head_before[k]) for k, v in recipe.head_state(model).items())  # the head's own weights
    changed = [k for k, v in model.encoder.state_dict().items() if not torch.equal(v, encoder_before[k])]
    assert "embeddings.word_embeddings.weight" in changed and len(changed) > 50  # the encoder (decoder included)
    assert model.head.decoder_weight is model.encoder.embeddings.word_embeddings.weight
    assert result.params["trainable"] == count_parameters(model.encoder)["total"]
    assert all(p.requires_grad for p in model.parameters())


def test_head_vs_unigram_table_counts_every_masked_position(base):
    model, tokenizer, texts = base
    items = mlm.windows(tokenizer, texts[:6], 32)
    masked = mlm.fixed_masks(tokenizer, items, seed=2)
    log_probs = unigram_log_probs(items, len(tokenizer), tokenizer.all_special_ids)
    table = head_vs_unigram(model, log_probs, {"medical": masked}, tokenizer.mask_token_id)
    n = sum(int((m["labels"] != IGNORE_INDEX).sum()) for m in masked)
    assert table.loc[("medical", "all"), "positions"] == n
    assert table.drop(index=("medical", "all"))["positions"].sum() == n
    per_window = unigram_losses(log_probs, masked)
    assert len(per_window) == len(masked) and len(sequence_losses(model, masked)) == len(masked)


def test_masked_sentences_hide_one_whole_word(base):
    _, tokenizer, texts = base
    pairs = masked_sentences(tokenizer, texts, 3)
    assert len(pairs) == 3
    for sentence, word in pairs:
        assert sentence.count(tokenizer.mask_token) == 1 and word in tokenizer.get_vocab() and len(word) >= 5


TINY = {"max_length": 16, "mask_prob": 0.15, "holdout_texts": 4, "head_windows": 8, "head_masks": 1,
        "head_val_windows": 4, "head_batch": 32, "head_steps": 2, "head_eval_every": 1, "head_patience": 2,
        "head_lr": 1e-3, "dapt_windows": 8, "batch_size": 2, "dapt_steps": 1, "dapt_eval_every": 1,
        "dapt_patience": 2, "dapt_lr": 1e-4, "rate_candidates": 1, "rate_extensions": 0}


@pytest.fixture
def tiny_texts(monkeypatch):
    """A tiny budget and few texts: the recipe, not its result, is tested."""
    real = recipe.adaptation_texts
    monkeypatch.setitem(recipe.BUDGETS, "smoke", dict(TINY))
    monkeypatch.setattr(recipe, "adaptation_texts", lambda *a, **k: {key: texts[:30] if key == "domain" else
                                                                      texts[:300]
                                                                      for key, texts in real(*a, **k).items()})


@pytest.mark.slow
def test_the_adapted_encoder_is_cached_with_its_control(monkeypatch, tmp_path, capsys, tiny_texts):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    builds = []
    real_build = recipe.build_adapted
    monkeypatch.setattr(recipe, "build_adapted", lambda *a, **k: (builds.append(1), real_build(*a, **k)))
    folder = recipe.adapted_minilm("smoke", progress=False)
    assert len(builds) == 1 and (folder / "fingerprint.json").exists()
    for name in (mlm.HEAD_FILE, recipe.UNIGRAM_FILE, "history.csv", "summary.json", "control/config.json"):
        assert (folder / name).exists(), name
    import json

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["control"]["steps"] == summary["dapt"]["steps"] and summary["control"]["lr"] == summary["dapt"]["lr"]
    classifier = load_model(str(folder), "classifier", num_labels=5)
    assert torch.equal(classifier.bert.embeddings.word_embeddings.weight,
                       recipe.load_masked_lm(str(folder), folder / mlm.HEAD_FILE).head.decoder_weight)
    start = time.perf_counter()
    assert recipe.adapted_minilm("smoke", progress=False) == folder
    assert len(builds) == 1 and time.perf_counter() - start < 30  # a hit: no retraining
    monkeypatch.setitem(recipe.BUDGETS, "smoke", dict(TINY, dapt_lr=2e-4))  # a changed setting
    capsys.readouterr()
    recipe.adapted_minilm("smoke", progress=False)
    assert len(builds) == 2 and "budget.dapt_lr" in capsys.readouterr().out
    real_texts = recipe.adaptation_texts
    monkeypatch.setattr(recipe, "adaptation_texts",
                        lambda *a, **k: {**real_texts(*a, **k), "domain": real_texts(*a, **k)["domain"][1:]})
    recipe.adapted_minilm("smoke", progress=False)  # changed training texts
    assert len(builds) == 3 and "domain_texts" in capsys.readouterr().out


def test_paired_intervals_on_a_toy_input():
    before = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    after = np.array([0.5, 1.8, 2.6, 3.9, 4.4])
    table = before_after_table({"medical": (before, after), "general": (before, before + np.array([0.1, -0.1, 0.2,
                                                                                                    -0.2, 0.05]))})
    diff = after - before
    half = scipy_stats.t.ppf(0.975, 4) * diff.std(ddof=1) / math.sqrt(5)
    row = table.loc["medical"]
    assert row["change"] == pytest.approx(diff.mean())
    assert (row["change_low"], row["change_high"]) == pytest.approx((diff.mean() - half, diff.mean() + half))
    assert row["change_excludes_0"] and row["ppl_before"] == pytest.approx(math.exp(3.0))
    unpaired = scipy_stats.t.ppf(0.975, 4) * before.std(ddof=1) / math.sqrt(5)
    assert row["loss_before_ci"] == pytest.approx(unpaired) and half < unpaired  # pairing removes the spread
    assert "fell" in change_sentence(table, "medical", "Medical")
    assert not table.loc["general", "change_excludes_0"]
    assert "did not change beyond noise" in change_sentence(table, "general", "General")


def test_objectives_table_names_the_four_families():
    table = objectives_table()
    assert list(table.index) == ["BERT", "GPT", "XLNet", "RoBERTa"]
    assert "permutation" in table.loc["XLNet", "objective"] and "causal" in table.loc["GPT", "objective"]


def test_an_unknown_profile_is_one_course_error_before_any_work(monkeypatch):
    from companion.core.errors import CourseError

    monkeypatch.delenv("COURSE_FORCE_PROFILE", raising=False)  # make test forces smoke for the notebooks
    with pytest.raises(CourseError, match="unknown profile"):
        recipe.adapted_minilm("huge")
