"""Domain adaptation of a causal LM (notebook 05): token blocks, replay mixing, block perplexity, freezing for
embedding-only tuning, the continued-pretraining loop (accelerate; CPU or GPU) and saving the adapted model."""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .errors import CourseError
from .exercises import check_close, check_equal, exercise
from .models import count_parameters
from .paths import cache_dir
from .training import MemoryMeter, fused_ok, linear_warmup_decay, make_accelerator

MODES = ("full", "embeddings")


def token_blocks(tokenizer, texts: Sequence[str], block_size: int, max_blocks: int | None = None) -> torch.Tensor:
    """Concatenate texts (each followed by EOS) and cut the stream into (n, block_size) blocks; drop the rest."""
    if block_size < 2:
        raise CourseError(f"block_size={block_size} is too small: a block needs at least two tokens")
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    limit = None if max_blocks is None else max_blocks * block_size
    for text in texts:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + ([eos] if eos is not None else [])
        if limit is not None and len(stream) >= limit:
            break
    n = len(stream) // block_size if limit is None else min(len(stream) // block_size, max_blocks)
    if n == 0:
        raise CourseError(f"the texts give fewer than {block_size} tokens: pass more text or a smaller block_size")
    return torch.tensor(stream[: n * block_size], dtype=torch.long).view(n, block_size)


