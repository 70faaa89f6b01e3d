# %% [markdown]
# # 04 · The domain gap
#
# A model pretrained on general text "falls short" on a specialised domain: that is the motivation for every
# adaptation method in the rest of the course. This notebook turns the claim into numbers. We compare
# **general English** (WikiText-2, Wikipedia articles) with the **domain** (medical abstracts) four ways, each
# with a number and a plot:
#
# **In this notebook you will**
# 1. measure the perplexity of the causal LM SmolLM2 on both corpora (strided, per token and per word);
# 2. measure tokenizer fertility (tokens per word) and find the medical terms split into the most pieces;
# 3. measure how much vocabulary the corpora share and which words mark the domain;
# 4. embed both corpora with MiniLM and look at the embedding space in 2-D.
#
# **Prerequisites:** notebook 01 (perplexity, strided perplexity), 00 (subword tokens, sentence embeddings);
# cosine similarity. **Study time:** about 60 minutes for a first reading with the exercises.
#
# **Machine time** (kernel start and model loading included) is printed by the last cell and kept in
# `notebooks/results/04_domain_gap.results.json` (`seconds`); BENCHMARKS.md lists every notebook's with the load the
# machine had when it was measured. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch
model_name: str = "smollm2"  # causal LM for perplexity: embedded name, local folder or Hugging Face id
encoder_name: str = "minilm"  # sentence encoder for the embedding view: embedded name, local folder or hub id
data: str = "medical_abstracts"  # domain data: registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
corpus_tokens: Optional[int] = None  # range: [1, inf); tokens per corpus for strided perplexity; None means the profile default
max_length: Optional[int] = None  # range: [2, inf); window of strided perplexity; None means the profile default
n_docs: Optional[int] = None  # range: [1, inf); documents per corpus for per-document perplexity; None means the profile default
embed_docs: Optional[int] = None  # range: [1, inf); documents per corpus embedded with the encoder; None means the profile default
top_k: int = 5000  # range: [1, inf); most frequent words per corpus compared for vocabulary overlap

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

import companion as cc
from companion.lessons.n01_lm_probability import model_provenance, strided_token_nlls
from companion.lessons.n04_domain_gap import MARKERS, STOPWORDS, centroid_cosine, corpus_blocks, corpus_gap, document_perplexities, domain_separability, fertility, gap_verdict, keyness, marker_tokens, most_split, pieces_per_word, project_2d, strip_markers, vocabulary_overlap, word_counts, word_pieces_table
from companion.checks.n04 import check_oov_rate, check_perplexity_gap, check_tokens_per_word_function
from companion.core.data import load_text_classification, load_wikitext2
from companion.core.embeddings import sentence_embeddings
from companion.core.plots import plain_log_axis
from companion.batch.tables import readable

cc.check_values("04", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, trains=False)  # resolve the profile, seed, pick the device, start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"corpus_tokens": 128, "max_length": 64, "n_docs": 4, "embed_docs": 12},
    "cpu": {"corpus_tokens": 2048, "max_length": 256, "n_docs": 32, "embed_docs": 150},
    "gpu": {"corpus_tokens": 32768, "max_length": 1024, "n_docs": 399, "embed_docs": 399},
}, corpus_tokens=corpus_tokens, max_length=max_length, n_docs=n_docs, embed_docs=embed_docs)
print("profile:", PROFILE, "· device:", device.type)
pd.Series(cfg, name=PROFILE).to_frame()

# %% [markdown]
# ## The two corpora
#
# The domain side is the medical abstracts' **training** split (statistics) and **validation** split
# (perplexity, so nothing here peeks at the test split). The general side is WikiText-2, validation and test
# paragraphs, de-tokenised so the subword models see normal text. WikiText-2 replaced rare words by the marker
# `<unk>` (and formulas by `<formula>`). We leave the markers in for perplexity, and section 1 measures what they
# cost there (their share of the scored tokens, and the perplexity without them); we drop them from the word
# statistics; and section 4 measures the embeddings with and without them.

# %%
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
wiki = load_wikitext2()
domain_texts = list(dataset["train"]["text"])
general_texts = list(wiki["validation"]["text"]) + list(wiki["test"]["text"])
print("domain example: ", domain_texts[0][:160], "…")
print("general example:", general_texts[3][:160], "…")
pd.DataFrame({"documents": [len(domain_texts), len(general_texts)],
              "words": [sum(len(t.split()) for t in c) for c in (domain_texts, general_texts)]},
             index=["medical (train)", "WikiText-2 (valid+test)"])

