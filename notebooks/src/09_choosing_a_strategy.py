# %% [markdown]
# # 09 · Choosing a strategy
#
# Notebooks 06–08 each told one story. Here all strategies meet **like for like**: the same model (MiniLM),
# the same data and split, the same 5 seeds and the same training budget, each at a learning rate chosen on the
# validation split by a search that gave every strategy the same three candidates. The test split is scored once
# per run. The numbers come from two papermill sweeps of `sweeps/strategy_run.ipynb` (`sweeps/rates.yaml`, then
# `sweeps/strategies.yaml`), collected by `python -m companion report` into one CSV.
#
# **In this notebook you will**
# 1. check that the comparison was fair (one budget, rates chosen on validation) and read the rate search;
# 2. read the sweep: mean and 95 % interval over seeds for quality, trainable parameters, time per step, memory and
#    forgetting (embedding drift and a general-task probe);
# 3. compare every strategy with full fine-tuning **paired by seed**, and call a difference a difference only
#    when its interval excludes 0;
# 4. answer "adapt the encoder to the domain first, or not?" with the domain-adapted MiniLM of notebook 05;
# 5. test the source text's claims about the strategies against the numbers, and derive a decision guide.
#
# **Prerequisites:** notebooks 06–08 (the strategies compared here) and 05 (domain adaptation; forgetting);
# macro-F1, a mean with its 95 % interval. **Study time:** about 45 minutes for a first reading with the exercises.
#
# **Machine time:** reading the stored report takes seconds in every profile. Re-running the sweeps: `make rates`
# then `make sweep GRID=sweeps/strategies.yaml` (their times on 2 cores are in `sweeps/README.md`), or set
# `launch=True` below for a small sweep.

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for the baselines' data subset
model_name: str = "minilm"  # encoder of a launched sweep: embedded name, local folder or Hugging Face id
report_csv: str = "../sweeps/results/strategies-cpu.csv"  # report.csv of a strategy sweep
rates_csv: str = "../sweeps/results/rates-cpu.csv"  # the rate search's table (make rates); shown in section 1
step_time_csv: str = "../sweeps/results/step-time-cpu.csv"  # seconds per step of each strategy, one process (bench/step_time.py)
data: str = "medical_abstracts"  # the sweep's data: registered data set or a local .csv/.jsonl/.parquet file (baselines)
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
launch: bool = False  # run a small sweep now (profile below) instead of only reading report_csv
launch_strategies: list = ["full", "lora"]  # strategies of the launched sweep
launch_seeds: list = [0, 1]  # range: [0, 4294967295]; seeds of the launched sweep

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import yaml

import companion as cc
from companion.engine.comparison import load_sweep, pair, paired_against, summarise
from companion.lessons.n09_choosing import decision_guide, pareto_front
from companion.lessons.n09_claims import source_claims
from companion.core.stats import compare
from IPython.display import Markdown, display
from companion.core.data import load_text_classification
from companion.engine.finetune import subset
from companion.engine.metrics import majority_baseline, tfidf_baseline
from companion.core.plots import plain_log_axis
from companion.batch.tables import readable

cc.check_values("09", globals())  # types, choices and ranges of the parameters above
PROFILE, _, start = cc.start(profile, seed)  # resolve the profile, seed, start a clock

if launch:  # a small sweep of the same notebook, into a temporary run folder
    from companion.batch.report import report
    from companion.batch.sweep import sweep

    rundir = Path(tempfile.mkdtemp(prefix="strategies-"))
    grid = {"name": "launched", "out": str(rundir), "seeds": launch_seeds,
            "params": {"profile": PROFILE, "model_name": model_name, "data": data, "text_column": text_column,
                       "label_column": label_column},
            "notebooks": [{"notebook": str(Path("../sweeps/strategy_run.ipynb").resolve()), "name": "strategies",
                           "grid": {"strategy": launch_strategies}}]}
    (rundir / "grid.yaml").write_text(yaml.safe_dump(grid))
    sweep(rundir / "grid.yaml", jobs=1)
    report_csv = str(report(rundir)["csv"])
