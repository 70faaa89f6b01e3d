# %% [markdown]
# # 05 · Adapting a language model to the domain
#
# Notebook 04 measured the gap between general English and medical abstracts. Here we close part of it,
# and pay for it. We continue the pretraining of SmolLM2 on medical text (domain-adaptive pretraining,
# "DAPT" in Gururangan et al. 2020) and measure both sides of the trade:
#
# **In this notebook you will**
# 1. build a next-token training stream from the medical **training** split only, and fixed held-out
#    evaluation blocks (medical validation text and WikiText-2);
# 2. run continued pretraining with the training loop of notebook 06, fed causal-LM batches, and measure how
#    domain and general perplexity move (general perplexity rising would be forgetting);
# 3. predict, then measure, what training only the (tied) embedding matrix costs, and compare its effect;
# 4. mix general text back into the stream (replay) and measure what it changes;
# 5. augment the labelled domain data with EDA token operations and measure where it helps or hurts;
# 6. save the adapted model as safetensors and reload it, as notebooks 06–09 can;
# 7. adapt the encoder that notebooks 06–09 classify with (MiniLM): write BERT's masked-LM head, check it
#    against transformers, warm it on general text, continue masked-LM training on the medical texts, and measure
#    the masked-LM loss before and after on medical and general text with 95 % intervals;
# 8. compare the pretraining objectives of BERT, GPT, XLNet and RoBERTa, with a masked-LM and a causal-LM loss on
#    the same sentences.
#
# **Prerequisites**: notebooks 01 (next-token probability, perplexity) and 04 (the domain gap this notebook
# closes); notebook 06's training loop is the same engine, so reading either first works.
#
# **Time**: about 60 minutes of study for a person. Machine time, measured on 2 idle CPU cores (kernel start and
# model loading included): `smoke` 42 s · `cpu` 3.0 min with the adapted MiniLM of section 7 already in the cache
# (the first run also trains it: 1.5 min more); training in bf16 autocast (this CPU has AVX512-BF16); slower on a
# busy machine. `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "smollm2"  # causal LM to adapt: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # domain data: registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
max_steps: Optional[int] = None  # range: [1, inf); optimiser steps of each adaptation run; None means the profile default
block_size: Optional[int] = None  # range: [2, inf); tokens per training block; None means the profile default
lr: Optional[float] = None  # range: (0, inf); peak AdamW learning rate of continued pretraining; None means the profile default
embedding_lr: float = 2e-4  # range: (0, inf); peak learning rate of embedding-only tuning
replay_fraction: float = 0.25  # range: [0, 1); share of general WikiText-2 blocks in the replay stream
eda_alpha: float = 0.1  # range: [0, 1]; share of the words each EDA operation changes
eda_n_aug: int = 4  # range: [1, inf); augmented copies made of each training text

# %%
import copy
import time

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F

import companion as cc
from companion.core.plots import plain_log_axis, span_ticks
from companion.lessons.n05_adaptation import DAPT_SETTINGS, adapt_config, adapt_result, adapted_smollm2, block_losses, blocks_perplexity, causal_lm_batch, continued_pretraining, embedding_change, embeddings_tied, perplexities, replay_mix, set_trainable, token_blocks
from companion.checks.n05 import check_embedding_params, check_forgetting_pct, check_replay_blocks, check_step_time_ratio
from companion.lessons.n05_augmentation import augment, augmentation_experiment, augmentation_gain, augmentation_vs_more_data, eda, random_deletion
from companion.checks.n05 import check_random_deletion
from companion.core.stats import Interval, compare as compare_pair, paired_difference
from companion.core.data import load_text_classification, load_wikitext2
from companion.engine.training import train

