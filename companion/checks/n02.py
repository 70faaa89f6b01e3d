"""Exercise checks of notebook 02."""
from __future__ import annotations

import torch

from ..lessons.n02_cross_entropy import causal_lm_labels
from . import check_close, check_equal, exercise


@exercise("02", "cross_entropy")
def check_cross_entropy(answer: float | None, logits: torch.Tensor, target: int) -> bool:
    """Exercise: the cross-entropy of one prediction computed by hand."""
    expected = torch.nn.functional.cross_entropy(logits[None].float(), torch.tensor([target]))
    return check_close(answer, float(expected), "cross_entropy", "−log softmax(logits)[target]: "
                       "-(logits[target] - torch.logsumexp(logits, 0))", rtol=1e-4)


@exercise("02", "label_smoothing")
def check_label_smoothing(answer: float | None, logits: torch.Tensor, target: int, epsilon: float) -> bool:
    """Exercise: the label-smoothed cross-entropy of one prediction."""
    expected = torch.nn.functional.cross_entropy(logits[None].float(), torch.tensor([target]), label_smoothing=epsilon)
    return check_close(answer, float(expected), "label_smoothing", "(1 − ε)·(−log p[target]) + ε·mean over all "
                       "classes of (−log p_k)", rtol=1e-4)


@exercise("02", "clm_labels")
def check_clm_labels(answer: torch.Tensor | None, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> bool:
    """Exercise: the labels of a padded causal-LM batch (-100 on padding)."""
    if answer is None:
        return check_equal(answer, None, "clm_labels", "")
    expected = causal_lm_labels(input_ids, attention_mask)
    ok = torch.is_tensor(answer) and answer.shape == expected.shape and bool((answer == expected).all())
    return check_equal(ok, True, "clm_labels", "start from input_ids.clone() and set the positions where "
                       "attention_mask == 0 to -100 (do not shift: the model shifts internally)")
