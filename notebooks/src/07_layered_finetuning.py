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
# 4. read the strategy sweep's comparison of k = 0, 2, 4 and 6 under the course's protocol (each k at its own
#    learning rate chosen on validation, 5 seeds, paired 95 % intervals): quality vs trainable parameters, step
#    time and forgetting;
# 5. build ULMFiT's **discriminative learning rates** as a list of AdamW parameter groups and its **gradual
#    unfreezing** as a per-epoch loop, check both against the `companion` package, and compare them under the
#    same protocol, each at its own rate.
#
# **Before you start:** notebook 06 (the training loop, macro-F1, the baselines, CKA as a forgetting measure);
# notebook 03 helps (what an encoder layer computes). **Study time** for a person: about 75 minutes, reading,
# running and doing the exercises.
#
# **Machine time** on 2 idle CPU cores is printed by the last cell and kept in the result JSON (`seconds`;
# BENCHMARKS.md lists every notebook's). The comparisons come from the strategy sweep (`make rates`, `make sweep`;
# their times are in `sweeps/README.md`); this notebook only trains for its checks.

# %%
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
from torch import nn
from transformers.masking_utils import create_bidirectional_mask

import companion as cc
from companion.checks.n07 import (check_adam_state_prediction, check_gradual_parts, check_layer0_lr,
                                  check_trainable_after_freeze)
from companion.core.data import load_text_classification
from companion.core.stats import compare as compare_pair
from companion.engine.comparison import convergence, pair, summarise, sweep_for
from companion.engine.finetune import run_strategy, task_for
from companion.engine.forgetting import forgetting_change, forgetting_sentence
from companion.engine.layered import (UpperStack, discriminative_groups, freeze_lower, gradual_unfreezing,
                                      parameter_shares, trainable_parts)
from companion.lessons.n07_layered import optimizer_state_bytes

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for shuffling, dropout and the new head
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "minilm"  # encoder (BERT-style): embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
compare_k: int = 4  # range: [0, inf); frozen layers of the hand-written freezing and cache checks
decay: float = 2.6  # range: (0, inf); discriminative learning rates: each lower layer's rate is the upper one's divided by this
report_csv: str = "../sweeps/results/strategies-cpu.csv"  # the strategy sweep's runs (make sweep)
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the strategy sweep's validation-only rate search (make rates)

