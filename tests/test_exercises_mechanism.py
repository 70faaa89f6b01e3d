"""The "write the mechanism" exercises of notebooks 01–04: each check runs the learner's function on fresh inputs
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
