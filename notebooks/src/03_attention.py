# %% [markdown]
# # 03 · Attention and the Transformer
#
# Attention is the one operation that lets every token look at every other token. Fine-tuning strategies
# later in the course freeze, unfreeze or prompt these layers, so here we open one up completely: we write
# scaled dot-product attention from scratch, check it against PyTorch, and then recompute a **pretrained**
# layer of MiniLM (and of SmolLM2, with rotary positions and grouped-query attention) from its own weights.
#
# **In this notebook you will**
# 1. implement $\operatorname{softmax}(QK^\top/\sqrt{d_k})\,V$ and match `F.scaled_dot_product_attention`;
# 2. measure why the $\sqrt{d_k}$ is there (variance of $QK^\top$, softmax saturation);
# 3. add padding and causal masks, and split/merge heads (matching `nn.MultiheadAttention`);
# 4. reproduce MiniLM's layer attention output and a SmolLM2 attention layer to < 1e-5;
# 5. look at attention heatmaps of a real medical sentence whose domain term is split into subwords.
#
# **Prerequisites:** notebooks 00–02 (the models; softmax and cross-entropy); matrix products and tensor
# shapes in PyTorch. **Study time:** about 75 minutes for a first reading with the exercises.
#
# **Machine time** (kernel start and model loading included) is printed by the last cell and kept in
# `notebooks/results/03_attention.results.json` (`seconds`); BENCHMARKS.md lists every notebook's with the load the
# machine had when it was measured. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
import inspect
import math
import time
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

import companion as cc
from companion.core.data import load_medical_abstracts
from companion.core.stats import mean_ci
from companion.lessons.n01_lm_probability import split_sentences
from companion.lessons.n03_attention import apply_rope, attention_heatmap, bert_attention_maps, capture, causal_mask, llama_attention_from_weights, merge_heads, rope_cos_sin, same_word_attention, same_word_ratios, split_heads, word_groups
from companion.core.plots import plain_log_axis

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch
model_name: str = "minilm"  # BERT-style encoder to reproduce: embedded name, local folder or hub id
lm_name: str = "smollm2"  # Llama-style causal LM for the RoPE and GQA layer: embedded name, local folder or hub id
layer: int = 0  # range: [0, inf); encoder layer reproduced from its weights
lm_layer: int = 3  # range: [0, inf); causal-LM layer reproduced from its weights
text: str = "The patient underwent laparoscopic cholecystectomy for symptomatic gallstones."  # sentence for the heatmaps
n_samples: Optional[int] = None  # range: [1, inf); random query-key pairs per size in the variance experiment; None means the profile default

# %%
cc.check_values("03", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, trains=False)  # resolve the profile, seed, pick the device, start a clock
cfg = cc.settings(PROFILE, {"smoke": {"n_samples": 2000, "n_sentences": 4},
                            "cpu": {"n_samples": 20000, "n_sentences": 32},
                            "gpu": {"n_samples": 100000, "n_sentences": 200}}, n_samples=n_samples)
print("profile:", PROFILE, "| settings:", cfg)

# %% [markdown]
# ## 1. Scaled dot-product attention from scratch
#
# Each token emits a **query** $q_i$, a **key** $k_j$ and a **value** $v_j$ (rows of $Q, K, V$). Token $i$
# scores every token $j$ by the dot product $q_i\cdot k_j$, turns the scores into weights with a softmax, and
# returns the weighted average of the values:
#
# $$\operatorname{Attention}(Q,K,V)=\operatorname{softmax}\!\Big(\frac{QK^\top}{\sqrt{d_k}}\Big)V,
#   \qquad A_{ij}=\frac{\exp(q_i\cdot k_j/\sqrt{d_k})}{\sum_{j'}\exp(q_i\cdot k_{j'}/\sqrt{d_k})},\quad \sum_j A_{ij}=1.$$
#
# A mask (True = may attend) sets forbidden scores to $-\infty$ before the softmax, so their weight is exactly 0.

