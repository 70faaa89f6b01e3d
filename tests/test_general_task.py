"""The general-task probe: WikiText-2 article identification on frozen sentence features, before and after."""
from __future__ import annotations

import copy

import pytest
import torch

from companion.core.errors import CourseError
from companion.engine.forgetting import general_sentences, make_probe
from companion.engine.forgetting import ArticleProbe, article_probe, article_sentences, probe_sizes, split_halves
from companion.core.models import resolve_model

SMALL = {"n_articles": 4, "per_article": 20, "max_length": 24}  # 40 scored sentences: cheap, yet far above chance


@pytest.fixture(scope="module")
def probe(minilm):
    model, tokenizer = minilm
    return article_probe(model, tokenizer, **SMALL)


def test_sentences_are_seeded_balanced_and_split_in_halves():
    texts, labels, titles = article_sentences(4, 10, seed=3)
    again = article_sentences(4, 10, seed=3)
    assert (texts, labels, titles) == again and len(texts) == 40 and len(set(titles)) == 4
    assert [labels.count(k) for k in range(4)] == [10] * 4
    assert article_sentences(4, 10, seed=4)[0] != texts
    halves = split_halves(labels, seed=0)
    assert [sum(h for h, y in zip(halves, labels) if y == k) for k in range(4)] == [5] * 4
    with pytest.raises(CourseError, match="fewer articles"):
        article_sentences(8, 10_000)


def test_probe_is_deterministic_and_the_untouched_encoder_scores_its_reference(minilm, probe):
    model, tokenizer = minilm
    again = article_probe(model, tokenizer, **SMALL)
    assert again.texts == probe.texts and again.is_test == probe.is_test and again.reference == probe.reference
    assert probe.reference["accuracy"] > 0.5  # 4 articles: chance is 0.25
    from companion import load_model

    classifier = load_model("minilm", "classifier", num_labels=3)  # the same encoder under a new head
    out = probe.compare(classifier, tokenizer)
    assert out["general_acc"] == probe.reference["accuracy"] and out["general_acc_change"] == 0.0
    assert out["general_f1_change"] == 0.0


def test_a_scrambled_encoder_scores_lower(minilm, probe):
    model, tokenizer = minilm
    scrambled = copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in scrambled.parameters():  # every weight keeps its values, in a random order
            p.copy_(p.flatten()[torch.randperm(p.numel(), generator=g)].view_as(p))
    out = probe.compare(scrambled, tokenizer)
    assert out["general_acc_change"] < -0.15 and out["general_acc"] < out["general_acc_before"]


def test_random_features_score_at_chance():
    labels = [k for k in range(8) for _ in range(100)]
    probe = ArticleProbe([""] * len(labels), labels, [str(k) for k in range(8)], split_halves(labels, seed=0))
    scores = probe.score_features(torch.randn(len(labels), 64, generator=torch.Generator().manual_seed(0)))
    assert abs(scores["accuracy"] - 1 / 8) < 0.07  # 400 scored sentences: standard error ≈ 0.017
    assert scores["accuracy_se"] == pytest.approx((scores["accuracy"] * (1 - scores["accuracy"]) / 400) ** 0.5)


def test_forgetting_probe_reports_the_general_task_beside_the_drift(minilm):
    _, tokenizer = minilm
    sizes = probe_sizes("smoke")
    drift_probe = make_probe(resolve_model("minilm"), tokenizer, general_sentences(6), 24, general=sizes)
    from companion import load_model

    row = drift_probe.drift(load_model("minilm", "classifier", num_labels=5), tokenizer)
    assert {"cka", "cosine", "drift", "general_acc_before", "general_acc", "general_acc_change"} <= set(row)
    assert row["general_acc_change"] == 0.0 and row["cosine"] == pytest.approx(1.0, abs=1e-6)
    assert make_probe(resolve_model("minilm"), tokenizer, general_sentences(4), 24).general is None
    with pytest.raises(CourseError, match="unknown setting"):
        probe_sizes("smoke", per_articles=3)


def test_forgetting_probe_can_take_another_model_as_before(minilm, probe, tmp_path):
    from companion.engine.finetune import Task, forgetting_probe

    model, tokenizer = minilm
    scrambled = copy.deepcopy(model)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in scrambled.parameters():
            p.copy_(p.flatten()[torch.randperm(p.numel(), generator=g)].view_as(p))
    scrambled.save_pretrained(tmp_path / "scrambled")
    task = Task("minilm", resolve_model("minilm"), tokenizer, None, 2, None, 24)
    sizes = {"n_articles": SMALL["n_articles"], "per_article": SMALL["per_article"], "general_max_length": 24}
    own = forgetting_probe(task, general_sentences(4), **sizes)
    other = forgetting_probe(task, general_sentences(4), reference_model=str(tmp_path / "scrambled"), **sizes)
    assert own.general.reference == probe.reference
    assert other.general.reference["accuracy"] < probe.reference["accuracy"] - 0.15