runs = load_sweep(report_csv)
seeds = sorted(int(s) for s in runs["seed"].unique())
print(f"{len(runs)} finished runs, {runs['setting'].nunique()} settings, seeds {seeds}, "
      f"profile {runs['param.profile'].iloc[0]}")

# %% [markdown]
# ## 1. The budget was the same for everyone, and the rates were chosen on validation
#
# A comparison is only fair if the strategies got the same data and budget, and if no setting was tuned on the
# test split. The report keeps every run's parameters, so we can check rather than trust. The learning rates come
# from a separate **rate search** (`sweeps/rates.yaml`): for every strategy the same three candidates (1/3, 1 and
# 3 × its default), seed 0, scored on the **validation** split only (those runs never score test). The adapted
# encoder is fine-tuned at the rate chosen for `full`.

# %%
# NBVAL_CHECK_OUTPUT
budget = runs[["train_size", "epochs", "max_length", "base_model"]].drop_duplicates()
print("one budget for all runs:", len(budget) == 1)
rates = pd.read_csv(rates_csv) if Path(rates_csv).is_file() and not launch else None  # a launched sweep used defaults
if rates is not None:
    runs_per_strategy = rates.groupby("strategy").size()
    print("the same number of candidate rates for every strategy:", runs_per_strategy.nunique() == 1)
    chosen = rates[rates["chosen"]].set_index("strategy")["lr"]
    rate_key = runs["strategy"].where(~runs["setting"].str.startswith("adapted"), "full")
    print("every run used the rate chosen on validation:",
          bool(np.allclose(runs["lr"], rate_key.map(chosen).astype(float), rtol=1e-6)))
budget

# %%
if rates is not None:
    search = rates.pivot_table(index="strategy", columns="lr", values="val_macro_f1")  # one row per strategy
    candidates = rates.sort_values(["strategy", "lr"]).assign(
        candidate=lambda f: f.groupby("strategy").cumcount().map({0: "1/3 × default", 1: "default", 2: "3 × default"}),
        cell=lambda f: [f"{lr:.2g} → {score:.3f}" + (" ✓" if chosen else "")
                        for lr, score, chosen in zip(f["lr"], f["val_macro_f1"], f["chosen"])])
    display(candidates.pivot(index="strategy", columns="candidate", values="cell")[
        ["1/3 × default", "default", "3 × default"]])  # learning rate → validation macro-F1, ✓ = chosen
    print("chosen (best validation macro-F1):", ", ".join(f"{s} {lr:.2g}" for s, lr in chosen.items()))
    edge = [s for s, lr in chosen.items() if lr in (search.loc[s].dropna().index.min(), search.loc[s].dropna().index.max())]
    if edge:  # the best candidate is the smallest or the largest tried: a wider search might find a better rate
        print("chosen at the edge of its candidates (a wider search might do better):", ", ".join(edge))

# %% [markdown]
# ## 2. The table: mean and 95 % interval over seeds
#
# Quality is **macro-F1** on the held-out test split (every class counts equally; the classes are unbalanced),
# scored once per run. Beside it: trainable parameters, time per **training step** (evaluation and the frozen-layer
# feature cache not counted; measured by `bench/step_time.py` with every strategy in one process, round after
# round, because the sweep's runs met different machine load), the memory a run's training added to its process
# (each run is its own process), and
# forgetting in two forms: how far the encoder's sentence embeddings of general English (WikiText-2) moved
# (drift = 1 − mean cosine), and accuracy on a **general task** (which WikiText-2 article a sentence comes from,
# a linear probe on the encoder's frozen features) before and after.
#
# Two baselines on the same training subset set the floor: the majority class and TF-IDF + logistic regression
# (class-balanced: like macro-F1, it weighs every class equally).
#
# **Predict, then measure.** Full fine-tuning trains all 22.7 M parameters, LoRA well under 1 %, and prompt
# tuning from a task description only a few thousand. *Before you run the table below*, predict their order by
# mean test macro-F1 on this budget, best first.

