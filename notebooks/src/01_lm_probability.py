# %% [markdown]
# # 01 · Language-model probability
#
# A language model is nothing more than a probability distribution over token sequences. Everything later in
# the course (perplexity as a domain-gap measure, continued pretraining, forgetting) is measured with the
# quantities of this notebook, so we compute each of them by hand and check it against the model.
#
# **In this notebook you will**
# 1. apply the chain rule $P(X)=\prod_i P(x_i\mid x_{<i})$ token by token on a real causal LM (SmolLM2) and
#    match it to the model's own loss;
# 2. build a count-based **bigram model** with add-$k$ smoothing and see where it breaks and why neural LMs
#    generalise;
# 3. define **perplexity**, and compute it for text longer than the context with a **sliding window**
#    (the Hugging Face "perplexity of fixed-length models" method), measuring the effect of the stride;
# 4. see the **domain gap** in one plot: perplexity of general (WikiText-2) vs medical sentences.
#
# **Prerequisites:** notebook 00 (the models and data); Python and basic probability (conditional probability,
# logarithms). **Study time:** about 60 minutes for a first reading with the exercises.
#
# **Machine time** (kernel start and model loading included) is printed by the last cell and kept in
# `notebooks/results/01_lm_probability.results.json` (`seconds`); BENCHMARKS.md lists every notebook's with the load the
# machine had when it was measured. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
import math
import time
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

import companion as cc
from companion.core.data import load_medical_abstracts, load_wikitext2
from companion.lessons.n01_lm_probability import BigramLM, bigram_reversal_ratio, encode_with_start, model_provenance, reversal_ratios, reverse_words, sentence_nlls, sentence_perplexities, split_sentences, strided_perplexity, token_log_probs, window_starts, words
from companion.core.plots import plain_log_axis

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch
model_name: str = "smollm2"  # causal LM: embedded name, local folder or Hugging Face id
sentence: str = "The patient underwent a laparoscopic cholecystectomy."  # sentence for the chain rule
smoothing_k: float = 0.1  # range: (0, inf); add-k smoothing constant of the bigram model
max_length: Optional[int] = None  # range: [2, inf); context window of strided perplexity; None means the profile default
n_sentences: Optional[int] = None  # range: [1, inf); sentences per domain in the perplexity comparison; None means the profile default

# %%
cc.check_values("01", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, trains=False)  # resolve the profile, seed, pick the device, start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"max_length": 32, "corpus_tokens": 96, "n_sentences": 4, "bigram_abstracts": 200, "test_sentences": 4},
    "cpu": {"max_length": 64, "corpus_tokens": 192, "n_sentences": 16, "bigram_abstracts": None, "test_sentences": 16},
    "gpu": {"max_length": 1024, "corpus_tokens": 8192, "n_sentences": 200, "bigram_abstracts": None,
            "test_sentences": 100},
}, max_length=max_length, n_sentences=n_sentences)
tokenizer = cc.load_tokenizer(model_name)
model = cc.load_model(model_name, "causal-lm").to(device)
print("profile:", PROFILE, "| settings:", cfg)
print("model:", model_provenance(model_name))

# %% [markdown]
# ## 1. The chain rule, token by token
#
# Any joint probability factorises exactly, with no assumption, into conditionals:
#
# $$P(x_1,\dots,x_n)=\prod_{i=1}^{n}P(x_i\mid x_1,\dots,x_{i-1}),\qquad
#   \log P(X)=\sum_{i=1}^{n}\log P(x_i\mid x_{<i}).$$
#
# A causal LM outputs, at every position $t$, logits $z_t\in\mathbb{R}^{|V|}$ whose softmax is the
# distribution of the **next** token: $P(x_{t+1}=w\mid x_{\le t})=\operatorname{softmax}(z_t)_w$.
# So one forward pass gives every factor at once: read the logits at position $t$ at the column of the
# token that actually comes next.
#
# SmolLM2's tokenizer adds no beginning-of-sequence token, so the first word would have nothing to be
# conditioned on. We put the document separator `<|endoftext|>` in front (as between documents in
# pretraining); then every token of the sentence gets a probability.

# %%
ids = encode_with_start(tokenizer, sentence).to(device)
with torch.no_grad():
    logits = model(input_ids=ids).logits[0].float()          # (n, |V|): position t predicts token t+1
