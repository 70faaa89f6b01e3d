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
# 2. freeze the embeddings and the lowest k layers yourself with `requires_grad_(False)`, count what stays
#    trainable by hand, and predict, then measure, the optimiser memory that freezing saves;
# 3. run the frozen part **once** and train the rest on its cached output (a **frozen-layer feature cache**),
#    and check that it gives the same result as ordinary training;
# 4. sweep k from 0 to 6 at one shared rate over several seeds, and plot quality (with 95 % intervals) vs trainable
#    parameters and step time;
# 5. build ULMFiT's **discriminative learning rates** as a list of AdamW parameter groups and its **gradual
#    unfreezing** as a per-epoch loop, check both against the `companion` package, and compare them.
#
# **Before you start:** notebook 06 (the training loop, macro-F1, the baselines, CKA as a forgetting measure);
# notebook 03 helps (what an encoder layer computes). **Study time** for a person: about 75 minutes, reading,
# running and doing the exercises.
#
# **Machine time**, measured on 2 idle CPU cores (kernel start and model loading included): `smoke` 23 s ·
# `cpu` 3.4 min (training in bf16 autocast: this CPU has AVX512-BF16); slower on a busy machine. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
import time
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

import companion as cc
from companion.core.data import load_text_classification
from companion.engine.finetune import forgetting_probe, make_task, run_strategy, subset
from companion.engine.forgetting import general_sentences
from companion.engine.metrics import majority_baseline, tfidf_baseline
from companion.checks.n07 import check_adam_state_prediction
from companion.lessons.n07_layered import optimizer_state_bytes
from companion.engine.layered import UpperStack, discriminative_groups, freeze_lower, gradual_unfreezing, parameter_shares, trainable_parts
from companion.checks.n07 import check_gradual_parts, check_layer0_lr, check_trainable_after_freeze
from companion.engine.training import TrainConfig
from companion.engine.strategies import read_rate
from companion.core.stats import compare as compare_pair, mean_ci, paired_difference
from pathlib import Path

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for shuffling, dropout and the new head
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "minilm"  # encoder (BERT-style): embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
frozen_layers: Optional[list] = None  # range: [0, inf); values of k in the freezing sweep; None means the profile default
compare_k: int = 4  # range: [0, inf); frozen layers of the plain-freezing run compared with ULMFiT's tricks
use_cache: bool = True  # run frozen layers once and train on their cached outputs
decay: float = 2.6  # range: (0, inf); discriminative learning rates: each lower layer's rate is the upper one's divided by this
epochs: Optional[int] = None  # range: [1, inf); passes over the training data; None means the profile default
lr: Optional[float] = None  # range: (0, inf); the one learning rate of every k; None means the rate chosen on validation for freezing (rates_csv), else the profile default
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the strategy sweep's validation-only rate search (make rates)
seeds: Optional[list] = None  # range: [0, 4294967295]; seeds of every run (conclusions need ≥ 3); None means the profile default
max_length: Optional[int] = None  # range: [2, inf); tokens kept from each text; None means the profile default
train_size: Optional[int] = None  # range: [1, inf); training examples used; None means the profile default

# %%
cc.check_values("07", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"epochs": 2, "lr": 2e-4, "max_length": 16, "train_size": 32, "eval_size": 16, "seeds": [0, 1],
              "forgetting_sentences": 16, "check_size": 16, "frozen_layers": [0, 4, 6], "batch_size": 16},
    "cpu": {"epochs": 3, "lr": 2e-4, "max_length": 32, "train_size": 240, "eval_size": None, "seeds": [0, 1, 2],
            "forgetting_sentences": 100, "check_size": 48, "frozen_layers": [0, 2, 4, 6], "batch_size": 16},
    "gpu": {"epochs": 4, "lr": 5e-5, "max_length": 256, "train_size": None, "eval_size": None, "seeds": [0, 1, 2, 3, 4],
            "forgetting_sentences": 1000, "check_size": 256, "frozen_layers": [0, 1, 2, 3, 4, 5, 6], "batch_size": 32},
}, epochs=epochs, lr=lr, max_length=max_length, train_size=train_size, frozen_layers=frozen_layers, seeds=seeds)
if lr is None and PROFILE == "cpu":  # the rate the strategy sweep's search chose on validation for freezing
    cfg["lr"], rate_source = read_rate(Path(rates_csv), "freeze", PROFILE)
