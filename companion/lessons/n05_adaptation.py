"""Domain adaptation of a causal LM (notebook 05): token blocks, replay mixing, block perplexity, freezing for
embedding-only tuning, continued pretraining (the course's one training engine fed causal-LM batches) and saving
the adapted model."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from ..core.errors import CourseError
from ..core.models import count_parameters
from ..core.paths import cache_dir
from ..engine.training import TrainConfig, TrainResult, train
from .n01_lm_probability import token_nlls

MODES = ("full", "embeddings")

# Continued pretraining of notebook 05 (section 2) per profile: the one table that 05 and `adapted_smollm2` read.
DAPT_SETTINGS: dict[str, dict] = {
    "smoke": {"max_steps": 2, "block_size": 32, "batch_size": 2, "train_blocks": 16, "eval_blocks": 2,
              "eval_every": 1, "lr": 5e-4},
    "cpu": {"max_steps": 30, "block_size": 64, "batch_size": 4, "train_blocks": 600, "eval_blocks": 48,
            "eval_every": 10, "lr": 2e-4},
    "gpu": {"max_steps": 300, "block_size": 256, "batch_size": 16, "train_blocks": None, "eval_blocks": 64,
            "eval_every": 25, "lr": 1e-4},
}


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


def blocks_perplexity(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> float:
    """Perplexity over fixed token blocks: exp of the mean next-token NLL of every predicted token."""
    return math.exp(float(block_losses(model, blocks, batch_size).mean()))  # every block predicts as many tokens


@torch.no_grad()
def block_losses(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Each block's mean next-token NLL (nats): the per-block values behind blocks_perplexity, for intervals."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(blocks), batch_size):
        x = blocks[start:start + batch_size].to(device)
        out.append(token_nlls(model(input_ids=x).logits, x).mean(dim=1).cpu())
    model.train(was_training)
    return torch.cat(out)


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
    seconds: float  # the whole run, evaluations included
    train_seconds: float  # the training steps alone
    peak_memory_mb: float
    params: dict[str, float]
    config: dict = field(default_factory=dict)

    def perplexity(self, name: str, step: int | None = None) -> float:
        """Perplexity of eval set `name` at `step` (default: the last evaluation)."""
        rows = self.evals[self.evals["set"] == name]
        if rows.empty:
            raise CourseError(f"no evaluation named {name!r}; have {sorted(self.evals['set'].unique())}")
        return float((rows if step is None else rows[rows["step"] == step]).iloc[-1]["perplexity"])


def causal_lm_batch(blocks: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Collate token blocks into a causal-LM batch: the labels ARE the input ids (the model shifts them by one)."""
    input_ids = torch.stack(list(blocks))
    return {"input_ids": input_ids, "labels": input_ids}


def perplexities(eval_sets: dict[str, torch.Tensor]) -> Callable[[nn.Module], dict[str, float]]:
    """An evaluation function for the training engine: the block perplexity of each named eval set."""
    return lambda model: {name: blocks_perplexity(model, blocks) for name, blocks in eval_sets.items()}


def adapt_config(n_blocks: int, steps: int, batch_size: int = 8, lr: float = 3e-4, weight_decay: float = 0.0,
                 warmup_steps: int = 0, max_grad_norm: float = 1.0, eval_every: int | None = None,
                 eval_at_start: bool = True, metric: str = "", seed: int = 0, mixed_precision: str = "auto",
                 progress: bool = True, desc: str = "adapting") -> TrainConfig:
    """The engine's settings for a step budget on `n_blocks` blocks: enough epochs, evaluation every `eval_every`
    steps (None: only at the start and the end), perplexity (lower is better), no early stopping."""
    per_epoch = math.ceil(n_blocks / batch_size)
    return TrainConfig(epochs=math.ceil(steps / per_epoch), batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                       warmup_steps=warmup_steps, max_grad_norm=max_grad_norm, patience=None, max_steps=steps,
                       group_by_length=False, mixed_precision=mixed_precision, metric=metric, greater_is_better=False,
                       seed=seed, log_every=1, restore_best=False, progress=progress, desc=desc,
                       eval_every=eval_every or steps, eval_at_start=eval_at_start)


def continued_pretraining(model: nn.Module, train_blocks: torch.Tensor, eval_sets: dict[str, torch.Tensor],
                          steps: int, batch_size: int = 8, lr: float = 3e-4, weight_decay: float = 0.0,
                          warmup_steps: int = 0, max_grad_norm: float = 1.0, eval_every: int | None = None,
                          eval_at_start: bool = True, mode: str = "full", seed: int = 0,
                          mixed_precision: str = "auto", progress: bool = True, desc: str = "adapting"
                          ) -> AdaptResult:
    """Next-token training on domain blocks with the course's training engine (`companion.engine.training.train`: AdamW,
    warm-up + linear decay, clipping, accelerate); evaluates the perplexity of each eval set at the start, every
    `eval_every` steps and at the end. `mode`: "full" or "embeddings" (only the tied embedding matrix trains)."""
    if steps < 1 or len(train_blocks) == 0:
        raise CourseError("continued pretraining needs steps >= 1 and at least one training block")
    params = set_trainable(model, mode)
    config = adapt_config(len(train_blocks), steps, batch_size, lr, weight_decay, warmup_steps, max_grad_norm,
                          eval_every, eval_at_start, next(iter(eval_sets), ""), seed, mixed_precision, progress, desc)
    result = train(model, list(train_blocks), None, causal_lm_batch, config, evaluate_fn=perplexities(eval_sets))
    for p in model.parameters():
        p.requires_grad_(True)
    return adapt_result(result, list(eval_sets), train_blocks.shape[1], params, mode)


