# %% [markdown]
# # 07 · Layered fine-tuning
#
# Full fine-tuning (notebook 06) trains all 22.7 M parameters. But the lower layers of a pretrained encoder hold
# general features (word pieces, syntax) that a new task rarely needs to change; the upper layers are the more
# task-specific ones. **Layered fine-tuning** exploits this: freeze the lower part, train the top, or train all
# layers with rates that grow towards the top.
#
# **In this notebook you will**
# 1. take the model apart (embeddings, 6 encoder layers, pooler + head) and see where the parameters are;
# 2. freeze the embeddings and the lowest k layers for k = 0…6 and plot quality vs trainable parameters vs time,
#    using a **frozen-layer feature cache** (frozen layers run once, not every epoch) that gives the same result;
# 3. compare plain freezing with **gradual unfreezing** and **discriminative learning rates** (ULMFiT).
#
# **Time**, measured on 2 idle CPU cores (kernel start and model loading included): `smoke` 18 s ·
# `cpu` 3 min; slower on a busy machine. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
import time
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

import companion as cc
from companion.data import load_text_classification
from companion.embeddings import sentence_embeddings
from companion.finetune import run_strategy, subset
from companion.forgetting import general_sentences
from companion.metrics import majority_baseline, tfidf_baseline
from companion.strategies import (ULMFIT_DECAY, check_gradual_parts, check_layer0_lr, check_trainable_after_freeze,
                                  discriminative_groups, parameter_shares)

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # random seed for shuffling, dropout and the new head
model_name: str = "minilm"  # encoder (BERT-style): embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
frozen_layers: Optional[list] = None  # values of k in the freezing sweep; None means the profile default
compare_k: int = 4  # frozen layers of the plain-freezing run compared with ULMFiT's tricks
use_cache: bool = True  # run frozen layers once and train on their cached outputs
decay: float = 2.6  # discriminative learning rates: each lower layer's rate is the upper one's divided by this
epochs: Optional[int] = None  # passes over the training data; None means the profile default
lr: Optional[float] = None  # learning rate with nothing frozen; None means the profile default
lr_head_only: Optional[float] = None  # learning rate with every layer frozen; None means the profile default
max_length: Optional[int] = None  # tokens kept from each text; None means the profile default
train_size: Optional[int] = None  # training examples used; None means the profile default

# %%
PROFILE, device, start = cc.start(profile, seed)  # resolve the profile, seed, pick the device, start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"epochs": 2, "lr": 2e-4, "lr_head_only": 2e-3, "max_length": 16, "train_size": 32, "eval_size": 16,
              "forgetting_sentences": 16, "check_size": 16, "frozen_layers": [0, 4, 6], "batch_size": 16},
    "cpu": {"epochs": 3, "lr": 2e-4, "lr_head_only": 3e-3, "max_length": 32, "train_size": 240, "eval_size": None,
            "forgetting_sentences": 100, "check_size": 48, "frozen_layers": [0, 1, 2, 3, 4, 5, 6], "batch_size": 16},
    "gpu": {"epochs": 4, "lr": 5e-5, "lr_head_only": 1e-3, "max_length": 256, "train_size": None, "eval_size": None,
            "forgetting_sentences": 1000, "check_size": 256, "frozen_layers": [0, 1, 2, 3, 4, 5, 6], "batch_size": 32},
}, epochs=epochs, lr=lr, lr_head_only=lr_head_only, max_length=max_length, train_size=train_size,
   frozen_layers=frozen_layers)
dataset = load_text_classification(data, text_column, label_column, seed=seed if data != "medical_abstracts" else 42)
if cfg["eval_size"]:
    dataset = type(dataset)({s: (p if s == "train" else p.select(range(min(cfg["eval_size"], len(p)))))
                             for s, p in dataset.items()})
dataset = subset(dataset, cfg["train_size"], seed)
tokenizer = cc.load_tokenizer(model_name)
probe = general_sentences(cfg["forgetting_sentences"], seed=seed)
reference = sentence_embeddings(cc.load_model(model_name, "encoder"), tokenizer, probe, max_length=cfg["max_length"])
common = dict(model_name=model_name, seed=seed, epochs=cfg["epochs"], max_length=cfg["max_length"], patience=None,
              batch_size=cfg["batch_size"],
              forgetting_texts=probe, reference=reference, tokenizer=tokenizer)