log_probs_all = torch.log_softmax(logits[:-1], dim=-1)        # drop the last position: nothing left to predict
targets = ids[0, 1:]                                          # the tokens that actually come next
token_lp = log_probs_all[torch.arange(len(targets)), targets]  # log P(x_t+1 | x_<=t), one per token
chain = pd.DataFrame({"token": tokenizer.convert_ids_to_tokens(targets.tolist()),
                      "P(token | before)": token_lp.exp().cpu().numpy(), "log P": token_lp.cpu().numpy()})
print(chain.to_string(formatters={"P(token | before)": "{:.3e}".format, "log P": "{:.3f}".format}))

# %% [markdown]
# The last digits of these probabilities depend on the CPU's float32 kernels (another machine prints
# `6.020e-03` where this one prints `6.019e-03`). What does not depend on the machine is checked below: the
# tokens, and that every factor is a probability.

# %%
# NBVAL_CHECK_OUTPUT
print("tokens predicted:", chain["token"].tolist())
print("every factor is a probability in (0, 1]:", bool(((token_lp <= 0) & torch.isfinite(token_lp)).all()))

# %% [markdown]
# `Ġ` marks a leading space (byte-level BPE). The rare word *cholecystectomy* is split into pieces: the
# first piece is a surprise, but once `Ġch` and `ole` are there, `cyst` and `ectomy` are almost certain.
# The companion function `token_log_probs` does the same computation (we reuse it later); it must agree:

# %%
# NBVAL_CHECK_OUTPUT
table = token_log_probs(model, tokenizer, sentence)
print("companion table = by hand:", bool(torch.allclose(torch.tensor(table["log_prob"].values), token_lp.cpu(), atol=1e-6)))

# %% [markdown]
# Now the three ways to write the probability of the sentence. The product of the conditionals, the
# exponential of the summed log-probabilities, and the model's own loss: transformers computes the **mean**
# negative log-likelihood over the $n$ predicted tokens when we pass `labels=input_ids` (it shifts the
# labels by one internally), so
#
# $$P(X)=\prod_i p_i=\exp\Big(\sum_i\log p_i\Big)=\exp(-n\cdot\text{loss}).$$
#
# In float32 the product of many small numbers underflows for long texts (try a paragraph), which is why
# everyone works with sums of logs. With the natural logarithm the unit of these log-probabilities is the
# **nat** (with log₂ it would be the bit: 1 nat ≈ 1.44 bits); losses below are in nats.

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    loss = model(input_ids=ids, labels=ids).loss.float()
n = len(targets)
p_product = torch.prod(token_lp.double().exp())
p_logsum = torch.exp(token_lp.double().sum())
p_loss = torch.exp(-n * loss.double())
chain_vs_loss = abs(float(-token_lp.mean() - loss))
print(f"tokens predicted n: {n}")
print(f"product = exp(sum of logs) within 1e-9 relative: {bool(torch.isclose(p_product, p_logsum, rtol=1e-9))}")
print(f"product = exp(-n · model loss) within 1e-4 relative: {bool(torch.isclose(p_product, p_loss, rtol=1e-4))}")
print(f"|mean NLL by hand - model loss| < 1e-5: {chain_vs_loss < 1e-5}")

# %%
print(f"product of P(x_i | x_<i) : {p_product:.6e}")
print(f"exp(sum of log-probs)    : {p_logsum:.6e}")
print(f"exp(-n · model loss)     : {p_loss:.6e}")
print(f"|mean NLL by hand - model loss| = {chain_vs_loss:.2e} nats")

# %% [markdown]
# ## 2. A count-based bigram model
#
# Before neural networks, the chain rule was made tractable by a **Markov assumption**: forget all but the
# last word, $P(x_i\mid x_{<i})\approx P(x_i\mid x_{i-1})$, and estimate it by counting (maximum likelihood):
#
# $$\hat P(w\mid v)=\frac{c(v,w)}{c(v)}.$$
#
# Any pair never seen in training gets probability **0**, and one zero makes the whole sentence impossible.
# **Add-$k$ smoothing** pretends every pair was seen $k$ extra times:
#
# $$\hat P_k(w\mid v)=\frac{c(v,w)+k}{c(v)+k\,|V|}.$$
#
# We count words in the medical training abstracts (sentences wrapped in `<s> … </s>`, lower-cased,
# unseen words mapped to `<unk>`).