# %%
from companion.checks.n09 import check_ranking_prediction

ranking_prediction = None  # your prediction: a list such as ["full", "lora", "prompt_tuning_text"], best first

# %%
dataset = load_text_classification(data, text_column, label_column)
train = subset(dataset, int(budget["train_size"].iloc[0]), seed)["train"]
majority = majority_baseline(train["label"], dataset["test"]["label"])
tfidf = tfidf_baseline(train["text"], train["label"], dataset["test"]["text"], dataset["test"]["label"], seed,
                       balanced=True)
summary = summarise(runs)
step_times = pd.read_csv(step_time_csv) if Path(step_time_csv).is_file() and not launch else None
if step_times is not None:  # time per step from one process, interleaved rounds: comparable across strategies
    step_median = step_times.groupby("setting")["seconds_per_step"].median()
    same_network = {s: "full" for s in summary.index if s.startswith("adapted + ")}  # the same model as full's
    summary["seconds_per_step"] = [step_median.get(same_network.get(s, s), float("nan")) for s in summary.index]
columns = ["macro_f1", "macro_f1_low", "macro_f1_high", "val_macro_f1", "lr", "trainable", "steps", "seconds_per_step",
           "memory_added_mb", "forgetting.drift", "forgetting.general_acc_change", "seeds"]
show = summary[[c for c in columns if c in summary]].copy()
show.loc["baseline: TF-IDF + LR (balanced)", "macro_f1"] = tfidf["macro_f1"]
show.loc["baseline: majority class", "macro_f1"] = majority["macro_f1"]
readable(show, counts=["trainable", "memory_added_mb", "seeds", "steps"],
         decimals={"macro_f1": 3, "macro_f1_low": 3, "macro_f1_high": 3, "val_macro_f1": 3, "seconds_per_step": 3,
                   "forgetting.drift": 4, "forgetting.general_acc_change": 3})

# %%
check_ranking_prediction(ranking_prediction, summary)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: a prediction passes when it matches the measured order, read off the table above
trio = summary[summary.index.isin(["full", "lora", "prompt_tuning_text"])]
ranking_prediction = trio.sort_values("macro_f1", ascending=False).index.tolist()
check_ranking_prediction(ranking_prediction, summary)

# %% [markdown]
# ## 3. Differences that hold: paired against full fine-tuning
#
# Every setting ran on the same seeds as full fine-tuning (same data order, same new head), so the fair comparison
# is **paired**: the difference on each seed, then its mean and 95 % interval. A difference counts only when its
# interval excludes 0; otherwise the two are *tied within noise* at this number of seeds.

# %%
paired = paired_against(runs, "full") if len(seeds) >= 2 else pd.DataFrame()
if len(paired):
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(paired) + 1.5))
    ys = range(len(paired))
    ax.errorbar(paired["difference"], ys, xerr=[paired["difference"] - paired["low"], paired["high"] - paired["difference"]],
                fmt="o", capsize=4, color="tab:blue")
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(list(ys), paired.index.tolist())
    ax.set(xlabel="test macro-F1 − full fine-tuning's (mean over seeds, 95 % interval)", title="Paired differences")
    plt.tight_layout()
    plt.show()
    display(paired.astype({"difference": float, "low": float, "high": float}).round(3))
else:
    print("one seed only: no intervals; run at least 2 seeds (5 for a conclusion)")

# %% [markdown]
# ## 4. Adapt first, or not?
#
# `adapted + full` fine-tunes MiniLM after masked-LM domain-adaptive pretraining on the medical training texts
# (notebook 05 builds it; the sweep reuses the cached model), with exactly the budget, rate and seeds of `full`.
# The difference below answers the question a learner came with, whatever its sign:

