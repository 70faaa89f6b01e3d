# %% [markdown]
# # 06 · Full fine-tuning
#
# **Full fine-tuning** updates *every* weight of a pretrained model on the task's labelled data. It is the
# reference point of the next notebooks. We fine-tune the MiniLM encoder to sort medical abstracts by condition.
#
# **In this notebook you will**
# 1. write the **fine-tuning loop** yourself (about 30 lines on 🤗 `accelerate`: batches, forward, cross-entropy,
#    backward, gradient clipping, optimiser and schedule step, validation each epoch, keep the best epoch), train
#    the real model with it, and check that the companion's `train` is the same loop;
# 2. read learning curves and compare with two baselines (majority class, TF-IDF + logistic regression);
# 3. predict, then watch, a model **overfit** a small training set: validation loss turns up while training loss falls;
# 4. measure the **cost** (time, samples/s, peak memory, trainable parameters) and the **forgetting**
#    (how far the encoder's view of general English moved).
#
# **Prerequisites**: notebooks 02 (cross-entropy of logits, its gradient) and 03 (the encoder that produces the
# `[CLS]` vector); basic PyTorch (a module, `loss.backward()`, an optimiser step).
#
# **Time**: about 60 minutes of study for a person. Machine time, measured on 2 idle CPU cores (kernel start and
# model loading included): `smoke` 19 s · `cpu` 2.6 min (training in bf16 autocast: this CPU has AVX512-BF16); slower on a busy machine. `gpu`: not timed yet
# (`bash bench/gpu.sh` measures it).
#
# **Making it fit on a laptop.** The `cpu` profile does less work per step: texts are cut to `max_length` tokens
# (the opening of a text usually carries its topic); batches group similar lengths (little padding); the budget is
# a number of steps with early stopping on validation, so a run ends when validation stops improving; and the
# fused AdamW kernel makes each optimiser step cheap.

# %%
import copy
import math
import time
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

import companion as cc
from companion.engine.strategies import read_rate
from companion.core.data import load_text_classification
from companion.core.embeddings import sentence_embeddings
from companion.engine.finetune import make_task, run_strategy, subset
from companion.checks.n06 import check_linear_cka
from companion.engine.forgetting import general_sentences, linear_cka, representation_drift
from companion.engine.forgetting import article_probe, probe_sizes
from companion.engine.metrics import classification_metrics, confusion_table, majority_baseline, tfidf_baseline
from companion.engine.training import (MemoryMeter, TrainConfig, evaluate, fused_ok, linear_warmup_decay,
                                       make_accelerator, param_groups, predict, train)
from companion.engine.batches import eval_loader, make_loader, padding_collator, tokenize_dataset
from companion.checks.n06 import check_lr_at_step, check_overfit_epoch, check_total_steps


# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for shuffling, dropout and the new head
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "minilm"  # encoder: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
strategy: str = "full"  # one of: full, discriminative, lora
epochs: Optional[int] = None  # range: [1, inf); most passes over the training data; None means enough for the profile's step budget
lr: Optional[float] = None  # range: (0, inf); peak learning rate; None means the rate chosen on validation (rates_csv), else the profile default
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the strategy sweep's validation-only rate search (make rates)
max_length: Optional[int] = None  # range: [2, inf); tokens kept from each text; None means the profile default
train_size: Optional[int] = None  # range: [1, inf); training examples used; None means the profile default
small_size: int = 100  # range: [1, inf); training examples of the overfitting experiment
forgetting_sentences: Optional[int] = None  # range: [1, inf); WikiText-2 sentences probing forgetting; None means the profile default

# %%
cc.check_values("06", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"epochs": None, "max_steps": 3, "patience": None, "lr": 2e-4, "max_length": 24, "train_size": 48,
              "eval_size": 32, "small_epochs": 2, "small_lr": 2e-4, "forgetting_sentences": 16, "batch_size": 16},
    "cpu": {"epochs": None, "max_steps": 300, "patience": 2, "lr": 2e-4, "max_length": 64, "train_size": None,
            "eval_size": None, "small_epochs": 12, "small_lr": 3e-4, "forgetting_sentences": 200, "batch_size": 32},
    "gpu": {"epochs": None, "max_steps": 2000, "patience": 2, "lr": 5e-5, "max_length": 256, "train_size": None,
            "eval_size": None, "small_epochs": 15, "small_lr": 1e-4, "forgetting_sentences": 1000, "batch_size": 32},
}, epochs=epochs, lr=lr, max_length=max_length, train_size=train_size, forgetting_sentences=forgetting_sentences)
if lr is None and PROFILE == "cpu":  # the rate the strategy sweep's search chose on validation for full fine-tuning
    cfg["lr"], rate_source = read_rate(Path(rates_csv), "full", PROFILE)
