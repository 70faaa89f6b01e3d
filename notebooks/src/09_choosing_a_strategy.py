# %% [markdown]
# # 09 · Choosing a strategy
#
# Notebooks 06–08 each taught one way to fine-tune. Here they all meet in **one experiment**: the same model
# (MiniLM), data and split, the same protocol (notebook 06: training sample, length, batch size, epoch cap,
# early stopping, class weighting), the same 5 seeds, each setting at a learning rate chosen for it on the
# validation split by a search whose grid was extended until the best rate was inside it. The numbers come
# from papermill sweeps of `sweeps/strategy_run.ipynb` (`sweeps/rates.yaml`, `sweeps/strategies.yaml`,
# `sweeps/data-size.yaml`), collected by `python -m companion report` into CSV files.
#
# **In this notebook you will**
# 1. check that the comparison was fair (one budget; rates chosen on validation, bracketed) and that every full
#    fine-tuning score in the course agrees;
# 2. read the table: mean and 95 % interval over seeds for quality, trainable parameters, time per step, memory
#    and forgetting, and how many runs converged and trained at all;
# 3. compare every strategy with full fine-tuning **paired by seed**, and call a difference a difference only
#    when its interval excludes 0;
# 4. answer "adapt the encoder to the domain first, or not?" at several amounts of labelled data;
# 5. test the source text's claims (and some from the literature) against the numbers, and derive a decision
#    guide that follows from them; then run the same report on your own data with one command.
#
# **Prerequisites:** notebooks 06–08 (the strategies compared here) and 05 (domain adaptation; forgetting);
# macro-F1, a mean with its 95 % interval. **Study time:** about 45 minutes for a first reading with the exercises.
#
# **Machine time:** reading the stored reports takes seconds in every profile. Re-running the experiments:
# `make rates`, then `make sweep GRID=sweeps/strategies.yaml` and `make sweep GRID=sweeps/data-size.yaml` (their
# times on 2 cores are in `sweeps/README.md`); `make decide DATA=…` runs them on your own data.

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for the baselines' training sample and the bootstraps
model_name: str = "minilm"  # encoder of the sweeps: embedded name, local folder or Hugging Face id
report_csv: str = "../sweeps/results/strategies-cpu.csv"  # report.csv of the strategy sweep
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the rate search's table (make rates)
step_time_csv: str = "../sweeps/results/step-time-cpu.csv"  # seconds per step of each setting, one process (bench/step_time.py)
data_size_csv: str = "../sweeps/results/data-size-cpu.csv"  # report.csv of the data-size sweep (adapted vs not)
full_06_json: str = "results/06_full_finetuning.results.json"  # notebook 06's stored result (its full fine-tuning run)
data: str = "medical_abstracts"  # the sweeps' data: registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
margin: float = 0.02  # range: (0, 1); equivalence margin in macro-F1: a difference whose whole interval lies within ±margin is called equivalent

# %%
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

import companion as cc
from companion.batch.tables import readable
from companion.checks.n09 import check_cheapest_above_tfidf, check_mean_over_seeds, check_pareto, check_ranking_prediction
from companion.core.data import load_text_classification
from companion.core.plots import plain_log_axis
from companion.core.stats import equivalence, mean_ci, paired_difference
from companion.engine.comparison import convergence, load_sweep, pair, paired_against, summarise, sweep_for
from companion.engine.finetune import subset
from companion.engine.forgetting import forgetting_change, forgetting_sentence
from companion.engine.metrics import majority_baseline, tfidf_tuned
from companion.lessons.n09_choosing import decision_guide, pareto_front
from companion.lessons.n09_claims import FAMILIES, LITERATURE_CLAIMS, SOURCE_CLAIMS, claims_table, representatives

cc.check_values("09", globals())  # types, choices and ranges of the parameters above
PROFILE, _, start = cc.start(profile, seed, trains=False)  # resolve the profile, seed, start a clock
runs, why_not = sweep_for(report_csv, data)  # runs on this data under today's protocol of their profile
if runs is None:
    raise cc.CourseError(f"{why_not}: run `make rates sweep` (the course's data) or `make decide DATA=…` (yours) and "
                         f"pass its reports (-p report_csv … -p rates_csv …)")
