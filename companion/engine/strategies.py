"""The fine-tuning strategies as one table: each row holds a strategy's preparation, its learning rates and its
description, and `prepare_strategy` is the one place that dispatches on a strategy's name.

Adding a strategy is one row (and its test): write `prepare_<name>(model, **options) -> Prepared` (in `layered` or
`peft_configs`), then add `"<name>": Strategy(prepare_<name>, lr=…, small_budget_lr=…, description="…")` below.
Sweeps, the rate search and the notebooks' `one of:` lists read the names from this table.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from torch import nn

from ..core.errors import CourseError
from ..core.rates import chosen_rate
from .layered import (Prepared, prepare_discriminative, prepare_freeze, prepare_full, prepare_gradual,
                      prepare_head_only, prepare_ulmfit)
from .peft_configs import (prepare_lora, prepare_p_tuning, prepare_prefix_tuning, prepare_prompt_tuning,
                           prepare_prompt_tuning_text)


@dataclass(frozen=True)
class Strategy:
    """One row of the table: how to prepare a fresh classifier, and the rates its search is centred on."""
    prepare: Callable[..., Prepared]  # prepare(model, **options) -> Prepared; options are its keyword arguments
    lr: float  # a rate that works at a full budget (published values; the `gpu` profile's search centre)
    small_budget_lr: float  # the search centre at small budgets (`smoke`, `cpu`: ~100 steps need higher rates)
    description: str


# Rates: full fine-tuning 5e-5 (BERT); soft prompts far higher (Lester et al. 2021; the peft examples); LoRA 5e-4.
STRATEGIES: dict[str, Strategy] = {
    "full": Strategy(prepare_full, 5e-5, 2e-4, "every parameter trains"),
    "freeze": Strategy(prepare_freeze, 5e-5, 2e-4, "the embeddings and the lowest k layers are frozen (option k)"),
    "head_only": Strategy(prepare_head_only, 5e-5, 3e-3, "the whole encoder is frozen: pooler and classifier train"),
    "gradual": Strategy(prepare_gradual, 5e-5, 2e-4, "one more layer thaws each epoch, top-down"),
    "discriminative": Strategy(prepare_discriminative, 5e-5, 2e-4,
                               "every layer trains, each at the rate above it / decay (option decay)"),
    "ulmfit": Strategy(prepare_ulmfit, 5e-5, 2e-4, "gradual unfreezing with discriminative rates"),
    "prompt_tuning": Strategy(prepare_prompt_tuning, 3e-2, 3e-2,
                              "trainable input vectors, randomly initialised (option num_virtual_tokens)"),
    "prompt_tuning_text": Strategy(prepare_prompt_tuning_text, 3e-2, 3e-2,
                                   "prompt tuning starting from a task description's word embeddings"),
    "p_tuning": Strategy(prepare_p_tuning, 1e-2, 1e-2, "virtual tokens produced by a small trainable MLP"),
    "prefix_tuning": Strategy(prepare_prefix_tuning, 1e-2, 1e-2, "trainable key/value vectors in every layer"),
    "lora": Strategy(prepare_lora, 5e-4, 1e-2, "W + (α/r)·B·A on the query and value projections (option r)"),
}


def strategy_options(name: str) -> list[str]:
    """The options strategy `name` takes (its prepare function's arguments after the model)."""
    return list(inspect.signature(STRATEGIES[name].prepare).parameters)[1:]


def check_strategy(name: str, options: dict[str, Any] | None = None) -> None:
    """Refuse an unknown strategy name or an option that no strategy takes (before any model is loaded)."""
    if name not in STRATEGIES:
        raise CourseError(f"unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}")
    known = sorted({option for strategy in STRATEGIES for option in strategy_options(strategy)})
    unknown = sorted(set(options or {}) - set(known))
    if unknown:
        raise CourseError(f"unknown strategy option {', '.join(unknown)}: the strategies take {', '.join(known)}")


def prepare_strategy(name: str, model: nn.Module, **options) -> Prepared:
    """Make a fresh classifier ready for strategy `name`: the one place that dispatches on a strategy's name.

    Options that strategy does not take are ignored, so one sweep run may set k, r and num_virtual_tokens for all.
    """
    check_strategy(name, options)
    takes = strategy_options(name)
    return STRATEGIES[name].prepare(model, **{key: value for key, value in options.items() if key in takes})


def suggested_lr(name: str) -> float:
    """A learning rate that works for the strategy at a full budget (published values)."""
    check_strategy(name)
    return STRATEGIES[name].lr


def default_rate(strategy: str, profile: str) -> float:
    """The centre of a strategy's rate search: its small-budget rate at smoke/cpu, its published rate at gpu."""
    check_strategy(strategy)
    row = STRATEGIES[strategy]
    return row.lr if profile == "gpu" else row.small_budget_lr


def rate_for(rates_csv: Path, setting: str, strategy: str, profile: str, data: str = "medical_abstracts"
             ) -> tuple[float, str]:
    """The rate chosen on validation for `setting` by the rate search whose table is `rates_csv`, when that search ran
    on the same data; else the strategy's default. Returns (rate, where it came from, in words)."""
    default = default_rate(strategy, profile)
    if not rates_csv.is_file():
        return default, f"the default for {strategy}: no rate search at {rates_csv.name}"
    rates = pd.read_csv(rates_csv)
    searched = set(rates["data"].astype(str)) if "data" in rates else {"medical_abstracts"}
    if data not in searched:
        return default, (f"the default for {strategy}, NOT chosen on validation: {rates_csv.name} was searched on "
                         f"{', '.join(sorted(searched))}; run the rate search on this data (make decide DATA=…)")
    lr = chosen_rate(rates[rates["data"].astype(str) == data] if "data" in rates else rates, setting)
    if lr is None:
        return default, f"the default for {strategy}: {rates_csv.name} has no search for {setting}"
    return lr, f"chosen on validation ({rates_csv.name})"
