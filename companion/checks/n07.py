"""Exercise checks of notebook 07."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..core.models import count_parameters, load_model
from ..engine.layered import ULMFIT_DECAY, freeze_lower
from ..lessons.n07_layered import adam_state_explanation
from . import Verdict, check_close, check_equal, check_prediction, exercise, feedback, not_attempted


@exercise("07", "adam_state_prediction")
def check_adam_state_prediction(answer, measured: int, trainable: int, total: int, tensors: int) -> Verdict:
    """Predict-then-measure: AdamW's state bytes after one step with the lower layers frozen (within 1 %)."""
    return check_prediction(answer, measured, "adam_state_prediction",
                            adam_state_explanation(measured, trainable, total, tensors), rtol=0.01)


@exercise("07", "trainable_after_freeze")
def check_trainable_after_freeze(answer, model_name: str, k: int) -> bool:
    """Exercise: trainable parameters after freezing the embeddings and the lowest k layers."""
    model = freeze_lower(load_model(model_name, "classifier", num_labels=5), k)
    return check_equal(answer, count_parameters(model)["trainable"], "trainable_after_freeze",
                       "add up the parameters of the parts above layer k-1 (parameter_shares lists every part)")


@exercise("07", "layer0_lr")
def check_layer0_lr(answer, head_lr: float, n_layers: int = 6, decay: float = ULMFIT_DECAY) -> bool:
    """Exercise: the discriminative learning rate of the lowest encoder layer."""
    return check_close(answer, head_lr / decay ** n_layers, "layer0_lr", "the head has the peak rate; every step "
                       "down (layer_5, layer_4, …, layer_0) divides by 2.6", atol=0, rtol=1e-6)


@exercise("07", "gradual_parts")
def check_gradual_parts(answer, epoch: int, n_layers: int = 6) -> bool:
    """Exercise: which parts train in a given epoch (0-based) of gradual unfreezing."""
    expected = [f"layer_{i}" for i in range(max(0, n_layers - epoch), n_layers)] + ["head"]
    if epoch > n_layers:
        expected = ["embeddings"] + expected
    return check_equal(answer, expected, "gradual_parts", "epoch 0 trains the head only; each epoch adds the next "
                       "layer from the top, listed bottom to top like trainable_parts()")


def fresh_classifiers(seed: int = 2024) -> list[tuple[str, Callable[[], nn.Module], int]]:
    """Models the notebook never uses: tiny random BERT (with a pooler) and RoBERTa (its head holds a dense layer)
    classifiers of 4 and 5 layers, each with a k drawn at random below its number of layers (k ≥ 1) and k = all of them.
    Each entry is (a description, a function that builds a fresh copy of the model, k)."""
    from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

    g = torch.Generator().manual_seed(seed)
    small = {"vocab_size": 60, "hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 32,
             "max_position_embeddings": 40, "num_labels": 3}
    builds = [("a 4-layer BERT", lambda: BertForSequenceClassification(BertConfig(num_hidden_layers=4, **small))),
              ("a 5-layer RoBERTa", lambda: RobertaForSequenceClassification(
                  RobertaConfig(num_hidden_layers=5, pad_token_id=1, **small)))]
    cases = []
    for description, build in builds:
        n = build().config.num_hidden_layers
        cases += [(description, build, int(torch.randint(1, n, (1,), generator=g))), (description, build, n)]
    return cases


@exercise("07", "freeze_lowest_function")
def check_freeze_lowest_function(fn) -> Verdict:
    """Mechanism: the learner's `fn(model, k)` freezes the embeddings and the lowest k encoder layers (the rest stays
    trainable) and returns the model, run on fresh small classifiers against the package's freeze_lower."""
    name = "freeze_lowest_function"
    hint = ("base = model.base_model (bert, roberta, …); p.requires_grad_(False) for every p in "
            "base.embeddings.parameters() and in base.encoder.layer[i].parameters() for i in range(k) (layers 0 … "
            "k-1); leave the upper layers, the pooler and the classifier trainable; return model")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for description, build, k in fresh_classifiers():
        expected = {n for n, p in freeze_lower(build(), k).named_parameters() if p.requires_grad}
        model = build()
        try:
            got = fn(model, k)
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"on {description} with k={k} your function raised "
                                         f"{type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body (it returns the model), "
                                            "then run the cell again").emit()
        if not isinstance(got, nn.Module):
            return feedback(False, name, f"return the model, not {type(got).__name__}. {hint}")
        trainable = {n for n, p in got.named_parameters() if p.requires_grad}
        if trainable != expected:
            frozen_wrong = sorted({n.rsplit(".", 1)[0] for n in expected - trainable})
            trained_wrong = sorted({n.rsplit(".", 1)[0] for n in trainable - expected})
            shown = "; ".join(part for part in (
                f"frozen but should train: {', '.join(frozen_wrong[:3])}" if frozen_wrong else "",
                f"trainable but should be frozen: {', '.join(trained_wrong[:3])}" if trained_wrong else "") if part)
            count = sum(p.numel() for n, p in got.named_parameters() if p.requires_grad)
            target = sum(p.numel() for n, p in got.named_parameters() if n in expected)
            return feedback(False, name, f"on {description} with k={k}: {count:,} trainable parameters, "
                                         f"freeze_lower leaves {target:,} ({shown}). {hint}")
    return feedback(True, name, hint)
