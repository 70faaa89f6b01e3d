"""Notebook 07's measured optimiser state and its predict-then-measure check, on the real MiniLM classifier."""
from __future__ import annotations

import pytest
import torch

from companion import count_parameters, load_model, load_tokenizer
from companion.lessons.n07_layered import adam_state_explanation, optimizer_state_bytes
from companion.checks.n07 import check_adam_state_prediction
from companion.engine.layered import freeze_lower


@pytest.fixture(scope="module")
def stepped():
    """A MiniLM classifier with embeddings + 4 layers frozen, after one AdamW step on two sentences."""
    model = freeze_lower(load_model("minilm", "classifier", num_labels=2), 4)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = load_tokenizer("minilm")(["a short text", "another one"], padding=True, return_tensors="pt")
    model(**batch, labels=torch.tensor([0, 1])).loss.backward()
    optimizer.step()
    counts = count_parameters(model)
    tensors = sum(1 for p in model.parameters() if p.requires_grad)
    return optimizer_state_bytes(optimizer), counts["trainable"], counts["total"], tensors


def test_state_is_two_moments_per_trainable_number(stepped):
    measured, trainable, total, tensors = stepped
    assert trainable < total
    assert measured == 2 * 4 * trainable + 4 * tensors  # exp_avg + exp_avg_sq (float32) + a float32 step each


def test_no_state_before_a_step():
    model = load_model("minilm", "classifier", num_labels=2)
    assert optimizer_state_bytes(torch.optim.AdamW(model.parameters())) == 0


def test_prediction_check(stepped):
    measured, trainable, total, tensors = stepped
    assert check_adam_state_prediction(2 * 4 * trainable, measured, trainable, total, tensors)
    assert not check_adam_state_prediction(2 * 4 * total, measured, trainable, total, tensors)  # frozen counted
    assert not check_adam_state_prediction(4 * trainable, measured, trainable, total, tensors)  # one moment only
    assert not check_adam_state_prediction(None, measured, trainable, total, tensors)  # not attempted
    assert f"{2 * 4 * total:,}" in adam_state_explanation(measured, trainable, total, tensors)
