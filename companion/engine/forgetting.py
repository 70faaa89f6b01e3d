"""Forgetting: what fine-tuning costs the encoder's view of general English, measured two ways.

1. A general task: which WikiText-2 article a sentence comes from, read off frozen sentence features. A linear probe
   (logistic regression) is fitted on the mean-pooled sentence embeddings of an encoder for half of each article's
   sentences and scored on the other half. The untouched encoder's score is the reference; a tuned encoder whose
   general-English features lost what tells the articles apart scores lower (`general_acc_change` < 0).
2. Drift: how far a tuned encoder's sentence embeddings of general text moved (linear CKA, mean cosine).

    probe = article_probe(load_model("minilm"), tokenizer)              # sentences, split, reference: once
    probe.compare(tuned_classifier, tokenizer)["general_acc_change"]   # after - before, in accuracy
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..core.embeddings import sentence_embeddings
from ..core.errors import CourseError
from ..core.stats import Interval, change_over_items_and_seeds
from .peft_configs import base_encoder

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Sizes per profile: n_articles × per_article sentences, half of them scored. cpu: 240 scored sentences, a standard
# error of about 2 accuracy points, about 2 s a call on 2 idle cores (MiniLM); smoke: tiny, for the tests.
PROBE_SIZES = {"smoke": {"n_articles": 4, "per_article": 8, "max_length": 24},
               "cpu": {"n_articles": 8, "per_article": 60, "max_length": 32},
               "gpu": {"n_articles": 12, "per_article": 80, "max_length": 64}}


def probe_sizes(profile: str = "auto", **overrides) -> dict:
    """The article probe's sizes at a profile (PROBE_SIZES), with non-None overrides applied."""
    from ..core.profiles import resolve_profile, settings

    return settings(resolve_profile(profile), PROBE_SIZES, **overrides)


@lru_cache(maxsize=4)
def article_pool(min_words: int = 8, max_words: int = 40) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every WikiText-2 article (validation + test) as (title, its sentences of min_words-max_words words, with no
    <unk>), headings left out; read once per process."""
    from ..core.data import load_wikitext2

    wiki = load_wikitext2(unit="article")
    pool = []
    for split in ("validation", "test"):
        for article in wiki[split]["text"]:
            lines = article.split("\n")
            found = [s for line in lines[1:] if not line.startswith("=") for s in _SENTENCE_END.split(line)
                     if min_words <= len(s.split()) <= max_words and "<unk>" not in s]
            pool.append((lines[0].strip("= "), tuple(found)))
    return tuple(pool)


def article_sentences(n_articles: int = 8, per_article: int = 60, seed: int = 0, min_words: int = 8,
                      max_words: int = 40) -> tuple[list[str], list[int], list[str]]:
    """`per_article` sentences from each of `n_articles` WikiText-2 articles (validation + test; a seeded choice
    among the articles that have enough): the texts, their article ids and the article titles."""
    if n_articles < 2 or per_article < 2:
        raise CourseError(f"the article probe needs n_articles >= 2 and per_article >= 2 (got {n_articles}, "
                          f"{per_article})")
    pool = [(title, found) for title, found in article_pool(min_words, max_words) if len(found) >= per_article]
    if len(pool) < n_articles:
        raise CourseError(f"only {len(pool)} WikiText-2 articles have {per_article} sentences of {min_words}-"
                          f"{max_words} words: ask for fewer articles or fewer sentences per article")
    rng = random.Random(seed)
    chosen = rng.sample(range(len(pool)), n_articles)
    texts, labels = [], []
    for label, index in enumerate(chosen):
        texts += rng.sample(pool[index][1], per_article)
        labels += [label] * per_article
    return texts, labels, [pool[index][0] for index in chosen]


def fit_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
              c: float = 10.0) -> dict[str, float]:
    """Fit a logistic regression on the training features; accuracy and macro-F1 on the test features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    classifier = LogisticRegression(C=c, max_iter=2000)  # lbfgs: deterministic
    classifier.fit(train_x, train_y)
    predicted = classifier.predict(test_x)
    correct = predicted == test_y
    return {"accuracy": float(correct.mean()), "macro_f1": float(f1_score(test_y, predicted, average="macro")),
            "accuracy_se": float(math.sqrt(correct.mean() * (1 - correct.mean()) / len(correct))),
            "correct": correct_string(correct)}


