"""Both embedded models load and run; bad names give one clear error; parameter counting."""
import pytest
import torch

import companion as cc
from companion.core.embeddings import mean_pool, sentence_embeddings


def test_minilm_encoder_gives_meaningful_embeddings(minilm):
    model, tokenizer = minilm
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    vectors = sentence_embeddings(model, tokenizer, ["heart attack", "myocardial infarction", "a blue lobster"])
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.1  # the medical synonyms are closer than the lobster


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask), torch.tensor([[2.0, 2.0]]))


def test_smollm2_causal_lm_predicts_text(smollm2):
    model, tokenizer = smollm2
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    ids = tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model(**ids, labels=ids["input_ids"])
    assert 0 < out.loss.item() < 10
    next_token = tokenizer.decode(out.logits[0, -1].argmax())
    assert next_token.strip() == "Paris"


def test_classifier_head_and_parameter_counts():
    model = cc.load_model("minilm", "classifier", num_labels=5, id2label={i: str(i) for i in range(5)})
    counts = cc.count_parameters(model)
    assert counts["total"] == 22_713_216 + 384 * 5 + 5  # encoder (with pooler) + new head
    head = 384 * 5 + 5
    for p in model.base_model.parameters():
        p.requires_grad = False
    frozen = cc.count_parameters(model)
    assert frozen["total"] == counts["total"]
    assert frozen["trainable"] == head
    assert frozen["trainable_pct"] == pytest.approx(100 * head / counts["total"])


def test_tied_weights_are_counted_once(smollm2):
    model, _ = smollm2
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert cc.count_parameters(model)["total"] == sum(p.numel() for p in model.parameters())


def test_unknown_model_gives_one_clear_error():
    with pytest.raises(cc.CourseError, match="minilm' or 'smollm2"):
        cc.load_model("no-such-org/no-such-model-xyz", "encoder")
    with pytest.raises(cc.CourseError, match="does not exist"):
        cc.load_model("./missing/model/folder", "encoder")
    with pytest.raises(cc.CourseError, match="unknown task"):
        cc.load_model("minilm", "translation")
    with pytest.raises(cc.CourseError, match="num_labels"):
        cc.load_model("minilm", "classifier")


def test_local_folder_loads(tmp_path, minilm):
    model, tokenizer = minilm
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again = cc.load_model(str(tmp_path), "encoder")
    assert torch.equal(again.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)
