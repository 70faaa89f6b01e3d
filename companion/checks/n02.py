"""Exercise checks of notebook 02."""
from __future__ import annotations

import math

import torch

from ..lessons.n02_cross_entropy import causal_lm_labels
from . import Verdict, check_close, check_equal, exercise, feedback, not_attempted


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


def fresh_ce_inputs(seed: int = 2024) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Inputs the notebook never uses: (logits, labels) of a few shapes, with -100 labels, one case where all but one
    position is ignored, and one with logits large enough that exp() overflows in float32."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for shape, classes, scale in (((2, 7), 11, 3.0), ((3,), 5, 1.0), ((4, 5), 9, 200.0)):
        logits = torch.randn(*shape, classes, generator=g) * scale
        labels = torch.randint(0, classes, shape, generator=g)
        labels[torch.rand(shape, generator=g) < 0.4] = -100
        labels.view(-1)[0] = 0  # at least one scored position
        cases.append((logits, labels))
    logits, labels = torch.randn(2, 6, 4, generator=g), torch.full((2, 6), -100)
    labels[1, 3] = 2  # one scored position among twelve
    return cases + [(logits, labels)]


@exercise("02", "masked_ce_function")
def check_masked_ce_function(fn) -> Verdict:
    """Mechanism: the learner's `fn(logits, labels)` → the mean −log softmax(logits)[label] over the positions whose
    label is not -100, run on fresh inputs against F.cross_entropy(ignore_index=-100)."""
    name = "masked_ce_function"
    hint = ("log_p = torch.log_softmax(logits, dim=-1) (stable, unlike log(softmax)); keep = labels != -100; "
            "gather log_p at labels[keep] and average over the kept positions only")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for logits, labels in fresh_ce_inputs():
        expected = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                     ignore_index=-100)
        try:
            got = fn(logits.clone(), labels.clone())
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"with logits {tuple(logits.shape)} your function raised "
                                         f"{type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body, then run the cell "
                                            "again").emit()
        value = float(torch.as_tensor(got).detach().float().reshape(()))
        if not math.isclose(value, float(expected), rel_tol=1e-5, abs_tol=1e-5):
            return feedback(False, name, f"with logits {tuple(logits.shape)} (scale {float(logits.abs().max()):.0f}), "
                                         f"{int((labels != -100).sum())} of {labels.numel()} positions scored, you "
                                         f"return {value:.5f}, F.cross_entropy gives {float(expected):.5f}. {hint}")
    return feedback(True, name, hint)