# %%
medical = load_medical_abstracts()
train_texts = medical["train"]["text"][: cfg["bigram_abstracts"]]
train_sentences = [s for text in train_texts for s in split_sentences(text)]
bigram = BigramLM(k=smoothing_k).fit(train_sentences)
print(f"{len(train_sentences):,} training sentences, vocabulary |V| = {len(bigram.vocab):,}, "
      f"{len(bigram.bigrams):,} distinct bigrams")
pd.DataFrame(bigram.bigrams.most_common(8), columns=["bigram", "count"])

# %% [markdown]
# The formula by hand for one pair, next to the model's `prob`:

# %%
prev_word, word = "the", "patient"
by_hand = (bigram.bigrams[(prev_word, word)] + smoothing_k) / (bigram.unigrams[prev_word] + smoothing_k * len(bigram.vocab))
print(f"c({prev_word!r}, {word!r}) = {bigram.bigrams[(prev_word, word)]}, c({prev_word!r}) = {bigram.unigrams[prev_word]}")
print(f"P_k({word!r} | {prev_word!r}) by hand = {by_hand:.6f}, BigramLM.prob = {bigram.prob(prev_word, word):.6f}")

# %% [markdown]
# Now both models on held-out sentences (validation abstracts). Their tokenisations differ (words vs
# subwords), so we compare **per-word perplexity**: the total negative log-likelihood of a sentence divided
# by its number of words (plus the end of sentence for the bigram model, which also predicts `</s>`; the neural LM
# scores no end-of-sentence token here), exponentiated. The comparison is not
# quite like for like: for every unknown word the bigram model only has to predict the one symbol `<unk>`, never
# the word itself, while the neural LM must predict the word's actual subwords. `<unk>` never occurs in the
# training counts, so its probability comes from smoothing alone: $k/(c(v)+k|V|)$, tiny, which is why unseen
# words weigh so heavily on the bigram model's perplexity.

# %%
test_sentences = [s for text in medical["validation"]["text"] for s in split_sentences(text)][: cfg["test_sentences"]]
neural = sentence_nlls(model, tokenizer, test_sentences, max_tokens=128)
n_words = [len(words(s)) + 1 for s in test_sentences]
compare = pd.DataFrame({
    "add-k bigram (k=1)": [BigramLM(k=1.0, unigrams=bigram.unigrams, bigrams=bigram.bigrams, vocab=bigram.vocab).perplexity(s) for s in test_sentences],
    f"add-k bigram (k={smoothing_k:g})": [bigram.perplexity(s) for s in test_sentences],
    "bigram, no smoothing (k=0)": [BigramLM(k=0.0, unigrams=bigram.unigrams, bigrams=bigram.bigrams, vocab=bigram.vocab).perplexity(s) for s in test_sentences],
    model_name: [math.exp(nll / len(words(s))) for nll, s in zip(neural["nll_sum"], test_sentences)],  # no </s> scored
})
word_ppl = {name: math.exp(sum(math.log(v) for v in col) / len(col)) if all(map(math.isfinite, col)) else math.inf
            for name, col in compare.items()}
unseen = sum(1 for s in test_sentences for a, b in zip(["<s>"] + words(s), words(s) + ["</s>"]) if bigram.bigrams[(a, b)] == 0)
total_pairs = sum(n_words)
print(f"{unseen} of {total_pairs} word pairs in the test sentences never occur in training ({unseen / total_pairs:.0%})")
print(f"neural LM per-word perplexity is {word_ppl[f'add-k bigram (k={smoothing_k:g})'] / word_ppl[model_name]:.1f}× lower "
      f"than the best smoothed bigram's")
pd.Series(word_ppl, name="per-word perplexity (geometric mean over sentences)").to_frame().round(1)

