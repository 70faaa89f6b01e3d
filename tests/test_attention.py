"""Unit tests of companion.lessons.n03_attention against torch and the real pretrained MiniLM and SmolLM2 layers."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch
import torch.nn.functional as F

from companion.lessons.n03_attention import apply_rope, attention, attention_heatmap, bert_attention_from_weights, bert_attention_maps, capture, causal_mask, llama_attention_from_weights, merge_heads, padding_mask, rope_cos_sin, same_word_attention, same_word_ratios, split_heads, word_groups
from companion.checks.n03 import check_attention_params, check_attention_weights, check_causal_mask, check_variance_prediction


def _qkv(*shape):
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(*shape, generator=g) for _ in range(3))


def test_attention_matches_sdpa():
    q, k, v = _qkv(2, 3, 7, 8)
    out, w = attention(q, k, v)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v), atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3, 7))
    out_c, w_c = attention(q, k, v, causal_mask(7))
    assert torch.allclose(out_c, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)
    assert (w_c.triu(1) == 0).all()


def test_masks_and_heads():
    assert torch.equal(causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    pm = padding_mask(torch.tensor([[1, 1, 0]]))
    assert pm.shape == (1, 1, 1, 3) and pm.tolist() == [[[[True, True, False]]]]
    x = torch.randn(2, 5, 12)
    assert split_heads(x, 3).shape == (2, 3, 5, 4)
    assert torch.equal(merge_heads(split_heads(x, 3)), x)
    assert torch.equal(split_heads(x, 3)[:, 1], x[..., 4:8])  # head 1 = columns 4..7


def test_bert_layer_reproduced(minilm):
    model, tok = minilm
    batch = tok(["The patient underwent cholecystectomy.", "Short."], padding=True, return_tensors="pt")
    for i in (0, len(model.encoder.layer) - 1):
        block = model.encoder.layer[i].attention
        with torch.no_grad(), capture(block) as seen:
            model(**batch)
        hidden = seen["args"][0] if seen["args"] else seen["kwargs"]["hidden_states"]
        with torch.no_grad():
            out, w = bert_attention_from_weights(block, hidden, batch["attention_mask"])
        assert (out - seen["output"][0]).abs().max() < 1e-5
        assert (w[1, :, :, batch["attention_mask"][1] == 0] == 0).all()  # no weight on padding


def test_bert_attention_maps_and_heatmap(minilm):
    model, tok = minilm
    tokens, maps = bert_attention_maps(model, tok, "Gallstones hurt.")
    assert tokens[0] == "[CLS]" and len(maps) == model.config.num_hidden_layers
    assert maps[0].shape == (model.config.num_attention_heads, len(tokens), len(tokens))
    assert torch.allclose(maps[0].sum(-1), torch.ones(maps[0].shape[:2]), atol=1e-5)
    ax = attention_heatmap(maps[0][0], tokens, title="t")
    assert ax.get_title() == "t" and len(ax.get_xticklabels()) == len(tokens)


def test_rope_and_llama_layer(smollm2):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    model, tok = smollm2
    theta = model.config.rope_parameters["rope_theta"]
    attn = model.model.layers[2].self_attn
    ids = tok("Aspirin reduces the risk of stroke.", return_tensors="pt")
    with torch.no_grad(), capture(attn) as seen:
        model(**ids)
    hidden = seen["kwargs"].get("hidden_states", seen["args"][0] if seen["args"] else None)
    cos_m, sin_m = seen["kwargs"]["position_embeddings"]
    cos, sin = rope_cos_sin(torch.arange(hidden.shape[1])[None], attn.head_dim, theta)
    assert torch.allclose(cos, cos_m, atol=1e-5) and torch.allclose(sin, sin_m, atol=1e-5)
    q, k, _ = _qkv(1, 3, hidden.shape[1], attn.head_dim)
    ref_q, ref_k = apply_rotary_pos_emb(q, k, cos, sin)
    assert torch.allclose(apply_rope(q, cos, sin), ref_q, atol=1e-6) and torch.allclose(apply_rope(k, cos, sin), ref_k, atol=1e-6)
    with torch.no_grad():
        out, w = llama_attention_from_weights(attn, hidden, theta)
    assert (out - seen["output"][0]).abs().max() < 1e-5
    assert w.shape[1] == model.config.num_attention_heads and (w[0, 0].triu(1) == 0).all()


def test_rope_relative():
    """Rotated dot products depend only on the position offset."""
    cos, sin = rope_cos_sin(torch.arange(8)[None], 4, 10000.0)
    q, k = torch.randn(4), torch.randn(4)
    rq = apply_rope(q.expand(1, 1, 8, 4), cos, sin)[0, 0]
    rk = apply_rope(k.expand(1, 1, 8, 4), cos, sin)[0, 0]
    assert torch.allclose(rq[3] @ rk[1], rq[6] @ rk[4], atol=1e-5)


def test_checks(minilm, capsys):
    q, k = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    assert check_attention_weights(torch.softmax(q @ k.T / 2 ** 0.5, -1), q, k)
    assert not check_attention_weights(torch.softmax(q @ k.T, -1), q, k)
    assert check_causal_mask(torch.ones(4, 4).tril().bool(), 4) and not check_causal_mask(torch.ones(4, 4).bool(), 4)
    assert not check_causal_mask(None, 4)
    d = minilm[0].config.hidden_size
    assert check_attention_params(4 * (d * d + d), minilm[0].encoder.layer[0].attention)
    assert "Hint" in capsys.readouterr().out


def test_same_word_attention(minilm):
    model, tok = minilm
    assert word_groups([None, 0, 1, 1, 1, 2, None]) == [[2, 3, 4]]
    uniform = [torch.full((2, 5, 5), 1 / 5)] * 3  # uniform attention: the ratio to uniform is exactly 1
    table = same_word_attention(uniform, [None, 0, 0, 1, None])
    assert len(table) == 3 and torch.allclose(torch.tensor(table["weight on same-word pieces"].values),
                                              torch.tensor(table["uniform attention would give"].values).double())
    assert same_word_attention(uniform, [None, 0, 1, 2, None]).empty  # no split word
    text = "Laparoscopic cholecystectomy for symptomatic gallstones."
    ratios = same_word_ratios(model, tok, [text, "The cat sat."])
    assert set(ratios["text"]) == {0} and sorted(ratios["layer"]) == list(range(6)) and (ratios["ratio"] > 0).all()


def test_variance_prediction_tolerance_is_four_standard_errors(capsys):
    import pandas as pd

    variance = pd.DataFrame({"d_k": [256, 256], "scores": ["q·k", "q·k / √d_k"], "variance": [250.0, 0.98],
                             "standard error": [2.5, 0.01]})
    assert check_variance_prediction(256, variance)  # 6 = 2.4 standard errors away
    assert not check_variance_prediction(265, variance)  # 15 = 6 standard errors away
    assert not check_variance_prediction(16, variance)
    assert "±10.0" in capsys.readouterr().out
