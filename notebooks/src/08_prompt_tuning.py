# %% [markdown]
# # 08 · Prompt tuning
#
# Instead of changing the model, change its **input**. A *hard prompt* is text we write (a template and a
# verbalizer that maps each class to a word); a *soft prompt* is a handful of trainable vectors prepended to the
# input embeddings while every model weight stays frozen.
#
# **In this notebook you will**
# 1. classify texts with the causal LM SmolLM2 and hard prompts, zero-shot and few-shot, scoring each label
#    word's log-probability; search a generated space of templates × verbalizers on validation data, and see on
#    test what choosing the best of many noisy validation scores does (the **winner's curse**); and compare the
#    base SmolLM2 with notebook 05's domain-adapted one on the test split, with paired intervals on macro-F1;
# 2. wrap the MiniLM encoder with `peft` yourself (`get_peft_model` with prompt tuning, prefix tuning and
#    p-tuning), see what each adds, derive its trainable parameters by hand, and rebuild prompt tuning's input by
#    hand;
# 3. write LoRA (W' = W + (α/r)·B·A) as a small module on one attention projection and check it against peft's
#    LoRA layer and its merged weights;
# 4. train two soft prompts for two tasks on **one** frozen encoder with the course's training loop, swap them at
#    inference, check that each trained, and predict, then measure, what a task costs on disk against a fully
#    fine-tuned copy;
# 5. read the strategy sweep's comparison of the soft prompts (prompt tuning from random and from text
#    initialisation, p-tuning, prefix tuning) with full fine-tuning and LoRA under the course's protocol: each
#    method at its own learning rate chosen on validation, the protocol's seeds, paired 95 % intervals, did it
#    train, did it converge, and what it costs;
# 6. put hard prompts and trained methods in one table and read the capacity gap from the intervals.
#
# **Before you start:** notebooks 01 (a causal LM's next-token log-probabilities), 05 (the adapted SmolLM2),
# 06 (the protocol, macro-F1, the majority baseline, the did-it-train check, paired intervals) and 07 (freezing,
# `requires_grad`, parameter counts, reading the sweep). **Study time** for a person: about 90 minutes, reading,
# running and doing the exercises.
#
# **Machine time** on 2 idle CPU cores (kernel start and model loading included) is printed by the last cell and
# kept in the result JSON (`seconds`, and `section_seconds` per section; BENCHMARKS.md lists every notebook's);
# `smoke` runs in seconds. The soft-prompt comparison comes from the strategy sweep (`make rates`, `make sweep`;
# their times are in `sweeps/README.md`): this notebook trains only the two task prompts of section 4.

# %%
import copy
import tempfile
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import matplotlib.pyplot as plt
import pandas as pd
import torch
from peft import (LoraConfig, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig, TaskType,
                  get_peft_model)
from safetensors.torch import save_file
from torch import nn

import companion as cc
from companion.checks.n08 import check_majority_f1, check_prompt_params, check_storage_ratio, check_word_logprob
from companion.core.data import load_text_classification, load_wikitext2
from companion.core.device import training_precision
from companion.core.stats import Interval, bootstrap_score, compare, macro_f1, paired_bootstrap
from companion.engine.comparison import convergence, pair, paired_against, summarise, sweep_for
from companion.engine.finetune import subset
from companion.engine.metrics import classification_metrics, majority_baseline
from companion.engine.strategies import rate_for
from companion.lessons.n05_adaptation import adapted_smollm2
from companion.lessons.n08_hard_prompts import (admissible, build_prompt, domain_words,
                                               first_token_ids, hard_prompt_eval, next_token_logprobs,
                                               pick_demos, scoring_precision, search_spread, shorten,
                                               template_search, template_space, verbalizer_sets, winners_curse)
from companion.lessons.n08_soft_prompts import (TaskPrompt, domain_identification, evaluate_task_prompt,
                                               folder_bytes, rate_search_table, save_quietly, train_task_prompt)

# transformers 5 renamed a method that peft 0.21 still calls; the notice says nothing about this notebook
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed (validation sample, demonstrations, task prompts, bootstrap)
precision: str = "auto"  # one of: auto, fp32, bf16; scoring and training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "minilm"  # encoder for soft prompts: embedded name, local folder or Hugging Face id
lm_name: str = "smollm2"  # causal LM for hard prompts: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
num_virtual_tokens: int = 20  # range: [1, inf); soft prompt length (virtual tokens) in sections 2 and 4
shots_per_class: int = 1  # range: [0, inf); demonstrations per class in the few-shot prompt
max_length: Optional[int] = None  # range: [2, inf); tokens kept from each text in sections 2-4; None means the protocol's
report_csv: str = "../sweeps/results/strategies-cpu.csv"  # the strategy sweep's runs (make sweep)
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the strategy sweep's validation-only rate search (make rates)

