"""Corpus statistics (notebook 04) on the real SmolLM2 tokenizer, real texts and the real model."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

from companion.lessons.n04_domain_gap import centroid_cosine, corpus_perplexity, document_perplexities, domain_separability, fertility, keyness, most_split, oov_rate, pieces, pieces_per_word, vocabulary_overlap, word_counts, word_pieces_table, words
from companion.checks.n04 import check_fertility, check_oov_rate, check_perplexity_gap
from companion.core.errors import CourseError


@pytest.fixture(scope="module")
def lm_tokenizer():
    from companion import load_tokenizer

    return load_tokenizer("smollm2")


def test_words_drop_numbers_and_punctuation():
    assert words("Non-Hodgkin's lymphoma, 12 patients (n=3).") == ["non-hodgkin's", "lymphoma", "patients", "n"]


def test_fertility_counts_tokens_and_words(lm_tokenizer):
    text = "The patient underwent cholecystectomy."
    out = fertility(lm_tokenizer, [text])
    assert out["words"] == 4
    assert out["tokens"] == len(lm_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert out["tokens_per_word"] == pytest.approx(out["tokens"] / 4)
    with pytest.raises(CourseError):
        fertility(lm_tokenizer, [""])


def test_medical_terms_split_into_more_pieces(lm_tokenizer):
    assert len(pieces(lm_tokenizer, "cholecystectomy")) > len(pieces(lm_tokenizer, "house")) == 1
    table = word_pieces_table(lm_tokenizer, Counter({"house": 10, "rhabdomyosarcoma": 6, "the": 30}), min_count=5)
    top = most_split(table, top=1, min_count=5)
    assert top.loc[0, "word"] == "rhabdomyosarcoma"
    assert pieces_per_word(table) == pytest.approx((10 * 1 + 6 * top.loc[0, "pieces"] + 30) / 46)


def test_vocabulary_overlap_and_oov():
    domain = Counter({"patients": 5, "the": 3, "tumor": 2})
    general = Counter({"the": 10, "river": 4, "patients": 1})
    assert oov_rate(domain, general) == pytest.approx(2 / 10)
    out = vocabulary_overlap(domain, general, top=2)
    assert out["top_k_overlap"] == pytest.approx(1 / 2)  # top-2: {patients, the} vs {the, river}
    assert out["jaccard_all_types"] == pytest.approx(2 / 4)
    ranked = keyness(domain, general, min_count=1)
    assert ranked.iloc[0]["word"] in ("tumor", "patients") and ranked.iloc[-1]["word"] == "river"


def test_document_and_corpus_perplexity_match_model_loss(smollm2):
    model, tokenizer = smollm2
    text = "Myocardial infarction was diagnosed in the emergency room after chest pain."
    ppl = document_perplexities(model, tokenizer, [text], max_tokens=64)
    ids = torch.cat([torch.tensor([[tokenizer.convert_tokens_to_ids("<|endoftext|>")]]),
                     tokenizer(text, return_tensors="pt")["input_ids"]], dim=1)
    with torch.no_grad():
        own = math.exp(model(input_ids=ids, labels=ids).loss.item())
    assert ppl.iloc[0] == pytest.approx(own, rel=1e-3)  # batched + padding mask: float32 rounding
    whole = corpus_perplexity(model, tokenizer, [text], max_length=64, stride=64, max_tokens=None)
    assert whole["perplexity"] == pytest.approx(own, rel=1e-3)


def test_embedding_comparison_separates_shifted_sets():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 8, generator=g)
    b = torch.randn(40, 8, generator=g) + 3.0
    assert domain_separability(a, b) > 0.95
    assert centroid_cosine(a, a + 0.0) == pytest.approx(1.0)


def test_exercise_checks(lm_tokenizer, capsys):
    text = "Coronary artery disease"
    assert check_fertility(fertility(lm_tokenizer, [text])["tokens_per_word"], lm_tokenizer, text)
    assert not check_fertility(99.0, lm_tokenizer, text)
    assert check_oov_rate(0.2, Counter({"a": 8, "b": 2}), Counter({"a": 1}))
    assert check_perplexity_gap(math.exp(0.5), 3.0, 2.5)
    assert not check_perplexity_gap(None, 3.0, 2.5)
    assert "not yet" in capsys.readouterr().out
