# %% [markdown]
# # 06 · Full fine-tuning
#
# **Full fine-tuning** updates *every* weight of a pretrained model on the task's labelled data. It is the
# reference point of the next notebooks. We fine-tune the MiniLM encoder to sort medical abstracts by condition.
#
# **In this notebook you will**
# 1. meet the course's **experimental protocol**: the budget every compared run shares in notebooks 06–09
#    (training texts, length, batch size, epoch cap, early stopping, class weighting, seeds), and see from a
#    measurement how much of each abstract it reads and what that truncation costs;
# 2. write the **fine-tuning loop** yourself (about 40 lines on 🤗 `accelerate`: batches, forward, class-weighted
#    cross-entropy, backward, clipping, optimiser and schedule step, validation, early stopping that waits until
#    the model has learned something), train the real model with it, and check that the companion's `train` is the
#    same loop;
# 3. read learning curves, compare with two baselines (majority class, TF-IDF + logistic regression tuned on
#    validation) with an interval, and ask the first question of every run: **did it train at all?**;
# 4. predict, then watch, a model **overfit** a small training set;
# 5. measure the **cost** (time, samples/s, peak memory, trainable parameters) and the **forgetting** (a general
#    task before and after, with an interval over its sentences).
#
# **Prerequisites**: notebooks 02 (cross-entropy of logits, its gradient) and 03 (the encoder that produces the
# `[CLS]` vector); basic PyTorch (a module, `loss.backward()`, an optimiser step).
#
# **Time**: about 60 minutes of study for a person. Machine time on 2 idle CPU cores (kernel start and model
# loading included) is printed by the last cell and kept in `notebooks/results/06_full_finetuning.results.json`
# (`seconds`; BENCHMARKS.md lists every notebook's); `smoke` runs in seconds. `gpu`: `bash bench/gpu.sh`.

# %%
import copy
import math
import time
from dataclasses import replace as with_changes
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

import companion as cc
from companion.checks.n06 import check_linear_cka, check_lr_at_step, check_overfit_epoch, check_total_steps
from companion.core.data import load_text_classification
from companion.core.device import autocast
from companion.core.embeddings import sentence_embeddings
from companion.core.plots import plain_log_axis
from companion.core.rates import search_rate
from companion.core.stats import mean_ci, paired_bootstrap, paired_difference
from companion.engine.comparison import length_study
from companion.engine.batches import encode_texts, make_loader, padding_collator, tokenize_dataset
from companion.engine.finetune import learning_plateau, run_strategy, task_for
from companion.engine.forgetting import (article_probe, forgetting_change, forgetting_sentence, general_sentences,
                                         linear_cka, probe_sizes, representation_drift)
from companion.engine.metrics import (classification_metrics, confusion_table, majority_baseline, tfidf_baseline,
                                      tfidf_tuned)
from companion.engine.strategies import default_rate, rate_for
from companion.engine.training import (MemoryMeter, class_weights, evaluate, fused_ok, linear_warmup_decay,
                                       make_accelerator, param_groups, predict, train)

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for the training sample, shuffling, dropout and the new head
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "minilm"  # encoder: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
lr: Optional[float] = None  # range: (0, inf); peak learning rate; None means chosen on validation (rates_csv for its data, else a search run here)
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the strategy sweep's validation-only rate search (make rates)
lengths_csv: str = "../sweeps/results/lengths-cpu.csv"  # the length study (make lengths): test macro-F1 per length
comparison_csv: str = "../sweeps/results/strategies-cpu.csv"  # the strategy comparison: its full runs are the study's protocol length
length_times_csv: str = "../sweeps/results/step-time-lengths-cpu.csv"  # seconds per step at each length, one process (bench/step_time.py --lengths)
max_length: Optional[int] = None  # range: [8, inf); tokens kept from each text; None means the protocol's
train_size: Optional[int] = None  # range: [1, inf); training examples; None means the protocol's
class_weights_mode: Optional[str] = None  # one of: none, balanced; None means the protocol's
small_size: int = 100  # range: [1, inf); training examples of the overfitting experiment
forgetting_sentences: Optional[int] = None  # range: [1, inf); WikiText-2 sentences probing drift; None means the profile default

