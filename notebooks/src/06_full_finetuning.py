# %% [markdown]
# # 06 · Full fine-tuning
#
# **Full fine-tuning** updates *every* weight of a pretrained model on the task's labelled data. It is the
# reference point of the next notebooks: usually the best quality, and the highest cost.
# We fine-tune the MiniLM encoder (22.7 M parameters) to sort medical abstracts into 5 conditions.
#
# **In this notebook you will**
# 1. go through the five steps (data → load → train → validate → test) with one reusable training loop;
# 2. read learning curves and compare with two baselines (majority class, TF-IDF + logistic regression);
# 3. watch a model **overfit** a small training set (100 examples): validation loss turns up while training loss falls;
# 4. measure the **cost** (time, samples/s, peak memory, 100 % trainable parameters) and the **forgetting**
#    (how far the encoder's view of general English moved).
#
# **Time**, measured on 2 idle CPU cores (kernel start and model loading included): `smoke` 15 s ·
# `cpu` 4.5 min; slower on a busy machine. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).
#
# **Making it fit on a laptop.** A naive run (all 1,859 abstracts, 128 tokens, 3 epochs) takes ~13 minutes on
# 2 cores. The `cpu` profile keeps quality with less work: the *beginning* of an abstract names the condition,
# so 48–64 tokens suffice; batches group similar lengths (little padding); a higher learning rate with warm-up
# converges in 2 epochs; and the fused AdamW kernel makes each optimiser step ~10× cheaper on CPU.

# %%
import time
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

import companion as cc
from companion.data import load_text_classification
from companion.embeddings import sentence_embeddings
from companion.finetune import run_strategy, subset
from companion.forgetting import general_sentences, linear_cka, check_linear_cka
from companion.metrics import confusion_table, majority_baseline, tfidf_baseline
from companion.training import (check_lr_at_step, check_total_steps, linear_warmup_decay, padding_collator,
                                tokenize_dataset)


# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # random seed for shuffling, dropout and the new head
model_name: str = "minilm"  # encoder: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
strategy: str = "full"  # one of: full, discriminative, lora
epochs: Optional[int] = None  # passes over the training data; None means the profile default
lr: Optional[float] = None  # peak learning rate; None means the profile default
max_length: Optional[int] = None  # tokens kept from each text; None means the profile default
train_size: Optional[int] = None  # training examples used; None means the profile default
small_size: int = 100  # training examples of the overfitting experiment
forgetting_sentences: Optional[int] = None  # WikiText-2 sentences probing forgetting; None means the profile default

# %%
PROFILE, device, start = cc.start(profile, seed)  # resolve the profile, seed, pick the device, start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"epochs": 1, "lr": 2e-4, "max_length": 24, "train_size": 48, "eval_size": 32, "small_epochs": 2,
              "small_lr": 2e-4, "forgetting_sentences": 16, "batch_size": 16},
    "cpu": {"epochs": 2, "lr": 1.5e-4, "max_length": 64, "train_size": None, "eval_size": None, "small_epochs": 12,
            "small_lr": 3e-4, "forgetting_sentences": 200, "batch_size": 32},
    "gpu": {"epochs": 4, "lr": 5e-5, "max_length": 256, "train_size": None, "eval_size": None, "small_epochs": 15,
            "small_lr": 1e-4, "forgetting_sentences": 1000, "batch_size": 32},
}, epochs=epochs, lr=lr, max_length=max_length, train_size=train_size, forgetting_sentences=forgetting_sentences)
print("profile:", PROFILE, "| device:", device.type)
pd.Series(cfg, name="setting").to_frame()

# %% [markdown]
# ## Step 1 · Data
#
# The medical abstracts, split stratified into train / validation / test. The **test split is held out**: we
# touch it once, at the very end. Two baselines set the bar: always predicting the most frequent class, and a
# bag-of-words model (TF-IDF + logistic regression, scikit-learn defaults) trained on the *whole* texts.

# %%
dataset = load_text_classification(data, text_column, label_column, seed=seed if data != "medical_abstracts" else 42)
if cfg["eval_size"]:
    dataset = type(dataset)({s: (p if s == "train" else p.select(range(min(cfg["eval_size"], len(p)))))
                             for s, p in dataset.items()})
