"""Exercise checks of notebook 06."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..engine.forgetting import linear_cka
from ..engine.training import linear_warmup_decay
from . import Verdict, check_close, check_equal, check_prediction, exercise, feedback, not_attempted


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
def check_overfit_epoch(prediction: int | None, val_losses: Sequence[float],
                        turning_epochs: Sequence[int] | None = None) -> Verdict:
    """Exercise (predict, then measure): the epoch with the lowest validation loss in the overfitting run; the
    tolerance is the spread of that epoch over repeats of the experiment at other seeds (at least ±1)."""
    measured = int(min(range(len(val_losses)), key=lambda i: val_losses[i])) + 1
    epochs = list(turning_epochs) if turning_epochs else [measured]
    tolerance = max(1, max(epochs) - min(epochs))
    return check_prediction(prediction, measured, "overfit_epoch", f"Within ±{tolerance} epoch(s) counts: the "
                            f"turning epoch moved over {epochs} across {len(epochs)} seed(s). The "
                            "validation loss turns when the model starts to memorise its few examples (training loss "
                            "near 0): sooner with fewer examples or a higher rate; then it grows more confident on "
                            "its validation mistakes.", rtol=tolerance / measured)


def fresh_weighted_ce_inputs(seed: int = 2024) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Inputs the notebook never uses: (logits, labels, class_weights) of a few sizes, with weights that do not
    average 1, a class absent from the labels (its weight must not count), one example, and logits large enough that
    exp() overflows in float32."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n, classes, scale in ((16, 3, 2.0), (7, 5, 1.0), (1, 4, 1.0), (12, 6, 150.0)):
        logits = torch.randn(n, classes, generator=g) * scale
        labels = torch.randint(0, classes - 1, (n,), generator=g)  # the last class never occurs
        weights = 0.2 + 4.8 * torch.rand(classes, generator=g)
        weights[-1] = 50.0  # a large weight on the absent class: dividing by the sum of all weights shows
        cases.append((logits, labels, weights))
    return cases


@exercise("06", "weighted_ce_function")
def check_weighted_ce_function(fn) -> Verdict:
    """Mechanism: the learner's `fn(logits, labels, class_weights)` → Σ w[yᵢ]·(−log softmax(zᵢ)[yᵢ]) / Σ w[yᵢ], run on
    fresh inputs against F.cross_entropy(weight=class_weights)."""
    name = "weighted_ce_function"
    hint = ("log_p = torch.log_softmax(logits, dim=-1) (stable); nll = -log_p[torch.arange(len(labels)), labels]; "
            "w = class_weights[labels] (each example's weight); return (w * nll).sum() / w.sum(), not a plain mean")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for logits, labels, weights in fresh_weighted_ce_inputs():
        expected = float(nn.functional.cross_entropy(logits, labels, weight=weights))
        try:
            got = fn(logits.clone(), labels.clone(), weights.clone())
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"with {len(labels)} examples of {logits.shape[1]} classes your function "
                                         f"raised {type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body, then run the cell "
                                            "again").emit()
        try:
            value = float(torch.as_tensor(got).detach().float().reshape(()))
        except (TypeError, ValueError, RuntimeError):
            return feedback(False, name, f"return one number (a scalar tensor), not {type(got).__name__}. {hint}")
        if not math.isclose(value, expected, rel_tol=1e-5, abs_tol=1e-5):
            return feedback(False, name, f"with {len(labels)} examples of {logits.shape[1]} classes (logits up to "
                                         f"{float(logits.abs().max()):.0f}, the last class absent from the labels) "
                                         f"you return {value:.5f}, F.cross_entropy(weight=…) gives {expected:.5f}. "
                                         f"{hint}")
    return feedback(True, name, hint)