def replay_mix(domain: torch.Tensor, general: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """A stream as long as `domain` in which a share `fraction` of the blocks is general text (replay), shuffled."""
    if not 0.0 <= fraction <= 1.0:
        raise CourseError(f"replay fraction {fraction} must be between 0 and 1")
    g = torch.Generator().manual_seed(seed)
    n_general = round(fraction * len(domain))
    general_idx = torch.randperm(len(general), generator=g).repeat(n_general // max(len(general), 1) + 1)[:n_general]
    domain_idx = torch.randperm(len(domain), generator=g)[: len(domain) - n_general]
    mixed = torch.cat([domain[domain_idx], general[general_idx]])
    return mixed[torch.randperm(len(mixed), generator=g)]


@torch.no_grad()
def blocks_perplexity(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> float:
    """Perplexity over fixed token blocks: exp of the mean next-token NLL of every predicted token."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nll, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        x = blocks[start:start + batch_size].to(device)
        logits = model(input_ids=x).logits.float()
        loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten(), reduction="sum")
        nll += float(loss)
        count += x[:, 1:].numel()
    model.train(was_training)
    return math.exp(nll / count)


def set_trainable(model: nn.Module, mode: str = "full") -> dict[str, float]:
    """`full`: every weight trains; `embeddings`: only the input embedding matrix (which SmolLM2 ties to its
    output layer, so the output layer changes too). Returns the parameter counts."""
    if mode not in MODES:
        raise CourseError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    for p in model.parameters():
        p.requires_grad_(mode == "full")
    if mode == "embeddings":
        model.get_input_embeddings().weight.requires_grad_(True)
    return count_parameters(model)


def embeddings_tied(model: nn.Module) -> bool:
    """True when the output layer uses the very same tensor as the input embeddings."""
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


@dataclass
class AdaptResult:
    """What a continued-pretraining run measured: loss history, periodic perplexities and costs."""
    history: pd.DataFrame  # step, loss, lr
    evals: pd.DataFrame  # step, set, perplexity
    steps: int
    tokens_seen: int
    seconds: float
    peak_memory_mb: float
    params: dict[str, float]
    config: dict = field(default_factory=dict)

    def perplexity(self, name: str, step: int | None = None) -> float:
        """Perplexity of eval set `name` at `step` (default: the last evaluation)."""
        rows = self.evals[self.evals["set"] == name]
        if rows.empty:
            raise CourseError(f"no evaluation named {name!r}; have {sorted(self.evals['set'].unique())}")
        return float((rows if step is None else rows[rows["step"] == step]).iloc[-1]["perplexity"])


def continued_pretraining(model: nn.Module, train_blocks: torch.Tensor, eval_sets: dict[str, torch.Tensor],
                          steps: int, batch_size: int = 8, lr: float = 3e-4, weight_decay: float = 0.0,
                          warmup_steps: int = 0, max_grad_norm: float = 1.0, eval_every: int | None = None,
                          eval_at_start: bool = True, mode: str = "full", seed: int = 0,
                          mixed_precision: str = "auto", progress: bool = True, desc: str = "adapting"
                          ) -> AdaptResult:
    """Next-token training on domain blocks (AdamW, warm-up + linear decay, clipping) with accelerate (bf16 on
    CUDA); evaluates the perplexity of each eval set at the start, every `eval_every` steps and at the end."""
    if steps < 1 or len(train_blocks) == 0:
        raise CourseError("continued pretraining needs steps >= 1 and at least one training block")
    params = set_trainable(model, mode)
    accelerator = make_accelerator(mixed_precision)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=weight_decay,
                                  fused=fused_ok([{"params": trainable}], accelerator.device))
    scheduler = linear_warmup_decay(optimizer, warmup_steps, steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    meter = MemoryMeter(accelerator.device)
    g = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(train_blocks), generator=g)
                       for _ in range(math.ceil(steps * batch_size / len(train_blocks)))])
    losses, lrs, evals = [], [], []

    def evaluate(step: int) -> None:
        with accelerator.autocast() if accelerator.mixed_precision != "no" else contextlib.nullcontext():
            for name, blocks in eval_sets.items():
                evals.append({"step": step, "set": name, "perplexity": blocks_perplexity(model, blocks)})
        meter.sample()

    start = time.perf_counter()
    if eval_at_start:
        evaluate(0)
    model.train()
    bar = tqdm(range(1, steps + 1), disable=not progress, desc=desc)
    for step in bar:
        x = train_blocks[order[(step - 1) * batch_size: step * batch_size]].to(accelerator.device)
        loss = model(input_ids=x, labels=x).loss
        accelerator.backward(loss)
        if max_grad_norm:
            accelerator.clip_grad_norm_(trainable, max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())  # kept on the device: no GPU sync per step
        lrs.append(scheduler.get_last_lr()[0])
        meter.sample()
        if (eval_every and step % eval_every == 0) or step == steps:
            bar.set_postfix(loss=f"{float(losses[-1]):.3f}")
            evaluate(step)
            model.train()
    model = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    config = {"steps": steps, "batch_size": batch_size, "block_size": train_blocks.shape[1], "lr": lr,
              "mode": mode, "mixed_precision": accelerator.mixed_precision, "seed": seed}
    history = pd.DataFrame({"step": range(1, steps + 1), "loss": torch.stack(losses).float().tolist(), "lr": lrs})
    return AdaptResult(history, pd.DataFrame(evals), steps, steps * batch_size * train_blocks.shape[1],
                       time.perf_counter() - start, meter.peak_mb(), params, config)


def embedding_change(before: torch.Tensor, model: nn.Module) -> dict[str, float]:
    """How far the embedding matrix moved: relative Frobenius change, and the share of rows (tokens) that moved."""
    after = model.get_input_embeddings().weight.detach().float().cpu()
    delta = (after - before.float()).norm(dim=1)
    return {"relative_change": float(delta.norm() / before.float().norm()),
            "rows_changed_share": float((delta > 1e-8).float().mean())}


def save_adapted(model: nn.Module, tokenizer, name: str) -> Path:
    """Save a model and its tokenizer (safetensors) under the cache's artifacts/<name>; return the folder."""
    target = cache_dir("artifacts") / name
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def adapted_path(name: str) -> Path:
    """The folder of a saved adapted model, or a CourseError saying which notebook makes it."""
    target = cache_dir("artifacts") / name
    if not (target / "config.json").exists():
        raise CourseError(f"no adapted model {name!r} yet: run notebook 05 (it saves artifacts/{name})")
    return target


@exercise("05", "forgetting_pct")
def check_forgetting_pct(answer: float | None, before: float, after: float) -> bool:
    """Exercise: forgetting as the relative rise of general perplexity, in percent."""
    return check_close(answer, 100.0 * (after / before - 1.0), "forgetting_pct",
                       "100 * (general perplexity after / general perplexity before - 1)", rtol=1e-4, atol=1e-3)


@exercise("05", "embedding_params")
def check_embedding_params(answer: int | None, model: nn.Module) -> bool:
    """Exercise: how many weights embedding-only tuning trains (the embedding matrix; tied output counted once)."""
    expected = model.get_input_embeddings().weight.numel()
    return check_equal(answer, expected, "embedding_params", "vocabulary size × hidden size, both in model.config "
                       "(vocab_size, hidden_size); the tied output layer is the same tensor, so count it once")


@exercise("05", "replay_blocks")
def check_replay_blocks(answer: int | None, n_blocks: int, fraction: float) -> bool:
    """Exercise: how many general blocks a replay stream of n_blocks holds at a given fraction."""
    return check_equal(answer, round(fraction * n_blocks), "replay_blocks",
                       "the stream keeps its length; round(fraction × number of blocks) of them are general text")
