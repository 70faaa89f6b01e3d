"""Cross-entropy (notebook 02): the loss by hand, label masks for causal and masked LM, label smoothing,
and the numerically stable log-softmax."""
from __future__ import annotations

import torch

from .exercises import check_close, check_equal, exercise

IGNORE_INDEX = -100  # the label value that PyTorch's cross_entropy and every transformers model skip


def naive_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log(exp(z) / Σ exp(z)) exactly as written: overflows for large logits."""
    exp = torch.exp(logits)
    return torch.log(exp / exp.sum(dim=-1, keepdim=True))


def stable_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """z - max(z) - log Σ exp(z - max(z)): the same value without overflow."""
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    return shifted - torch.log(torch.exp(shifted).sum(dim=-1, keepdim=True))


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean of −Σ_k y_k log p_k over the positions whose target is not `ignore_index` (y: one-hot, smoothed)."""
    logits = logits.reshape(-1, logits.shape[-1]).float()
    targets = targets.reshape(-1)
    keep = targets != ignore_index
    log_p = stable_log_softmax(logits[keep])
    n_classes = logits.shape[-1]
    y = torch.full_like(log_p, label_smoothing / n_classes)
    y[torch.arange(len(y)), targets[keep]] += 1.0 - label_smoothing
    return -(y * log_p).sum(dim=-1).mean()


def causal_lm_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Labels for a padded causal-LM batch: the input ids, with padding positions set to -100."""
    return input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)


def shift_for_next_token(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Align position t's logits with token t+1: drop the last logit and the first label."""
    return logits[:, :-1, :], labels[:, 1:]


def mask_tokens(input_ids: torch.Tensor, mask_token_id: int, special_mask: torch.Tensor, mask_prob: float = 0.15,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked-LM inputs and labels: replace a random `mask_prob` share of non-special tokens by [MASK];
    labels keep the original id there and -100 everywhere else (only masked positions count)."""
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special_mask.bool()
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)
    return input_ids.masked_fill(chosen, mask_token_id), labels


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
