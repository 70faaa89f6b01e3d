"""Exercise checks of notebook 05."""
from __future__ import annotations

import random
from typing import Callable

import numpy as np
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


@exercise("05", "step_time_ratio")
def check_step_time_ratio(prediction: float | None, embedding_seconds: float, full_seconds: float) -> Verdict:
    """Exercise (predict, then measure): embedding-only training time as a share of full training time."""
    return check_prediction(prediction, embedding_seconds / full_seconds, "step_time_ratio",
                            "Within 40 % counts (timings vary by machine). To reach the input embeddings, "
                            "backpropagation still computes the gradient of every layer's activations; what a frozen "
                            "layer saves is the gradient of its "
                            "weights and their AdamW update. With forward ≈ 1 unit and backward ≈ 2 (activations + "
                            "weights), expect about (1 + 1 + share of the trained weights) / 3; the optimiser step, "
                            "memory traffic and the machine move the measured value around that.", rtol=0.4)