# %%
cc.check_values("08", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
protocol = cc.protocol(PROFILE, max_length=max_length, precision=precision)
scoring = training_precision(protocol.precision, PROFILE, device)  # bf16 or fp32: hard-prompt scoring, section 4
cfg = cc.settings(PROFILE, {  # what this notebook does beyond the protocol
    "smoke": {"search_val": 6, "top": 3, "words": 12, "demo_words": 6, "domain_per_class": 16,
              "domain_test_per_class": 8, "task_steps": 30, "task_max_length": None},
    "cpu": {"search_val": 64, "top": 5, "words": 20, "demo_words": 10, "domain_per_class": 64,
            "domain_test_per_class": 100, "task_steps": 80, "task_max_length": 64},
    "gpu": {"search_val": 200, "top": 8, "words": 48, "demo_words": 24, "domain_per_class": 500,
            "domain_test_per_class": 300, "task_steps": None, "task_max_length": None},
})
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
label_names = dataset["train"].features["label"].names
num_labels = len(label_names)
noun = "abstract" if data == "medical_abstracts" else "text"  # what the printed sentences call one example
n_test = len(dataset["test"]) if protocol.eval_size is None else min(protocol.eval_size, len(dataset["test"]))
test_split = dataset["test"].select(range(n_test))  # the test texts every run of the protocol is scored on
majority = majority_baseline(dataset["train"]["label"], test_split["label"])
print("profile:", PROFILE, "| device:", device.type, f"| {num_labels} classes: {', '.join(label_names)}")
print(protocol.describe())
if max_length is not None:
    print(f"this run deviates from the protocol: max_length {max_length} (sections 2-4; section 5 reads the sweep)")
print(f"test texts scored: {n_test} of {len(dataset['test'])}; majority class on them: macro-F1 "
      f"{majority['macro_f1']:.3f}, accuracy {majority['accuracy']:.3f}")
sweep_runs, why_not = sweep_for(report_csv, data)  # runs on this data under today's protocol of their profile
if sweep_runs is None:
    decided = Path("runs") / "decide" / Path(data).stem  # where `make decide` writes its reports
    print(f"{why_not}: sections 5 and 6 skip the trained methods. Get one for your "
          f"data with `make decide DATA={data} TEXT={text_column} LABEL={label_column}` (the rate search and the "
          f"sweep, from the project's folder) and pass its reports here: -p report_csv "
          f"{decided / 'strategies' / 'report.csv'} -p rates_csv {decided / 'rates.csv'}")
seconds = {}  # wall time of each section, for the machine-time budget
pd.Series(cfg, name="setting", dtype=object).to_frame()

# %% [markdown]
# ## 1. Hard prompts with a causal LM
#
# A template turns a text into a prompt whose natural continuation is the class; a **verbalizer** names each
# class with one word. The model's next-token distribution then scores each class:
# $\text{score}(c) = \log P(\text{word}_c \mid \text{prompt})$. We take the log-probability of the word's
# **first token**: one forward pass gives the whole next-token distribution, so it scores every class, and every
# verbalizer, at once (for a one-token word it is the word's exact log-probability; a verbalizer whose words
# start with the same token cannot be used and is left out). Scoring runs in the precision the profile trains in
# (`scoring`, printed at the top), passed explicitly. We check this against the logits by hand:

# %%
section = time.perf_counter()
lm_tokenizer = cc.load_tokenizer(lm_name)
lm = cc.load_model(lm_name, "causal-lm").to(device)
own_words = domain_words(label_names)  # the data's own hand-chosen words, if it has them
verbalizers = admissible(lm_tokenizer, verbalizer_sets(label_names, {"domain words": own_words} if own_words else None))
templates = template_space(label_names, noun="Abstract" if data == "medical_abstracts" else None)
template, verbalizer = next(iter(templates.values())), next(iter(verbalizers.values()))
example = dataset["validation"][0]
prompt = build_prompt(template, example["text"], words=cfg["words"])
print(prompt, "\n")
word_ids = first_token_ids(lm_tokenizer, verbalizer)
scores = next_token_logprobs(lm, lm_tokenizer, [prompt], word_ids, precision=scoring)[0]
with torch.inference_mode(), scoring_precision(device, scoring):  # the same precision as the companion's scoring
    by_hand_logp = lm(**lm_tokenizer(prompt, return_tensors="pt").to(device)).logits[0, -1].float().log_softmax(-1)
print(f"scoring precision {scoring} · max |companion − by hand| =",
      f"{(scores - by_hand_logp[word_ids].cpu()).abs().max():.1e}")
pd.DataFrame({"word": verbalizer, "first token": [lm_tokenizer.decode([i]) for i in word_ids],
              "log P": scores.numpy().round(3), "class": label_names,
              "true": [i == example["label"] for i in range(num_labels)]})

# %% [markdown]
# **Automatic template search.** The wording matters a lot for a small model, so we do not guess it: the
# companion *generates* a space of templates (every framing of the text × every wording of the question, one of
# which lists the data's label names) and of verbalizers (derived from the label names: their first, last or
# longest word, lower-cased, or the first word capitalised; plus the data's own words where it has them), and
# scores every combination on a fixed, seeded sample of the **validation** split, never on test:

# %%
print(f"{len(templates)} templates × {len(verbalizers)} verbalizers = {len(templates) * len(verbalizers)} "
      f"combinations")
print("\n\n".join(f"[{name}]\n{t.format(text='…')}" for name, t in list(templates.items())[:4]), "\n…")
pd.DataFrame(verbalizers, index=label_names)

# %%
val = dataset["validation"].shuffle(seed=seed).select(range(min(cfg["search_val"], len(dataset["validation"]))))
search_start = time.perf_counter()
search = template_search(lm, lm_tokenizer, val["text"], val["label"], templates, verbalizers, words=cfg["words"],
                         progress=True, precision=scoring)
search_seconds = time.perf_counter() - search_start
spread = search_spread(search)
best_template, best_verbalizer = search.loc[0, "template"], search.loc[0, "verbalizer"]
majority_val = majority_baseline(dataset["train"]["label"], val["label"])["macro_f1"]
fig, ax = plt.subplots(figsize=(8, 3.2))
ranked = search.reset_index()
for name, part in ranked.groupby("verbalizer", sort=False):
    ax.scatter(part["index"] + 1, part["macro_f1"], s=14, label=name)
ax.axhline(spread["median"], color="grey", lw=1, ls=":", label=f"median {spread['median']:.3f}")
ax.axhline(majority_val, color="black", lw=1, ls="--", label=f"majority class {majority_val:.3f}")
ax.set(xlabel="combination, best first", ylabel="validation macro-F1",
       title=f"{spread['combinations']} templates × verbalizers on {len(val)} validation {noun}s")
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
plt.tight_layout()
plt.show()
print(f"{len(templates) * len(val)} forward passes (one per template and {noun}) in {search_seconds:.1f} s")
print(f"validation macro-F1 over the space: best {spread['best']:.3f} · median {spread['median']:.3f} · "
      f"worst {spread['worst']:.3f} (majority class {majority_val:.3f})")
print(f"chosen on validation: template [{best_template}] with verbalizer [{best_verbalizer}]: "
      f"{', '.join(verbalizers[best_verbalizer])}")
search.head(8).round(3)

# %% [markdown]
# **The winner's curse.** Each validation score above is measured on a small sample of texts, so it is the
# combination's true quality plus noise. Picking the **maximum** of many such scores picks quality *and* luck:
# the winner is, more often than not, a combination whose sample happened to suit it, so its validation score is
# biased upward, and the more combinations compete and the fewer texts score them, the larger the bias. On new
# texts the luck does not come back and the score falls towards its true value: **regression to the mean**. To
# see it, we score the chosen combination's predictions with a bootstrap interval over its validation texts, and
# score the best few validation combinations on the test texts too (this is for reading only: the choice stays
# the validation winner). A drop shared by all of the leaders has two readings: the curse, or a validation sample
# that is simply easier than the test one; the curse predicts that the *winner* drops most and loses its rank,
# an easier validation sample predicts a uniform drop, so read the per-combination drops and ranks below:

# %%
top = min(cfg["top"], len(search))
leaders = search.head(top)
test_table = template_search(lm, lm_tokenizer, test_split["text"], test_split["label"],
                             {t: templates[t] for t in leaders["template"].unique()},
                             {v: verbalizers[v] for v in leaders["verbalizer"].unique()}, words=cfg["words"],
                             precision=scoring)
curse = winners_curse(search, test_table, top)
chosen_template, chosen_words = templates[best_template], verbalizers[best_verbalizer]
chosen_val = hard_prompt_eval(lm, lm_tokenizer, val["text"], val["label"], chosen_template, chosen_words,
                              words=cfg["words"], precision=scoring)
val_interval = bootstrap_score(val["label"], chosen_val["preds"], seed=seed)
chosen_test = float(curse.loc[0, "test"])
drop = curse["test − validation"]
fig, ax = plt.subplots(figsize=(4.6, 4.2))
ax.scatter(curse["validation"], curse["test"], color="tab:blue")
ax.scatter(curse.loc[:0, "validation"], curse.loc[:0, "test"], color="tab:red", label="chosen on validation")
low, high = min(curse[["validation", "test"]].min()) - 0.02, max(curse[["validation", "test"]].max()) + 0.02
ax.plot([low, high], [low, high], color="grey", lw=1, ls=":", label="test = validation")
ax.set(xlabel=f"validation macro-F1 ({len(val)} {noun}s)", ylabel=f"test macro-F1 ({n_test} {noun}s)",
       title=f"The {top} best validation combinations on test")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
print(f"validation score reproduced by a separate run of the chosen combination: "
      f"{abs(chosen_val['macro_f1'] - search.loc[0, 'macro_f1']) < 1e-9}")
print(f"chosen combination: validation macro-F1 {search.loc[0, 'macro_f1']:.3f} (95 % bootstrap interval over its "
      f"{len(val)} texts {val_interval.low:.3f} to {val_interval.high:.3f}) · test macro-F1 {chosen_test:.3f} on "
      f"{n_test} {noun}s: {'lower' if chosen_test < search.loc[0, 'macro_f1'] else 'not lower'} on test")
print(f"the {top} best of {spread['combinations']} on validation: mean {curse['validation'].mean():.3f} there, "
      f"{curse['test'].mean():.3f} on test; {int((drop < 0).sum())} of {top} score lower on test; the validation "
      f"winner ranks {int(curse.loc[0, 'test rank'])} of {top} on test")
print("reading: " + ("the leaders fell back on test, as the winner's curse predicts: their validation scores held "
                     "luck as well as quality" if drop.mean() < 0 else
                     "the leaders held up on test this time: no winner's curse shows at this sample size"))
curse.round(3)

# %% [markdown]
# **Zero-shot vs few-shot, base vs adapted LM**, on the **whole test split** (the split every trained model of
# 06–09 is scored on; the `smoke` profile scores its first few texts, as its protocol does), with the template and
# verbalizer chosen above (on validation, with the base model). Few-shot puts `shots_per_class` solved examples of
# every class before the question (in-context learning, no training); the demonstrations are the same for every
# question, so their keys and values are computed once and reused. Both see the same `words` words of each test
# text; each demonstration is shortened to `demo_words` words. The **adapted** model is notebook 05's SmolLM2
# after continued pretraining on this data's training texts (`companion.lessons.n05_adaptation.adapted_smollm2`
# builds it once and caches it).

# %%
picked = pick_demos(dataset["train"]["text"], dataset["train"]["label"], chosen_words, shots_per_class, seed)
demos = [(shorten(text, cfg["demo_words"]), word) for text, word in picked]
adapted_folder = adapted_smollm2(PROFILE, data, model_name=lm_name, seed=seed, precision=precision,
                                 text_column=text_column, label_column=label_column, progress=False)
adapted_lm = cc.load_model(str(adapted_folder), "causal-lm").to(device)
hard_runs = {}
for lm_label, model in (("base", lm), ("adapted", adapted_lm)):
    for shots, shown in (("zero-shot", ()), ("few-shot", demos)):
        hard_runs[lm_label, shots] = hard_prompt_eval(model, lm_tokenizer, test_split["text"], test_split["label"],
                                                      chosen_template, chosen_words, shown, words=cfg["words"],
                                                      progress=True, precision=scoring)
hard_ci = {key: bootstrap_score(test_split["label"], run["preds"], seed=seed) for key, run in hard_runs.items()}
hard = pd.DataFrame([{"LM": m, "prompt": s, "macro_f1": r["macro_f1"], "95 % low": hard_ci[m, s].low,
                      "95 % high": hard_ci[m, s].high, "accuracy": r["accuracy"],
                      "classes predicted": len(set(r["preds"])), "seconds": r["seconds"]}
                     for (m, s), r in hard_runs.items()])
print(f"{n_test} of {len(dataset['test'])} test {noun}s; each question shows {cfg['words']} words, each of the "
      f"{len(demos)} demonstrations {cfg['demo_words']}; intervals: bootstrap over the test {noun}s (one run each)")
print(f"majority class: macro-F1 {majority['macro_f1']:.3f}, accuracy {majority['accuracy']:.3f}")
print("base zero-shot here = the chosen combination's test score above:",
      abs(hard_runs["base", "zero-shot"]["macro_f1"] - chosen_test) < 1e-9)
hard.round(3)

# %% [markdown]
# Which differences are more than noise? Each pair below was scored on the same test texts, so the difference in
# **macro-F1** (the table's metric) is a paired one: a **paired bootstrap** resamples the test texts with
# replacement, scores both prompts on each resample and reads the spread of the difference (notebook 06). Macro-F1
# is recomputed on every resample, so the bootstrap uses a fast numpy version of it, checked here against the
# engine's. The sentences are chosen by the intervals:

# %%
fast_vs_engine = max(abs(macro_f1(test_split["label"], r["preds"])
                         - classification_metrics(test_split["label"], r["preds"])["macro_f1"])
                     for r in hard_runs.values())
print(f"max |fast macro-F1 − classification_metrics| over the four runs: {fast_vs_engine:.1e}")
hard_differences = {  # key: (context, name a, name b, (LM, prompt) of a, (LM, prompt) of b)
    "adapted_minus_base_zero_shot": ("zero-shot", "adapted LM", "base LM", ("adapted", "zero-shot"),
                                     ("base", "zero-shot")),
    "adapted_minus_base_few_shot": ("few-shot", "adapted LM", "base LM", ("adapted", "few-shot"), ("base", "few-shot")),
    "few_minus_zero_shot_base": ("base LM", "few-shot", "zero-shot", ("base", "few-shot"), ("base", "zero-shot")),
    "few_minus_zero_shot_adapted": ("adapted LM", "few-shot", "zero-shot", ("adapted", "few-shot"),
                                    ("adapted", "zero-shot")),
}
hard_intervals, hard_sentences = {}, {}
for key, (context, a, b, run_a, run_b) in hard_differences.items():
    hard_intervals[key] = paired_bootstrap(test_split["label"], hard_runs[run_a]["preds"], hard_runs[run_b]["preds"],
                                           macro_f1, seed=seed)
    hard_sentences[key] = f"{context}: " + compare(a, b, hard_intervals[key], what=f"macro-F1 on {n_test} test {noun}s")
    print(hard_sentences[key])
seconds["hard prompts"] = time.perf_counter() - section
section = time.perf_counter()  # the next sections' clock

# %% [markdown]
# The result swings with the wording (the spread above) and with the demonstrations; section 6 puts these numbers
# beside the trained methods.
#
# ## 2. What `peft` adds to a model
#
# `peft` wraps a model: `get_peft_model(model, config)` freezes every weight of the model and adds the method's
# own trainable parameters. **Prompt tuning** (Lester et al. 2021) adds a table of `num_virtual_tokens` input
# vectors, prepended to the word embeddings; **p-tuning** (Liu et al. 2021) produces those vectors with a small
# MLP; **prefix tuning** (Li & Liang 2021) adds a key and a value vector per virtual token to *every* layer's
# attention. For classification peft also trains the new head (a copy of `classifier`, in `modules_to_save`).
# Here are the three wraps, and every parameter that trains in each:

# %%
# NBVAL_CHECK_OUTPUT
n_virtual = num_virtual_tokens
configs = {
    "prompt tuning": PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n_virtual),
    "prefix tuning": PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n_virtual),
    "p-tuning": PromptEncoderConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=n_virtual, encoder_hidden_size=128),
}
wrapped = {name: get_peft_model(cc.load_model(model_name, "classifier", num_labels=num_labels), config)
           for name, config in configs.items()}