label_names = dataset["train"].features["label"].names
train_part = subset(dataset, cfg["train_size"], seed)["train"]
baselines = {
    "majority class": majority_baseline(train_part["label"], dataset["test"]["label"]),
    "TF-IDF + LR": tfidf_baseline(train_part["text"], train_part["label"], dataset["test"]["text"],
                                  dataset["test"]["label"], seed),
    "TF-IDF + LR (class-balanced)": tfidf_baseline(train_part["text"], train_part["label"], dataset["test"]["text"],
                                                   dataset["test"]["label"], seed, balanced=True),
}
print({s: len(p) for s, p in dataset.items()}, "| training on", len(train_part))
pd.DataFrame(baselines).T[["accuracy", "macro_f1"]].round(3)

# %% [markdown]
# ## Step 2 · Load the model and prepare the inputs
#
# `load_model(…, "classifier", num_labels=5)` puts a new, randomly initialised linear **head** on the pretrained
# encoder: it maps the pooled `[CLS]` vector to 5 logits. The loss is the cross-entropy of those logits, and we
# check that the model's own loss is exactly −log softmax(logits)[label] averaged over the batch.
#
# We tokenise **once** and pad **per batch** (dynamic padding, `DataCollatorWithPadding`): a batch is only as
# long as its longest text.

# %%
tokenizer = cc.load_tokenizer(model_name)
model = cc.load_model(model_name, "classifier", num_labels=len(label_names))
collate = padding_collator(tokenizer)
tokens = tokenize_dataset(dataset["validation"].select(range(8)), tokenizer, max_length=cfg["max_length"])
batch = collate([tokens[i] for i in range(8)])
with torch.no_grad():
    out = model(**batch)
by_hand = -out.logits.log_softmax(-1)[torch.arange(8), batch["labels"]].mean()
print(f"model loss {out.loss:.6f} · by hand {by_hand:.6f} · |diff| {abs(out.loss - by_hand):.1e}")
print(f"untrained head: loss ≈ ln(5) = {torch.log(torch.tensor(5.0)):.3f}, the loss of a uniform guess")
pd.Series(cc.count_parameters(model)).to_frame("value")

# %% [markdown]
# **The learning-rate schedule.** The loop warms up linearly from 0 to the peak rate over the first 10 % of the
# steps (large early updates through a random head would damage the pretrained weights), then decays linearly
# to 0. Our schedule is the same as transformers' `get_linear_schedule_with_warmup`:

# %%
# NBVAL_CHECK_OUTPUT
from transformers import get_linear_schedule_with_warmup

def lr_trace(make, steps=40):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    sched, rates = make(opt), []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return torch.tensor(rates)

ours = lr_trace(lambda o: linear_warmup_decay(o, 4, 40))
reference = lr_trace(lambda o: get_linear_schedule_with_warmup(o, 4, 40))
print("max |ours − transformers| =", f"{(ours - reference).abs().max().item():.1e}")

# %% [markdown]
# ## Step 3 · Train
#
# `run_strategy` is the course's one entry point: it loads a fresh classifier, applies the strategy (here
# `full`: nothing frozen), and trains with `companion.training.train`, a loop on 🤗 `accelerate` (the same code
# runs on CPU, one GPU with bf16 autocast, or several GPUs under `accelerate launch`): AdamW, warm-up + linear
# decay, gradient clipping at norm 1, evaluation on validation after every epoch, early stopping, and the
# best epoch's weights restored. It also measures forgetting (below) and every cost.

# %%
probe = general_sentences(cfg["forgetting_sentences"], seed=seed)
original = cc.load_model(model_name, "encoder")
reference = sentence_embeddings(original, tokenizer, probe, max_length=cfg["max_length"])
run = run_strategy(strategy, dataset, model_name, seed, epochs=cfg["epochs"], lr=cfg["lr"],
                   max_length=cfg["max_length"], batch_size=cfg["batch_size"], train_size=cfg["train_size"],
                   patience=None, forgetting_texts=probe, reference=reference, tokenizer=tokenizer, return_model=True)
history = pd.DataFrame(run["history"])
print(f"{run['steps']} steps in {run['train_seconds']:.0f} s · {run['samples_per_s']:.1f} samples/s · "
      f"peak memory {run['peak_memory_mb']:.0f} MiB")

# %% [markdown]
# ## Step 4 · Validate: learning curves
#
# The training loss is recorded every few steps, the validation loss and macro-F1 after every epoch.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
train_rows, val_rows = history[history.split == "train"], history[history.split == "validation"]
sns.lineplot(data=train_rows, x="epoch", y="loss", ax=axes[0], label="training (running mean)")
sns.lineplot(data=val_rows, x="epoch", y="loss", ax=axes[0], marker="o", label="validation")
sns.lineplot(data=val_rows, x="epoch", y="macro_f1", ax=axes[1], marker="o", label="validation macro-F1")
axes[1].axhline(baselines["TF-IDF + LR"]["macro_f1"], ls="--", c="gray", label="TF-IDF + LR (test)")
axes[0].set(title="Loss", ylabel="cross-entropy")
axes[1].set(title="Quality", ylabel="macro-F1")
axes[1].legend()
plt.tight_layout()
plt.show()
val_rows[["epoch", "loss", "accuracy", "macro_f1", "train_loss"]].round(4)

