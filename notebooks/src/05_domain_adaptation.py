# %% [markdown]
# # 05 · Adapting a language model to the domain
#
# Notebook 04 measured the gap between general English and medical abstracts. Here we close part of it, and
# check what closed it. We continue the pretraining of SmolLM2 on medical text (domain-adaptive pretraining,
# "DAPT" in Gururangan et al. 2020), then do the same for the encoder that notebooks 06–09 classify with (MiniLM).
# Each adaptation gets a **control**: the same training on general text for as many steps, so that what is
# specific to the domain can be told apart from what any further training gives.
#
# **In this notebook you will**
# 1. build a next-token training stream from the medical **training** split only, held-out blocks from the end of
#    that split (to choose the rate and the steps), and fixed evaluation blocks (medical validation text,
#    WikiText-2 test);
# 2. check the causal-LM batch by hand, then run continued pretraining with the training loop of notebook 06: the
#    rate chosen on held-out domain blocks from a grid that brackets the best, the steps from the held-out curve, a
#    control run on general text and a replay run, each model scored block by block with paired 95 % intervals;
# 3. predict, then measure, what training only the (tied) embedding matrix costs per step;
# 4. mix general text back in (replay) and measure what it changes, with its interval;
# 5. reload the saved adapted model and check it;
# 6. augment the labelled domain data with EDA token operations and measure where it helps or hurts;
# 7. adapt the classifier's encoder (MiniLM) with masked-LM DAPT: write BERT's head and its 80/10/10 masking and
#    check both against transformers, warm the head until it plateaus and compare it with a unigram baseline,
#    train the encoder alone (head frozen) with a rate search and a control run, and read the before / after /
#    control table and a fill-mask table;
# 8. compare the pretraining objectives of BERT, GPT, XLNet and RoBERTa.
#
# **Prerequisites**: notebooks 01 (next-token probability, perplexity), 02 (masked-LM labels) and 04 (the domain
# gap this notebook closes); notebook 06's training loop is the same engine, so reading either first works.
#
# **Time**: about 75 minutes of study for a person. Machine time (kernel start and model loading included) is
# printed by the last cell and kept in `notebooks/results/05_domain_adaptation.results.json` (`seconds`;
# BENCHMARKS.md lists every notebook's, cold and warm): `smoke` runs in about half a minute; at `cpu` the first run also
# builds both adapted models (over an hour on 2 CPU cores), later runs read them from the cache. Training runs in
# bf16 autocast where the CPU has it natively.
# `gpu`: not timed yet (`bash bench/gpu.sh` measures it).

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for python, numpy and torch (and of both adaptations)
precision: str = "auto"  # one of: auto, fp32, bf16; training precision (auto: bf16 where the CPU or GPU has it natively, under cpu/gpu profiles)
model_name: str = "smollm2"  # causal LM to adapt: embedded name, local folder or Hugging Face id
data: str = "medical_abstracts"  # domain data: registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
max_steps: Optional[int] = None  # range: [1, inf); step cap of each continued-pretraining run; None means the profile default
block_size: Optional[int] = None  # range: [2, inf); tokens per training block; None means the profile default
lr: Optional[float] = None  # range: (0, inf); centre of the continued-pretraining rate grid (rates ×3 apart); None means the profile default
embedding_lr: float = 2e-4  # range: (0, inf); learning rate of the embedding-only timing runs
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
from torch import nn

import companion as cc
from companion.core.device import training_precision
from companion.lessons.n05_adaptation import DAPT_SETTINGS, CausalDapt, adaptation_record, adapted_smollm2, block_losses, blocks_perplexity, causal_lm_batch, embeddings_tied, recipe_blocks, set_trainable, step_times
from companion.lessons.n05_compare import attribution, attribution_lines, interval, loss_table, paired_table
from companion.checks.n05 import check_embedding_params, check_forgetting_pct, check_replay_blocks, check_step_flops_ratio
from companion.lessons.n05_augmentation import augmentation_experiment, augmentation_gain, augmentation_vs_more_data, eda
from companion.checks.n05 import check_random_deletion, check_whole_word_function
from companion.core.stats import Interval, compare as compare_pair
from companion.core.data import load_text_classification, load_wikitext2

cc.check_values("05", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed, precision)  # resolve the profile, seed, device; print the precision; start a clock
train_precision = training_precision(precision, PROFILE)  # what the training runs below put in TrainConfig(mixed_precision=…)
cfg = cc.settings(PROFILE, {  # continued pretraining's settings are DAPT_SETTINGS: notebook 08 loads the same model
    "smoke": DAPT_SETTINGS["smoke"] | {"timing_steps": 2, "timing_rounds": 1, "aug_per_class": [2, 10],
                                       "aug_seeds": [0, 1], "mlm_eval": 16},
    "cpu": DAPT_SETTINGS["cpu"] | {"timing_steps": 6, "timing_rounds": 2, "aug_per_class": [5, 10, 25, 50],
                                   "aug_seeds": [0, 1, 2, 3, 4], "mlm_eval": 400},
    "gpu": DAPT_SETTINGS["gpu"] | {"timing_steps": 20, "timing_rounds": 2, "aug_per_class": [5, 10, 25, 50, 100, 200],
                                   "aug_seeds": [0, 1, 2, 3, 4], "mlm_eval": 2000},
}, max_steps=max_steps, block_size=block_size, lr=lr, replay_fraction=replay_fraction)
dapt = CausalDapt.from_row(cfg)  # the continued-pretraining settings as one object
print("profile:", PROFILE, "· device:", device.type, "· training precision:", train_precision)
pd.Series(cfg, name=PROFILE).to_frame()

# %% [markdown]
# ## 1. Data: a domain stream, held-out blocks and fixed evaluation blocks
#
# Continued pretraining is plain next-token prediction, so labels are not needed: we concatenate the medical
# abstracts of the **training split** (each followed by the end-of-text token) and cut the token stream into
# equal blocks, the `group_texts` recipe of the Hugging Face course. Three other kinds of blocks never enter that
# stream:
#
# * **held-out domain blocks**: the last `holdout_texts` texts of the training split. The learning rate and the
#   number of steps are chosen on them, so the evaluation blocks stay untouched by every choice;
# * **evaluation blocks**: medical **validation** abstracts (the domain) and WikiText-2 **test** paragraphs
#   (general English), scored once per final model;
# * **general training blocks**: WikiText-2 **validation**, for the control run (general text instead of medical)
#   and the replay stream; they share a source with the general evaluation text, not a paragraph.