# %%
def attention(q, k, v, mask=None):
    """softmax(Q Kᵀ / √d_k) V; `mask` is boolean, True where a query may attend to a key."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])   # (…, n_q, n_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)                     # each row sums to 1
    return weights @ v, weights


# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(2, 5, 16, generator=g) for _ in range(3))   # batch 2, 5 tokens, d_k = 16
ours, weights = attention(q, k, v)
reference = F.scaled_dot_product_attention(q, k, v)
diff_sdpa = (ours - reference).abs().max().item()
print("output", tuple(ours.shape), "| weights", tuple(weights.shape), "| rows sum to 1:",
      bool(torch.allclose(weights.sum(-1), torch.ones(2, 5))))
print(f"max |ours − F.scaled_dot_product_attention| < 1e-6: {diff_sdpa < 1e-6}")

# %% [markdown]
# ## 2. Why divide by $\sqrt{d_k}$?
#
# If the components of $q$ and $k$ are independent with mean 0 and variance 1, then
# $q\cdot k=\sum_{m=1}^{d_k}q_m k_m$ is a sum of $d_k$ independent terms of variance 1, so
#
# $$\operatorname{Var}(q\cdot k)=d_k,\qquad \operatorname{Var}\Big(\frac{q\cdot k}{\sqrt{d_k}}\Big)=1.$$
#
# Large scores push the softmax into saturation: nearly all weight on one key (a near one-hot), whose gradient
# is nearly zero. We measure both, for growing $d_k$, with 16 keys per query.

# **Predict, then measure.** The entries of `q` and `k` below are independent standard normals (mean 0,
# variance 1). *Before you run the experiment*, predict the variance of the unscaled score $q\cdot k$ at
# $d_k = 256$. The measurement is an average over random samples, so it has noise: the experiment also measures its
# standard error (the spread of the estimate over 10 independent blocks of the samples, divided by √10), and a
# prediction within 4 standard errors of the measurement counts (a right prediction misses that by chance in fewer
# than 1 run in 300).

# %%
from companion.checks.n03 import check_variance_prediction

variance_prediction = None  # your prediction: a number

# %%
rows = []
for d_k in [4, 16, 64, 256, 1024]:
    qs = torch.randn(cfg["n_samples"] // 16, 1, d_k, generator=g)
    ks = torch.randn(cfg["n_samples"] // 16, 16, d_k, generator=g)
    raw = (qs @ ks.transpose(-2, -1))[:, 0]            # (samples, 16) unscaled scores
    for scaled in (False, True):
        s = raw / math.sqrt(d_k) if scaled else raw
        w = torch.softmax(s, dim=-1)
        blocks = torch.stack([b.var() for b in s.chunk(10)])  # the same estimate on 10 independent blocks of queries
        rows.append({"d_k": d_k, "scores": "q·k / √d_k" if scaled else "q·k", "variance": float(s.var()),
                     "standard error": float(blocks.std() / math.sqrt(len(blocks))),
                     "mean max weight": float(w.max(-1).values.mean()),
                     "entropy (nats)": float(-(w * w.clamp_min(1e-30).log()).sum(-1).mean())})
variance = pd.DataFrame(rows)
variance.pivot(index="d_k", columns="scores", values=["variance", "standard error", "mean max weight"]).round(3)

# %%
check_variance_prediction(variance_prediction, variance, d_k=256)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: a sum of d_k independent products, each of variance 1, has variance d_k
variance_prediction = 256
check_variance_prediction(variance_prediction, variance, d_k=256)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
sns.lineplot(data=variance, x="d_k", y="variance", hue="scores", marker="o", ax=axes[0])
# the reference line lies on the unscaled data: drawn above it (zorder), dashed and black so both stay visible
axes[0].plot([4, 1024], [4, 1024], ls="--", lw=1.5, color="black", zorder=5, label="variance = d_k")
axes[0].set(yscale="log", title="Variance of the attention scores")
axes[0].legend()
sns.lineplot(data=variance, x="d_k", y="mean max weight", hue="scores", marker="o", ax=axes[1])
axes[1].axhline(1 / 16, ls="--", lw=1.5, color="black", zorder=5, label="uniform (1/16)")
axes[1].set(title="Largest softmax weight (16 keys)")
axes[1].legend()
for ax in axes:
    plain_log_axis(ax, "x", ticks=[4, 16, 64, 256, 1024])
plain_log_axis(axes[0], "y", ticks=[1, 10, 100, 1000])
plt.tight_layout(); plt.show()

# %% [markdown]
# Unscaled, the variance grows exactly like $d_k$ and the softmax becomes nearly one-hot (max weight → 1):
# attention collapses onto one token and learning stalls. Scaled, the variance stays at 1 for every width and
# the weights stay spread out. The softmax Jacobian $\operatorname{diag}(a)-aa^\top$ vanishes when $a$ is one-hot:

# %%
# NBVAL_CHECK_OUTPUT
for name, a in [("spread", torch.softmax(torch.tensor([0.5, 0.0, -0.5, 0.2]), 0)),
                ("saturated", torch.softmax(torch.tensor([30.0, 0.0, -15.0, 5.0]), 0))]:
    jac = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, 0), torch.log(a))
    print(f"{name:9s} weights {a.numpy().round(3)}  ‖Jacobian‖ = {jac.norm():.4f}  "
          f"= ‖diag(a) − aaᵀ‖: {bool(torch.allclose(jac, torch.diag(a) - torch.outer(a, a), atol=1e-6))}")

# %% [markdown]
# ## 3. Masks
#
# **Causal mask.** A language model may not look ahead: query $i$ only sees keys $j\le i$, a lower-triangular
# mask. **Padding mask.** In a batch, short sequences are padded; no query may attend to a padding key
# (tokenizers return it as `attention_mask`, 1 = real token).

# %%
# NBVAL_CHECK_OUTPUT
mask = torch.ones(5, 5, dtype=torch.bool).tril()
_, causal_weights = attention(q, k, v, mask)
print(mask.int())
print("weights above the diagonal are exactly 0:", bool((causal_weights[:, ~mask] == 0).all()))
print("= F.scaled_dot_product_attention(is_causal=True):",
      bool(torch.allclose(attention(q, k, v, mask)[0], F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)))

# %%
# NBVAL_CHECK_OUTPUT
lengths = torch.tensor([5, 3])                                    # the second sequence has 2 padding tokens
pad = torch.arange(5)[None, :] < lengths[:, None]                 # (batch, n): True for real tokens
out_padded, w_padded = attention(q, k, v, pad[:, None, :])        # broadcast over queries
out_alone, _ = attention(q[1:, :3], k[1:, :3], v[1:, :3])         # the short sequence on its own, no padding
print("weight on padding keys:", float(w_padded[1, :, 3:].abs().max()))
print("padded batch = the sequence alone (real tokens):", bool(torch.allclose(out_padded[1, :3], out_alone[0], atol=1e-6)))

# %% [markdown]
# ## 4. Multiple heads
#
# One attention pattern per layer is limiting (syntax, coreference and position need different patterns).
# Multi-head attention projects the input $X$ ($n\times d$) into $h$ smaller subspaces of size $d/h$,
# attends in each independently, concatenates and mixes with an output matrix:
#
# $$\operatorname{MHA}(X)=\big[\operatorname{head}_1;\dots;\operatorname{head}_h\big]W^O,\qquad
#   \operatorname{head}_i=\operatorname{Attention}(XW^Q_i, XW^K_i, XW^V_i).$$
#
# In code, the $h$ projections are one big matrix; **split** reshapes $(b, n, h\cdot d_k)\to(b, h, n, d_k)$ and
# **merge** undoes it. We check against PyTorch's own `nn.MultiheadAttention`, using its weights:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(seed)
d_model, heads = 32, 4
mha = torch.nn.MultiheadAttention(d_model, heads, batch_first=True).eval()
x = torch.randn(2, 6, d_model, generator=g)
w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
Q = split_heads(x @ w_q.T + b_q, heads)                           # (2, 4, 6, 8)
K = split_heads(x @ w_k.T + b_k, heads)
V = split_heads(x @ w_v.T + b_v, heads)
context, _ = attention(Q, K, V)
ours_mha = merge_heads(context) @ mha.out_proj.weight.T + mha.out_proj.bias
with torch.no_grad():
    torch_mha, _ = mha(x, x, x, need_weights=False)
print("split:", tuple(x.shape), "→", tuple(Q.shape), "| merge:", tuple(context.shape), "→", tuple(merge_heads(context).shape))
print("merge(split(x)) = x:", bool(torch.equal(merge_heads(split_heads(x, heads)), x)))
print(f"max |ours − nn.MultiheadAttention| < 1e-5: {(ours_mha - torch_mha).abs().max().item() < 1e-5}")

# %% [markdown]
# ## 5. Reproduce a pretrained layer from its weights
#
# ### MiniLM (BERT): layer attention block
#
# A BERT layer's attention block (`encoder.layer[i].attention`) computes
#
# $$\operatorname{LayerNorm}\big(X+\operatorname{MHA}(X)\big),\qquad
#   \operatorname{MHA}(X)=\operatorname{merge}\Big(\operatorname{softmax}\big(\tfrac{Q_hK_h^\top}{\sqrt{d_k}}+M\big)V_h\Big)W^O+b^O,$$
#
# with $Q=XW^Q+b^Q$ etc., $h=12$ heads of $d_k=32$ for MiniLM ($d=384$) and $M$ the padding mask. We record
# the block's real input and output with a forward hook during a normal forward pass of a padded batch, then
# recompute the output with our own code from the layer's weights.

# %%
enc_tokenizer = cc.load_tokenizer(model_name)
encoder = cc.load_model(model_name, "encoder").to(device)
block = encoder.encoder.layer[layer].attention
batch = enc_tokenizer([text, "Gallstones are common."], padding=True, return_tensors="pt").to(device)
with torch.no_grad(), capture(block) as seen:
    encoder(**batch)
X = seen["args"][0] if seen["args"] else seen["kwargs"]["hidden_states"]   # the block's real input
expected = seen["output"][0]                                              # the block's real output
print(f"layer {layer} input {tuple(X.shape)}, output {tuple(expected.shape)}, "
      f"{block.self.num_attention_heads} heads of {block.self.attention_head_size}")

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    sa, so = block.self, block.output
    h = sa.num_attention_heads
    Q = split_heads(X @ sa.query.weight.T + sa.query.bias, h)
    K = split_heads(X @ sa.key.weight.T + sa.key.bias, h)
    V = split_heads(X @ sa.value.weight.T + sa.value.bias, h)
    key_mask = batch["attention_mask"].bool()[:, None, None, :]          # (batch, 1, 1, n_keys)
    context, layer_weights = attention(Q, K, V, key_mask)
    mha_out = merge_heads(context) @ so.dense.weight.T + so.dense.bias
    ours_layer = F.layer_norm(X + mha_out, (X.shape[-1],), so.LayerNorm.weight, so.LayerNorm.bias, so.LayerNorm.eps)
diff_minilm = (ours_layer - expected).abs().max().item()
print(f"MiniLM layer {layer}: max |ours − model| < 1e-5: {diff_minilm < 1e-5}")

# %%
print(f"MiniLM layer {layer} attention block, max |ours − model| = {diff_minilm:.2e}")

# %% [markdown]
# ### SmolLM2 (Llama): rotary positions and grouped-query attention
#
# Modern decoders change two things. **RoPE** (rotary position embedding) encodes positions by rotating each
# pair of query/key coordinates by an angle proportional to the position, $\theta_{p,i}=p\cdot\Theta^{-2i/d}$:
#
# $$\begin{pmatrix}x'_i\\x'_{i+d/2}\end{pmatrix}=\begin{pmatrix}\cos\theta_{p,i}&-\sin\theta_{p,i}\\
#   \sin\theta_{p,i}&\cos\theta_{p,i}\end{pmatrix}\begin{pmatrix}x_i\\x_{i+d/2}\end{pmatrix},$$
#
# so $q'_m\cdot k'_n$ depends only on the *offset* $m-n$. **GQA** (grouped-query attention) keeps many query
# heads but fewer key/value heads (SmolLM2-135M: 9 query heads, 3 KV heads), each KV head shared by a group of
# 3 query heads, which shrinks the KV cache threefold (the **KV cache**: when a causal model generates text token
# by token, it keeps every earlier token's keys and values instead of recomputing them). There are no biases, a causal mask, and the output
# projection $W^O$ (the residual and RMSNorm live outside `self_attn`). The companion's implementation:

# %%
print(inspect.getsource(rope_cos_sin)); print(inspect.getsource(apply_rope)); print(inspect.getsource(llama_attention_from_weights))

# %%
# NBVAL_CHECK_OUTPUT
lm_tokenizer = cc.load_tokenizer(lm_name)
lm = cc.load_model(lm_name, "causal-lm").to(device)
lm_cfg = lm.config
theta = (getattr(lm_cfg, "rope_parameters", None) or {}).get("rope_theta", getattr(lm_cfg, "rope_theta", 10000.0))
attn = lm.model.layers[lm_layer].self_attn
ids = lm_tokenizer(text, return_tensors="pt").to(device)
with torch.no_grad(), capture(attn) as seen_lm:
    lm(**ids)
X_lm = seen_lm["kwargs"].get("hidden_states", seen_lm["args"][0] if seen_lm["args"] else None)
with torch.no_grad():
    ours_lm, lm_weights = llama_attention_from_weights(attn, X_lm, theta)
    cos_model, sin_model = seen_lm["kwargs"]["position_embeddings"]     # the model's own RoPE tables
    cos_ours, sin_ours = rope_cos_sin(torch.arange(X_lm.shape[1])[None], attn.head_dim, theta)
diff_rope = max((cos_ours - cos_model.cpu()).abs().max().item(), (sin_ours - sin_model.cpu()).abs().max().item())
diff_smollm2 = (ours_lm - seen_lm["output"][0]).abs().max().item()
print(f"{lm_cfg.num_attention_heads} query heads, {lm_cfg.num_key_value_heads} key/value heads, head_dim {attn.head_dim}, Θ = {theta:g}")
print(f"RoPE tables = the model's: {diff_rope < 1e-5}")
print(f"SmolLM2 layer {lm_layer} self-attention: max |ours − model| < 1e-5: {diff_smollm2 < 1e-5}")

# %%
print(f"SmolLM2 layer {lm_layer} self-attention, max |ours − model| = {diff_smollm2:.2e} (RoPE tables {diff_rope:.1e})")

# %% [markdown]
# ## 6. Attention heatmaps of a real sentence
#
# WordPiece splits the medical terms of our sentence into pieces (`##` marks a continuation). The heatmaps
# (rows = queries, columns = keys) are the weights our own code recomputed, layer by layer, for MiniLM.

# %%
# NBVAL_CHECK_OUTPUT
tokens, maps = bert_attention_maps(encoder, enc_tokenizer, text)
print(" ".join(tokens))

# %%
picks = [(0, 0), (0, 5), (len(maps) // 2, 3), (len(maps) - 1, 0), (len(maps) - 1, 7)]
# a grid, each map wide enough to read its token labels, and one colour scale for all (weights in [0, 1])
fig, axes = plt.subplots(3, 2, figsize=(11, 16), layout="constrained")
for ax, (lay, head) in zip(axes.flat, picks):
    attention_heatmap(maps[lay][head], tokens, ax=ax, title=f"layer {lay}, head {head}")
attention_heatmap(maps[-1].mean(0), tokens, ax=axes.flat[-1], title=f"layer {len(maps) - 1}, mean of heads")
fig.colorbar(axes.flat[0].collections[0], ax=axes, shrink=0.3, label="attention weight")
plt.show()

# %% [markdown]
# Different heads learn different patterns: some look at the previous or next token, some at `[CLS]`/`[SEP]`
# (a "no-op" sink), some spread out. How much do the pieces of one word attend to each other? For every
# subword piece of a multi-piece word we add up the weight it puts on the *other* pieces of the same word,
# averaged over heads, and compare with what uniform attention would give:

# %%
word_ids = enc_tokenizer(text).word_ids()
subword_share = same_word_attention(maps, word_ids)
print("multi-piece words:", [" ".join(tokens[i] for i in g_) for g_ in word_groups(word_ids)])
ratios = subword_share["weight on same-word pieces"] / subword_share["uniform attention would give"]
print(f"layer 0: {ratios.iloc[0]:.2f}× uniform; highest layer: {ratios.iloc[-1]:.2f}× uniform")
subword_share.round(3)

# %% [markdown]
# Where the first column exceeds the second, the pieces of split words look at each other more than chance. One
# sentence is one sample, though: its handful of split words could be special. The same measurement on
# `n_sentences` sentences of medical abstracts (validation split) says how general the pattern is: per layer the mean
# ratio to uniform attention with its 95 % interval over the sentences, and in how many sentences that layer has
# the highest ratio of all six.

# %%
sample_sentences = [s_ for t in load_medical_abstracts()["validation"]["text"] for s_ in split_sentences(t)
                    if 8 <= len(s_.split()) <= 40][: cfg["n_sentences"]]
by_sentence = same_word_ratios(encoder, enc_tokenizer, sample_sentences)
top_layer = by_sentence.loc[by_sentence.groupby("text")["ratio"].idxmax(), "layer"]
layer_rows = []
for layer_no, group in by_sentence.groupby("layer"):
    ci = mean_ci(group["ratio"])  # mean over the sentences with its 95 % t-interval
    layer_rows.append({"layer": layer_no, "mean ratio to uniform": ci.mean, "95 % low": ci.low, "95 % high": ci.high,
                       "sentences where highest": int((top_layer == layer_no).sum())})
per_layer = pd.DataFrame(layer_rows)
first = per_layer.iloc[0]
best = per_layer.loc[per_layer["mean ratio to uniform"].idxmax()]
print(f"{by_sentence['text'].nunique()} sentences with a split word: layer 0's pieces attend to their own word "
      f"{first['mean ratio to uniform']:.2f}× uniform (95 % interval {first['95 % low']:.2f} to "
      f"{first['95 % high']:.2f}), {'above' if first['95 % low'] > 1 else 'not clearly above'} chance; the highest mean ratio is layer "
      f"{int(best['layer'])}'s, which is the top layer of {int(best['sentences where highest'])} of "
      f"{by_sentence['text'].nunique()} sentences")
per_layer.round(2)

# %% [markdown]
# The printed line says which layer glues split words back together most, and how consistently across sentences;
# the table's intervals say whether the layers differ: two layers whose intervals overlap are tied, and "the
# highest mean" between them is not a finding. Where the lowest layers hold the highest ratios, the encoder first
# reads *cho + ##le + ##cy + …* as one unit, and the higher layers (a ratio near or below 1) spread attention over
# the context and the special tokens. Words that the tokenizer shreds cost the model part of
# its depth, one of the reasons domain vocabulary matters (notebook 04 measures tokens per word across domains).

# %% [markdown]
# ## Exercises
#
# Each exercise has a check that says *correct* or *not yet* with a hint. Replace `None` (in a *write the
# mechanism* exercise: complete the function's body), run the cell.
# Solutions are in the collapsed cell below each exercise (click to expand).
#
# **1.** Compute the attention weights (a 2×3 tensor) of these queries and keys by hand.

# %%
from companion.checks.n03 import check_attention_params, check_attention_weights, check_causal_mask

ex_q = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
ex_k = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 2.0, 0.0]])
weights_answer = None  # your answer: a tensor of shape (2, 3)
check_attention_weights(weights_answer, ex_q, ex_k)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: scaled dot products q·kᵀ/√d_k, then a softmax over the keys
weights_answer = torch.softmax(ex_q @ ex_k.T / math.sqrt(ex_q.shape[-1]), dim=-1)
check_attention_weights(weights_answer, ex_q, ex_k)

# %% [markdown]
# **2.** Build the boolean causal mask for 6 tokens (True = may attend).

# %%
mask_answer = None  # your answer: a (6, 6) boolean tensor
check_causal_mask(mask_answer, 6)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: compare positions: a query may attend to keys at or before it
mask_answer = torch.arange(6)[:, None] >= torch.arange(6)[None, :]   # key position ≤ query position
check_causal_mask(mask_answer, 6)

# %% [markdown]
# **3. Write the mechanism.** Complete `causal_attention(q, k, v)`: scaled dot-product attention in which query $i$
# sees only keys $j\le i$, for inputs of shape `(..., n, d_k)` (a batch and heads in front, any number of them) and
# values of any width. Return the output only. The check runs it on fresh random inputs against
# `F.scaled_dot_product_attention(q, k, v, is_causal=True)`.

# %%
from companion.checks.n03 import check_causal_attention_function


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ / √d_k + causal mask) V for q, k of shape (..., n, d_k) and v of shape (..., n, d_v)."""
    n = q.shape[-2]
    # 1. scores: q times k transposed over the last two dimensions, divided by √d_k, shape (..., n, n)
    # 2. a boolean (n, n) mask, True where key position ≤ query position; scores elsewhere → -inf (masked_fill)
    # 3. softmax over the keys (the last dimension), then the weighted sum of the values
    return None  # replace with the output, shape (..., n, d_v)