# %% [markdown]
# ## Step 5 · Test (once)
#
# The held-out test split, compared with the baselines. Macro-F1 weighs all five classes equally, so always
# guessing the largest class scores badly even though its accuracy is ~33 %.

# %%
test_table = pd.DataFrame({**{k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]} for k, v in baselines.items()},
                           f"MiniLM {strategy} fine-tuning": {"accuracy": run["accuracy"], "macro_f1": run["macro_f1"]}}).T
beats_tfidf = run["macro_f1"] > baselines["TF-IDF + LR"]["macro_f1"]
print("fine-tuned model beats TF-IDF + LR on macro-F1:", beats_tfidf)
confusion = confusion_table(run["test_labels"], run["test_preds"], label_names)
fig, ax = plt.subplots(figsize=(7, 4))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax)
ax.set(title="Test confusion matrix")
plt.tight_layout()
plt.show()
test_table.round(3)

# %% [markdown]
# Most errors involve *general pathological conditions*: abstracts about a condition that also fits an organ
# system. The labels themselves overlap, which caps every model on this data.
#
# ## Overfitting on small data
#
# With only a few labelled examples, 22.7 M free parameters can memorise the training set. We train on
# `small_size` examples for many epochs without early stopping (at a higher rate, `small_lr`, so that it happens
# within the budget): the training loss keeps falling, while the validation loss reaches a minimum and then
# **rises** — the model gets more confident on its mistakes.

# %%
small = run_strategy(strategy, dataset, model_name, seed, epochs=cfg["small_epochs"], lr=cfg["small_lr"],
                     max_length=cfg["max_length"], batch_size=16, train_size=min(small_size, cfg["train_size"] or len(dataset["train"])),
                     patience=None, warmup_ratio=0.0, tokenizer=tokenizer)
small_val = pd.DataFrame(small["history"]).query("split == 'validation'")
fig, ax = plt.subplots(figsize=(7, 3.5))
sns.lineplot(data=small_val, x="epoch", y="train_loss", marker="o", ax=ax, label=f"training ({small['train_size']} examples)")
sns.lineplot(data=small_val, x="epoch", y="loss", marker="o", ax=ax, label="validation")
ax.set(ylabel="cross-entropy", title="Small training set: the gap opens")
plt.tight_layout()
plt.show()
best_val_epoch = int(small_val.loc[small_val["loss"].idxmin(), "epoch"])
last_epoch = int(small_val["epoch"].iloc[-1])
if best_val_epoch < last_epoch:
    print(f"validation loss is lowest after epoch {best_val_epoch} ({small_val['loss'].min():.3f}), then rises to "
          f"{small_val['loss'].iloc[-1]:.3f} by epoch {last_epoch}")
else:
    print(f"validation loss still falls at the last epoch ({last_epoch}): raise small_epochs to watch it turn")
print(f"training loss ends at {small_val['train_loss'].iloc[-1]:.3f}")
print(f"test macro-F1 with {small['train_size']} examples: {small['macro_f1']:.3f} (best epoch kept) vs "
      f"{run['macro_f1']:.3f} with {run['train_size']}")

# %% [markdown]
# Early stopping on validation (the loop's `patience`) and restoring the best epoch are the standard
# defences; more data is the real cure.
#
# ## The cost, and what general English lost
#
# **Cost.** Every parameter is trainable, so the optimiser keeps two extra numbers (Adam's moments) per weight,
# and every step back-propagates through the whole network.
#
# **Forgetting.** Fine-tuning for one task moves the encoder away from what it learned in pretraining. We embed
# `forgetting_sentences` WikiText-2 sentences with the original and with the tuned encoder (mean pooling) and
# compare: **linear CKA** (1 = the same geometry up to rotation and scale) and the **mean cosine** between each
# sentence's two embeddings (1 = unchanged). The formula, checked against the library function:
#
# $\mathrm{CKA}(X, Y) = \dfrac{\lVert Y^\top X\rVert_F^2}{\lVert X^\top X\rVert_F\,\lVert Y^\top Y\rVert_F}$ on
# column-centred $X, Y$.

