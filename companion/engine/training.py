"""The course's one training loop, built on `accelerate` (CPU, one GPU, or `accelerate launch` on several).

It trains classifiers (notebooks 06-09), continues the pretraining of a causal LM (05), warms and adapts a masked-LM
head (05) and trains soft prompts for several tasks on one model (08). AdamW with warm-up + linear decay, gradient
clipping, bf16 autocast where the hardware has it, optional class-weighted cross-entropy, evaluation each epoch (or
every few steps) with early stopping that waits until the model has learned something, a history table, and the
costs: wall time, samples/s, peak memory, parameters.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.device import autocast, default_precision, pick_device, pick_precision
from ..core.errors import CourseError
from ..core.models import count_parameters
from .batches import labels_of, make_loader
from .metrics import classification_metrics

CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class TrainConfig:
    """Settings of one training run (a sweep varies these)."""
    epochs: int | None = 3  # most passes over the training data; None: as many as `max_steps` needs
    batch_size: int = 32  # examples per optimiser step
    lr: float = 5e-5  # peak learning rate (after warm-up)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases and LayerNorm)
    warmup_ratio: float = 0.1  # share of the steps with a linear warm-up
    max_grad_norm: float = 1.0  # gradient clipping threshold (global L2 norm)
    patience: int | None = 2  # stop after this many evaluations without a better score (counted once the warm-up
    #                           has ended and the best score is above `plateau`); None: never stop early
    max_steps: int | None = None  # stop after this many optimiser steps (None: all epochs)
    eval_batch_size: int = 64  # examples per evaluation batch
    group_by_length: bool = True  # batch similar lengths together (less padding)
    mixed_precision: str = "auto"  # fp32, bf16 or auto (COURSE_PRECISION, else bf16 on CUDA cards that have it)
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
    class_weights: str = "none"  # none, or balanced: cross-entropy weighted by n / (classes × n_class) of training
    plateau: float | None = None  # a score that means "not learned yet" (the majority class's macro-F1): early
    #                               stopping waits until the best score is above it


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
    max_steps: int = 0  # the budget: the step cap the run could have reached
    stopped_early: bool = False  # early stopping ended the run before the cap (it converged on validation)
    left_plateau: bool | None = None  # the best score rose above `plateau` (None: no plateau given)

    def summary(self) -> dict[str, Any]:
        """The scalar results as a JSON-friendly dict (no history table)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "epochs_run": self.epochs_run,
                "steps": self.steps, "max_steps": self.max_steps, "stopped_early": self.stopped_early,
                "left_plateau": self.left_plateau, "seconds": round(self.seconds, 2),
                "train_seconds": round(self.train_seconds, 2), "samples_per_s": round(self.samples_per_s, 2),
                "peak_memory_mb": round(self.peak_memory_mb, 1), "params": self.params}


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