# %%
if "adapted + full" in set(runs["setting"]) and "full" in set(runs["setting"]) and len(seeds) >= 2:
    adapt = pair(runs, "adapted + full", "full")
    print(compare("domain-adapted MiniLM", "MiniLM", adapt, "test macro-F1 (full fine-tuning, paired by seed)"))
    general = pair(runs, "adapted + full", "full", "forgetting.general_acc")
    print(compare("domain-adapted MiniLM", "MiniLM", general, "general-task accuracy after fine-tuning"))
else:
    adapt = None
    print("the sweep has no adapted + full runs to pair with full")

# %% [markdown]
# ## 5. The trade-offs
#
# Quality against the three costs. The x-axis of the first plot is logarithmic: the strategies differ by
# factors of a hundred in what they train. Error bars are 95 % intervals over seeds.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
costs = [("trainable", "trainable parameters (log)"), ("seconds_per_step", "seconds per training step"),
         ("forgetting.drift", "forgetting: drift of general-text embeddings")]
for ax, (cost, label) in zip(axes, costs):
    sns.scatterplot(data=summary.reset_index(names="setting"), x=cost, y="macro_f1", hue="setting", s=80, ax=ax,
                    legend=ax is axes[-1])
    ax.errorbar(summary[cost].astype(float), summary["macro_f1"].astype(float),
                yerr=[(summary["macro_f1"] - summary["macro_f1_low"]).astype(float).fillna(0),
                      (summary["macro_f1_high"] - summary["macro_f1"]).astype(float).fillna(0)],
                fmt="none", ecolor="grey", lw=1)
    ax.axhline(tfidf["macro_f1"], color="black", ls="--", lw=1.5, zorder=5, label="TF-IDF + LR (balanced)")
    ax.set(xlabel=label, ylabel="test macro-F1")
plain_log_axis(axes[0], "x", ticks=[1e4, 1e5, 1e6, 1e7])
axes[-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=9)
plt.tight_layout()
plt.show()
front = pareto_front(summary, "macro_f1", "trainable")
print("Pareto front (macro-F1 vs trainable parameters), cheapest first:", " → ".join(front))

# %% [markdown]
# ## 6. The source text's claims, measured
#
# The course's source text makes six claims about the strategies. Each row below is computed from this sweep
# (paired by seed where two settings are compared) and says *supported*, *contradicted* or *not resolved at this
# number of seeds*. Overfitting on small data is measured in notebook 06, not here.

# %%
claims = source_claims(runs, step_times)
for claim in claims.itertuples():
    print(f"{claim.verdict.upper()}: {claim.claim}\n    {claim.compared} on {claim.metric}: {claim.mean:+.4g} "
          f"(95 % CI {claim.low:+.4g} to {claim.high:+.4g}, n={claim.seeds})")

# %% [markdown]
# ## 7. A decision guide that follows from these numbers
#
# The sentences below are generated from the tables above (change the sweep, and they change):

# %%
guide = decision_guide(summary, paired, tfidf["macro_f1"], majority["macro_f1"]) if len(paired) else [
    "One seed only: run the sweep with at least 5 seeds before choosing."]
display(Markdown("\n".join(f"* {line}" for line in guide)))

# %% [markdown]
# **What the literature says, beside these numbers.** (Read the measured side off the tables above.)
#
# * **Full fine-tuning** is the usual reference for quality when data and epochs are plentiful, and the most
#   expensive to store: one full copy per task.
# * **Layered fine-tuning** (freezing the lowest k layers): ULMFiT (Howard & Ruder 2018, Table 7) found
#   last-layer-only training far worse than full fine-tuning on TREC-6 (16.09 vs 6.86 % error), and gradual
#   unfreezing + discriminative learning rates best of all (5.69 %). With the feature cache (notebook 07) a frozen
#   lower stack is computed once, so each step only runs the layers above it.
# * **Soft prompts** train only thousands of parameters and leave the encoder untouched. Lester et al. (2021) show
#   their gap to full fine-tuning is large for small models and closes only near 11B parameters, with a learning
#   rate (0.3) far above full fine-tuning's. A soft prompt still sends its gradient back through every layer, so on
#   a CPU its step is not cheaper than full fine-tuning's; what it saves is optimiser state and storage. Always
#   compare with the majority class (peft issue 2642: a soft prompt can silently predict one class).
# * **LoRA**: Hu et al. (2021, RoBERTa-base GLUE) report it on par with full fine-tuning (87.2 vs 86.4 average);
#   the peft examples report prompt tuning 0.730 < prefix tuning 0.877 < LoRA 0.895 accuracy on MRPC. "Few
#   trainable parameters" is not the same as "a small change to the model": the merged low-rank update can move
#   general-text features as much as full fine-tuning does (compare the forgetting columns above).
# * **Domain-adaptive pretraining**: Gururangan et al. (2020) report ChemProt micro-F1 81.9 → 84.2 for RoBERTa-base
#   after biomedical DAPT, with far more adaptation text and compute than a laptop budget; section 4 is this
#   course's measurement at its own budget.