else:
    rate_source = "given" if lr is not None else "profile default"
print("profile:", PROFILE, "| device:", device.type)
pd.Series(cfg, name="setting").to_frame()

# %% [markdown]
# ## Step 1 · Data
#
# The medical abstracts, split stratified into train / validation / test. The **test split is held out**: we
# touch it once, at the very end. Two baselines set the bar: always predicting the most frequent class, and a
# bag-of-words model (TF-IDF + logistic regression, scikit-learn defaults) trained on the *whole* texts.

# %%
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
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
# `load_model(…, "classifier", num_labels=…)` puts a new, randomly initialised linear **head** on the pretrained
# encoder: it maps the pooled `[CLS]` vector to one logit per class. The loss is the cross-entropy of those logits:
# −log softmax(logits)[label] averaged over the batch, which is `F.cross_entropy(logits, labels)`. Our loop will
# compute it explicitly from the logits; here we check once that it is the model's own `.loss`.
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
explicit = F.cross_entropy(out.logits, batch["labels"])
print(f"model loss {out.loss:.6f} · −log softmax by hand {by_hand:.6f} · F.cross_entropy {explicit:.6f}")
print(f"untrained head: loss ≈ ln({len(label_names)}) = {math.log(len(label_names)):.3f}, the loss of a uniform "
      f"guess over the {len(label_names)} classes")
pd.Series(cc.count_parameters(model)).astype(int).to_frame("value")

# %%
# NBVAL_CHECK_OUTPUT
print("F.cross_entropy(logits, labels) = model's .loss (within 1e-6):", abs(float(explicit - out.loss)) < 1e-6)
print("= −log softmax(logits)[label], averaged (within 1e-6):", abs(float(explicit - by_hand)) < 1e-6)

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
# ## Step 3 · Train: the loop, written out
#
# Here is the whole fine-tuning loop. 🤗 `accelerate` only places the model and the batches on the device (and, on
# a GPU, runs the forward pass in bf16): the same code runs on a laptop's CPU, one GPU or several GPUs under
# `accelerate launch`. Each step: take a batch (padded to its own longest text), compute the logits, the
# cross-entropy, its gradient for every weight, clip the gradient's global norm to 1 (one bad batch cannot throw
# the weights far), take an AdamW step, move the learning rate along its schedule. After each epoch: validate,
# and keep a copy of the weights if this epoch is the best so far.

