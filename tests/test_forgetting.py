"""Representation drift: CKA and cosine properties, zero drift for an unchanged encoder, the probe's reference."""
from __future__ import annotations

import pytest
import torch

from companion.core.embeddings import sentence_embeddings
from companion.engine.forgetting import general_sentences, linear_cka, make_probe, mean_cosine, representation_drift
from companion.core.models import resolve_model


def test_cka_is_one_for_same_geometry_and_low_for_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)  # invariant to rotation and scale
    assert linear_cka(x, torch.randn(50, 8, generator=g)) < 0.5


def test_mean_cosine():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert mean_cosine(x, x) == pytest.approx(1.0)
    assert mean_cosine(x, torch.tensor([[0.0, 1.0], [0.0, 1.0]])) == pytest.approx(0.5)


def test_general_sentences_are_seeded_and_sized():
    a, b = general_sentences(20, seed=1), general_sentences(20, seed=1)
    assert a == b and len(a) == 20 and all(8 <= len(s.split()) <= 40 for s in a)


def test_unchanged_encoder_has_no_drift(minilm):
    model, tokenizer = minilm
    texts = general_sentences(8)
    reference = sentence_embeddings(model, tokenizer, texts, max_length=32)
    out = representation_drift(model, tokenizer, texts, reference, max_length=32)
    assert out["cka"] == pytest.approx(1.0, abs=1e-6) and out["drift"] == pytest.approx(0.0, abs=1e-6)


def test_probe_reference_is_the_original_encoder_and_a_fresh_classifier_has_not_drifted(minilm):
    model, tokenizer = minilm
    texts = general_sentences(6)
    probe = make_probe(resolve_model("minilm"), tokenizer, texts, max_length=24)
    assert torch.equal(probe.reference, sentence_embeddings(model, tokenizer, texts, max_length=24))
    from companion import load_model

    classifier = load_model("minilm", "classifier", num_labels=5)
    assert probe.drift(classifier, tokenizer)["cosine"] == pytest.approx(1.0, abs=1e-6)


def test_the_forgetting_sentence_names_the_noise_it_counts():
    """One run's interval counts the probe's sentences only; several runs' count sentences and seeds."""
    from companion.core.stats import Interval
    from companion.engine.forgetting import forgetting_sentence

    tied = Interval(-0.01, -0.04, 0.02, 240)
    assert forgetting_sentence(tied, "full fine-tuning", seeds=1).endswith("(sentences)")
    assert forgetting_sentence(tied, "full fine-tuning", seeds=5).endswith("(sentences and seeds)")
    assert "excludes 0: general ability was lost" in forgetting_sentence(Interval(-0.05, -0.08, -0.02, 240))
