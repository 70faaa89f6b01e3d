# %% [markdown]
# # 09 · Choosing a strategy
#
# Notebooks 06–08 each told one story. Here all strategies meet **like for like**: the same model (MiniLM),
# the same data and split, the same seeds and the same training budget, each at its suggested learning rate.
# The numbers come from a papermill sweep (`sweeps/strategies.yaml`, one run of `sweeps/strategy_run.ipynb`
# per strategy and seed), collected by `python -m companion report` into one CSV.
#
# **In this notebook you will**
# 1. read a sweep report: mean ± spread over seeds for quality, trainable parameters, time, memory, forgetting;
# 2. see the trade-offs in plots and find the Pareto front (the settings nothing beats on both axes);
# 3. derive a decision guide *from the numbers*, and set them beside published results.
#
# **Prerequisites:** notebooks 06–08 (the strategies compared here) and 05 (forgetting as embedding drift);
# macro-F1, mean ± standard deviation over seeds. **Study time:** about 45 minutes for a first reading with
# the exercises.
#
# **Machine time:** reading the stored report takes seconds in every profile. Re-running the sweep: `make sweep
# GRID=sweeps/strategies.yaml` (cpu: 18 runs in about 11 min on 2 cores), or set `launch=True` below for a small sweep.

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed for the baselines' data subset
model_name: str = "minilm"  # encoder of a launched sweep: embedded name, local folder or Hugging Face id
report_csv: str = "../sweeps/results/strategies-cpu.csv"  # report.csv of a strategy sweep
launch: bool = False  # run a small sweep now (profile below) instead of only reading report_csv
launch_strategies: list = ["full", "lora"]  # strategies of the launched sweep
launch_seeds: list = [0, 1]  # range: [0, 4294967295]; seeds of the launched sweep
tolerance: float = 0.02  # range: [0, 1]; macro-F1 within which strategies count as equally good

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import yaml

import companion as cc
from companion.choosing import decision_guide, load_sweep, pareto_front, summarise
from companion.data import load_text_classification
from companion.engine.finetune import subset
from companion.engine.metrics import majority_baseline, tfidf_baseline
from companion.plots import plain_log_axis
from companion.batch.tables import readable

cc.check_values("09", globals())  # types, choices and ranges of the parameters above
PROFILE, _, start = cc.start(profile, seed)  # resolve the profile, seed, start a clock

if launch:  # a small sweep of the same notebook, into a temporary run folder
    from companion.batch.report import report
    from companion.batch.sweep import sweep

    rundir = Path(tempfile.mkdtemp(prefix="strategies-"))
    grid = {"name": "launched", "out": str(rundir), "seeds": launch_seeds,
            "params": {"profile": PROFILE, "model_name": model_name},
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
# ## 1. The budget was the same for everyone
#
# A comparison is only fair if the strategies got the same data and budget. The report keeps every run's
# parameters, so we can check rather than trust:

# %%
# NBVAL_CHECK_OUTPUT
budget = runs[["train_size", "epochs", "max_length", "model_name"]].drop_duplicates()
print("one budget for all runs:", len(budget) == 1)
budget

# %% [markdown]
# ## 2. The table: mean ± spread over seeds
#
# Quality is **macro-F1** on the held-out test split (every class counts equally; the classes are unbalanced).
# Beside it: trainable parameters, wall time of the whole run (load, train, evaluate), peak memory, and
# forgetting: how far the encoder's sentence embeddings of general English (WikiText-2) moved from the
# original model's (drift = 1 − mean cosine; 0 means untouched).
#
# Two baselines on the same training subset set the floor: the majority class and TF-IDF + logistic regression.
#
# **Predict, then measure.** Full fine-tuning trains all 22.7 M parameters, LoRA well under 1 %, and prompt
# tuning from a task description only a few thousand. *Before you run the table below*, predict their order by
# mean test macro-F1 on this budget, best first.

# %%
from companion.choosing import check_ranking_prediction

ranking_prediction = None  # your prediction: a list such as ["full", "lora", "prompt_tuning_text"], best first

# %%
dataset = load_text_classification("medical_abstracts")
train = subset(dataset, int(budget["train_size"].iloc[0]), seed)["train"]
majority = majority_baseline(train["label"], dataset["test"]["label"])
tfidf = tfidf_baseline(train["text"], train["label"], dataset["test"]["text"], dataset["test"]["label"])
summary = summarise(runs)
show = summary[["macro_f1", "macro_f1_std", "accuracy", "trainable", "trainable_pct", "result.seconds",
                "peak_memory_mb", "forgetting.drift", "seeds"]].copy()
show.loc["baseline: TF-IDF + LR", ["macro_f1", "accuracy"]] = [tfidf["macro_f1"], tfidf["accuracy"]]
show.loc["baseline: majority class", ["macro_f1", "accuracy"]] = [majority["macro_f1"], majority["accuracy"]]
readable(show, counts=["trainable", "result.seconds", "peak_memory_mb", "seeds"],  # 22,715,141 and not 22715141.0
         decimals={"macro_f1": 3, "macro_f1_std": 3, "accuracy": 3, "trainable_pct": 2, "forgetting.drift": 4})

# %%
check_ranking_prediction(ranking_prediction, summary)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Solution: a prediction passes when it matches the measured order, read off the table above
trio = summary[summary.index.isin(["full", "lora", "prompt_tuning_text"])]
ranking_prediction = trio.sort_values("macro_f1", ascending=False).index.tolist()
check_ranking_prediction(ranking_prediction, summary)

# %%
long = runs.melt(id_vars=["setting", "seed"], value_vars=["macro_f1", "accuracy"], var_name="metric")
order = summary.index.tolist()
fig, ax = plt.subplots(figsize=(10, 4.5))
sns.barplot(data=long, y="setting", x="value", hue="metric", order=order, errorbar="sd", ax=ax)
# the baselines are drawn above the bars (zorder) so they stay visible across them
ax.axvline(tfidf["macro_f1"], color="black", ls="--", lw=1.5, zorder=5, label="TF-IDF macro-F1")
ax.axvline(majority["macro_f1"], color="dimgrey", ls=":", lw=2, zorder=5, label="majority macro-F1")
ax.set(xlabel="test score (mean ± sd over seeds)", ylabel="", title="Quality per strategy")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)  # beside the bars, hiding none
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. The trade-offs
#
# Quality against the three costs. The x-axis of the first plot is logarithmic: the strategies differ by
# factors of a hundred in what they train.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
for ax, (cost, label) in zip(axes, [("trainable", "trainable parameters (log)"), ("result.seconds", "seconds per run"),
                                    ("forgetting.drift", "forgetting: drift of general-text embeddings")]):
    sns.scatterplot(data=summary.reset_index(), x=cost, y="macro_f1", hue="setting", s=80, ax=ax, legend=ax is axes[-1])
    ax.errorbar(summary[cost], summary["macro_f1"], yerr=summary["macro_f1_std"].fillna(0), fmt="none",
                ecolor="grey", lw=1)
    ax.axhline(tfidf["macro_f1"], color="black", ls="--", lw=1.5, zorder=5, label="TF-IDF + LR")
    ax.set(xlabel=label, ylabel="test macro-F1")