else:
    rate_source = "given" if lr is not None else "profile default"
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
if cfg["eval_size"]:
    dataset = type(dataset)({s: (p if s == "train" else p.select(range(min(cfg["eval_size"], len(p)))))
                             for s, p in dataset.items()})
dataset = subset(dataset, cfg["train_size"], seed)
tokenizer = cc.load_tokenizer(model_name)
probe = general_sentences(cfg["forgetting_sentences"], seed=seed)
layered_task = make_task(dataset, model_name, cfg["max_length"], tokenizer=tokenizer)  # resolved and tokenised once
drift_probe = forgetting_probe(layered_task, probe, profile=PROFILE)  # the original encoder's embeddings of the probe, computed once
budget = dict(seed=seed, epochs=cfg["epochs"], batch_size=cfg["batch_size"], patience=None, progress=False)  # every run
print(f"one learning rate for every run: {cfg['lr']:.2g} ({rate_source})")
num_labels = len(dataset["train"].features["label"].names)
print("profile:", PROFILE, "| device:", device.type, "| splits:", {s: len(p) for s, p in dataset.items()})
pd.Series(cfg, name="setting").to_frame()

# %% [markdown]
# ## 1. The model's parts
#
# A BERT-style classifier has three kinds of parts: the **embeddings** (a 30,522-row word-piece table plus
# positions), a stack of **encoder layers** (attention + feed-forward), and the **head** (the pooler, a dense
# layer on `[CLS]`, and the new classifier, one output per class). Half of MiniLM's parameters are the word-piece
# table, which does little compute (a lookup); each encoder layer is 7.8 % of the parameters but a sixth of the
# compute.

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
# ## 2. Freezing by hand
#
# Freezing a part means its parameters get no gradient: `requires_grad_(False)` on a module switches it off for
# every parameter inside. The backward pass then stops below the lowest trainable layer, and the optimiser holds
# no state for frozen parameters. Here we freeze the embeddings and the lowest `compare_k` layers of a fresh
# classifier, count the parameters that stay trainable, and derive the same number by hand from the layer sizes.

# %%
# NBVAL_CHECK_OUTPUT
k = compare_k
model = cc.load_model(model_name, "classifier", num_labels=num_labels)
bert = model.base_model                         # the encoder inside the classifier (model.bert for BERT)
bert.embeddings.requires_grad_(False)           # word pieces, positions, token types, their LayerNorm
for layer in bert.encoder.layer[:k]:            # layer_0 … layer_{k-1}
    layer.requires_grad_(False)
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in model.parameters())

c = model.config
d, ff, n_layers = c.hidden_size, c.intermediate_size, c.num_hidden_layers
per_layer = (4 * (d * d + d)          # query, key, value, attention output: d×d weights + d biases each
             + (d * ff + ff)          # feed-forward up
             + (ff * d + d)           # feed-forward down
             + 2 * 2 * d)             # two LayerNorms (scale + shift)
head = (d * d + d) + (d * num_labels + num_labels)  # pooler + classifier
by_hand = (n_layers - k) * per_layer + head
print(f"frozen: embeddings + layers 0…{k - 1} · trainable {trainable:,} of {total:,} "
      f"({100 * trainable / total:.2f} %)")