rates = pd.read_csv(rates_csv) if Path(rates_csv).is_file() else None
step_times = pd.read_csv(step_time_csv) if Path(step_time_csv).is_file() else None
seeds = sorted(int(s) for s in runs["seed"].unique())
print(f"{len(runs)} finished runs, {runs['setting'].nunique()} settings, seeds {seeds}, "
      f"profile {runs['profile'].iloc[0]}, data {data}")

# %% [markdown]
# ## 1. One budget for everyone, rates chosen on validation
#
# A comparison is only fair if the settings got the same data and budget, and if nothing was tuned on the test
# split. The report keeps every run's protocol, so we check rather than trust. The learning rates come from a
# separate **rate search** (`sweeps/rates.yaml`): for every setting the same start (1/3, 1 and 3 × its default
# rate), one more rate a factor of 3 beyond the best while the best sits at an edge (at most 3 more a side), on
# the protocol's selection seed — a seed the comparison never scores — and on the **validation** split only
# (those runs never score test).

# %%
# NBVAL_CHECK_OUTPUT
budget_columns = [c for c in runs if c.startswith("protocol.") and c not in ("protocol.precision",)]
budget = runs[budget_columns + ["base_model"]].drop_duplicates()
print("one protocol for all runs:", len(budget) == 1)
print("the compared seeds never include the rate search's seed:",
      int(runs["protocol.selection_seed"].iloc[0]) not in seeds)
if rates is not None:
    chosen = rates[rates["chosen"].astype(str).str.lower().eq("true")].set_index("setting")
    lookup = runs["rate_of"].fillna(runs["setting"]) if "rate_of" in runs else runs["setting"]
    print("every run used its setting's rate chosen on validation:",
          bool(np.allclose(runs["lr"].astype(float), lookup.map(chosen["lr"]).astype(float), rtol=1e-6)))
budget.T

# %%
if rates is not None:
    grid = rates.sort_values(["setting", "lr"]).assign(
        cell=lambda f: [f"{lr:.2g}→{s:.3f}" + ("✓" if str(c).lower() == "true" else "")
                        for lr, s, c in zip(f["lr"], f["val_macro_f1"], f["chosen"])])
    search_table = grid.groupby("setting").agg(candidates=("cell", " · ".join), tried=("lr", "size"))
    search_table["chosen rate"] = chosen["lr"].map("{:.3g}".format)
    search_table["best"] = chosen["position"]
    edges = search_table.index[search_table["best"] != "interior"].tolist()
    print("every chosen rate is inside its grid:", not edges,
          "" if not edges else f"(at the edge, the extension cap hit: {', '.join(edges)})")
    with pd.option_context("display.max_colwidth", None):  # every candidate visible, the chosen one marked
        display(search_table)

# %% [markdown]
# ## 2. Every full fine-tuning score in the course, side by side
#
# Full fine-tuning appears in notebook 06 (one run, seed 0) and in this sweep (5 seeds); notebooks 07 and 08 read
# this sweep, and 06's length study takes its point at the protocol's length from it. Under one protocol they
# should agree — within the spread of seeds, since a run is one draw.

# %%
sources = []
if Path(full_06_json).is_file():
    nb06 = json.loads(Path(full_06_json).read_text())
    sources.append({"where": "notebook 06", "seeds": str(nb06.get("seed")), "macro_f1": nb06["test"]["macro_f1"],
                    "low": np.nan, "high": np.nan, "budget": f"protocol {nb06['protocol']['profile']}, lr "
                                                          f"{nb06['lr']:.3g}", "same_protocol": True})
full_runs = runs[runs["setting"] == "full"]
full_iv = mean_ci(full_runs["macro_f1"])
sources.append({"where": "strategy sweep (07, 08, 09 read it)", "seeds": ", ".join(map(str, seeds)),
                "macro_f1": full_iv.mean, "low": full_iv.low, "high": full_iv.high,
                "budget": f"protocol {runs['profile'].iloc[0]}, lr {full_runs['lr'].iloc[0]:.3g}", "same_protocol": True})
full_sources = pd.DataFrame(sources).set_index("where")
inside = full_sources["macro_f1"].between(full_iv.low - 1e-9, full_iv.high + 1e-9)
print("every full fine-tuning score lies within the sweep's 95 % interval over seeds:", bool(inside.all()),
      "" if inside.all() else f"(outside: {', '.join(full_sources.index[~inside])})")