plain_log_axis(axes[0], "x", ticks=[1e4, 1e5, 1e6, 1e7])
axes[-1].legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=9)
plt.tight_layout()
plt.show()
front = pareto_front(summary, "macro_f1", "trainable")
print("Pareto front (macro-F1 vs trainable parameters), cheapest first:", " → ".join(front))

# %% [markdown]
# ## 4. A decision guide that follows from these numbers
#
# The sentences below are generated from the table above (change the sweep, and they change):

# %%
guide = decision_guide(summary, tfidf["macro_f1"], majority["macro_f1"], tolerance)
from IPython.display import Markdown, display

display(Markdown("\n".join(f"* {line}" for line in guide)))

# %% [markdown]
# **How to read it, and what the literature says.** (The numbers quoted here are from the stored sweep,
# `sweeps/results/strategies-cpu.csv`: 400 training examples, 32 tokens, 3 epochs, 2 seeds.)
#
# * **Full fine-tuning** is the reference for quality when data and epochs are plentiful (notebook 06 reaches
#   0.687 macro-F1 on the whole training split), and the most expensive to store: one full copy per task. On
#   this deliberately small budget it does *not* lead: partly frozen models and a text-initialised soft prompt
#   are level with it or ahead, within the spread over seeds. The budget decides the ranking, not the method alone.
# * **Layered fine-tuning** (freezing the lowest k layers) trades little or no quality for a large cut in trainable
#   parameters and, with the feature cache, in time (notebook 07). ULMFiT (Howard & Ruder 2018, Table 7)
#   found last-layer-only training far worse than full fine-tuning on TREC-6 (16.09 vs 6.86 % error), and
#   gradual unfreezing + discriminative learning rates best of all (5.69 %). Here, with 3 epochs, gradual
#   unfreezing spends two of them on the top layers only, and the ULMFiT combination trails: a trick tuned for
#   long schedules does not transfer to a short one for free.
# * **Soft prompts** train only thousands of parameters and leave the encoder untouched (drift 0). Lester et al.
#   (2021) show their gap to full fine-tuning is large for small models and closes only near 11B parameters,
#   with a learning rate (0.3) far above full fine-tuning's. Text initialisation matters here: prompt tuning
#   from a task description is level with full fine-tuning on this budget, while p-tuning and prefix tuning
#   trail. Always compare with the majority class (peft issue 2642: a soft prompt can silently predict one class).
# * **LoRA** trains well under 1 % of the parameters. Hu et al. (2021, RoBERTa-base GLUE) report it on par with
#   full fine-tuning (87.2 vs 86.4 average), and so it is here, but only at a high rate for this short budget
#   (1e-2; at 1e-3 it reached 0.233, see `sweeps/strategy_run.py`). Note its forgetting: the merged low-rank
#   updates moved the general-text embeddings *more* than full fine-tuning did (drift 0.42 vs 0.26), a reminder
#   that "few trainable parameters" is not the same as "small change to the model". The peft examples report
#   prompt tuning 0.730 < prefix tuning 0.877 < LoRA 0.895 accuracy on MRPC.
#
# Spread matters: with two seeds, differences smaller than about twice the standard deviation are not evidence.
# Re-run with more seeds (`seeds: [0, 1, 2, 3, 4]` in the YAML) before you trust a small gap.

# %% [markdown]
# ## Exercises
#
# **1.** What is the mean test macro-F1 of `lora` over its seeds? Compute it from `runs`.

# %%
from companion.choosing import check_cheapest_above_tfidf, check_mean_over_seeds, check_pareto

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
    "guide": guide, "seconds": round(time.perf_counter() - start, 1),
}
cc.save_results("09_choosing_a_strategy", results)
pd.Series({k: v for k, v in results.items() if k not in ("table", "guide")}, name="value").to_frame()