print(f"by hand: ({n_layers} − {k}) × {per_layer:,} per layer + {head:,} head = {by_hand:,}")
print("by hand == counted on the model:", by_hand == trainable)
packaged = freeze_lower(cc.load_model(model_name, "classifier", num_labels=num_labels), k)
print("same trainable parameters as the package's freeze_lower:",
      [n for n, p in model.named_parameters() if p.requires_grad]
      == [n for n, p in packaged.named_parameters() if p.requires_grad])

# %% [markdown]
# A frozen part should also stay in **eval mode** while the rest trains (no dropout), so that its output is a
# fixed function of the input; `freeze_lower` marks the frozen modules and the package's training loop keeps
# them in eval mode. Section 3 relies on this.
#
# **Exercise 1 (predict, then measure).** AdamW keeps state for every parameter it updates. Before running the
# next cell, predict how many bytes of optimiser state one AdamW step creates for the model above (frozen as it
# is, float32 weights). Write your number, run the step, then check.

# %%
predicted_state_bytes = None  # your prediction: an integer number of bytes

# %%
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
few = dataset["train"].select(range(8))
batch = tokenizer(list(few["text"]), truncation=True, max_length=cfg["max_length"], padding=True, return_tensors="pt")
loss = model(**batch, labels=torch.tensor(list(few["label"]))).loss
loss.backward()
optimizer.step()
measured_state = optimizer_state_bytes(optimizer)
trained_tensors = sum(1 for p in model.parameters() if p.requires_grad)
print(f"one AdamW step: {trained_tensors} trained tensors, {measured_state:,} bytes of optimiser state")

# %%
check_adam_state_prediction(predicted_state_bytes, measured_state, trainable, total, trained_tensors)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: two moments per trainable number, float32 (4 bytes); frozen parameters get no state
predicted_state_bytes = 2 * trainable * 4
check_adam_state_prediction(predicted_state_bytes, measured_state, trainable, total, trained_tensors)

# %% [markdown]
# ## 3. The frozen-layer feature cache: run the frozen part once
#
# When the embeddings and the lowest k layers are frozen **and in eval mode**, their output for a given text
# never changes. So there is no need to run them every epoch: run them **once** over every text, keep each
# text's hidden states, and train the upper layers on those. Every epoch then skips k of the 6 layers (the
# backward pass never reached them anyway). Here is the idea on one batch, written out:

# %%
model.eval()
with torch.no_grad():
    whole = model(**batch).logits                                      # the ordinary forward pass
    # once, before training: the frozen part
    h = bert.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
    mask = create_bidirectional_mask(config=c, inputs_embeds=h, attention_mask=batch["attention_mask"])
    for layer in bert.encoder.layer[:k]:
        h = layer(h, mask)
    cache = h.clone()                                                   # this is what the cache stores
    # every epoch: only the upper layers and the head, starting from the cache
    h = cache
    for layer in bert.encoder.layer[k:]:
        h = layer(h, mask)
    split = model.classifier(model.dropout(bert.pooler(h)))
    upper = UpperStack(model, k)(cache, batch["attention_mask"]).logits  # the package's version of the top
print(f"cache: {tuple(cache.shape)} hidden states (texts × tokens × {d}) after layer_{k - 1}")

# %%
# NBVAL_CHECK_OUTPUT
print("frozen part once + upper part == whole model (max |diff| < 1e-5):", (split - whole).abs().max().item() < 1e-5)
print("the package's UpperStack gives the same logits (max |diff| < 1e-5):", (upper - whole).abs().max().item() < 1e-5)

# %%
print(f"max |diff|: by hand {(split - whole).abs().max().item():.1e}, "
      f"UpperStack {(upper - whole).abs().max().item():.1e}")

# %% [markdown]
# The package does this for the whole data set (`cache_lower_features`: each text's unpadded hidden states,
# re-padded per batch) and trains `UpperStack` on them. The training run must then be the same as training the
# frozen model the ordinary way, and it is:

# %%
tiny = make_task(dataset, model_name, cfg["max_length"], cfg["check_size"], seed, tokenizer)
check_config = TrainConfig(seed=seed, epochs=2, lr=cfg["lr"], patience=None, progress=False,
                           mixed_precision="fp32")  # the cache holds float32 features: compare both runs in float32
cached_run = run_strategy("freeze", tiny, check_config, use_cache=True, k=compare_k)
plain_run = run_strategy("freeze", tiny, check_config, use_cache=False, k=compare_k)
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
# ## 4. Sweep: freeze the lowest k layers
#
# k = 0 is full fine-tuning; k = 6 trains only the head (pooler + classifier) on fixed features. Every run has
# the same data, epochs, sequence length and **one shared learning rate** (chosen on validation by the strategy
# sweep's rate search for freezing, printed above), so the table compares freezing alone. Each k runs with every
# seed in `seeds`; a conclusion is drawn only where the 95 % interval of a paired difference excludes 0.

# %%
sweep = []
for k in cfg["frozen_layers"]:
    for run_seed in cfg["seeds"]:
        row = run_strategy("freeze", layered_task, TrainConfig(lr=cfg["lr"], **(budget | {"seed": run_seed})), drift_probe,
                           use_cache=use_cache, k=k)
        sweep.append(row)
    scores = [r["macro_f1"] for r in sweep if r["k"] == k]
    print(f"k={k}: macro-F1 {mean_ci(scores).mean:.3f} over {len(scores)} seeds · trainable {row['trainable']:,}")
runs_k = pd.DataFrame([{"k": r["k"], "seed": r["seed"], "macro_f1": r["macro_f1"], "trainable": r["trainable"],
                        "trainable_pct": r["trainable_pct"], "s_per_step": r["seconds_per_step"],
                        "cache_s": r["cache_seconds"], "cka": r["forgetting"]["cka"],
                        "general_acc": r["forgetting"].get("general_acc")} for r in sweep])
intervals = {k: mean_ci(g["macro_f1"]) for k, g in runs_k.groupby("k")}
table = runs_k.groupby("k").mean(numeric_only=True).drop(columns="seed").reset_index()
table["f1_low"] = table["k"].map(lambda k: intervals[k].low)
table["f1_high"] = table["k"].map(lambda k: intervals[k].high)
table.round(4)

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for _, r in table.iterrows():
    axes[0].errorbar(r.trainable, r.macro_f1, yerr=[[r.macro_f1 - r.f1_low], [r.f1_high - r.macro_f1]], fmt="o",
                     capsize=4, color="tab:blue")
    axes[0].annotate(f"k={int(r.k)}", (r.trainable, r.macro_f1), textcoords="offset points", xytext=(8, -4))
axes[0].set(xscale="log", xlabel="trainable parameters (log scale)", ylabel="test macro-F1 (mean, 95 % interval)",
            title="Quality vs trainable parameters")
sns.lineplot(data=runs_k, x="k", y="s_per_step", marker="o", errorbar=("ci", 95), ax=axes[1])
axes[1].set(xlabel="frozen layers k", ylabel="seconds per training step", title="Step time (feature cache on)")
plt.tight_layout()
plt.show()

# %% [markdown]
# What does this run say? The lines below are computed from the runs (paired by seed), so they hold for whatever
# profile, data or seeds you ran:

# %%
reading = []
by_k = runs_k.pivot_table(index="seed", columns="k", values="macro_f1")
if 0 in by_k and len(cfg["seeds"]) >= 2:
    for k in [k for k in by_k.columns if k != 0]:
        reading.append(compare_pair(f"k={k}", "k=0 (full)", paired_difference(by_k[k], by_k[0]), "test macro-F1"))
    k_max = int(table["k"].max())
    step_ratio = table.loc[table["k"] == 0, "s_per_step"].iloc[0] / table.loc[table["k"] == k_max, "s_per_step"].iloc[0]
    reading.append(f"a training step with k={k_max} frozen (cached) takes 1/{step_ratio:.1f} of full fine-tuning's")