def correct_string(correct: np.ndarray) -> str:
    """Which scored sentences the probe got right, as a string of 0/1 (one scalar a report's CSV keeps)."""
    return "".join("1" if c else "0" for c in np.asarray(correct, dtype=bool))


def correct_flags(text: str) -> list[int]:
    """The 0/1 list of a `correct_string`."""
    return [int(ch) for ch in str(text)]


@dataclass
class ArticleProbe:
    """Sentences of a few WikiText-2 articles split half for fitting, half for scoring, and the untouched
    encoder's score (`reference`): a tuned model is scored the same way and compared with it."""
    texts: list[str]
    labels: list[int]
    titles: list[str]
    is_test: list[bool]  # True: a scoring sentence; False: a fitting sentence (half of each article's)
    max_length: int = 32
    c: float = 10.0  # inverse L2 strength of the logistic regression (features are L2-normalised)
    reference: dict[str, float] = field(default_factory=dict)

    def features(self, model: nn.Module, tokenizer) -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence embeddings of every probe sentence from the model's encoder."""
        encoder = base_encoder(model)
        was_training = encoder.training
        encoder.eval()
        try:
            return sentence_embeddings(encoder, tokenizer, self.texts, max_length=self.max_length)
        finally:
            encoder.train(was_training)

    def score_features(self, features: torch.Tensor) -> dict[str, float]:
        """Accuracy, macro-F1 and the accuracy's standard error of the linear probe on given features."""
        x, y, test = features.double().numpy(), np.asarray(self.labels), np.asarray(self.is_test)
        return fit_probe(x[~test], y[~test], x[test], y[test], self.c)

    def score(self, model: nn.Module, tokenizer) -> dict[str, float]:
        """The probe's accuracy and macro-F1 on the model's (frozen) sentence features."""
        return self.score_features(self.features(model, tokenizer))

    def compare(self, model: nn.Module, tokenizer) -> dict[str, float]:
        """general_acc_before / general_acc / general_acc_change (after − before), and the same for macro-F1."""
        now = self.score(model, tokenizer)
        return {"general_acc_before": self.reference["accuracy"], "general_acc": now["accuracy"],
                "general_acc_change": now["accuracy"] - self.reference["accuracy"],
                "general_f1_before": self.reference["macro_f1"], "general_f1": now["macro_f1"],
                "general_f1_change": now["macro_f1"] - self.reference["macro_f1"],
                "general_correct_before": self.reference["correct"], "general_correct": now["correct"]}


def split_halves(labels: list[int], seed: int = 0) -> list[bool]:
    """Mark half of each article's sentences (a seeded choice) as scoring sentences, the rest for fitting."""
    rng = random.Random(seed)
    is_test = [False] * len(labels)
    for label in sorted(set(labels)):
        rows = [i for i, y in enumerate(labels) if y == label]
        for i in rng.sample(rows, len(rows) // 2):
            is_test[i] = True
    return is_test


def article_probe(model: nn.Module, tokenizer, n_articles: int = 8, per_article: int = 60, seed: int = 0,
                  max_length: int = 32, c: float = 10.0) -> ArticleProbe:
    """Build the probe (sentences, halves) and score the untouched `model` once: the reference."""
    texts, labels, titles = article_sentences(n_articles, per_article, seed)
    probe = ArticleProbe(texts, labels, titles, split_halves(labels, seed), max_length, c)
    probe.reference = probe.score(model, tokenizer)
    return probe



def general_sentences(n: int = 200, seed: int = 0, min_words: int = 8, max_words: int = 40) -> list[str]:
    """n WikiText-2 validation sentences of moderate length (a seeded sample): the 'general English' probe."""
    import random

    from ..core.data import load_wikitext2

    sentences = []
    for paragraph in load_wikitext2()["validation"]["text"]:
        for s in re.split(r"(?<=[.!?])\s+", paragraph):
            if min_words <= len(s.split()) <= max_words and "<unk>" not in s:
                sentences.append(s)
    random.Random(seed).shuffle(sentences)
    return sentences[:n]


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019): ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) on centred features; 1 = same geometry."""
    x = x.double() - x.double().mean(0, keepdim=True)
    y = y.double() - y.double().mean(0, keepdim=True)
    return float((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))


def mean_cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cosine similarity between matching rows (the same sentence before and after tuning)."""
    return float(nn.functional.cosine_similarity(x.double(), y.double(), dim=-1).mean())