for name, peft_model in wrapped.items():
    print(f"{name}: {type(peft_model).__name__} trains")
    for pname, p in peft_model.named_parameters():
        if p.requires_grad:
            print(f"    {pname:55s} {tuple(p.shape)}")

# %% [markdown]
# The virtual-token table of prompt tuning is `(num_virtual_tokens, hidden size)`; prefix tuning's is
# `(num_virtual_tokens, 2 × layers × hidden size)`, one key and one value per layer, reshaped into each layer's
# attention cache; p-tuning's table feeds a three-layer MLP (hidden size → 128 → 128 → hidden size). So the
# trainable counts follow from the sizes:

# %%
# NBVAL_CHECK_OUTPUT
mc = wrapped["prompt tuning"].get_base_model().config
d, n_layers, h = mc.hidden_size, mc.num_hidden_layers, 128
head_params = d * num_labels + num_labels                               # the classifier peft trains too
by_hand = {"prompt tuning": n_virtual * d + head_params,
           "prefix tuning": n_virtual * 2 * n_layers * d + head_params,
           "p-tuning": n_virtual * d + (d * h + h) + (h * h + h) + (h * d + d) + head_params}
for name, peft_model in wrapped.items():
    trainable, total = peft_model.get_nb_trainable_parameters()
    print(f"{name:14s} by hand {by_hand[name]:>8,} · peft's count {trainable:>8,} · equal: {by_hand[name] == trainable}")

# %% [markdown]
# **Prompt tuning by hand.** The wrapped model looks up the word embeddings, puts the virtual-token table in
# front, extends the attention mask with ones (and the token types with zeros) and runs the unchanged encoder.
# Note what this means for a BERT classifier: its pooler reads position 0, which is now the first virtual
# token, not `[CLS]`.