rho = runs_k["k"].corr(runs_k["cka"], method="spearman")
reading.append(f"rank correlation of k with CKA on general sentences (1 = representations untouched): {rho:+.2f} "
               f"({'more freezing, less drift' if rho > 0 else 'no decrease of drift with freezing'})")
print("\n".join(f"* {line}" for line in reading))

# %% [markdown]
# Reading the plot: at one rate, fewer trainable layers learn less per step, but a fully trainable model can
# also overfit a small training set; read the lines above rather than assume either way. Freezing all six layers leaves only the pooler and the classifier to adapt, on
# features that were never trained for the task. When all layers are frozen the encoder is untouched and CKA is
# exactly 1; below that, CKA measures how far tuning moved the general-text representations (notebook 06).
#
# ## 5. ULMFiT's tricks: discriminative learning rates and gradual unfreezing
#
# Howard & Ruder (2018) fine-tune all layers, but carefully:
# * **discriminative learning rates**: each layer gets its own rate, η_{l−1} = η_l / 2.6, so the lowest layers
#   barely move;
# * **gradual unfreezing**: the first epoch trains only the head, each later epoch unfreezes the next layer down.
#
# **Discriminative rates are parameter groups.** `torch.optim.AdamW` accepts a list of groups, each a dict with
# its own `params` and `lr`. We build one group per part, top to bottom, dividing the rate by `decay` at each
# step down:

# %%
model = cc.load_model(model_name, "classifier", num_labels=num_labels)
bert = model.base_model
parts = {"embeddings": bert.embeddings,                                    # bottom …
         **{f"layer_{i}": layer for i, layer in enumerate(bert.encoder.layer)},
         "head": nn.ModuleList([bert.pooler, model.classifier])}          # … top
head_lr = 1e-3
groups, rate = [], head_lr
for name in reversed(list(parts)):                                        # top → bottom
    groups.append({"name": name, "params": list(parts[name].parameters()), "lr": rate})
    rate = rate / decay                                                   # η below = η above / decay
optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
rates = pd.DataFrame([{"part": g["name"], "lr": g["lr"], "params": sum(p.numel() for p in g["params"])}
                      for g in optimizer.param_groups])

# %%
# NBVAL_CHECK_OUTPUT
print(rates.assign(lr=rates["lr"].map("{:.3e}".format)).to_string(index=False))
package = {}
for g in discriminative_groups(model, lr=head_lr, decay=decay):  # the package also splits off no-decay params
    part = package.setdefault(g["name"].split("/")[0], {"lr": g["lr"], "ids": set()})
    part["ids"] |= {id(p) for p in g["params"]}
same = all(abs(package[g["name"]]["lr"] - g["lr"]) <= 1e-12 * g["lr"]
           and package[g["name"]]["ids"] == {id(p) for p in g["params"]} for g in groups)
print("same parts, parameters and rates as the package's discriminative_groups:", same and len(package) == len(groups))

# %% [markdown]
# **Gradual unfreezing is a loop over epochs.** Everything starts frozen; at the start of each epoch one more
# part thaws, from the top down. The optimiser is built over *all* parameters from the start, so a part that
# thaws is already in it (a frozen parameter has no gradient, and AdamW skips it). The loop below only prints the
# schedule, one line per epoch, and checks the package's `gradual_unfreezing` hook against it at every epoch:

# %%
# NBVAL_CHECK_OUTPUT
model.requires_grad_(False)                                               # epoch −1: nothing trains
names = list(parts)                                                       # bottom → top
hooked = cc.load_model(model_name, "classifier", num_labels=num_labels)
hook = gradual_unfreezing(hooked)                                         # the package's version
agree = True
for epoch in range(len(names)):
    parts[names[len(names) - 1 - epoch]].requires_grad_(True)             # thaw the next part down
    training = [n for n in names if any(p.requires_grad for p in parts[n].parameters())]
    hook(epoch, hooked)
    agree = agree and training == trainable_parts(hooked)
    print(f"epoch {epoch}: trains {', '.join(training)} · "
          f"{sum(p.numel() for p in model.parameters() if p.requires_grad):,} parameters")