check_causal_attention_function(causal_attention)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: scale the dot products, fill the scores above the diagonal with -inf, softmax over keys, weight the values
def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(Q Kᵀ / √d_k + causal mask) V for q, k of shape (..., n, d_k) and v of shape (..., n, d_v)."""
    n = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    allowed = torch.ones(n, n, dtype=torch.bool).tril()  # key j ≤ query i
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


check_causal_attention_function(causal_attention)

# %% [markdown]
# **4.** How many parameters do the four projections ($W^Q, W^K, W^V, W^O$ with their biases) of one MiniLM
# attention block have? Compute it from `encoder.config`, then compare with the four `Linear` layers of `block`
# (`block.self.query`, `.key`, `.value` and `block.output.dense`; `block` also holds a LayerNorm, not counted here).

# %%
params_answer = None  # your answer: an integer
check_attention_params(params_answer, block)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: four hidden × hidden weight matrices, each with a bias of size hidden
d = encoder.config.hidden_size
params_answer = 4 * (d * d + d)
check_attention_params(params_answer, block)

# %% [markdown]
# ## Summary
#
# * Scaled dot-product attention is three lines; ours equals `F.scaled_dot_product_attention` and, with heads
#   split and merged, `nn.MultiheadAttention`.
# * Without $1/\sqrt{d_k}$ the score variance grows like $d_k$ and the softmax saturates (vanishing gradients).
# * Masks are $-\infty$ scores: causal for decoders, padding for batches.
# * A pretrained MiniLM attention block and a SmolLM2 self-attention (RoPE + GQA) are reproduced from their
#   weights to < 1e-5: nothing hidden.
# * How much the subword pieces of split domain terms attend to each other is measured per layer, on one sentence and
#   then over `n_sentences` sentences with intervals (the printed line says which layer and how consistently).
#
# The numbers of this run are saved for batch runs and sweeps:

# %%
results = {
    "notebook": "03_attention", "profile": PROFILE, "seed": seed, "model": model_name, "lm": lm_name,
    "device": device.type,
    "abs_diff_vs_sdpa": diff_sdpa, "abs_diff_minilm_layer": diff_minilm, "minilm_layer": layer,
    "abs_diff_smollm2_layer": diff_smollm2, "smollm2_layer": lm_layer, "abs_diff_rope_tables": diff_rope,
    "variance_unscaled_by_dk": {int(r.d_k): r.variance for r in variance[variance.scores == "q·k"].itertuples()},
    "variance_scaled_by_dk": {int(r.d_k): r.variance for r in variance[variance.scores != "q·k"].itertuples()},
    "subword_self_share_by_layer": subword_share["weight on same-word pieces"].round(4).tolist(),
    "subword_ratio_by_layer": {"sentences": int(by_sentence["text"].nunique()),
                               "mean": per_layer["mean ratio to uniform"].round(4).tolist(),
                               "top_layer_counts": per_layer["sentences where highest"].tolist()},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("03_attention", results)
pd.json_normalize(results, sep=".").T.rename(columns={0: "value"})