def adapt_result(result: TrainResult, names: list[str], block_size: int, params: dict[str, float],
                 mode: str) -> AdaptResult:
    """The engine's history split into the training-loss table and the perplexity table (step, set, perplexity)."""
    hist = result.history
    train_rows = hist[hist["split"] == "train"][["step", "loss", "lr"]].reset_index(drop=True)
    val_rows = hist[hist["split"] == "validation"]
    evals = pd.DataFrame([{"step": int(r["step"]), "set": name, "perplexity": float(r[name])}
                          for _, r in val_rows.iterrows() for name in names], columns=["step", "set", "perplexity"])
    cfg = result.config
    config = {"steps": result.steps, "batch_size": cfg["batch_size"], "block_size": block_size, "lr": cfg["lr"],
              "mode": mode, "mixed_precision": cfg["mixed_precision"], "seed": cfg["seed"]}
    return AdaptResult(train_rows, evals, result.steps, result.examples * block_size, result.seconds,
                       result.train_seconds, result.peak_memory_mb, params, config)


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










# ---------------------------------------------------------------- 05's adapted SmolLM2, cached for later notebooks
def dapt_eval_sets(tokenizer, dataset, block_size: int, eval_blocks: int | None) -> dict[str, torch.Tensor]:
    """Notebook 05's held-out blocks: medical validation text (domain) and WikiText-2 test paragraphs (general)."""
    from ..core.data import load_wikitext2

    return {"domain": token_blocks(tokenizer, dataset["validation"]["text"], block_size, eval_blocks),
            "general": token_blocks(tokenizer, load_wikitext2()["test"]["text"], block_size, eval_blocks)}


def adapted_smollm2(profile: str, data: str = "medical_abstracts", model_name: str = "smollm2", seed: int = 0,
                    precision: str = "auto", text_column: str = "text", label_column: str = "label",
                    name: str | None = None, rebuild: bool = False, progress: bool = True,
                    trained: tuple[nn.Module, AdaptResult] | None = None, **overrides) -> Path:
    """SmolLM2 after notebook 05's full continued pretraining on the training split of `data` at `profile`
    (DAPT_SETTINGS, with `overrides` such as max_steps, block_size, lr), saved with its tokenizer and its
    record (`adaptation.json`: settings, perplexities, losses) under the cache's artifacts; rebuilt only when the
    model files, the training texts or the settings change. `trained`: (model, result) of that very run made by
    the caller (notebook 05), saved instead of training again when the cache is stale."""
    import re

    from ..core.cache import cached_artifact, file_digest, texts_digest
    from ..core.data import load_text_classification
    from ..core.device import pick_device, training_precision
    from ..core.models import load_model, load_tokenizer, resolve_model
    from ..core.profiles import resolve_profile, settings

    profile = resolve_profile(profile)
    cfg = settings(profile, DAPT_SETTINGS, **overrides)
    device = pick_device()
    mixed = training_precision(precision, profile, device)  # what notebook 05's cc.start picks for `auto`
    model_path = resolve_model(model_name)
    dataset = load_text_classification(data, text_column, label_column)
    tokenizer = load_tokenizer(model_path)
    train_blocks = token_blocks(tokenizer, dataset["train"]["text"], cfg["block_size"], cfg["train_blocks"])
    fingerprint = {"recipe": "05 full continued pretraining v1", "profile": profile, "settings": cfg, "seed": seed,
                   "precision": mixed, "device": device.type, "model": file_digest([model_path]),
                   "train_texts": texts_digest(dataset["train"]["text"]),
                   "train_blocks": list(train_blocks.shape)}

    def build(folder: Path) -> None:
        """Train a fresh copy of the model exactly as notebook 05 does (unless given), then save it and its record."""
        if trained is not None:
            model, run = trained
        else:
            model = load_model(model_path, "causal-lm").to(device)
            eval_sets = dapt_eval_sets(tokenizer, dataset, cfg["block_size"], cfg["eval_blocks"])
            run = continued_pretraining(model, train_blocks, eval_sets, steps=cfg["max_steps"],
                                        batch_size=cfg["batch_size"], lr=cfg["lr"],
                                        warmup_steps=max(1, cfg["max_steps"] // 10), eval_every=cfg["eval_every"],
                                        seed=seed, mixed_precision=mixed, progress=progress,
                                        desc="full continued pretraining")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        record = {"config": run.config, "settings": cfg, "data": data, "model": model_name,
                  "tokens_seen": run.tokens_seen, "train_seconds": run.train_seconds,
                  "evals": run.evals.to_dict("records"), "history": run.history.to_dict("records")}
        (folder / "adaptation.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(data).stem if data != "medical_abstracts" else data)
    model_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_name).name)
    return cached_artifact(name or f"{model_slug}-{slug}-dapt-{profile}", fingerprint, build, rebuild)


def adaptation_record(folder: str | Path) -> dict:
    """The record an adapted model was saved with: settings, perplexity table (step, set) and loss history."""
    path = Path(folder) / "adaptation.json"
    if not path.exists():
        raise CourseError(f"{folder} has no adaptation.json: build it with companion.lessons.n05_adaptation.adapted_smollm2")
    return json.loads(path.read_text(encoding="utf-8"))