# %%
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
domain = "medical" if data == "medical_abstracts" else "domain"  # how the printed text names the data
wiki = load_wikitext2()
tokenizer = cc.load_tokenizer(model_name)
blocks = recipe_blocks(tokenizer, (data, text_column, label_column), dapt)  # exactly the recipe's blocks
pd.DataFrame({"blocks": [len(b) for b in blocks.values()], "tokens": [b.numel() for b in blocks.values()],
              "used for": ["continued pretraining (the stream)", "choosing the rate and the steps",
                           "the control run and replay", "evaluation (domain)", "evaluation (general)"],
              "text": [f"{domain} train split except its last texts",
                       f"the last {dapt.holdout_texts} texts of the {domain} train split (at most a fifth)",
                       "WikiText-2 validation",
                       f"{domain} validation split", "WikiText-2 test"]}, index=list(blocks))

# %% [markdown]
# The perplexity of a block is the exponent of the mean next-token negative log-likelihood of its tokens. We
# check the companion's `blocks_perplexity` against the model's own loss (`labels=input_ids`), which averages
# the same per-token NLLs:

# %%
base = cc.load_model(model_name, "causal-lm").to(device)
probe = blocks["domain"][:2].to(device)
with torch.no_grad():
    own = torch.exp(base(input_ids=probe, labels=probe).loss).item()
ours = blocks_perplexity(base, blocks["domain"][:2])
print(f"blocks_perplexity {ours:.3f} · exp(model loss) {own:.3f} · |difference| < 1e-3: {abs(ours - own) < 1e-3}")

# %% [markdown]
# ## 2. Continued pretraining on the domain: the loop of notebook 06, fed causal-LM batches
#
# Continued pretraining is the fine-tuning loop of notebook 06 with another kind of batch. A **causal-LM batch**
# is a stack of token blocks whose labels *are* the input ids: the model shifts them inside, so the logits at
# position t are scored against the token at t + 1, and the loss is the cross-entropy of those next-token
# predictions. We check that by hand on two blocks:

# %%
lm_batch = causal_lm_batch([blocks["train"][0], blocks["train"][1]])
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
# linear decay, gradients clipped at norm 1, 🤗 `accelerate`, bf16 autocast where the hardware has it). Three things
# change for a language model: the batches (`causal_lm_batch`), the budget (a number of steps: `TrainConfig(epochs=None,
# max_steps=…)` runs as many epochs as the steps need) and the evaluation, the mean next-token loss of the held-out
# blocks every `eval_every` steps, where lower is better. `dapt.train_config` writes those settings; here are the
# ones a search run gets:

# %%
search_config = dapt.train_config(dapt.lr, seed=seed, precision=train_precision, desc="rate search")
pd.Series({k: getattr(search_config, k) for k in ("epochs", "max_steps", "batch_size", "lr", "weight_decay",
                                                  "warmup_ratio", "eval_every", "patience", "metric",
                                                  "greater_is_better", "restore_best", "mixed_precision")},
          name="TrainConfig").to_frame()

# %% [markdown]
# **The recipe** (`adapted_smollm2`, cached with a fingerprint of the model files, the texts and these settings):
#
# 1. **rate**: a run per rate of a grid ×3 apart around `lr`, each scored on the held-out domain blocks and stopped
#    early once the held-out loss stops falling; while the best rate is the smallest or the largest tried, the grid
#    grows on that side (`companion.core.rates.search_rate`, the rule notebooks 06–09 use);
# 2. **steps**: the step of the chosen run's lowest held-out loss (or the cap, `max_steps`);
# 3. **adapted**: the chosen rate for those steps on the domain stream; **control**: the same rate and steps on
#    general text (WikiText-2 validation); **replay**: the same, with a share `replay_fraction` of the domain blocks
#    replaced by general ones;
# 4. every model (before, adapted, control, replay) scores each evaluation block once; the record keeps the
#    per-block losses, so every comparison below is paired block by block.
#
# The first call trains (the cold run; see the time above); later calls, and notebook 08, read the cache.

# %%
adapted_folder = adapted_smollm2(PROFILE, data, model_name, seed, precision, text_column, label_column, settings=dapt)
record = adaptation_record(adapted_folder)
print(f"{record['provenance']}")
rates = pd.DataFrame(record["rate_search"])
print(f"chosen rate {record['lr']:.2g} ({record['position']} of the {len(rates)} rates tried) · steps {record['steps']} "
      f"of a cap of {dapt.max_steps} · the cold build took {record['seconds'] / 60:.1f} min")
rates.round(4).assign(lr=rates["lr"].map("{:.2g}".format))

# %% [markdown]
# A rate whose best is `interior` is bracketed: a smaller and a larger rate both did worse on the held-out blocks.
# `lowest tried` or `highest tried` means the search hit its extension limit, and the rate is only the best of
# those tried. The curves show where each run stood when it stopped:

# %%
search_curves = pd.concat([pd.DataFrame(run["evals"]).assign(lr=f"{float(rate):.2g}")
                           for rate, run in record["search_runs"].items()])
