"""Masked-LM DAPT of MiniLM (notebook 05, section 7): the hand-written head against transformers, the tie, the
masking, the warm-up, the cache of the adapted encoder, and the paired before/after intervals."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

import companion.lessons.n05_mlm as mlm
from companion.lessons.n02_cross_entropy import IGNORE_INDEX
from companion.core.data import load_medical_abstracts
from companion.lessons.n05_mlm_eval import before_after_table, change_sentence, collator_mask_rate, fixed_masks, objectives_table, token_loss
from companion.core.models import count_parameters, load_model, resolve_model


@pytest.fixture(scope="module")
def base():
    """MiniLM with a fresh head, its tokenizer, and a few medical training texts."""
    model, tokenizer = mlm.base_masked_lm("minilm")
    return model, tokenizer, list(load_medical_abstracts()["train"]["text"][:40])


def test_head_equals_bert_for_masked_lm(base):
    model, tokenizer, texts = base
    torch.manual_seed(0)
    with torch.no_grad():
        model.head.dense.weight.normal_(0, 0.05)
        model.head.bias.normal_(0, 0.1)
    library = mlm.library_masked_lm(model, resolve_model("minilm"))
    batch = mlm.mlm_collator(tokenizer, 0.15, seed=0)(mlm.encode_texts(tokenizer, texts[:4], 48))
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
    own = sum(p.numel() for n, p in model.head.named_parameters(remove_duplicate=False) if n != "decoder_weight")
    assert count_parameters(model)["total"] == count_parameters(model.encoder)["total"] + own


def test_masking_rate_and_ignored_labels(base):
    _, tokenizer, texts = base
    items = mlm.encode_texts(tokenizer, texts, 64)
    batch = mlm.mlm_collator(tokenizer, 0.15, seed=1)(items)
    padded = tokenizer.pad(items, return_tensors="pt")
    special = mlm.special_mask(padded["input_ids"], padded["attention_mask"], tokenizer)
    chosen = batch["labels"] != IGNORE_INDEX
    assert not (chosen & special).any()  # never [CLS], [SEP] or padding
    assert (batch["input_ids"][chosen] == tokenizer.mask_token_id).all()
    assert torch.equal(batch["labels"][chosen], padded["input_ids"][chosen])
    assert torch.equal(batch["input_ids"][~chosen], padded["input_ids"][~chosen])
    rate = float(chosen.sum()) / int((~special).sum())
    assert abs(rate - 0.15) < 0.03
    rates = collator_mask_rate(tokenizer, texts, 64, seed=3)
    assert abs(rates["ours"] - rates["collator"]) < 0.02 and abs(rates["collator_mask_share"] - 0.8) < 0.08


def test_fixed_masks_are_fixed_and_never_empty(base):
    _, tokenizer, texts = base
    chosen = texts[:10] + ["Fever."]
    a, b = fixed_masks(tokenizer, chosen, 32, seed=5), fixed_masks(tokenizer, chosen, 32, seed=5)
    assert all(torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b))
    assert all(int((m["labels"] != IGNORE_INDEX).sum()) >= 1 for m in a)


def test_warm_up_lowers_the_loss_and_keeps_the_encoder(base):
    _, tokenizer, texts = base
    model = mlm.MaskedLM(load_model("minilm", "encoder"))
    masks = fixed_masks(tokenizer, texts[:16], 32, seed=0)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    loss_before = token_loss(model, masks)
    result = mlm.train_mlm(model, tokenizer, texts[:16], steps=8, batch_size=4, lr=3e-3, max_length=32,
                           head_only=True, progress=False)
    assert result.params["trainable"] == sum(p.numel() for n, p in model.head.named_parameters()
                                             if n != "decoder_weight")
    assert token_loss(model, masks) < loss_before - 0.2
    assert all(torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())  # unfrozen again afterwards


def test_cache_hit_and_stale_rebuild(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    tiny = {"warm_steps": 1, "dapt_steps": 1, "batch_size": 2, "max_length": 16, "warm_lr": 1e-3, "lr": 1e-4,
            "warm_texts": 4, "train_texts": 4, "mask_prob": 0.15}
    monkeypatch.setitem(mlm.BUDGETS, "smoke", dict(tiny))
    builds = []
    real_build = mlm.build_adapted
    monkeypatch.setattr(mlm, "build_adapted", lambda *a, **k: (builds.append(1), real_build(*a, **k)))
    folder = mlm.adapted_minilm("smoke", progress=False)
    assert len(builds) == 1 and (folder / "fingerprint.json").exists() and (folder / mlm.HEAD_FILE).exists()
    classifier = load_model(str(folder), "classifier", num_labels=5)
    assert torch.equal(classifier.bert.embeddings.word_embeddings.weight,
                       mlm.load_masked_lm(str(folder), folder / mlm.HEAD_FILE).head.decoder_weight)
    start = time.perf_counter()
    assert mlm.adapted_minilm("smoke", progress=False) == folder
    assert len(builds) == 1 and time.perf_counter() - start < 30  # a hit: no retraining
    monkeypatch.setitem(mlm.BUDGETS, "smoke", dict(tiny, lr=2e-4))  # a changed setting
    capsys.readouterr()
    mlm.adapted_minilm("smoke", progress=False)
    assert len(builds) == 2 and "stale" in capsys.readouterr().out
    real_texts = mlm.adaptation_texts
    monkeypatch.setattr(mlm, "adaptation_texts", lambda *a, **k: (real_texts(*a, **k)[0], ["Other text."] * 4))
    mlm.adapted_minilm("smoke", progress=False)  # changed training texts
    assert len(builds) == 3 and "train_texts" in capsys.readouterr().out


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
        mlm.adapted_minilm("huge")