# %% [markdown]
# ## 1. Perplexity under a general causal LM
#
# Perplexity is exp of the mean next-token negative log-likelihood. A corpus is longer than the model's window,
# so we slide a window of `max_length` tokens with a stride of half of it: every token is scored once, with at
# least `max_length/2` tokens of context (the strided evaluation of notebook 01; its `strided_token_nlls` keeps the
# NLL of every scored token, which the intervals below need). The `cpu` profile scores corpus_tokens = 2048 tokens
# of each corpus with max_length = 256 (the `smoke` profile: corpus_tokens = 128, max_length = 64).
#
# Two samples of a couple of thousand tokens differ by chance too, so every comparison below comes with a 95 %
# interval: we cut the scored tokens of each corpus into blocks of one stride, resample the blocks (a bootstrap;
# the corpora are independent samples of text) and recompute the difference each time. A corpus is called more
# surprising only when the interval excludes a tie.
#
# Token perplexities of two corpora are not directly comparable when the tokenizer cuts one of them into more
# pieces per word: more, easier pieces lower the per-token number. The fair comparison is **per word**:
# NLL per word = NLL per token × tokens per word, so word perplexity = exp(NLL/token × tokens/word).
#
# **Predict, then measure.** SmolLM2 was pretrained mostly on general web text. *Before you run the
# measurement below*, predict which corpus it finds more surprising **per token** (the higher token perplexity):
# `"medical"` or `"general"`? Hint: if the model found a *word* about equally hard in both corpora, how would the
# number of tokens per word move the *per-token* number? The check compares your answer with the interval: only a
# difference whose interval excludes 0 can contradict a prediction.

# %%
from companion.checks.n04 import check_surprise_prediction

surprise_prediction = None  # your prediction: "medical" or "general"

# %%
lm_tokenizer = cc.load_tokenizer(model_name)
lm = cc.load_model(model_name, "causal-lm").to(device)
print("model:", model_provenance(model_name))
corpora = {"medical": list(dataset["validation"]["text"]), "general": list(wiki["test"]["text"])}
stride = cfg["max_length"] // 2
scored, blocks, rows = {}, {}, {}
for name, texts in corpora.items():
    scored[name] = strided_token_nlls(lm, lm_tokenizer, texts, max_length=cfg["max_length"], stride=stride,
                                      max_tokens=cfg["corpus_tokens"], progress=True)  # NLL of every scored token
    blocks[name] = corpus_blocks(lm_tokenizer, scored[name], block=stride)  # per block: tokens, words, summed NLL
    total = blocks[name].sum()
    nll, tpw = total["nll_sum"] / total["tokens"], total["tokens"] / total["words"]
    rows[name] = {"tokens": int(total["tokens"]), "words": int(total["words"]), "blocks": len(blocks[name]),
                  "nll_per_token": nll, "token_ppl": math.exp(nll), "tokens_per_word": tpw,
                  "word_ppl": math.exp(nll * tpw)}
ppl = pd.DataFrame.from_dict(rows, orient="index")
gap = corpus_gap(blocks["medical"], blocks["general"], seed=seed)  # medical − general NLL, with bootstrap intervals
readable(ppl.round(3), counts=["tokens", "words", "blocks"])

# %%
check_surprise_prediction(surprise_prediction, ppl, gap)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: assume a word is about equally hard in both corpora (the web pretraining held health text); a word's NLL is
# shared by its tokens, so the corpus with fewer tokens per word (a count, not the perplexity) has more NLL per token
fertility_by_corpus = {name: fertility(lm_tokenizer, texts)["tokens_per_word"] for name, texts in corpora.items()}
surprise_prediction = min(fertility_by_corpus, key=fertility_by_corpus.get)
check_surprise_prediction(surprise_prediction, ppl, gap)

# %% [markdown]
# The per-word column is the token column raised to the fertility. A quick numerical check of that identity
# on the medical row:

# %%
med = ppl.loc["medical"]
print(f"token_ppl ** tokens_per_word = {med['token_ppl'] ** med['tokens_per_word']:.4f} · word_ppl = "
      f"{med['word_ppl']:.4f} · |difference| < 1e-6: {abs(med['token_ppl'] ** med['tokens_per_word'] - med['word_ppl']) < 1e-6}")