search_train = pd.concat([pd.DataFrame(run["history"]).assign(lr=f"{float(rate):.2g}")
                          for rate, run in record["search_runs"].items()])
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
sns.lineplot(data=search_train, x="step", y="loss", hue="lr", ax=axes[0])
axes[0].set(title=f"training loss ({domain} stream)", ylabel="next-token loss (nats)")
sns.lineplot(data=search_curves, x="step", y="loss", hue="lr", marker="o", ax=axes[1])
axes[1].axvline(record["steps"], color="grey", lw=0.8, ls="--")
axes[1].set(title=f"held-out {domain} loss (steps chosen: dashed)", ylabel="next-token loss (nats)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Before, after, and the control.** Each model scored the same evaluation blocks; the table gives the mean
# next-token loss with its 95 % interval and the perplexity e^loss. The paired table below it gives the differences
# block by block (negative: the first model's loss is lower) with their 95 % intervals.

# %%
causal_losses = record["block_losses"]  # model → set → one loss per evaluation block
causal_table = loss_table(causal_losses)
before = {name: causal_table.loc[("base", name), "perplexity"] for name in ("domain", "general")}
after = {name: causal_table.loc[("adapted", name), "perplexity"] for name in ("domain", "general")}
domain_drop_pct = 100 * (1 - after["domain"] / before["domain"])
forgetting_pct = 100 * (after["general"] / before["general"] - 1)
causal_table.round(3)

# %%
causal_pairs = paired_table(causal_losses, [("adapted", "base"), ("control", "base"), ("replay", "base"),
                                            ("adapted", "control"), ("replay", "adapted")])
causal_pairs.round(3)

# %% [markdown]
# **Reading it.** The model is SmolLM2-135M-**Instruct**, de-quantised from a 4-bit (Q4_1) GGUF file: it was
# tuned to answer chat prompts and then rounded to 4 bits, so plain running text is not quite what it was last
# trained on. Any continued pretraining on plain text can lower its loss on *every* text, by teaching it the format
# again (running prose, blocks that start mid-sentence) and repairing some of what instruction tuning and
# quantisation cost, whatever the text is about. The control separates the two: it trains on general text for the
# same steps at the same rate. If the general loss falls as much under medical training as under general training,
# the fall is format / recovery, not domain; the medical loss tells the domain-specific part by how much further
# medical training lowers it than general training does (adapted − control on the medical blocks).

# %%
causal_found = attribution(causal_pairs, ("adapted", "control", "base"), ("domain", "general"),
                           generic="format: plain running text again for an instruction-tuned, 4-bit-rounded model")
for line in attribution_lines(causal_found, {"domain": domain, "a": "adapted", "c": "control", "b": "before"}):
    print(line)
print(f"{domain} perplexity {before['domain']:.2f} → {after['domain']:.2f} ({-domain_drop_pct:+.1f} %) · general "
      f"perplexity {before['general']:.2f} → {after['general']:.2f} ({forgetting_pct:+.1f} %) after "
      f"{record['steps']} steps ({record['steps'] * dapt.batch_size * dapt.block_size:,} training tokens); the "
      f"control's: {domain} "
      f"{causal_table.loc[('control', 'domain'), 'perplexity']:.2f}, general "
      f"{causal_table.loc[('control', 'general'), 'perplexity']:.2f}")

# %% [markdown]
# The intervals are over evaluation **blocks**: they say how sure the difference between two trained models is on
# text like this, not how much another training seed would move it (one run per model here; notebook 09 repeats
# runs over seeds).
#
# **Beside the published numbers.** Gururangan et al. (2020) continued RoBERTa-base's pretraining on 7.55 B
# tokens of biomedical papers: its masked-LM loss on held-out biomedical text fell from 1.32 to 0.99 (Table 1,
# perplexity e^1.32 ≈ 3.7 → e^0.99 ≈ 2.7, −28 %), while its loss on general text rose from 1.19 to 1.63
# (Table 12, perplexity +55 %). The Hugging Face course (ch. 7.3) adapts DistilBERT to IMDb reviews and reports
# perplexity 21.75 → 11.32 (−48 %). Those are masked-LM perplexities of base models on other corpora, after far
# more tokens; here an instruction-tuned, 4-bit-rounded causal LM trains on the few tokens printed above, so compare
# the *directions* and the control, not the values.

# %% [markdown]
# ## 3. Embedding-only ("word vector") fine-tuning: what it costs per step
#
# The older recipe adapts only the word vectors and leaves the network frozen. In SmolLM2 the input
# embedding matrix is **tied** to the output layer (the same tensor scores the next token), so "embedding-only"
# here also retrains the output layer: every gradient from the softmax lands in the same matrix. We check the
# tie and count the weights. Backpropagation still has to pass through every frozen layer to reach the input
# embeddings; the frozen weights need no gradient and no optimiser state.

# %%
# NBVAL_CHECK_OUTPUT
config = base.config
print("input and output embeddings are one tensor:", embeddings_tied(base))
print(f"embedding matrix: {config.vocab_size:,} tokens × {config.hidden_size} dimensions = "
      f"{config.vocab_size * config.hidden_size:,} weights, "
      f"{config.vocab_size * config.hidden_size / cc.count_parameters(base)['total']:.1%} of the model's")

# %% [markdown]
# **Exercise 1 (predict, then measure).** Before the next cells run: what share of a full training step's **work**
# (floating-point operations, forward and backward) does an embedding-only step need, on the same batch? A number,
# e.g. 0.5 for half. Reason from what backpropagation must still compute when most weights are frozen. Then PyTorch
# counts the operations of both steps, and the clock times them.

# %%
predicted_flops_ratio = None  # your prediction: operations of an embedding-only step / operations of a full step

# %% [markdown]
# PyTorch's `FlopCounterMode` records every matrix multiplication and attention product that runs, with its
# operation count; autograd runs only the backward products it needs, so a frozen weight's gradient is simply
# never computed. The count is exact and the same on every machine. Time is measured too: fresh copies of the
# model train `timing_steps` steps in each mode, in this process, on the same batches, the two modes alternating
# over `timing_rounds` rounds so that both meet the same machine load (training time alone, no evaluation).

# %%
from torch.utils.flop_counter import FlopCounterMode


def step_flops(model: nn.Module, batch: torch.Tensor, mode: str) -> int:
    """Floating-point operations of one forward and backward pass of a copy of `model` when `mode` trains."""
    trained = copy.deepcopy(model)
    set_trainable(trained, mode)  # full: every weight; embeddings: only the tied embedding matrix
    with FlopCounterMode(display=False) as counter:
        trained(input_ids=batch, labels=batch).loss.backward()
    return counter.get_total_flops()


flops = {mode: step_flops(base, blocks["train"][:1], mode) for mode in ("full", "embeddings")}
flops_ratio = flops["embeddings"] / flops["full"]
timing_config = dapt.train_config(embedding_lr, steps=cfg["timing_steps"], seed=seed, precision=train_precision,
                                  progress=False, desc="timing")
timing = step_times(base, blocks["train"][: cfg["timing_steps"] * dapt.batch_size], timing_config,
                    rounds=cfg["timing_rounds"])
per_step = timing.groupby("mode")["seconds_per_step"].median()
trainable = timing.groupby("mode")["trainable"].first()
by_round = timing.pivot(index="round", columns="mode", values="seconds_per_step")
round_ratios = (by_round["embeddings"] / by_round["full"]).tolist()  # one paired ratio per round
time_ratio = float(pd.Series(round_ratios).median())
print(f"operations per step (one block): full {flops['full']:.3g}, embedding-only {flops['embeddings']:.3g} → "
      f"ratio {flops_ratio:.3f}, while it trains {trainable['embeddings'] / trainable['full']:.0%} of the weights")
print(f"seconds per step (median of {cfg['timing_rounds']} runs of {cfg['timing_steps']} steps): full "
      f"{per_step['full']:.3f}, embedding-only {per_step['embeddings']:.3f}; time ratio per round "
      f"{', '.join(f'{r:.2f}' for r in round_ratios)}")
check_step_flops_ratio(predicted_flops_ratio, flops["embeddings"], flops["full"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: count work in forward units (forward 1, backward 2: activation gradients 1 + weight gradients 1)
share = base.config.vocab_size * base.config.hidden_size / cc.count_parameters(base)["total"]
predicted_flops_ratio = round((1 + 1 + share) / 3, 2)  # frozen layers skip their weight gradients, not the activation ones
check_step_flops_ratio(predicted_flops_ratio, flops["embeddings"], flops["full"])

# %% [markdown]
# The count follows the forward-1, backward-2 argument closely. The clock follows it only roughly, and how
# closely depends on the machine: a CPU step also pays for memory traffic, for the optimiser's update (AdamW reads
# and writes several numbers per *trained* weight: every weight in a full step, only the embedding matrix here,
# whose gradient is dense even though a batch uses a few hundred of its rows) and for whatever else shares the
# cores. So compare the printed time ratios, round by round, with the operations ratio: a time ratio below it
# means the full step's extra optimiser work weighs more than its share of the operations.

# %% [markdown]
# What embedding-only tuning would *achieve* is another experiment: it needs its own rate search and the same
# budget as the full run, as every comparison in notebooks 06–09 does (notebook 07 measures frozen layers that
# way). Here we measured only its cost.
#
# ## 4. Replay: mixing general text back in
#
# The usual, cheapest guard against forgetting is to keep showing the model some general text. Whether there was
# anything to guard against in this run is §2's general line (adapted − base): where general loss *fell*, the
# instruction-format recovery explained there outweighed any forgetting, and replay can only be judged on the domain. The recipe's replay run
# replaces a share `replay_fraction` of the domain blocks by WikiText-2 *validation* blocks and keeps the rate, the
# number of steps and the tokens. Both runs scored the same evaluation blocks, so replay's effect is a paired
# difference per block:

# %%
replay_iv = {name: interval(causal_pairs, "replay", "adapted", name) for name in ("domain", "general")}
for name, what in (("domain", f"{domain} text"), ("general", "general English")):
    print(compare_pair(f"{replay_fraction:.0%} replay", "no replay", replay_iv[name],
                       f"next-token loss on {what} ({replay_iv[name].n} blocks; lower is better)",
                       higher_is_better=False))
changes = causal_pairs.reset_index()
changes = changes[changes["difference"].isin(["adapted − base", "control − base", "replay − base"])]
fig, ax = plt.subplots(figsize=(7.5, 3.6))
for i, (name, group) in enumerate(changes.groupby("set", sort=False)):
    x = [j + 0.2 * (2 * i - 1) for j in range(len(group))]
    ax.errorbar(x, group["change"], yerr=[group["change"] - group["low"], group["high"] - group["change"]],
                fmt="o", capsize=4, label=f"{domain if name == 'domain' else name} blocks")
ax.axhline(0, color="grey", lw=0.8)
ax.set_xticks(range(3), ["trained on domain\n(adapted)", "trained on general\n(control)",
                         f"domain + {replay_fraction:.0%} general\n(replay)"])
ax.set(ylabel="loss change vs before (nats)\n< 0: better", title="paired change per evaluation block, 95 % interval")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Read the size of the general effect with care: the replay pool (WikiText-2 *validation*) and the general
# evaluation (WikiText-2 *test*) come from the same source, so replay (and the control) do not only protect general
# English, they also adapt the model to WikiText itself. With a replay corpus unlike the evaluation text, expect a
# smaller general effect. The intervals are over blocks of one run each; where the balance lies also depends on the
# fraction: re-run with `replay_fraction=0.5` (`python -m companion run 05 -p replay_fraction 0.5`) and compare.
#
# ## 5. Reload the adapted model
#
# The recipe saved the adapted model with `save_pretrained` (the weights as `model.safetensors`, with the config,
# the tokenizer and the record `adaptation.json`) in the cache, `artifacts/smollm2-<data>-dapt-<profile>`. Notebook 08
# asks for the same model and gets this copy, or rebuilds it when anything in its fingerprint changed. We reload it
# as any later notebook would and check that it scores the evaluation blocks as the record says: the reloaded model
# gives the same perplexity, block by block.

# %%
reloaded = cc.load_model(str(adapted_folder), "causal-lm").to(device)
reloaded_losses = block_losses(reloaded, blocks["domain"])
reload_diff = float((reloaded_losses - torch.tensor(causal_losses["adapted"]["domain"])).abs().max())
artifact = adapted_folder.name
print("files:", sorted(p.name for p in adapted_folder.iterdir() if p.suffix in (".safetensors", ".json")))
print(f"reloaded: the same per-block {domain} losses as the record (max |difference| < 1e-3): {reload_diff < 1e-3}")
del reloaded

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
helped = [int(k) for k, size in versus.iterrows() if size["eda_gain_low"] > 0]
print("EDA helped (interval above 0) at:", ", ".join(f"{k} per class" for k in helped) or "no size tried",
      f"· smallest size tried: {min(versus.index)} per class")
versus.round(3)

# %% [markdown]
# With a handful of examples per class the seed-to-seed spread is as large as the effect, which is why both lines
# above are paired intervals. Wei & Zou report that EDA helps most on small training sets and that its benefit
# shrinks as data grows: compare the sizes where this run found it helping (the last printed line) with that
# expectation; where the smallest size shows no gain, the run disagrees with the paper at that size. The
# equal-size line exists only where (1 + `eda_n_aug`)·k is itself one of the sizes tried (`NaN` elsewhere); with a bag-of-n-grams classifier, swaps and insertions mostly add n-gram noise.
# Augmentation never adds information the texts did not contain: it is a regulariser, and it can hurt when the
# perturbation changes what decides the label. Where real examples can be had, the equal-size lines say what
# labelling buys instead.

# %% [markdown]
# ## 7. Adapting the classifier's encoder: masked-LM DAPT
#
# Sections 1–5 adapted SmolLM2, but notebooks 06–09 classify with MiniLM, a BERT-family encoder: for the
# adaptation to reach the task, the encoder that is fine-tuned must be the one adapted. A BERT encoder is
# pretrained with the **masked-LM** objective of notebook 02 (§4): hide ~15 % of the word pieces and predict each
# from both sides. The embedded MiniLM (`all-MiniLM-L6-v2`) was distilled without a masked-LM head and then trained
# further as a sentence embedder, so it ships *without* one. We write BERT's head by hand: a dense layer
# (hidden → hidden), GELU, LayerNorm, then a decoder whose weight is the encoder's own word-embedding matrix
# (**tied**: the same tensor, as in SmolLM2's output layer of §3) plus a bias per vocabulary entry. Scoring only the
# masked positions keeps the 30,522-word softmax cheap.

# %%
import json

from IPython.display import display
from safetensors.torch import load_file

from companion.core.models import resolve_model
from companion.lessons.n05_mlm import HEAD_FILE, MaskedLM, bert_masking, library_masked_lm, special_mask, windows
from companion.lessons.n05_mlm_eval import eval_masks, fill_mask_table, head_vs_unigram, masked_sentences, objectives_table, same_text_losses, sequence_losses, unigram_losses
from companion.lessons.n05_mlm_recipe import UNIGRAM_FILE, adapted_minilm, budget, load_masked_lm


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
mlm_length = budget(PROFILE)["max_length"]  # the window length of this profile's masked-LM recipe
encoder = cc.load_model("minilm", "encoder")
mlm_demo = MaskedLM(encoder, Head(encoder.get_input_embeddings(), encoder.config.layer_norm_eps))
torch.manual_seed(seed)
with torch.no_grad():  # random head weights, so the comparison below checks every term, not zeros
    mlm_demo.head.dense.weight.normal_(0, 0.05)
    mlm_demo.head.bias.normal_(0, 0.1)
library = library_masked_lm(mlm_demo, resolve_model("minilm"))  # transformers' BertForMaskedLM, our head's weights
packaged = MaskedLM(encoder)  # the companion's MLMHead with the same weights
packaged.head.load_state_dict(mlm_demo.head.state_dict())
demo = eval_masks(enc_tokenizer, dataset["validation"]["text"][:4], mlm_length, 4, seed=seed)
demo = {k: torch.nn.utils.rnn.pad_sequence([m[k] for m in demo], batch_first=True,
                                           padding_value=-100 if k == "labels" else 0) for k in demo[0]}
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

# %% [markdown]
# **Masking, BERT's way.** Each non-special token is *chosen* with probability 0.15 and its label keeps the true
# token (every other label is −100, ignored by the loss). Of the chosen tokens, 80 % become `[MASK]`, 10 % a random
# token and 10 % stay as they are: the model must represent every token it sees, since any of them may be scored,
# and a fine-tuned classifier never meets `[MASK]`. Written out, drawing from one generator in the order
# transformers' `DataCollatorForLanguageModeling` draws:

# %%
def mask_like_bert(input_ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab_size: int,
                   p: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking: (model inputs, labels with -100 where nothing is scored)."""
    chosen = torch.bernoulli(torch.full(input_ids.shape, p).masked_fill(special, 0.0), generator=generator).bool()
    labels = input_ids.masked_fill(~chosen, -100)  # score only the chosen tokens
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[to_mask] = mask_id  # 80 % of the chosen
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & chosen & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, dtype=torch.long, generator=generator)
    inputs[to_random] = random_ids[to_random]  # half of the other 20 %; the last 10 % stay as they were
    return inputs, labels


from transformers import DataCollatorForLanguageModeling

mask_items = windows(enc_tokenizer, dataset["train"]["text"][:40], mlm_length)  # padded into batches below
collator = DataCollatorForLanguageModeling(enc_tokenizer, mlm_probability=0.15, seed=seed)
generator, same, package_same = torch.Generator().manual_seed(seed), [], []
for batch_items in (mask_items[:16], mask_items[16:32]):  # two batches: the generator carries on between them
    theirs = collator([dict(item) for item in batch_items])
    padded_batch = enc_tokenizer.pad([dict(item) for item in batch_items], return_tensors="pt")
    special = special_mask(padded_batch["input_ids"], padded_batch["attention_mask"], enc_tokenizer)
    state = generator.get_state()
    mine = mask_like_bert(padded_batch["input_ids"], special, enc_tokenizer.mask_token_id, len(enc_tokenizer), 0.15,
                          generator)
    same.append(torch.equal(mine[0], theirs["input_ids"]) and torch.equal(mine[1], theirs["labels"]))
    package = bert_masking(padded_batch["input_ids"], special, enc_tokenizer.mask_token_id, len(enc_tokenizer), 0.15,
                           torch.Generator().set_state(state))
    package_same.append(torch.equal(package[0], mine[0]) and torch.equal(package[1], mine[1]))
chosen = mine[1] != -100
shown = mine[0][chosen]
print(f"last batch: {int(chosen.sum())} chosen of {int((~special).sum())} maskable tokens "
      f"({chosen.sum() / (~special).sum():.1%}); of the chosen, [MASK] {(shown == enc_tokenizer.mask_token_id).float().mean():.0%}, "
      f"kept {(shown == mine[1][chosen]).float().mean():.0%}, the rest random")

# %%
# NBVAL_CHECK_OUTPUT
print("inputs and labels equal to DataCollatorForLanguageModeling's, batch by batch:", all(same))
print("companion.lessons.n05_mlm.bert_masking gives the same masks:", all(package_same))

# %% [markdown]
# **A head that works before adaptation.** A fresh head predicts nothing, so a loss measured with it says nothing
# about the encoder. The recipe (`adapted_minilm`) first warms the head with the encoder frozen: it runs the encoder
# **once** over masked windows (general text from WikiText-2 *validation* and medical *training* texts), stores the
# hidden state and the true token of every masked position, and trains the head's own weights (dense, LayerNorm,
# bias; the tied decoder is the encoder's and stays fixed) on those stored states with the course's loop, scoring
# held-out windows every few steps and stopping when their loss stops falling. Thousands of steps cost what a few
# hundred encoder passes do. Then:
#
# * the head is **frozen**; DAPT trains the encoder alone (its word-embedding table, which the decoder shares,
#   included) with the masked-LM loss on the medical training texts, fresh 80/10/10 masks every batch (dynamic
#   masking, as RoBERTa), at a rate chosen on held-out medical windows (the last texts of the training split) from a
#   bracketed grid, each run stopped when the held-out loss stops falling;
# * a **control** encoder trains the same way for the same steps at the same rate on general text (WikiText-2
#   validation);
# * everything is cached with a fingerprint (base model files, texts, budget, recipe version): notebook 06 and the
#   strategy sweep load the adapted encoder as a classifier, and any change rebuilds it.

# %%
adapted_dir = adapted_minilm(PROFILE, data, text_column, label_column, seed=seed, precision=precision)
mlm_history = pd.read_csv(adapted_dir / "history.csv")
mlm_summary = json.loads((adapted_dir / "summary.json").read_text())
head_curve = mlm_history[mlm_history["phase"] == "head warm-up"]
fig, ax = plt.subplots(figsize=(7, 3.4))
sns.lineplot(data=head_curve, x="step", y="loss", hue="kind", ax=ax)
ax.set(ylabel="masked-LM loss (nats)", title="head warm-up on stored states (encoder frozen)")
ax.set_ylim(top=head_curve["loss"].quantile(0.98) + 0.5)
plt.tight_layout()
plt.show()
warm = mlm_summary["head"]
print(f"head warm-up: held-out loss {warm['loss_at_start']:.2f} → {warm['held_out_loss']:.2f} nats, best at step "
      f"{warm['best_step']} of {warm['steps']} run (cap {warm['max_steps']}; "
      f"{'stopped early: it plateaued' if warm['stopped_early'] else 'ran to the cap'}) · "
      f"{warm['train_states']:,} stored masked positions from {warm['train_windows']:,} windows")

# %% [markdown]
# **Against a frequency table.** A unigram model ignores the context and predicts every masked token with its
# frequency in the head's own training windows (add-one smoothed). A head that reads the context must beat it
# clearly on the same masked positions, on medical text (the *validation* split) and on general text (WikiText-2
# *test*); neither was seen by the head or the encoder. Positions shown as `[MASK]` are where the context is all
# there is; kept tokens can be read off the input itself.

# %%
log_probs = load_file(str(adapted_dir / UNIGRAM_FILE))["log_probs"]
mlm_sets = {domain: eval_masks(enc_tokenizer, dataset["validation"]["text"], mlm_length, cfg["mlm_eval"], seed=seed),
            "general": eval_masks(enc_tokenizer, wiki["test"]["text"], mlm_length, cfg["mlm_eval"], seed=seed + 1)}
mlm_before = load_masked_lm("minilm", adapted_dir / HEAD_FILE).to(device)  # base encoder + warmed head
mlm_after = load_masked_lm(str(adapted_dir), adapted_dir / HEAD_FILE).to(device)  # adapted encoder + the same head
mlm_control = load_masked_lm(str(adapted_dir / "control"), adapted_dir / HEAD_FILE).to(device)  # control + same head
mlm_losses = {name: {s: sequence_losses(model, masks) for s, masks in mlm_sets.items()}
              for name, model in (("before", mlm_before), ("after", mlm_after), ("control", mlm_control))}
mlm_losses["unigram"] = {s: unigram_losses(log_probs, masks) for s, masks in mlm_sets.items()}
unigram_pairs = paired_table(mlm_losses, [("before", "unigram")])
head_table = head_vs_unigram(mlm_before, log_probs, mlm_sets, enc_tokenizer.mask_token_id)
for name in mlm_sets:
    iv = interval(unigram_pairs, "before", "unigram", name)
    print(f"{name}: warmed head {head_table.loc[(name, 'all'), 'head_loss']:.2f} nats vs unigram "
          f"{head_table.loc[(name, 'all'), 'unigram_loss']:.2f} on the same {head_table.loc[(name, 'all'), 'positions']:,} "
          f"masked positions; per window, head − unigram {iv} → "
          + ("the head is better" if iv.excludes_zero() and iv.mean < 0 else "the head is NOT better"))
head_beats_unigram = all(interval(unigram_pairs, "before", "unigram", s).high < 0 for s in mlm_sets)
head_table.round(3)

# %% [markdown]
# Reading the table: `advantage` is the unigram loss minus the head's, so positive means the head is better. Look
# at it per way a position was shown: at `[MASK]` positions the head must use the context; at positions shown as a
# *random token* the input is misleading, and a head that trusts it can do worse than plain frequencies there (a
# negative advantage), which is the price BERT's 10 % random replacement teaches the encoder to pay less of.

# %% [markdown]
# **DAPT's rate and steps**, chosen on the held-out medical windows: each run is scored every few steps and stops
# early once its loss stops falling, else at the step cap, its best weights kept. A run that reached the cap while
# its loss still fell was not converged: its rate is then the best *at this budget of steps*, not at convergence
# (the printed line says which happened to the chosen run; the curves show the others):

# %%
dapt_rates = pd.DataFrame(mlm_summary["rate_search"])
run = mlm_summary["dapt"]
print(f"chosen rate {run['lr']:.2g} ({run['position']} of {len(dapt_rates)} rates tried) · steps {run['steps']} "
      f"(cap {run['max_steps']}; the chosen run {'stopped early' if run['stopped_early'] else 'ran to the cap'}) · "
      f"control: {mlm_summary['control']['steps']} steps at the same rate on general text · the cold build took "
      f"{mlm_summary['seconds'] / 60:.1f} min")
dapt_curves = mlm_history[mlm_history["phase"].str.startswith("DAPT") & (mlm_history["kind"] == "held-out")]
fig, ax = plt.subplots(figsize=(7, 3.4))
sns.lineplot(data=dapt_curves, x="step", y="loss", hue="phase", marker="o", ax=ax)
ax.axvline(run["steps"], color="grey", lw=0.8, ls="--")
ax.set(ylabel="held-out masked-LM loss (nats)", title=f"DAPT, one run per rate ({domain} held-out windows)")
plt.tight_layout()
plt.show()
dapt_rates.round(4).assign(lr=dapt_rates["lr"].map("{:.2g}".format))

# %% [markdown]
# **Before, after, control: the change belongs to the encoder.** The three models share one frozen head (its
# decoder is each encoder's own word-embedding table, which DAPT trains as part of the encoder), and score the same
# masked positions of the same windows, so a difference comes from the encoder alone. Per window, the loss is the
# mean cross-entropy over its masked positions; the paired differences are per window with 95 % intervals.

# %%
mlm_table = loss_table({k: v for k, v in mlm_losses.items() if k != "unigram"})
mlm_pairs = paired_table(mlm_losses, [("after", "before"), ("control", "before"), ("after", "control")])
mlm_found = attribution(mlm_pairs, ("after", "control", "before"), (domain, "general"),
                        generic="masked-LM prediction relearned by an encoder trained as a sentence embedder")
for line in attribution_lines(mlm_found, {"domain": domain, "a": "after", "c": "control", "b": "before"}):
    print(line)
display(mlm_table.round(3))
mlm_pairs.round(3)

# %% [markdown]
# Gururangan et al. (2020) measured, for RoBERTa-base, biomedical masked-LM loss 1.32 → 0.99 and general loss
# 1.19 → 1.63: the domain improves, general English is partly forgotten. Our absolute losses are much higher (a
# sentence embedder whose head was fitted afterwards on a frozen encoder, short windows, a laptop's budget of
# steps), so compare the directions and the control, not the values. Which explanation do the numbers support: an
# adaptation to the domain, or masked-LM prediction relearned in general (which training on any text would give)?

# %%
domain_specific_iv = interval(mlm_pairs, "after", "control", domain)
generic_iv = interval(mlm_pairs, "control", "before", domain)
if mlm_found["domain_specific"]:
    print(f"The numbers support a domain-specific adaptation: on {domain} text the adapted encoder's loss is "
          f"{-domain_specific_iv.mean:.2f} nats below the control's (95 % CI {-domain_specific_iv.high:.2f} to "
          f"{-domain_specific_iv.low:.2f}), after the same steps at the same rate"
          + (f"; training on general text alone also lowered it by {-generic_iv.mean:.2f} nats, the generic part "
             f"(relearning masked-LM prediction)" if mlm_found["generic_part"] else "") + ".")
else:
    print(f"The numbers do not show a domain-specific adaptation: on {domain} text the adapted encoder is not below "
          f"the control (after − control {domain_specific_iv}); the fall is generic masked-LM relearning.")

# %% [markdown]
# **Fill-mask.** The top 5 word pieces for one masked word in a few sentences (the opening of held-out texts), from
# the same head on the three encoders:

# %%
spread = lambda texts: [t for t in texts if len(t.split()) > 12][::40]  # noqa: E731 (texts far apart: other topics)
fill_sentences = {f"{domain} {i + 1}": pair for i, pair in
                  enumerate(masked_sentences(enc_tokenizer, spread(dataset["validation"]["text"]), 3))}
fill_sentences |= {f"general {i + 1}": pair for i, pair in
                   enumerate(masked_sentences(enc_tokenizer, spread(wiki["test"]["text"]), 3))}
for name, (sentence, word) in fill_sentences.items():
    print(f"{name}: {sentence}")
with pd.option_context("display.max_colwidth", 60):
    display(fill_mask_table({"before": mlm_before, "after": mlm_after, "control": mlm_control}, enc_tokenizer,
                            fill_sentences))

# %% [markdown]
# What to look for: on the medical sentences, whether the adapted encoder ranks fitting medical words higher than
# before; on the general sentences, whether it now pushes medical words (*patients*, *treatment*) into general
# contexts, a domain bias that the general line of the table above prices; the control shows what masked-LM training
# on general text alone changes. Five sentences are examples, not a measurement: the tables above are the evidence.

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
# **2.** By how many percent did the general (WikiText-2) perplexity change under continued pretraining on the
# domain (negative: it fell)? Use `before["general"]` and `after["general"]`.

# %%
general_change_pct = None  # your answer: a float, in percent
check_forgetting_pct(general_change_pct, before["general"], after["general"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: relative change of the general perplexity after adaptation, in per cent
general_change_pct = 100 * (after["general"] / before["general"] - 1)
check_forgetting_pct(general_change_pct, before["general"], after["general"])

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
# when `replay_fraction` is 0.4 and the domain stream has `len(blocks["train"])` blocks?

# %%
general_blocks = None  # your answer: an integer
check_replay_blocks(general_blocks, len(blocks["train"]), 0.4)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: the general share of the stream's blocks, rounded to a whole block
general_blocks = round(0.4 * len(blocks["train"]))
check_replay_blocks(general_blocks, len(blocks["train"]), 0.4)

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
# **6. Write the mechanism: whole-word masking.** WordPiece cuts a long medical word into pieces (`antivirals` →
# `anti ##vira ##ls`). Masking pieces one by one often hides `##vira` and shows `anti … ##ls`: the model fills the gap
# from the word's own pieces, an easy task that teaches little about medicine. Whole-word masking chooses *words* and
# hides all their pieces. Complete `whole_word_chosen(offsets, special, p, generator)`: it receives the tokenizer's
# character offsets (batch, length, 2) and the special-token mask (batch, length) of a padded batch and returns a
# boolean tensor of the tokens chosen for the loss, drawing as `DataCollatorForLanguageModeling(whole_word_mask=True)`
# does. The check runs your function on fresh sentences with several p and seeds and compares it with the collator.

# %%
def whole_word_chosen(offsets: torch.Tensor, special: torch.Tensor, p: float,
                      generator: torch.Generator) -> torch.Tensor:
    """Choose whole words (every piece of a chosen word) for the masked-LM loss; True where a token is scored."""
    # 1. a token starts a word when it is not special and it does not begin where the previous token ended
    #    (offsets[..., 0] vs the previous offsets[..., 1]: torch.roll along the row), or the previous token is special
    # 2. one draw over the whole (batch, length) shape: torch.bernoulli(probabilities, generator=generator), with
    #    probability p at word starts and 0 elsewhere
    # 3. number the words (torch.cumsum of the starts along the row) and choose every piece of a drawn word
    return None  # replace with the boolean tensor


check_whole_word_function(whole_word_chosen, enc_tokenizer)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: find the word starts, draw once per start, spread each draw over its word's pieces
def whole_word_chosen(offsets: torch.Tensor, special: torch.Tensor, p: float,
                      generator: torch.Generator) -> torch.Tensor:
    """Choose whole words (every piece of a chosen word) for the masked-LM loss; True where a token is scored."""
    previous_end = torch.roll(offsets[..., 1], 1, dims=1)
    previous_end[:, 0] = -1
    previous_special = torch.roll(special, 1, dims=1)
    previous_special[:, 0] = False
    starts = ~special & ((offsets[..., 0] != previous_end) | previous_special)
    drawn = torch.bernoulli(torch.full(special.shape, p).masked_fill(~starts, 0.0), generator=generator).bool()
    word = torch.cumsum(starts.long(), dim=1).masked_fill(special, -1)  # word number of every piece; -1: special
    same_word = (word[:, :, None] == word[:, None, :]) & (word[:, :, None] >= 0)
    return (same_word & drawn[:, None, :]).any(dim=-1)


check_whole_word_function(whole_word_chosen, enc_tokenizer)

# %% [markdown]
# ## Summary
#
# * Continued pretraining is the fine-tuning loop of notebook 06 fed causal-LM batches (labels = input ids,
#   shifted inside the model). Its rate was chosen on held-out blocks of the training split from a grid that
#   brackets the best, its steps from the held-out curve, and every model scored the same evaluation blocks, so
#   each change above is a paired difference with a 95 % interval.
# * A control run on general text, same rate and steps, tells a domain-specific change from what any further
#   training of this instruction-tuned, 4-bit-rounded SmolLM2 gives; the cells above printed which one the numbers
#   support, on the domain and on general text.
# * Embedding-only tuning trains only the tied embedding/output matrix; the cells above measured its share of the
#   weights and of the time per step. Replay's effect was read from the same paired intervals.
# * EDA augmentation is cheap; its effect on the domain classifier is small and size-dependent, so measure it
#   over seeds before trusting it.
# * Masked-LM DAPT adapts the classifier's own encoder: a hand-written BERT head (tied decoder, equal to
#   `BertForMaskedLM`) and BERT's 80/10/10 masking (equal to `DataCollatorForLanguageModeling`), the head warmed to a
#   plateau on stored states and compared with a unigram baseline, then frozen while the encoder alone trains, with a
#   control encoder trained as long on general text. The adapted encoder is cached for notebook 06 and the sweep.
# * BERT and RoBERTa predict masked tokens from both sides, GPT the next token, XLNet tokens in a permuted order;
#   their losses are not comparable across tokenisers and contexts.

# %%
def paired_record(table: pd.DataFrame) -> dict:
    """A paired table as {difference: {set: {change, low, high}}} for the results file."""
    out: dict = {}
    for (difference, name), row in table.iterrows():
        out.setdefault(difference.replace(" − ", "-"), {})[name] = {k: float(row[k]) for k in ("change", "low", "high")}
    return out


results = {
    "notebook": "05_domain_adaptation", "profile": PROFILE, "seed": seed, "device": device.type,
    "model": model_name, "provenance": record["provenance"], "block_size": dapt.block_size,
    "batch_size": dapt.batch_size, "max_steps": dapt.max_steps, "steps": record["steps"], "lr": record["lr"],
    "rate_position": record["position"], "rates_tried": len(rates), "cold_build_seconds": record["seconds"],
    "domain_ppl_before": before["domain"], "domain_ppl_after": after["domain"], "domain_drop_pct": domain_drop_pct,
    "general_ppl_before": before["general"], "general_ppl_after": after["general"], "forgetting_pct": forgetting_pct,
    "perplexity": {f"{m}/{s}": float(causal_table.loc[(m, s), "perplexity"]) for m, s in causal_table.index},
    "paired": paired_record(causal_pairs),
    "attribution": {k: causal_found[k] for k in ("domain_specific", "generic_part", "generic_share", "general_fell",
                                                 "general_fell_as_much_as_control", "verdict")},
    "replay": {"fraction": replay_fraction, **{f"{name}_change": replay_iv[name].mean for name in replay_iv},
               **{f"{name}_excludes_0": replay_iv[name].excludes_zero() for name in replay_iv}},
    "embedding_only": {"trainable_params": int(trainable["embeddings"]), "full_trainable_params": int(trainable["full"]),
                       "seconds_per_step": float(per_step["embeddings"]), "full_seconds_per_step": float(per_step["full"]),
                       "time_ratio": float(time_ratio), "flops_ratio": float(flops_ratio)},
    "embeddings_tied": embeddings_tied(base),
    "augmentation": {"alpha": eda_alpha, "n_aug": eda_n_aug, "seeds": int(aug["seed"].nunique()),
                     "macro_f1": {str(k): v for k, v in gain.round(4).to_dict(orient="index").items()},
                     "mean_gain": float(gain["gain"].mean()),
                     "versus": {str(k): {c: float(v) for c, v in size.items() if pd.notna(v)}
                                for k, size in versus.iterrows()}},
    "saved_model": artifact, "reload_matches": reload_diff < 1e-3,
    "mlm": {"adapted_dir_name": adapted_dir.name, "eval_sequences": int(mlm_table["sequences"].min()),
            **{f"{name}_loss_{when}": float(mlm_table.loc[(model, name), "loss"]) for name in mlm_sets
               for when, model in (("before", "before"), ("after", "after"), ("control", "control"))},
            **{f"{name}_unigram_loss": float(head_table.loc[(name, "all"), "unigram_loss"]) for name in mlm_sets},
            **{f"{name}_head_loss": float(head_table.loc[(name, "all"), "head_loss"]) for name in mlm_sets},
            "head_beats_unigram": head_beats_unigram, "paired": paired_record(mlm_pairs),
            "unigram_paired": paired_record(unigram_pairs),
            "domain_specific": mlm_found["domain_specific"], "generic_part": mlm_found["generic_part"],
            "verdict": mlm_found["verdict"], "head_matches_library": head_diff < 1e-4,
            "masking_equals_collator": all(same), "head": mlm_summary["head"],
            "dapt": {k: mlm_summary["dapt"][k] for k in ("lr", "steps", "position", "max_steps", "stopped_early")},
            "rates_tried": len(dapt_rates), "cold_build_seconds": mlm_summary["seconds"],
            "same_text_loss": same_text["loss_nats"].round(4).to_dict()},
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("05_domain_adaptation", results)
pd.Series({k: v for k, v in results.items() if not isinstance(v, dict)}, name="value").to_frame()