# %%
tuned = sentence_embeddings(run["model"], tokenizer, probe, max_length=cfg["max_length"])
x, y = reference.double() - reference.double().mean(0), tuned.double() - tuned.double().mean(0)
cka_by_hand = (y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm())
print(f"CKA by hand {cka_by_hand:.6f} · companion {linear_cka(reference, tuned):.6f} · "
      f"|diff| {abs(cka_by_hand - linear_cka(reference, tuned)):.1e}")
cost = pd.Series({"trainable parameters": f"{run['trainable']:,} ({run['trainable_pct']:.0f} %)",
                  "training time (s)": round(run["train_seconds"], 1), "samples / s": round(run["samples_per_s"], 1),
                  "peak memory (MiB)": round(run["peak_memory_mb"]), "CKA vs original": round(run["forgetting"]["cka"], 4),
                  "mean cosine vs original": round(run["forgetting"]["cosine"], 4)}, name=f"{strategy} fine-tuning")
cost.to_frame()

# %% [markdown]
# A CKA below 1 and a mean cosine well below 1 mean the sentence space of general English has been reshaped for
# the medical task: the price of full fine-tuning that notebooks 07 and 08 try to avoid.
#
# ## Exercises
#
# **1.** How many optimiser steps does a run with 1,859 training examples, batch size 32 and 3 epochs take?

# %%
total_steps = None  # your answer: an integer
check_total_steps(total_steps, 1859, 32, 3)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
import math

total_steps = math.ceil(1859 / 32) * 3
check_total_steps(total_steps, 1859, 32, 3)

# %% [markdown]
# **2.** With a peak rate of 1e-4, 10 warm-up steps and 100 steps in all, what is the learning rate at step 55?

# %%
lr_55 = None  # your answer: a float
check_lr_at_step(lr_55, 55, 1e-4, 10, 100)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
lr_55 = 1e-4 * (100 - 55) / (100 - 10)
check_lr_at_step(lr_55, 55, 1e-4, 10, 100)

# %% [markdown]
# **3.** Compute the linear CKA between the original embeddings `reference` and the *first half of the columns
# zeroed* version of them, by hand (centre, then the formula above).

# %%
half = reference.clone()
half[:, : half.shape[1] // 2] = 0
cka_half = None  # your answer: a float
check_linear_cka(cka_half, reference, half)

# %% tags=["solution"] jupyter={"source_hidden": true}
xc, yc = reference.double() - reference.double().mean(0), half.double() - half.double().mean(0)
cka_half = float((yc.T @ xc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))
check_linear_cka(cka_half, reference, half)

# %% [markdown]
# **4 (open).** Re-run with `max_length=128` (or `strategy="lora"`) and compare quality, time and forgetting.
#
# ## Summary
#
# * Five steps: data (with baselines), load (a new head on a pretrained encoder), train (one loop), validate
#   (learning curves, early stopping), test (once, on held-out data).
# * Full fine-tuning beats the bag-of-words baseline using only the beginning of each abstract, at the price of
#   training 100 % of the parameters: the slowest steps and the most memory of all strategies.
# * On 100 examples it overfits within a few epochs; the validation curve tells you when to stop.
# * The encoder's representation of general English moved (CKA and cosine below 1): forgetting.

# %%
results = {
    "notebook": "06_full_finetuning", "profile": PROFILE, "seed": seed, "strategy": strategy, "device": device.type,
    "model_name": model_name, "settings": cfg,
    "test": {"macro_f1": run["macro_f1"], "accuracy": run["accuracy"]},
    "validation": {"macro_f1": run["val_macro_f1"], "accuracy": run["val_accuracy"]},
    "baselines": {k: {"macro_f1": v["macro_f1"], "accuracy": v["accuracy"]} for k, v in baselines.items()},
    "beats_tfidf": bool(beats_tfidf),
    "params": {"trainable": run["trainable"], "total": run["total"], "trainable_pct": run["trainable_pct"]},
    "train_seconds": run["train_seconds"], "samples_per_s": run["samples_per_s"], "peak_memory_mb": run["peak_memory_mb"],
    "forgetting": run["forgetting"],
    "overfitting": {"train_size": small["train_size"], "best_val_loss_epoch": best_val_epoch,
                    "final_val_loss": float(small_val["loss"].iloc[-1]), "final_train_loss": float(small_val["train_loss"].iloc[-1]),
                    "test_macro_f1": small["macro_f1"]},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("06_full_finetuning", results)
pd.Series({"test macro-F1": run["macro_f1"], "test accuracy": run["accuracy"], "trainable": run["trainable"],
           "seconds": results["seconds"], "CKA": run["forgetting"]["cka"]}, name="value").to_frame()