# %%
def fine_tune(model, train_data, val_data, epochs: int, lr: float, batch_size: int, seed: int = 0,
              warmup_ratio: float = 0.1, max_grad_norm: float = 1.0, precision: str = "auto",
              patience: int | None = None) -> dict:
    """Fine-tune `model` in place (stop after `patience` epochs without a better validation macro-F1); return the
    per-step losses and one validation row per epoch."""
    torch.manual_seed(seed)  # dropout masks; the batch order has its own seeded generator
    accelerator = make_accelerator(precision)  # CPU, or a GPU with bf16 autocast
    train_loader = make_loader(train_data, collate, batch_size, shuffle=True, seed=seed)  # length-grouped batches
    val_loader = make_loader(val_data, collate, 64, shuffle=False)
    batches = train_loader.batch_sampler
    groups = param_groups(model, lr, weight_decay=0.01)  # no weight decay on biases and LayerNorm weights
    optimizer = torch.optim.AdamW(groups, lr=lr, fused=fused_ok(groups, accelerator.device))
    total = len(train_loader) * epochs
    scheduler = linear_warmup_decay(optimizer, int(warmup_ratio * total), total)
    model, optimizer, train_loader, scheduler = accelerator.prepare(model, optimizer, train_loader, scheduler)
    val_loader = accelerator.prepare(val_loader)
    memory, losses, history, best, seconds = MemoryMeter(accelerator.device), [], [], None, 0.0
    for epoch in range(epochs):
        batches.set_epoch(epoch)  # a new (seeded) order every epoch
        model.train()  # dropout on
        t0 = time.perf_counter()
        for batch in train_loader:
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = F.cross_entropy(logits, batch["labels"])  # mean of −log softmax(logits)[label]
            accelerator.backward(loss)  # the gradient of every weight
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()  # AdamW update
            scheduler.step()  # next learning rate: warm-up, then linear decay
            optimizer.zero_grad()
            losses.append(loss.item())
        seconds += time.perf_counter() - t0
        memory.sample()
        scores = evaluate(model, val_loader, accelerator)  # loss, accuracy, macro-F1 in eval mode (no dropout)
        history.append({"epoch": epoch + 1, **scores, "train_loss": sum(losses[-len(train_loader):]) / len(train_loader)})
        if best is None or scores["macro_f1"] > best["macro_f1"]:  # keep the best epoch's weights
            best, best_epoch = scores, epoch
            best_state = {k: v.detach().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        if patience is not None and epoch - best_epoch >= patience:  # early stopping: no progress for a while
            break
    accelerator.unwrap_model(model).load_state_dict(best_state)
    return {"losses": losses, "history": pd.DataFrame(history), "steps_per_epoch": len(train_loader),
            "train_seconds": seconds, "peak_memory_mb": memory.peak_mb()}

# %% [markdown]
# Now train the real classifier with it. The budget is a number of **steps**, not of epochs, so that it adapts to
# the data's size: at most `max_steps` steps (rounded up to whole epochs), stopped early once validation macro-F1
# has not improved for `patience` epochs; the best epoch's weights are kept. The learning rate is the one the
# strategy sweep's search chose on validation for full fine-tuning (notebook 09, section 1).

# %%
splits = tokenize_dataset(subset(dataset, cfg["train_size"], seed), tokenizer, max_length=cfg["max_length"])
steps_per_epoch = math.ceil(len(splits["train"]) / cfg["batch_size"])
max_epochs = cfg["epochs"] or max(1, math.ceil(cfg["max_steps"] / steps_per_epoch))
print(f"learning rate {cfg['lr']:.2g} ({rate_source}) · at most {max_epochs} epochs of {steps_per_epoch} steps"
      + (f", stopping after {cfg['patience']} epochs without progress" if cfg["patience"] else ""))
run = fine_tune(model, splits["train"], splits["validation"], max_epochs, cfg["lr"], cfg["batch_size"], seed,
                patience=cfg["patience"])
history = run["history"]
n_steps, samples_per_s = len(run["losses"]), len(splits["train"]) * len(history) / run["train_seconds"]
print(f"{n_steps} steps in {run['train_seconds']:.0f} s (validation not counted) · {samples_per_s:.1f} samples/s · "
      f"peak memory {run['peak_memory_mb']:.0f} MiB")

# %% [markdown]
# **The companion's loop is this loop.** Notebooks 07–09 call `companion.engine.training.train`, which adds options
# (parameter groups, hooks, early stopping, a step budget, a history table) around the same steps in the same
# order. A tiny run from the same starting weights with the same seed (dropout on in both) must give the same loss
# at every step:

# %%
tiny_train = tokenize_dataset(train_part.select(range(min(40, len(train_part)))), tokenizer, max_length=32)
tiny_val = tokenize_dataset(dataset["validation"].select(range(min(16, len(dataset["validation"])))), tokenizer,
                            max_length=32)
torch.manual_seed(seed)
fresh = cc.load_model(model_name, "classifier", num_labels=len(label_names))
twin = copy.deepcopy(fresh)  # the same starting weights, head included
ours = fine_tune(fresh, tiny_train, tiny_val, epochs=2, lr=cfg["lr"], batch_size=8, seed=seed, precision="fp32")
package = train(twin, tiny_train, tiny_val, collate, TrainConfig(epochs=2, batch_size=8, lr=cfg["lr"], seed=seed,
                patience=None, log_every=1, progress=False, mixed_precision="fp32"))
package_losses = package.history.query("split == 'train'")["loss"].tolist()
difference = max(abs(a - b) for a, b in zip(ours["losses"], package_losses))
print(f"{len(ours['losses'])} steps · notebook loop vs companion.engine.training.train, per-step losses: "
      f"max difference {difference:.1e}")

# %%
# NBVAL_CHECK_OUTPUT
print("same number of steps:", len(ours["losses"]) == len(package_losses))
print("same loss at every step (max difference < 1e-5):", difference < 1e-5)

# %% [markdown]
# ## Step 4 · Validate: learning curves
#
# The loop recorded the training loss of every step, and the validation loss and macro-F1 after every epoch.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
train_rows = pd.DataFrame({"epoch": [(i + 1) / run["steps_per_epoch"] for i in range(n_steps)],
                           "loss": pd.Series(run["losses"]).rolling(5, min_periods=1).mean()})
val_rows = history
sns.lineplot(data=train_rows, x="epoch", y="loss", ax=axes[0], label="training (mean of 5 steps)")
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
# The held-out test split, compared with the baselines. Macro-F1 weighs every class equally, so always guessing
# the largest class scores badly on it whatever its accuracy.

# %%
test_out = predict(model, eval_loader(splits["test"], collate))
test_scores = classification_metrics(test_out["labels"], test_out["preds"])
test_table = pd.DataFrame({**{k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]} for k, v in baselines.items()},
                           "MiniLM full fine-tuning": test_scores}).T[["accuracy", "macro_f1"]]
