# %% [markdown]
# # One fine-tuning strategy, measured (the unit of the strategy sweep)
#
# This small notebook trains **one** strategy with `companion.engine.finetune.run_strategy` and saves its numbers:
# validation and test macro-F1, trainable parameters, time per training step (evaluation and feature caching
# apart), memory, and forgetting (drift of general-English embeddings and accuracy on a general task). Two sweeps
# run it: `sweeps/rates.yaml` (the rate search: validation only, the test split untouched) and
# `sweeps/strategies.yaml` (each strategy at the rate the search chose, 5 seeds, test scored once per run).
# Each run is its own kernel process, so its memory is its own.
#
# ```bash
# python -m companion run sweeps/strategy_run.ipynb -p strategy lora -p seed 1 --out runs/one
# ```

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed
model_name: str = "minilm"  # encoder: embedded name, local folder or Hugging Face id
adapted: bool = False  # fine-tune model_name after masked-LM adaptation to the data's training texts (notebook 05)
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
strategy: str = "full"  # one of: full, freeze, head_only, gradual, discriminative, ulmfit, prompt_tuning, prompt_tuning_text, p_tuning, prefix_tuning, lora
k: int = 4  # range: [0, inf); frozen layers for strategy freeze
lr: Optional[float] = None  # range: (0, inf); peak learning rate; None means the rate chosen on validation (rates_csv), else the strategy's default
lr_scale: float = 1.0  # range: (0, inf); multiplies the rate (the rate search tries 1/3, 1 and 3 × the default)
rates_csv: str = "results/rates-{profile}.csv"  # the rate search's choices ({profile} is filled in); relative to this notebook
test: bool = True  # score the test split; the rate search sets False and is scored on validation only
epochs: Optional[int] = None  # range: [1, inf); most passes over the training data (early stopping may end sooner); None means the profile default
max_length: Optional[int] = None  # range: [2, inf); tokens kept per text; None means the profile default
train_size: Optional[int] = None  # range: [1, inf); training examples; None means the profile default
num_virtual_tokens: int = 20  # range: [1, inf); soft-prompt length for prompt tuning, p-tuning and prefix tuning
lora_r: int = 8  # range: [1, inf); LoRA rank

# %%
from pathlib import Path

import pandas as pd

import companion as cc
from companion.engine.strategies import default_rate, read_rate
from companion.core.data import load_text_classification
from companion.engine.finetune import forgetting_probe, make_task, run_strategy
from companion.engine.peft_configs import init_text_for
from companion.engine.training import TrainConfig
from companion.engine.forgetting import general_sentences

cc.check_values("strategy_run.ipynb", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed)  # resolve the profile, seed, device and precision; start a clock
cfg = cc.settings(PROFILE, {
    "smoke": {"epochs": 1, "patience": None, "max_length": 24, "train_size": 48, "batch_size": 16,
              "forgetting_sentences": 16},
    "cpu": {"epochs": 6, "patience": 2, "max_length": 32, "train_size": 400, "batch_size": 16,
            "forgetting_sentences": 100},
    "gpu": {"epochs": 10, "patience": 2, "max_length": 256, "train_size": None, "batch_size": 32,
            "forgetting_sentences": 1000},
}, epochs=epochs, max_length=max_length, train_size=train_size)
# The budget is the same for every strategy: at most `epochs` passes, stopped early when validation macro-F1 has
# not improved for `patience` epochs (the best epoch's weights are kept), so it adapts to the data's size.
rate_key = "full" if adapted else strategy  # the adapted encoder is tuned exactly like the unadapted one
if lr is None:
    lr, lr_source = read_rate(Path(rates_csv.format(profile=PROFILE)), rate_key, PROFILE)
else:
    lr_source = "given"
lr = lr * lr_scale
print(f"strategy {strategy}{' (adapted encoder)' if adapted else ''} · lr {lr:.2g} ({lr_source}) · "
      f"test scored: {test}")
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
encoder = model_name
if adapted:
    from companion.core.errors import CourseError
    from companion.lessons.n05_mlm import adapted_minilm

    if model_name != "minilm":
        raise CourseError("adapted=True adapts the embedded MiniLM only: use model_name minilm (or adapted=False)")
    encoder = str(adapted_minilm(PROFILE, data, text_column, label_column))  # adapted on the same training split
task = make_task(dataset, encoder, cfg["max_length"], cfg["train_size"], seed)  # the model is resolved here, once
# embedding drift and the general-task probe, against the original MiniLM (so adaptation's own forgetting counts)
probe = (forgetting_probe(task, general_sentences(cfg["forgetting_sentences"], seed=0), profile=PROFILE,
                          reference_model=model_name) if test else None)
config = TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=lr, patience=cfg["patience"], seed=seed,
                     progress=False)
init_text = init_text_for(list(task.id2label.values()) if task.id2label else None, data)  # text-initialised prompts
row = run_strategy(strategy, task, config, probe, test=test, k=k, num_virtual_tokens=num_virtual_tokens, r=lora_r,
                   init_text=init_text)
row.pop("history")
row |= {"adapted": adapted, "lr_scale": lr_scale, "lr_source": lr_source, "base_model": model_name,
        "model_name": model_name + ("+mlm" if adapted else "")}
keys = ["strategy", "adapted", "lr", "val_macro_f1", "macro_f1", "trainable", "steps", "seconds_per_step",
        "memory_added_mb"]
pd.Series({key: row[key] for key in keys}).to_frame("value")

# %%
cc.save_results("strategy_run", {"profile": PROFILE, "test_scored": test, **row})
