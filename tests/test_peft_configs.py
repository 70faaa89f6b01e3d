"""peft strategies: trainable parameter counts, text initialisation, and that each method changes the output."""
from __future__ import annotations

import pytest
import torch

from companion import CourseError, count_parameters, load_model, load_tokenizer
from companion.engine.peft_configs import INIT_TEXT, base_encoder, prepare_lora, prepare_p_tuning, prepare_prefix_tuning, prepare_prompt_tuning, prepare_prompt_tuning_text

HEAD = 384 * 5 + 5


@pytest.fixture(scope="module")
def batch():
    return load_tokenizer("minilm")(["a heart attack", "a brain tumour was removed"], padding=True, return_tensors="pt")


def _wrapped(prepare, **kw):
    torch.manual_seed(0)
    return prepare(load_model("minilm", "classifier", num_labels=5), **kw).model


@pytest.mark.parametrize("prepare,kw,expected", [(prepare_prompt_tuning, {"num_virtual_tokens": 10}, 10 * 384 + HEAD),
                                                 (prepare_prompt_tuning_text, {"num_virtual_tokens": 10}, 10 * 384 + HEAD),
                                                 (prepare_lora, {"r": 8}, 6 * 2 * (384 * 8 * 2) + HEAD)])
def test_trainable_parameter_counts(prepare, kw, expected):
    assert count_parameters(_wrapped(prepare, **kw))["trainable"] == expected


def test_text_initialisation_copies_the_word_embeddings():
    model = _wrapped(prepare_prompt_tuning_text, num_virtual_tokens=6)
    ids = load_tokenizer("minilm")(INIT_TEXT)["input_ids"][:6]  # peft keeps [CLS] at the front
    words = base_encoder(model).embeddings.word_embeddings.weight[ids]
    assert torch.allclose(model.prompt_encoder["default"].embedding.weight, words)


def test_text_initialisation_needs_the_models_folder():
    from transformers import BertConfig, BertForSequenceClassification

    unsaved = BertForSequenceClassification(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                       intermediate_size=64, num_labels=5))
    with pytest.raises(CourseError, match="model's folder"):
        prepare_prompt_tuning_text(unsaved, num_virtual_tokens=4)


@pytest.mark.parametrize("prepare", [prepare_prompt_tuning, prepare_p_tuning, prepare_prefix_tuning])
def test_soft_prompt_changes_the_logits(prepare, batch):
    model = _wrapped(prepare, num_virtual_tokens=4).eval()
    with torch.no_grad():
        before = model(**batch).logits.clone()
        for p in model.prompt_encoder.parameters():
            p.add_(torch.randn_like(p))
        after = model(**batch).logits
    assert not torch.allclose(before, after, atol=1e-4)