beats_tfidf = test_scores["macro_f1"] > baselines["TF-IDF + LR"]["macro_f1"]
beats_balanced = test_scores["macro_f1"] > baselines["TF-IDF + LR (class-balanced)"]["macro_f1"]
print("fine-tuned model beats TF-IDF + LR on macro-F1:", beats_tfidf, "· beats the class-balanced TF-IDF + LR:",
      beats_balanced)
confusion = confusion_table(test_out["labels"], test_out["preds"], label_names)
side = 1.5 + 0.9 * len(label_names)  # inches: room for every label
fig, ax = plt.subplots(figsize=(side + 2.5, side))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=ax)
ax.set(title="Test confusion matrix", xlabel="predicted", ylabel="true")
ax.set_xticklabels([t.get_text().replace(" ", "\n") for t in ax.get_xticklabels()], rotation=0, fontsize=8)
ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=8)
plt.tight_layout()
plt.show()
test_table.round(3)

# %%
off_diagonal = confusion.values.copy()
off_diagonal[range(len(label_names)), range(len(label_names))] = 0
true_i, pred_i = divmod(int(off_diagonal.argmax()), len(label_names))
print(f"most frequent confusion: true {label_names[true_i]!r} predicted as {label_names[pred_i]!r} "
      f"({off_diagonal.max()} of {len(test_out['labels'])} test texts)")

# %% [markdown]
# ## Overfitting on small data
#
# With only a few labelled examples, the millions of free parameters can memorise the training set. We train on
# `small_size` examples for `small_epochs` epochs without early stopping (at a higher rate, `small_lr`, so that it
# happens within the budget), with the companion's copy of the loop, and watch the training and the validation
# loss.
#
# **Exercise 1 (predict, then measure).** Before running the experiment: after which epoch will the
# validation loss be lowest? Write your guess below, run the experiment, then check it.

# %%
predicted_best_epoch = None  # your prediction: an integer between 1 and cfg["small_epochs"]

# %%
small_task = make_task(dataset, model_name, cfg["max_length"], seed=seed, tokenizer=tokenizer,
                       train_size=min(small_size, cfg["train_size"] or len(dataset["train"])))
small = run_strategy(strategy, small_task, TrainConfig(epochs=cfg["small_epochs"], lr=cfg["small_lr"], batch_size=16,
                                                       patience=None, warmup_ratio=0.0, seed=seed))
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
      f"{test_scores['macro_f1']:.3f} with {len(splits['train'])}")