# %%
soft_model = wrapped["prompt tuning"].eval()
inner = soft_model.get_base_model()                      # the frozen classifier inside the wrapper
tokenizer = cc.load_tokenizer(model_name)
texts = list(dataset["validation"]["text"][:4])
batch = tokenizer(texts, truncation=True, max_length=protocol.max_length, padding=True, return_tensors="pt")
with torch.no_grad():
    by_peft = soft_model(**batch).logits
    prompt_table = soft_model.prompt_encoder["default"].embedding.weight          # (n_virtual, d)
    word_vectors = inner.base_model.embeddings.word_embeddings(batch["input_ids"]) # (batch, tokens, d)
    ones = torch.ones(len(texts), n_virtual, dtype=batch["attention_mask"].dtype)
    extra = {"token_type_ids": torch.cat([torch.zeros_like(ones), batch["token_type_ids"]], 1)} \
        if "token_type_ids" in batch else {}
    by_hand_logits = inner(inputs_embeds=torch.cat([prompt_table.expand(len(texts), -1, -1), word_vectors], 1),
                          attention_mask=torch.cat([ones, batch["attention_mask"]], 1), **extra).logits
print("prompt table:", tuple(prompt_table.shape), "· input with the prompt:",
      (len(texts), n_virtual + word_vectors.shape[1], d))

# %%
# NBVAL_CHECK_OUTPUT
print("prompt prepended by hand == peft's forward (max |diff| < 1e-5):",
      (by_hand_logits - by_peft).abs().max().item() < 1e-5)

# %% [markdown]
# ## 3. LoRA, written by hand
#
# LoRA (Hu et al. 2021) leaves a weight matrix W (d_out × d_in) frozen and learns a low-rank update:
# W' = W + (α/r)·B·A, with A (r × d_in) and B (d_out × r). A starts random and B at zero, so W' = W at the
# start; only A and B train: r·(d_in + d_out) numbers per adapted matrix, 2·r·d for a square d × d one, instead
# of d_in·d_out. Here it is as a module wrapping one `nn.Linear`:

# %%
class LoRALinear(nn.Module):
    """y = W x + b + (alpha / r) · B A x: a frozen linear layer plus a trainable rank-r update."""

    def __init__(self, base: nn.Linear, r: int, alpha: float):
        super().__init__()
        self.base = base.requires_grad_(False)
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.A, a=5 ** 0.5)                   # A random (as peft does) …
        self.B = nn.Parameter(torch.zeros(base.out_features, r))       # … B zero: W' = W at the start
        self.scaling = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * (x @ self.A.T @ self.B.T)


# %% [markdown]
# We put it on ONE projection, the query of layer 0, and give peft the same job: `LoraConfig` with
# `target_modules=["query"]` and `layers_to_transform=[0]`. Then we copy our A and B into peft's `lora_A` and
# `lora_B`. With B = 0 every comparison would hold trivially, so we first move B as training would.

# %%
rank, alpha = 4, 8
torch.manual_seed(seed)
plain = cc.load_model(model_name, "classifier", num_labels=num_labels)
hand = copy.deepcopy(plain)
attention0 = hand.base_model.encoder.layer[0].attention.self
attention0.query = LoRALinear(attention0.query, rank, alpha)
hand.requires_grad_(False)
attention0.query.A.requires_grad_(True)
attention0.query.B.requires_grad_(True)
with torch.no_grad():
    attention0.query.B.normal_(std=0.02)                               # as if training had moved B
lora_model = get_peft_model(copy.deepcopy(plain), LoraConfig(task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=alpha,
                                                             lora_dropout=0.0, target_modules=["query"],
                                                             layers_to_transform=[0])).eval()
lora_count = lora_model.get_nb_trainable_parameters()[0]             # before merging: LoRA's A, B and the head
peft_query = lora_model.get_base_model().base_model.encoder.layer[0].attention.self.query
print(type(peft_query).__module__ + "." + type(peft_query).__name__, "· scaling", peft_query.scaling["default"])
with torch.no_grad():
    peft_query.lora_A["default"].weight.copy_(attention0.query.A)
    peft_query.lora_B["default"].weight.copy_(attention0.query.B)
    x = hand.base_model.embeddings(input_ids=batch["input_ids"])       # a real input of layer 0
    layer_diff = (attention0.query(x) - peft_query(x)).abs().max().item()
    hand_logits = hand.eval()(**batch).logits
    model_diff = (hand_logits - lora_model(**batch).logits).abs().max().item()
    merged = lora_model.merge_and_unload()                             # W' = W + (α/r)·B·A written into W
    merged_query = merged.base_model.encoder.layer[0].attention.self.query
    w_prime = attention0.query.base.weight + attention0.query.scaling * attention0.query.B @ attention0.query.A
    weight_diff = (merged_query.weight - w_prime).abs().max().item()
    merged_diff = (merged(**batch).logits - hand_logits).abs().max().item()
d_in, d_out = attention0.query.base.in_features, attention0.query.base.out_features
lora_by_hand = rank * (d_in + d_out)
print(type(merged_query).__name__, "after merge_and_unload: a plain layer again")

# %%
# NBVAL_CHECK_OUTPUT
print("hand LoRA layer == peft's LoRA layer (max |diff| < 1e-5):", layer_diff < 1e-5)
print("whole classifier, hand vs peft (max |diff| < 1e-5):", model_diff < 1e-5)
print("merged weight == W + (α/r)·B·A (max |diff| < 1e-5):", weight_diff < 1e-5)
print("merge_and_unload() model == hand model (max |diff| < 1e-5):", merged_diff < 1e-5)
print(f"LoRA parameters by hand: r·(d_in + d_out) = {rank}·({d_in} + {d_out}) = {lora_by_hand:,} (= 2·r·d)")
print("= trainable in the hand module:", sum(p.numel() for p in hand.parameters() if p.requires_grad) == lora_by_hand)
print("= peft's count minus the head:", lora_count - head_params == lora_by_hand)

# %%
print(f"max |diff|: layer {layer_diff:.1e} · model {model_diff:.1e} · merged weight {weight_diff:.1e} · "
      f"merged model {merged_diff:.1e}")

# %% [markdown]
# The full query matrix has d_in·d_out numbers; LoRA's update has r·(d_in + d_out), a share of
# r·(d_in + d_out)/(d_in·d_out). Merged, it costs nothing at inference: the layer is a plain `nn.Linear` again.
#
# ## 4. One frozen model, many tasks
#
# The source text's argument for prompts: the model stays untouched, so **one** copy of it can serve many tasks,
# each bringing only its prompt. Here are two tasks on the same frozen MiniLM encoder: the **topic** (the classes
# of this notebook's data, medical abstracts by default) and **domain identification**, a text of this data vs
# general English (WikiText-2 paragraphs), built below. peft keeps one prompt table per adapter on the same wrapped
# model; `set_adapter` switches between them. Each task reads the `[CLS]` position (right after the virtual tokens)
# with its own small linear head. `TaskPrompt(model, adapter, head)` makes one task look like a classifier, so the
# course's one training loop (notebook 06) trains it, with a `TrainConfig` from the protocol; the next cell prints
# what it keeps of the protocol and where it deviates.

# %%
soft_data = subset(dataset, protocol.train_size, seed)  # the protocol's training sample for this seed
wiki = load_wikitext2("paragraph")
domain_train = domain_identification(soft_data["train"]["text"], wiki["validation"]["text"],
                                     min(cfg["domain_per_class"], len(soft_data["train"])), seed=seed,
                                     words=cfg["words"] * 2)
domain_test = domain_identification(test_split["text"], wiki["test"]["text"],
                                    min(cfg["domain_test_per_class"], n_test), seed=seed, words=cfg["words"] * 2)
tasks = {"topic": {"train": (list(soft_data["train"]["text"]), list(soft_data["train"]["label"])),
                   "test": (list(test_split["text"]), list(test_split["label"])), "classes": num_labels},
         "domain": {"train": domain_train, "test": domain_test, "classes": 2}}
