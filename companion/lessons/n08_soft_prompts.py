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

import pandas as pd
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


def encoded(tokenizer, texts: Sequence[str], labels: Sequence[int], max_length: int,
            truncation: str = "head") -> list[dict]:
    """Tokenised examples (input_ids, attention_mask, labels) for the training engine, cut like every run of the
    protocol (`truncation`: head, or head+tail)."""
    from ..engine.batches import encode_texts

    enc = encode_texts(tokenizer, texts, max_length, truncation)
    return [{"input_ids": ids, "attention_mask": mask, "labels": int(y)}
            for ids, mask, y in zip(enc["input_ids"], enc["attention_mask"], labels)]


def batches(tokenizer, texts: Sequence[str], labels: Sequence[int], batch_size: int, max_length: int,
            truncation: str = "head") -> list[dict]:
    """Tokenised, padded evaluation batches in the given order (input_ids, attention_mask, labels)."""
    from ..engine.batches import encode_texts

    out = []
    for start in range(0, len(texts), batch_size):
        ids = encode_texts(tokenizer, list(texts[start:start + batch_size]), max_length, truncation)["input_ids"]
        width = max(len(row) for row in ids)  # pad on the right to the batch's longest text
        out.append({"input_ids": torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in ids]),
                    "attention_mask": torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids]),
                    "labels": torch.tensor(list(labels[start:start + batch_size]))})
    return out


def train_task_prompt(task: TaskPrompt, tokenizer, texts: Sequence[str], labels: Sequence[int],
                      config: TrainConfig, max_length: int, truncation: str = "head") -> list[float]:
    """Train one task's prompt table and head with the course's training loop (the backbone stays frozen) for the
    config's whole step budget (no validation: no early stopping); returns the training loss at every step."""
    from ..engine.batches import padding_collator
    from ..engine.training import train

    config = replace(config, log_every=1, patience=None, restore_best=False)
    result = train(task, encoded(tokenizer, texts, labels, max_length, truncation), None, padding_collator(tokenizer),
                   config, groups=[{"params": task.trainable(), "lr": config.lr, "weight_decay": 0.0}],
                   evaluate_fn=lambda _: {})
    task.eval()
    return result.history.query("split == 'train'")["loss"].tolist()


@torch.no_grad()
def evaluate_task_prompt(task: TaskPrompt, tokenizer, texts: Sequence[str], labels: Sequence[int],
                         batch_size: int = 64, max_length: int = 64, truncation: str = "head") -> dict:
    """Accuracy and macro-F1 of one task with its prompt switched on (`set_adapter`) and its head."""
    task.eval()
    preds: list[int] = []
    for batch in batches(tokenizer, texts, labels, batch_size, max_length, truncation):
        preds += task(batch["input_ids"], batch["attention_mask"]).logits.argmax(-1).tolist()
    return {**classification_metrics(list(labels), preds), "preds": preds}


def rate_search_table(rates: pd.DataFrame, settings: Sequence[str], data: str) -> pd.DataFrame:
    """Per setting, a rate search's candidates on `data` (rates.yaml's table: setting, lr, val_macro_f1, chosen):
    every rate tried with its validation macro-F1 (✓ the chosen one), the chosen rate, and where it lies among those
    tried (interior: the optimum is bracketed; lowest/highest tried: the search ended at an edge)."""
    key = "setting" if "setting" in rates else "strategy"  # a table of an older search names strategies
    made_on = rates["data"].astype(str) if "data" in rates else pd.Series("medical_abstracts", index=rates.index)
    rates = rates[made_on == data]  # a table without the column: an older search, of the medical abstracts
    rows = {}
    for setting in settings:
        part = rates[rates[key] == setting].sort_values("lr")
        if part.empty:
            continue
        chosen = part["chosen"].astype(str).str.lower().eq("true")
        lr = float(part.loc[chosen, "lr"].iloc[0]) if chosen.any() else float("nan")
        where = ("lowest tried" if len(part) > 1 and lr == part["lr"].min() else
                 "highest tried" if len(part) > 1 and lr == part["lr"].max() else "interior")
        rows[setting] = {"candidates": " · ".join(f"{r:.2g} → {v:.3f}" + (" ✓" if c else "") for r, v, c in
                                                  zip(part["lr"], part["val_macro_f1"], chosen)),
                         "chosen lr": lr, "tried": len(part), "position": where}
    return pd.DataFrame(rows, index=["candidates", "chosen lr", "tried", "position"]).T
