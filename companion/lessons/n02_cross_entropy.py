"""Cross-entropy (notebook 02): the loss by hand, label masks for causal and masked LM, label smoothing,
and the numerically stable log-softmax."""
from __future__ import annotations

import torch


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