# %% [markdown]
# The two comparisons with their intervals, and what WikiText's `<unk>` markers contribute to the general side (the
# scored tokens that spell a marker, and the general perplexity without them). A marker is spelt as several tokens
# (`<`, `unk`, `>`): the first may surprise the model, but once it has begun, the rest are almost certain, so
# markers can *lower* the average per-token loss even though notebook 01 found whole sentences with `<unk>` hard;
# the printed line says which way they pull here:

# %%
for unit in ("token", "word"):
    print(gap_verdict(gap[unit], "medical", "general", unit))
general_nll = scored["general"]["nll"][1:]  # position i + 1 of the scored ids is token i of the text
scored_text = lm_tokenizer.decode(scored["general"]["ids"][1:])  # the text those tokens spell
in_marker = marker_tokens(lm_tokenizer, "\n\n".join(corpora["general"])[: len(scored_text) + 100])[: len(general_nll)]
counted = ~torch.isnan(general_nll)
marker_share = float(in_marker[counted].float().mean())
without_markers = math.exp(float(general_nll[counted & ~in_marker].mean()))
print(f"general: {marker_share:.1%} of the scored tokens spell a marker (`<unk>`, `<formula>`); without them its "
      f"per-token perplexity is {without_markers:.1f} instead of {ppl.loc['general', 'token_ppl']:.1f}")

# %%
docs = {name: texts[: cfg["n_docs"]] for name, texts in corpora.items()}
doc_ppl = pd.concat([document_perplexities(lm, lm_tokenizer, texts, max_tokens=96).to_frame().assign(corpus=name)
                     for name, texts in docs.items()], ignore_index=True)
fig, ax = plt.subplots(figsize=(8, 3.2))
sns.boxplot(data=doc_ppl, x="perplexity", y="corpus", hue="corpus", log_scale=True, ax=ax)
sns.stripplot(data=doc_ppl, x="perplexity", y="corpus", color="black", size=3, alpha=0.5, ax=ax)
plain_log_axis(ax, "x")
ax.set(title=f"per-document token perplexity (first 96 tokens) under {model_name}", ylabel="")
plt.tight_layout()
plt.show()
doc_ppl.groupby("corpus")["perplexity"].describe()[["count", "25%", "50%", "75%"]].round(2).astype({"count": int})

# %% [markdown]
# **What the numbers say.** Read the verdict lines printed above rather than your expectation: each ratio comes with
# its interval, and "tied within noise" means this much text cannot tell the corpora apart. Remember which model
# this is: SmolLM2-135M-**Instruct**, de-quantised from a 4-bit Q4_1 GGUF file (the line printed when it loaded).
# Instruction tuning and 4-bit rounding both change what it predicts on plain prose, so these are perplexities of
# this model, not of the base SmolLM2-135M. It was trained on a large web and educational corpus that contains
# plenty of health text, and WikiText-2 has its own oddities (the markers measured above, lists of names and
# numbers), so the per-token gap can be small or even reversed. Per *word*, the fairer measure, the ranking can
# change, because the medical words are cut into more tokens. The spread across documents is wide in both corpora
# (the box plot); a single sentence proves nothing either way. The box plot and the verdicts also measure
# different things, so their medians need not agree: the verdicts score long stretches of each corpus with the
# strided window (each token with at least half a window of left context, the WikiText markers left in), the box plot the first
# 96 tokens of each document separately (little context, and a WikiText article often opens with a heading, a
# name or a list); notebook 01 scored single sentences without markers. Three measurements, three numbers: say which
# one you quote. A model trained on trillions of web tokens is not
# "general" in the sense of knowing no medicine: the domain gap shows more clearly in the tokenizer, the vocabulary
# and the embedding space below.
#
# ## 2. Tokenizer fertility: tokens per word
#
# A tokenizer learned on general text has whole-word tokens for common English words and must spell rare
# domain terms out of pieces. Fertility (subword tokens per whitespace word) measures that cost: more tokens
# per word means shorter effective context, more compute, and predictions spread over several steps.
# We count on the full corpora, for both course tokenizers (SmolLM2's byte-level BPE and MiniLM's WordPiece).

# %%
# NBVAL_CHECK_OUTPUT
encoder_tokenizer = cc.load_tokenizer(encoder_name)
fert = pd.DataFrame({f"{tok_name} tokens/word": {name: fertility(tok, texts)["tokens_per_word"]
                                                  for name, texts in (("medical", domain_texts),
                                                                      ("general", general_texts))}
                     for tok_name, tok in ((model_name, lm_tokenizer), (encoder_name, encoder_tokenizer))})
