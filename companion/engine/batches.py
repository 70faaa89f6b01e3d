"""From texts to batches: tokenise once (keeping the head, or the head and the tail, of a long text), group similar
lengths into a batch, pad each batch to its own longest sequence."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ..core.errors import CourseError

TRUNCATIONS = ("head", "head+tail")


class LengthGroupedBatches:
    """Batch sampler: shuffle, cut into mega-batches of 50 batches, sort each by length, split, shuffle the batches.

    Similar lengths share a batch, so dynamic padding adds few pad tokens; the order changes with `set_epoch`.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, shuffle: bool = True,
                 group: bool = True, mega: int = 50):
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.shuffle, self.group, self.mega, self.epoch = shuffle, group, mega, 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but seeded) order in each epoch."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The list of index batches for the current epoch."""
        n = len(self.lengths)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            order = torch.randperm(n, generator=gen).tolist()
        else:
            order = list(range(n))
        if self.group:
            size = self.batch_size * self.mega
            chunks = [order[i:i + size] for i in range(0, n, size)]
            order = [i for chunk in chunks for i in sorted(chunk, key=lambda j: -self.lengths[j])]
        batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.shuffle and self.group:  # a small data set fits one mega-batch: vary the batch order per epoch
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        return batches

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def head_and_tail(ids: list[int], keep: int, head: int) -> list[int]:
    """The first `head` and the last `keep − head` tokens of a sequence longer than `keep` (else all of it)."""
    if len(ids) <= keep:
        return list(ids)
    return list(ids[:head]) + list(ids[len(ids) - (keep - head):])


def encode_texts(tokenizer, texts: Sequence[str], max_length: int, truncation: str = "head") -> dict[str, list]:
    """Token ids and attention masks of texts cut to `max_length` tokens (special tokens included): `head` keeps
    the opening; `head+tail` keeps the first quarter and the last three quarters of the room (Sun et al. 2019
    found head + tail best for long documents: openings and conclusions carry the topic)."""
    if truncation not in TRUNCATIONS:
        raise CourseError(f"unknown truncation {truncation!r}: use one of {', '.join(TRUNCATIONS)}")
    if truncation == "head":
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    prefix, suffix = special_frame(tokenizer)
    room = max_length - len(prefix) - len(suffix)
    if room < 2:
        raise CourseError(f"max_length={max_length} leaves no room for a head and a tail: use at least "
                          f"{len(prefix) + len(suffix) + 2}")
    rows = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    ids = [prefix + head_and_tail(row, room, room // 4) + suffix for row in rows]
    return {"input_ids": ids, "attention_mask": [[1] * len(row) for row in ids]}


def special_frame(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text's own tokens (BERT: [CLS] … [SEP])."""
    framed = tokenizer("x", add_special_tokens=True)["input_ids"]
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    for i in range(len(framed) - len(bare) + 1):
        if framed[i:i + len(bare)] == bare:
            return list(framed[:i]), list(framed[i + len(bare):])
    raise CourseError(f"cannot find where {type(tokenizer).__name__} puts a text among its special tokens: use "
                      f"truncation='head'")


def tokenize_dataset(dataset, tokenizer, max_length: int = 128, text_column: str = "text",
                     label_column: str = "label", truncation: str = "head"):
    """Tokenise once (no padding: the collator pads each batch); keep input_ids, attention_mask, labels."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    def encode(batch):
        return encode_texts(tokenizer, batch[text_column], max_length, truncation) | {"labels": batch[label_column]}

    keep = ("input_ids", "attention_mask", "labels")
    shown = is_progress_bar_enabled()
    disable_progress_bar()  # tokenising takes a second: no progress bars cluttering the notebook
    try:
        mapped = dataset.map(encode, batched=True, load_from_cache_file=False)
    finally:
        if shown:
            enable_progress_bar()
    if hasattr(mapped, "keys"):  # DatasetDict
        return mapped.remove_columns([c for c in next(iter(mapped.values())).column_names if c not in keep])
    return mapped.remove_columns([c for c in mapped.column_names if c not in keep])


def lengths_of(data) -> list[int]:
    """Sequence length of every example (tokenised dataset, list of cached features or of token blocks); 1 for an
    example that is not a sequence (a stored vector)."""
    if hasattr(data, "column_names"):
        return [len(ids) for ids in data["input_ids"]]
    return [(len(item["attention_mask"]) if "attention_mask" in item else 1) if isinstance(item, dict) else len(item)
            for item in data]


def labels_of(data) -> list[int] | None:
    """The class label of every example of a classification set (tokenised dataset or cached features), else None."""
    if hasattr(data, "column_names"):
        return list(data["labels"]) if "labels" in data.column_names else None
    if len(data) and isinstance(data[0], dict) and "labels" in data[0]:
        labels = [item["labels"] for item in data]
        if all(torch.as_tensor(y).ndim == 0 for y in labels):
            return [int(y) for y in labels]
    return None


def make_loader(data, collate: Callable, batch_size: int, shuffle: bool, seed: int = 0, group: bool = True):
    """A DataLoader over length-grouped (train) or sorted-by-length (evaluation) batches."""
    from torch.utils.data import DataLoader

    sampler = LengthGroupedBatches(lengths_of(data), batch_size, seed=seed, shuffle=shuffle, group=group)
    return DataLoader(data, batch_sampler=sampler, collate_fn=collate)


def eval_loader(data, collate: Callable, batch_size: int = 64):
    """An evaluation DataLoader (batches sorted by length) for a held-out split."""
    return make_loader(data, collate, batch_size, shuffle=False)


def padding_collator(tokenizer) -> Callable:
    """transformers' DataCollatorWithPadding: pad each batch to its own longest sequence."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, return_tensors="pt")
