"""The "write the mechanism" exercises of notebooks 01–04 and 06–08: each check runs the learner's function on fresh inputs
against the library and says correct for a right function, not yet for a deliberately wrong one (with a hint that
names the difference), pending for `None` or a function whose body still returns None."""
from __future__ import annotations

import math

import pytest
import torch

from companion.checks.n01 import check_log_prob_function
from companion.checks.n02 import check_masked_ce_function, fresh_ce_inputs
from companion.checks.n03 import check_causal_attention_function
from companion.checks.n04 import check_tokens_per_word_function
from companion.checks.n05 import check_whole_word_function, fresh_batches
from companion.checks.n06 import check_weighted_ce_function, fresh_weighted_ce_inputs
from companion.checks.n07 import check_freeze_lowest_function, fresh_classifiers
from companion.checks.n08 import check_lora_forward_function, fresh_lora_inputs
from companion.lessons.n01_lm_probability import encode_with_start


# --- 01: the log-probability of a sentence, token by token --------------------------------------------------------

def log_prob_right(model, tokenizer, text):
    ids = encode_with_start(tokenizer, text)
    with torch.no_grad():
        log_p = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    return float(log_p[torch.arange(ids.shape[1] - 1), ids[0, 1:]].sum())


def log_prob_no_shift(model, tokenizer, text):
    """Wrong: reads position t's distribution at token t itself (the classic missing shift)."""
    ids = encode_with_start(tokenizer, text)
    with torch.no_grad():
        log_p = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return float(log_p[torch.arange(ids.shape[1]), ids[0]].sum())


def log_prob_mean(model, tokenizer, text):
    """Wrong: the mean log-probability (minus the loss), not the sum."""
    return log_prob_right(model, tokenizer, text) / (encode_with_start(tokenizer, text).shape[1] - 1)


def test_log_prob_function(smollm2, capsys):
    model, tok = smollm2
    assert check_log_prob_function(log_prob_right, model, tok).status == "correct"
    assert check_log_prob_function(log_prob_no_shift, model, tok).status == "not_yet"
    assert check_log_prob_function(log_prob_mean, model, tok).status == "not_yet"
    assert "the model's loss gives" in capsys.readouterr().out
    assert check_log_prob_function(None, model, tok).status == "pending"
    assert check_log_prob_function(lambda m, t, x: None, model, tok).status == "pending"
    broken = check_log_prob_function(lambda m, t, x: 1 / 0, model, tok)
    assert broken.status == "not_yet" and "ZeroDivisionError" in broken.message


# --- 02: masked cross-entropy with ignore-index ------------------------------------------------------------------

def masked_ce_right(logits, labels):
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    keep = labels != -100
    return -torch.log_softmax(logits[keep], -1)[torch.arange(int(keep.sum())), labels[keep]].mean()