print("profile:", PROFILE, "| device:", device.type, "| splits:", {s: len(p) for s, p in dataset.items()})
pd.Series(cfg, name="setting").to_frame()

# %% [markdown]
# ## 1. The model's parts
#
# A BERT-style classifier has three kinds of parts: the **embeddings** (a 30,522-row word-piece table plus
# positions), a stack of **encoder layers** (attention + feed-forward), and the **head** (the pooler, a dense
# layer on `[CLS]`, and the new 5-way classifier). Half of MiniLM's parameters are the word-piece table, which
# does little compute; each encoder layer is 7.8 % of the parameters but a sixth of the compute.

# %%
# NBVAL_CHECK_OUTPUT
model = cc.load_model(model_name, "classifier", num_labels=5)
shares = parameter_shares(model)
print(shares.assign(share_pct=shares["share_pct"].round(2)).to_string(index=False))

# %%
fig, ax = plt.subplots(figsize=(8, 3))
sns.barplot(data=shares, x="part", y="share_pct", ax=ax, color="steelblue")
ax.set(ylabel="% of parameters", xlabel="", title="Where the parameters are")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. The frozen-layer feature cache
#
# When the embeddings and the lowest k layers are frozen **and in eval mode** (no dropout), their output for a
# given text never changes. So we run them once over every text, keep each text's hidden states, and train the
# upper layers on those: every epoch then skips k of the 6 layers (and the backward pass never reaches them).
# The result must be the same as training the frozen model the ordinary way, and it is:

# %%
tiny = subset(dataset, cfg["check_size"], seed)
check_args = dict(model_name=model_name, seed=seed, k=compare_k, epochs=2, max_length=cfg["max_length"],
                  lr=cfg["lr_head_only"], patience=None, tokenizer=tokenizer, progress=False)
cached_run = run_strategy("freeze", tiny, use_cache=True, **check_args)
plain_run = run_strategy("freeze", tiny, use_cache=False, **check_args)
loss_diff = max(abs(a["loss"] - b["loss"]) for a, b in zip(cached_run["history"], plain_run["history"]))

# %%
# NBVAL_CHECK_OUTPUT
print("same loss at every logged step (|diff| < 1e-4):", loss_diff < 1e-4)
print("same test macro-F1:", abs(cached_run["macro_f1"] - plain_run["macro_f1"]) < 1e-9)
print("same trainable parameters:", cached_run["trainable"] == plain_run["trainable"])

# %%
print(f"max |loss diff| {loss_diff:.1e} · seconds per epoch: plain {plain_run['seconds_per_epoch']:.2f}, cached "
      f"{cached_run['seconds_per_epoch']:.2f} (+ {cached_run['cache_seconds']:.2f} s once to fill the cache) → "
      f"{plain_run['seconds_per_epoch'] / cached_run['seconds_per_epoch']:.1f}× faster per epoch")

# %% [markdown]
# ## 3. Sweep: freeze the lowest k layers
#
# k = 0 is full fine-tuning; k = 6 trains only the head (pooler + classifier) on fixed features. Fewer trainable
# layers tolerate, and need, larger learning rates, so the rate moves geometrically from `lr` (k = 0) to
# `lr_head_only` (k = 6). Everything else is the same for every k: data, seed, epochs, sequence length.

# %%
def rate_for(k: int, n: int = 6) -> float:
    """Learning rate for k frozen layers: geometric between lr (k=0) and lr_head_only (k=n)."""
    return cfg["lr"] * (cfg["lr_head_only"] / cfg["lr"]) ** (k / n)

sweep = []
for k in cfg["frozen_layers"]:
    row = run_strategy("freeze", dataset, k=k, lr=rate_for(k), use_cache=use_cache, **common)
    sweep.append(row)
    print(f"k={k}: macro-F1 {row['macro_f1']:.3f} · trainable {row['trainable']:,} · {row['seconds']:.0f} s")
table = pd.DataFrame([{"k": r["k"], "lr": r["lr"], "macro_f1": r["macro_f1"], "accuracy": r["accuracy"],
                       "trainable": r["trainable"], "trainable_pct": r["trainable_pct"], "seconds": r["seconds"],
                       "s_per_epoch": r["seconds_per_epoch"], "cache_s": r["cache_seconds"],
                       "peak_mib": r["peak_memory_mb"], "cka": r["forgetting"]["cka"]} for r in sweep])
table.round(4)

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
points = sns.scatterplot(data=table, x="trainable", y="macro_f1", size="seconds", hue="seconds", sizes=(60, 400),
                         palette="viridis", ax=ax)
