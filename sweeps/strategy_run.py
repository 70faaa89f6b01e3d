# %% [markdown]
# # One fine-tuning strategy under the protocol (the unit of every strategy sweep)
#
# This small notebook trains **one** setting (a strategy and its options) under the profile's experimental
# protocol (`companion.engine.protocol`: the training subset, length, truncation, batch size, epoch cap, early
# stopping and class weighting that every compared run shares) and saves its numbers: validation and test
# macro-F1, whether it trained at all, whether early stopping ended it, trainable parameters, time per step,
# memory and forgetting. The rate search runs it with `test=False` (validation only, on the protocol's selection
# seed); the comparison runs it at the chosen rate on the protocol's seeds, scoring the test split once per run.
# Each run is its own kernel process, so its memory is its own.
#
# ```bash
# python -m companion run sweeps/strategy_run.ipynb -p strategy lora -p seed 1 --out runs/one
# ```

# %%
from typing import Optional

# %% tags=["parameters"]
profile: str = "auto"  # one of: auto, smoke, cpu, gpu
seed: int = 0  # range: [0, 4294967295]; random seed (training subset, new head, data order, dropout)
model_name: str = "minilm"  # encoder: embedded name, local folder or Hugging Face id
adapted: bool = False  # fine-tune model_name after masked-LM adaptation to the data's training texts (notebook 05)
data: str = "medical_abstracts"  # registered data set or a local .csv/.jsonl/.parquet file
text_column: str = "text"  # text column of a local data file
label_column: str = "label"  # label column of a local data file
strategy: str = "full"  # one of: full, freeze, head_only, gradual, discriminative, ulmfit, prompt_tuning, prompt_tuning_text, p_tuning, prefix_tuning, lora
k: int = 4  # range: [0, inf); frozen layers for strategy freeze
lr: Optional[float] = None  # range: (0, inf); peak learning rate; None means the rate chosen on validation for this setting (rates_csv), else the strategy's default
lr_scale: float = 1.0  # range: (0, inf); multiplies the rate (the rate search tries factors of 3 around the default)
rates_csv: str = "results/rates-{profile}.csv"  # the rate search's table ({profile} is filled in); relative to this notebook
test: bool = True  # score the test split; the rate search sets False and is scored on validation only
train_size: Optional[int] = None  # range: [1, inf); training examples; None means the protocol's
max_length: Optional[int] = None  # range: [8, inf); tokens kept per text; None means the protocol's
truncation: Optional[str] = None  # one of: head, head+tail; None means the protocol's
class_weights: Optional[str] = None  # one of: none, balanced; None means the protocol's
epochs: Optional[int] = None  # range: [1, inf); the epoch cap; None means the protocol's
num_virtual_tokens: int = 20  # range: [1, inf); soft-prompt length for prompt tuning, p-tuning and prefix tuning
lora_r: int = 8  # range: [1, inf); LoRA rank
label: Optional[str] = None  # the setting's name in reports and rate tables; None means the strategy and its options, e.g. freeze k 4
rate_of: Optional[str] = None  # the setting whose chosen rate this run uses (e.g. full for a smaller training set); None means its own

# %%
from pathlib import Path

import pandas as pd

import companion as cc
from companion.core.data import load_text_classification
from companion.core.rates import setting_name
from companion.engine.finetune import forgetting_probe, run_strategy, task_for
from companion.engine.forgetting import general_sentences
from companion.engine.peft_configs import init_text_for
from companion.engine.strategies import rate_for

cc.check_values("strategy_run.ipynb", globals())  # types, choices and ranges of the parameters above
PROFILE, device, start = cc.start(profile, seed)  # resolve the profile, seed, device and precision; start a clock
protocol = cc.protocol(PROFILE, train_size=train_size, max_length=max_length, truncation=truncation,
                       class_weights=class_weights, max_epochs=epochs)
setting = label or setting_name(strategy, k if strategy == "freeze" else None, adapted)
if lr is None:
    lr, lr_source = rate_for(Path(rates_csv.format(profile=PROFILE)), rate_of or setting, strategy, PROFILE, data)
else:
    lr_source = "given"
lr = lr * lr_scale
print(protocol.describe())
print(f"setting {setting} · lr {lr:.3g} ({lr_source}) · test scored: {test}")

# %%
dataset = load_text_classification(data, text_column, label_column)  # one fixed split per data set
encoder = model_name
if adapted:
    from companion.core.errors import CourseError
    from companion.lessons.n05_mlm_recipe import adapted_minilm

    if model_name != "minilm":
        raise CourseError("adapted=True adapts the embedded MiniLM only: use model_name minilm (or adapted=False)")
    encoder = str(adapted_minilm(PROFILE, data, text_column, label_column))  # adapted on the same training split
task = task_for(dataset, encoder, protocol, seed)  # the model is resolved here, once
# embedding drift and the general-task probe, against the original MiniLM (so adaptation's own forgetting counts)
probe = (forgetting_probe(task, general_sentences(100 if PROFILE != "smoke" else 16, seed=0), profile=PROFILE,
                          reference_model=model_name) if test else None)
config = protocol.config(lr, seed, len(task.data["train"]), progress=False)
init_text = init_text_for(list(task.id2label.values()) if task.id2label else None, data)  # text-initialised prompts
row = run_strategy(strategy, task, config, probe, test=test, k=k, num_virtual_tokens=num_virtual_tokens, r=lora_r,
                   init_text=init_text)
row.pop("history")
row |= {"setting": setting, "adapted": adapted, "lr_scale": lr_scale, "lr_source": lr_source, "base_model": model_name,
        "model_name": model_name + ("+mlm" if adapted else ""), "data": data, "protocol": protocol.record()}
if test:
    check = cc.training_check(setting, row["test_labels"], row["test_preds"], task.data["train"]["labels"])
    row["training_checks"] = [check.to_json()]
    print(check.line())
ended = "early stopping" if row["stopped_early"] else f"the cap ({row['max_steps']} steps)"
print(f"validation macro-F1 {row['val_macro_f1']:.3f} · {row['steps']} steps, ended by {ended}")
keys = ["setting", "lr", "val_macro_f1", "macro_f1", "trained", "stopped_early", "steps", "trainable",
        "seconds_per_step", "memory_added_mb"]
pd.Series({key: row[key] for key in keys}).to_frame("value")

# %%
cc.save_results("strategy_run", {"profile": PROFILE, "test_scored": test, **row})
