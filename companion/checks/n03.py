"""Exercise checks of notebook 03."""
from __future__ import annotations

import math

import torch

from ..lessons.n03_attention import causal_mask
from . import Verdict, check_close, check_equal, check_prediction, exercise, feedback, not_attempted


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
def check_variance_prediction(prediction: float | None, variance, d_k: int = 256, errors: float = 4.0) -> Verdict:
    """Predict-then-measure: the variance of unscaled scores q·k at width d_k, for q, k with N(0, 1) entries. The
    table holds the measured variance and its standard error (the spread of the estimate over independent blocks of
    the samples); a prediction counts when it lies within `errors` standard errors of the measurement."""
    rows = variance[variance["d_k"] == d_k].set_index("scores")
    measured, scaled = float(rows.loc["q·k", "variance"]), float(rows.loc["q·k / √d_k", "variance"])
    stderr = float(rows.loc["q·k", "standard error"])
    explanation = (f"q·k adds up {d_k} products q_i·k_i, each of mean 0 and variance 1, and variances of independent "
                   f"terms add: var(q·k) = d_k = {d_k}. The run measured {measured:.1f} with a standard error of "
                   f"{stderr:.1f} (the spread over independent blocks of the samples), so a prediction within "
                   f"{errors:g} standard errors (±{errors * stderr:.1f}) counts. Dividing the scores by "
                   f"√d_k = {math.sqrt(d_k):.0f} divides the variance by d_k: measured {scaled:.3f}.")
    rtol = errors * stderr / abs(measured)
    return check_prediction(prediction, measured, "variance_prediction", explanation, rtol=rtol)


def fresh_qkv(seed: int = 2024) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Inputs the notebook never uses: (q, k, v) with a batch, with heads, a value width unlike the key width, and
    one token."""
    g = torch.Generator().manual_seed(seed)
    shapes = [((2, 6, 8), (2, 6, 8), (2, 6, 8)), ((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 7)),
              ((1, 9, 16), (1, 9, 16), (1, 9, 3)), ((3, 1, 4), (3, 1, 4), (3, 1, 2))]
    return [tuple(torch.randn(*shape, generator=g) * 2 for shape in triple) for triple in shapes]


@exercise("03", "causal_attention_function")
def check_causal_attention_function(fn) -> Verdict:
    """Mechanism: the learner's `fn(q, k, v)` → causal attention softmax(QKᵀ/√d_k + causal mask) V, run on fresh
    inputs against F.scaled_dot_product_attention(is_causal=True)."""
    name = "causal_attention_function"
    hint = ("scores = q @ k.transpose(-2, -1) / math.sqrt(d_k); set the scores above the diagonal (key j > query "
            "i) to -inf with masked_fill; softmax over the last dimension (the keys); multiply by v")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for q, k, v in fresh_qkv():
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        try:
            got = fn(q.clone(), k.clone(), v.clone())
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"with q of shape {tuple(q.shape)} your function raised "
                                         f"{type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body, then run the cell "
                                            "again").emit()
        if isinstance(got, tuple):  # (output, weights) like the notebook's own attention(): the output counts
            got = got[0]
        if not torch.is_tensor(got) or got.shape != expected.shape:
            shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
            return feedback(False, name, f"with q {tuple(q.shape)} and v {tuple(v.shape)} the output must have "
                                         f"shape {tuple(expected.shape)}, yours is {shape}. {hint}")
        if not torch.allclose(got.float(), expected, atol=1e-5, rtol=1e-5):
            diff = float((got.float() - expected).abs().max())
            return feedback(False, name, f"with q of shape {tuple(q.shape)} your output differs from "
                                         f"F.scaled_dot_product_attention(is_causal=True) by up to {diff:.3g}. {hint}")
    return feedback(True, name, hint)