print("the package's gradual_unfreezing hook trains the same parts every epoch:", agree)

# %% [markdown]
# The runs below share data, epochs and seeds. Plain freezing (k = `compare_k`) and full fine-tuning (k = 0) come
# from the sweep, at its shared rate; the ULMFiT variants start the head at `lr × decay`, and each layer below
# gets `decay` times less (the `lr` column shows each run's peak rate).

# %%
def sweep_runs(k: int) -> list[dict]:
    """The k-sweep's runs for one k (every seed), or fresh runs when k was not in the sweep."""
    found = [r for r in sweep if r["k"] == k]
    return found or [run_strategy("freeze", layered_task, TrainConfig(lr=cfg["lr"], **(budget | {"seed": s})),
                                  drift_probe, k=k) for s in cfg["seeds"]]


ulmfit_budget = lambda s: TrainConfig(lr=cfg["lr"] * decay, **(budget | {"seed": s}))  # head's rate; lower layers get less
compare = {"full (k=0)": sweep_runs(0), f"freeze k={compare_k}": sweep_runs(compare_k),
           "discriminative LR": [run_strategy("discriminative", layered_task, ulmfit_budget(s), drift_probe,
                                              decay=decay) for s in cfg["seeds"]],
           "gradual unfreezing": [run_strategy("gradual", layered_task, ulmfit_budget(s), drift_probe)
                                  for s in cfg["seeds"]],
           "gradual + discriminative (ULMFiT)": [run_strategy("ulmfit", layered_task, ulmfit_budget(s), drift_probe,
                                                              decay=decay) for s in cfg["seeds"]]}
per_seed = pd.DataFrame([{"strategy": name, "seed": r["seed"], "lr": r["lr"], "macro_f1": r["macro_f1"],
                          "trainable_at_end": r["trainable"], "s_per_step": r["seconds_per_step"],
                          "cka": r["forgetting"]["cka"]} for name, rows in compare.items() for r in rows])
comparison = per_seed.groupby("strategy", sort=False).mean(numeric_only=True).drop(columns="seed")
comparison["f1_half_width"] = [mean_ci(g["macro_f1"]).half_width for _, g in per_seed.groupby("strategy", sort=False)]
comparison.round(4)

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
sns.barplot(data=per_seed, y="strategy", x="macro_f1", ax=ax, color="seagreen", errorbar=("ci", 95))
ax.set(xlabel="test macro-F1 (mean, 95 % interval over seeds)", ylabel="",
       title="Plain freezing vs ULMFiT's tricks (same data, epochs, seeds)")
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
# **2.** How many parameters are trainable after freezing the embeddings and the lowest 3 layers (5 classes)?

# %%
trainable_k3 = None  # your answer: an integer
check_trainable_after_freeze(trainable_k3, model_name, 3)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: add up the parts that stay trainable (layers 3–5 and the head)
trainable_k3 = int(shares.loc[shares.part.isin(["layer_3", "layer_4", "layer_5", "head"]), "params"].sum())
check_trainable_after_freeze(trainable_k3, model_name, 3)

# %% [markdown]
# **3.** With a head learning rate of 1e-3 and ULMFiT's factor 2.6, what rate does `layer_0` (6 layers below
# the head) get?

# %%
layer0_lr = None  # your answer: a float
check_layer0_lr(layer0_lr, 1e-3)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: six steps down from the head, each dividing by 2.6
layer0_lr = 1e-3 / 2.6 ** 6
check_layer0_lr(layer0_lr, 1e-3)

# %% [markdown]
# **4.** In gradual unfreezing, which parts train in epoch 2 (counting from 0)? A list, bottom to top, e.g.
# `["layer_5", "head"]`.