task_lr, lr_source = rate_for(Path(rates_csv), "prompt_tuning", "prompt_tuning", PROFILE, data)
lr_chosen = lr_source.startswith("chosen on validation")
task_length = cfg["task_max_length"] if max_length is None and cfg["task_max_length"] else protocol.max_length
steps = {name: cfg["task_steps"] for name in tasks}  # None: the protocol's epoch cap
configs_4 = {name: protocol.config(task_lr, seed, len(t["train"][0]), progress=False,
                                   **({"epochs": None, "max_steps": steps[name]} if steps[name] else {}))
             for name, t in tasks.items()}
print({name: {"train": len(t["train"][0]), "test": len(t["test"][0]), "classes": t["classes"]}
       for name, t in tasks.items()})
print(f"learning rate {task_lr:.3g}: " + ("the rate the sweep's validation search chose for prompt tuning (random "
                                          "init) on this data's topic task" if lr_chosen else
                                          "prompt tuning's default rate for this profile, NOT chosen on validation "
                                          "(no rate search of this data at rates_csv)"))
print(f"kept from the protocol: the topic's training sample ({len(soft_data['train'])} texts), "
      f"{protocol.truncation} truncation, batch {protocol.batch_size}, {protocol.class_weights} class weights, "
      f"{configs_4['topic'].mixed_precision} precision")
deviations_4 = ["no validation scoring and no early stopping: the domain task has no validation split, so both "
                "tasks train for their whole step budget"]
if cfg["task_steps"]:
    deviations_4.append(f"{cfg['task_steps']} steps per task instead of the epoch cap (topic: "
                        f"{protocol.epochs(len(soft_data['train']))} epochs, at least {protocol.min_steps} steps)")
if task_length != protocol.max_length:
    deviations_4.append(f"{task_length} tokens per text instead of {protocol.max_length}")
print("deviations, to fit the notebook's time budget (this section shows one encoder serving two tasks; the "
      "comparison of methods is section 5's, under the full protocol):\n  - " + "\n  - ".join(deviations_4))

# %%
backbone = cc.load_model(model_name, "encoder")
before = {name: w.clone() for name, w in backbone.state_dict().items()}
task_config = PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=n_virtual)
shared = get_peft_model(backbone, task_config, adapter_name="topic")   # the first task's prompt table …
shared.add_adapter("domain", task_config)                              # … and the second's, same backbone
torch.manual_seed(seed)
heads = {name: nn.Linear(d, t["classes"]) for name, t in tasks.items()}
task_prompts = {name: TaskPrompt(shared, name, heads[name]) for name in tasks}
task_scores, task_checks, task_losses = {}, {}, {}
for name, t in tasks.items():
    task_losses[name] = train_task_prompt(task_prompts[name], tokenizer, *t["train"], configs_4[name],
                                          max_length=task_length, truncation=protocol.truncation)
    task_scores[name] = evaluate_task_prompt(task_prompts[name], tokenizer, *t["test"], max_length=task_length,
                                             truncation=protocol.truncation)
    task_checks[name] = cc.training_check(f"{name} task prompt", t["test"][1], task_scores[name]["preds"],
                                          t["train"][1])
    print(f"{name}: {len(task_losses[name])} steps, loss {task_losses[name][0]:.3f} → {task_losses[name][-1]:.3f} · "
          f"test macro-F1 {task_scores[name]['macro_f1']:.3f}")
    print("  " + task_checks[name].line())

# %% [markdown]
# At inference the same object serves both tasks: `set_adapter` swaps the prompt table, and the task's head
# reads the result. The backbone's weights must not have moved:

# %%
# NBVAL_CHECK_OUTPUT
print("one backbone object for both tasks:", shared.get_base_model() is backbone)
print("prompt tables:", {name: tuple(shared.prompt_encoder[name].embedding.weight.shape) for name in tasks})
print("backbone weights unchanged by training both tasks:",
      all(torch.equal(before[name], w) for name, w in backbone.state_dict().items()))
again = {name: evaluate_task_prompt(task_prompts[name], tokenizer,  # swap in the other order, first 64 texts
                                    *(column[:64] for column in tasks[name]["test"]), max_length=task_length,
                                    truncation=protocol.truncation)
         for name in ["domain", "topic"]}
print("swapping back and forth gives the same predictions:",
      all(again[name]["preds"] == task_scores[name]["preds"][:64] for name in tasks))

# %% [markdown]
# **Exercise 1 (predict, then measure).** What does one task cost on disk? Before running the next cells,
# predict how many times larger a fully fine-tuned copy of the classifier (all its weights, float32) is than the
# topic task's saved prompt table and head.

# %%
predicted_ratio = None  # your prediction: full copy bytes / topic task bytes

# %%
with tempfile.TemporaryDirectory() as folder:
    save_quietly(shared, folder)                                       # save_pretrained: a sub-folder per adapter
    for name, task_head in heads.items():
        save_file(task_head.state_dict(), str(Path(folder) / name / "head.safetensors"))
    task_bytes = {name: folder_bytes(Path(folder) / name) for name in tasks}
    full_copy = cc.load_model(model_name, "classifier", num_labels=num_labels)
    full_bytes = save_quietly(full_copy, Path(folder) / "full")        # what full fine-tuning stores per task
storage = pd.DataFrame([{"stored per task": f"{name} prompt + head", "bytes": b} for name, b in task_bytes.items()]
                       + [{"stored per task": "fully fine-tuned copy", "bytes": full_bytes}])
storage["× smaller than a full copy"] = (full_bytes / storage["bytes"]).round(0).astype(int)
storage

# %%
check_storage_ratio(predicted_ratio, full_bytes, task_bytes["topic"], n_virtual * d, d * num_labels + num_labels)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count the numbers each stores (4 bytes each); the full copy is every weight of the classifier
predicted_ratio = cc.count_parameters(full_copy)["total"] / (n_virtual * d + d * num_labels + num_labels)
check_storage_ratio(predicted_ratio, full_bytes, task_bytes["topic"], n_virtual * d, d * num_labels + num_labels)

# %% [markdown]
# ## 5. Soft prompts for the topic: the comparison under the protocol
#
# The wraps of section 2, trained on the topic task, like for like: the strategy sweep trained each method under
# the course's protocol (notebook 06: the same training texts, length, batch size, epoch cap, early stopping and
# class weighting) over the protocol's seeds, and scored the test split once per run. All encoder weights stay
# frozen for the soft prompts, so a task's state is tiny and the encoder's behaviour on other inputs cannot change
# (no forgetting by construction). Text initialisation starts the prompt table from the embeddings of a task
# description instead of random vectors. Full fine-tuning and LoRA stand beside them as references. The tables
# below show every method the sweep ran (a sweep of your own data with fewer `SETTINGS` shows fewer).
#
# **Learning rates, chosen on validation.** The literature trains soft prompts at far larger rates than full
# fine-tuning: Lester et al. use 0.3; peft's examples use 1e-3 (p-tuning) to 1e-2 (prefix); full fine-tuning ~5e-5.
# With a full fine-tuning rate a soft prompt barely moves and the model ends up predicting the majority class (peft
# issue 2642). So no rate is shared: the sweep's rate search gave every method its own, chosen on **validation**
# macro-F1 at a seed the comparison never scores, starting from three rates spaced ×3 around the method's default
# and extended while the best one sat at an edge. A best rate inside the rates tried is **bracketed**; one at an
# edge is flagged, since the method's optimum may lie beyond it:

# %%
SOFT = {"prompt_tuning": "prompt tuning, random init", "prompt_tuning_text": "prompt tuning, text init",
        "p_tuning": "p-tuning", "prefix_tuning": "prefix tuning"}
