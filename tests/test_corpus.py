"""Corpus statistics (notebook 04) on the real SmolLM2 tokenizer, real texts and the real model."""
from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest
import torch

from companion.lessons.n01_lm_probability import strided_token_nlls
from companion.lessons.n04_domain_gap import centroid_cosine, corpus_blocks, corpus_gap, corpus_perplexity, document_perplexities, domain_separability, fertility, gap_verdict, keyness, marker_tokens, most_split, oov_rate, pieces, pieces_per_word, strip_markers, vocabulary_overlap, word_pieces_table, word_starts, words
from companion.checks.n04 import check_oov_rate, check_perplexity_gap, check_surprise_prediction
from companion.core.stats import Interval
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
    assert check_oov_rate(0.2, Counter({"a": 8, "b": 2}), Counter({"a": 1}))
    assert not check_oov_rate(0.8, Counter({"a": 8, "b": 2}), Counter({"a": 1}))
    assert check_perplexity_gap(math.exp(0.5), 3.0, 2.5)
    assert not check_perplexity_gap(None, 3.0, 2.5)
    assert "not yet" in capsys.readouterr().out


def test_markers_stripped_and_located(lm_tokenizer):
    text = "The <unk> is blue above, with spots that <unk>, and a <formula> below."
    assert strip_markers(text) == "The is blue above, with spots that, and a below."
    inside = marker_tokens(lm_tokenizer, text)
    assert len(inside) == len(lm_tokenizer(text, add_special_tokens=False)["input_ids"])
    ids = lm_tokenizer(text, add_special_tokens=False)["input_ids"]
    spelled = lm_tokenizer.decode([t for t, m in zip(ids, inside) if m])
    assert spelled.count("unk") == 2 and "formula" in spelled and "blue" not in spelled


def test_word_starts_count_the_whitespace_words(lm_tokenizer):
    text = "Percutaneous transluminal angioplasty, 12 patients.\n\nA second  paragraph (two spaces)."
    ids = lm_tokenizer(text)["input_ids"]
    assert int(word_starts(lm_tokenizer, torch.tensor(ids)).sum()) == len(text.split())


def test_blocks_and_gap_of_two_corpora(smollm2):
    model, tokenizer = smollm2
    texts = ["Myocardial infarction was diagnosed in the emergency room after chest pain. " * 3,
             "The river flows north through the old town before it reaches the sea. " * 3]
    found = [strided_token_nlls(model, tokenizer, t, max_length=16, stride=8) for t in texts]
    blocks = [corpus_blocks(tokenizer, f, block=8) for f in found]
    for f, b, text in zip(found, blocks, texts):
        assert b["tokens"].sum() == int((~torch.isnan(f["nll"])).sum()) and b["words"].sum() == len(text.split())
        assert b["nll_sum"].sum() == pytest.approx(float(f["nll"].nansum()))
    gap = corpus_gap(blocks[0], blocks[1], resamples=200)
    per_token = (blocks[0]["nll_sum"].sum() / blocks[0]["tokens"].sum()
                 - blocks[1]["nll_sum"].sum() / blocks[1]["tokens"].sum())
    assert gap["token"].mean == pytest.approx(per_token) and gap["token"].low <= per_token <= gap["token"].high
    assert set(gap) == {"token", "word"} and gap["word"].n == len(blocks[0]) + len(blocks[1])


def test_gap_verdict_words_the_interval():
    assert gap_verdict(Interval(0.1, -0.05, 0.25, 30), "medical", "general", "word").endswith("tied within noise")
    line = gap_verdict(Interval(-0.2, -0.3, -0.1, 30), "medical", "general", "token")
    assert line.endswith("general is more surprising per token") and "0.82 (95 % interval 0.74 to 0.90)" in line


def test_surprise_prediction_follows_the_interval(capsys):
    """The measured direction decides only when the per-token interval excludes 0; a tie contradicts no answer."""
    ppl = pd.DataFrame({"token_ppl": [18.3, 21.4], "word_ppl": [95.7, 92.5], "tokens_per_word": [1.57, 1.48]},
                       index=["medical", "general"])
    resolved = {"token": Interval(-0.16, -0.25, -0.05, 32), "word": Interval(0.03, -0.2, 0.25, 32)}
    assert check_surprise_prediction(" General ", ppl, resolved).status == "correct"
    assert check_surprise_prediction("medical", ppl, resolved).status == "not_yet"
    out = capsys.readouterr().out
    assert "per word medical / general = 1.03 (95 % interval 0.82 to 1.28): tied within noise" in out
    tied = {"token": Interval(-0.16, -0.4, 0.1, 32), "word": resolved["word"]}
    verdict = check_surprise_prediction("medical", ppl, tied)
    assert verdict.status == "correct" and verdict.message.startswith("not contradicted")
    assert check_surprise_prediction(None, ppl, tied).status == "pending"
    assert check_surprise_prediction("both", ppl, tied).status == "not_yet"