full_sources.round(3)

# %% [markdown]
# ## 3. The table: mean and 95 % interval over seeds
#
# Quality is **macro-F1** on the held-out test split (every class counts equally), scored once per run. Beside
# it: the share of runs that **converged** (early stopping ended them before the epoch cap) and that **trained**
# (predicted more than one class and beat guessing, notebook 06), trainable parameters, time per training step
# (measured by `bench/step_time.py` with every setting in one process, round after round, because the sweep's
# runs met different machine load; gradual unfreezing and ULMFiT are left out of it, since their step grows epoch
# by epoch as layers thaw, so their cell stays empty; the frozen-layer cache, built once per run, is not counted;
# `adapted + full` shows full's time, being the same network),
# the memory a run's training added to its process, and forgetting: drift of general-English sentence embeddings
# and the change of accuracy on a **general task** (notebook 06).
# Two baselines on the same training sample set the floor: the majority class and TF-IDF + logistic regression
# (class-weighted, its C chosen on validation).

# %%
dataset = load_text_classification(data, text_column, label_column)
train = subset(dataset, int(runs["train_size"].iloc[0]), seed)["train"]
majority = majority_baseline(train["label"], dataset["test"]["label"])
tfidf = tfidf_tuned(dataset, train, seed)
summary = summarise(runs).join(convergence(runs))
if step_times is None:
    print("no step-time benchmark: time per step is the sweep's own, from runs that may have met different load")
else:  # time per step from one process, interleaved rounds: comparable across settings
    step_median = step_times.groupby("setting")["seconds_per_step"].median()
    same_network = {s: "full" for s in summary.index if s.startswith("adapted + ")}  # the same network as full
    summary["seconds_per_step"] = [step_median.get(same_network.get(s, s), np.nan) for s in summary.index]
untimed = summary.index[summary["seconds_per_step"].isna()].tolist()  # the sweep's own times are not put beside
if step_times is not None and untimed:                                 # the benchmark's: they met other load
    print("not in the step-time benchmark (no time per step shown):", ", ".join(untimed))
before = runs["forgetting.general_correct_before"].iloc[0]
summary["general_change"] = [forgetting_change(before, runs.loc[runs["setting"] == s,
                                                                 "forgetting.general_correct"]).mean
                             for s in summary.index]
columns = ["macro_f1", "macro_f1_low", "macro_f1_high", "val_macro_f1", "lr", "converged_share", "trained_share",
           "trainable", "seconds_per_step", "memory_added_mb", "forgetting.drift", "general_change", "seeds"]
show = summary[[c for c in columns if c in summary]].copy()
show.loc["baseline: TF-IDF + LR (class-weighted, C on validation)", "macro_f1"] = tfidf["macro_f1"]
show.loc["baseline: majority class", "macro_f1"] = majority["macro_f1"]
capped = summary.index[summary["converged_share"] < 0.5].tolist()
print("settings that hit the epoch cap in most seeds (not converged):", ", ".join(capped) or "none")
print("settings with a run that did not train:", ", ".join(summary.index[summary["trained_share"] < 1]) or "none")
readable(show, counts=["trainable", "memory_added_mb", "seeds"],
         decimals={"macro_f1": 3, "macro_f1_low": 3, "macro_f1_high": 3, "val_macro_f1": 3, "converged_share": 2,
                   "trained_share": 2, "seconds_per_step": 3, "forgetting.drift": 4, "general_change": 3})

# %% [markdown]
# **Predict, then measure.** Full fine-tuning trains all 22.7 M parameters, LoRA well under 1 %, and prompt
# tuning only a few thousand. *Before reading the next section*, predict the order of
# `full`, `lora` and `prompt_tuning` by test macro-F1, best first, and write down the argument behind it. Two
# arguments compete: **capacity** (the literature of notebook 08: soft prompts lag behind on small models, LoRA
# tracks full fine-tuning) and **overfitting** (400 labelled texts: the fewer weights a method trains, the less it
# can fit the training set's noise; notebook 06 watched full fine-tuning overfit 100 examples). If you have read
# notebook 08's comparison, you already saw part of the answer: then say which argument it supports. The check
# compares your order with the **paired intervals**: an order is consistent with the measurement unless a pair
# you put first is significantly worse.

