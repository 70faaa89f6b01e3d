"""peft wrappers: trainable parameter counts, text initialisation, and that each method changes the output."""
from __future__ import annotations

import pytest
import torch

from companion import CourseError, count_parameters, load_model, load_tokenizer
from companion.peft_configs import INIT_TEXT, PEFT_METHODS, base_encoder, peft_config, wrap_peft

HEAD = 384 * 5 + 5


@pytest.fixture(scope="module")
def batch():
    return load_tokenizer("minilm")(["a heart attack", "a brain tumour was removed"], padding=True, return_tensors="pt")


def _wrapped(method, **kw):
    torch.manual_seed(0)
    return wrap_peft(load_model("minilm", "classifier", num_labels=5), method, "minilm", **kw)


@pytest.mark.parametrize("method,expected", [("prompt_tuning", 10 * 384 + HEAD), ("prompt_tuning_text", 10 * 384 + HEAD),
                                             ("lora", 6 * 2 * (384 * 8 * 2) + HEAD)])
def test_trainable_parameter_counts(method, expected):
    kw = {"r": 8} if method == "lora" else {"num_virtual_tokens": 10}
    assert count_parameters(_wrapped(method, **kw))["trainable"] == expected


def test_text_initialisation_copies_the_word_embeddings():
    model = _wrapped("prompt_tuning_text", num_virtual_tokens=6)
    ids = load_tokenizer("minilm")(INIT_TEXT)["input_ids"][:6]  # peft keeps [CLS] at the front
    words = base_encoder(model).embeddings.word_embeddings.weight[ids]
    assert torch.allclose(model.prompt_encoder["default"].embedding.weight, words)


@pytest.mark.parametrize("method", ["prompt_tuning", "p_tuning", "prefix_tuning"])
def test_soft_prompt_changes_the_logits(method, batch):
    model = _wrapped(method, num_virtual_tokens=4).eval()
    with torch.no_grad():
        before = model(**batch).logits.clone()
        for p in model.prompt_encoder.parameters():
            p.add_(torch.randn_like(p))
        after = model(**batch).logits
    assert not torch.allclose(before, after, atol=1e-4)


def test_every_method_trains_and_unknown_is_refused(batch):
    for method in PEFT_METHODS:
        model = _wrapped(method, **({"r": 4} if method == "lora" else {"num_virtual_tokens": 4}))
        model(**batch, labels=torch.tensor([3, 0])).loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad), method
    with pytest.raises(CourseError):
        peft_config("adapters")
