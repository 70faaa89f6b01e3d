"""Exercise checks of notebook 03."""
from __future__ import annotations

import math

import torch

from ..lessons.n03_attention import causal_mask
from . import Verdict, check_close, check_equal, check_prediction, exercise


@exercise("03", "attention_weights")
def check_attention_weights(answer: torch.Tensor | None, q: torch.Tensor, k: torch.Tensor) -> bool:
    """Exercise: the attention weights softmax(Q Kᵀ / √d_k) of small Q and K."""
    expected = torch.softmax(q @ k.T / math.sqrt(q.shape[-1]), dim=-1)
    return check_close(answer, expected, "attention_weights", "scores = q @ k.T / math.sqrt(d_k), then "
                       "torch.softmax(scores, dim=-1): each row must sum to 1")


@exercise("03", "causal_mask")
def check_causal_mask(answer: torch.Tensor | None, n: int) -> bool:
    """Exercise: the (n, n) boolean causal mask."""
    if answer is None:
        return check_equal(answer, None, "causal_mask", "")
    ok = torch.is_tensor(answer) and answer.shape == (n, n) and bool((answer.bool() == causal_mask(n)).all())
    return check_equal(ok, True, "causal_mask", "query i may see keys 0..i: a lower-triangular matrix of True, "
                       "e.g. torch.ones(n, n, dtype=torch.bool).tril()")


@exercise("03", "attention_params")
def check_attention_params(answer: int | None, block: torch.nn.Module) -> bool:
    """Exercise: the parameters of the Q, K, V and output projections of one BERT attention block."""
    expected = sum(p.numel() for lin in (block.self.query, block.self.key, block.self.value, block.output.dense)
                   for p in lin.parameters())
    return check_equal(answer, expected, "attention_params", "four Linear layers of hidden × hidden weights "
                       "plus hidden biases each (hidden_size is in model.config)")


@exercise("03", "variance_prediction")
def check_variance_prediction(prediction: float | None, variance, d_k: int = 256) -> Verdict:
    """Predict-then-measure: the variance of unscaled scores q·k at width d_k, for q, k with N(0, 1) entries."""
    rows = variance[variance["d_k"] == d_k].set_index("scores")["variance"]
    measured, scaled = float(rows["q·k"]), float(rows["q·k / √d_k"])
    explanation = (f"q·k adds up {d_k} products q_i·k_i, each of mean 0 and variance 1, and variances of independent "
                   f"terms add: var(q·k) = d_k = {d_k}. The run measured {measured:.1f} (the gap to {d_k} is sampling "
                   f"noise); dividing the scores by √d_k = {math.sqrt(d_k):.0f} divides the variance by d_k: "
                   f"measured {scaled:.3f}.")
    return check_prediction(prediction, measured, "variance_prediction", explanation, rtol=0.2)
