"""Unit tests of companion.lessons.n01_lm_probability against the real SmolLM2 model and tokenizer."""
from __future__ import annotations

import math

import pytest
import torch

from companion import CourseError
from companion.lessons.n01_lm_probability import BigramLM, bigram_reversal_ratio, encode_with_start, model_loss, model_provenance, perplexity, reversal_ratios, reverse_words, sentence_nlls, sentence_perplexities, split_sentences, start_token_id, strided_perplexity, strided_token_nlls, token_log_probs, window_starts, words
from companion.checks.n01 import check_bigram_prob, check_perplexity, check_reversal_prediction, check_window_count

SENTENCE = "The patient underwent a laparoscopic cholecystectomy."


def test_start_token(smollm2, minilm):
    model, tok = smollm2
    assert start_token_id(tok) == tok.convert_tokens_to_ids("<|endoftext|>")
    assert encode_with_start(tok, "Hello")[0, 0].item() == start_token_id(tok)
    assert start_token_id(minilm[1]) is None  # BERT adds [CLS] itself


def test_chain_rule_matches_model_loss(smollm2):
    model, tok = smollm2
    table = token_log_probs(model, tok, SENTENCE)
    assert len(table) == encode_with_start(tok, SENTENCE).shape[1] - 1
    assert ((table["prob"] > 0) & (table["prob"] <= 1)).all()
    assert abs(-table["log_prob"].mean() - model_loss(model, tok, SENTENCE)) < 1e-5
    assert math.isclose(perplexity(table["log_prob"]), math.exp(model_loss(model, tok, SENTENCE)), rel_tol=1e-4)


def test_perplexity_values():
    assert math.isclose(perplexity([math.log(0.25)] * 3), 4.0)
    assert math.isclose(perplexity(torch.tensor([-1.0, -3.0])), math.exp(2.0))
    with pytest.raises(CourseError):
        perplexity([])


def test_sentence_nlls_batched_equals_single(smollm2):
    model, tok = smollm2
    texts = [SENTENCE, "Fever.", "Aspirin reduces the risk of stroke in some patients."]
    batched = sentence_perplexities(model, tok, texts, batch_size=3)
    single = [math.exp(model_loss(model, tok, t)) for t in texts]
    assert batched == pytest.approx(single, rel=1e-3)  # padding changes matmul shapes: float32 noise
    table = sentence_nlls(model, tok, texts, max_tokens=4)
    assert table["tokens"].tolist() == [4, min(4, len(tok("Fever.")["input_ids"])), 4]


def test_window_starts():
    assert window_starts(1000, 256, 256) == [0, 256, 512, 768]
    assert window_starts(100, 256, 64) == [0]
    assert window_starts(300, 256, 128) == [0, 128]
    with pytest.raises(CourseError):
        window_starts(100, 64, 128)


@pytest.mark.slow
def test_strided_perplexity(smollm2):
    model, tok = smollm2
    text = " ".join([SENTENCE, "Gallstones are hardened deposits of digestive fluid that can form in the gallbladder."] * 3)
    n = encode_with_start(tok, text).shape[1]
    whole = strided_perplexity(model, tok, text, max_length=n, stride=n)
    assert whole["windows"] == 1 and whole["tokens"] == n - 1
    with torch.no_grad():  # one window covering everything = the model's own loss
        ids = encode_with_start(tok, text)
        assert whole["nll"] == pytest.approx(float(model(input_ids=ids, labels=ids).loss), abs=1e-4)
    sliding = strided_perplexity(model, tok, [text], max_length=16, stride=8)
    disjoint = strided_perplexity(model, tok, [text], max_length=16, stride=16)
    assert sliding["tokens"] == n - 1 and disjoint["tokens"] == n - disjoint["windows"]
    assert sliding["windows"] == len(window_starts(n, 16, 8))
    assert sliding["perplexity"] < disjoint["perplexity"]  # more context → lower perplexity
    assert strided_perplexity(model, tok, text, 16, 8, max_tokens=20)["tokens"] == 19