# %% [markdown]
# Without smoothing, most test sentences get probability 0 (perplexity ∞): a large share of their word pairs
# was never seen. Smoothing fixes the zeros but spreads mass blindly over $|V|$ words, and $k$ trades
# seen against unseen pairs. The neural LM needs no smoothing: it maps contexts to vectors, so *"underwent
# a laparoscopic"* is close to contexts it has seen (*"underwent an open …"*), and it conditions on the
# whole sentence, not one word. That is why it generalises: its perplexity is lower (ratio printed above) even
# though it was never trained on these abstracts, while the bigram model was counted on abstracts of the same kind
# (the training split).

# %% [markdown]
# ## 3. Perplexity
#
# For a text of $N$ scored tokens, perplexity is the exponential of the average negative log-likelihood:
#
# $$\operatorname{PPL}(X)=\exp\Big(-\frac1N\sum_{i=1}^{N}\log p(x_i\mid x_{<i})\Big)
#   =\Big(\prod_i p(x_i\mid x_{<i})\Big)^{-1/N}.$$
#
# It is the inverse geometric mean of the token probabilities: a model with perplexity 20 is, on average,
# as uncertain as a uniform choice among 20 tokens (a uniform model over $|V|$ tokens has $\operatorname{PPL}=|V|$).
# Because the model loss *is* the mean NLL, $\operatorname{PPL}=e^{\text{loss}}$:
#
# **Whose perplexity.** A perplexity describes one model on one text. Ours is SmolLM2-135M-**Instruct**, de-quantised
# from a 4-bit Q4_1 GGUF file (the line printed when it loaded): a base model further trained to answer chat
# prompts, then with its weights rounded to 4 bits. Both steps change the distribution it assigns to plain prose, so
# the perplexities of this notebook are those of this particular model: they are not the base SmolLM2-135M's, and
# not comparable with published numbers of other models (such as GPT-2's below).

# %%
ppl_by_hand = (torch.prod(token_lp.double().exp())) ** (-1.0 / n)
print(f"PPL = (prod p)^(-1/N) = {ppl_by_hand:.4f}")
print(f"PPL = exp(model loss)  = {math.exp(float(loss)):.4f}")

# %%
# NBVAL_CHECK_OUTPUT
print(f"(prod p)^(-1/N) = exp(model loss) within 1e-4 relative: "
      f"{math.isclose(float(ppl_by_hand), math.exp(float(loss)), rel_tol=1e-4)}")

# %% [markdown]
# ### Strided perplexity for text longer than the context
#
# A model only sees `max_length` tokens at once. Cutting a long text into disjoint chunks and averaging
# their losses gives the first tokens of each chunk almost no context, which inflates perplexity. The
# sliding-window method (Hugging Face, *Perplexity of fixed-length models*) moves a window of `max_length`
# tokens forward by `stride` tokens; in each window only the last `stride` tokens (the new ones) are scored,
# the earlier ones are context only (label `-100`). From the second window on, every new token is scored once,
# with at least `max_length − stride` tokens of context; tokens in the first window see only what precedes them
# in it. A token is scored only when something precedes it *in its window*: with disjoint windows
# (`stride = max_length`) the first token of each window has nothing before it and is not scored at all, so the
# disjoint split scores one token fewer per window (the `tokens` column below):
#
# ```
# stride = max_length (disjoint)     |■■■■■■■■|■■■■■■■■|■■■■■■■■|
# stride = max_length / 2            |□□□□■■■■|      □ = context only (label -100), ■ = scored
#                                        |□□□□■■■■|
# ```
#
# Smaller strides give more context per token (lower, more honest perplexity) at the cost of more forward
# passes: about `n_tokens / stride` windows.

# %%
# NBVAL_CHECK_OUTPUT
for n_tok, length, s in [(1000, 256, 256), (1000, 256, 128), (1000, 256, 64)]:
    print(f"n_tokens={n_tok}, max_length={length}, stride={s}: window starts {window_starts(n_tok, length, s)}")

