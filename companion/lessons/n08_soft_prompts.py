"""Notebook 08's soft prompts on one frozen model for several tasks, and what a task costs on disk.

Each task is a peft prompt-tuning adapter (its virtual-token table) on a shared `peft` feature-extraction model,
plus a small linear head read from the `[CLS]` position; `set_adapter(name)` swaps it. A `TaskPrompt` wraps one
task so that the course's one training loop (`companion.engine.training.train`) trains it.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from dataclasses import replace
from typing import Sequence

import torch
from torch import nn

from ..engine.metrics import classification_metrics
from ..engine.training import TrainConfig


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


class TaskPrompt(nn.Module):
    """One task on a shared peft model: its prompt table (adapter) switched on, and its head on `[CLS]`; returns the
    loss and logits like a classifier, so the course's one training loop trains it."""

    def __init__(self, model: nn.Module, adapter: str, head: nn.Module):
        super().__init__()
        self.model, self.adapter, self.head = model, adapter, head
        self.n_virtual = model.peft_config[adapter].num_virtual_tokens

    def trainable(self) -> list[nn.Parameter]:
        """This task's numbers: its prompt table and its head (the backbone and other tasks' prompts stay put)."""
        return list(self.model.prompt_encoder[self.adapter].parameters()) + list(self.head.parameters())

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None):
        """Logits of the task (and their cross-entropy with labels)."""
        from transformers.modeling_outputs import SequenceClassifierOutput

        self.model.set_adapter(self.adapter)
        logits = cls_logits(self.model, self.head, {"input_ids": input_ids, "attention_mask": attention_mask},
                            self.n_virtual)
        loss = None if labels is None else nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def encoded(tokenizer, texts: Sequence[str], labels: Sequence[int], max_length: int) -> list[dict]:
    """Tokenised examples (input_ids, attention_mask, labels) for the training engine."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [{"input_ids": ids, "attention_mask": mask, "labels": int(y)}
            for ids, mask, y in zip(enc["input_ids"], enc["attention_mask"], labels)]


def batches(tokenizer, texts: Sequence[str], labels: Sequence[int], batch_size: int, max_length: int) -> list[dict]:
    """Tokenised, padded evaluation batches in the given order (input_ids, attention_mask, labels)."""
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                    "labels": torch.tensor(list(labels[start:start + batch_size]))})
    return out


def train_task_prompt(task: TaskPrompt, tokenizer, texts: Sequence[str], labels: Sequence[int],
                      config: TrainConfig, max_length: int) -> list[float]:
    """Train one task's prompt table and head with the course's training loop (the backbone stays frozen); returns
    the training loss at every step."""
    from ..engine.batches import padding_collator
    from ..engine.training import train

    config = replace(config, log_every=1, patience=None, restore_best=False)
    result = train(task, encoded(tokenizer, texts, labels, max_length), None, padding_collator(tokenizer), config,
                   groups=[{"params": task.trainable(), "lr": config.lr, "weight_decay": 0.0}],
                   evaluate_fn=lambda _: {})
    task.eval()
    return result.history.query("split == 'train'")["loss"].tolist()


@torch.no_grad()
def evaluate_task_prompt(task: TaskPrompt, tokenizer, texts: Sequence[str], labels: Sequence[int],
                         batch_size: int = 64, max_length: int = 64) -> dict:
    """Accuracy and macro-F1 of one task with its prompt switched on (`set_adapter`) and its head."""
    task.eval()
    preds: list[int] = []
    for batch in batches(tokenizer, texts, labels, batch_size, max_length):
        preds += task(batch["input_ids"], batch["attention_mask"]).logits.argmax(-1).tolist()
    return {**classification_metrics(list(labels), preds), "preds": preds}