# %%
parts_epoch2 = None  # your answer: a list of part names
check_gradual_parts(parts_epoch2, 2)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: epoch 0 the head, then one more layer per epoch from the top
parts_epoch2 = ["layer_4", "layer_5", "head"]
check_gradual_parts(parts_epoch2, 2)

# %% [markdown]
# **5 (open).** Set `use_cache=False` and compare the sweep's seconds per epoch with the cached run.
#
# ## Summary
#
# * Half of MiniLM's parameters are the word-piece table; each encoder layer is ~8 %.
# * Freezing is `requires_grad_(False)`: no gradients and no optimiser state for the frozen part (AdamW keeps
#   8 bytes per trainable float32 number). Frozen layers in eval mode are a fixed function, so they can run once
#   and be cached; the cached run equals the ordinary one.
# * Discriminative rates are a list of AdamW parameter groups; gradual unfreezing is a per-epoch
#   `requires_grad_(True)` from the top down.
# * What this run measured (computed from the tables above):

# %%
best = table.loc[table["macro_f1"].idxmax()]
by_strategy = per_seed.pivot_table(index="seed", columns="strategy", values="macro_f1")
plain_name = f"freeze k={compare_k}"
print(f"* highest mean macro-F1: k={int(best.k)} ({best.macro_f1:.3f}, {best.trainable_pct:.2f} % trainable); "
      "the paired intervals above say which gaps are real")
if len(cfg["seeds"]) >= 2:
    for name in ["discriminative LR", "gradual unfreezing", "gradual + discriminative (ULMFiT)"]:
        print("*", compare_pair(name, f"plain freezing k={compare_k}",
                                paired_difference(by_strategy[name], by_strategy[plain_name]), "test macro-F1"))
results = {
    "notebook": "07_layered_finetuning", "profile": PROFILE, "seed": seed, "device": device.type,
    "model_name": model_name, "settings": cfg, "train_size": len(dataset["train"]),
    "freeze_check": {"k": compare_k, "trainable": trainable, "by_hand": by_hand, "equal": bool(by_hand == trainable),
                     "adam_state_bytes": measured_state, "trained_tensors": trained_tensors},
    "by_hand_checks": {"cache_split": bool((split - whole).abs().max().item() < 1e-5),
                       "upper_stack": bool((upper - whole).abs().max().item() < 1e-5),
                       "discriminative_groups": bool(same), "gradual_unfreezing": bool(agree)},
    "cache_check": {"max_loss_diff": loss_diff, "equal": bool(loss_diff < 1e-4),
                    "speedup_per_epoch": plain_run["seconds_per_epoch"] / cached_run["seconds_per_epoch"]},
    "lr": cfg["lr"], "rate_source": rate_source, "seeds": cfg["seeds"],
    "sweep": table.to_dict("records"), "sweep_runs": runs_k.to_dict("records"),
    "best_k": int(best["k"]), "cka_k_spearman": float(rho),
    "comparison": {name: {"macro_f1": [r["macro_f1"] for r in rows], "seeds": [r["seed"] for r in rows],
                          "lr": rows[0]["lr"], "trainable": rows[0]["trainable"],
                          "seconds_per_step": float(pd.Series([r["seconds_per_step"] for r in rows]).mean()),
                          "cka": float(pd.Series([r["forgetting"]["cka"] for r in rows]).mean())}
                   for name, rows in compare.items()},
    "test": {"macro_f1": float(by_strategy[plain_name].mean()),
             "accuracy": float(pd.Series([r["accuracy"] for r in compare[plain_name]]).mean())},
    "params": {"trainable": compare[plain_name][0]["trainable"], "total": sweep[0]["total"]},
    "peak_memory_mb": compare[plain_name][0]["peak_memory_mb"],
    "forgetting": compare[plain_name][0]["forgetting"],
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("07_layered_finetuning", results)
table[["k", "macro_f1", "trainable", "s_per_step", "cka"]].round(3)
