"""Fine-tuning strategies compared like-for-like: one table of strategies, and a run in small steps.

    task = make_task(dataset, "minilm", max_length=64, train_size=400)   # resolve the model, tokenise: once
    probe = forgetting_probe(task, general_sentences(100))              # the original encoder's view: once
    row = run_strategy("freeze", task, TrainConfig(epochs=2, lr=2e-4), probe, k=4)
    row["macro_f1"], row["trainable"], row["seconds"], row["forgetting"]["cka"]

`run_strategy` is three steps a reader can follow: `prepare_strategy` (a fresh classifier made ready by the
strategy's row in `strategies.STRATEGIES`), `fit` (train, then predict the test split) and `measure` (the numbers).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from datasets import DatasetDict
from torch import nn

from ..core.errors import CourseError
from ..core.models import count_parameters, load_model, load_tokenizer, resolve_model
from .batches import eval_loader, padding_collator, tokenize_dataset
from .forgetting import Probe, make_probe, probe_sizes
from .layered import Prepared, UpperStack, cache_lower_features, collate_features
from .metrics import chance_macro_f1, classification_metrics, majority_baseline, predicts_one_class, training_check
from .protocol import Protocol
from .strategies import check_strategy, prepare_strategy
from .training import TrainConfig, TrainResult, predict, run_precision, train


# ---------------------------------------------------------------- the task: resolved and tokenised once
@dataclass
class Task:
    """A text-classification task ready to train on: the model's folder, its tokenizer, tokenised splits, labels."""
    model_name: str  # as given: 'minilm', a folder or a hub id (reported in the results)
    model_path: str  # what from_pretrained loads, resolved once
    tokenizer: Any
    data: DatasetDict  # tokenised train / validation / test: input_ids, attention_mask, labels
    num_labels: int
    id2label: dict[int, str] | None
    max_length: int
    truncation: str = "head"
    texts: DatasetDict | None = None  # the same splits untokenised (the training sample's texts, for baselines)


def subset(dataset: DatasetDict, train_size: int | None, seed: int = 0) -> DatasetDict:
    """The same splits with the training split cut to `train_size` examples: a seeded sample stratified by label
    (every class keeps its share, so a small sample still holds every class)."""
    train = dataset["train"]
    if train_size is None or train_size >= len(train):
        return dataset
    from sklearn.model_selection import train_test_split

    labels = list(train["label"])
    counts = {label: labels.count(label) for label in set(labels)}
    stratify = labels if min(counts.values()) >= 2 and train_size >= len(counts) else None
    keep, _ = train_test_split(list(range(len(train))), train_size=train_size, random_state=seed, stratify=stratify)
    parts = dict(dataset)
    parts["train"] = train.select(sorted(keep))
    return DatasetDict(parts)


def make_task(dataset: DatasetDict, model_name: str = "minilm", max_length: int = 64, train_size: int | None = None,
              seed: int = 0, tokenizer=None, truncation: str = "head") -> Task:
    """Resolve the model once, load its tokenizer (unless given), cut the training split, tokenise every split
    (`truncation`: keep the head of a long text, or its head and tail)."""
    missing = [split for split in ("train", "validation", "test") if split not in dataset]
    if missing:
        raise CourseError(f"the data set has no {', '.join(missing)} split: load it with "
                          f"companion.core.data.load_text_classification (train / validation / test)")
    path = resolve_model(model_name)
    tokenizer = tokenizer or load_tokenizer(path)
    dataset = subset(dataset, train_size, seed)
    names = getattr(dataset["train"].features["label"], "names", None)
    num_labels = len(names) if names else len(set(dataset["train"]["label"]))
    return Task(model_name, path, tokenizer, tokenize_dataset(dataset, tokenizer, max_length, truncation=truncation),
                num_labels, dict(enumerate(names)) if names else None, max_length, truncation, dataset)


def task_for(dataset: DatasetDict, model_name: str, protocol: Protocol, seed: int, tokenizer=None) -> Task:
    """The task a run under `protocol` trains on: its training subset (sampled with the run's seed), length,
    truncation and evaluation sets."""
    if protocol.eval_size is not None:
        dataset = DatasetDict({name: part if name == "train" else part.select(range(min(protocol.eval_size, len(part))))
                               for name, part in dataset.items()})
    return make_task(dataset, model_name, protocol.max_length, protocol.train_size, seed, tokenizer,
                     protocol.truncation)


def new_classifier(task: Task) -> nn.Module:
    """A fresh classifier on the task's model: pretrained encoder, new randomly initialised head."""
    return load_model(task.model_path, "classifier", num_labels=task.num_labels, id2label=task.id2label)


def forgetting_probe(task: Task, texts: list[str], general: bool = True, profile: str = "auto",
                     n_articles: int | None = None, per_article: int | None = None,
                     general_max_length: int | None = None, reference_model: str | None = None) -> Probe:
    """Embed general sentences once with the task's original encoder: the reference forgetting is measured against.
    With `general`, also score the general task (WikiText-2 article identification, sizes of `profile` in
    companion.engine.forgetting.PROBE_SIZES unless given) with it. `reference_model` (same tokenizer) is "before"
    instead of the task's model, e.g. the unadapted encoder when the task's model is a domain-adapted one."""
    sizes = probe_sizes(profile, n_articles=n_articles, per_article=per_article,
                        max_length=general_max_length) if general else None
    path = resolve_model(reference_model) if reference_model else task.model_path
    return make_probe(path, task.tokenizer, texts, task.max_length, sizes)


