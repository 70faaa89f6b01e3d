"""The course's one training loop, built on `accelerate` (CPU, one GPU, or `accelerate launch` on several).

It trains classifiers (notebooks 06-09) and continues the pretraining of a causal LM (notebook 05). Dynamic padding,
length-grouped batches, warm-up + linear decay, gradient clipping, evaluation each epoch (or every few steps) with
early stopping, a history table, and the costs: wall time, samples/s, peak memory, parameters.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..device import current_precision, pick_device, pick_precision
from ..errors import CourseError
from ..exercises import Verdict, check_close, check_equal, check_prediction, exercise
from .metrics import classification_metrics
from ..models import count_parameters


@dataclass
class TrainConfig:
    """Settings of one training run (a sweep varies these)."""
    epochs: int = 3  # passes over the training data
    batch_size: int = 32  # examples per optimiser step
    lr: float = 5e-5  # peak learning rate (after warm-up)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases and LayerNorm)
    warmup_ratio: float = 0.1  # share of the steps with a linear warm-up
    max_grad_norm: float = 1.0  # gradient clipping threshold (global L2 norm)
    patience: int | None = 2  # stop after this many epochs without a better validation score
    max_steps: int | None = None  # stop after this many optimiser steps (None: all epochs)
    eval_batch_size: int = 64  # examples per evaluation batch
    group_by_length: bool = True  # batch similar lengths together (less padding)
    mixed_precision: str = "auto"  # auto (device.current_precision: what cc.start picked), fp32 (or no), bf16
    metric: str = "macro_f1"  # validation metric for early stopping and the best checkpoint
    seed: int = 0  # seeds shuffling and dropout
    log_every: int = 5  # record the training loss every this many steps
    restore_best: bool = True  # load the best validation epoch's weights at the end
    progress: bool = True  # show tqdm progress bars
    desc: str = "training"  # label of the progress bar
    eval_every: int | None = None  # evaluate every this many steps (and at the end); None: after every epoch
    eval_at_start: bool = False  # also evaluate before the first step (recorded at step 0)
    greater_is_better: bool = True  # False for a metric such as perplexity or loss
    warmup_steps: int | None = None  # warm-up steps; None: warmup_ratio of the steps


@dataclass
class TrainResult:
    """What a run measured: the history table, best validation scores and the costs."""
    history: pd.DataFrame
    best: dict[str, float]
    best_epoch: float  # the epoch (or fraction of one, with eval_every) of the best evaluation
    epochs_run: int
    steps: int
    seconds: float
    train_seconds: float
    samples_per_s: float
    peak_memory_mb: float
    params: dict[str, float]
    config: dict[str, Any] = field(default_factory=dict)
    examples: int = 0  # training examples (sequences) seen
    memory_added_mb: float = 0.0  # peak minus the memory held when training started (what this run added)

    def summary(self) -> dict[str, Any]:
        """The scalar results as a JSON-friendly dict (no history table)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "steps": self.steps, "seconds": round(self.seconds, 2), "train_seconds": round(self.train_seconds, 2),
                "samples_per_s": round(self.samples_per_s, 2), "peak_memory_mb": round(self.peak_memory_mb, 1),
                "params": self.params}


class LengthGroupedBatches:
    """Batch sampler: shuffle, cut into mega-batches of 50 batches, sort each by length, split, shuffle the batches.

    Similar lengths share a batch, so dynamic padding adds few pad tokens; the order changes with `set_epoch`.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0, shuffle: bool = True,
                 group: bool = True, mega: int = 50):
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.shuffle, self.group, self.mega, self.epoch = shuffle, group, mega, 0

    def set_epoch(self, epoch: int) -> None:
        """Use a different (but seeded) order in each epoch."""
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """The list of index batches for the current epoch."""
        n = len(self.lengths)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
            order = torch.randperm(n, generator=gen).tolist()
        else:
            order = list(range(n))
        if self.group:
            size = self.batch_size * self.mega
            chunks = [order[i:i + size] for i in range(0, n, size)]
            order = [i for chunk in chunks for i in sorted(chunk, key=lambda j: -self.lengths[j])]
        batches = [order[i:i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.shuffle and self.group:  # a small data set fits one mega-batch: vary the batch order per epoch
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        return batches

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


def tokenize_dataset(dataset, tokenizer, max_length: int = 128, text_column: str = "text",
                     label_column: str = "label"):
    """Tokenise once (no padding: the collator pads each batch); keep input_ids, attention_mask, labels."""
    def encode(batch):
        enc = tokenizer(batch[text_column], truncation=True, max_length=max_length)
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": batch[label_column]}

    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    keep = ("input_ids", "attention_mask", "labels")
    shown = is_progress_bar_enabled()
    disable_progress_bar()  # tokenising takes a second: no progress bars cluttering the notebook
    try:
        mapped = dataset.map(encode, batched=True, load_from_cache_file=False)
    finally:
        if shown:
            enable_progress_bar()
    if hasattr(mapped, "keys"):  # DatasetDict
        return mapped.remove_columns([c for c in next(iter(mapped.values())).column_names if c not in keep])
    return mapped.remove_columns([c for c in mapped.column_names if c not in keep])


def lengths_of(data) -> list[int]:
    """Sequence length of every example (tokenised dataset, list of cached features or of token blocks)."""
    if hasattr(data, "column_names"):
        return [len(ids) for ids in data["input_ids"]]
    return [len(item["attention_mask"]) if isinstance(item, dict) else len(item) for item in data]


def make_loader(data, collate: Callable, batch_size: int, shuffle: bool, seed: int = 0, group: bool = True):
    """A DataLoader over length-grouped (train) or sorted-by-length (evaluation) batches."""
    from torch.utils.data import DataLoader

    sampler = LengthGroupedBatches(lengths_of(data), batch_size, seed=seed, shuffle=shuffle, group=group)
    return DataLoader(data, batch_sampler=sampler, collate_fn=collate)


def padding_collator(tokenizer) -> Callable:
    """transformers' DataCollatorWithPadding: pad each batch to its own longest sequence."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, return_tensors="pt")


