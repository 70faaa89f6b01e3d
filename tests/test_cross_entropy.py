"""Unit tests of companion.lessons.n02_cross_entropy against torch.nn.functional and the real models' own losses."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from companion.lessons.n02_cross_entropy import IGNORE_INDEX, causal_lm_labels, cross_entropy, mask_tokens, naive_log_softmax, shift_for_next_token, stable_log_softmax
from companion.checks.n02 import check_clm_labels, check_cross_entropy, check_label_smoothing


def test_log_softmax_stable_vs_naive():
    small = torch.randn(3, 7)
    assert torch.allclose(naive_log_softmax(small), torch.log_softmax(small, -1), atol=1e-6)
    big = torch.tensor([1000.0, 1001.0, 1002.0])
    assert torch.isnan(naive_log_softmax(big)).any()  # exp overflows to inf, inf/inf = nan
    assert torch.allclose(stable_log_softmax(big), torch.log_softmax(big, -1), atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_matches_torch(smoothing):
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 6, 11, generator=g), torch.randint(0, 11, (2, 6), generator=g)
    targets[0, :2] = IGNORE_INDEX
    expected = F.cross_entropy(logits.view(-1, 11), targets.view(-1), ignore_index=-100, label_smoothing=smoothing)
    assert float(cross_entropy(logits, targets, label_smoothing=smoothing)) == pytest.approx(float(expected), abs=1e-5)


def test_classifier_loss(minilm, medical):
    from companion import load_model

    _, tok = minilm
    torch.manual_seed(0)
    model = load_model("minilm", "classifier", num_labels=5)
    batch = tok(medical["train"]["text"][:4], padding=True, truncation=True, max_length=64, return_tensors="pt")
    labels = torch.tensor(medical["train"]["label"][:4])
    with torch.no_grad():
        out = model(**batch, labels=labels)
    assert float(cross_entropy(out.logits, labels)) == pytest.approx(float(out.loss), abs=1e-5)


def test_causal_lm_labels_and_shift(smollm2):
    model, tok = smollm2
    batch = tok(["The patient was treated with antibiotics.", "Rest."], padding=True, return_tensors="pt")
    labels = causal_lm_labels(batch["input_ids"], batch["attention_mask"])
    assert (labels[batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    assert torch.equal(labels[batch["attention_mask"] == 1], batch["input_ids"][batch["attention_mask"] == 1])
    with torch.no_grad():
        out = model(**batch, labels=labels)
    logits, shifted = shift_for_next_token(out.logits, labels)
    assert logits.shape[1] == shifted.shape[1] == labels.shape[1] - 1
    assert float(cross_entropy(logits, shifted)) == pytest.approx(float(out.loss), abs=1e-5)


def test_mask_tokens(minilm):
    _, tok = minilm
    enc = tok("Laparoscopic cholecystectomy is the standard treatment of gallstones.", return_tensors="pt")
    special = torch.tensor(tok.get_special_tokens_mask(enc["input_ids"][0].tolist(), already_has_special_tokens=True))[None]
    masked, labels = mask_tokens(enc["input_ids"], tok.mask_token_id, special, 0.5, torch.Generator().manual_seed(1))
    chosen = labels != IGNORE_INDEX
    assert chosen.any() and not chosen[special.bool()].any()
    assert (masked[chosen] == tok.mask_token_id).all()
    assert torch.equal(masked[~chosen], enc["input_ids"][~chosen])
    assert torch.equal(labels[chosen], enc["input_ids"][chosen])
    none, none_labels = mask_tokens(enc["input_ids"], tok.mask_token_id, special, 0.0)
    assert torch.equal(none, enc["input_ids"]) and (none_labels == IGNORE_INDEX).all()


def test_checks(capsys):
    logits = torch.tensor([2.0, 0.5, -1.0])
    assert check_cross_entropy(float(torch.logsumexp(logits, 0) - 2.0), logits, 0)
    assert not check_cross_entropy(0.5, logits, 0)
    log_p = torch.log_softmax(logits, 0)
    assert check_label_smoothing(float(0.8 * -log_p[0] + 0.2 * -log_p.mean()), logits, 0, 0.2)
    ids, mask = torch.tensor([[5, 6, 7], [8, 9, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert check_clm_labels(torch.tensor([[5, 6, 7], [8, 9, -100]]), ids, mask)
    assert not check_clm_labels(ids, ids, mask)
    assert not check_clm_labels(None, ids, mask)
    assert math.isfinite(float(cross_entropy(logits[None], torch.tensor([0]))))
    assert "Hint" in capsys.readouterr().out