def representation_drift(model: nn.Module, tokenizer, texts: list[str], reference: torch.Tensor,
                         max_length: int = 64) -> dict[str, float]:
    """CKA and mean cosine of the tuned encoder's embeddings vs the original's (`reference`); drift = 1 - cosine."""
    encoder = base_encoder(model)
    was_training = encoder.training
    encoder.eval()
    tuned = sentence_embeddings(encoder, tokenizer, texts, max_length=max_length)
    encoder.train(was_training)
    cosine = mean_cosine(reference, tuned)
    return {"cka": linear_cka(reference, tuned), "cosine": cosine, "drift": 1 - cosine}


@dataclass
class Probe:
    """General-English sentences and the original encoder's embeddings of them: forgetting is measured against it;
    with `general`, also a general task (which WikiText-2 article a sentence is from) scored before and after."""
    texts: list[str]
    reference: torch.Tensor  # one L2-normalised embedding per text, from the model before any tuning
    max_length: int = 64
    general: Optional[ArticleProbe] = None

    def drift(self, model: nn.Module, tokenizer) -> dict[str, float]:
        """How far a tuned model's embeddings of the probe moved from the reference (CKA, cosine, drift) and, with
        a general task, its accuracy before and after (general_acc_before, general_acc, general_acc_change, …)."""
        row = representation_drift(model, tokenizer, self.texts, self.reference, self.max_length)
        if self.general is not None:
            row.update(self.general.compare(model, tokenizer))
        return row


def make_probe(model_path: str, tokenizer, texts: list[str], max_length: int = 64,
               general: Optional[dict] = None) -> Probe:
    """Embed `texts` once with the original encoder (loaded from `model_path`): the reference of every run.
    `general`: the article probe's sizes (article_probe's arguments, e.g. probe_sizes()); None: no general task."""
    from ..core.models import load_model

    encoder = load_model(model_path, "encoder")
    reference = sentence_embeddings(encoder, tokenizer, texts, max_length=max_length)
    articles = article_probe(encoder, tokenizer, **general) if general is not None else None
    return Probe(list(texts), reference, max_length, articles)


def forgetting_change(before: str, after: Sequence[str], resamples: int = 2000, seed: int = 0) -> Interval:
    """The general-task accuracy change after − before, with a 95 % interval that counts both the probe's sentence
    sampling and the runs' seeds (one `general_correct` string per run): the course's one forgetting test."""
    return change_over_items_and_seeds(correct_flags(before), [correct_flags(a) for a in after], resamples, seed)


def forgetting_sentence(change: Interval, what: str = "fine-tuning", seeds: int | None = None) -> str:
    """The one sentence every notebook prints about forgetting, chosen by the interval (`seeds`: the runs behind it;
    one run's interval counts the probe's sentences only)."""
    noise = "sentences" if seeds == 1 else "sentences and seeds"
    if not change.excludes_zero():
        return (f"general-task accuracy after {what}: change {change} includes 0: no loss of general ability "
                f"beyond noise ({noise})")
    verb = "lost" if change.mean < 0 else "gained"
    return f"general-task accuracy after {what}: change {change} excludes 0: general ability was {verb}"