# %%
ranking_prediction = None  # your prediction: a list such as ["full", "lora", "prompt_tuning"], best first

# %%
check_ranking_prediction(ranking_prediction, runs)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: one reasonable prediction at 400 labelled texts is that the overfitting argument outweighs capacity (the
# literature's capacity gap of soft prompts, Lester et al. 2021, was measured with tens of thousands of examples),
# so prompt tuning first, then LoRA, then full fine-tuning. The check says whether the intervals agree; the capacity
# order (full, lora, prompt_tuning) is what the literature predicts with plenty of data. Fewer trained weights is
# not a rule by itself: the table above has settings that train fewer and score lower.
ranking_prediction = ["prompt_tuning", "lora", "full"]
check_ranking_prediction(ranking_prediction, runs)

# %% [markdown]
# ## 4. Differences that hold: paired against full fine-tuning
#
# Every setting ran on the same seeds as full fine-tuning (the same training sample, data order and new head), so
# the fair comparison is **paired**: the difference on each seed, then its mean and 95 % interval. A difference
# counts only when its interval excludes 0. "As good as full fine-tuning" needs more than a tie: an
# **equivalence margin**, stated before looking (`margin`, here ±0.02 macro-F1 by default): a setting is
# *equivalent* only when its whole interval lies within ±margin; otherwise it is *tied* (the data cannot tell).

# %%
paired = paired_against(runs, "full")
paired["verdict"] = [equivalence(pair(runs, name, "full"), margin) for name in paired.index]
fig, ax = plt.subplots(figsize=(8, 0.45 * len(paired) + 1.5))
ys = range(len(paired))
ax.errorbar(paired["difference"].astype(float), ys, fmt="o", capsize=4, color="tab:blue",
            xerr=[(paired["difference"] - paired["low"]).astype(float), (paired["high"] - paired["difference"]).astype(float)])
ax.axvline(0, color="black", lw=1)
ax.axvspan(-margin, margin, color="grey", alpha=0.15, label=f"equivalence margin ±{margin:g}")
ax.set_yticks(list(ys), paired.index.tolist())
ax.set(xlabel="test macro-F1 − full fine-tuning's (mean over seeds, 95 % interval)", title="Paired differences")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
paired[["difference", "low", "high", "seeds", "verdict"]].astype({"difference": float, "low": float,
                                                                  "high": float}).round(3)

# %% [markdown]
# ## 5. Adapt first, or not?
#
# `adapted + full` fine-tunes MiniLM after masked-LM domain-adaptive pretraining on the medical training texts
# (notebook 05), with exactly the protocol and seeds of `full`, at its own chosen rate. Gururangan et al. (2020)
# found domain-adaptive pretraining helps most when labelled data are few, so `sweeps/data-size.yaml` repeats the
# pair at other training-set sizes (paired by seed; the committed study has 125 and 250 texts, the comparison adds
# the protocol's 400; the yaml's whole-training-split point, 3 seeds, is run only when you run it).
# Whatever its sign, the answer is read off the intervals:

# %%
if "adapted + full" in set(runs["setting"]):
    adapt = pair(runs, "adapted + full", "full")
    print("at the protocol's size:", equivalence(adapt, margin), adapt)
    print(forgetting_sentence(forgetting_change(before, runs.loc[runs["setting"] == "adapted + full",
                                                                  "forgetting.general_correct"]),
                              "adaptation and fine-tuning"))
else:
    adapt = None
size_curve = None
if Path(data_size_csv).is_file():
    sizes = load_sweep(data_size_csv)  # the sizes the study ran; the strategy sweep adds the protocol's size
    sizes = pd.concat([sizes, runs[runs["setting"].isin(["full", "adapted + full"])]], ignore_index=True)
    sizes["encoder"] = np.where(sizes["setting"].str.startswith("adapted"), "adapted", "not adapted")
    rows = []
    for size, group in sizes.groupby("train_size"):
        both = group.pivot_table(index="seed", columns="encoder", values="macro_f1").dropna()
        if len(both) >= 2:
            d = paired_difference(both["adapted"], both["not adapted"])
            rows.append({"training texts": int(size), "not adapted": both["not adapted"].mean(),
                         "adapted": both["adapted"].mean(), "difference": d.mean, "low": d.low, "high": d.high,
                         "seeds": d.n, "verdict": equivalence(d, margin)})
    size_curve = pd.DataFrame(rows).set_index("training texts")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.errorbar(size_curve.index, size_curve["difference"], capsize=4, marker="o",
                yerr=[size_curve["difference"] - size_curve["low"], size_curve["high"] - size_curve["difference"]])
    ax.axhline(0, color="black", lw=1)
    ax.set(xscale="log", xlabel="labelled training texts", ylabel="adapted − not adapted (test macro-F1)",
           title="Does domain adaptation pay, and when?")
    plain_log_axis(ax, "x", ticks=list(size_curve.index))
    plt.tight_layout()
    plt.show()
    pays = size_curve.index[(size_curve["low"] > 0)].tolist()
    hurts = size_curve.index[(size_curve["high"] < 0)].tolist()
    print("adaptation helps (interval above 0) at:", ", ".join(map(str, pays)) or "no size measured",
          "· hurts at:", ", ".join(map(str, hurts)) or "no size measured")
if adapt is None:
    print("not measured: the strategy sweep has no `adapted + full` runs (sweeps/strategies.yaml, setting adapted-full)")
if size_curve is None:
    print(f"not measured: no data-size sweep at {data_size_csv} (make sweep GRID=sweeps/data-size.yaml)")
size_curve.round(3) if size_curve is not None else None

# %% [markdown]
# Two questions hide in "does adaptation help?". Notebook 05 answered the first: the adapted encoder predicts
# masked *medical* words better than before and than a control trained on general text. This section answers the
# second, the one a practitioner pays for: does that make the *classifier* better? The two need not agree: a
# topic label may rest on frequent words the unadapted encoder already represents well, and a few hundred steps
# of adaptation on a few thousand abstracts are a laptop's budget, far below the literature's. Read the line above
# the table: where no interval excludes 0, the answer at this budget is "adapt first" buys nothing measurable,
# and the data-size curve says whether that changes as labelled data get scarce.

# %% [markdown]
# ## 6. The trade-offs
#
# Quality against the three costs. The x-axis of the first plot is logarithmic: the settings differ by factors of
# more than a thousand in what they train. Error bars are 95 % intervals over seeds. The **Pareto front** printed
# below is the set of settings that no other setting beats on both axes at once (higher macro-F1 *and* fewer trainable
# parameters): anything off the front has a better alternative on both counts. The front reads means only: a
# setting just off it may be tied with one on it (section 4's paired intervals say which differences are real).

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
costs = [("trainable", "trainable parameters (log)"),
         ("seconds_per_step", "seconds per training step" + (f" (not timed: {', '.join(untimed)})" if untimed else "")),
         ("forgetting.drift", "forgetting: drift of general-text embeddings")]
family = {s: next((f for f, members in FAMILIES.items() if s in members), s.replace("adapted + ", ""))
          for s in summary.index}  # colour by family (09's claims use the same families), name each point
points = summary.reset_index(names="setting").assign(family=lambda t: t["setting"].map(family))
for ax, (cost, label) in zip(axes, costs):
    sns.scatterplot(data=points, x=cost, y="macro_f1", hue="family", style="family", s=80, ax=ax,
                    legend=ax is axes[-1])
    for _, point in points.dropna(subset=[cost]).iterrows():
        ax.annotate(point["setting"], (point[cost], point["macro_f1"]), xytext=(4, 2), textcoords="offset points",
                    fontsize=7)
    ax.errorbar(summary[cost].astype(float), summary["macro_f1"].astype(float),
                yerr=[(summary["macro_f1"] - summary["macro_f1_low"]).astype(float).fillna(0),
                      (summary["macro_f1_high"] - summary["macro_f1"]).astype(float).fillna(0)],
                fmt="none", ecolor="grey", lw=1)
    ax.axhline(tfidf["macro_f1"], color="black", ls="--", lw=1.5, zorder=5, label="TF-IDF + LR")
    ax.set(xlabel=label, ylabel="test macro-F1")
plain_log_axis(axes[0], "x", ticks=[1e4, 1e5, 1e6, 1e7])
axes[-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
plt.tight_layout()
plt.show()
front = pareto_front(summary, "macro_f1", "trainable")
print("Pareto front (macro-F1 vs trainable parameters), cheapest first:", " → ".join(front))

# %% [markdown]
# ## 7. The claims, measured
#
# The course's source text makes claims about the strategies; the literature adds others. Each row below is
# computed from the sweep (paired by seed; time per step over the benchmark's rounds, as the difference of *log*
# times, since times compare as ratios and one disturbed round scales every setting's time alike: e^mean is the
# ratio; forgetting with the one forgetting test, over seeds and probe sentences) and says *supported*,
# *contradicted*, *not resolved* (the interval includes 0) or *true by construction* (it could not come out otherwise, so it is not evidence). The
# claims are stated as the course paraphrases its source. Where a claim names a family ("layered", "prompt
# tuning"), it is represented by the family's variant with the best **validation** score in the rate search — a
# rule fixed before the results, the way a practitioner would pick — and every variant is in the tables above.
# Overfitting on small data is measured in notebook 06.

# %%
picked = representatives(rates, set(runs["setting"]))
print("representatives (best validation macro-F1 in the rate search):",
      ", ".join(f"{family} → {name}" for family, name in picked.items()))
source = claims_table(runs, SOURCE_CLAIMS, step_times, rates)
literature = claims_table(runs, LITERATURE_CLAIMS, step_times, rates)
display(Markdown("**The source text's claims**"))
display(source)
display(Markdown("**Claims from the literature**"))
display(literature)

# %% [markdown]
# ## 8. A decision guide that follows from these numbers
#
# The sentences below are generated from the tables above (change the sweep, and they change). A setting is
# better or worse than full fine-tuning only where the paired interval excludes 0; equivalent only within the
# stated margin; otherwise tied.

# %%
guide = decision_guide(summary, paired, tfidf["macro_f1"], majority["macro_f1"], margin=margin)
display(Markdown("\n".join(f"* {line}" for line in guide)))

# %% [markdown]
# **What the literature says, beside these numbers.** (Read the measured side off the tables above.)
#
# * **Layered fine-tuning**: ULMFiT (Howard & Ruder 2018, Table 7) found last-layer-only training far worse than
#   full fine-tuning on TREC-6 (16.09 vs 6.86 % error), and gradual unfreezing + discriminative learning rates best
#   of all (5.69 %). With the feature cache (notebook 07) a frozen lower stack is computed once, so each step only
#   runs the layers above it.
# * **Soft prompts** train only thousands of parameters and leave the encoder untouched. Lester et al. (2021) show
#   their gap to full fine-tuning is large for small models and closes only near 11B parameters. A soft prompt
#   still sends its gradient back through every layer, so its step is not much cheaper than full fine-tuning's;
#   what it saves is optimiser state and storage.
# * **LoRA**: Hu et al. (2021, RoBERTa-base GLUE) report it on par with full fine-tuning (87.2 vs 86.4 average).
# * **Domain-adaptive pretraining**: Gururangan et al. (2020) report ChemProt micro-F1 81.9 → 84.2 for RoBERTa-base
#   after biomedical DAPT, with far more adaptation text and compute than a laptop budget; section 5 is this
#   course's measurement at its own budget.
#
# ## 9. Your data, one command
#
# Everything above is rebuilt for a labelled file of your own with one command: the rate search, the comparison
# and this notebook, under the same protocol (the budget adapts to your data's size):
#
# ```bash
# make decide DATA=my_texts.csv TEXT=text LABEL=label        # writes runs/decide/<file>/09_choosing_a_strategy.ipynb
# make decide DATA=my_texts.csv SETTINGS=full,freeze-k4,lora,prompt-tuning   # only these settings: a shorter run
# ```
#
# Every setting of `sweeps/strategies.yaml` is the default; `SETTINGS` keeps the entries you name, by the yaml's
# `name:` fields: full, freeze-k2, freeze-k4, freeze-k6, discriminative, gradual, ulmfit, lora, prompt-tuning,
# prompt-tuning-text, p-tuning, prefix-tuning, adapted-full (a name not in the list is an error that lists them).
# `sweeps/README.md` gives the measured time of each part on 2 cores. Your report has no step-time benchmark, so its
# time per step is the sweep's own (runs that met the same machine load only if nothing else ran beside them).
#
# ## Exercises
#
# **1.** What is the mean test macro-F1 of `lora` over its seeds? Compute it from `runs`.

# %%
lora_mean = None  # your answer: a float
check_mean_over_seeds(lora_mean, runs, "lora")

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: select the runs of that setting, then average their macro-F1
lora_mean = runs.loc[runs["setting"] == "lora", "macro_f1"].mean()
check_mean_over_seeds(lora_mean, runs, "lora")

# %% [markdown]
# **2.** Among the settings whose whole interval lies above TF-IDF + LR, which one trains the fewest parameters?
# (Answer with its name from the `summary` index, or `"none"`.)

# %%
cheapest = None  # your answer: a string
check_cheapest_above_tfidf(cheapest, summary, tfidf["macro_f1"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: keep the settings whose interval's lower end is above TF-IDF; take the fewest trainable parameters
above = summary[summary["macro_f1_low"] > tfidf["macro_f1"]]
cheapest = above["trainable"].astype(float).idxmin() if len(above) else "none"
check_cheapest_above_tfidf(cheapest, summary, tfidf["macro_f1"])

# %% [markdown]
# **3.** Write the Pareto front yourself: the settings for which no other setting has both higher-or-equal
# macro-F1 and fewer-or-equal trainable parameters (strictly better in at least one).

# %%
my_front = None  # your answer: a list of setting names
check_pareto(my_front, summary)

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: keep each setting that no other beats on macro-F1 without training more parameters
my_front = [name for name, row in summary.iterrows()
            if not any((o["macro_f1"] >= row["macro_f1"]) and (o["trainable"] <= row["trainable"])
                       and ((o["macro_f1"] > row["macro_f1"]) or (o["trainable"] < row["trainable"]))
                       for _, o in summary.iterrows())]
check_pareto(my_front, summary)

# %% [markdown]
# ## Summary
#
# * A fair comparison fixes model, data, split, seeds and budget, chooses each setting's rate on validation from a
#   grid that brackets it, lets every run train until validation stops improving, and reports the spread over
#   seeds; a difference is a difference only when its paired interval excludes 0.
# * A setting can lead on quality and parameters (the Pareto front printed above) and still lose on another
#   axis, such as time per step on a CPU or memory: the guide above names the choice for quality, parameters to
#   store per task and time per step; the table of section 3 and the claims of section 7 add memory and forgetting.
# * `make decide` rebuilds the whole report for your data.

# %%
best = summary["macro_f1"].astype(float).idxmax()
results = {
    "notebook": "09_choosing_a_strategy", "profile": PROFILE, "seed": seed, "data": data, "margin": margin,
    "sweep_profile": runs["profile"].iloc[0], "runs": len(runs), "settings": runs["setting"].nunique(),
    "seeds": seeds, "best": best, "best_macro_f1": float(summary.loc[best, "macro_f1"]), "pareto_front": front,
    "tfidf_macro_f1": tfidf["macro_f1"], "tfidf_C": tfidf["C"], "majority_macro_f1": majority["macro_f1"],
    "table": {name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items() if not isinstance(v, str)}
              for name, row in summary.iterrows()},
    "guide": guide, "capped": capped,
    "paired": {name: {"difference": float(r["difference"]), "low": float(r["low"]), "high": float(r["high"]),
                      "seeds": int(r["seeds"]), "verdict": r["verdict"]} for name, r in paired.iterrows()},
    "full_sources": {k: {c: (None if pd.isna(v) else v) for c, v in r.items()} for k, r in full_sources.iterrows()},
    "adapted_vs_full": None if adapt is None else {"difference": adapt.mean, "low": adapt.low, "high": adapt.high,
                                                   "seeds": adapt.n},
    "data_size": None if size_curve is None else {str(k): {c: v for c, v in r.items()}
                                                  for k, r in size_curve.iterrows()},
    "representatives": picked, "source_claims": source.to_dict(orient="records"),
    "literature_claims": literature.to_dict(orient="records"),
    "rates": None if rates is None else {k: float(v) for k, v in chosen["lr"].items()},
    "rates_interior": None if rates is None else not edges,
    "step_time_rounds": None if step_times is None else int(step_times["round"].nunique()),
    "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("09_choosing_a_strategy", results)
pd.Series({k: v for k, v in results.items() if k in ("runs", "settings", "seeds", "best", "best_macro_f1",
                                                        "pareto_front", "seconds")}, name="value").to_frame()