cc.check_values("05", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device and precision; start a clock
cfg = cc.settings(PROFILE, {  # continued pretraining's settings are DAPT_SETTINGS: notebook 08 rebuilds the same model
    "smoke": DAPT_SETTINGS["smoke"] | {"aug_per_class": [2, 10], "aug_seeds": [0, 1], "mlm_eval": 16},
    "cpu": DAPT_SETTINGS["cpu"] | {"aug_per_class": [5, 10, 25, 50], "aug_seeds": [0, 1, 2, 3, 4], "mlm_eval": 300},
    "gpu": DAPT_SETTINGS["gpu"] | {"aug_per_class": [5, 10, 25, 50, 100, 200], "aug_seeds": [0, 1, 2, 3, 4],
                                   "mlm_eval": 2000},
}, max_steps=max_steps, block_size=block_size, lr=lr)
print("profile:", PROFILE, "· device:", device.type)
pd.Series(cfg, name=PROFILE).to_frame()

# %% [markdown]
# ## 1. Data: a domain stream and fixed evaluation blocks
#
# Continued pretraining is plain next-token prediction, so labels are not needed: we concatenate the medical
# abstracts of the **training split** (each followed by the end-of-text token) and cut the token stream into
# equal blocks, the `group_texts` recipe of the Hugging Face course. Perplexity is measured on *held-out*
# blocks that never enter training: medical **validation** abstracts (the domain) and WikiText-2 **test**
# paragraphs (general English). The replay stream later draws general text from WikiText-2 **validation**, so
# the general evaluation text stays unseen too.

# %%
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
domain = "medical" if data == "medical_abstracts" else "domain"  # how the printed text names the data
wiki = load_wikitext2()
tokenizer = cc.load_tokenizer(model_name)
train_blocks = token_blocks(tokenizer, dataset["train"]["text"], cfg["block_size"], cfg["train_blocks"])
eval_sets = {"domain": token_blocks(tokenizer, dataset["validation"]["text"], cfg["block_size"], cfg["eval_blocks"]),
             "general": token_blocks(tokenizer, wiki["test"]["text"], cfg["block_size"], cfg["eval_blocks"])}
general_pool = token_blocks(tokenizer, wiki["validation"]["text"], cfg["block_size"], len(train_blocks))
tokens_needed = cfg["max_steps"] * cfg["batch_size"] * cfg["block_size"]
pd.DataFrame({"blocks": [len(train_blocks), len(general_pool)] + [len(b) for b in eval_sets.values()],
              "tokens": [b.numel() for b in (train_blocks, general_pool, *eval_sets.values())]},
             index=["domain train stream", "general replay pool", "domain eval", "general eval"]).assign(
    note=[f"{domain} train split", "WikiText-2 validation", f"{domain} validation", "WikiText-2 test"])

# %% [markdown]
# The perplexity of a block is the exponent of the mean next-token negative log-likelihood of its tokens. We
# check the companion's `blocks_perplexity` against the model's own loss (`labels=input_ids`), which averages
# the same per-token NLLs:

# %%
base = cc.load_model(model_name, "causal-lm").to(device)
probe = eval_sets["domain"][:2].to(device)
with torch.no_grad():
    own = torch.exp(base(input_ids=probe, labels=probe).loss).item()
ours = blocks_perplexity(base, eval_sets["domain"][:2])
print(f"blocks_perplexity {ours:.3f} · exp(model loss) {own:.3f} · |difference| < 1e-3: {abs(ours - own) < 1e-3}")

# %% [markdown]
# ## 2. Continued pretraining on the domain: the loop of notebook 06, fed causal-LM batches
#
# Continued pretraining is the fine-tuning loop of notebook 06 with another kind of batch. A **causal-LM batch**
# is a stack of token blocks whose labels *are* the input ids: the model shifts them inside, so the logits at
# position t are scored against the token at t + 1, and the loss is the cross-entropy of those next-token
# predictions. We check that by hand on two blocks:

# %%
lm_batch = causal_lm_batch([train_blocks[0], train_blocks[1]])
with torch.no_grad():
    lm_out = base(**{k: v.to(device) for k, v in lm_batch.items()})
next_token_loss = F.cross_entropy(lm_out.logits[:, :-1].flatten(0, 1).float(),
                                  lm_batch["labels"][:, 1:].flatten().to(device))  # position t predicts token t + 1
print(f"batch {tuple(lm_batch['input_ids'].shape)} · model loss {lm_out.loss:.4f} · by hand {next_token_loss:.4f}")

# %%
# NBVAL_CHECK_OUTPUT
print("labels are the input ids:", torch.equal(lm_batch["labels"], lm_batch["input_ids"]))
print("shifted cross-entropy by hand = model loss (within 1e-4):", abs(float(next_token_loss - lm_out.loss)) < 1e-4)

# %% [markdown]
# The training engine is `companion.engine.training.train`, the loop written out in notebook 06 (AdamW, warm-up then
# linear decay, gradients clipped at norm 1, 🤗 `accelerate`, so the same code runs on the CPU and, with bf16
# autocast, on a GPU). Three things change for a language model: the batches (`causal_lm_batch`), the budget
# (a number of steps, `max_steps`, rather than epochs) and the evaluation, the perplexity of each held-out set
# (`perplexities(eval_sets)`) at the start and every `eval_every` steps, where lower is better.
# `adapt_config` writes those settings; all weights train.

# %%
full_model = copy.deepcopy(base)
full_params = set_trainable(full_model, "full")
config = adapt_config(len(train_blocks), cfg["max_steps"], cfg["batch_size"], cfg["lr"],
                      warmup_steps=max(1, cfg["max_steps"] // 10), eval_every=cfg["eval_every"], metric="domain",
                      seed=seed, desc="full continued pretraining")
engine_run = train(full_model, list(train_blocks), None, causal_lm_batch, config, evaluate_fn=perplexities(eval_sets))
full = adapt_result(engine_run, list(eval_sets), cfg["block_size"], full_params, "full")
before = {name: full.perplexity(name, step=0) for name in eval_sets}
after = {name: full.perplexity(name) for name in eval_sets}
domain_drop_pct = 100 * (1 - after["domain"] / before["domain"])
forgetting_pct = 100 * (after["general"] / before["general"] - 1)
pd.DataFrame({"before": before, "after": after}).assign(
    change_pct=lambda f: 100 * (f["after"] / f["before"] - 1)).round(2)

# %%
curve = full.evals.assign(kind="held-out perplexity")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
sns.lineplot(data=full.history, x="step", y="loss", ax=axes[0])
axes[0].set(title="training loss (domain stream)", ylabel="next-token loss (nats)")
sns.lineplot(data=curve, x="step", y="perplexity", hue="set", marker="o", ax=axes[1])
axes[1].set(title="held-out perplexity over steps")
plain_log_axis(axes[1], "y", ticks=span_ticks(curve["perplexity"]))  # plain numbers on the log axis
plt.tight_layout()
plt.show()

# %% [markdown]
# **Reading the curves.** A short run can pick up the register of the text (its phrasing, frequent terms, the
# way sentences open) and the *format* of the evaluation itself (blocks cut from a stream that start
# mid-sentence); the format helps every text, general English included. What is specific to the domain pulls the
# shared weights away from general English: *catastrophic forgetting*, visible as general perplexity rising above
# its value before training, or climbing back from its lowest point while domain perplexity keeps falling. The next
# cell reads the directions off this run: each held-out block's loss before and after, as a paired difference
# with its 95 % interval, so a change inside the noise is reported as a tie.
#
# **Beside the published numbers.** Gururangan et al. (2020) continued RoBERTa-base's pretraining on 7.55 B
# tokens of biomedical papers: its masked-LM loss on held-out biomedical text fell from 1.32 to 0.99 (Table 1,
# perplexity e^1.32 ≈ 3.7 → e^0.99 ≈ 2.7, −28 %), while its loss on general text rose from 1.19 to 1.63
# (Table 12, perplexity +55 %). The Hugging Face course (ch. 7.3) adapts DistilBERT to IMDb reviews and reports
# perplexity 21.75 → 11.32 (−48 %). Those are masked-LM perplexities on other models and corpora, so compare
# the *direction and rough size*, not the values: here a causal LM and far fewer tokens.

# %%
print(f"domain perplexity  {before['domain']:.2f} → {after['domain']:.2f}  ({-domain_drop_pct:+.1f} %)")
print(f"general perplexity {before['general']:.2f} → {after['general']:.2f}  ({forgetting_pct:+.1f} %)")
print(f"{full.tokens_seen:,} training tokens · {full.seconds:.0f} s · peak memory {full.peak_memory_mb:,.0f} MiB")
general_curve = full.evals[full.evals["set"] == "general"].set_index("step")["perplexity"]
general_min_step = int(general_curve.idxmin())
general_rise_from_min_pct = 100 * (general_curve.iloc[-1] / general_curve.min() - 1)
print(f"general perplexity is lowest at step {general_min_step} ({general_curve.min():.2f}); the last value is "
      f"{general_rise_from_min_pct:+.1f} % from that lowest point")


# The direction of each change, from per-block losses: the same held-out blocks before and after, so the change is
# a paired difference with a 95 % interval (a difference counts only when the interval excludes 0).
base_losses = {name: block_losses(base, blocks) for name, blocks in eval_sets.items()}
full_losses = {name: block_losses(full_model, blocks) for name, blocks in eval_sets.items()}
changes = {name: paired_difference(full_losses[name], base_losses[name]) for name in eval_sets}
for name, what in (("domain", "domain text"), ("general", "general English")):
    print(compare_pair("after", "before", changes[name], f"next-token loss on {what} ({len(eval_sets[name])} blocks of "
                  f"{cfg['block_size']} tokens; lower is better)", higher_is_better=False))
forgets = changes["general"].excludes_zero() and changes["general"].mean > 0

# %% [markdown]
# ## 3. Embedding-only ("word vector") fine-tuning
#
# The older recipe adapts only the word vectors and leaves the network frozen. In SmolLM2 the input
# embedding matrix is **tied** to the output layer (the same tensor scores the next token), so "embedding-only"
# here also retrains the output layer: every gradient from the softmax lands in the same matrix. We check the
# tie, count the trainable weights and run the same number of steps. Backpropagation still has to pass through
# every frozen layer to reach the input embeddings; the frozen weights need no gradient and no optimiser state.

# %%
# NBVAL_CHECK_OUTPUT
config = base.config
print("input and output embeddings are one tensor:", embeddings_tied(base))
print(f"embedding matrix: {config.vocab_size:,} tokens × {config.hidden_size} dimensions = "
      f"{config.vocab_size * config.hidden_size:,} weights, "
      f"{config.vocab_size * config.hidden_size / cc.count_parameters(base)['total']:.1%} of the model's")

# %% [markdown]
# **Exercise 1 (predict, then measure).** Before the next cell runs: what share of the full run's training time
# will the embedding-only run take (same steps, same batches; evaluation not counted)? A number, e.g. 0.5 for
# half. Then run the experiment and check your prediction below it.

# %%
predicted_time_ratio = None  # your prediction: embedding-only training seconds / full training seconds

# %%
embedding_model = copy.deepcopy(base)
emb_before = embedding_model.get_input_embeddings().weight.detach().clone()
emb = continued_pretraining(embedding_model, train_blocks, eval_sets, steps=cfg["max_steps"],
                            batch_size=cfg["batch_size"], lr=embedding_lr, warmup_steps=max(1, cfg["max_steps"] // 10),
                            eval_every=None, eval_at_start=False, mode="embeddings", seed=seed,
                            desc="embedding-only")
moved = embedding_change(emb_before, embedding_model)


def row(result, name: str) -> dict:
    """One comparison row: perplexities after, change, trainable weights and costs."""
    return {"strategy": name, "domain_ppl": result.perplexity("domain"), "general_ppl": result.perplexity("general"),
            "domain_change_pct": 100 * (result.perplexity("domain") / before["domain"] - 1),
            "general_change_pct": 100 * (result.perplexity("general") / before["general"] - 1),
            "trainable_params": int(result.params["trainable"]), "seconds": round(result.seconds, 1),
            "train_seconds": round(result.train_seconds, 2), "peak_memory_mb": round(result.peak_memory_mb)}


compare = pd.DataFrame([{"strategy": "before (base model)", "domain_ppl": before["domain"],
                         "general_ppl": before["general"], "domain_change_pct": 0.0, "general_change_pct": 0.0,
                         "trainable_params": 0}, row(full, "full continued pretraining"),
                        row(emb, "embedding-only (tied in/out)")]).set_index("strategy")
print(f"embedding rows (tokens) that moved: {moved['rows_changed_share']:.1%} · relative change of the matrix: "
      f"{moved['relative_change']:.2e}")
compare.round(2)

# %%
time_ratio = emb.train_seconds / full.train_seconds
print(f"embedding-only training took {time_ratio:.2f} × the full run's training time "
      f"({emb.train_seconds:.1f} s vs {full.train_seconds:.1f} s, evaluation not counted); it trained "
      f"{emb.params['trainable'] / full.params['trainable']:.0%} of the full run's weights")
check_step_time_ratio(predicted_time_ratio, emb.train_seconds, full.train_seconds)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count work in forward units (forward 1, backward 2: activation gradients 1 + weight gradients 1)
share = base.config.vocab_size * base.config.hidden_size / cc.count_parameters(base)["total"]
predicted_time_ratio = round((1 + 1 + share) / 3, 2)  # frozen layers skip their weight gradients, not the activation ones
check_step_time_ratio(predicted_time_ratio, emb.train_seconds, full.train_seconds)

# %% [markdown]
# Embedding-only tuning moves the rows of tokens that occur in the stream (and, through the tied softmax, every
# row a little, since each softmax gradient touches all output scores). Compare its domain gain and its
# forgetting with the full run in the table: how much of the adaptation lives in the vocabulary layer alone?
#
# ## 4. Replay: mixing general text back in
#
# The cheapest guard against forgetting is to keep showing the model some general text. We replace a share
# `replay_fraction` of the domain blocks by WikiText-2 *validation* blocks, keep the number of steps and
# tokens the same, and compare.

# %%
replay_stream = replay_mix(train_blocks, general_pool, replay_fraction, seed=seed)
replay_model = copy.deepcopy(base)
replay = continued_pretraining(replay_model, replay_stream, eval_sets, steps=cfg["max_steps"],
                               batch_size=cfg["batch_size"], lr=cfg["lr"], warmup_steps=max(1, cfg["max_steps"] // 10),
                               eval_every=cfg["eval_every"], eval_at_start=False, seed=seed,
                               desc=f"replay {replay_fraction:.0%}")
compare.loc[f"full + {replay_fraction:.0%} replay"] = pd.Series(row(replay, "")).drop("strategy")
compare.round(2)

# %%
trade = compare.reset_index()
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
sns.scatterplot(data=trade, x="general_change_pct", y="domain_change_pct", hue="strategy", s=120, ax=axes[0])
axes[0].axhline(0, color="grey", lw=0.8)
axes[0].axvline(0, color="grey", lw=0.8)
axes[0].set(xlabel="general perplexity change %\n(> 0: forgetting · < 0: general text improved)",
            ylabel="domain perplexity change %\n(< 0: better)",
            title="the adaptation / forgetting trade-off")
axes[0].legend(fontsize=8)
both = pd.concat([full.evals.assign(run="domain only"),
                  replay.evals.assign(run=f"{replay_fraction:.0%} replay"),
                  full.evals[full.evals["step"] == 0].assign(run=f"{replay_fraction:.0%} replay")])
sns.lineplot(data=both, x="step", y="perplexity", hue="set", style="run", marker="o", ax=axes[1])
axes[1].set(title="held-out perplexity over steps")
plain_log_axis(axes[1], "y", ticks=span_ticks(both["perplexity"]))
axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the curves, not over them
plt.tight_layout()
plt.show()

# %%
replay_general = compare.loc[f"full + {replay_fraction:.0%} replay", "general_change_pct"]
replay_domain = compare.loc[f"full + {replay_fraction:.0%} replay", "domain_change_pct"]
full_general = compare.loc["full continued pretraining", "general_change_pct"]
full_domain = compare.loc["full continued pretraining", "domain_change_pct"]
print(f"general perplexity change: {full_general:+.1f} % without replay, {replay_general:+.1f} % with "
      f"{replay_fraction:.0%} replay ({'lower' if replay_general < full_general else 'not lower'} with replay)")
print(f"domain perplexity change: {full_domain:+.1f} % without replay, {replay_domain:+.1f} % with replay "
      f"({'replay cost' if replay_domain > full_domain else 'replay did not cost'} domain perplexity in this run)")

# %% [markdown]
# Read the size of the general effect with care: the replay pool (WikiText-2 *validation*) and the general
# evaluation (WikiText-2 *test*) come from the same source, so replay does not only protect general English, it
# also adapts the model to WikiText itself. With a replay corpus unlike the evaluation text, expect a smaller
# general effect. Where exactly the balance lies depends on the fraction: re-run the notebook with
# `replay_fraction=0.5` (`python -m companion run 05 -p replay_fraction 0.5`) and compare.
#
# ## 5. Save and reload the adapted model
#
# `save_pretrained` writes the weights as `model.safetensors` with the config and the tokenizer. Later
# notebooks (and you) reload it with `cc.load_model(path, "causal-lm")`; we check that the reloaded model gives
# the same perplexity. `adapted_smollm2` saves it in the cache (`artifacts/smollm2-<data>-dapt-<profile>`) with a
# fingerprint of what made it (model files, training texts, settings): notebook 08 asks for the same model and
# gets this copy, or rebuilds it when anything changed. Each profile has its own copy.

# %%
saved = adapted_smollm2(PROFILE, data, model_name, seed, precision, text_column, label_column,
                        trained=(full_model, full), max_steps=max_steps, block_size=block_size, lr=lr)
artifact = saved.name
reloaded = cc.load_model(str(saved), "causal-lm").to(device)
ppl_saved, ppl_reloaded = blocks_perplexity(full_model, eval_sets["domain"]), blocks_perplexity(reloaded, eval_sets["domain"])
print("files:", sorted(p.name for p in saved.iterdir() if p.suffix in (".safetensors", ".json")))
print(f"domain perplexity in memory {ppl_saved:.3f} · reloaded {ppl_reloaded:.3f} · "
      f"same: {abs(ppl_saved - ppl_reloaded) < 1e-3}")

# %% [markdown]
# ## 6. Data augmentation for the domain task
#
# Continued pretraining uses *unlabelled* text. When labelled examples are scarce, **data augmentation** makes
# more of them. EDA (Wei & Zou 2019, "Easy Data Augmentation") perturbs a text with token operations that
# mostly keep its label: swap two words, delete words with probability α, insert words. (EDA's fourth operation,
# synonym replacement, needs the WordNet thesaurus, which is not available offline; our insertion draws words
# from the same text.) Here is what the operations do to one abstract:

# %%
# NBVAL_CHECK_OUTPUT
import random

sample = " ".join(dataset["train"]["text"][0].split()[:14])  # the opening of one training text
for op, text in zip(["swap", "delete", "insert"], eda(sample, alpha=0.2, n_aug=3, rng=random.Random(0))):
    print(f"{op:>6}: {text}")

# %% [markdown]
# Does it help? We train a fast classifier (TF-IDF word uni- and bigrams + logistic regression) on small,
# class-balanced subsets of the training split, once on the originals and once with `eda_n_aug` EDA copies of
# each text, over several seeds, and score macro-F1 on the **validation** split.

# %%
aug = augmentation_experiment(dataset["train"]["text"], dataset["train"]["label"], dataset["validation"]["text"],
                              dataset["validation"]["label"], per_class=cfg["aug_per_class"], seeds=cfg["aug_seeds"],
                              n_aug=eda_n_aug, alpha=eda_alpha, progress=True)
gain = augmentation_gain(aug)
gain.round(4)

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
sns.pointplot(data=aug.assign(training=aug["augmented"].map({False: "originals", True: f"+ {eda_n_aug}× EDA"})),
              x="per_class", y="macro_f1", hue="training", dodge=0.2, errorbar="sd", ax=ax)
ax.set(xlabel="training examples per class", ylabel="validation macro-F1",
       title="EDA augmentation vs training-set size (mean ± sd over seeds)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Augmentation against what it competes with.** EDA's copies are more training texts for free; the alternative
# is to label more. At an equal number of training texts, `k` originals plus `eda_n_aug`·k EDA copies compete with
# (1 + `eda_n_aug`)·k *real* examples. Both comparisons are paired by seed (the same subset), with 95 % intervals:

# %%
versus = augmentation_vs_more_data(aug, eda_n_aug)
n_seeds = aug["seed"].nunique()
for k, size in versus.iterrows():
    gain_iv = Interval(size["eda_gain"], size["eda_gain_low"], size["eda_gain_high"], n_seeds)
    print(f"{k} per class: " + compare_pair(f"+{eda_n_aug}× EDA", "originals only", gain_iv, "validation macro-F1"))
    if "eda_minus_real" in size and pd.notna(size["eda_minus_real"]):
        real_iv = Interval(size["eda_minus_real"], size["eda_minus_real_low"], size["eda_minus_real_high"], n_seeds)
        print("   at an equal number of texts: " + compare_pair(f"{k} + EDA copies",
                                                              f"{(1 + eda_n_aug) * k} real examples", real_iv,
                                                              "validation macro-F1"))
versus.round(3)

# %% [markdown]
# With a handful of examples per class the seed-to-seed spread is as large as the effect, which is why both lines
# above are paired intervals. Wei & Zou report that EDA helps most on small training sets and that its benefit
# shrinks as data grows; with a bag-of-n-grams classifier, swaps and insertions mostly add n-gram noise.
# Augmentation never adds information the texts did not contain: it is a regulariser, and it can hurt when the
# perturbation changes what decides the label. Where real examples can be had, the equal-size lines say what
# labelling buys instead.

# %% [markdown]
# ## 7. Adapting the classifier's encoder: masked-LM DAPT
#
# Sections 1–5 adapted SmolLM2, but notebooks 06–09 classify with MiniLM, a BERT-family encoder: for the
# adaptation to reach the task, the encoder that is fine-tuned must be the one adapted. A BERT encoder is
# pretrained with the **masked-LM** objective of notebook 02 (§4): hide ~15 % of the word pieces and predict each
# from both sides. The embedded MiniLM (`all-MiniLM-L6-v2`) was trained further as a sentence embedder and ships
# *without* its masked-LM head, so we write BERT's head by hand: a dense layer (hidden → hidden), GELU, LayerNorm,
# then a decoder whose weight is the encoder's own word-embedding matrix (**tied**: the same tensor, as in
# SmolLM2's output layer of §3) plus a bias per vocabulary entry. Scoring only the masked positions keeps the
# 30,522-word softmax cheap.

# %%
import json

from torch import nn

from companion.core.models import resolve_model

from companion.lessons.n05_mlm import HEAD_FILE, WARM_HEAD_FILE, MaskedLM, MLMHead, adapted_minilm, library_masked_lm, load_masked_lm
from companion.lessons.n05_mlm_eval import before_after_table, change_sentence, collator_mask_rate, fixed_masks, interval_of, objectives_table, same_text_losses, sequence_losses


class Head(nn.Module):
    """BERT's masked-LM head, written out: transform (dense, GELU, LayerNorm), then the tied decoder + bias."""

    def __init__(self, word_embeddings: nn.Embedding, eps: float):
        super().__init__()
        vocab, hidden = word_embeddings.weight.shape
        self.dense, self.LayerNorm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=eps)
        self.decoder_weight = word_embeddings.weight  # tied: the same Parameter, not a copy
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary scores (..., vocab) for hidden states (..., hidden)."""
        return self.LayerNorm(F.gelu(self.dense(hidden))) @ self.decoder_weight.T + self.bias


enc_tokenizer = cc.load_tokenizer("minilm")
encoder = cc.load_model("minilm", "encoder")
mlm_demo = MaskedLM(encoder, Head(encoder.get_input_embeddings(), encoder.config.layer_norm_eps))
torch.manual_seed(seed)
with torch.no_grad():  # random head weights, so the comparison below checks every term, not zeros
    mlm_demo.head.dense.weight.normal_(0, 0.05)
    mlm_demo.head.bias.normal_(0, 0.1)
library = library_masked_lm(mlm_demo, resolve_model("minilm"))  # transformers' BertForMaskedLM, our head's weights
packaged = MaskedLM(encoder)  # the companion's MLMHead with the same weights
packaged.head.load_state_dict(mlm_demo.head.state_dict())
demo_batch = fixed_masks(enc_tokenizer, dataset["validation"]["text"][:4], 64, seed=seed)
demo = {k: torch.nn.utils.rnn.pad_sequence([m[k] for m in demo_batch], batch_first=True,
                                           padding_value=-100 if k == "labels" else 0) for k in demo_batch[0]}
with torch.no_grad():
    ours_out, lib_out, pkg_out = mlm_demo(**demo), library(**demo), packaged(**demo)
chosen_positions = demo["labels"] != -100
head_diff = float((ours_out.logits - lib_out.logits[chosen_positions]).abs().max())
print(f"masked positions {int(chosen_positions.sum())} · loss ours {ours_out.loss:.4f} · BertForMaskedLM "
      f"{lib_out.loss:.4f} · max |logit difference| {head_diff:.1e}")

# %%
# NBVAL_CHECK_OUTPUT
tied = mlm_demo.head.decoder_weight is encoder.embeddings.word_embeddings.weight
print("decoder weight IS the word-embedding Parameter:", tied)
print("same logits as BertForMaskedLM (max |difference| < 1e-4):", head_diff < 1e-4)
print("same loss as BertForMaskedLM (|difference| < 1e-5):", abs(float(ours_out.loss - lib_out.loss)) < 1e-5)
print("companion.lessons.n05_mlm.MLMHead gives the same logits:", torch.allclose(pkg_out.logits, ours_out.logits, atol=1e-5))
print("max |logit difference|, rounded:", round(head_diff, 3))

# %% [markdown]
# **Masking.** We mask with notebook 02's `mask_tokens`: each non-special token is chosen with probability 0.15
# and every chosen token becomes `[MASK]`. transformers' `DataCollatorForLanguageModeling` chooses at the same
# rate but then applies BERT's 80/10/10 rule (80 % of the chosen become `[MASK]`, 10 % a random token, 10 %
# stay), so that the model also learns to represent tokens it can see; a fine-tuned classifier never meets
# `[MASK]`. We keep the simpler rule (what 02 taught) and check the rate against the library:

# %%
rates = collator_mask_rate(enc_tokenizer, dataset["train"]["text"][:200], 64, seed=seed)
print(f"{rates['maskable_tokens']:,} maskable tokens · chosen by mask_tokens {rates['ours']:.3f} · by the "
      f"collator {rates['collator']:.3f} · share of the collator's chosen tokens that became [MASK] "
      f"{rates['collator_mask_share']:.2f}")

# %%
# NBVAL_CHECK_OUTPUT
print("same masking rate as DataCollatorForLanguageModeling (within 0.01):",
      abs(rates["ours"] - rates["collator"]) < 0.01)
print("the collator masks about 80 % of its chosen tokens (within 0.05):",
      abs(rates["collator_mask_share"] - 0.8) < 0.05)

# %% [markdown]
# **Warm-up, then DAPT.** A fresh head predicts nothing, so a loss measured with it says nothing about the
# encoder. We first train the head alone on general English (WikiText-2 *validation*), the encoder frozen (and
# with it the tied decoder): only the transform and the bias learn. Its loss is the **before**. Then we continue
# masked-LM training of the **whole** model on the medical *training* texts (fresh masks every batch: dynamic
# masking, as RoBERTa), with the same engine as §2. The adapted encoder is saved in the cache with a fingerprint
# (base model files, training texts, budget, code version): notebook 06 and the strategy sweep load it as a
# classifier, and any change rebuilds it.

# %%
adapted_dir = adapted_minilm(PROFILE, data, text_column, label_column, seed=seed)
mlm_history = pd.read_csv(adapted_dir / "history.csv")
mlm_runs = json.loads((adapted_dir / "summary.json").read_text())
fig, ax = plt.subplots(figsize=(7, 3.4))
sns.lineplot(data=mlm_history, x="step", y="loss", hue="phase", ax=ax)
ax.set(ylabel="masked-LM loss (nats)", title=f"head warm-up (general text), then DAPT ({domain} train split)")
plt.tight_layout()
plt.show()
pd.DataFrame(mlm_runs).T

# %% [markdown]
# **The Gururangan table, measured here.** Held-out medical text (the *validation* split, never trained on) and
# general English (WikiText-2 *test*, unseen by the warm-up), each sequence masked once with a fixed seed, so
# before and after score exactly the same masked tokens. A sequence's loss is the mean cross-entropy over its
# masked tokens; the table gives the mean over sequences with its 95 % t-interval, perplexity e^loss, and the
# change after − before as a **paired** difference per sequence with its 95 % interval (the pairing removes the
# spread between easy and hard sequences).

# %%
mlm_before = load_masked_lm("minilm", adapted_dir / WARM_HEAD_FILE).to(device)  # base encoder + warmed head
mlm_after = load_masked_lm(str(adapted_dir), adapted_dir / HEAD_FILE).to(device)  # adapted encoder + its head
mlm_sets = {domain: fixed_masks(enc_tokenizer, dataset["validation"]["text"][:cfg["mlm_eval"]], 64, seed=seed),
            "general": fixed_masks(enc_tokenizer, wiki["test"]["text"][:cfg["mlm_eval"]], 64, seed=seed)}
mlm_table = before_after_table({name: (sequence_losses(mlm_before, masks), sequence_losses(mlm_after, masks))
                                for name, masks in mlm_sets.items()})
print(change_sentence(mlm_table, domain, domain.capitalize()))
print(change_sentence(mlm_table, "general", "General-English"))
mlm_table.round(3)

# %% [markdown]
# Gururangan et al. (2020) measured, for RoBERTa-base, biomedical masked-LM loss 1.32 → 0.99 and general loss
# 1.19 → 1.63: the domain improves, general English is partly forgotten. Our absolute losses are much higher (a
# sentence embedder whose head was trained briefly, 64-token windows, a laptop's budget of steps), so compare the
# directions and the intervals, not the values. Training the whole encoder to predict masked tokens could also
# lower the general loss (it relearns masked-LM prediction in general, not only medical phrasing), so the
# domain-specific part is how the two changes compare:

# %%
domain_iv, general_iv = interval_of(mlm_table, domain), interval_of(mlm_table, "general")
overlap = domain_iv.low <= general_iv.high and general_iv.low <= domain_iv.high
print(f"change after − before: {domain} {domain_iv}; general {general_iv}")
if overlap:
    print("the two changes' intervals overlap: this run does not show a domain-specific effect")
else:
    lower = domain if domain_iv.mean < general_iv.mean else "general"
    print(f"the {lower} loss moved down more, by {abs(domain_iv.mean - general_iv.mean):.3f} nats, with the two "
          f"intervals apart" + (": the adaptation is specific to the domain" if lower == domain else ""))

# %% [markdown]
# **The four families' objectives.** The source text names BERT, GPT, XLNet and RoBERTa. They differ first in
# what they are trained to predict:

# %%
objectives_table()

# %% [markdown]
# Both objectives used in this course, measured on the same medical sentences: MiniLM with the warmed head
# (masked LM) and the unadapted SmolLM2 of §1 (causal LM).

# %%
same_text = same_text_losses(mlm_before, enc_tokenizer, base, tokenizer, dataset["validation"]["text"][:8], 64,
                             seed=seed, names=("MiniLM + warmed head", model_name))
print("not directly comparable: the two models cut the text into different tokens (WordPiece vs BPE), and a "
      "masked token is predicted from both sides while a next token sees only its left")
same_text.round(3)

# %% [markdown]
# ## Exercises
#
# **2.** By how many percent did the general (WikiText-2) perplexity change during full continued pretraining
# (negative: it fell)? Use `before["general"]` and `after["general"]`.

# %%
forgetting = None  # your answer: a float, in percent
check_forgetting_pct(forgetting, before["general"], after["general"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: relative change of the general perplexity after adaptation, in per cent
forgetting = 100 * (after["general"] / before["general"] - 1)
check_forgetting_pct(forgetting, before["general"], after["general"])

# %% [markdown]
# **3.** How many weights does embedding-only tuning train? Compute it from `base.config` (and remember the tie).

# %%
embedding_weights = None  # your answer: an integer
check_embedding_params(embedding_weights, base)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: one embedding row of hidden_size numbers per vocabulary entry (tied with the output layer)
embedding_weights = base.config.vocab_size * base.config.hidden_size
check_embedding_params(embedding_weights, base)

# %% [markdown]
# **4.** The replay stream has as many blocks as the domain stream. How many of its blocks are general text
# when `replay_fraction` is 0.4 and the domain stream has `len(train_blocks)` blocks?

# %%
general_blocks = None  # your answer: an integer
check_replay_blocks(general_blocks, len(train_blocks), 0.4)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: the general share of the stream's blocks, rounded to a whole block
general_blocks = round(0.4 * len(train_blocks))
check_replay_blocks(general_blocks, len(train_blocks), 0.4)

# %% [markdown]
# **5.** Write EDA's random deletion yourself: `my_deletion(words, p, rng)` keeps each word (in order) with
# probability 1 − p, returns a one-word text unchanged and never returns an empty list.

# %%
my_deletion = None  # your answer: a function (words: list[str], p: float, rng: random.Random) -> list[str]
check_random_deletion(my_deletion)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: keep each word with probability 1 − p, in order; fall back to one random word
def my_deletion(words: list[str], p: float, rng: random.Random) -> list[str]:
    """Drop each word with probability p; keep one random word if all were dropped."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() >= p]
    return kept or [rng.choice(words)]


check_random_deletion(my_deletion)

# %% [markdown]
# ## Summary
#
# * Continued pretraining is the fine-tuning loop of notebook 06 fed causal-LM batches (labels = input ids,
#   shifted inside the model), evaluated by held-out perplexity on the domain and on general English.
# * Embedding-only tuning trains only the tied embedding/output matrix; the cells above measured its share of
#   the weights, of the training time and of the adaptation.
# * Replay mixes general text back into the same budget; the cells above measured what it changed on both sides.
# * EDA augmentation is cheap; its effect on the domain classifier is small and size-dependent, so measure it
#   over seeds before trusting it.
# * The adapted model is saved as safetensors (`artifacts/smollm2-medical-dapt` in the cache) for later notebooks.
# * Masked-LM DAPT adapts the classifier's own encoder: a hand-written BERT head (tied decoder, equal to
#   `BertForMaskedLM`), warmed on general text, then the whole MiniLM trained on the medical training texts; the
#   table above gives the medical and general masked-LM loss before and after with paired 95 % intervals, and
#   the adapted encoder is cached for notebook 06 and the strategy sweep.
# * BERT and RoBERTa predict masked tokens from both sides, GPT the next token, XLNet tokens in a permuted order;
#   their losses are not comparable across tokenisers and contexts.

# %%
results = {
    "notebook": "05_domain_adaptation", "profile": PROFILE, "seed": seed, "device": device.type,
    "model": model_name, "block_size": cfg["block_size"], "steps": cfg["max_steps"], "batch_size": cfg["batch_size"],
    "train_tokens": int(full.tokens_seen), "lr": cfg["lr"], "embedding_lr": embedding_lr,
    "domain_ppl_before": before["domain"], "domain_ppl_after": after["domain"], "domain_drop_pct": domain_drop_pct,
    "general_ppl_before": before["general"], "general_ppl_after": after["general"], "forgetting_pct": forgetting_pct,
    "general_ppl_min": float(general_curve.min()), "general_min_step": general_min_step,
    "general_rise_from_min_pct": general_rise_from_min_pct,
    "full": row(full, "full"), "embedding_only": row(emb, "embedding-only") | moved,
    "replay": row(replay, "replay") | {"fraction": replay_fraction},
    "embeddings_tied": embeddings_tied(base),
    "augmentation": {"alpha": eda_alpha, "n_aug": eda_n_aug, "seeds": int(aug["seed"].nunique()),
                     "macro_f1": {str(k): v for k, v in gain.round(4).to_dict(orient="index").items()},
                     "mean_gain": float(gain["gain"].mean()),
                     "versus": {str(k): {c: float(v) for c, v in size.items() if pd.notna(v)}
                                for k, size in versus.iterrows()}},
    "perplexity_change": {name: {"loss_change": iv.mean, "low": iv.low, "high": iv.high, "blocks": iv.n}
                          for name, iv in changes.items()},
    "saved_model": artifact, "reload_matches": abs(ppl_saved - ppl_reloaded) < 1e-3,
    "mlm": {"adapted_dir_name": adapted_dir.name, "eval_sequences": int(mlm_table["sequences"].min()),
            **{f"{name}_loss_{when}": float(mlm_table.loc[name, f"loss_{when}"]) for name in mlm_table.index
               for when in ("before", "after")},
            **{f"{name}_change_{k}": float(mlm_table.loc[name, f"change_{k}" if k != "mean" else "change"])
               for name in mlm_table.index for k in ("mean", "low", "high")},
            "head_matches_library": head_diff < 1e-4, "same_text_loss": same_text["loss_nats"].round(4).to_dict(),
            "warm_steps": mlm_runs["warm-up"]["steps"], "dapt_steps": mlm_runs["dapt"]["steps"]},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("05_domain_adaptation", results)
pd.Series({k: v for k, v in results.items() if not isinstance(v, dict)}, name="value").to_frame()