METHODS = {"full": "full fine-tuning", "lora": "LoRA", **SOFT}  # sweep setting: name in this notebook
rates_08 = None
if sweep_runs is not None:
    if Path(rates_csv).is_file():
        rates_08 = rate_search_table(pd.read_csv(rates_csv), list(METHODS), data).rename(index=METHODS)
    if rates_08 is None or rates_08.empty:
        print(f"no rate search of {data!r} at {rates_csv}: the chosen rates cannot be shown (make rates, or pass "
              f"-p rates_csv)")
        rates_08 = None
    else:
        print("learning rate → validation macro-F1 at the selection seed (✓ chosen); every best rate bracketed:",
              bool((rates_08["position"] == "interior").all()))
        for name, row in rates_08[rates_08["position"] != "interior"].iterrows():
            print(f"⚠ {name}: the best rate is the {row['position']} of the {row['tried']} tried; the search ended "
                  f"at an edge, so this method's optimum may lie beyond it")
with pd.option_context("display.max_colwidth", None):  # every candidate visible, the chosen one marked
    display(rates_08)

# %% [markdown]
# **The comparison.** Per method: the chosen rate, test macro-F1 as the mean over the seeds with its 95 %
# interval (Student t over the seeds), the paired difference to full fine-tuning on the same seeds, and the costs
# (trainable parameters and the memory training added; time per step is left out, since the sweep's runs met
# different machine load: notebook 09 compares times measured in one process). **Did it train?** Every soft-prompt
# run must predict more than one class and beat the majority class (and random guessing): the sweep records the
# did-it-train check of every run, and a method that collapsed at some seed is flagged with ❌. **Did it
# converge?** The share of seeds that early stopping ended before the epoch cap; a method that hit the cap in most
# seeds was still improving, so its score is a floor at this budget, not its level.

# %%
sweep_08, comparison_08, reading_08, did_not_train = None, None, [], []
if sweep_runs is not None:
    sweep_08 = sweep_runs[sweep_runs["setting"].isin(METHODS)]
    summary_08 = summarise(sweep_08).join(convergence(sweep_08))
    summary_08 = summary_08.loc[[s for s in METHODS if s in summary_08.index]]
    to_full = paired_against(sweep_08, "full") if "full" in summary_08.index else pd.DataFrame()
    comparison_08 = pd.DataFrame({
        "lr": summary_08["lr"], "macro_f1": summary_08["macro_f1"], "95 % low": summary_08["macro_f1_low"],
        "95 % high": summary_08["macro_f1_high"],
        "vs full": to_full["difference"].reindex(summary_08.index) if len(to_full) else None,
        "vs full low": to_full["low"].reindex(summary_08.index) if len(to_full) else None,
        "vs full high": to_full["high"].reindex(summary_08.index) if len(to_full) else None,
        "trained share": summary_08["trained_share"], "converged share": summary_08["converged_share"],
        "trainable": summary_08["trainable"], "MiB added": summary_08.get("memory_added_mb"),
        "seeds": summary_08["seeds"]}).rename(index=METHODS)
    for setting in [s for s in METHODS if s != "full" and s in summary_08.index and "full" in summary_08.index]:
        reading_08.append(compare(METHODS[setting], "full fine-tuning", pair(sweep_08, setting, "full"),
                                  "test macro-F1"))
    if {"prompt_tuning", "prompt_tuning_text"} <= set(summary_08.index):
        text_vs_random = pair(sweep_08, "prompt_tuning_text", "prompt_tuning")
        reading_08.append(compare("text init", "random init", text_vs_random, "prompt tuning's test macro-F1"))
    for name, row in comparison_08.iterrows():
        runs = int(row["seeds"])
        if row["trained share"] is not None and row["trained share"] == row["trained share"]:  # known (not NaN)
            if row["trained share"] < 1:
                did_not_train.append(name)
                reading_08.append(f"❌ {name}: DID NOT TRAIN at {round((1 - row['trained share']) * runs)} of {runs} "
                                  f"seeds (collapsed: one class, or no better than the majority class or chance)")
            else:
                reading_08.append(f"✅ {name}: trained at all {runs} seeds")
        if row["converged share"] is not None and row["converged share"] == row["converged share"]:
            if row["converged share"] < 0.5:
                reading_08.append(f"⚠ {name}: early stopping ended only {row['converged share']:.0%} of its runs; "
                                  f"the others hit the epoch cap still improving: its score is a floor at this budget")
    fig, ax = plt.subplots(figsize=(8, 3.6))
    y = range(len(comparison_08))
    ax.barh(list(y), comparison_08["macro_f1"], color=["tab:gray" if n in ("full fine-tuning", "LoRA") else
                                                       "slateblue" for n in comparison_08.index],
            xerr=[comparison_08["macro_f1"] - comparison_08["95 % low"],
                  comparison_08["95 % high"] - comparison_08["macro_f1"]], capsize=3)
    for i, (name, row) in enumerate(comparison_08.iterrows()):
        ax.text(row["95 % high"] + 0.005, i, f"{int(row['trainable']):,} trainable", va="center", fontsize=8)
    ax.axvline(majority["macro_f1"], color="black", lw=1, ls="--", label="majority class")
    ax.set_yticks(list(y), list(comparison_08.index))
    ax.invert_yaxis()
    ax.set(xlabel=f"test macro-F1, mean and 95 % interval over {int(comparison_08['seeds'].min())} seeds",
           title="Soft prompts vs full fine-tuning and LoRA (one protocol, each at its own rate)")
    ax.legend(fontsize=8, loc="lower right")
    plt.tight_layout()
    plt.show()
print("\n".join(f"* {line}" for line in reading_08) or "no sweep of this data: nothing to compare")
comparison_08.round(4) if comparison_08 is not None else None

# %% [markdown]
# ## 6. Everything side by side, and the capacity gap
#
# The hard prompts (no training: one run each, with a bootstrap interval over the test texts) beside the sweep's
# trained methods (the mean over seeds, with its interval over seeds). The two kinds of interval measure
# different noise, so the sentences below call a hard prompt below or above a trained method only when the two
# intervals do not overlap.

# %%
rows = [{"method": "majority class", "kind": "rule (no training)", "numbers": f"one rule, {n_test} test texts",
         "macro_f1": majority["macro_f1"], "95 % low": majority["macro_f1"], "95 % high": majority["macro_f1"],
         "trainable": 0}]
rows += [{"method": f"hard prompt, {m} LM, {s}", "kind": "hard prompt",
          "numbers": f"one run, interval over {n_test} test texts", "macro_f1": r["macro_f1"],
          "95 % low": hard_ci[m, s].low, "95 % high": hard_ci[m, s].high, "trainable": 0}
         for (m, s), r in hard_runs.items()]
if comparison_08 is not None:
    rows += [{"method": name, "kind": "trained (sweep)", "numbers": f"mean over {int(r['seeds'])} seeds",
              "macro_f1": r["macro_f1"], "95 % low": r["95 % low"], "95 % high": r["95 % high"],
              "trainable": int(r["trainable"])} for name, r in comparison_08.iterrows()]
side_by_side = pd.DataFrame(rows).set_index("method")


def placed(name_a: str, a: pd.Series, name_b: str, b: pd.Series) -> str:
    """One sentence: a below / above b when their intervals do not overlap, else no verdict."""
    shown = lambda name, r: f"{name} ({r['macro_f1']:.3f}, 95 % {r['95 % low']:.3f} to {r['95 % high']:.3f})"  # noqa: E731
    if a["95 % high"] < b["95 % low"] or a["95 % low"] > b["95 % high"]:
        where = "below" if a["95 % high"] < b["95 % low"] else "above"
        return f"{shown(name_a, a)} is {where} {shown(name_b, b)}: the intervals do not overlap"
    return f"{shown(name_a, a)} and {shown(name_b, b)} overlap: no verdict"