for _, r in table.iterrows():
    ax.annotate(f"k={int(r.k)}", (r.trainable, r.macro_f1), textcoords="offset points", xytext=(8, -4))
ax.set(xscale="log", xlabel="trainable parameters (log scale)", ylabel="test macro-F1",
       title="Freezing the lowest k layers: quality vs trainable parameters (colour/size: seconds)")
plt.tight_layout()
plt.show()

# %% [markdown]
# What does this run say? The lines below are computed from the table, so they hold for whatever profile,
# data or seed you ran:

# %%
best = table.loc[table["macro_f1"].idxmax()]
head = table.loc[table["k"].idxmax()]
reading = [f"best: k={int(best.k)}, macro-F1 {best.macro_f1:.3f} with {best.trainable_pct:.2f} % of the weights trainable"]
if (table["k"] == 0).any():
    full_row = table.loc[table["k"] == 0].iloc[0]
    reading.append(f"full fine-tuning (k=0): macro-F1 {full_row.macro_f1:.3f} ({full_row.macro_f1 - best.macro_f1:+.3f} vs "
                   f"the best), {full_row.seconds / best.seconds:.1f}× the best run's time")
reading.append(f"k={int(head.k)}: macro-F1 {head.macro_f1:.3f} ({head.macro_f1 - best.macro_f1:+.3f} vs the best), "
               f"{int(head.trainable):,} trainable weights, {head.seconds:.0f} s")
rho = table["k"].corr(table["cka"], method="spearman")
reading.append(f"rank correlation of k with CKA on general sentences (1 = representations untouched): {rho:+.2f}")
print("\n".join(reading))

# %% [markdown]
# Reading the plot: the trainable parameters fall by two orders of magnitude from k = 0 to k = 6, and with the
# cache the time per epoch falls with them. Quality need not fall with them: on a small training set a fully
# trainable model at a small rate can learn more slowly, or overfit, where a partly frozen one at a larger rate
# does well, so check the lines above rather than assume "more trainable is better". Freezing all six layers
# leaves only the pooler and the classifier to adapt, on features that never saw the medical topics. When all
# layers are frozen the encoder is untouched and CKA is exactly 1; below that, CKA measures how far tuning moved
# the general-text representations (notebook 06), and it need not fall monotonically with k on a short run.
#
# ## 4. ULMFiT's tricks: gradual unfreezing and discriminative learning rates
#
# Howard & Ruder (2018) fine-tune all layers, but carefully:
# * **discriminative learning rates**: each layer gets its own rate, η_{l−1} = η_l / 2.6, so the lowest layers
#   barely move;
# * **gradual unfreezing**: epoch 1 trains only the head, each later epoch unfreezes the next layer down.
#
# Here are the discriminative groups of our model (head at the peak rate):

# %%
# NBVAL_CHECK_OUTPUT
groups = discriminative_groups(cc.load_model(model_name, "classifier", num_labels=5), lr=1e-3, decay=decay)
rates = pd.DataFrame([{"part": g["name"].split("/")[0], "lr": g["lr"]} for g in groups]).drop_duplicates("part")
print(rates.assign(lr=rates["lr"].map("{:.2e}".format)).to_string(index=False))

# %% [markdown]
# All runs below use the same data, epochs and seed. Plain freezing with k = `compare_k` comes from the sweep.

# %%
compare = {"full (k=0)": next(r for r in sweep if r["k"] == 0) if 0 in cfg["frozen_layers"] else
           run_strategy("full", dataset, lr=cfg["lr"], **common),
           f"freeze k={compare_k}": next(r for r in sweep if r["k"] == compare_k) if compare_k in cfg["frozen_layers"] else
           run_strategy("freeze", dataset, k=compare_k, lr=rate_for(compare_k), **common)}
compare["discriminative LR"] = run_strategy("discriminative", dataset, lr=cfg["lr"] * decay, decay=decay, **common)
compare["gradual unfreezing"] = run_strategy("gradual", dataset, lr=cfg["lr"] * decay, **common)
compare["gradual + discriminative (ULMFiT)"] = run_strategy("ulmfit", dataset, lr=cfg["lr"] * decay, decay=decay,
                                                            **common)
comparison = pd.DataFrame([{"strategy": name, "macro_f1": r["macro_f1"], "accuracy": r["accuracy"],
                            "trainable_at_end": r["trainable"], "seconds": r["seconds"], "cka": r["forgetting"]["cka"]}
                           for name, r in compare.items()])
