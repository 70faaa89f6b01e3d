"""Domain adaptation of a causal LM (notebook 05, sections 1-5): token blocks, replay mixing, per-block losses,
freezing for embedding-only tuning, continued pretraining (the course's one training engine fed causal-LM batches)
and the cached recipe `adapted_smollm2`: a rate chosen on held-out domain training blocks, the steps from the
held-out curve, a control run on general text and a replay run for the same steps, per-block losses of every model
on the evaluation sets. Notebook 08 loads the adapted model from the cache."""
from __future__ import annotations

import copy
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn

from ..core.errors import CourseError
from ..core.models import count_parameters
from ..engine.training import TrainConfig, TrainResult, train
from .n01_lm_probability import token_nlls

MODES = ("full", "embeddings")
RECIPE_VERSION = 2  # bump when the recipe changes: cached adapted models are then rebuilt
PROVENANCE = ("SmolLM2-135M-Instruct: the instruction-tuned model, de-quantised to float32 from a 4-bit (Q4_1) GGUF "
              "file, not the base pretrained SmolLM2")

# Notebook 05's continued pretraining per profile (CausalDapt's fields): the one table that 05 and 08 read.
DAPT_SETTINGS: dict[str, dict] = {
    "smoke": {"block_size": 32, "batch_size": 2, "train_blocks": 16, "holdout_texts": 4, "holdout_blocks": 4,
              "eval_blocks": 4, "max_steps": 2, "eval_every": 1, "patience": 2, "lr": 5e-4, "rate_candidates": 2,
              "rate_extensions": 0, "replay_fraction": 0.25},
    "cpu": {"block_size": 64, "batch_size": 4, "train_blocks": 800, "holdout_texts": 100, "holdout_blocks": 16,
            "eval_blocks": 64, "max_steps": 40, "eval_every": 5, "patience": 2, "lr": 2e-4, "rate_candidates": 3,
            "rate_extensions": 2, "replay_fraction": 0.25},
    "gpu": {"block_size": 256, "batch_size": 16, "train_blocks": None, "holdout_texts": 150, "holdout_blocks": 64,
            "eval_blocks": 128, "max_steps": 400, "eval_every": 25, "patience": 3, "lr": 1e-4, "rate_candidates": 3,
            "rate_extensions": 2, "replay_fraction": 0.25},
}


@dataclass(frozen=True)
class CausalDapt:
    """The settings of notebook 05's continued pretraining (one profile's row of DAPT_SETTINGS)."""
    block_size: int = 64  # tokens per block
    batch_size: int = 4  # blocks per optimiser step
    train_blocks: int | None = 800  # most domain training blocks in the stream (None: all)
    holdout_texts: int = 100  # the training split's last texts (at most a fifth), held out for the rate and the steps
    holdout_blocks: int = 16  # blocks cut from those texts
    eval_blocks: int = 64  # evaluation blocks per set (domain validation split, WikiText-2 test)
    max_steps: int = 40  # the step cap of every run
    eval_every: int = 5  # held-out scoring every this many steps (the loss-vs-steps curve)
    patience: int | None = 2  # stop after this many held-out scores without improvement
    lr: float = 2e-4  # centre of the rate grid (rates spaced ×3)
    rate_candidates: int = 3  # rates in the first grid
    rate_extensions: int = 2  # rates the search may add on each side while the best is at an edge
    replay_fraction: float = 0.25  # share of general blocks in the replay stream

    @classmethod
    def from_row(cls, row: dict) -> "CausalDapt":
        """The settings among a settings row's keys (a notebook's row also holds its own extra keys)."""
        return cls(**{f.name: row[f.name] for f in fields(cls) if f.name in row})

    def train_config(self, lr: float, steps: int | None = None, seed: int = 0, precision: str = "fp32",
                     progress: bool = True, desc: str = "continued pretraining") -> TrainConfig:
        """The engine's settings for one run: `steps` (default: the cap) at `lr`, warm-up then linear decay, no
        weight decay; scored on the held-out blocks every `eval_every` steps with early stopping only when
        `steps` is None (the search's runs), else trained for exactly `steps` steps."""
        search = steps is None
        return TrainConfig(epochs=None, max_steps=self.max_steps if search else steps, batch_size=self.batch_size,
                           lr=lr, weight_decay=0.0, warmup_ratio=0.1, patience=self.patience if search else None,
                           eval_every=self.eval_every if search else None, eval_at_start=search,
                           metric="held_out", greater_is_better=False, restore_best=search, group_by_length=False,
                           mixed_precision=precision, seed=seed, log_every=1, progress=progress, desc=desc)


