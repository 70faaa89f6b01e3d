"""`run_strategy`: one call trains and measures any strategy like-for-like (the entry point for sweeps).

    from companion.finetune import run_strategy
    row = run_strategy("freeze", dataset, "minilm", seed=0, k=4, epochs=2, max_length=64, lr=2e-4)
    row["macro_f1"], row["trainable"], row["seconds"], row["forgetting"]["cka"]
"""
from __future__ import annotations

import time
from typing import Any

import torch
from datasets import DatasetDict

from .errors import CourseError
from .metrics import classification_metrics, predicts_one_class
from .models import count_parameters, load_model, load_tokenizer
from .peft_configs import PEFT_METHODS, SUGGESTED_LR, wrap_peft
from .strategies import (UpperStack, cache_lower_features, collate_features, discriminative_groups, freeze_lower,
                         gradual_unfreezing, num_layers)
from .training import TrainConfig, eval_loader, padding_collator, param_groups, predict, tokenize_dataset, train

LAYERED = ("full", "freeze", "head_only", "gradual", "discriminative", "ulmfit")
STRATEGIES = LAYERED + PEFT_METHODS


def subset(dataset: DatasetDict, train_size: int | None, seed: int = 0) -> DatasetDict:
    """The same splits with the training split cut to `train_size` examples (a seeded random sample)."""
    if train_size is None or train_size >= len(dataset["train"]):
        return dataset
    parts = dict(dataset)
    parts["train"] = dataset["train"].shuffle(seed=seed).select(range(train_size))
    return DatasetDict(parts)


def build_model(strategy: str, model_name: str, num_labels: int, id2label: dict | None = None, k: int = 4,
                **peft_options):
    """A fresh classifier prepared for a strategy (frozen parts / peft wrapper), and its gradual hook if any."""
    if strategy not in STRATEGIES:
        raise CourseError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    model = load_model(model_name, "classifier", num_labels=num_labels, id2label=id2label)
    hook = None
    if strategy in ("freeze", "head_only"):
        freeze_lower(model, num_layers(model) if strategy == "head_only" else k)
    elif strategy in ("gradual", "ulmfit"):
        hook = gradual_unfreezing(model)
    elif strategy in PEFT_METHODS:
        model = wrap_peft(model, strategy, model_name, **peft_options)
    return model, hook


def run_strategy(strategy: str, dataset: DatasetDict, model_name: str = "minilm", seed: int = 0, *,
                 epochs: int = 3, lr: float | None = None, batch_size: int = 32, max_length: int = 64,
                 train_size: int | None = None, max_steps: int | None = None, patience: int | None = 2,
                 warmup_ratio: float = 0.1, k: int = 4, use_cache: bool = True, decay: float = 2.6,
                 num_virtual_tokens: int = 20, lora_r: int = 8, forgetting_texts: list[str] | None = None,
                 reference: torch.Tensor | None = None, tokenizer=None, progress: bool = True,
                 return_model: bool = False, mixed_precision: str = "auto") -> dict[str, Any]:
    """Train one strategy on `dataset` (train/validation/test) and measure it on the held-out test split.

    strategy: full · freeze (lowest k layers + embeddings, cached) · head_only · gradual · discriminative ·
    ulmfit (gradual + discriminative) · prompt_tuning · prompt_tuning_text · p_tuning · prefix_tuning · lora.
    Returns JSON-friendly numbers (test macro_f1/accuracy, val scores, trainable/total params, seconds, samples/s,
    peak memory, forgetting, history records, test predictions); with `return_model` also the trained model.
    """
    from .device import seed_everything
    from .forgetting import representation_drift

    start = time.perf_counter()
    seed_everything(seed)
    tokenizer = tokenizer or load_tokenizer(model_name)
    dataset = subset(dataset, train_size, seed)
    label_feature = dataset["train"].features["label"]
    names = getattr(label_feature, "names", None)
    num_labels = len(names) if names else len(set(dataset["train"]["label"]))
    peft_options = {}
    if strategy in PEFT_METHODS:
        peft_options = {"r": lora_r} if strategy == "lora" else {"num_virtual_tokens": num_virtual_tokens}
    model, hook = build_model(strategy, model_name, num_labels, dict(enumerate(names)) if names else None, k,
                              **peft_options)
    lr = lr if lr is not None else SUGGESTED_LR.get(strategy, 5e-5)
    data = tokenize_dataset(dataset, tokenizer, max_length)
    collate = padding_collator(tokenizer)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, max_steps=max_steps, patience=patience,
                         warmup_ratio=warmup_ratio, seed=seed, progress=progress, mixed_precision=mixed_precision)
    frozen_k = num_layers(model) if strategy == "head_only" else k if strategy == "freeze" else 0
    cache_seconds = 0.0
    cached = strategy in ("freeze", "head_only") and use_cache and frozen_k > 0
    if cached:
        t0 = time.perf_counter()
        splits = {s: cache_lower_features(model, data[s], collate, frozen_k, progress=progress) for s in data}
        cache_seconds = time.perf_counter() - t0
        trainee, collate = UpperStack(model, frozen_k), collate_features
    else:
        splits, trainee = data, model
    groups = None
    if strategy in ("discriminative", "ulmfit"):
        groups = discriminative_groups(model, lr, decay, config.weight_decay, only_trainable=strategy != "ulmfit")
    elif strategy == "gradual":
        groups = param_groups(model, lr, config.weight_decay, only_trainable=False)
    result = train(trainee, splits["train"], splits["validation"], collate, config, groups=groups, on_epoch_start=hook)
    test = predict(trainee, eval_loader(splits["test"], collate, config.eval_batch_size))
    test_scores = classification_metrics(test["labels"], test["preds"])
    params = count_parameters(model)  # gradual unfreezing: what was trainable by the end
    forgetting = None
    if forgetting_texts is not None:
        if reference is None:
            from .embeddings import sentence_embeddings

            original = load_model(model_name, "encoder")
            reference = sentence_embeddings(original, tokenizer, forgetting_texts, max_length=max_length)
        forgetting = representation_drift(model, tokenizer, forgetting_texts, reference, max_length=max_length)
    out: dict[str, Any] = {
        "strategy": strategy, "model_name": model_name, "seed": seed, "k": frozen_k, "cached": cached,
        "lr": lr, "epochs": epochs, "max_length": max_length, "train_size": len(dataset["train"]),
        "macro_f1": test_scores["macro_f1"], "accuracy": test_scores["accuracy"],
        "val_macro_f1": result.best.get("macro_f1"), "val_accuracy": result.best.get("accuracy"),
        "one_class": predicts_one_class(test["preds"]),
        "trainable": int(params["trainable"]), "total": int(params["total"]),
        "trainable_pct": float(params["trainable_pct"]),
        "seconds": time.perf_counter() - start, "train_seconds": result.train_seconds,
        "cache_seconds": cache_seconds, "seconds_per_epoch": result.train_seconds / max(1, result.epochs_run),
        "samples_per_s": result.samples_per_s, "peak_memory_mb": result.peak_memory_mb,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "steps": result.steps,
        "forgetting": forgetting, "history": result.history.to_dict("records"),
        "test_preds": test["preds"], "test_labels": test["labels"],
    }
    if return_model:
        out["model"] = model
    return out
