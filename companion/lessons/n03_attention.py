"""Attention (notebook 03): scaled dot-product attention, masks, heads, a pretrained layer recomputed from its
own weights (BERT/MiniLM and Llama/SmolLM2 with RoPE and grouped-query attention), and attention heatmaps."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import pandas as pd
import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q Kᵀ / √d_k) V with an optional boolean mask (True = may attend); returns output and weights."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def causal_mask(n: int) -> torch.Tensor:
    """(n, n) boolean mask, True on and below the diagonal: token i sees tokens 0..i."""
    return torch.ones(n, n, dtype=torch.bool).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, 1, 1, n) boolean mask from a tokenizer's 0/1 attention_mask: no query attends to padding."""
    return attention_mask.bool()[:, None, None, :]


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(batch, n, h·d) → (batch, h, n, d)."""
    b, n, width = x.shape
    return x.view(b, n, n_heads, width // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(batch, h, n, d) → (batch, n, h·d), the inverse of split_heads."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


@contextmanager
def capture(module: torch.nn.Module) -> Iterator[dict]:
    """Record one call of `module`: its positional args, keyword args and output (a forward hook)."""
    record: dict = {}

    def hook(mod, args, kwargs, output):  # noqa: ANN001 - torch hook signature
        record.update(args=args, kwargs=kwargs, output=output)

    handle = module.register_forward_hook(hook, with_kwargs=True)
    try:
        yield record
    finally:
        handle.remove()


def bert_attention_from_weights(block: torch.nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    """A BERT attention block (`encoder.layer[i].attention`) recomputed from its weights: multi-head
    attention, output projection, residual and LayerNorm; returns output and weights (batch, h, n, n)."""
    sa, out = block.self, block.output
    h = sa.num_attention_heads
    q, k, v = (split_heads(hidden @ lin.weight.T + lin.bias, h) for lin in (sa.query, sa.key, sa.value))
    context, weights = attention(q, k, v, padding_mask(attention_mask))
    projected = merge_heads(context) @ out.dense.weight.T + out.dense.bias
    return torch.nn.functional.layer_norm(projected + hidden, (hidden.shape[-1],), out.LayerNorm.weight,
                                          out.LayerNorm.bias, out.LayerNorm.eps), weights


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary position embedding tables: angle(p, i) = p / θ^(2i/d), duplicated for both halves."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = positions.float()[..., None] * inv_freq
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (x_i, x_{i+d/2}) pair of a (batch, h, n, d) tensor by its position's angle."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos[:, None] + rotated * sin[:, None]


def llama_attention_from_weights(attn: torch.nn.Module, hidden: torch.Tensor, theta: float
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A Llama self-attention (`model.layers[i].self_attn`) recomputed from its weights: RoPE on Q and K,
    each key/value head shared by a group of query heads (GQA), causal mask, output projection."""
    cfg = attn.config
    n_q, n_kv, d = cfg.num_attention_heads, cfg.num_key_value_heads, attn.head_dim
    q = split_heads(hidden @ attn.q_proj.weight.T, n_q)
    k = split_heads(hidden @ attn.k_proj.weight.T, n_kv)
    v = split_heads(hidden @ attn.v_proj.weight.T, n_kv)
    positions = torch.arange(hidden.shape[1], device=hidden.device)[None].expand(hidden.shape[0], -1)
    cos, sin = rope_cos_sin(positions, d, theta)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    k, v = k.repeat_interleave(n_q // n_kv, dim=1), v.repeat_interleave(n_q // n_kv, dim=1)
    context, weights = attention(q, k, v, causal_mask(hidden.shape[1]).to(hidden.device))
    return merge_heads(context) @ attn.o_proj.weight.T, weights


@torch.no_grad()
def bert_attention_maps(model: torch.nn.Module, tokenizer, text: str) -> tuple[list[str], list[torch.Tensor]]:
    """Tokens of a text and, per layer, its attention weights (heads, n, n), recomputed from the weights."""
    batch = tokenizer(text, return_tensors="pt").to(next(model.parameters()).device)
    out = model(**batch, output_hidden_states=True)
    maps = [bert_attention_from_weights(layer.attention, out.hidden_states[i], batch["attention_mask"])[1][0].cpu()
            for i, layer in enumerate(model.encoder.layer)]
    return tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist()), maps


def word_groups(word_ids: list[int | None]) -> list[list[int]]:
    """The token positions of each word that the tokenizer split into two or more pieces."""
    groups: dict[int, list[int]] = {}
    for pos, word in enumerate(word_ids):
        if word is not None:
            groups.setdefault(word, []).append(pos)
    return [g for g in groups.values() if len(g) > 1]


def same_word_attention(maps: list[torch.Tensor], word_ids: list[int | None]) -> pd.DataFrame:
    """Per layer: the weight each piece of a split word puts on the *other* pieces of the same word (mean over heads
    and pieces), next to what uniform attention over all tokens would give; empty when no word is split."""
    multi, n = word_groups(word_ids), len(word_ids)
    rows = []
    for layer, heads in enumerate(maps):
        mean_heads = heads.mean(0)
        within = [float(mean_heads[i, [j for j in g if j != i]].sum()) for g in multi for i in g]
        uniform = [(len(g) - 1) / n for g in multi for _ in g]
        if within:
            rows.append({"layer": layer, "weight on same-word pieces": sum(within) / len(within),
                         "uniform attention would give": sum(uniform) / len(uniform)})
    return pd.DataFrame(rows, columns=["layer", "weight on same-word pieces", "uniform attention would give"])


def same_word_ratios(model: torch.nn.Module, tokenizer, texts: list[str]) -> pd.DataFrame:
    """For each text with a split word and each layer: same-word weight / uniform weight (1 = chance)."""
    rows = []
    for index, text in enumerate(texts):
        _, maps = bert_attention_maps(model, tokenizer, text)
        table = same_word_attention(maps, tokenizer(text).word_ids())
        ratio = table["weight on same-word pieces"] / table["uniform attention would give"]
        rows += [{"text": index, "layer": int(layer), "ratio": float(r)} for layer, r in zip(table["layer"], ratio)]
    return pd.DataFrame(rows, columns=["text", "layer", "ratio"])


def attention_heatmap(weights: torch.Tensor, tokens: list[str], ax=None, title: str = "", cbar: bool = False):
    """A seaborn heatmap of one (n, n) attention matrix: rows = queries, columns = keys."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.gca()
    sns.heatmap(weights.detach().float().cpu().numpy(), xticklabels=tokens, yticklabels=tokens, cmap="viridis",
                vmin=0.0, vmax=1.0, square=True, cbar=cbar, ax=ax)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    return ax