# %% [markdown]
# ## Exercises
#
# **1.** What is the mean test macro-F1 of `lora` over its seeds? Compute it from `runs`.

# %%
from companion.checks.n09 import check_cheapest_above_tfidf, check_mean_over_seeds, check_pareto

lora_mean = None  # your answer: a float
check_mean_over_seeds(lora_mean, runs, "lora")

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: select the runs of that setting, then average their macro-F1
lora_mean = runs.loc[runs["setting"] == "lora", "macro_f1"].mean()
check_mean_over_seeds(lora_mean, runs, "lora")

# %% [markdown]
# **2.** Among the settings that beat TF-IDF + LR on macro-F1, which one trains the fewest parameters?
# (Answer with its name from the `summary` index, or `"none"`.)

# %%
cheapest = None  # your answer: a string
check_cheapest_above_tfidf(cheapest, summary, tfidf["macro_f1"])

# %% tags=["solution"] jupyter={"source_hidden": true}
# NBVAL_CHECK_OUTPUT
# Solution: keep the settings above TF-IDF; take the one with the fewest trainable parameters
above = summary[summary["macro_f1"] > tfidf["macro_f1"]]
cheapest = above["trainable"].idxmin() if len(above) else "none"
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
# * A fair comparison fixes model, data, split, seeds and budget, and reports the spread over seeds.
# * No strategy wins on every axis: the Pareto front and the guide above say which one to pick for which
#   constraint (quality, parameters to store per task, time, keeping general knowledge).
# * Re-run the sweep with your own data (`data`, `text_column`, `label_column` in the YAML `params`) or model,
#   and this notebook rebuilds the table, the plots and the guide from your numbers.

# %%
best = summary["macro_f1"].idxmax()
results = {
    "notebook": "09_choosing_a_strategy", "profile": PROFILE, "seed": seed, "launched": launch,
    "sweep_profile": runs["param.profile"].iloc[0], "runs": len(runs), "settings": runs["setting"].nunique(),
    "seeds": sorted(int(s) for s in runs["seed"].unique()),
    "best": best, "best_macro_f1": float(summary.loc[best, "macro_f1"]), "pareto_front": front,
    "tfidf_macro_f1": tfidf["macro_f1"], "majority_macro_f1": majority["macro_f1"],
    "table": {name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()} for name, row in summary.iterrows()},
    "guide": guide, "paired": {name: {k: (bool(v) if k == "excludes_0" else float(v)) for k, v in row.items()}
                               for name, row in paired.iterrows()},
    "adapted_vs_full": None if adapt is None else {"difference": adapt.mean, "low": adapt.low, "high": adapt.high,
                                                   "seeds": adapt.n},
    "claims": claims.to_dict(orient="records"), "seconds": round(time.perf_counter() - start, 1),
    "rate_candidates": None if rates is None else int(runs_per_strategy.max()),
    "step_time_rounds": None if step_times is None else int(step_times["round"].nunique()),
    "rates": None if rates is None else {k: float(v) for k, v in chosen.items()},
}
cc.save_results("09_choosing_a_strategy", results)
pd.Series({k: v for k, v in results.items() if k not in ("table", "guide")}, name="value").to_frame()