# %%
cc.check_values("07", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
protocol = cc.protocol(PROFILE, precision=precision)
cfg = cc.settings(PROFILE, {"smoke": {"check_size": 16}, "cpu": {"check_size": 48}, "gpu": {"check_size": 256}})
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
tokenizer = cc.load_tokenizer(model_name)
num_labels = len(dataset["train"].features["label"].names)
sweep_runs, why_not = sweep_for(report_csv, data)  # runs on this data under today's protocol of their profile
if sweep_runs is None:
    print(f"{why_not}: the comparisons of sections 4 and 5 are skipped. Run them with `make rates sweep` (the "
          f"course's data) or `make decide DATA=…` (yours) and pass the report here (-p report_csv …)")
print(protocol.describe())

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
batch = tokenizer(list(few["text"]), truncation=True, max_length=protocol.max_length, padding=True, return_tensors="pt")
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
tiny = task_for(dataset, model_name, cc.protocol(PROFILE, train_size=cfg["check_size"], eval_size=32), seed, tokenizer)
check_config = protocol.config(2e-4, seed, cfg["check_size"], epochs=2, patience=None, progress=False,
                               mixed_precision="fp32")  # the cache holds float32 features: compare both in float32
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
# ## 4. Freeze the lowest k layers: the comparison under the protocol
#
# k = 0 is full fine-tuning; k = 6 trains only the pooler and the classifier on fixed features, the recipe of the
# course's source text ("freeze the embeddings and the encoder, train the pooler and the classifier"). The
# strategy sweep trained every k under the course's protocol (notebook 06: the same training texts, length, batch
# size, epoch cap and early stopping) over 5 seeds, each k at **its own learning rate**, chosen on the validation
# split on a seed the comparison never scores: fewer trainable layers usually want a higher rate, so one shared
# rate would compare rates, not layers. The grids below were extended until each best rate was inside them.

# %%
ks = ["full", "freeze k=2", "freeze k=4", "freeze k=6"]
if sweep_runs is not None:
    rates = pd.read_csv(rates_csv)
    rate_rows = rates[rates["setting"].isin(ks)].assign(
        cell=lambda f: [f"{lr:.2g} → {s:.3f}" + (" ✓" if c else "") for lr, s, c in
                        zip(f["lr"], f["val_macro_f1"], f["chosen"])])
    print("learning rate → validation macro-F1 at the selection seed (✓ chosen); every best rate interior:",
          bool((rate_rows.loc[rate_rows["chosen"], "position"] == "interior").all()))
    display_rates = rate_rows.groupby("setting")["cell"].apply(" · ".join).to_frame("candidates")
else:
    display_rates = None
with pd.option_context("display.max_colwidth", None):  # every candidate visible, the chosen one marked
    display(display_rates)

# %%
if sweep_runs is not None:
    layered = sweep_runs[sweep_runs["setting"].isin(ks)]
    summary_k = summarise(layered).loc[[k for k in ks if k in set(layered["setting"])]]
    summary_k["k"] = [0 if s == "full" else int(s.split("=")[1]) for s in summary_k.index]
    done = convergence(layered)
    summary_k = summary_k.join(done)
    before = layered["forgetting.general_correct_before"].iloc[0]
    summary_k["general_change"] = [forgetting_change(before, layered.loc[layered["setting"] == s,
                                                                        "forgetting.general_correct"]).mean
                                   for s in summary_k.index]
    show_k = summary_k[["k", "lr", "macro_f1", "macro_f1_low", "macro_f1_high", "trainable", "seconds_per_step",
                        "forgetting.cka", "general_change", "converged_share", "trained_share", "seeds"]]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for name, r in summary_k.iterrows():
        axes[0].errorbar(r.trainable, r.macro_f1, yerr=[[r.macro_f1 - r.macro_f1_low], [r.macro_f1_high - r.macro_f1]],
                         fmt="o", capsize=4, color="tab:blue")
        axes[0].annotate(f"k={int(r.k)}", (r.trainable, r.macro_f1), textcoords="offset points", xytext=(8, -4))
    axes[0].set(xscale="log", xlabel="trainable parameters (log scale)", ylabel="test macro-F1 (mean, 95 % interval)",
                title="Quality vs trainable parameters")
    sns.lineplot(data=layered.assign(k=layered["k"].fillna(0)), x="k", y="seconds_per_step", marker="o",
                 errorbar=("ci", 95), ax=axes[1])
    axes[1].set(xlabel="frozen layers k", ylabel="seconds per training step",
                title="Step time (feature cache on; the sweep's runs, 2 at a time)")
    plt.tight_layout()
    plt.show()
else:
    show_k = None
show_k.round(4) if show_k is not None else None

# %% [markdown]
# What do these runs say? The lines below are computed from them (paired by seed against full fine-tuning), so
# they hold for whatever sweep you pass:

# %%
reading = []
if sweep_runs is not None:
    for name in [k for k in ks if k != "full" and k in summary_k.index]:
        reading.append(compare_pair(name, "full (k=0)", pair(layered, name, "full"), "test macro-F1"))
    partly = layered.assign(k=layered["k"].fillna(0)).query("k < @n_layers")  # all frozen: CKA 1 by construction
    rho = partly[["k", "forgetting.cka"]].corr(method="spearman").iloc[0, 1]
    reading.append(f"rank correlation of k with CKA on general sentences over the runs that train part of the "
                   f"encoder (k < {n_layers}; 1 = representations untouched): {rho:+.2f} "
                   f"({'more freezing, less drift' if rho > 0 else 'no decrease of drift with freezing'})")
    for name in [k for k in ks if k in summary_k.index]:
        reading.append(forgetting_sentence(forgetting_change(before, layered.loc[layered["setting"] == name,
                                                                                "forgetting.general_correct"]), name))
print("\n".join(f"* {line}" for line in reading))

# %% [markdown]
# Reading the table: freezing more layers trains fewer parameters and makes each step cheaper (the cache skips the
# frozen layers; the seconds per step here come from the sweep's runs, which met different machine load, while
# notebook 09 reads time per step from a benchmark that ran every setting in one process: compare those), and it moves general-English representations less by CKA (the general-task probe's changes are
# within noise and need not follow the same order: read that column with its intervals); whether quality pays
# for it is what the paired lines above say, each with its interval. When all layers are frozen the encoder is untouched and CKA is
# exactly 1 (by construction, not a finding); below that, CKA measures how far tuning moved the general-text
# representations (notebook 06).
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
# The strategy sweep runs the three variants under the same protocol as section 4, each at **its own** rate chosen
# on validation (the rate of the head; each part below gets `decay` times less), so they compare tricks, not
# learning rates. Gradual unfreezing thaws one part per epoch (the schedule printed above), so the bottom of the
# model trains only in the last epochs the cap allows, and with early stopping it may end before it gets there.
# The `trainable` column is the mean over seeds of what was trainable when a run ended; the line below counts the
# runs that thawed the whole model. A run that stopped earlier trained only its top layers, like plain freezing,
# so read a difference to full fine-tuning with that in mind. The time per step is left out here: the sweep's runs
# met different machine load (notebook 09 compares times from one process). A sweep of your own data that left a
# variant out names it below.

# %%
tricks = ["full", "freeze k=4", "discriminative", "gradual", "ulmfit"]
trick_reading = []
if sweep_runs is not None:
    variants = sweep_runs[sweep_runs["setting"].isin(tricks)]
    comparison = summarise(variants).loc[[s for s in tricks if s in set(variants["setting"])]].join(
        convergence(variants))
    missing = [s for s in tricks if s not in comparison.index]
    if missing:
        print("not in this sweep yet:", ", ".join(missing), "(make sweep GRID=sweeps/strategies.yaml runs them)")
    for name in [s for s in ("gradual", "ulmfit") if s in comparison.index]:
        runs_of = variants[variants["setting"] == name]
        thawed = int((runs_of["trainable"] == runs_of["total"]).sum())
        print(f"* {name}: {thawed} of {len(runs_of)} runs thawed the whole model before they ended")
    for name in [s for s in ("discriminative", "gradual", "ulmfit") if s in comparison.index]:
        for reference in ("full", "freeze k=4"):
            trick_reading.append(compare_pair(name, reference, pair(variants, name, reference), "test macro-F1"))
    print("\n".join(f"* {line}" for line in trick_reading))
    fig, ax = plt.subplots(figsize=(8, 3.5))
    sns.barplot(data=variants, y="setting", x="macro_f1", order=list(comparison.index), ax=ax, color="seagreen",
                errorbar=("ci", 95))
    ax.set(xlabel="test macro-F1 (mean, 95 % interval over seeds)", ylabel="",
           title="Plain freezing vs ULMFiT's tricks (one protocol, each at its own rate)")
    plt.tight_layout()
    plt.show()
    show_tricks = comparison[["lr", "macro_f1", "macro_f1_low", "macro_f1_high", "trainable", "forgetting.cka",
                              "converged_share", "seeds"]]
else:
    show_tricks = None
show_tricks.round(4) if show_tricks is not None else None

# %% [markdown]
# **In the paper** (ULMFiT, Table 7, validation error % on IMDb / TREC-6 / AG News): full fine-tuning
# 6.87 / 6.86 / 5.81; last layer only 6.49 / 16.09 / 8.38; gradual unfreezing + discriminative rates + slanted
# triangular schedule 5.00 / 5.69 / 5.38. Their model was a 3-layer LSTM trained for many epochs; here a small
# Transformer trains for a few epochs, and gradual unfreezing spends its first epochs on the top only. Read the
# paired lines above for what the tricks did under this budget.
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
# **5. Write the mechanism.** Complete `freeze_lowest(model, k)`: switch off the gradients of the embeddings and of
# the lowest k encoder layers (layers 0 … k−1) of a BERT-style classifier, leave everything above (the upper layers,
# the pooler, the classifier) trainable, and return the model, as section 2 did for one k. The check builds fresh
# tiny random classifiers (a BERT with a pooler and a RoBERTa, which names its encoder `roberta`), calls your function
# with k drawn at random and with k = every layer, and compares the trainable parameters with the package's
# `freeze_lower`.

# %%
from companion.checks.n07 import check_freeze_lowest_function


def freeze_lowest(model: nn.Module, k: int) -> nn.Module:
    """Freeze the embeddings and encoder layers 0 … k-1 of a BERT-style classifier; return the model."""
    # 1. the encoder inside the classifier: model.base_model (model.bert for BERT, model.roberta for RoBERTa)
    # 2. its embeddings: requires_grad_(False) switches off every parameter of a module
    # 3. the first k modules of its encoder.layer list likewise; the layers above, pooler and head stay as they are
    return None  # replace with: return model


check_freeze_lowest_function(freeze_lowest)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: reach the encoder through base_model, switch off the embeddings and the first k layers, nothing else
def freeze_lowest(model: nn.Module, k: int) -> nn.Module:
    """Freeze the embeddings and encoder layers 0 … k-1 of a BERT-style classifier; return the model."""
    encoder = model.base_model
    encoder.embeddings.requires_grad_(False)
    for layer in encoder.encoder.layer[:k]:
        layer.requires_grad_(False)
    return model


check_freeze_lowest_function(freeze_lowest)

# %% [markdown]
# **6 (open).** Run `python -m companion run sweeps/strategy_run.ipynb -p strategy freeze -p k 3` for a k the sweep
# did not try, and place it in the table above.
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
if sweep_runs is not None:
    print("\n".join(f"* {line}" for line in reading + trick_reading))
results = {
    "notebook": "07_layered_finetuning", "profile": PROFILE, "seed": seed, "device": device.type,
    "model_name": model_name, "data": data, "protocol": protocol.record(), "report_csv": Path(report_csv).name,
    "freeze_check": {"k": compare_k, "trainable": trainable, "by_hand": by_hand, "equal": bool(by_hand == trainable),
                     "adam_state_bytes": measured_state, "trained_tensors": trained_tensors},
    "by_hand_checks": {"cache_split": bool((split - whole).abs().max().item() < 1e-5),
                       "upper_stack": bool((upper - whole).abs().max().item() < 1e-5),
                       "discriminative_groups": bool(same), "gradual_unfreezing": bool(agree)},
    "cache_check": {"max_loss_diff": loss_diff, "equal": bool(loss_diff < 1e-4),
                    "speedup_per_epoch": plain_run["seconds_per_epoch"] / cached_run["seconds_per_epoch"]},
    "layers": None if sweep_runs is None else {
        name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for name, row in show_k.iterrows()},
    "tricks": None if sweep_runs is None else {
        name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for name, row in show_tricks.iterrows()},
    "cka_k_spearman": None if sweep_runs is None else float(rho), "sentences": reading + trick_reading,
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("07_layered_finetuning", results)
pd.Series({"freezing by hand = package": bool(by_hand == trainable), "cached = plain training": bool(loss_diff < 1e-4),
           "seconds": results["seconds"]}, name="value").to_frame()
