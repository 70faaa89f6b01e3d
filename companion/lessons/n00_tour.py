"""Helpers and exercise checks for notebook 00 (setup and tour)."""
from __future__ import annotations

import pandas as pd
import torch
from datasets import DatasetDict



def class_balance(dataset: DatasetDict) -> pd.DataFrame:
    """A tidy table: split, label_name, count, share, for a split DatasetDict."""
    rows = []
    for split, part in dataset.items():
        counts = pd.Series(part["label_name"]).value_counts()
        for name, count in counts.items():
            rows.append({"split": split, "label_name": name, "count": int(count), "share": count / len(part)})
    return pd.DataFrame(rows)


@torch.no_grad()
def greedy_continue(model, tokenizer, prompt: str, new_tokens: int = 8) -> str:
    """Greedy continuation of a prompt with a causal LM (deterministic)."""
    ids = tokenizer(prompt, return_tensors="pt").to(model.device)
    out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)








def _words(sentence: str) -> set[str]:
    """Lower-case words of a sentence, punctuation dropped."""
    return {w.strip(".,;:!?").lower() for w in sentence.split()} - {""}