def masked_ce_counts_ignored(logits, labels):
    """Wrong: ignored positions count as zero loss in the mean."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    nll = -torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[:, None])[:, 0]
    return (nll * (labels != -100)).mean()


def masked_ce_unstable(logits, labels):
    """Wrong for large logits: log(softmax) as written, which overflows."""
    logits, labels = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
    keep = labels != -100
    p = torch.exp(logits[keep]) / torch.exp(logits[keep]).sum(-1, keepdim=True)
    return -torch.log(p[torch.arange(int(keep.sum())), labels[keep]]).mean()


def test_masked_ce_function(capsys):
    assert check_masked_ce_function(masked_ce_right).status == "correct"
    assert check_masked_ce_function(masked_ce_counts_ignored).status == "not_yet"
    assert check_masked_ce_function(masked_ce_unstable).status == "not_yet"
    assert "scale" in capsys.readouterr().out  # the hint names the case that failed
    assert check_masked_ce_function(None).status == "pending"
    assert check_masked_ce_function(lambda z, y: None).status == "pending"


def test_fresh_ce_inputs_cover_the_traps():
    cases = fresh_ce_inputs()
    assert all((labels != -100).any() for _, labels in cases)
    assert any((labels == -100).float().mean() > 0.9 for _, labels in cases)  # nearly everything ignored
    assert any(logits.abs().max() > 89 for logits, _ in cases)  # exp() overflows in float32
    assert len({logits.dim() for logits, _ in cases}) > 1


# --- 03: causal attention ------------------------------------------------------------------------------------------

def causal_right(q, k, v):
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf")), -1) @ v


def causal_upper(q, k, v):
    """Wrong: the mask transposed (each query sees the future, not the past)."""
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).triu(), float("-inf")), -1) @ v


def causal_unscaled(q, k, v):
    """Wrong: no 1/√d_k."""
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1)
    return torch.softmax(scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf")), -1) @ v


def test_causal_attention_function():
    assert check_causal_attention_function(causal_right).status == "correct"
    assert check_causal_attention_function(lambda q, k, v: (causal_right(q, k, v), None)).status == "correct"
    for wrong in (causal_upper, causal_unscaled, lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v)):
        assert check_causal_attention_function(wrong).status == "not_yet"
    assert check_causal_attention_function(lambda q, k, v: v[..., :1]).status == "not_yet"  # wrong shape
    assert check_causal_attention_function(None).status == "pending"
    assert check_causal_attention_function(lambda q, k, v: None).status == "pending"


# --- 04: tokens per word -------------------------------------------------------------------------------------------

def tpw_right(tokenizer, texts):
    return (sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
            / sum(len(t.split()) for t in texts))


def tpw_mean_of_ratios(tokenizer, texts):
    """Wrong: the average of per-text ratios (a one-word text weighs as much as a paragraph)."""
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) / len(t.split()) for t in texts) / len(texts)


def tpw_with_special(tokenizer, texts):
    """Wrong: counts [CLS] and [SEP] (MiniLM adds them by default)."""
    return sum(len(tokenizer(t)["input_ids"]) for t in texts) / sum(len(t.split()) for t in texts)


@pytest.fixture(scope="module")
def tokenizers(smollm2, minilm):
    return [smollm2[1], minilm[1]]


def test_tokens_per_word_function(tokenizers):
    assert check_tokens_per_word_function(tpw_right, tokenizers).status == "correct"
    assert check_tokens_per_word_function(tpw_mean_of_ratios, tokenizers).status == "not_yet"
    assert check_tokens_per_word_function(tpw_with_special, tokenizers).status == "not_yet"
    assert check_tokens_per_word_function(None, tokenizers).status == "pending"
    assert check_tokens_per_word_function(lambda tok, texts: None, tokenizers).status == "pending"


# --- 05: whole-word masking -----------------------------------------------------------------------------------------

def whole_word_right(offsets, special, p, generator):
    previous_end = torch.roll(offsets[..., 1], 1, dims=1)
    previous_end[:, 0] = -1
    previous_special = torch.roll(special, 1, dims=1)
    previous_special[:, 0] = False
    starts = ~special & ((offsets[..., 0] != previous_end) | previous_special)
    drawn = torch.bernoulli(torch.full(special.shape, p).masked_fill(~starts, 0.0), generator=generator).bool()
    word = torch.cumsum(starts.long(), dim=1).masked_fill(special, -1)
    return ((word[:, :, None] == word[:, None, :]) & (word[:, :, None] >= 0) & drawn[:, None, :]).any(-1)


def whole_word_by_piece(offsets, special, p, generator):
    """Wrong: pieces drawn one by one (BERT's original masking), a word's pieces not chosen together."""
    return torch.bernoulli(torch.full(special.shape, p).masked_fill(special, 0.0), generator=generator).bool()


def whole_word_no_spread(offsets, special, p, generator):
    """Wrong: the draw at word starts only, the word's other pieces left unchosen."""
    return whole_word_right(offsets, special, p, generator) & (torch.roll(offsets[..., 1], 1, dims=1) != offsets[..., 0])


def test_whole_word_function(minilm):
    tokenizer = minilm[1]
    assert check_whole_word_function(whole_word_right, tokenizer).status == "correct"
    assert check_whole_word_function(whole_word_by_piece, tokenizer).status == "not_yet"
    assert check_whole_word_function(whole_word_no_spread, tokenizer).status == "not_yet"
    assert check_whole_word_function(lambda *a: 1 / 0, tokenizer).status == "not_yet"
    assert check_whole_word_function(None, tokenizer).status == "pending"
    assert check_whole_word_function(lambda *a: None, tokenizer).status == "pending"


def test_fresh_batches_hold_words_of_several_pieces_and_padding(minilm):
    tokenizer = minilm[1]
    batches = fresh_batches(tokenizer)
    pieces = [t for encoding, _, _ in batches for row in encoding["input_ids"] for t in tokenizer.convert_ids_to_tokens(row)]
    assert any(t.startswith("##") for t in pieces) and "[PAD]" in pieces
    assert len({p for _, p, _ in batches}) >= 3


# --- 06: class-weighted cross-entropy ------------------------------------------------------------------------------

def weighted_ce_right(logits, labels, class_weights):
    nll = -torch.log_softmax(logits, -1)[torch.arange(len(labels)), labels]
    w = class_weights[labels]
    return (w * nll).sum() / w.sum()


def weighted_ce_plain_mean(logits, labels, class_weights):
    """Wrong: the weighted losses averaged over the examples, not divided by the sum of the weights used."""
    nll = -torch.log_softmax(logits, -1)[torch.arange(len(labels)), labels]
    return (class_weights[labels] * nll).mean()


def weighted_ce_all_weights(logits, labels, class_weights):
    """Wrong: divided by the sum of every class's weight (also those of classes absent from the batch)."""
    nll = -torch.log_softmax(logits, -1)[torch.arange(len(labels)), labels]
    return (class_weights[labels] * nll).sum() / class_weights.sum()


def weighted_ce_unstable(logits, labels, class_weights):
    """Wrong for large logits: log(softmax) as written, which overflows."""
    p = torch.exp(logits) / torch.exp(logits).sum(-1, keepdim=True)
    w = class_weights[labels]
    return (w * -torch.log(p[torch.arange(len(labels)), labels])).sum() / w.sum()


def test_weighted_ce_function(capsys):
    assert check_weighted_ce_function(weighted_ce_right).status == "correct"
    for wrong in (weighted_ce_plain_mean, weighted_ce_all_weights, weighted_ce_unstable,
                  lambda z, y, w: torch.nn.functional.cross_entropy(z, y)):  # unweighted
        assert check_weighted_ce_function(wrong).status == "not_yet"
    assert "F.cross_entropy(weight=…) gives" in capsys.readouterr().out
    assert check_weighted_ce_function(lambda z, y, w: [1.0, 2.0]).status == "not_yet"  # not one number
    assert check_weighted_ce_function(None).status == "pending"
    assert check_weighted_ce_function(lambda z, y, w: None).status == "pending"
    broken = check_weighted_ce_function(lambda z, y, w: 1 / 0)
    assert broken.status == "not_yet" and "ZeroDivisionError" in broken.message


def test_fresh_weighted_ce_inputs_cover_the_traps():
    cases = fresh_weighted_ce_inputs()
    assert any(logits.abs().max() > 89 for logits, _, _ in cases)  # exp() overflows in float32
    assert all(not (labels == w.numel() - 1).any() for _, labels, w in cases)  # a class absent from the labels
    assert any(abs(float(w[labels].mean()) - 1) > 0.1 for _, labels, w in cases)  # weights that do not average 1


# --- 07: freeze the embeddings and the lowest k layers --------------------------------------------------------------

def freeze_right(model, k):
    base = model.base_model
    base.embeddings.requires_grad_(False)
    for layer in base.encoder.layer[:k]:
        layer.requires_grad_(False)
    return model


def freeze_off_by_one(model, k):
    """Wrong: freezes layers 0 … k (k + 1 layers)."""
    base = model.base_model
    base.embeddings.requires_grad_(False)
    for layer in base.encoder.layer[: k + 1]:
        layer.requires_grad_(False)
    return model


def freeze_keeps_embeddings(model, k):
    """Wrong: the embeddings stay trainable."""
    for layer in model.base_model.encoder.layer[:k]:
        layer.requires_grad_(False)
    return model


def freeze_the_pooler_too(model, k):
    """Wrong: BERT's pooler frozen too (it sits in the base model but belongs to the head, which trains)."""
    freeze_right(model, k)
    if getattr(model.base_model, "pooler", None) is not None:
        model.base_model.pooler.requires_grad_(False)
    return model


def test_freeze_lowest_function():
    assert check_freeze_lowest_function(freeze_right).status == "correct"
    for wrong in (freeze_off_by_one, freeze_keeps_embeddings, freeze_the_pooler_too,
                  lambda m, k: m):  # nothing frozen
        assert check_freeze_lowest_function(wrong).status == "not_yet"
    off = check_freeze_lowest_function(freeze_off_by_one)
    assert "should train: " in off.message and "encoder.layer." in off.message
    assert check_freeze_lowest_function(lambda m, k: 3).status == "not_yet"  # not the model
    assert check_freeze_lowest_function(None).status == "pending"
    assert check_freeze_lowest_function(lambda m, k: None).status == "pending"


def test_fresh_classifiers_are_two_families_and_include_every_layer_frozen():
    cases = fresh_classifiers()
    assert {type(build()).__name__ for _, build, _ in cases} == {"BertForSequenceClassification",
                                                                 "RobertaForSequenceClassification"}
    assert all(1 <= k <= build().config.num_hidden_layers for _, build, k in cases)
    assert any(k == build().config.num_hidden_layers for _, build, k in cases)
    assert any(k < build().config.num_hidden_layers for _, build, k in cases)


# --- 08: the LoRA forward pass ---------------------------------------------------------------------------------------

def lora_right(x, weight, bias, A, B, alpha, r):
    return x @ weight.T + bias + (alpha / r) * (x @ A.T @ B.T)


def lora_unscaled(x, weight, bias, A, B, alpha, r):
    """Wrong: no α/r scaling."""
    return x @ weight.T + bias + x @ A.T @ B.T


def lora_alpha_only(x, weight, bias, A, B, alpha, r):
    """Wrong: scaled by α, not α/r."""
    return x @ weight.T + bias + alpha * (x @ A.T @ B.T)


def lora_no_bias(x, weight, bias, A, B, alpha, r):
    """Wrong: the frozen layer's bias forgotten."""
    return x @ weight.T + (alpha / r) * (x @ A.T @ B.T)


def test_lora_forward_function():
    assert check_lora_forward_function(lora_right).status == "correct"
    for wrong in (lora_unscaled, lora_alpha_only, lora_no_bias):
        assert check_lora_forward_function(wrong).status == "not_yet"
    assert check_lora_forward_function(lambda x, w, b, A, B, alpha, r: x @ A.T).status == "not_yet"  # wrong shape
    broken = check_lora_forward_function(lambda x, w, b, A, B, alpha, r: x @ B)  # shapes do not fit
    assert broken.status == "not_yet" and "RuntimeError" in broken.message
    assert check_lora_forward_function(None).status == "pending"
    assert check_lora_forward_function(lambda x, w, b, A, B, alpha, r: None).status == "pending"


def test_fresh_lora_inputs_make_the_scaling_matter():
    cases = fresh_lora_inputs()
    assert all(c["alpha"] / c["r"] != 1 and c["alpha"] / c["r"] != c["alpha"] for c in cases)
    assert all(c["B"].abs().max() > 0 for c in cases)  # B = 0 (peft's initial state) would hide every mistake
    assert {c["x"].dim() for c in cases} == {2, 3}