def param_groups(model: nn.Module, lr: float, weight_decay: float, only_trainable: bool = True) -> list[dict]:
    """Two AdamW groups: weights with decay; biases and LayerNorm weights without."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if only_trainable and not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layernorm" in name else decay).append(p)
    groups = [{"params": decay, "lr": lr, "weight_decay": weight_decay},
              {"params": no_decay, "lr": lr, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def linear_warmup_decay(optimizer, warmup_steps: int, total_steps: int):
    """LambdaLR: linear warm-up from 0 to each group's lr, then linear decay to 0 (as transformers' schedule)."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fused_ok(groups: list[dict], device: torch.device) -> bool:
    """Whether the fused AdamW kernel applies (float parameters on CPU/CUDA): ~10× faster steps on CPU."""
    return device.type in ("cpu", "cuda") and all(p.is_floating_point() for g in groups for p in g["params"])


def train_mode(model: nn.Module) -> None:
    """model.train(), but modules marked frozen (`_course_frozen`) stay in eval mode (no dropout)."""
    model.train()
    for module in model.modules():
        if getattr(module, "_course_frozen", False):
            module.eval()


class MemoryMeter:
    """Peak memory of the run: CUDA max allocated, else the process's resident set size (sampled)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.peak = 0.0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)
        self.sample()
        self.start = torch.cuda.memory_allocated(device) / 2**20 if self.cuda else self.peak

    def sample(self) -> None:
        """Record the current RSS (CPU) — call it after memory-hungry steps."""
        if not self.cuda:
            import psutil

            self.peak = max(self.peak, psutil.Process(os.getpid()).memory_info().rss / 2**20)

    def peak_mb(self) -> float:
        """Peak MiB: CUDA max allocated, or the largest RSS sampled."""
        return torch.cuda.max_memory_allocated() / 2**20 if self.cuda else self.peak

    def added_mb(self) -> float:
        """What the run itself added at its peak (optimiser state, gradients, activations): peak − memory at start."""
        return max(0.0, self.peak_mb() - self.start)


def make_accelerator(mixed_precision: str = "auto"):
    """An Accelerator in the run's precision (bf16 autocast or full; `auto`: device.current_precision()).

    On a machine without a GPU it asks for the CPU, so processes started by `accelerate launch --multi_gpu` or
    `torchrun` join one gloo group (data-parallel training on CPU cores); alone, it is the usual CPU run.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    chosen = current_precision() if mixed_precision == "auto" else pick_precision(mixed_precision)
    wanted = "bf16" if chosen == "bf16" else "no"
    alone = PartialState._shared_state.get("distributed_type") == DistributedType.NO
    if AcceleratorState._shared_state.get("_mixed_precision", wanted) != wanted and alone:
        AcceleratorState._reset_state()  # accelerate keeps one precision per process; one process may switch
    return Accelerator(mixed_precision=wanted, cpu=pick_device().type == "cpu")


@torch.no_grad()
def predict(model: nn.Module, loader, accelerator=None) -> dict[str, Any]:
    """Mean loss, predictions and labels over a loader (in the loader's order), in eval mode."""
    model.eval()
    losses, preds, labels = [], [], []
    for batch in loader:
        out = model(**batch)
        logits, y = out.logits, batch["labels"]
        if accelerator is not None:
            logits, y = accelerator.gather_for_metrics((logits.contiguous(), y))
        losses.append(float(nn.functional.cross_entropy(logits.float(), y, reduction="sum")))
        preds += logits.argmax(-1).tolist()
        labels += y.tolist()
    return {"loss": sum(losses) / max(1, len(labels)), "preds": preds, "labels": labels}