comparison.round(4)

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
sns.barplot(data=comparison, y="strategy", x="macro_f1", ax=ax, color="seagreen")
ax.set(xlabel="test macro-F1", ylabel="", title="Plain freezing vs ULMFiT's tricks (same data, epochs, seed)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **In the paper** (ULMFiT, Table 7, validation error % on IMDb / TREC-6 / AG News): full fine-tuning
# 6.87 / 6.86 / 5.81; last layer only 6.49 / 16.09 / 8.38; gradual unfreezing + discriminative rates + slanted
# triangular schedule 5.00 / 5.69 / 5.38. Their model was a 3-layer LSTM trained for many epochs; with a few
# epochs and a Transformer the effects here are smaller, and gradual unfreezing spends its first epochs on
# the top only — on a short budget that can cost quality. Measure before you adopt a trick.
#
# ## Exercises
#
# **1.** How many parameters are trainable after freezing the embeddings and the lowest 3 layers?

# %%
trainable_k3 = None  # your answer: an integer
check_trainable_after_freeze(trainable_k3, model_name, 3)

# %% tags=["solution"] jupyter={"source_hidden": true}
trainable_k3 = int(shares.loc[shares.part.isin(["layer_3", "layer_4", "layer_5", "head"]), "params"].sum())
check_trainable_after_freeze(trainable_k3, model_name, 3)

# %% [markdown]
# **2.** With a head learning rate of 1e-3 and ULMFiT's factor 2.6, what rate does `layer_0` (6 layers below
# the head) get?

# %%
layer0_lr = None  # your answer: a float
check_layer0_lr(layer0_lr, 1e-3)

# %% tags=["solution"] jupyter={"source_hidden": true}
layer0_lr = 1e-3 / 2.6 ** 6
check_layer0_lr(layer0_lr, 1e-3)

# %% [markdown]
# **3.** In gradual unfreezing, which parts train in epoch 2 (counting from 0)? A list, bottom to top, e.g.
# `["layer_5", "head"]`.

# %%
parts_epoch2 = None  # your answer: a list of part names
check_gradual_parts(parts_epoch2, 2)

# %% tags=["solution"] jupyter={"source_hidden": true}
parts_epoch2 = ["layer_4", "layer_5", "head"]
check_gradual_parts(parts_epoch2, 2)

# %% [markdown]
# **4 (open).** Set `use_cache=False` and compare the sweep's seconds per epoch with the cached run.
#
# ## Summary
#
# * Half of MiniLM's parameters are the word-piece table; each encoder layer is ~8 %.
# * Freezing the lowest k layers trades a little quality for much less trainable state and time; the frozen-layer
#   cache makes that time saving real (frozen layers run once) with identical results.
# * Discriminative rates and gradual unfreezing (ULMFiT) protect the pretrained lower layers; their benefit
#   depends on the budget, so compare them on your data.

# %%
best = table.loc[table["macro_f1"].idxmax()]
results = {
    "notebook": "07_layered_finetuning", "profile": PROFILE, "seed": seed, "device": device.type,
    "model_name": model_name, "settings": cfg, "train_size": len(dataset["train"]),
    "cache_check": {"max_loss_diff": loss_diff, "equal": bool(loss_diff < 1e-4),
                    "speedup_per_epoch": plain_run["seconds_per_epoch"] / cached_run["seconds_per_epoch"]},
    "sweep": table.to_dict("records"),
    "best_k": int(best["k"]),
    "comparison": {name: {"macro_f1": r["macro_f1"], "accuracy": r["accuracy"], "trainable": r["trainable"],
                          "seconds": r["seconds"], "peak_memory_mb": r["peak_memory_mb"], "forgetting": r["forgetting"]}
                   for name, r in compare.items()},
    "test": {"macro_f1": compare[f"freeze k={compare_k}"]["macro_f1"],
             "accuracy": compare[f"freeze k={compare_k}"]["accuracy"]},
    "params": {"trainable": compare[f"freeze k={compare_k}"]["trainable"], "total": sweep[0]["total"]},
    "peak_memory_mb": compare[f"freeze k={compare_k}"]["peak_memory_mb"],
    "forgetting": compare[f"freeze k={compare_k}"]["forgetting"],
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("07_layered_finetuning", results)
table[["k", "macro_f1", "trainable", "seconds", "cka"]].round(3)