# %%
wiki = load_wikitext2()["test"]["text"]
L = cfg["max_length"]
strides = [L, L // 2, L // 4]
stride_rows = []
for s in strides:
    t0 = time.perf_counter()
    r = strided_perplexity(model, tokenizer, wiki, max_length=L, stride=s, max_tokens=cfg["corpus_tokens"], progress=True)
    stride_rows.append({"stride": s, "context ≥": L - s if s < L else 0, **r, "seconds": time.perf_counter() - t0})
strided = pd.DataFrame(stride_rows)
print(f"tokens scored by stride: {dict(zip(strided['stride'].tolist(), strided['tokens'].tolist()))} "
      f"(the disjoint split skips the first token of each of its {int(strided['windows'].iloc[0])} windows)")
strided.round({"perplexity": 2, "nll": 4, "seconds": 1})

# %%
fig, ax1 = plt.subplots(figsize=(7, 3.2))
sns.lineplot(data=strided, x="stride", y="perplexity", marker="o", ax=ax1, label="perplexity")
ax2 = ax1.twinx()
sns.lineplot(data=strided, x="stride", y="windows", marker="s", color="gray", ax=ax2, label="forward passes")
ax1.set(title=f"Strided perplexity on WikiText-2 (max_length={L}, {cfg['corpus_tokens']} tokens)")
plain_log_axis(ax1, "x", ticks=strides)  # labels only at the strides: no minor labels overprinting them
(h1, l1), (h2, l2) = ax1.get_legend_handles_labels(), ax2.get_legend_handles_labels()
ax2.get_legend().remove(); ax2.grid(False)
ax1.legend(h1 + h2, l1 + l2, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, frameon=False)  # below: hides no point
plt.tight_layout(); plt.show()

# %% [markdown]
# The disjoint split (`stride = max_length`) gives the highest perplexity; halving the stride gives every
# token more context and lowers it, with diminishing returns, while the number of forward passes roughly doubles
# each time (the seconds column follows it only on an idle machine). The Hugging
# Face guide reports the same pattern for GPT-2 on WikiText-2 (19.4 disjoint vs 16.4 with stride 512 at
# `max_length` 1024). `strided_perplexity(model, tokenizer, texts, max_length, stride)` is reused in
# notebooks 04 and 05.

# %% [markdown]
# ## 4. The domain gap in one look
#
# The same model, the same procedure, two kinds of sentences: general Wikipedia sentences (WikiText-2) and
# sentences from medical abstracts, each cut to at most 48 tokens. WikiText-2 replaces rare words by the
# placeholder `<unk>`, which a subword LM finds very surprising, so we skip paragraphs that contain it
# (otherwise we would measure the placeholder, not the domain). A higher perplexity means the text is more
# surprising to the model, the first sign of a domain gap (notebook 04 measures it properly).

# %%
n_s = cfg["n_sentences"]
general_texts = [s for t in wiki if "<unk>" not in t for s in split_sentences(t) if len(s.split()) > 8][:n_s]
medical_texts = [s for t in medical["test"]["text"] for s in split_sentences(t) if len(s.split()) > 8][:n_s]
domain = pd.DataFrame({
    "domain": ["general (WikiText-2)"] * len(general_texts) + ["medical abstracts"] * len(medical_texts),
    "perplexity": sentence_perplexities(model, tokenizer, general_texts, max_tokens=48)
    + sentence_perplexities(model, tokenizer, medical_texts, max_tokens=48),
})
summary = domain.groupby("domain")["perplexity"].agg(["median", "mean", "count"])
gap_ratio = summary.loc["medical abstracts", "median"] / summary.loc["general (WikiText-2)", "median"]
print(f"median perplexity, medical / general = {gap_ratio:.2f}: medical sentences are "
      f"{'more' if gap_ratio > 1 else 'less'} surprising to {model_name} than general ones in this measurement")
summary.round(2)

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
sns.boxplot(data=domain, x="perplexity", y="domain", hue="domain", ax=ax, showfliers=False)
sns.stripplot(data=domain, x="perplexity", y="domain", color="black", size=3, alpha=0.6, ax=ax)
ax.set(ylabel="", title=f"{model_name}: perplexity per sentence (≤ 48 tokens)")
plain_log_axis(ax, "x")
plt.tight_layout(); plt.show()

# %% [markdown]
# A ratio above 1 means medical sentences are more surprising to this general-purpose model than Wikipedia
# sentences: technical vocabulary is split into rare subwords, and drug, dose and disease names are hard to
# predict. This is one measurement of the gap: short sentences, each scored from its first token with no
# context. Notebook 04 measures it again with long context (whole abstracts, strided), where repeated terms
# become predictable and the ratio can even fall below 1, and notebook 05 measures it on the blocks it trains
# on. Which number matters depends on how the model is used; each notebook states which one it measures. All of
# these are perplexities of the instruction-tuned, 4-bit-rounded SmolLM2 (section 3): a base model could rank the two
# kinds of text differently.
# (Try including the `<unk>` paragraphs: the placeholder alone can make "general" text look harder than
# medical text.)

# %% [markdown]
# ## Exercises
#
# Each exercise has a check that says *correct* or *not yet* with a hint. Replace `None` (in a *write the
# mechanism* exercise: complete the function's body), run the cell.
# Solutions are in the collapsed cell below each exercise (click to expand).
#
# **1.** A model assigns the log-probabilities below to the four tokens of a text. What is its perplexity?

# %%
from companion.checks.n01 import check_bigram_prob, check_perplexity, check_window_count

exercise_log_probs = [-2.0, -0.5, -3.1, -1.2]
ppl_answer = None  # your answer: a float
check_perplexity(ppl_answer, exercise_log_probs)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: perplexity is exp of the negative mean log-probability
ppl_answer = math.exp(-sum(exercise_log_probs) / len(exercise_log_probs))
check_perplexity(ppl_answer, exercise_log_probs)

# %% [markdown]
# **2.** Using the counts of `bigram` (and its `k` and `vocab`), compute the add-$k$ probability
# $\hat P_k(\text{"with"}\mid\text{"treated"})$.

# %%
bigram_answer = None  # your answer: a float
check_bigram_prob(bigram_answer, bigram, "treated", "with")

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: add-k: (pair count + k) / (count of the first word + k × vocabulary size)
bigram_answer = (bigram.bigrams[("treated", "with")] + bigram.k) / (bigram.unigrams["treated"] + bigram.k * len(bigram.vocab))
check_bigram_prob(bigram_answer, bigram, "treated", "with")

# %% [markdown]
# **3.** A corpus has 5,000 tokens. How many forward passes does strided perplexity need with
# `max_length=1024` and `stride=512`?

# %%
windows_answer = None  # your answer: an integer
check_window_count(windows_answer, 5000, 1024, 512)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count the windows with the same loop as strided_perplexity
windows_answer = 0
for begin in range(0, 5000, 512):  # the same loop as strided_perplexity
    windows_answer += 1
    if begin + 1024 >= 5000:
        break
check_window_count(windows_answer, 5000, 1024, 512)

# %% [markdown]
# **4. Write the mechanism.** Complete `sentence_log_prob(model, tokenizer, text)`: the log-probability of `text`
# under the model, $\log P(X)=\sum_i\log P(x_i\mid x_{<i})$ in nats, summed over every token after the start token,
# as in section 1. The check runs your function on sentences this notebook never scores and compares it with
# $-n\cdot\text{loss}$, the model's own loss times the number of predicted tokens.

# %%
from companion.checks.n01 import check_log_prob_function


def sentence_log_prob(model, tokenizer, text: str) -> float:
    """log P(text) in nats: the sum of log P(token | tokens before it) over every token after the start token."""
    ids = encode_with_start(tokenizer, text).to(model.device)  # (1, n): the start token, then the text's tokens
    # 1. one forward pass under torch.no_grad(): model(input_ids=ids).logits[0] has shape (n, |V|)
    # 2. position t predicts token t + 1: drop the last position's logits and the first token (the start token)
    # 3. torch.log_softmax over the vocabulary, pick each next token's column, add them up
    return None  # replace with the summed log-probability (a float)


check_log_prob_function(sentence_log_prob, model, tokenizer)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: one forward pass; position t's log-softmax read at the column of token t + 1; the sum over positions
def sentence_log_prob(model, tokenizer, text: str) -> float:
    """log P(text) in nats: the sum of log P(token | tokens before it) over every token after the start token."""
    ids = encode_with_start(tokenizer, text).to(model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    log_p = torch.log_softmax(logits[:-1], dim=-1)  # row t: the distribution of token t + 1
    return float(log_p[torch.arange(ids.shape[1] - 1), ids[0, 1:]].sum())


check_log_prob_function(sentence_log_prob, model, tokenizer)

# %% [markdown]
# **5. Predict, then measure.** Reverse the order of the words of a sentence: the same words (and nearly the same
# tokens) in a nonsense order. By how much does that multiply SmolLM2's perplexity: `"about 1"` (the model mostly
# knows which *words* are medical), `"2 to 5"`, or `"more than 5"`? Reason it out before you run the experiment
# below: the bigram model of section 2 knows nothing but which word follows which; what does reversal do to *its*
# perplexity, and does the neural LM depend on word order less or more?
#
# The experiment reverses `sentence` and the validation sentences of section 2. The ratio differs from sentence to
# sentence, so the measurement is the geometric mean of the ratios with its 95 % interval over the sentences (its
# noise: which sentences were drawn); your answer counts when its range overlaps that interval.

# %%
from companion.checks.n01 import check_reversal_prediction

ratio_prediction = None  # your prediction: "about 1", "2 to 5" or "more than 5" (or a number)

# %%
reversal_texts = [sentence] + test_sentences
reversal = reversal_ratios(model, tokenizer, reversal_texts, max_tokens=128)
print(f"{sentence!r}: PPL {reversal['ppl'].iloc[0]:.1f}\n"
      f"{reverse_words(sentence)!r}: PPL {reversal['ppl_reversed'].iloc[0]:.1f}")
reversal.assign(text=reversal["text"].str.slice(0, 50)).round(1)

# %%
check_reversal_prediction(ratio_prediction, reversal["ratio"].tolist(), own=float(reversal["ratio"].iloc[0]))

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count what reversal costs a model that knows only which word follows which (section 2's bigram model);
# the neural LM conditions on the whole order, so it should lose at least that factor
bigram_ratio = bigram_reversal_ratio(bigram, reversal_texts)
ratio_prediction = "about 1" if bigram_ratio < 2 else "2 to 5" if bigram_ratio <= 5 else "more than 5"
check_reversal_prediction(ratio_prediction, reversal["ratio"].tolist(), own=float(reversal["ratio"].iloc[0]))

# %% [markdown]
# ## Summary
#
# * The chain rule turns one forward pass into the probability of a whole text; the product of the
#   conditionals, $\exp(\sum\log p)$ and $\exp(-n\cdot\text{loss})$ are the same number (difference printed above).
# * Count-based bigram models assign zero probability to unseen pairs; smoothing patches that, but a neural LM
#   that conditions on the whole context does better on new sentences.
# * Perplexity $=\exp(\text{mean NLL})=e^{\text{loss}}$. For long texts, a sliding window with a smaller stride
#   gives every token more context: lower perplexity, more compute.
# * The same model finds medical sentences more or less surprising than general ones by a measurable ratio
#   (printed above, `domain_gap_ratio` in the results): the domain gap that later notebooks close. These are the
#   perplexities of SmolLM2-135M-Instruct de-quantised from 4 bits, not of the base model.
# * Exercise 5 measures what reversing the word order does to the perplexity, with its interval over sentences: a
#   ratio above 1 means the model scores order, not only vocabulary.
#
# The numbers of this run are saved for batch runs and sweeps:

# %%
results = {
    "notebook": "01_lm_probability", "profile": PROFILE, "seed": seed, "model": model_name, "device": device.type,
    "chain_rule": {"tokens": n, "log_prob": float(token_lp.sum()), "model_loss": float(loss),
                   "abs_diff_mean_nll_vs_loss": chain_vs_loss},
    "bigram": {"k": smoothing_k, "vocab": len(bigram.vocab), "train_sentences": len(train_sentences),
               "unseen_pair_share": unseen / total_pairs,
               "word_perplexity": {k: (v if math.isfinite(v) else None) for k, v in word_ppl.items()}},
    "strided": {"max_length": L, "tokens": int(strided["tokens"].iloc[0]),
                "perplexity_by_stride": {int(r["stride"]): float(r["perplexity"]) for _, r in strided.iterrows()}},
    "domain_perplexity_median": {k: float(v) for k, v in summary["median"].items()},
    "domain_gap_ratio": float(gap_ratio),
    "reversal": {"sentences": len(reversal),
                 "geometric_mean_ratio": float(math.exp(reversal["ratio"].map(math.log).mean())),
                 "bigram_ratio": float(bigram_reversal_ratio(bigram, reversal_texts))},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("01_lm_probability", results)
pd.json_normalize(results, sep=".").T.rename(columns={0: "value"})