def evaluate(model: nn.Module, loader, accelerator=None) -> dict[str, float]:
    """Loss, accuracy and macro-F1 on a loader."""
    out = predict(model, loader, accelerator)
    return {"loss": out["loss"], **classification_metrics(out["labels"], out["preds"])}


class BestTracker:
    """The best validation scores so far, their epoch and (optionally) weights, and evaluations since it improved."""

    def __init__(self, metric: str, greater_is_better: bool = True, keep_weights: bool = True):
        self.metric, self.greater, self.keep = metric, greater_is_better, keep_weights
        self.scores: dict[str, float] | None = None
        self.epoch, self.state, self.stale = -1.0, None, 0

    def update(self, scores: dict[str, float], epoch: float, model: nn.Module) -> None:
        """Record one evaluation; keep a copy of the weights when the metric improved."""
        if self.metric not in scores:
            return
        value, best = scores[self.metric], None if self.scores is None else self.scores[self.metric]
        if best is None or (value > best if self.greater else value < best):
            self.scores, self.epoch, self.stale = scores, epoch, 0
            if self.keep:
                self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1


def stop_if_not_finite(losses: list[tuple[torch.Tensor, int, float]], peak_lr: float) -> None:
    """Raise a CourseError naming the first (loss, step, rate) whose loss is NaN or infinite (one host sync)."""
    finite = torch.isfinite(torch.stack([loss.float().sum() for loss, _, _ in losses]))
    if not bool(finite.all()):
        loss, step, rate = losses[int((~finite).nonzero()[0, 0])]
        value = float(loss.float().sum())
        raise CourseError(f"training stopped: the loss is {value} at step {step} (learning rate {rate:.3g} at that "
                          f"step, peak {peak_lr:.3g}): the run diverged. Lower the learning rate (-p lr), or check "
                          f"the data")