def causal_dapt(profile: str, **overrides) -> CausalDapt:
    """A profile's settings (DAPT_SETTINGS) with non-None overrides (notebook parameters) applied."""
    from ..core.profiles import resolve_profile, settings

    row = settings(resolve_profile(profile), DAPT_SETTINGS, **overrides)
    unknown = set(row) - {f.name for f in fields(CausalDapt)}
    if unknown:
        raise CourseError(f"unknown continued-pretraining settings {sorted(unknown)}")
    return CausalDapt(**row)


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
def block_losses(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Each block's mean next-token NLL (nats), in float32: the per-block values behind perplexity and intervals."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(blocks), batch_size):
        x = blocks[start:start + batch_size].to(device)
        out.append(token_nlls(model(input_ids=x).logits, x).mean(dim=1).cpu())
    model.train(was_training)
    return torch.cat(out)


def blocks_perplexity(model: nn.Module, blocks: torch.Tensor, batch_size: int = 8) -> float:
    """Perplexity over fixed token blocks: exp of the mean next-token NLL of every predicted token."""
    return math.exp(float(block_losses(model, blocks, batch_size).mean()))  # every block predicts as many tokens


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


def causal_lm_batch(blocks: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    """Collate token blocks into a causal-LM batch: the labels ARE the input ids (the model shifts them by one)."""
    input_ids = torch.stack(list(blocks))
    return {"input_ids": input_ids, "labels": input_ids}


def held_out_losses(eval_sets: dict[str, torch.Tensor]) -> Callable[[nn.Module], dict[str, float]]:
    """An evaluation function for the training engine: the mean next-token loss of each named set of blocks."""
    return lambda model: {name: float(block_losses(model, blocks).mean()) for name, blocks in eval_sets.items()}


@dataclass
class AdaptResult:
    """What a continued-pretraining run measured: training-loss history, held-out losses over steps, costs."""
    history: pd.DataFrame  # step, loss, lr
    evals: pd.DataFrame  # step, set, loss, perplexity
    steps: int
    tokens_seen: int
    seconds: float  # the whole run, evaluations included
    train_seconds: float  # the training steps alone
    peak_memory_mb: float
    params: dict[str, float]
    config: dict = field(default_factory=dict)
    best_step: int = 0  # the step of the lowest held-out loss (the weights kept), else the last step
    stopped_early: bool = False

    def perplexity(self, name: str, step: int | None = None) -> float:
        """Perplexity of eval set `name` at `step` (default: the last evaluation)."""
        rows = self.evals[self.evals["set"] == name]
        if rows.empty:
            raise CourseError(f"no evaluation named {name!r}; have {sorted(self.evals['set'].unique())}")
        return float((rows if step is None else rows[rows["step"] == step]).iloc[-1]["perplexity"])

    def record(self) -> dict:
        """The run as JSON-friendly data (histories as lists of rows)."""
        return {"steps": self.steps, "best_step": self.best_step, "stopped_early": self.stopped_early,
                "seconds": round(self.seconds, 1), "train_seconds": round(self.train_seconds, 1),
                "tokens_seen": self.tokens_seen, "config": self.config,
                "history": self.history.to_dict("records"), "evals": self.evals.to_dict("records")}


def continued_pretraining(model: nn.Module, blocks: torch.Tensor, eval_sets: dict[str, torch.Tensor],
                          config: TrainConfig, mode: str = "full") -> AdaptResult:
    """Next-token training on `blocks` with the course's training engine (`companion.engine.training.train`: AdamW,
    warm-up + linear decay, clipping, bf16 autocast if `config` asks); `eval_sets` are scored (mean next-token loss)
    whenever the engine evaluates, and `config.metric` (one of them) drives early stopping and the best weights.
    `mode`: "full" or "embeddings" (only the tied embedding matrix trains)."""
    if len(blocks) == 0 or (config.max_steps or 0) < 1:
        raise CourseError("continued pretraining needs max_steps >= 1 and at least one training block")
    params = set_trainable(model, mode)
    try:
        result = train(model, list(blocks), None, causal_lm_batch, config, evaluate_fn=held_out_losses(eval_sets))
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return adapt_result(result, list(eval_sets), blocks.shape[1], params, mode)


def adapt_result(result: TrainResult, names: list[str], block_size: int, params: dict[str, float],
                 mode: str) -> AdaptResult:
    """The engine's history split into the training-loss table and the held-out table (step, set, loss, perplexity)."""
    hist = result.history
    train_rows = hist[hist["split"] == "train"][["step", "loss", "lr"]].reset_index(drop=True)
    val_rows = hist[hist["split"] == "validation"] if "split" in hist else hist.iloc[:0]
    evals = pd.DataFrame([{"step": int(r["step"]), "set": name, "loss": float(r[name]),
                           "perplexity": math.exp(float(r[name]))}
                          for _, r in val_rows.iterrows() for name in names if name in r and pd.notna(r[name])],
                         columns=["step", "set", "loss", "perplexity"])
    metric = result.config.get("metric")
    scored = evals[evals["set"] == metric]
    best_step = int(scored.loc[scored["loss"].idxmin(), "step"]) if len(scored) else result.steps
    cfg = result.config
    config = {"steps": result.steps, "max_steps": result.max_steps, "batch_size": cfg["batch_size"],
              "block_size": block_size, "lr": cfg["lr"], "mode": mode, "mixed_precision": cfg["mixed_precision"],
              "seed": cfg["seed"]}
    return AdaptResult(train_rows, evals, result.steps, result.examples * block_size, result.seconds,
                       result.train_seconds, result.peak_memory_mb, params, config, best_step,
                       result.stopped_early)


def embedding_change(before: torch.Tensor, model: nn.Module) -> dict[str, float]:
    """How far the embedding matrix moved: relative Frobenius change, and the share of rows (tokens) that moved."""
    after = model.get_input_embeddings().weight.detach().float().cpu()
    delta = (after - before.float()).norm(dim=1)
    return {"relative_change": float(delta.norm() / before.float().norm()),
            "rows_changed_share": float((delta > 1e-8).float().mean())}


def step_times(model: nn.Module, blocks: torch.Tensor, config: TrainConfig, rounds: int = 2,
               modes: Sequence[str] = MODES) -> pd.DataFrame:
    """Seconds per training step of each mode, measured in this process on copies of `model` with the same batches
    and settings, the modes alternating round by round (so both meet the same machine load): one row per run."""
    rows = []
    for round_ in range(rounds):
        for mode in (modes if round_ % 2 == 0 else list(reversed(modes))):
            trained = copy.deepcopy(model)
            run = continued_pretraining(trained, blocks, {}, config, mode)
            rows.append({"round": round_, "mode": mode, "steps": run.steps,
                         "seconds_per_step": run.train_seconds / run.steps,
                         "trainable": int(run.params["trainable"])})
            del trained
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- 05's adapted SmolLM2, cached for later notebooks
def recipe_blocks(tokenizer, data: tuple[str, str, str], s: CausalDapt) -> dict[str, torch.Tensor]:
    """The recipe's blocks. Training: the domain's training split but its last `holdout_texts` texts (at most a fifth
    of them; `train`), those last texts (`held_out`: the rate and the steps are chosen on them) and WikiText-2 validation (`general`: the
    control run, and the replay pool). Evaluation: the domain's validation split (`domain`) and WikiText-2 test
    (`general_eval`); no training text is among them."""
    from ..core.data import load_text_classification, load_wikitext2

    dataset, wiki = load_text_classification(*data), load_wikitext2()
    texts = list(dataset["train"]["text"])
    held = min(s.holdout_texts, max(1, len(texts) // 5))  # a small data set keeps most of its texts for training
    train_blocks = token_blocks(tokenizer, texts[:-held], s.block_size, s.train_blocks)
    return {"train": train_blocks,
            "held_out": token_blocks(tokenizer, texts[-held:], s.block_size, s.holdout_blocks),
            "general": token_blocks(tokenizer, wiki["validation"]["text"], s.block_size, len(train_blocks)),
            "domain": token_blocks(tokenizer, dataset["validation"]["text"], s.block_size, s.eval_blocks),
            "general_eval": token_blocks(tokenizer, wiki["test"]["text"], s.block_size, s.eval_blocks)}


def evaluation_losses(model: nn.Module, blocks: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    """Per-block losses on the two evaluation sets, keyed as the notebook names them (domain, general)."""
    return {"domain": block_losses(model, blocks["domain"]).tolist(),
            "general": block_losses(model, blocks["general_eval"]).tolist()}


def search_and_train(base: nn.Module, blocks: dict[str, torch.Tensor], s: CausalDapt, seed: int, precision: str,
                     progress: bool = True) -> tuple[dict, dict[str, nn.Module | None]]:
    """The rate search on the held-out domain blocks (bracketed grid, early stopping), then the adapted, control
    (general text) and replay runs for the chosen rate and steps. Returns the record's runs and the trained models
    (the adapted model kept, the others None once scored)."""
    from ..core.rates import search_rate

    searched: dict[float, AdaptResult] = {}
    best: dict = {}

    def candidate(lr: float) -> float:
        model = copy.deepcopy(base)
        run = continued_pretraining(model, blocks["train"], {"held_out": blocks["held_out"]},
                                    s.train_config(lr, seed=seed, precision=precision, progress=progress,
                                                   desc=f"rate search: lr {lr:.2g}"))
        searched[lr] = run
        loss = float(run.evals.query("set == 'held_out'")["loss"].min())
        if not best or loss < best["loss"]:
            best.update(lr=lr, loss=loss, model=model)
        return -loss  # search_rate keeps the highest score: the lowest held-out loss

    t0 = time.perf_counter()
    search = search_rate(candidate, s.lr, 3.0, s.rate_candidates, s.rate_extensions)
    lr = float(search.loc[search["chosen"], "lr"].iloc[0])
    chosen = searched[lr]
    steps = max(1, chosen.best_step)  # step 0 best (training never helped at any rate): one step, as little as can be
    runs = {"rate_search": search.assign(held_out_loss=-search["score"]).drop(columns="score").to_dict("records"),
            "lr": lr, "steps": steps, "position": str(search["position"].iloc[0]),
            "search_runs": {f"{rate:.3g}": run.record() for rate, run in searched.items()},
            "search_seconds": round(time.perf_counter() - t0, 1)}
    reuse = best.get("lr") == lr and chosen.best_step == chosen.steps == s.max_steps  # the search's run IS the final
    streams = {"adapted": blocks["train"], "control": blocks["general"],
               "replay": replay_mix(blocks["train"], blocks["general"], s.replay_fraction, seed)}
    models: dict[str, nn.Module | None] = {}
    runs["final_runs"], runs["block_losses"] = {}, {"base": evaluation_losses(base, blocks)}
    for name, stream in streams.items():
        if name == "adapted" and reuse:
            model, record = best["model"], {"reused_search_run": True, "steps": steps}
        else:
            model = copy.deepcopy(base)
            record = continued_pretraining(model, stream, {}, s.train_config(
                lr, steps, seed, precision, progress, f"{name}: {steps} steps at lr {lr:.2g}")).record()
        best.pop("model", None)  # the search's copy is no longer needed
        runs["final_runs"][name] = record
        runs["block_losses"][name] = evaluation_losses(model, blocks)
        models[name] = model if name == "adapted" else None
        del model
    return runs, models


def adapted_smollm2(profile: str, data: str = "medical_abstracts", model_name: str = "smollm2", seed: int = 0,
                    precision: str = "auto", text_column: str = "text", label_column: str = "label", *,
                    settings: CausalDapt | None = None, rebuild: bool = False, progress: bool = True) -> Path:
    """SmolLM2 after notebook 05's continued pretraining on the training split of `data` at `profile` (settings:
    DAPT_SETTINGS' row, or `settings`), saved with its tokenizer and its record (`adaptation.json`: the rate search,
    the curves, the control and replay runs, per-block losses of base / adapted / control / replay on the evaluation
    sets) under the cache's artifacts; built once, rebuilt when the model files, the texts or the settings change."""
    from transformers.utils import logging as hf_logging

    from ..core.cache import cached_artifact, file_digest, texts_digest
    from ..core.data import load_text_classification
    from ..core.device import pick_device, training_precision
    from ..core.models import load_model, load_tokenizer, resolve_model
    from ..core.profiles import resolve_profile

    profile = resolve_profile(profile)
    s = settings or causal_dapt(profile)
    device = pick_device()
    mixed = training_precision(precision, profile, device)
    model_path = resolve_model(model_name)
    source = (data, text_column, label_column)
    dataset = load_text_classification(*source)
    fingerprint = {"recipe": f"05 continued pretraining v{RECIPE_VERSION}", "profile": profile,
                   "settings": asdict(s), "seed": seed, "precision": mixed, "device": device.type,
                   "model": file_digest([model_path]), "train_texts": texts_digest(dataset["train"]["text"]),
                   "eval_texts": texts_digest(dataset["validation"]["text"])}

    def build(folder: Path) -> None:
        """Search, train, score and save: the adapted model and the record."""
        t0, c0 = time.perf_counter(), time.process_time()
        tokenizer = load_tokenizer(model_path)
        blocks = recipe_blocks(tokenizer, source, s)
        base = load_model(model_path, "causal-lm").to(device)
        runs, models = search_and_train(base, blocks, s, seed, mixed, progress)
        hf_logging.disable_progress_bar()  # no 'Writing model shards' bar in notebook outputs
        try:
            models["adapted"].save_pretrained(folder)
        finally:
            hf_logging.enable_progress_bar()
        tokenizer.save_pretrained(folder)
        record = {"model": model_name, "provenance": PROVENANCE if model_name == "smollm2" else model_name,
                  "data": data, "profile": profile, "settings": asdict(s), "precision": mixed, "seed": seed,
                  "blocks": {k: list(v.shape) for k, v in blocks.items()}, **runs,
                  "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1)}
        (folder / "adaptation.json").write_text(json.dumps(record, indent=1), encoding="utf-8")

    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(data).stem if data != "medical_abstracts" else data)
    model_slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model_name).name)
    return cached_artifact(f"{model_slug}-{slug}-dapt-{profile}", fingerprint, build, rebuild)


def adaptation_record(folder: str | Path) -> dict:
    """The record an adapted model was saved with: settings, rate search, curves, per-block losses."""
    path = Path(folder) / "adaptation.json"
    if not path.exists():
        raise CourseError(f"{folder} has no adaptation.json: build it with companion.lessons.n05_adaptation.adapted_smollm2")
    return json.loads(path.read_text(encoding="utf-8"))