# ---------------------------------------------------------------- a run: prepare → fit → measure
@dataclass
class Fitted:
    """What training left: the run's record, the test-split predictions and whether the feature cache was used."""
    result: TrainResult
    test: dict[str, Any] | None  # loss, preds, labels on the test split (None: test not scored)
    cached: bool
    cache_seconds: float


def fit(prepared: Prepared, task: Task, config: TrainConfig, use_cache: bool = True, test: bool = True) -> Fitted:
    """Train the prepared model (validation after each epoch, best epoch kept), then predict the test split
    (unless `test` is False: a rate search scores validation only and never touches test).

    With frozen layers and `use_cache`, the frozen part runs once over every split and the layers above it train
    on the stored outputs (the same result, less time per epoch).
    """
    trainee, splits, collate = prepared.model, task.data, padding_collator(task.tokenizer)
    cached, cache_seconds = use_cache and prepared.frozen > 0, 0.0
    if cached:
        start = time.perf_counter()
        splits = {name: cache_lower_features(prepared.model, split, collate, prepared.frozen, progress=config.progress)
                  for name, split in task.data.items()}
        cache_seconds = time.perf_counter() - start
        trainee, collate = UpperStack(prepared.model, prepared.frozen), collate_features
    if config.plateau is None:  # early stopping waits until validation beats the majority class and chance
        config = replace(config, plateau=learning_plateau(task))
    result = train(trainee, splits["train"], splits["validation"], collate, config,
                   groups=prepared.groups(config.lr, config.weight_decay), on_epoch_start=prepared.hook)
    scored = predict(trainee, eval_loader(splits["test"], collate, config.eval_batch_size),
                     precision=run_precision(config.mixed_precision)) if test else None
    return Fitted(result, scored, cached, cache_seconds)


def learning_plateau(task: Task) -> float:
    """The validation macro-F1 a model must beat before it counts as learning: the better of always predicting the
    training split's most frequent class and random guessing's 95th percentile."""
    train_labels, val_labels = task.data["train"]["labels"], task.data["validation"]["labels"]
    return max(majority_baseline(train_labels, val_labels)["macro_f1"], chance_macro_f1(val_labels, train_labels))


def measure(prepared: Prepared, fitted: Fitted, task: Task, probe: Probe | None = None) -> dict[str, Any]:
    """Test scores, parameter counts, costs, forgetting (with a probe), the history and the test predictions."""
    test = fitted.test or {"labels": [], "preds": []}
    scores = classification_metrics(test["labels"], test["preds"]) if fitted.test else {"macro_f1": None,
                                                                                        "accuracy": None}
    params = count_parameters(prepared.model)  # gradual unfreezing: what was trainable by the end
    result = fitted.result
    check = training_check("the model", test["labels"], test["preds"], task.data["train"]["labels"]) \
        if fitted.test else None
    return {
        "cached": fitted.cached, "macro_f1": scores["macro_f1"], "accuracy": scores["accuracy"],
        "val_macro_f1": result.best.get("macro_f1"), "val_accuracy": result.best.get("accuracy"),
        "one_class": predicts_one_class(test["preds"]) if fitted.test else None,
        "trained": None if check is None else check.trained,
        "classes_predicted": None if check is None else check.classes_predicted,
        "majority_macro_f1": None if check is None else check.majority_macro_f1,
        "chance_macro_f1": None if check is None else check.chance_macro_f1,
        "stopped_early": result.stopped_early, "left_plateau": result.left_plateau, "max_steps": result.max_steps,
        "trainable": int(params["trainable"]), "total": int(params["total"]),
        "trainable_pct": float(params["trainable_pct"]),
        "train_seconds": result.train_seconds, "cache_seconds": fitted.cache_seconds,
        "seconds_per_step": result.train_seconds / max(1, result.steps), "memory_added_mb": result.memory_added_mb,
        "seconds_per_epoch": result.train_seconds / max(1, result.epochs_run),
        "samples_per_s": result.samples_per_s, "peak_memory_mb": result.peak_memory_mb,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "steps": result.steps,
        "forgetting": probe.drift(prepared.model, task.tokenizer) if probe is not None else None,
        "history": result.history.to_dict("records"),
        "test_preds": test["preds"], "test_labels": test["labels"],
    }


def run_strategy(name: str, task: Task, config: TrainConfig, probe: Probe | None = None, *, use_cache: bool = True,
                 keep_model: bool = False, test: bool = True, **options) -> dict[str, Any]:
    """Prepare a fresh classifier for strategy `name`, fit it on `task`, measure it: one row of a comparison.

    The row is JSON-friendly (with `keep_model`, also "model": the trained classifier); `options` go to the
    strategy's prepare function (see `strategies.STRATEGIES`).
    """
    from ..core.device import seed_everything

    check_strategy(name, options)
    start = time.perf_counter()
    seed_everything(config.seed)  # the same new head for every strategy
    prepared = prepare_strategy(name, new_classifier(task), **options)
    fitted = fit(prepared, task, config, use_cache, test)
    row = {"strategy": name, "model_name": task.model_name, "seed": config.seed, "k": prepared.frozen,
           "lr": config.lr, "epochs": config.epochs, "max_length": task.max_length, "truncation": task.truncation,
           "class_weights": config.class_weights, "train_size": len(task.data["train"]),
           **measure(prepared, fitted, task, probe)}
    row["seconds"] = time.perf_counter() - start
    if keep_model:
        row["model"] = prepared.model
    return row
