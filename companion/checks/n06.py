"""Exercise checks of notebook 06."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..engine.forgetting import linear_cka
from ..engine.training import linear_warmup_decay
from . import Verdict, check_close, check_equal, check_prediction, exercise


@exercise("06", "linear_cka")
def check_linear_cka(answer, x: torch.Tensor, y: torch.Tensor) -> bool:
    """Exercise: linear CKA of two feature matrices, computed by hand."""
    return check_close(answer, linear_cka(x, y), "linear_cka", "centre both matrices (subtract the column means), "
                       "then ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F) with torch.linalg.norm (Frobenius)", atol=1e-4)


@exercise("06", "total_steps")
def check_total_steps(answer, n_examples: int, batch_size: int, epochs: int) -> bool:
    """Exercise: optimiser steps of a run (the last, smaller batch of an epoch counts as a step)."""
    return check_equal(answer, math.ceil(n_examples / batch_size) * epochs, "total_steps",
                       "steps per epoch = ceil(examples / batch_size); multiply by the epochs")


@exercise("06", "lr_at_step")
def check_lr_at_step(answer, step: int, peak_lr: float, warmup_steps: int, total_steps: int) -> bool:
    """Exercise: the learning rate of the warm-up + linear-decay schedule at a step."""
    expected = peak_lr * linear_warmup_decay(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0),
                                             warmup_steps, total_steps).lr_lambdas[0](step)
    return check_close(answer, expected, "lr_at_step", "before warm-up ends: peak·step/warmup; after: "
                       "peak·(total − step)/(total − warmup)", atol=1e-9, rtol=1e-6)


@exercise("06", "overfit_epoch")
def check_overfit_epoch(prediction: int | None, val_losses: Sequence[float]) -> Verdict:
    """Exercise (predict, then measure): the epoch with the lowest validation loss in the overfitting run."""
    measured = int(min(range(len(val_losses)), key=lambda i: val_losses[i])) + 1
    tolerance = max(1, len(val_losses) // 4)
    return check_prediction(prediction, measured, "overfit_epoch", f"Within ±{tolerance} epoch(s) counts. The "
                            "validation loss turns when the model starts to memorise its few examples (training loss "
                            "near 0): sooner with fewer examples or a higher rate; then it grows more confident on "
                            "its validation mistakes.", rtol=tolerance / measured)