# %%
check_overfit_epoch(predicted_best_epoch, small_val["loss"].tolist())

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: a prediction from the set-up, before the run (few examples and a high rate memorise fast)
predicted_best_epoch = max(1, cfg["small_epochs"] // 3)  # the training loss nears 0 within the first third
check_overfit_epoch(predicted_best_epoch, small_val["loss"].tolist())

# %% [markdown]
# Early stopping on validation (the loop's `patience`) and restoring the best epoch are the standard
# defences; more data is the real cure.
#
# ## The cost, and what general English lost
#
# **Cost.** Every parameter is trainable, so the optimiser keeps two extra numbers (Adam's moments) per weight,
# and every step back-propagates through the whole network and computes a gradient for every weight.
#
# **Forgetting.** Fine-tuning for one task moves the encoder away from what it learned in pretraining. We measure
# it two ways. First as **lost ability on a general task**: which of a few WikiText-2 articles a sentence comes
# from, read off the encoder's frozen sentence features by a linear probe (logistic regression fitted on half of
# each article's sentences, scored on the other half), before and after fine-tuning. Second as **drift**: we embed
# `forgetting_sentences` WikiText-2 sentences with the original and with the tuned encoder (mean pooling) and
# compare: **linear CKA** (1 = the same geometry up to rotation and scale) and the **mean cosine** between each
# sentence's two embeddings (1 = unchanged). The CKA formula, checked against the library function:
#
# $\mathrm{CKA}(X, Y) = \dfrac{\lVert Y^\top X\rVert_F^2}{\lVert X^\top X\rVert_F\,\lVert Y^\top Y\rVert_F}$ on
# column-centred $X, Y$.

# %%
probe = general_sentences(cfg["forgetting_sentences"], seed=seed)
original = cc.load_model(model_name, "encoder")
general_task = article_probe(original, tokenizer, **probe_sizes(PROFILE))  # fitted and scored on the original once
general = general_task.compare(model, tokenizer)  # the same probe on the fine-tuned encoder's features
reference = sentence_embeddings(original, tokenizer, probe, max_length=cfg["max_length"])
forgetting = representation_drift(model, tokenizer, probe, reference, max_length=cfg["max_length"])
tuned = sentence_embeddings(model, tokenizer, probe, max_length=cfg["max_length"])
x, y = reference.double() - reference.double().mean(0), tuned.double() - tuned.double().mean(0)
cka_by_hand = (y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm())
print(f"CKA by hand {cka_by_hand:.6f} · companion {linear_cka(reference, tuned):.6f} · "
      f"|diff| {abs(cka_by_hand - linear_cka(reference, tuned)):.1e}")
params = cc.count_parameters(model)
cost = pd.Series({"trainable parameters": f"{int(params['trainable']):,} ({params['trainable_pct']:.0f} %)",
                  "training time (s)": round(run["train_seconds"], 1), "samples / s": round(samples_per_s, 1),
                  "peak memory (MiB)": round(run["peak_memory_mb"]),
                  f"general task ({len(general_task.titles)} articles) accuracy before": round(general["general_acc_before"], 3),
                  "general task accuracy after": round(general["general_acc"], 3),
                  "CKA vs original": round(forgetting["cka"], 4),
                  "mean cosine vs original": round(forgetting["cosine"], 4)}, name="full fine-tuning")
cost.to_frame()

# %%
moved = forgetting["cka"] < 0.99 or forgetting["cosine"] < 0.99
se = general_task.reference["accuracy_se"]  # the probe's standard error: changes within ±2 se are noise
change = general["general_acc_change"]
print(f"general task: accuracy {general['general_acc_before']:.3f} → {general['general_acc']:.3f} "
      f"({change:+.3f}; ±{2 * se:.3f} is noise at {sum(general_task.is_test)} scored sentences): "
      + ("general ability was lost" if change < -2 * se else "general ability rose" if change > 2 * se
         else "no change beyond noise"))
print(f"CKA {forgetting['cka']:.3f} and mean cosine {forgetting['cosine']:.3f} vs the original encoder: "
      + ("the sentence space of general English was reshaped for the task" if moved
         else "general English barely moved at this budget"))

# %% [markdown]
# ## Exercises
#
# **2.** How many optimiser steps does a run with 1,859 training examples, batch size 32 and 3 epochs take?

# %%
total_steps = None  # your answer: an integer
check_total_steps(total_steps, 1859, 32, 3)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: batches per epoch (rounded up) times the number of epochs
import math

total_steps = math.ceil(1859 / 32) * 3
check_total_steps(total_steps, 1859, 32, 3)

# %% [markdown]
# **3.** With a peak rate of 1e-4, 10 warm-up steps and 100 steps in all, what is the learning rate at step 55?

# %%
lr_55 = None  # your answer: a float
check_lr_at_step(lr_55, 55, 1e-4, 10, 100)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: after warm-up the rate falls linearly from the peak to 0 at the last step
lr_55 = 1e-4 * (100 - 55) / (100 - 10)
check_lr_at_step(lr_55, 55, 1e-4, 10, 100)

# %% [markdown]
# **4.** Compute the linear CKA between the original embeddings `reference` and the *first half of the columns
# zeroed* version of them, by hand (centre, then the formula above).

# %%
half = reference.clone()
half[:, : half.shape[1] // 2] = 0
cka_half = None  # your answer: a float
check_linear_cka(cka_half, reference, half)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: centre both matrices, then ‖YᵀX‖² / (‖XᵀX‖ · ‖YᵀY‖)
xc, yc = reference.double() - reference.double().mean(0), half.double() - half.double().mean(0)
cka_half = float((yc.T @ xc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm()))
check_linear_cka(cka_half, reference, half)

# %% [markdown]
# **5 (open).** Re-run with `max_length=128` (or `strategy="lora"`) and compare quality, time and forgetting.
#
# ## Summary
#
# * Five steps: data (with baselines), load (a new head on a pretrained encoder), train (the loop above, about
#   30 lines on `accelerate`, the same as `companion.engine.training.train`), validate (learning curves), test (once, on
#   held-out data).
# * What this run measured (printed by the next cell): quality against the baselines, the overfitting turn on a
#   small training set, and how far general English moved.

# %%
print(f"test macro-F1 {test_scores['macro_f1']:.3f}: "
      f"{'above' if beats_tfidf else 'not above'} TF-IDF + LR ({baselines['TF-IDF + LR']['macro_f1']:.3f}), "
      f"{'above' if beats_balanced else 'not above'} the class-balanced TF-IDF + LR "
      f"({baselines['TF-IDF + LR (class-balanced)']['macro_f1']:.3f})")
print(f"with {small['train_size']} examples the validation loss was lowest after epoch {best_val_epoch} of {last_epoch}"
      + (" and rose after it: overfitting" if best_val_epoch < last_epoch else ", still falling at the end"))
print(f"{params['trainable_pct']:.0f} % of the parameters trained; CKA vs the original encoder {forgetting['cka']:.3f}")

# %%
results = {
    "notebook": "06_full_finetuning", "profile": PROFILE, "seed": seed, "strategy": strategy, "device": device.type,
    "model_name": model_name, "settings": cfg,
    "test": {"macro_f1": test_scores["macro_f1"], "accuracy": test_scores["accuracy"]},
    "validation": {"macro_f1": float(history["macro_f1"].max()),
                   "accuracy": float(history.loc[history["macro_f1"].idxmax(), "accuracy"])},
    "baselines": {k: {"macro_f1": v["macro_f1"], "accuracy": v["accuracy"]} for k, v in baselines.items()},
    "beats_tfidf": bool(beats_tfidf), "beats_tfidf_balanced": bool(beats_balanced),
    "params": {"trainable": int(params["trainable"]), "total": int(params["total"]),
               "trainable_pct": float(params["trainable_pct"])},
    "train_seconds": run["train_seconds"], "samples_per_s": samples_per_s, "peak_memory_mb": run["peak_memory_mb"],
    "steps": n_steps, "forgetting": forgetting | general, "epochs_run": len(history), "max_epochs": max_epochs,
    "lr": cfg["lr"], "rate_source": rate_source, "general_probe_se": se,
    "loop_equivalence": {"steps": len(ours["losses"]), "max_loss_difference": difference, "tolerance": 1e-5,
                         "equal": bool(difference < 1e-5 and len(ours["losses"]) == len(package_losses))},
    "overfitting": {"train_size": small["train_size"], "best_val_loss_epoch": best_val_epoch,
                    "final_val_loss": float(small_val["loss"].iloc[-1]), "final_train_loss": float(small_val["train_loss"].iloc[-1]),
                    "test_macro_f1": small["macro_f1"]},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("06_full_finetuning", results)
pd.Series({"test macro-F1": round(test_scores["macro_f1"], 3), "test accuracy": round(test_scores["accuracy"], 3),
           "trainable": f"{int(params['trainable']):,}", "seconds": results["seconds"],
           "CKA": round(forgetting["cka"], 3)}, name="value").to_frame()