def class_weights(labels: list[int], classes: int) -> torch.Tensor:
    """Balanced class weights n / (classes × n_c) from training labels (sklearn's "balanced"); 0 for an absent class."""
    counts = torch.bincount(torch.as_tensor(labels), minlength=classes).double()
    weights = len(labels) / (classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy of a batch, each example weighted by its class's weight (a weighted mean, as torch computes it)."""
    return nn.functional.cross_entropy(logits.float(), labels, weight=weights)


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


def make_accelerator():
    """An Accelerator that places the model and batches (precision is the loop's own autocast).

    On a machine without a GPU it asks for the CPU, so processes started by `accelerate launch --multi_gpu` or
    `torchrun` join one gloo group (data-parallel training on CPU cores); alone, it is the usual CPU run.
    """
    from accelerate import Accelerator

    return Accelerator(cpu=pick_device().type == "cpu")


def run_precision(mixed_precision: str) -> str:
    """The precision a config asks for: `auto` is default_precision() (COURSE_PRECISION, bf16 on CUDA, else fp32)."""
    return default_precision() if mixed_precision == "auto" else pick_precision(mixed_precision)


@torch.no_grad()
def predict(model: nn.Module, loader, accelerator=None, precision: str = "fp32") -> dict[str, Any]:
    """Mean loss, predictions and labels over a loader (in the loader's order), in eval mode."""
    model.eval()
    losses, preds, labels = [], [], []
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    for batch in loader:
        with autocast(precision, device):
            logits = model(**batch).logits.float()
        y = batch["labels"]
        if accelerator is not None:
            logits, y = accelerator.gather_for_metrics((logits.contiguous(), y))
        losses.append(float(nn.functional.cross_entropy(logits, y, reduction="sum")))
        preds += logits.argmax(-1).tolist()
        labels += y.tolist()
    return {"loss": sum(losses) / max(1, len(labels)), "preds": preds, "labels": labels}


def evaluate(model: nn.Module, loader, accelerator=None, precision: str = "fp32") -> dict[str, float]:
    """Loss, accuracy, macro-F1 and the number of distinct classes predicted, on a loader."""
    out = predict(model, loader, accelerator, precision)
    return {"loss": out["loss"], **classification_metrics(out["labels"], out["preds"]),
            "classes_predicted": len(set(out["preds"]))}


class BestTracker:
    """The best validation scores so far, their epoch and (optionally) weights, and evaluations since it improved.

    Only evaluations that `count` (after the warm-up, and once the best score left the plateau) use up patience."""

    def __init__(self, metric: str, greater_is_better: bool = True, keep_weights: bool = True,
                 plateau: float | None = None):
        self.metric, self.greater, self.keep, self.plateau = metric, greater_is_better, keep_weights, plateau
        self.scores: dict[str, float] | None = None
        self.epoch, self.state, self.stale = -1.0, None, 0

    def left_plateau(self) -> bool:
        """Whether the best score so far is beyond the plateau (always, without one)."""
        if self.plateau is None:
            return True
        if self.scores is None:
            return False
        value = self.scores[self.metric]
        return value > self.plateau if self.greater else value < self.plateau

    def update(self, scores: dict[str, float], epoch: float, model: nn.Module, count: bool = True) -> None:
        """Record one evaluation; keep a copy of the weights when the metric improved."""
        if self.metric not in scores:
            return
        value, best = scores[self.metric], None if self.scores is None else self.scores[self.metric]
        if best is None or (value > best if self.greater else value < best):
            self.scores, self.epoch, self.stale = scores, epoch, 0
            if self.keep:
                self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif count and self.left_plateau():
            self.stale += 1


@dataclass
class Schedule:
    """The step budget of a run: steps per epoch, epochs, total steps and warm-up steps."""
    per_epoch: int
    epochs: int
    total: int
    warmup: int

    @classmethod
    def of(cls, cfg: TrainConfig, per_epoch: int) -> "Schedule":
        """`epochs=None` means as many epochs as `max_steps` needs; the total is capped by max_steps."""
        if cfg.epochs is None and cfg.max_steps is None:
            raise CourseError("TrainConfig needs epochs or max_steps (or both): give the run a budget")
        epochs = cfg.epochs if cfg.epochs is not None else max(1, math.ceil(cfg.max_steps / max(1, per_epoch)))
        total = per_epoch * epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * epochs)
        warmup = cfg.warmup_steps if cfg.warmup_steps is not None else int(cfg.warmup_ratio * total)
        return cls(per_epoch, epochs, total, warmup)


def check_finite(losses: list[tuple[int, float, torch.Tensor]], peak_lr: float) -> None:
    """Stop with a clear error at the first non-finite training loss among (step, rate, loss) records (one device
    sync per call, not per step)."""
    values = torch.stack([loss for _, _, loss in losses]).float()
    bad = (~torch.isfinite(values)).nonzero()
    if len(bad):
        step, rate, _ = losses[int(bad[0])]
        raise CourseError(f"the loss is {float(values[int(bad[0])])} at step {step} (learning rate {rate:.3g} at that "
                          f"step, peak {peak_lr:.3g}): training diverged. Use a smaller learning rate (-p lr), or "
                          f"fp32 precision")