def test_bigram_model():
    lm = BigramLM(k=1.0).fit(["The cat sat.", "The dog sat."])
    assert words("The cat sat.") == ["the", "cat", "sat", "."]
    v = len(lm.vocab)  # the cat dog sat . </s> <unk>
    assert v == 7
    assert lm.prob("the", "cat") == pytest.approx((1 + 1) / (2 + v))
    assert lm.prob("<s>", "the") == pytest.approx((2 + 1) / (2 + v))
    assert lm.prob("zebra", "cat") == pytest.approx(1 / v)  # unknown context: uniform
    assert sum(lm.prob("the", w) for w in lm.vocab) == pytest.approx(1.0)
    unsmoothed = BigramLM(k=0.0).fit(["The cat sat.", "The dog sat."])
    assert unsmoothed.perplexity("The cat sat.") == pytest.approx(perplexity([math.log(1), math.log(.5), 0, 0, 0]))
    assert math.isinf(unsmoothed.perplexity("The dog cat."))


def test_split_sentences():
    assert split_sentences("One two three four. Short. Five six seven eight!") == ["One two three four.", "Five six seven eight!"]


def test_checks(capsys):
    assert check_perplexity(math.exp(1.5), [-1.0, -2.0])
    assert not check_perplexity(1.5, [-1.0, -2.0])
    assert not check_perplexity(None, [-1.0])
    lm = BigramLM(k=0.5).fit(["a b c d"])
    assert check_bigram_prob(lm.prob("a", "b"), lm, "a", "b")
    assert check_window_count(9, 5000, 1024, 512) and not check_window_count(10, 5000, 1024, 512)
    assert "Hint" in capsys.readouterr().out


@pytest.mark.slow
def test_strided_token_nlls_score_each_token_once(smollm2):
    model, tok = smollm2
    text = " ".join([SENTENCE, "Gallstones are hardened deposits of digestive fluid."] * 3)
    sliding = strided_token_nlls(model, tok, text, max_length=16, stride=8)
    n = encode_with_start(tok, text).shape[1]
    assert sliding["ids"].shape == sliding["nll"].shape == (n,) and torch.isnan(sliding["nll"][0])
    assert not torch.isnan(sliding["nll"][1:]).any()
    disjoint = strided_token_nlls(model, tok, text, max_length=16, stride=16)
    assert [int(i) for i in torch.isnan(disjoint["nll"]).nonzero()] == list(range(0, n, 16))
    one = strided_token_nlls(model, tok, text, max_length=n, stride=n)  # one window: the model's own per-token loss
    ids = encode_with_start(tok, text)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
        own = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
    assert torch.allclose(one["nll"][1:], own.double(), atol=1e-4)
    assert strided_perplexity(model, tok, text, 16, 8)["nll"] == pytest.approx(float(sliding["nll"].nanmean()))


def test_reversal(smollm2):
    model, tok = smollm2
    assert reverse_words("a b  c.") == "c. b a"
    table = reversal_ratios(model, tok, [SENTENCE, "Fever and cough were the first symptoms."])
    assert (table["ratio"] == table["ppl_reversed"] / table["ppl"]).all() and (table["ratio"] > 1).all()
    lm = BigramLM(k=0.5).fit(["the cat sat on the mat.", "the dog sat on the rug."])
    assert bigram_reversal_ratio(lm, ["the cat sat on the rug."]) > 1
    assert bigram_reversal_ratio(lm, ["a a a a a"]) == pytest.approx(1.0)  # a palindrome of words


def test_reversal_prediction_against_the_interval(capsys):
    ratios = [12.0, 20.0, 15.0, 30.0, 9.0]
    assert check_reversal_prediction("more than 5", ratios, own=12.0).status == "correct"
    assert check_reversal_prediction("about 1", ratios).status == "not_yet"
    assert check_reversal_prediction(16.0, ratios).status == "correct"  # a number inside the interval
    assert check_reversal_prediction(3.0, ratios).status == "not_yet"
    assert "95 % interval" in capsys.readouterr().out
    wide = [3.0, 40.0, 6.0]  # few, scattered sentences: the interval overlaps two bins
    assert check_reversal_prediction("2 to 5", wide).status == "correct"
    assert check_reversal_prediction("more than 5", wide).status == "correct"
    assert check_reversal_prediction(None, ratios).status == "pending"
    assert check_reversal_prediction("huge", ratios).status == "not_yet"


def test_model_provenance_names_the_instruct_gguf():
    line = model_provenance("smollm2")
    assert "SmolLM2-135M-Instruct" in line and "Q4_1" in line and "4-bit" in line
    assert "gpt2" in model_provenance("gpt2")