print(fert.round(4).to_string())

# %%
# NBVAL_CHECK_OUTPUT
domain_counts = word_counts(domain_texts)
general_counts = word_counts(general_texts)
general_counts.pop("unk", None)  # WikiText's <unk> marker is not a word
tables = {name: word_pieces_table(lm_tokenizer, counts, min_count=2)
          for name, counts in (("medical", domain_counts), ("general", general_counts))}
for name, table in tables.items():
    print(f"{name:>8}: {len(table):,} word types seen twice or more · pieces per running word "
          f"{pieces_per_word(table):.4f} · pieces per word type {table['pieces'].mean():.4f}")
print(most_split(tables["medical"], top=12, min_count=5)[["word", "count", "pieces", "split"]].to_string())

# %%
share = pd.concat([t.assign(corpus=name) for name, t in tables.items()])
share = share.assign(pieces=share["pieces"].clip(upper=6)).groupby("corpus")["pieces"].value_counts(normalize=True)
share = share.rename("share of word types").reset_index()
fig, ax = plt.subplots(figsize=(8, 3.2))
sns.barplot(data=share, x="pieces", y="share of word types", hue="corpus", ax=ax)
ax.set(xlabel="SmolLM2 pieces per word (6 = six or more)", title="how many pieces each word type needs")
plt.tight_layout()
plt.show()

# %% [markdown]
# Three "tokens per word" figures appear in this notebook, and they count different things: the perplexity table's
# is over the scored blocks only (the tokens perplexity was measured on, words counted as the tokens that start
# one); the fertility table's divides all tokens of the whole texts by their whitespace-separated words
# (punctuation stays attached and costs pieces); the figure printed above the bar plot counts alphabetic,
# lower-cased word types seen twice or more, each weighted by its count, without punctuation or numbers.
#
# Weighted by frequency, both corpora cost about the same number of pieces per running word: the most frequent
# medical words (*patients*, *treatment*, *disease*) are single tokens. The difference sits in the **long tail
# of word types** (the bar plot): drug names, procedures and anatomy are spelt out of 4–9 pieces, and those
# are exactly the content words a domain model must get right.
#
# ## 3. Vocabulary overlap
#
# Gururangan et al. (2020, Fig. 2) compare domains by the overlap of their 10,000 most frequent words
# (stopwords removed). Our corpora are smaller (≈0.3 M words each), so we compare the top `top_k` words, plus
# the share of medical running words that never occur in the general corpus (out-of-vocabulary rate).

# %%
# NBVAL_CHECK_OUTPUT
content = {name: word_counts(texts, drop_stopwords=True) for name, texts in (("medical", domain_texts),
                                                                                ("general", general_texts))}
content["general"].pop("unk", None)
overlap = vocabulary_overlap(content["medical"], content["general"], top=top_k)
for key, value in overlap.items():
    print(f"{key:>18}: {value:.4f}" if isinstance(value, float) else f"{key:>18}: {value:,}")
print(f"{overlap['top_k_overlap']:.0%} of the top {overlap['top_k']:,} content words are shared; "
      f"{overlap['domain_oov_rate']:.0%} of the medical running content words never occur in the general corpus")