def train(model: nn.Module, train_data, val_data, collate: Callable, config: TrainConfig | None = None,
          groups: list[dict] | None = None, on_epoch_start: Callable[[int, nn.Module], None] | None = None,
          evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None) -> TrainResult:
    """Train `model` (a loss from `model(**batch)`: class labels, or causal-LM / masked-LM labels) with AdamW.

    `groups`: AdamW parameter groups (default: all trainable at `config.lr`); `on_epoch_start(epoch, model)`: a hook
    (gradual unfreezing); `evaluate_fn(model)`: validation scores (default: loss, accuracy, macro-F1 on `val_data`),
    after each epoch or every `eval_every` steps. Trains in place; keeps the best evaluation's weights if asked."""
    cfg = config or TrainConfig()
    if cfg.class_weights not in CLASS_WEIGHTS:
        raise CourseError(f"unknown class_weights {cfg.class_weights!r}: use one of {', '.join(CLASS_WEIGHTS)}")
    torch.manual_seed(cfg.seed)
    precision, accelerator = run_precision(cfg.mixed_precision), make_accelerator()
    train_loader = make_loader(train_data, collate, cfg.batch_size, True, cfg.seed, cfg.group_by_length)
    val_loader = None if evaluate_fn is not None else make_loader(val_data, collate, cfg.eval_batch_size, False)
    sampler = train_loader.batch_sampler
    labels = labels_of(train_data) if cfg.class_weights == "balanced" else None
    groups = groups or param_groups(model, cfg.lr, cfg.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=fused_ok(groups, accelerator.device))
    model, prepared_optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    # the step budget counts this process's batches (after `prepare` splits them across processes), and the
    # schedule steps once per optimiser step: the same schedule on 1 process or N
    plan = Schedule.of(cfg, len(train_loader))
    scheduler = linear_warmup_decay(optimizer, plan.warmup, plan.total)
    optimizer = prepared_optimizer
    if val_loader is not None:
        val_loader = accelerator.prepare(val_loader)
        evaluate_fn = lambda m: evaluate(m, val_loader, accelerator, precision)  # noqa: E731
    memory = MemoryMeter(accelerator.device)
    best = BestTracker(cfg.metric, cfg.greater_is_better, cfg.restore_best, cfg.plateau)
    history, running, step, seen, eval_seconds, weights, unchecked = [], [], 0, 0, 0.0, None, []

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
        best.update(scores, epoch, accelerator.unwrap_model(model), count=step >= plan.warmup)

    start = time.perf_counter()
    if cfg.eval_at_start:
        validate(0)
    bar = tqdm(total=plan.total, desc=cfg.desc, mininterval=10,
               disable=not cfg.progress or not accelerator.is_local_main_process)
    for epoch in range(plan.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch, accelerator.unwrap_model(model))
        sampler.set_epoch(epoch)
        train_mode(model)
        running = []
        for batch in train_loader:
            with autocast(precision, accelerator.device):
                out = model(**batch)
            if labels is not None:
                weights = class_weights(labels, out.logits.shape[-1]).to(out.logits.device) if weights is None \
                    else weights
                loss = weighted_loss(out.logits, batch["labels"], weights)
            else:
                loss = out.loss
            rate = scheduler.get_last_lr()[0]  # the rate this step's update uses
            accelerator.backward(loss)
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += len(batch["labels"]) * accelerator.num_processes
            running.append(loss.detach())  # kept on the device: no GPU sync per step
            unchecked.append((step, rate, running[-1]))
            if step % cfg.log_every == 0 or step == 1:
                check_finite(unchecked, cfg.lr)
                unchecked, recent = [], running[-cfg.log_every:]
                memory.sample()
                value = float(torch.stack(recent).float().mean())
                history.append({"step": step, "epoch": epoch + step_fraction(step, plan.per_epoch),
                                "split": "train", "loss": value, "lr": scheduler.get_last_lr()[0]})
                bar.set_postfix(loss=f"{value:.3f}", epoch=epoch + 1)
            bar.update(1)
            if step >= plan.total:
                break
            if cfg.eval_every and step % cfg.eval_every == 0:
                validate(epoch + step_fraction(step, plan.per_epoch))
                if cfg.patience is not None and best.stale >= cfg.patience:
                    break
                train_mode(model)
        if unchecked:
            check_finite(unchecked, cfg.lr)
            unchecked = []
        stopped = cfg.patience is not None and best.stale >= cfg.patience
        if not stopped and (cfg.eval_every is None or step >= plan.total or epoch == plan.epochs - 1):
            validate(epoch + 1 if cfg.eval_every is None else epoch + step_fraction(step, plan.per_epoch))
            stopped = cfg.patience is not None and best.stale >= cfg.patience
        if step >= plan.total or stopped:
            break
    bar.close()
    unwrapped = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    if best.state is not None and best.stale > 0:
        unwrapped.load_state_dict(best.state)
    unwrapped.eval()
    seconds = time.perf_counter() - start
    train_seconds = seconds - eval_seconds
    return TrainResult(history=pd.DataFrame(history), best=best.scores or {}, best_epoch=best.epoch,
                       epochs_run=epoch + 1, steps=step, seconds=seconds, train_seconds=train_seconds,
                       samples_per_s=seen / max(train_seconds, 1e-9), peak_memory_mb=memory.peak_mb(),
                       memory_added_mb=memory.added_mb(), params=count_parameters(unwrapped), config=asdict(cfg),
                       examples=seen, max_steps=plan.total, stopped_early=step < plan.total,
                       left_plateau=None if cfg.plateau is None else best.left_plateau())


def step_fraction(step: int, steps_per_epoch: int) -> float:
    """Fraction of the current epoch done after `step` optimiser steps (for plotting against epochs)."""
    return ((step - 1) % steps_per_epoch + 1) / steps_per_epoch
