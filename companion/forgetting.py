"""Forgetting as representation drift: how far a tuned encoder's sentence embeddings of general text moved."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .embeddings import sentence_embeddings
from .exercises import check_close, exercise
from .general_task import ArticleProbe, article_probe
from .engine.peft_configs import base_encoder


def general_sentences(n: int = 200, seed: int = 0, min_words: int = 8, max_words: int = 40) -> list[str]:
    """n WikiText-2 validation sentences of moderate length (a seeded sample): the 'general English' probe."""
    import random

    from .data import load_wikitext2

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
    from .models import load_model

    encoder = load_model(model_path, "encoder")
    reference = sentence_embeddings(encoder, tokenizer, texts, max_length=max_length)
    articles = article_probe(encoder, tokenizer, **general) if general is not None else None
    return Probe(list(texts), reference, max_length, articles)


@exercise("06", "linear_cka")
def check_linear_cka(answer, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Exercise: linear CKA of two feature matrices, computed by hand."""
    return check_close(answer, linear_cka(x, y), "linear_cka", "centre both matrices (subtract the column means), "
                       "then ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F) with torch.linalg.norm (Frobenius)", atol=1e-4)