# %%
key = keyness(domain_counts, general_counts, min_count=20)
key = key[~key["word"].isin(STOPWORDS)]
marked = pd.concat([key.head(12).assign(side="medical"), key.tail(12).assign(side="general")])
fig, ax = plt.subplots(figsize=(8, 5.5))
sns.barplot(data=marked, y="word", x="log2_ratio", hue="side", dodge=False, ax=ax)
ax.set(xlabel="log2(relative frequency in medical / in general)", ylabel="",
       title="the words that mark each corpus (smoothed frequency ratio)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The printed line gives the shared share of the top content words. The medical side is marked by clinical
# vocabulary (*patients*, *coronary*, *carcinoma*); the general side by encyclopaedic topics (military
# history, sport, music, politics). A model whose training data held few of the medical words has little
# evidence about them, which is what continued pretraining (notebook 05) supplies.
#
# ## 4. Embedding shift: where the corpora sit in sentence-embedding space
#
# MiniLM maps each text to a 384-dimensional unit vector. We embed `embed_docs` documents of each corpus and
# project all of them to 2-D with PCA. Two numbers summarise the picture: the cosine similarity of the two
# corpus centroids, and the cross-validated accuracy of a logistic regression that tells the corpora apart
# (0.5 would mean indistinguishable).

# %%
encoder = cc.load_model(encoder_name, "encoder").to(device)
rng = np.random.default_rng(seed)
picked = {"medical": [domain_texts[i] for i in rng.choice(len(domain_texts), cfg["embed_docs"], replace=False)],
          "general": [general_texts[i] for i in rng.choice(len(general_texts), cfg["embed_docs"], replace=False)]}
unmarked = [t for t in general_texts if not MARKERS.search(t)]  # paragraphs that never held a marker
n_unmarked = min(cfg["embed_docs"], len(unmarked))
general_sets = {"as loaded (markers in)": picked["general"],
                "markers stripped": [strip_markers(t) for t in picked["general"]],
                "paragraphs without markers": [unmarked[i] for i in rng.choice(len(unmarked), n_unmarked, replace=False)]}
general_vectors = {name: sentence_embeddings(encoder, encoder_tokenizer, texts, max_length=128, progress=True)
                   for name, texts in general_sets.items()}
medical_vectors = sentence_embeddings(encoder, encoder_tokenizer, picked["medical"], max_length=128, progress=True)
folds = min(5, cfg["embed_docs"] // 2)
separation = pd.DataFrame([{"general texts": name, "documents": len(general_sets[name]),
                            "with a marker": float(np.mean([bool(MARKERS.search(t)) for t in general_sets[name]])),
                            "centroid cosine": centroid_cosine(medical_vectors, v),
                            "separability": domain_separability(medical_vectors, v, seed=seed, folds=folds)}
                           for name, v in general_vectors.items()]).set_index("general texts")
vectors = {"medical": medical_vectors, "general": general_vectors["markers stripped"]}
centroid_cos = float(separation.loc["markers stripped", "centroid cosine"])
separability = float(separation.loc["markers stripped", "separability"])
confound = float(separation.loc["as loaded (markers in)", "separability"]) - separability
within = {name: float((v @ v.T).mean()) for name, v in vectors.items()}
print(f"markers stripped: centroid cosine {centroid_cos:.3f} · separability ({folds}-fold accuracy, 0.5 = chance) "
      f"{separability:.3f} · mean cosine within medical {within['medical']:.3f}, "
      f"within general {within['general']:.3f}, across {float((vectors['medical'] @ vectors['general'].T).mean()):.3f} · the markers change the "
      f"separability by {confound:+.3f}")
separation.round(3)

# %%
points = project_2d(torch.cat(list(vectors.values())), seed=seed)
frame = pd.DataFrame(points, columns=["pc1", "pc2"]).assign(
    corpus=np.repeat(list(vectors), [len(v) for v in vectors.values()]))
fig, ax = plt.subplots(figsize=(6.5, 5))
sns.scatterplot(data=frame, x="pc1", y="pc2", hue="corpus", alpha=0.7, s=25, ax=ax)
ax.set(title=f"{encoder_name} sentence embeddings (general texts with their markers stripped), PCA to 2-D")
plt.tight_layout()
plt.show()

# %% [markdown]
# The table measures the confound: the general texts as loaded carry WikiText's markers (the share "with a marker"),
# a surface cue a classifier could use instead of the topic. With the markers stripped, and on paragraphs that never
# held one, the separability is what the rest of the text gives (the printed line says how much the markers changed
# it). Where it stays near 1, the two clouds barely overlap and the domain is a region of its own in embedding
# space: topic is the first thing a sentence encoder encodes, so a model fine-tuned only on general sentences meets
# medical inputs in a part of the space it has seen little of.
#
# ## Exercises
#
# Each exercise has a check that says *correct* or *not yet* with a hint. Replace `None` (in a *write the
# mechanism* exercise: complete the function's body), run the cell. Solutions are in the collapsed cell below each
# exercise (click to expand).
#
# **1. Write the mechanism.** Complete `tokens_per_word(tokenizer, texts)`: the fertility of a corpus, its subword
# tokens (without special tokens such as `[CLS]`) divided by its whitespace-separated words. The check runs your
# function with both course tokenizers on texts this notebook never measures, against the package's `fertility`.

# %%
def tokens_per_word(tokenizer, texts: list[str]) -> float:
    """Subword tokens per whitespace word of a corpus: total tokens over total words."""
    # 1. for every text: its tokens without special tokens, tokenizer(text, add_special_tokens=False)["input_ids"]
    # 2. for every text: its words, text.split()
    # 3. divide the two totals (not the average of the per-text ratios: a long text must weigh more)
    return None  # replace with the ratio (a float)


check_tokens_per_word_function(tokens_per_word, [lm_tokenizer, encoder_tokenizer])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: add up tokens (no special tokens) and whitespace words over all texts, then divide the totals
def tokens_per_word(tokenizer, texts: list[str]) -> float:
    """Subword tokens per whitespace word of a corpus: total tokens over total words."""
    n_tokens = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
    n_words = sum(len(text.split()) for text in texts)
    return n_tokens / n_words


check_tokens_per_word_function(tokens_per_word, [lm_tokenizer, encoder_tokenizer])

# %% [markdown]
# **2.** What share of the medical running words (`domain_counts`, all words) never occurs in the general corpus
# (`general_counts`)?

# %%
answer_oov = None  # your answer: a float between 0 and 1
check_oov_rate(answer_oov, domain_counts, general_counts)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count the medical words absent from the general counts, over all medical words
answer_oov = sum(c for w, c in domain_counts.items() if w not in general_counts) / sum(domain_counts.values())
check_oov_rate(answer_oov, domain_counts, general_counts)

# %% [markdown]
# **3.** From the mean NLLs per *word* of the two corpora, what is the ratio of the word perplexities, medical over
# general? (NLL per word = `nll_per_token * tokens_per_word` in the table `ppl`.) The verdict line above already
# printed a per-word ratio: the exercise is to rebuild it from the table's two columns, through the identity
# word perplexity = exp(NLL per token × tokens per word), and see which of the two columns moves it more.

# %%
nll_word = ppl["nll_per_token"] * ppl["tokens_per_word"]
answer_gap = None  # your answer: a float
check_perplexity_gap(answer_gap, nll_word["medical"], nll_word["general"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: per-word perplexity is exp(NLL per word); divide the medical one by the general one
answer_gap = math.exp(nll_word["medical"]) / math.exp(nll_word["general"])
check_perplexity_gap(answer_gap, nll_word["medical"], nll_word["general"])

# %% [markdown]
# ## Summary
#
# * **Perplexity:** compare corpora per word, not per token, and with an interval: the verdict lines of section 1
#   say whether SmolLM2-135M-Instruct (de-quantised from 4 bits) finds either corpus more surprising, or whether
#   this much text leaves them tied. Its web pretraining contained health text. Documents vary widely within each
#   corpus.
# * **Fertility:** frequent medical words are single tokens, but the long tail of clinical terms is spelt out of
#   many pieces (the table of most-split words).
# * **Vocabulary:** the shared share of the top content words and the medical out-of-vocabulary rate are printed in
#   section 3.
# * **Embeddings:** how well a linear classifier separates the two corpora in MiniLM's embedding space, with
#   WikiText's markers in and out (the table of section 4: the markers are a confound to measure, not to ignore).
#
# Notebook 05 uses these measurements as its "before": it adapts SmolLM2 to the medical text and measures what
# changes, and what is lost on general text.

# %%
results = {
    "notebook": "04_domain_gap", "profile": PROFILE, "seed": seed, "device": device.type,
    "model": model_name, "encoder": encoder_name, "max_length": cfg["max_length"],
    "perplexity": {name: {k: float(v) for k, v in r.items()} for name, r in ppl.to_dict(orient="index").items()},
    "perplexity_gap": {unit: {"nll_difference": i.mean, "low": i.low, "high": i.high, "blocks": i.n,
                              "verdict": gap_verdict(i, "medical", "general", unit)} for unit, i in gap.items()},
    "general_marker_token_share": marker_share, "general_token_ppl_without_markers": without_markers,
    "doc_perplexity_median": doc_ppl.groupby("corpus")["perplexity"].median().to_dict(),
    "fertility": {k: {kk: float(vv) for kk, vv in v.items()} for k, v in fert.to_dict().items()},
    "pieces_per_word": {name: pieces_per_word(t) for name, t in tables.items()},
    "most_split": most_split(tables["medical"], top=5, min_count=5)["word"].tolist(),
    "vocabulary": overlap,
    "embedding": {"centroid_cosine": centroid_cos, "separability": separability, "docs": cfg["embed_docs"],
                  "texts": "general texts with WikiText's markers stripped",
                  "separability_by_general_texts": separation["separability"].to_dict()},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("04_domain_gap", results)
pd.Series({k: v for k, v in results.items() if not isinstance(v, (dict, list))}, name="value").to_frame()
