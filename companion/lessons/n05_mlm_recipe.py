"""The cached DAPT recipe of notebook 05, section 7: which texts, the head's warm-up, DAPT's rate search on held-out
domain text, the control run on general text, and the cache (`adapted_minilm`) that notebook 06 and the strategy
sweep load the adapted encoder from."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import torch

from ..core.cache import cached_artifact, file_digest, texts_digest
from ..core.data import load_text_classification, load_wikitext2
from ..core.device import pick_device, training_precision
from ..core.errors import CourseError
from ..core.models import load_model, load_tokenizer, resolve_model
from ..core.profiles import resolve_profile
from ..core.rates import search_rate
from ..engine.training import TrainConfig, TrainResult
from .n05_mlm import HEAD_FILE, MaskedLM, dapt, fixed_masks, masked_states, warm_head, windows
from .n05_mlm_eval import unigram_log_probs

MLM_VERSION = 3  # bump when the recipe changes: cached adapted encoders are then rebuilt
UNIGRAM_FILE = "unigram.safetensors"
# Per profile: texts cut into windows of max_length tokens; the domain training split's last `holdout_texts` texts
# held out (DAPT's rate and steps are chosen on them). The head's warm-up on stored states: `head_windows` windows
# of each source (general, domain; None: all), each masked `head_masks` times, `head_val_windows` held-out windows of
# each source, batches of masked positions, a steps cap, held-out scoring, patience. DAPT: windows, batch, steps
# cap, held-out scoring, patience, the rate search's centre, start size and extensions.
BUDGETS = {
    "smoke": {"max_length": 32, "mask_prob": 0.15, "holdout_texts": 2, "head_windows": 24, "head_masks": 1,
              "head_val_windows": 8, "head_batch": 64, "head_steps": 12, "head_eval_every": 4, "head_patience": 2,
              "head_lr": 1e-3, "dapt_windows": 48, "batch_size": 4, "dapt_steps": 4, "dapt_eval_every": 2,
              "dapt_patience": 2, "dapt_lr": 1e-4, "rate_candidates": 2, "rate_extensions": 0},
    "cpu": {"max_length": 64, "mask_prob": 0.15, "holdout_texts": 60, "head_windows": 4000, "head_masks": 1,
            "head_val_windows": 300, "head_batch": 256, "head_steps": 4000, "head_eval_every": 50,
            "head_patience": 3, "head_lr": 1e-3, "dapt_windows": None, "batch_size": 16, "dapt_steps": 200,
            "dapt_eval_every": 25, "dapt_patience": 3, "dapt_lr": 1e-4, "rate_candidates": 3, "rate_extensions": 2},
    "gpu": {"max_length": 128, "mask_prob": 0.15, "holdout_texts": 300, "head_windows": None, "head_masks": 2,
            "head_val_windows": 500, "head_batch": 512, "head_steps": 10000, "head_eval_every": 200,
            "head_patience": 3, "head_lr": 1e-3, "dapt_windows": None, "batch_size": 32, "dapt_steps": 3000,
            "dapt_eval_every": 200, "dapt_patience": 3, "dapt_lr": 5e-5, "rate_candidates": 3, "rate_extensions": 2},
}


def budget(profile: str) -> dict:
    """The warm-up / DAPT budget of a profile (`auto` resolves to cpu or gpu)."""
    resolved = resolve_profile(profile)
    if resolved not in BUDGETS:
        raise CourseError(f"unknown profile {profile!r}: use one of auto, {', '.join(BUDGETS)}")
    return dict(BUDGETS[resolved], profile=resolved)


def adaptation_texts(data: str, text_column: str, label_column: str) -> dict[str, list[str]]:
    """The texts of the recipe: the domain's training split (DAPT; its last texts held out to choose the rate and
    the steps) and WikiText-2 validation (general: the head's warm-up, with the domain texts, and the control run).
    The evaluation sets (the domain's validation split, WikiText-2 test) are never among them."""
    dataset = load_text_classification(data, text_column, label_column)
    return {"domain": list(dataset["train"]["text"]), "general": list(load_wikitext2()["validation"]["text"])}


def recipe_windows(tokenizer, texts: dict[str, list[str]], cfg: dict) -> dict[str, list[dict]]:
    """The recipe's windows: DAPT's (the domain training texts but the last `holdout_texts`, at most a fifth of them)
    and its held-out ones
    (those last texts); the head's warm-up (`head_windows` general and as many domain windows) and its held-out
    windows (the last general windows, and held-out domain ones); the control run's (general windows the head's
    held-out set does not use)."""
    length, n_val = cfg["max_length"], cfg["head_val_windows"]
    held = min(cfg["holdout_texts"], max(1, len(texts["domain"]) // 5))  # a small data set keeps most for training
    domain_train = windows(tokenizer, texts["domain"][:-held], length, cfg["dapt_windows"])
    domain_val = windows(tokenizer, texts["domain"][-held:], length)
    general = windows(tokenizer, texts["general"], length)
    if len(general) <= 2 * n_val:
        raise CourseError(f"WikiText-2 validation gives {len(general)} windows: ask for fewer head_val_windows")
    general_train, general_val = general[:-n_val], general[-n_val:]
    n = cfg["head_windows"]
    return {"dapt": domain_train, "dapt_val": domain_val, "control": general_train,
            "head": general_train[:n] + domain_train[:n], "head_val": general_val + domain_val[:n_val]}


def head_config(cfg: dict, seed: int, precision: str, progress: bool) -> TrainConfig:
    """The warm-up's settings: batches of masked positions, a step cap, held-out scoring and early stopping."""
    return TrainConfig(epochs=None, max_steps=cfg["head_steps"], batch_size=cfg["head_batch"], lr=cfg["head_lr"],
                       weight_decay=0.0, warmup_ratio=0.02, patience=cfg["head_patience"],
                       eval_every=cfg["head_eval_every"], eval_at_start=True, metric="loss", greater_is_better=False,
                       group_by_length=False, seed=seed, log_every=10, progress=progress, mixed_precision=precision,
                       desc="head warm-up (encoder frozen, stored states)")


def dapt_config(cfg: dict, lr: float, seed: int, precision: str, progress: bool, steps: int | None = None
                ) -> TrainConfig:
    """DAPT's settings at `lr`: the search's runs (steps None) go to the cap with held-out scoring and early stopping;
    a final run (adapted, control) trains exactly `steps` steps with the same schedule rule."""
    search = steps is None
    return TrainConfig(epochs=None, max_steps=cfg["dapt_steps"] if search else steps, batch_size=cfg["batch_size"],
                       lr=lr, warmup_ratio=0.1, patience=cfg["dapt_patience"] if search else None,
                       eval_every=cfg["dapt_eval_every"] if search else None, eval_at_start=search,
                       restore_best=search, metric="loss", greater_is_better=False, seed=seed, log_every=5,
                       progress=progress, mixed_precision=precision,
                       desc=f"DAPT (encoder only) at lr {lr:.2g}" if search else f"{steps} steps at lr {lr:.2g}")


def fresh_model(head_state: dict[str, torch.Tensor], device: torch.device) -> MaskedLM:
    """The embedded MiniLM encoder with the warmed head's own weights (its decoder is this encoder's embeddings)."""
    model = MaskedLM(load_model("minilm", "encoder"))
    model.head.load_state_dict(head_state, strict=False)
    return model.to(device)


def head_state(model: MaskedLM) -> dict[str, torch.Tensor]:
    """The head's own weights (the tied decoder lives in the encoder and is saved with it)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items() if k != "decoder_weight"}


def best_step(result: TrainResult) -> int:
    """The step of a run's best held-out score (the weights it kept; 0 when no step beat the start)."""
    held = result.history[result.history["split"] == "validation"]
    return int(held.loc[held["loss"].idxmin(), "step"])


def curve(result: TrainResult, phase: str) -> pd.DataFrame:
    """A run's loss history (training and held-out) with its phase name."""
    hist = result.history
    rows = hist[hist["split"] == "train"][["step", "loss"]].assign(kind="training")
    held = hist[hist["split"] == "validation"][["step", "loss"]].assign(kind="held-out")
    return pd.concat([rows, held]).dropna(subset=["loss"]).assign(phase=phase)


def warm_up(base: MaskedLM, tokenizer, parts: dict[str, list[dict]], cfg: dict, seed: int, progress: bool
            ) -> tuple[TrainResult, dict]:
    """The head's warm-up on the base encoder's stored states (each training window masked `head_masks` times)."""
    train_masks = [m for draw in range(cfg["head_masks"])
                   for m in fixed_masks(tokenizer, parts["head"], cfg["mask_prob"], seed + 100 * draw)]
    head_train = masked_states(base.encoder, train_masks)
    head_val = masked_states(base.encoder, fixed_masks(tokenizer, parts["head_val"], cfg["mask_prob"], seed + 1))
    warm = warm_head(base.head, head_train, head_val, head_config(cfg, seed, cfg["mixed_precision"], progress))
    return warm, {"steps": warm.steps, "max_steps": warm.max_steps, "stopped_early": warm.stopped_early,
                  "best_step": best_step(warm), "held_out_loss": warm.best["loss"],
                  "loss_at_start": float(warm.history.query("split == 'validation'")["loss"].iloc[0]),
                  "train_windows": len(parts["head"]), "train_states": len(head_train),
                  "held_out_states": len(head_val), "seconds": round(warm.seconds, 1)}


def search_dapt(warmed: dict, tokenizer, parts: dict[str, list[dict]], cfg: dict, seed: int, progress: bool
                ) -> tuple[pd.DataFrame, dict[float, TrainResult], tuple[float, MaskedLM]]:
    """DAPT's rate search on the held-out domain windows (a bracketed grid; each run early-stopped on its held-out
    loss, best weights kept); returns the table, every run, and the best run's rate and model."""
    device = pick_device()
    val_masked = fixed_masks(tokenizer, parts["dapt_val"], cfg["mask_prob"], seed + 2)
    runs: dict[float, TrainResult] = {}
    best: dict = {}

    def candidate(lr: float) -> float:
        model = fresh_model(warmed, device)
        runs[lr] = dapt(model, tokenizer, parts["dapt"], val_masked,
                        dapt_config(cfg, lr, seed, cfg["mixed_precision"], progress), cfg["mask_prob"])
        if not best or runs[lr].best["loss"] < best["loss"]:
            best.update(lr=lr, loss=runs[lr].best["loss"], model=model)
        return -runs[lr].best["loss"]  # search_rate keeps the highest score: the lowest held-out loss

    search = search_rate(candidate, cfg["dapt_lr"], 3.0, cfg["rate_candidates"], cfg["rate_extensions"])
    return search, runs, (best["lr"], best["model"])


def final_run(warmed: dict, tokenizer, items: list[dict], cfg: dict, lr: float, steps: int, seed: int,
              progress: bool) -> tuple[MaskedLM, TrainResult]:
    """A fresh encoder (warmed head, frozen) trained exactly `steps` DAPT steps at `lr` on `items`."""
    model = fresh_model(warmed, pick_device())
    result = dapt(model, tokenizer, items, None, dapt_config(cfg, lr, seed, cfg["mixed_precision"], progress, steps),
                  cfg["mask_prob"])
    return model, result


def build_adapted(folder: Path, cfg: dict, texts: dict[str, list[str]], seed: int = 0, progress: bool = True) -> None:
    """Warm the head on stored states, search DAPT's rate on held-out domain text, train the adapted encoder and the
    control (general text) for the chosen steps; save the adapted encoder (the folder itself), the control encoder
    (control/), the head, the unigram baseline, the curves (history.csv) and a summary (summary.json)."""
    from safetensors.torch import save_file
    from transformers.utils import logging as hf_logging

    t0, c0 = time.perf_counter(), time.process_time()
    tokenizer = load_tokenizer("minilm")
    parts = recipe_windows(tokenizer, texts, cfg)
    base = fresh_model({}, pick_device())
    warm, head_summary = warm_up(base, tokenizer, parts, cfg, seed, progress)
    warmed = head_state(base)
    del base
    search, runs, (best_lr, chosen_model) = search_dapt(warmed, tokenizer, parts, cfg, seed, progress)
    lr = float(search.loc[search["chosen"], "lr"].iloc[0])
    chosen = runs[lr]
    steps = max(1, best_step(chosen))  # step 0 best (no rate helped): one step, as little as can be
    if best_lr == lr and best_step(chosen) == chosen.steps == cfg["dapt_steps"]:  # ran to the cap, best there: final
        adapted, adapted_run = chosen_model, None
    else:
        del chosen_model
        adapted, adapted_run = final_run(warmed, tokenizer, parts["dapt"], cfg, lr, steps, seed, progress)
    control, control_run = final_run(warmed, tokenizer, parts["control"], cfg, lr, steps, seed, progress)
    hf_logging.disable_progress_bar()  # no 'Writing model shards' bar in notebook outputs
    try:
        adapted.encoder.save_pretrained(folder)
        control.encoder.save_pretrained(folder / "control")
    finally:
        hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)
    save_file(warmed, str(folder / HEAD_FILE))
    save_file({"log_probs": unigram_log_probs(parts["head"], len(tokenizer), tokenizer.all_special_ids)},
              str(folder / UNIGRAM_FILE))
    extra = [curve(adapted_run, f"adapted: {steps} steps")] if adapted_run is not None else []
    pd.concat([curve(warm, "head warm-up")] + [curve(r, f"DAPT lr {rate:.2g}") for rate, r in runs.items()] + extra
              + [curve(control_run, "control (general text)")]).to_csv(folder / "history.csv", index=False)
    summary = {"head": head_summary,
               "dapt": {"lr": lr, "steps": steps, "position": str(search["position"].iloc[0]),
                        "search_steps_run": chosen.steps, "max_steps": chosen.max_steps,
                        "stopped_early": chosen.stopped_early, "held_out_loss": chosen.best["loss"],
                        "search_run_reused": adapted_run is None, "windows": len(parts["dapt"]),
                        "held_out_windows": len(parts["dapt_val"]),
                        "seconds": round(sum(r.seconds for r in runs.values()), 1)},
               "rate_search": search.assign(held_out_loss=-search["score"]).drop(columns="score").to_dict("records"),
               "control": {"steps": control_run.steps, "lr": lr, "windows": len(parts["control"]),
                           "seconds": round(control_run.seconds, 1)},
               "seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def adapted_minilm(profile: str, data: str = "medical_abstracts", text_column: str = "text",
                   label_column: str = "label", seed: int = 0, precision: str = "auto", rebuild: bool = False,
                   progress: bool = True) -> Path:
    """The MiniLM encoder after masked-LM DAPT on `data`'s training texts: built with `profile`'s budget when the
    cache has no fresh copy, else the cached folder (load it with load_model(path, "classifier", num_labels=…)).
    `seed` is the adaptation's own seed: keep 0 so that fine-tuning runs over several seeds share one encoder."""
    cfg = budget(profile)
    cfg["mixed_precision"] = training_precision(precision, cfg["profile"], pick_device())
    texts = adaptation_texts(data, text_column, label_column)
    fingerprint = {"recipe": f"05 masked-LM DAPT v{MLM_VERSION}", "budget": cfg, "seed": seed,
                   "device": pick_device().type, "model": file_digest([resolve_model("minilm")]),
                   "domain_texts": texts_digest(texts["domain"]), "general_texts": texts_digest(texts["general"])}
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(data).stem if data != "medical_abstracts" else data)
    name = f"minilm-{slug}-mlm-dapt-{cfg['profile']}" + (f"-seed{seed}" if seed else "")
    return cached_artifact(name, fingerprint, lambda folder: build_adapted(folder, cfg, texts, seed, progress), rebuild)


def load_masked_lm(encoder_path: str | Path, head_file: Path) -> MaskedLM:
    """An encoder (embedded name or folder) with a saved head's own weights."""
    from safetensors.torch import load_file

    model = MaskedLM(load_model(str(encoder_path), "encoder"))
    model.head.load_state_dict(load_file(str(head_file)), strict=False)
    return model.eval()
