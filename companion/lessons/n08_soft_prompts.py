"""Notebook 08's soft prompts: rates chosen on validation, seeds with intervals, and multi-task prompts.

Rates: every method gets the same number of candidate rates (a geometric grid around its usual rate), each trained
once at the first seed and scored on validation macro-F1; the chosen rate then trains at the other seeds.
Multi-task: each task is a peft prompt-tuning adapter (its virtual-token table) on a shared `peft`
feature-extraction model, plus a small linear head read from the `[CLS]` position; `set_adapter(name)` swaps it.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..engine.metrics import classification_metrics


def folder_bytes(path: str | os.PathLike) -> int:
    """Total size in bytes of the files under a folder (what a saved model or adapter costs on disk)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def save_quietly(model: nn.Module, folder: str | os.PathLike) -> int:
    """`model.save_pretrained(folder)` without a progress bar; returns the folder's size in bytes."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(folder)
    finally:
        hf_logging.enable_progress_bar()
    return folder_bytes(folder)








def domain_identification(medical: Sequence[str], general: Sequence[str], per_class: int, seed: int = 0,
                          words: int = 40) -> tuple[list[str], list[int]]:
    """A balanced medical (1) vs general (0) set: `per_class` texts of each, first `words` words, shuffled."""
    rng = random.Random(seed)
    general = [t for t in general if len(t.split()) >= 10]  # WikiText paragraphs: skip headings and fragments
    picked = [(t, 1) for t in rng.sample(list(medical), per_class)] + [(t, 0) for t in rng.sample(general, per_class)]
    rng.shuffle(picked)
    return [" ".join(t.split()[:words]) for t, _ in picked], [y for _, y in picked]


def cls_logits(model: nn.Module, head: nn.Module, batch: dict, num_virtual_tokens: int) -> torch.Tensor:
    """Logits of a task head on the `[CLS]` hidden state, which sits right after the virtual tokens."""
    hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return head(hidden[:, num_virtual_tokens])


def batches(tokenizer, texts: Sequence[str], labels: Sequence[int], batch_size: int, max_length: int,
            shuffle: bool = False, seed: int = 0) -> list[dict]:
    """Tokenised, padded batches (input_ids, attention_mask, labels); shuffled once with `seed` if asked."""
    order = list(range(len(texts)))
    if shuffle:
        random.Random(seed).shuffle(order)
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                    "labels": torch.tensor([labels[i] for i in idx])})
    return out


def train_task_prompt(model: nn.Module, adapter: str, head: nn.Module, tokenizer, texts: Sequence[str],
                      labels: Sequence[int], *, epochs: int, lr: float, batch_size: int, max_length: int,
                      seed: int = 0) -> list[float]:
    """Train one task's prompt table and head (the encoder stays frozen); returns the loss of every step."""
    model.set_adapter(adapter)
    params = list(model.prompt_encoder[adapter].parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr)
    n = model.peft_config[adapter].num_virtual_tokens
    model.train()
    head.train()
    losses = []
    for epoch in range(epochs):
        for batch in batches(tokenizer, texts, labels, batch_size, max_length, shuffle=True, seed=seed + epoch):
            loss = nn.functional.cross_entropy(cls_logits(model, head, batch, n), batch["labels"])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
    model.eval()
    head.eval()
    return losses


@torch.no_grad()
def evaluate_task_prompt(model: nn.Module, adapter: str, head: nn.Module, tokenizer, texts: Sequence[str],
                         labels: Sequence[int], batch_size: int = 64, max_length: int = 64) -> dict:
    """Accuracy and macro-F1 of one task with its prompt switched on (`set_adapter`) and its head."""
    model.set_adapter(adapter)
    model.eval()
    n = model.peft_config[adapter].num_virtual_tokens
    preds: list[int] = []
    for batch in batches(tokenizer, texts, labels, batch_size, max_length):
        preds += cls_logits(model, head, batch, n).argmax(-1).tolist()
    return {**classification_metrics(list(labels), preds), "preds": preds}