gap_reading, best_soft, gap = [], None, None
if comparison_08 is not None:
    made_at = next((set(sweep_08[c].astype(str)) for c in ("param.profile", "profile") if c in sweep_08), set())
    if made_at - {PROFILE}:
        gap_reading.append(f"note: the sweep ran at another profile than this run ({PROFILE}), so its test texts "
                           f"are not the {n_test} the hard prompts were scored on here")
    trained_soft = [s for s in SOFT if s in summary_08.index and METHODS[s] not in did_not_train]
    val_means = sweep_08.groupby("setting")["val_macro_f1"].mean()
    best_soft = max(trained_soft, key=val_means.get, default=None)  # the best soft prompt, chosen on validation
    chosen_by = "the best mean validation macro-F1 over the seeds"  # 09 picks a family's variant by its rate search
    if best_soft and "full" in summary_08.index:
        gap = pair(sweep_08, "full", best_soft)
        if gap.excludes_zero() and gap.mean > 0:
            gap_reading.append(f"the capacity gap: full fine-tuning is ahead of the best soft prompt "
                               f"({METHODS[best_soft]}, {chosen_by}) by {gap}")
        elif gap.excludes_zero():
            ahead = pair(sweep_08, best_soft, "full")  # the same pairs, read in the sentence's direction
            gap_reading.append(f"no capacity gap under this protocol: the best soft prompt ({METHODS[best_soft]}, "
                               f"{chosen_by}) is ahead of full fine-tuning: {METHODS[best_soft]} − full "
                               f"{ahead}, excludes 0")
        else:
            gap_reading.append("no capacity gap the seeds can resolve: "
                               + compare("full fine-tuning",
                                         f"the best soft prompt ({METHODS[best_soft]}, {chosen_by})", gap,
                                         "test macro-F1"))
    if best_soft and "lora" in summary_08.index:
        gap_reading.append(compare("LoRA", METHODS[best_soft], pair(sweep_08, "lora", best_soft), "test macro-F1"))
    zero = "hard prompt, base LM, zero-shot"  # the combination chosen on validation, without demonstrations
    for setting in [s for s in ("full", best_soft) if s in summary_08.index]:
        gap_reading.append(placed(zero, side_by_side.loc[zero], METHODS[setting], side_by_side.loc[METHODS[setting]]))
fig, ax = plt.subplots(figsize=(8, 0.45 * len(side_by_side) + 1.2))
colours = {"rule (no training)": "black", "hard prompt": "tab:orange", "trained (sweep)": "slateblue"}
for i, (name, r) in enumerate(side_by_side.iterrows()):
    ax.errorbar(r["macro_f1"], i, xerr=[[r["macro_f1"] - r["95 % low"]], [r["95 % high"] - r["macro_f1"]]],
                fmt="o", capsize=3, color=colours[r["kind"]])
ax.set_yticks(range(len(side_by_side)), list(side_by_side.index))
ax.invert_yaxis()
ax.set(xlabel="test macro-F1 (hard prompts: one run, interval over texts; trained: mean, interval over seeds)",
       title="Hard prompts and trained methods")
plt.tight_layout()
plt.show()
print("\n".join(f"* {line}" for line in gap_reading) or "no sweep of this data: the hard prompts stand alone")
side_by_side.round(3)

# %% [markdown]
# **Reading the gap.** A gap in favour of full fine-tuning is what Lester et al. (2021) call the **capacity
# limit** of prompt tuning on a small model: a few thousand input numbers cannot reshape an encoder's features the
# way full fine-tuning can; they found the gap large for small T5 models and closing only near 11 billion
# parameters. Whether this run shows one is said by the line above, from the paired interval, not by the bars.
# Where the interval favours prompt tuning instead, a candidate reason is the budget: with a few hundred labelled
# texts and short inputs, a method that trains a few thousand numbers on a frozen encoder cannot fit the training
# set's noise, while one that trains 22 M weights can; the capacity limit was measured with far more labelled data.
# The number of trained weights alone does not order the methods in the table above, so it is at most part of the
# story. This notebook does not run the control that would separate the explanations (the same comparison with
# many more labelled texts), so read a small, heavily constrained method winning here as a statement about this
# budget, not about the method.
#
# ## Exercises
#
# Exercise 1 (predict, then measure) is in section 4.
#
# **2.** Compute the score of the first class for the prompt of section 1 by hand from the LM's logits: the
# log-probability of the first token of `" " + verbalizer[0]` after the prompt.

# %%
logp_first = None  # your answer: a float
check_word_logprob(logp_first, lm, lm_tokenizer, prompt, verbalizer[0])

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: log-softmax of the last position's logits, read at the first token of the word
with torch.no_grad():
    logits = lm(**lm_tokenizer(prompt, return_tensors="pt").to(device)).logits[0, -1].float()
logp_first = float(logits.log_softmax(-1)[lm_tokenizer(" " + verbalizer[0], add_special_tokens=False)["input_ids"][0]])
check_word_logprob(logp_first, lm, lm_tokenizer, prompt, verbalizer[0])

# %% [markdown]
# **3.** How many numbers does a soft prompt of 20 virtual tokens hold for MiniLM (hidden size 384)?

# %%
prompt_numbers = None  # your answer: an integer
check_prompt_params(prompt_numbers, 20, 384)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: one trainable vector of hidden_size numbers per virtual token
prompt_numbers = 20 * 384
check_prompt_params(prompt_numbers, 20, 384)

# %% [markdown]
# **4.** What macro-F1 does always predicting the majority class get on the test split? The first table printed
# the number; the exercise is to *derive* it from the class shares alone (the F1 of each class, then the mean), and
# to say why it sits so far below that baseline's accuracy.

# %%
majority_f1 = None  # your answer: a float
check_majority_f1(majority_f1, dataset["test"]["label"], majority["predicted_class"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: F1 of the majority class (recall 1, precision = its share), averaged over the classes that occur
labels = pd.Series(list(dataset["test"]["label"]))
share = (labels == majority["predicted_class"]).mean()
majority_f1 = (2 * share / (1 + share)) / len(set(labels) | {majority["predicted_class"]})
check_majority_f1(majority_f1, dataset["test"]["label"], majority["predicted_class"])

# %% [markdown]
# **5. Write the mechanism.** Complete `lora_forward(x, weight, bias, A, B, alpha, r)`: the output of a linear layer
# (`weight` of shape d_out × d_in, `bias` of size d_out) with a LoRA update of rank r (`A` of shape r × d_in, `B` of
# shape d_out × r), y = x Wᵀ + b + (α/r)·x Aᵀ Bᵀ, for `x` of shape (..., d_in), as `LoRALinear` of section 3
# computes it without ever forming the d_out × d_in product B·A. The check runs your function on fresh random
# tensors (several sizes, ranks and alphas, B non-zero) against peft's LoRA layer (`get_peft_model` with a
# `LoraConfig(r, lora_alpha, lora_dropout=0)` on one `nn.Linear`) holding the same W, b, A and B.

# %%
from companion.checks.n08 import check_lora_forward_function


def lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                 alpha: float, r: int) -> torch.Tensor:
    """x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ: a frozen linear layer plus its rank-r LoRA update."""
    # 1. the frozen layer: x times the transposed weight, plus the bias (shape (..., d_out))
    # 2. the update: x times Aᵀ (down to r numbers), times Bᵀ (up to d_out numbers)
    # 3. scale the update by alpha / r, then add the two
    return None  # replace with y, shape (..., d_out)


check_lora_forward_function(lora_forward)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: the frozen layer's output plus the low-rank path x → r numbers → d_out numbers, scaled by α/r
def lora_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                 alpha: float, r: int) -> torch.Tensor:
    """x Wᵀ + b + (alpha / r) · x Aᵀ Bᵀ: a frozen linear layer plus its rank-r LoRA update."""
    return x @ weight.T + bias + (alpha / r) * (x @ A.T @ B.T)


check_lora_forward_function(lora_forward)