def train(model: nn.Module, train_data, val_data, collate: Callable, config: TrainConfig | None = None,
          groups: list[dict] | None = None, on_epoch_start: Callable[[int, nn.Module], None] | None = None,
          evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None) -> TrainResult:
    """Train `model` (a loss from `model(**batch)`: class labels, or causal-LM labels = input ids) with AdamW.

    `groups`: AdamW parameter groups (default: all trainable at `config.lr`); `on_epoch_start(epoch, model)`: a hook
    (gradual unfreezing); `evaluate_fn(model)`: validation scores (default: loss, accuracy, macro-F1 on `val_data`),
    after each epoch or every `eval_every` steps. Trains in place; keeps the best evaluation's weights if asked."""
    cfg = config or TrainConfig()
    torch.manual_seed(cfg.seed)
    accelerator = make_accelerator(cfg.mixed_precision)
    train_loader = make_loader(train_data, collate, cfg.batch_size, True, cfg.seed, cfg.group_by_length)
    val_loader = None if evaluate_fn is not None else make_loader(val_data, collate, cfg.eval_batch_size, False)
    sampler = train_loader.batch_sampler
    groups = groups or param_groups(model, cfg.lr, cfg.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=fused_ok(groups, accelerator.device))
    model, prepared_optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    # the step budget counts this process's batches (after `prepare` splits them across processes), and the
    # schedule steps once per optimiser step: the same schedule on 1 process or N
    total = len(train_loader) * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, len(train_loader) * cfg.epochs)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(cfg.warmup_ratio * total)
    scheduler = linear_warmup_decay(optimizer, warmup, total)
    optimizer = prepared_optimizer
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
        evaluate_fn = lambda m: evaluate(m, val_loader, accelerator)  # noqa: E731
    memory, best = MemoryMeter(accelerator.device), BestTracker(cfg.metric, cfg.greater_is_better, cfg.restore_best)
    history, running, step, seen, eval_seconds = [], [], 0, 0, 0.0
    unchecked, check_every = [], 1 if accelerator.device.type == "cpu" else cfg.log_every  # a GPU syncs less often

    def validate(epoch: float) -> None:
        """Evaluate (in eval mode), record a validation row, update the best scores."""
        nonlocal eval_seconds
        t0 = time.perf_counter()
        model.eval()
        scores = evaluate_fn(model)
        eval_seconds += time.perf_counter() - t0
        memory.sample()
        history.append({"step": step, "epoch": epoch, "split": "validation", **scores,
                        "train_loss": float(torch.stack(running).float().mean()) if running else float("nan")})
        best.update(scores, epoch, accelerator.unwrap_model(model))

    start = time.perf_counter()
    if cfg.eval_at_start:
        validate(0)
    bar = tqdm(total=total, desc=cfg.desc, mininterval=10, disable=not cfg.progress or not accelerator.is_local_main_process)
    for epoch in range(cfg.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch, accelerator.unwrap_model(model))
        sampler.set_epoch(epoch)
        train_mode(model)
        running = []
        for batch in train_loader:
            loss = model(**batch).loss
            unchecked.append((loss.detach(), step + 1, scheduler.get_last_lr()[0]))
            if len(unchecked) >= check_every:  # stop at the first NaN or infinite loss, before it reaches the weights
                stop_if_not_finite(unchecked, cfg.lr)
                unchecked = []
            accelerator.backward(loss)
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch["labels"]) * accelerator.num_processes
            running.append(loss.detach())  # kept on the device: no GPU sync per step
            if step % cfg.log_every == 0 or step == 1:
                memory.sample()
                recent = float(torch.stack(running[-cfg.log_every:]).float().mean())
                history.append({"step": step, "epoch": epoch + step_fraction(step, len(train_loader)),
                                "split": "train", "loss": recent, "lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{recent:.3f}", epoch=epoch + 1)
            bar.update(1)
            if step >= total:
                break
            if cfg.eval_every and step % cfg.eval_every == 0:
                validate(epoch + step_fraction(step, len(train_loader)))
                train_mode(model)
        if cfg.eval_every is None or step >= total or epoch == cfg.epochs - 1:
            validate(epoch + 1 if cfg.eval_every is None else epoch + step_fraction(step, len(train_loader)))
        if step >= total or (cfg.patience is not None and best.stale >= cfg.patience):
            break
    bar.close()
    if unchecked:
        stop_if_not_finite(unchecked, cfg.lr)
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if best.state is not None and best.stale > 0:
        unwrapped.load_state_dict(best.state)
    unwrapped.eval()
    seconds = time.perf_counter() - start
    train_seconds = seconds - eval_seconds
    return TrainResult(history=pd.DataFrame(history), best=best.scores or {}, best_epoch=best.epoch,
                       epochs_run=epoch + 1, steps=step, seconds=seconds, train_seconds=train_seconds,
                       samples_per_s=seen / max(train_seconds, 1e-9), peak_memory_mb=memory.peak_mb(),
                       memory_added_mb=memory.added_mb(),
                       params=count_parameters(unwrapped), config=asdict(cfg), examples=seen)


def step_fraction(step: int, steps_per_epoch: int) -> float:
    """Fraction of the current epoch done after `step` optimiser steps (for plotting against epochs)."""
    return ((step - 1) % steps_per_epoch + 1) / steps_per_epoch


def eval_loader(data, collate: Callable, batch_size: int = 64):
    """An evaluation DataLoader (batches sorted by length) for a held-out split."""
    return make_loader(data, collate, batch_size, shuffle=False)


@exercise("06", "total_steps")
def check_total_steps(answer, n_examples: int, batch_size: int, epochs: int) -> bool:
    """Exercise: optimiser steps of a run (the last, smaller batch of an epoch counts as a step)."""
    return check_equal(answer, math.ceil(n_examples / batch_size) * epochs, "total_steps",
                       "steps per epoch = ceil(examples / batch_size); multiply by the epochs")


@exercise("06", "lr_at_step")
def check_lr_at_step(answer, step: int, peak_lr: float, warmup_steps: int, total_steps: int) -> bool:
    """Exercise: the learning rate of the warm-up + linear-decay schedule at a step."""
    expected = peak_lr * linear_warmup_decay(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0),
                                             warmup_steps, total_steps).lr_lambdas[0](step)
    return check_close(answer, expected, "lr_at_step", "before warm-up ends: peak·step/warmup; after: "
                       "peak·(total − step)/(total − warmup)", atol=1e-9, rtol=1e-6)


@exercise("06", "overfit_epoch")
def check_overfit_epoch(prediction: int | None, val_losses: Sequence[float]) -> Verdict:
    """Exercise (predict, then measure): the epoch with the lowest validation loss in the overfitting run."""
    measured = int(min(range(len(val_losses)), key=lambda i: val_losses[i])) + 1
    tolerance = max(1, len(val_losses) // 4)
    return check_prediction(prediction, measured, "overfit_epoch", f"Within ±{tolerance} epoch(s) counts. The "
                            "validation loss turns when the model starts to memorise its few examples (training loss "
                            "near 0): sooner with fewer examples or a higher rate; then it grows more confident on "
                            "its validation mistakes.", rtol=tolerance / measured)
