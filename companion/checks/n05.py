"""Exercise checks of notebook 05."""
from __future__ import annotations

import random
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import Verdict, check_close, check_equal, check_prediction, exercise, feedback, not_attempted


@exercise("05", "random_deletion")
def check_random_deletion(fn: Callable | None, trials: int = 200) -> bool:
    """Exercise: a random-deletion function fn(words, p, rng) that keeps order, drops ~p, never returns empty."""
    name = "random_deletion"
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    rng = random.Random(0)
    words = [f"w{i}" for i in range(20)]
    try:
        outs = [fn(list(words), 0.3, rng) for _ in range(trials)]
        in_order = all(o == [w for w in words if w in set(o)] and len(o) == len(set(o)) for o in outs)
        rate = 1 - np.mean([len(o) for o in outs]) / len(words)
        never_empty = all(len(fn(["only"], 0.99, rng)) == 1 for _ in range(20)) and \
            all(len(fn(["a", "b"], 0.999, rng)) >= 1 for _ in range(50))
        ok = in_order and abs(rate - 0.3) < 0.05 and never_empty
    except Exception:  # a learner's function that crashes is simply not right yet
        ok = False
    return feedback(ok, name, "keep each word when rng.random() >= p, in order; if nothing is left, "
                    "return one random word (and return a one-word text unchanged)")


@exercise("05", "forgetting_pct")
def check_forgetting_pct(answer: float | None, before: float, after: float) -> bool:
    """Exercise: forgetting as the relative rise of general perplexity, in percent."""
    return check_close(answer, 100.0 * (after / before - 1.0), "forgetting_pct",
                       "100 * (general perplexity after / general perplexity before - 1)", rtol=1e-4, atol=1e-3)


@exercise("05", "embedding_params")
def check_embedding_params(answer: int | None, model: nn.Module) -> bool:
    """Exercise: how many weights embedding-only tuning trains (the embedding matrix; tied output counted once)."""
    expected = model.get_input_embeddings().weight.numel()
    return check_equal(answer, expected, "embedding_params", "vocabulary size × hidden size, both in model.config "
                       "(vocab_size, hidden_size); the tied output layer is the same tensor, so count it once")


@exercise("05", "replay_blocks")
def check_replay_blocks(answer: int | None, n_blocks: int, fraction: float) -> bool:
    """Exercise: how many general blocks a replay stream of n_blocks holds at a given fraction."""
    return check_equal(answer, round(fraction * n_blocks), "replay_blocks",
                       "the stream keeps its length; round(fraction × number of blocks) of them are general text")


@exercise("05", "step_flops_ratio")
def check_step_flops_ratio(prediction: float | None, embedding_flops: float, full_flops: float) -> Verdict:
    """Exercise (predict, then measure): the operations of an embedding-only training step as a share of a full
    step's, as PyTorch counts them (exact, machine-independent), within 10 %."""
    return check_prediction(prediction, embedding_flops / full_flops, "step_flops_ratio",
                            "Within 10 % counts: the count is exact, and 10 % leaves room for rounding the share "
                            "and for the work that is not proportional to weights (attention's products). To reach the "
                            "input embeddings, backpropagation still computes the gradient of every layer's "
                            "activations; what a frozen layer saves is the gradient of its weights. With forward ≈ 1 "
                            "unit and backward ≈ 2 (activations + weights), expect (1 + 1 + share of the trained "
                            "weights) / 3; in SmolLM2 the trained matrix is also the output layer (tied), so its "
                            "weight gradient is still computed.", rtol=0.10)


WORDS = ("the", "patient", "hepatitis", "cholecystectomy", "received", "antivirals", "with", "no", "recurrence",
         "of", "adenocarcinoma", "after", "laparoscopic", "resection", "cells", "in", "a", "pancreatitis", "trial",
         "we", "measured", "immunohistochemistry", "outcomes", "(n", "=", "42)", "children,", "mg/kg", "daily.")


def fresh_batches(tokenizer, trials: int = 4) -> list[tuple[dict, float, int]]:
    """Padded batches of random sentences from WORDS (long medical words split into pieces), each with a masking
    probability and a seed: (encoding with offsets and special-token mask, p, seed)."""
    rng = random.Random(2024)
    batches = []
    for trial in range(trials):
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) for _ in range(rng.randint(2, 6))]
        encoding = tokenizer(texts, padding=True, return_offsets_mapping=True, return_special_tokens_mask=True)
        batches.append((encoding, (0.15, 0.4, 0.6, 0.3)[trial % 4], 100 + trial))
    return batches


def _collator_choice(tokenizer, encoding: dict, p: float, seed: int):
    """Which tokens DataCollatorForLanguageModeling(whole_word_mask=True) scores (labels other than -100)."""
    import warnings

    from transformers import DataCollatorForLanguageModeling

    with warnings.catch_warnings():  # it warns that whole-word masking replaces every chosen token by [MASK]
        warnings.simplefilter("ignore")
        collator = DataCollatorForLanguageModeling(tokenizer, whole_word_mask=True, mlm_probability=p, seed=seed)
        rows = [{key: encoding[key][i] for key in encoding} for i in range(len(encoding["input_ids"]))]
        return collator(rows)["labels"] != -100


@exercise("05", "whole_word_function")
def check_whole_word_function(fn, tokenizer) -> Verdict:
    """Mechanism: the learner's `fn(offsets, special, p, generator)` chooses whole words for masking exactly as
    DataCollatorForLanguageModeling(whole_word_mask=True) does, on fresh padded batches with several p and seeds."""
    name = "whole_word_function"
    hint = ("a token starts a word when it is not special and its start differs from the previous token's end (or the "
            "previous token is special); draw torch.bernoulli once over the whole (batch, length) shape with "
            "probability p at word starts and 0 elsewhere, using the generator; then choose every token whose word's "
            "start was drawn (word number = cumulative sum of the word starts along the row)")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for encoding, p, seed in fresh_batches(tokenizer):
        offsets = torch.tensor(encoding["offset_mapping"])
        special = torch.tensor(encoding["special_tokens_mask"]).bool()
        expected = _collator_choice(tokenizer, encoding, p, seed)
        try:
            got = fn(offsets.clone(), special.clone(), p, torch.Generator().manual_seed(seed))
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"with p={p} your function raised {type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body (it returns a boolean "
                                            "tensor of the chosen tokens), then run the cell again").emit()
        got = torch.as_tensor(got)
        if got.shape != expected.shape or not torch.equal(got.bool(), expected):
            row = int((got.bool() != expected).any(-1).nonzero()[0]) if got.shape == expected.shape else 0
            pieces = tokenizer.convert_ids_to_tokens(encoding["input_ids"][row])
            shown = lambda chosen: " ".join(t for t, c in zip(pieces, chosen[row].tolist()) if c) or "(none)"  # noqa: E731
            mine = shown(got.bool()) if got.shape == expected.shape else f"a tensor of shape {tuple(got.shape)}"
            return feedback(False, name, f"with p={p}, seed {seed}: you chose {mine}; the collator chose "
                                         f"{shown(expected)} (row {row}: {' '.join(pieces)}). {hint}")
    return feedback(True, name, hint)