# %% [markdown]
# **6 (open).** Train prompt tuning at a full fine-tuning rate with the sweep's unit,
# `python -m companion run sweeps/strategy_run.ipynb --out runs/pt-small-rate -p strategy prompt_tuning -p lr 5e-5`,
# and read its did-it-train line (`--accept-collapse` keeps a collapsed run as a result). Then widen the winner's
# curse table: edit `top` in the `cpu` row of the settings cell near the top (`cc.settings`) and re-run the
# notebook: how far down the validation ranking does the test ranking still agree?
#
# ## Summary
#
# * Hard prompts need no training: a template, a verbalizer and label-word log-probabilities (the first token's,
#   so one forward pass scores every class and every verbalizer); choose the template on validation data from a
#   generated space, and score the choice once on the test split.
# * The best of many noisy validation scores is biased upward (the winner's curse): report the chosen
#   combination's validation and test scores side by side, and expect the test score to regress towards the mean.
# * Compare two prompts with a paired interval on the metric the table reports (a paired bootstrap over the test
#   texts for macro-F1).
# * `get_peft_model` freezes the model and adds the method's parameters: a virtual-token table (prompt tuning),
#   one key and value per layer and token (prefix tuning), or a table fed through an MLP (p-tuning); their counts
#   follow from the sizes. LoRA adds r·(d_in + d_out) numbers per adapted matrix and merges away.
# * One frozen encoder serves several tasks: each task stores only its prompt table and head, trained by the same
#   loop as every other model of the course, with a did-it-train check.
# * Soft prompts train far fewer numbers than the model holds, at large learning rates: each method needs its own
#   rate, chosen on validation and bracketed, several seeds, and the did-it-train and convergence checks.
# * What this run measured (computed from the tables above):

# %%
base_zero, base_few = hard_runs["base", "zero-shot"], hard_runs["base", "few-shot"]
adapted_zero, adapted_few = hard_runs["adapted", "zero-shot"], hard_runs["adapted", "few-shot"]
summary_lines = [
    f"template search: {spread['combinations']} templates × verbalizers on {len(val)} validation {noun}s, macro-F1 "
    f"from {spread['worst']:.3f} to {spread['best']:.3f} (median {spread['median']:.3f})",
    f"winner's curse: the chosen combination scored {search.loc[0, 'macro_f1']:.3f} on validation and "
    f"{chosen_test:.3f} on test; the {top} best on validation averaged {curse['validation'].mean():.3f} there and "
    f"{curse['test'].mean():.3f} on test",
    f"hard prompts on {n_test} test {noun}s, macro-F1: base LM zero-shot {base_zero['macro_f1']:.3f}, few-shot "
    f"{base_few['macro_f1']:.3f}; adapted LM zero-shot {adapted_zero['macro_f1']:.3f}, few-shot "
    f"{adapted_few['macro_f1']:.3f} (majority class {majority['macro_f1']:.3f})",
    *hard_sentences.values(),
    f"a task's prompt + head: {task_bytes['topic']:,} bytes on disk, {full_bytes / task_bytes['topic']:,.0f}× less "
    f"than a fully fine-tuned copy ({full_bytes / 2**20:.1f} MiB)",
    f"two tasks on one frozen encoder: topic macro-F1 {task_scores['topic']['macro_f1']:.3f} (trained: "
    f"{task_checks['topic'].trained}), domain macro-F1 {task_scores['domain']['macro_f1']:.3f} (trained: "
    f"{task_checks['domain'].trained})",
    *[line for line in reading_08 if not line.startswith("✅")], *gap_reading,
]
print("\n".join(f"* {line}" for line in summary_lines))
seconds["peft, LoRA, multi-task, sweep"] = time.perf_counter() - section

# %%
def interval(difference: Interval, sentence: str = "") -> dict:
    """An Interval as a JSON-friendly dict (mean, low, high, n), with the sentence chosen from it."""
    return asdict(difference) | ({"sentence": sentence} if sentence else {})


def plain(value):
    """A table cell as JSON: None for a missing number, a float for a numpy number."""
    return None if value is None or (isinstance(value, float) and value != value) else \
        value if isinstance(value, (str, bool, int)) else float(value)


hard_json = {lm_label: {shots.replace("-", "_"): {"macro_f1": hard_runs[lm_label, shots]["macro_f1"],
                                                 "accuracy": hard_runs[lm_label, shots]["accuracy"],
                                                 "interval": interval(hard_ci[lm_label, shots]),
                                                 "classes_predicted": len(set(hard_runs[lm_label, shots]["preds"])),
                                                 "seconds": hard_runs[lm_label, shots]["seconds"]}
                        for shots in ("zero-shot", "few-shot")} for lm_label in ("base", "adapted")}
results = {
    "notebook": "08_prompt_tuning", "profile": PROFILE, "seed": seed, "device": device.type, "model_name": model_name,
    "lm_name": lm_name, "data": data, "protocol": protocol.record(), "precision": scoring, "settings": cfg,
    "report_csv": Path(report_csv).name, "rates_csv": Path(rates_csv).name,
    "majority": {"macro_f1": majority["macro_f1"], "accuracy": majority["accuracy"]},
    "did_not_train": did_not_train + [name for name, c in task_checks.items() if not c.trained],
    "training_checks": [c.to_json() for c in task_checks.values()],
    "hard_prompts": {
        "test_texts": n_test, "test_split": len(dataset["test"]), "words": cfg["words"],
        "demo_words": cfg["demo_words"], "demonstrations": len(demos), "adapted_model": adapted_folder.name,
        "best_template": best_template, "best_verbalizer": best_verbalizer,
        "search": {**spread, "validation_texts": len(val), "forward_passes": len(templates) * len(val),
                   "seconds": search_seconds, "table": search.to_dict("records")},
        "chosen": {"validation_macro_f1": float(search.loc[0, "macro_f1"]),
                   "validation_interval": interval(val_interval), "test_macro_f1": chosen_test},
        "winners_curse": {"top": top, "table": curse.to_dict("records"),
                          "validation_mean": float(curse["validation"].mean()),
                          "test_mean": float(curse["test"].mean()),
                          "lower_on_test": int((drop < 0).sum())},
        "majority": {"macro_f1": majority["macro_f1"], "accuracy": majority["accuracy"]},
        **hard_json,
        "macro_f1_differences": {key: interval(d, hard_sentences[key]) for key, d in hard_intervals.items()},
        "fast_macro_f1_max_diff": fast_vs_engine,
    },
    "peft_counts": {name: {"by_hand": by_hand[name], "peft": m.get_nb_trainable_parameters()[0]}
                    for name, m in wrapped.items()},
    "prompt_by_hand_equal": bool((by_hand_logits - by_peft).abs().max().item() < 1e-5),
    "lora": {"r": rank, "alpha": alpha, "layer_diff": layer_diff, "model_diff": model_diff, "weight_diff": weight_diff,
             "merged_diff": merged_diff, "params_by_hand": lora_by_hand, "peft_params": lora_count - head_params},
    "multitask": {name: {"macro_f1": task_scores[name]["macro_f1"], "accuracy": task_scores[name]["accuracy"],
                         "bytes": task_bytes[name], "steps": len(task_losses[name]),
                         "trained": task_checks[name].trained, "test_texts": len(tasks[name]["test"][0])}
                  for name in tasks} | {"full_copy_bytes": full_bytes, "lr": task_lr, "lr_chosen_on_validation":
                                        lr_chosen, "max_length": task_length, "deviations": deviations_4},
    "sweep": None if comparison_08 is None else {
        "methods": {name: {k: plain(v) for k, v in row.items()} for name, row in comparison_08.iterrows()},
        "rates": None if rates_08 is None else {name: {k: plain(v) for k, v in row.items()}
                                                 for name, row in rates_08.iterrows()},
        "sentences": reading_08, "best_soft": METHODS.get(best_soft),
        "full_minus_best_soft": interval(gap) if gap else None, "gap_sentences": gap_reading},
    "side_by_side": side_by_side.reset_index().to_dict("records"),
    "section_seconds": seconds,
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("08_prompt_tuning", results)
print(f"machine time of this run: {results['seconds']:.0f} s ("
      + " · ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ")")