# %%
cc.check_values("06", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
protocol = cc.protocol(PROFILE, max_length=max_length, train_size=train_size, class_weights=class_weights_mode,
                       precision=precision)
cfg = cc.settings(PROFILE, {  # what this notebook does beyond the protocol: its demonstrations
    "smoke": {"small_epochs": 2, "small_lr": 2e-4, "forgetting_sentences": 16, "check_examples": 24},
    "cpu": {"small_epochs": 12, "small_lr": 3e-4, "forgetting_sentences": 200, "check_examples": 40},
    "gpu": {"small_epochs": 15, "small_lr": 1e-4, "forgetting_sentences": 1000, "check_examples": 40},
}, forgetting_sentences=forgetting_sentences)
print(protocol.describe())
deviations = {k: v for k, v in {"max_length": max_length, "train_size": train_size,
                                "class_weights": class_weights_mode}.items() if v is not None}
if deviations:
    print("this run deviates from the protocol, so its numbers are not the other notebooks':", deviations)

# %% [markdown]
# ## The protocol: one budget for every comparison
#
# Notebooks 06–09 compare ways of training. A comparison is an experiment only when its arms share a budget and
# each arm trained until validation stopped improving or the epoch cap came (each run records which), so the
# course fixes **one protocol per profile** (`companion.engine.protocol`): which training texts (a sample drawn
# with the run's seed, stratified by class), how many tokens of each text and which ones, the batch size, an epoch cap (raised on small data so that a run
# gets at least `min_steps` steps), validation every epoch (or every `eval_steps` steps when an epoch is longer),
# early stopping, and whether the loss weighs the classes. This notebook's full fine-tuning, 07's layered runs,
# 08's prompts and 09's table all run it. Learning rates are the one thing each setting gets for itself, chosen on
# the validation split (notebook 09, section 1).

# %%
pd.Series({k: str(v) for k, v in protocol.record().items()}, name=protocol.profile).to_frame()

# %% [markdown]
# ## Step 1 · Data, and two baselines
#
# The data, split stratified into train / validation / test (one fixed split for every notebook). The **test
# split is held out**: we touch it once, at the very end. Two baselines set the bar: always predicting the most
# frequent class, and a bag-of-words model (TF-IDF + logistic regression, class-weighted like our loss) trained on
# the *whole* texts of the same training examples, its regularisation strength C chosen on the validation split
# with the course's rate rule (factors of 3 around 1, extended until the best is inside the grid).

# %%
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
label_names = dataset["train"].features["label"].names
tokenizer = cc.load_tokenizer(model_name)
task = task_for(dataset, model_name, protocol, seed, tokenizer)  # the protocol's training sample, tokenised once
train_texts = task.texts["train"]  # the untokenised texts of that sample (task.texts: the splits it scores)
baselines = {"majority class": majority_baseline(train_texts["label"], task.texts["test"]["label"]),
             "TF-IDF + LR (class-weighted, C on validation)": tfidf_tuned(task.texts, train_texts, seed)}
tfidf = baselines["TF-IDF + LR (class-weighted, C on validation)"]
print({split: len(part) for split, part in task.data.items()}, "· classes:", len(label_names),
      f"· TF-IDF's C chosen on validation: {tfidf['C']:.3g} ({tfidf['search']['position'].iloc[0]} of "
      f"{len(tfidf['search'])} tried)")
pd.DataFrame(baselines).T[["accuracy", "macro_f1"]].astype(float).round(3)

# %% [markdown]
# ### How much of each text should the model read?
#
# A transformer's cost grows with the number of tokens it reads, so on a laptop the protocol cuts each text.
# The medical abstracts are long for that:

# %%
lengths = pd.Series([len(ids) for ids in tokenizer(list(train_texts["text"]), verbose=False)["input_ids"]])
print(f"tokens per training text: median {lengths.median():.0f}, 10th percentile {lengths.quantile(0.1):.0f}, "
      f"90th {lengths.quantile(0.9):.0f}; {(lengths <= protocol.max_length).mean():.0%} fit in the protocol's "
      f"{protocol.max_length} tokens")

# %% [markdown]
# Cutting costs something, and *which* tokens to keep matters: `head` keeps the opening; `head+tail` spends a
# quarter of the tokens left after `[CLS]` and `[SEP]` on the opening and the rest on the end (at 64 tokens: the
# first 15 and the last 47). Sun et al. 2019 found head + tail best on long movie reviews and news articles;
# whether that carries over to abstracts is a measurement. The **length study** (`make lengths`:
# `sweeps/lengths-rates.yaml` chooses each setting's rate on validation at the selection seed, then
# `sweeps/lengths.yaml` runs 5 seeds) fine-tuned under this protocol at several lengths. Beside it the notebook
# draws TF-IDF on the very tokens the model read: one run on this notebook's training sample, with the C chosen on
# whole texts, a reference without an interval. The study is a sweep of its own, run separately: when its results
# for this data and profile are present, the next cell shows what it measured; otherwise it says so.

# %%
study = length_study(lengths_csv, comparison_csv, data)  # the study's runs + the comparison's full runs (protocol length)
if study is not None:
    times = (pd.read_csv(length_times_csv).groupby("max_length")["seconds_per_step"].median().to_dict()
             if Path(length_times_csv).is_file() else {})  # one process, so comparable; a step's cost is its length's
    curve = study.groupby(["max_length", "truncation"]).apply(
        lambda g: pd.Series({"macro_f1": g["macro_f1"].mean(), "low": mean_ci(g["macro_f1"]).low,
                             "high": mean_ci(g["macro_f1"]).high, "seeds": len(g), "lr": g["lr"].iloc[0],
                             "stopped_early": g["stopped_early"].astype(bool).mean()}), include_groups=False)
    curve["seconds_per_step"] = [times.get(n, float("nan")) for n, _ in curve.index]
    tfidf_same_tokens = {}
    for (length, truncation), _ in curve.iterrows():  # TF-IDF on the very tokens the model read, same sample
        cut = lambda split: tokenizer.batch_decode(encode_texts(tokenizer, split["text"], int(length), truncation)[
            "input_ids"], skip_special_tokens=True)  # noqa: E731
        tfidf_same_tokens[(length, truncation)] = tfidf_baseline(cut(train_texts), train_texts["label"],
                                                                 cut(task.texts["test"]), task.texts["test"]["label"],
                                                                 seed, True, tfidf["C"])["macro_f1"]
    curve["tfidf_same_tokens"] = pd.Series(tfidf_same_tokens)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for truncation, part in curve.reset_index().groupby("truncation"):
        axes[0].errorbar(part["max_length"], part["macro_f1"], yerr=[part["macro_f1"] - part["low"],
                         part["high"] - part["macro_f1"]], marker="o", capsize=3, label=f"MiniLM, {truncation}")
        axes[0].plot(part["max_length"], part["tfidf_same_tokens"], ls="--", marker="x",
                     label=f"TF-IDF on the same tokens, {truncation}")
        axes[1].plot(part["max_length"], part["seconds_per_step"], marker="o", label=truncation)
    axes[0].axhline(tfidf["macro_f1"], color="grey", lw=1, label="TF-IDF, whole texts")
    axes[0].set(xscale="log", xlabel="tokens kept per text", ylabel="test macro-F1 (mean, 95 % CI)")
    axes[1].set(xscale="log", xlabel="tokens kept per text", ylabel="seconds per full training step (one process)")
    for ax in axes:
        plain_log_axis(ax, "x", ticks=sorted(curve.reset_index()["max_length"].unique()))
        ax.legend(fontsize=7)
    plt.tight_layout()
    plt.show()
    display_curve = curve.round(3).assign(lr=curve["lr"].map("{:.2g}".format), seeds=curve["seeds"].astype(int))
else:
    curve, display_curve = None, "no length study for this data and profile (make lengths runs it)"
display_curve

# %%
if curve is not None:  # every measured length against the protocol's, paired by seed
    ours = (protocol.max_length, protocol.truncation)
    pivot = study.pivot_table(index="seed", columns=["max_length", "truncation"], values="macro_f1")
    if ours in pivot:
        for other in pivot.columns.drop(ours):
            d = paired_difference(pivot[other], pivot[ours])
            verdict = "better" if d.low > 0 else "worse" if d.high < 0 else "tied (the interval holds 0)"
            ratio = curve.loc[other, "seconds_per_step"] / curve.loc[ours, "seconds_per_step"]
            print(f"{other[0]:>3} tokens, {other[1]:<9} − the protocol's {ours[0]} ({ours[1]}): {d} → {verdict}"
                  + ("" if math.isnan(ratio) else f"; a step takes {ratio:.1f}× as long"))
    else:
        print(f"the protocol's length {ours} was not in the study")

# %% [markdown]
# How to read it: each line pairs a setting with the protocol's on the same seeds, so what the two runs share
# (which texts were sampled, the head's starting weights) drops out of the difference; a setting is *better* or
# *worse* only when its whole interval is on one side of 0. `stopped_early` is the share of seeds whose run early
# stopping ended before the epoch cap (a run whose patience ran out exactly at the cap counts as not stopped). The
# right-hand panel is the price: a step's cost grows with the tokens kept (it depends on how many tokens, not which,
# so `head` shares `head+tail`'s time). These lines are on **test**, for information: a change of protocol is a
# choice, and choices are made on validation (the study's CSV has `val_macro_f1` per run for that). The protocol's
# 64 tokens were fixed by the time budget (every notebook under 6 minutes on two cores) before this study ran, and
# a change of protocol means re-running every sweep under it: `sweep_for` refuses a sweep made under another
# protocol, so no notebook mixes the two.

# %% [markdown]
# ## Step 2 · Load the model; the loss, weighted by class
#
# `load_model(…, "classifier", num_labels=…)` puts a new, randomly initialised linear **head** on the pretrained
# encoder: it maps the pooled `[CLS]` vector to one logit per class. The loss is the cross-entropy of those logits,
# −log softmax(logits)[label]. The classes are not equally frequent, and a model can score well on accuracy by
# favouring the big ones (or, on very unbalanced data, predict the majority class for everything). The protocol
# therefore **weighs each example by its class**: weight_c = n / (classes × n_c), so every class contributes as
# much to the loss as a whole; the batch loss is Σ wᵢ·ℓᵢ / Σ wᵢ (a weighted mean, as `F.cross_entropy(weight=…)`
# computes it). The choice was measured, not assumed (`bench/class_weights.py`; BENCHMARKS.md, "Class weighting").

# %%
weights = class_weights(list(task.data["train"]["labels"]), len(label_names))  # n / (classes × n_c)
print("class weights:", {name: round(float(w), 3) for name, w in zip(label_names, weights)})
model = cc.load_model(model_name, "classifier", num_labels=len(label_names))
collate = padding_collator(tokenizer)
batch = collate([task.data["validation"][i] for i in range(8)])
with torch.no_grad():
    out = model(**batch)
per_example = -out.logits.log_softmax(-1)[torch.arange(8), batch["labels"]]
w = weights[batch["labels"]]
by_hand = (w * per_example).sum() / w.sum()
library = F.cross_entropy(out.logits, batch["labels"], weight=weights)
print(f"weighted loss by hand {by_hand:.6f} · F.cross_entropy(weight=…) {library:.6f} · unweighted (the model's own "
      f".loss) {out.loss:.6f}")
print(f"untrained head: loss ≈ ln({len(label_names)}) = {math.log(len(label_names)):.3f}, the loss of a uniform "
      f"guess over the {len(label_names)} classes")

# %%
# NBVAL_CHECK_OUTPUT
print("Σ w·ℓ / Σ w = F.cross_entropy(weight=…) (within 1e-6):", abs(float(by_hand - library)) < 1e-6)
print("unweighted F.cross_entropy = the model's own .loss (within 1e-6):",
      abs(float(F.cross_entropy(out.logits, batch["labels"]) - out.loss)) < 1e-6)

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
# Here is the whole fine-tuning loop. 🤗 `accelerate` only places the model and the batches on the device (and
# runs several processes under `accelerate launch`); bf16 autocast, where the hardware has it, runs the matrix
# products in bfloat16. Each step: take a batch (padded to its own longest text), compute the logits, the
# class-weighted cross-entropy, its gradient for every weight, clip the gradient's global norm to 1, take an AdamW
# step, move the learning rate along its schedule. After each epoch: validate, keep a copy of the weights when
# macro-F1 is the best so far, and stop once it has not improved for `patience` epochs. Two guards keep early
# stopping honest: epochs during the warm-up do not count, and neither do epochs while the best score is still
# at the **plateau** of guessing (always the majority class, or at random with the classes' frequencies: the
# better of the two) — a run that has not learned anything yet is not "converged", it is stuck, and stopping it
# there would hide the failure.

# %%
def fine_tune(model, train_data, val_data, config, plateau: float) -> dict:
    """Fine-tune `model` in place under `config` (a TrainConfig); return the per-step losses, one validation row
    per epoch, whether early stopping ended the run, and the costs."""
    torch.manual_seed(config.seed)  # dropout masks; the batch order has its own seeded generator
    accelerator = make_accelerator()  # places model and batches: CPU, a GPU, or one process of several
    train_loader = make_loader(train_data, collate, config.batch_size, shuffle=True, seed=config.seed)
    val_loader = make_loader(val_data, collate, config.eval_batch_size, shuffle=False)
    batches = train_loader.batch_sampler
    labels = list(train_data["labels"])
    weights = class_weights(labels, len(label_names)) if config.class_weights == "balanced" else None
    groups = param_groups(model, config.lr, config.weight_decay)  # no weight decay on biases and LayerNorm weights
    optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=fused_ok(groups, accelerator.device))
    total = len(train_loader) * config.epochs
    warmup = int(config.warmup_ratio * total)
    scheduler = linear_warmup_decay(optimizer, warmup, total)
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    val_loader = accelerator.prepare(val_loader)
    memory, losses, history, seconds = MemoryMeter(accelerator.device), [], [], 0.0
    best, best_state, stale, step = None, None, 0, 0
    for epoch in range(config.epochs):
        batches.set_epoch(epoch)  # a new (seeded) order every epoch
        model.train()  # dropout on
        t0 = time.perf_counter()
        for batch in train_loader:
            with autocast(config.mixed_precision, accelerator.device):  # bf16 products where the hardware has them
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            loss = F.cross_entropy(logits.float(), batch["labels"], weight=weights)  # Σ w·ℓ / Σ w
            accelerator.backward(loss)  # the gradient of every weight
            accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()  # AdamW update
            scheduler.step()  # next learning rate: warm-up, then linear decay
            optimizer.zero_grad()
            losses.append(loss.item())
            step += 1
        seconds += time.perf_counter() - t0
        memory.sample()
        scores = evaluate(model, val_loader, accelerator, config.mixed_precision)  # eval mode: no dropout
        history.append({"epoch": epoch + 1, **scores,
                        "train_loss": sum(losses[-len(train_loader):]) / len(train_loader)})
        if best is None or scores["macro_f1"] > best["macro_f1"]:  # keep the best epoch's weights
            best, stale = scores, 0
            best_state = {k: v.detach().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
        elif step >= warmup and best["macro_f1"] > plateau:  # counts only after warm-up, off the plateau
            stale += 1
        if config.patience is not None and stale >= config.patience:  # early stopping: no progress for a while
            break
    accelerator.unwrap_model(model).load_state_dict(best_state)
    return {"losses": losses, "history": pd.DataFrame(history), "steps_per_epoch": len(train_loader),
            "stopped_early": step < total, "max_steps": total, "train_seconds": seconds,
            "peak_memory_mb": memory.peak_mb()}


# %% [markdown]
# **The learning rate.** Under the protocol every setting trains at the rate its own validation-only search
# chose (notebook 09, section 1: candidates spaced by factors of 3, extended until the best is inside the grid,
# trained on a seed the comparison never scores). For data other than the one the search ran on, this notebook
# runs that search itself here, on this data's validation split, rather than borrow a rate chosen elsewhere.

# %%
plateau = learning_plateau(task)  # the validation macro-F1 of guessing: majority class or random, the better
if lr is not None:
    chosen_lr, rate_source = lr, "given"
else:
    chosen_lr, rate_source = rate_for(Path(rates_csv), "full", "full", PROFILE, data)
    if not rate_source.startswith("chosen on validation"):  # no search on this data: search here, validation only
        sample = task_for(dataset, model_name, protocol, protocol.selection_seed, tokenizer)

        def validation_f1(rate: float) -> float:
            """One run under the protocol at `rate` on the selection seed; its best validation macro-F1."""
            return run_strategy("full", sample, protocol.config(rate, protocol.selection_seed,
                                                                len(sample.data["train"]), progress=False),
                                test=False)["val_macro_f1"]

        search = search_rate(validation_f1, default_rate("full", PROFILE), protocol.rate_factor,
                             protocol.rate_candidates, protocol.rate_extensions)
        chosen_lr = float(search.loc[search["chosen"], "lr"].iloc[0])
        rate_source = (f"chosen here on this data's validation split ({len(search)} rates tried, best "
                       f"{search['position'].iloc[0]})")
        print(search.round(4).to_string(index=False))
config = protocol.config(chosen_lr, seed, len(task.data["train"]))
print(f"learning rate {chosen_lr:.3g} ({rate_source}) · at most {config.epochs} epochs of "
      f"{math.ceil(len(task.data['train']) / config.batch_size)} steps · early stopping after {config.patience} "
      f"epochs without progress · plateau (guessing, on validation) {plateau:.3f}")
run = fine_tune(model, task.data["train"], task.data["validation"], config, plateau)
history = run["history"]
n_steps, samples_per_s = len(run["losses"]), len(task.data["train"]) * len(history) / run["train_seconds"]
ended = "early stopping" if run["stopped_early"] else f"the cap of {run['max_steps']} steps"
print(f"{n_steps} steps in {run['train_seconds']:.0f} s (validation not counted), ended by {ended} · "
      f"{samples_per_s:.1f} samples/s · peak memory {run['peak_memory_mb']:.0f} MiB")

# %% [markdown]
# **The companion's loop is this loop.** Notebooks 07–09 call `companion.engine.training.train`, which adds options
# (parameter groups, hooks, validation every few steps, a history table) around the same steps in the same order.
# A short run from the same starting weights with the same seed and the same class weights (dropout on in both)
# must give the same loss at every step:

# %%
tiny_train = tokenize_dataset(train_texts.select(range(min(cfg["check_examples"], len(train_texts)))), tokenizer,
                              max_length=32)
tiny_val = tokenize_dataset(task.texts["validation"].select(range(min(16, len(task.texts["validation"])))), tokenizer,
                            max_length=32)
tiny_config = with_changes(config, epochs=2, batch_size=8, patience=None, log_every=1, progress=False,
                           mixed_precision="fp32", plateau=None)
torch.manual_seed(seed)
fresh = cc.load_model(model_name, "classifier", num_labels=len(label_names))
twin = copy.deepcopy(fresh)
ours = fine_tune(fresh, tiny_train, tiny_val, tiny_config, plateau=-1.0)
package = train(twin, tiny_train, tiny_val, collate, tiny_config)
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
# The two validation curves can disagree: the loss measures how *confident* the model is on the right class, and
# it rises as soon as a few confident mistakes grow, while macro-F1 measures its *decisions*, which may still
# improve. Early stopping and the choice of the kept epoch use macro-F1, the metric the task is judged on.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
train_rows = pd.DataFrame({"epoch": [(i + 1) / run["steps_per_epoch"] for i in range(n_steps)],
                           "loss": pd.Series(run["losses"]).rolling(5, min_periods=1).mean()})
sns.lineplot(data=train_rows, x="epoch", y="loss", ax=axes[0], label="training (mean of 5 steps)")
sns.lineplot(data=history, x="epoch", y="loss", ax=axes[0], marker="o", label="validation")
sns.lineplot(data=history, x="epoch", y="macro_f1", ax=axes[1], marker="o", label="validation macro-F1")
axes[1].axhline(plateau, ls=":", c="gray", label="guessing's plateau (validation)")
axes[0].set(title="Loss", ylabel="cross-entropy (training: class-weighted)")
axes[1].set(title="Quality", ylabel="macro-F1")
axes[1].legend()
plt.tight_layout()
plt.show()
history[["epoch", "loss", "accuracy", "macro_f1", "classes_predicted", "train_loss"]].round(4)

# %% [markdown]
# ## Step 5 · Test (once), and did it train?
#
# The held-out test split. Macro-F1 weighs every class equally, so always guessing the largest class scores badly
# on it whatever its accuracy. The first question about any trained classifier is whether it learned anything:
# a run can end without an error and still predict one class for every text. The check below answers it in one
# line (stored in the result JSON; `companion run` exits with an error when a run collapsed, unless told to accept
# it). Then the comparison with TF-IDF, with a **paired bootstrap** interval over the test texts: resample the
# test texts with replacement many times, score both models on each resample, and read the spread of the
# difference — how much it could move with other test texts of the same kind.

# %%
test_loader = make_loader(task.data["test"], collate, 64, shuffle=False, group=False)  # in the split's order
test_out = predict(model, test_loader, precision=config.mixed_precision)
test_scores = classification_metrics(test_out["labels"], test_out["preds"])
check = cc.training_check("full fine-tuning", test_out["labels"], test_out["preds"], task.data["train"]["labels"])
print(check.line())
vs_tfidf = paired_bootstrap(test_out["labels"], test_out["preds"], tfidf["preds"], seed=seed)  # on macro-F1
print(f"MiniLM full fine-tuning − TF-IDF + LR, test macro-F1: {vs_tfidf} (bootstrap over the "
      f"{len(test_out['labels'])} test texts, one training seed; notebook 09 adds seeds)")
verdict_tfidf = ("above" if vs_tfidf.low > 0 else "below" if vs_tfidf.high < 0 else "tied with")
confusion = confusion_table(test_out["labels"], test_out["preds"], label_names)
side = 1.5 + 0.9 * len(label_names)  # inches: room for every label
fig, ax = plt.subplots(figsize=(side + 2.5, side))
sns.heatmap(confusion, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=ax)
ax.set(title="Test confusion matrix", xlabel="predicted", ylabel="true")
ax.set_xticklabels([t.get_text().replace(" ", "\n") for t in ax.get_xticklabels()], rotation=0, fontsize=8)
ax.set_yticklabels(ax.get_yticklabels(), rotation=0, fontsize=8)
plt.tight_layout()
plt.show()
pd.DataFrame({**{k: {"accuracy": v["accuracy"], "macro_f1": v["macro_f1"]} for k, v in baselines.items()},
              "MiniLM full fine-tuning": test_scores}).T.astype(float).round(3)

# %%
off_diagonal = confusion.values.copy()
off_diagonal[range(len(label_names)), range(len(label_names))] = 0
true_i, pred_i = divmod(int(off_diagonal.argmax()), len(label_names))
print(f"most frequent confusion: true {label_names[true_i]!r} predicted as {label_names[pred_i]!r} "
      f"({off_diagonal.max()} of {len(test_out['labels'])} test texts)")

# %% [markdown]
# ## Overfitting on small data
#
# With only a few labelled examples, the millions of free parameters can memorise the training set. This
# experiment leaves the protocol on purpose: `small_size` examples, `small_epochs` epochs **without** early
# stopping and at a higher rate (`small_lr`), so that memorising happens within the budget and we can watch it.
#
# **Exercise 1 (predict, then measure).** Before running the experiment: after which epoch will the
# validation loss be lowest? Write your guess below, run the experiment, then check it. How exact must a guess
# be? As exact as the measurement itself: the experiment is repeated at two more seeds (another sample of
# `small_size` examples, another head and data order), and the check accepts any epoch within the spread of the
# turning epochs it finds (at least ±1).

# %%
predicted_best_epoch = None  # your prediction: an integer between 1 and cfg["small_epochs"]

# %%
def small_experiment(run_seed: int) -> tuple[dict, pd.DataFrame]:
    """The small-data experiment at one seed (its own sample, new head and data order): the run and its
    validation history."""
    small_task = task_for(dataset, model_name, cc.protocol(PROFILE, train_size=min(small_size, len(train_texts)),
                                                           max_length=protocol.max_length,
                                                           truncation=protocol.truncation), run_seed, tokenizer)
    small_config = with_changes(protocol.config(cfg["small_lr"], run_seed, len(small_task.data["train"])),
                                epochs=cfg["small_epochs"], patience=None, warmup_ratio=0.0, progress=False)
    run = run_strategy("full", small_task, small_config)
    return run, pd.DataFrame(run["history"]).query("split == 'validation'")


def turning_epoch(validation: pd.DataFrame) -> int:
    """The epoch of lowest validation loss."""
    return int(validation.loc[validation["loss"].idxmin(), "epoch"])


small, small_val = small_experiment(seed)
turning_epochs = [turning_epoch(small_val)] + [turning_epoch(small_experiment(seed + i)[1]) for i in (1, 2)]
fig, ax = plt.subplots(figsize=(7, 3.5))
sns.lineplot(data=small_val, x="epoch", y="train_loss", marker="o", ax=ax, label=f"training ({small['train_size']} examples)")
sns.lineplot(data=small_val, x="epoch", y="loss", marker="o", ax=ax, label="validation")
ax.set(ylabel="cross-entropy", title="Small training set: the gap opens")
plt.tight_layout()
plt.show()
best_val_epoch = turning_epochs[0]
last_epoch = int(small_val["epoch"].iloc[-1])
if best_val_epoch < last_epoch:
    print(f"validation loss is lowest after epoch {best_val_epoch} ({small_val['loss'].min():.3f}), then rises to "
          f"{small_val['loss'].iloc[-1]:.3f} by epoch {last_epoch}")
else:
    print(f"validation loss still falls at the last epoch ({last_epoch}): raise small_epochs to watch it turn")
print(f"training loss ends at {small_val['train_loss'].iloc[-1]:.3f}")
print(f"epoch of lowest validation loss at seeds {seed}, {seed + 1}, {seed + 2}: "
      f"{', '.join(map(str, turning_epochs))} (the measurement's own spread)")
print(f"test macro-F1 with {small['train_size']} examples: {small['macro_f1']:.3f} (best epoch kept) vs "
      f"{test_scores['macro_f1']:.3f} with {len(task.data['train'])}")

# %%
check_overfit_epoch(predicted_best_epoch, small_val["loss"].tolist(), turning_epochs)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: a prediction from the set-up, before the run (few examples and a high rate memorise fast)
predicted_best_epoch = max(1, cfg["small_epochs"] // 3)  # the training loss nears 0 within the first third
check_overfit_epoch(predicted_best_epoch, small_val["loss"].tolist(), turning_epochs)

# %% [markdown]
# Early stopping on validation (the loop's `patience`) and restoring the best epoch are the standard
# defences; more labelled data is the real cure. The last printed line compares the two training-set sizes at
# one seed, the small run at its own higher rate and with its best epoch kept: a difference of a few hundredths
# there can be seed-to-seed noise (notebook 09 shows the intervals of full fine-tuning over 5 seeds), so it says
# nothing about data size either way; notebook 09's data-size curve, paired over seeds, does.
#
# ## The cost, and what general English lost
#
# **Cost.** Every parameter is trainable, so the optimiser keeps two extra numbers (Adam's moments) per weight,
# and every step back-propagates through the whole network and computes a gradient for every weight.
#
# **Forgetting.** Fine-tuning for one task moves the encoder away from what it learned in pretraining. We measure
# it two ways. First as **lost ability on a general task**: which of a few WikiText-2 articles a sentence comes
# from, read off the encoder's frozen sentence features by a linear probe (logistic regression fitted on half of
# each article's sentences, scored on the other half), before and after fine-tuning. Its change has an interval
# from a bootstrap over the scored sentences (and, in notebook 09, over seeds too): the course's one forgetting
# test, printed by one function in every notebook. Second as **drift**: we embed `forgetting_sentences`
# WikiText-2 sentences with the original and with the tuned encoder (mean pooling) and compare: **linear CKA**
# (1 = the same geometry up to rotation and scale) and the **mean cosine** between each sentence's two embeddings.
# The CKA formula, checked against the library function:
#
# $\mathrm{CKA}(X, Y) = \dfrac{\lVert Y^\top X\rVert_F^2}{\lVert X^\top X\rVert_F\,\lVert Y^\top Y\rVert_F}$ on
# column-centred $X, Y$.

# %%
probe = general_sentences(cfg["forgetting_sentences"], seed=seed)
original = cc.load_model(model_name, "encoder")
general_task = article_probe(original, tokenizer, **probe_sizes(PROFILE))  # fitted and scored on the original once
general = general_task.compare(model, tokenizer)  # the same probe on the fine-tuned encoder's features
general_change = forgetting_change(general["general_correct_before"], [general["general_correct"]])
reference = sentence_embeddings(original, tokenizer, probe, max_length=protocol.max_length)
forgetting = representation_drift(model, tokenizer, probe, reference, max_length=protocol.max_length)
tuned = sentence_embeddings(model, tokenizer, probe, max_length=protocol.max_length)
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
print(forgetting_sentence(general_change, "full fine-tuning", seeds=1))
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
total_steps = math.ceil(1859 / 32) * 3
check_total_steps(total_steps, 1859, 32, 3)

# %% [markdown]
# **3.** With a peak rate of 1e-4, 10 warm-up steps and 100 steps in all, what is the learning rate at step 55?
# Steps count from 0 as the scheduler counts them: step 55 is the rate the 56th update uses.

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
# **5. Write the mechanism.** Complete `weighted_cross_entropy(logits, labels, class_weights)`: `logits` has shape
# `(examples, classes)`, `labels` one class index per example and `class_weights` one weight per class. Return the
# class-weighted loss of Step 2, Σ wᵢ·(−log softmax(zᵢ)[yᵢ]) / Σ wᵢ with wᵢ = class_weights[yᵢ], computed stably.
# The check runs your function on fresh random inputs (weights that do not average 1, a class absent from the
# labels, one example, logits in the hundreds) against `F.cross_entropy(logits, labels, weight=class_weights)`.

# %%
from companion.checks.n06 import check_weighted_ce_function


def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Σ w[yᵢ]·(−log softmax(logits)ᵢ[yᵢ]) / Σ w[yᵢ]: the cross-entropy, each example weighted by its class."""
    # 1. log-probabilities with torch.log_softmax over the classes (stable), shape (examples, classes)
    # 2. each example's −log-probability of its own label (row i, column labels[i])
    # 3. each example's weight: class_weights indexed by labels; the weighted sum divided by the sum of those weights
    return None  # replace with the loss (a scalar tensor)


check_weighted_ce_function(weighted_cross_entropy)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: stable log-softmax, the label's entry per row, a weighted mean with the weights of the labels present
def weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor) -> torch.Tensor:
    """Σ w[yᵢ]·(−log softmax(logits)ᵢ[yᵢ]) / Σ w[yᵢ]: the cross-entropy, each example weighted by its class."""
    nll = -torch.log_softmax(logits.float(), dim=-1)[torch.arange(len(labels)), labels]
    w = class_weights[labels]
    return (w * nll).sum() / w.sum()


check_weighted_ce_function(weighted_cross_entropy)

# %% [markdown]
# **6 (open).** Re-run with `-p class_weights_mode none` on your own unbalanced data, or with `-p max_length 256`,
# and compare quality, time and the did-it-train line.
#
# ## Summary
#
# * One protocol serves every comparison of notebooks 06–09: the same texts, length, batch size, epoch cap and
#   early stopping, and a learning rate chosen on validation for each setting.
# * Five steps: data (with baselines), load (a new head on a pretrained encoder), train (the loop above, about
#   40 lines on `accelerate`, the same as `companion.engine.training.train`), validate (learning curves), test
#   (once, on held-out data), and first of all: did it train?
# * What this run measured (printed by the next cell): quality against the baselines with its interval, the
#   overfitting turn on a small training set, and how far general English moved.

# %%
print(check.line())
print(f"test macro-F1 {test_scores['macro_f1']:.3f}: {verdict_tfidf} TF-IDF + LR ({tfidf['macro_f1']:.3f}); "
      f"difference {vs_tfidf}")
print(f"with {small['train_size']} examples the validation loss was lowest after epoch {best_val_epoch} of {last_epoch}"
      + (" and rose after it: overfitting" if best_val_epoch < last_epoch else ", still falling at the end"))
print(forgetting_sentence(general_change, "full fine-tuning", seeds=1))
print(f"{params['trainable_pct']:.0f} % of the parameters trained; CKA vs the original encoder {forgetting['cka']:.3f}")

# %%
results = {
    "notebook": "06_full_finetuning", "profile": PROFILE, "seed": seed, "device": device.type,
    "model_name": model_name, "data": data, "protocol": protocol.record(), "settings": cfg,
    "test": test_scores, "training_checks": [check.to_json()],
    "validation": {"macro_f1": float(history["macro_f1"].max()),
                   "accuracy": float(history.loc[history["macro_f1"].idxmax(), "accuracy"])},
    "baselines": {k: {"macro_f1": v["macro_f1"], "accuracy": v["accuracy"]} for k, v in baselines.items()},
    "tfidf_C": tfidf["C"], "vs_tfidf": {"difference": vs_tfidf.mean, "low": vs_tfidf.low, "high": vs_tfidf.high,
                                        "texts": vs_tfidf.n, "verdict": verdict_tfidf},
    "params": {"trainable": int(params["trainable"]), "total": int(params["total"]),
               "trainable_pct": float(params["trainable_pct"])},
    "train_seconds": run["train_seconds"], "samples_per_s": samples_per_s, "peak_memory_mb": run["peak_memory_mb"],
    "steps": n_steps, "max_steps": run["max_steps"], "stopped_early": run["stopped_early"],
    "epochs_run": len(history), "lr": chosen_lr, "rate_source": rate_source, "plateau": plateau,
    "forgetting": {k: v for k, v in (forgetting | general).items() if not k.startswith("general_correct")},
    "general_change": {"mean": general_change.mean, "low": general_change.low, "high": general_change.high},
    "length_study": None if curve is None else {f"{int(k[0])} {k[1]}": float(v) for k, v in curve["macro_f1"].items()},
    "loop_equivalence": {"steps": len(ours["losses"]), "max_loss_difference": difference, "tolerance": 1e-5,
                         "equal": bool(difference < 1e-5 and len(ours["losses"]) == len(package_losses))},
    "overfitting": {"train_size": small["train_size"], "best_val_loss_epoch": best_val_epoch,
                    "final_val_loss": float(small_val["loss"].iloc[-1]),
                    "final_train_loss": float(small_val["train_loss"].iloc[-1]), "test_macro_f1": small["macro_f1"],
                    "turning_epochs_over_seeds": turning_epochs},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("06_full_finetuning", results)
pd.Series({"test macro-F1": round(test_scores["macro_f1"], 3), "trained": check.trained,
           "trainable": f"{int(params['trainable']):,}", "seconds": results["seconds"],
           "CKA": round(forgetting["cka"], 3)}, name="value").to_frame()
