"""The cached DAPT recipe of notebook 05, section 7: which texts, the head's warm-up, DAPT's rate search on held-out
domain text, the control run on general text, and the cache (`adapted_minilm`) that notebook 06 and the strategy
sweep load the adapted encoder from."""
from __future__ import annotations

import json
import re
from dataclasses import replace
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

MLM_VERSION = 2  # bump when the recipe changes: cached adapted encoders are then rebuilt
# Per profile: texts cut into windows of max_length tokens; the head's warm-up on cached states (batch of masked
# positions, steps cap, held-out scoring, patience); DAPT (batch of windows, steps cap, held-out scoring, patience,
# the rate search's centre, start size and extensions).
BUDGETS = {
    "smoke": {"max_length": 32, "mask_prob": 0.15, "holdout_texts": 2, "head_windows": 48, "head_val_windows": 16,
              "head_batch": 64, "head_steps": 12, "head_eval_every": 4, "head_patience": 2, "head_lr": 1e-3,
              "dapt_windows": 48, "batch_size": 4, "dapt_steps": 4, "dapt_eval_every": 2, "dapt_patience": 2,
              "dapt_lr": 1e-4, "rate_candidates": 2, "rate_extensions": 0},
    "cpu": {"max_length": 64, "mask_prob": 0.15, "holdout_texts": 150, "head_windows": 4000, "head_val_windows": 500,
            "head_batch": 256, "head_steps": 3000, "head_eval_every": 100, "head_patience": 3, "head_lr": 1e-3,
            "dapt_windows": None, "batch_size": 16, "dapt_steps": 400, "dapt_eval_every": 50, "dapt_patience": 3,
            "dapt_lr": 1e-4, "rate_candidates": 3, "rate_extensions": 2},
    "gpu": {"max_length": 128, "mask_prob": 0.15, "holdout_texts": 300, "head_windows": None,
            "head_val_windows": 1000, "head_batch": 512, "head_steps": 10000, "head_eval_every": 200,
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
    """The recipe's windows: DAPT's (domain training texts but the last `holdout_texts`), its held-out ones (those
    last texts), the head's warm-up (general and domain windows, half each) and its held-out windows (general
    windows the warm-up never saw, and the held-out domain ones), and the control run's (general)."""
    length, held = cfg["max_length"], cfg["holdout_texts"]
    domain_train = windows(tokenizer, texts["domain"][:-held], length, cfg["dapt_windows"])
    domain_val = windows(tokenizer, texts["domain"][-held:], length)
    general = windows(tokenizer, texts["general"], length)
    half = None if cfg["head_windows"] is None else cfg["head_windows"] // 2
    general_head, general_val = general[:half or len(general) // 2], general[-(cfg["head_val_windows"] // 2):]
    if len(general_head) + len(general_val) > len(general):
        raise CourseError(f"WikiText-2 validation gives {len(general)} windows: ask for fewer head windows")
    return {"dapt": domain_train, "dapt_val": domain_val, "control": general[:len(general) - len(general_val)],
            "head": general_head + domain_train[:half or len(domain_train)],
            "head_val": general_val + domain_val[:cfg["head_val_windows"] // 2]}


def head_config(cfg: dict, seed: int, precision: str, progress: bool) -> TrainConfig:
    """The warm-up's settings: batches of masked positions, a step cap, held-out scoring and early stopping."""
    return TrainConfig(epochs=None, max_steps=cfg["head_steps"], batch_size=cfg["head_batch"], lr=cfg["head_lr"],
                       weight_decay=0.0, warmup_ratio=0.05, patience=cfg["head_patience"],
                       eval_every=cfg["head_eval_every"], eval_at_start=True, metric="loss", greater_is_better=False,
                       group_by_length=False, seed=seed, log_every=10, progress=progress, mixed_precision=precision,
                       desc="head warm-up (encoder frozen, stored states)")


def dapt_config(cfg: dict, lr: float, seed: int, precision: str, progress: bool) -> TrainConfig:
    """DAPT's settings: a step cap, held-out scoring every few steps, early stopping on the held-out loss."""
    return TrainConfig(epochs=None, max_steps=cfg["dapt_steps"], batch_size=cfg["batch_size"], lr=lr,
                       warmup_ratio=0.1, patience=cfg["dapt_patience"], eval_every=cfg["dapt_eval_every"],
                       eval_at_start=True, metric="loss", greater_is_better=False, seed=seed, log_every=5,
                       progress=progress, mixed_precision=precision, desc=f"DAPT (encoder only) at lr {lr:.2g}")


def fresh_model(head_state: dict[str, torch.Tensor], device: torch.device) -> MaskedLM:
    """The embedded MiniLM encoder with the warmed head's own weights (its decoder is this encoder's embeddings)."""
    model = MaskedLM(load_model("minilm", "encoder"))
    model.head.load_state_dict(head_state, strict=False)
    return model.to(device)


def head_state(model: MaskedLM) -> dict[str, torch.Tensor]:
    """The head's own weights (the tied decoder lives in the encoder and is saved with it)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items() if k != "decoder_weight"}


def best_step(result: TrainResult) -> int:
    """The step of a run's best held-out score (the weights it kept)."""
    held = result.history[result.history["split"] == "validation"]
    return max(1, int(held.loc[held["loss"].idxmin(), "step"]))


def curve(result: TrainResult, phase: str) -> pd.DataFrame:
    """A run's loss history (training and held-out) with its phase name."""
    hist = result.history
    rows = hist[hist["split"] == "train"][["step", "loss"]].assign(kind="training")
    held = hist[hist["split"] == "validation"][["step", "loss"]].assign(kind="held-out")
    return pd.concat([rows, held]).assign(phase=phase)


def build_adapted(folder: Path, cfg: dict, texts: dict[str, list[str]], seed: int = 0, progress: bool = True) -> None:
    """Warm the head on stored states, search DAPT's rate on held-out domain text, run the control on general
    text for as many steps; save the adapted encoder (the folder itself), the control encoder (control/), the
    head, the curves (history.csv) and a summary (summary.json)."""
    from safetensors.torch import save_file
    from transformers.utils import logging as hf_logging

    device, precision = pick_device(), cfg["mixed_precision"]
    tokenizer = load_tokenizer("minilm")
    parts = recipe_windows(tokenizer, texts, cfg)
    base = fresh_model({}, device)
    head_train = masked_states(base.encoder, fixed_masks(tokenizer, parts["head"], cfg["mask_prob"], seed))
    head_val = masked_states(base.encoder, fixed_masks(tokenizer, parts["head_val"], cfg["mask_prob"], seed + 1))
    warm = warm_head(base.head, head_train, head_val, head_config(cfg, seed, precision, progress))
    warmed = head_state(base)
    val_masked = fixed_masks(tokenizer, parts["dapt_val"], cfg["mask_prob"], seed + 2)
    runs: dict[float, tuple[TrainResult, dict]] = {}

    def candidate(lr: float) -> float:
        model = fresh_model(warmed, device)
        result = dapt(model, tokenizer, parts["dapt"], val_masked, dapt_config(cfg, lr, seed, precision, progress),
                      cfg["mask_prob"])
        runs[lr] = (result, {k: v.cpu() for k, v in model.encoder.state_dict().items()})
        return -result.best["loss"]  # search_rate keeps the highest score: the lowest held-out loss

    search = search_rate(candidate, cfg["dapt_lr"], 3.0, cfg["rate_candidates"], cfg["rate_extensions"])
    chosen = float(search.loc[search["chosen"], "lr"].iloc[0])
    result, state = runs[chosen]
    adapted = fresh_model(warmed, device)
    adapted.encoder.load_state_dict(state)
    control = fresh_model(warmed, device)
    steps = best_step(result)
    control_run = dapt(control, tokenizer, parts["control"], None,
                       replace(dapt_config(cfg, chosen, seed, precision, progress), max_steps=steps, patience=None,
                               eval_every=None, eval_at_start=False, restore_best=False,
                               desc="control: the same DAPT on general text"), cfg["mask_prob"])
    hf_logging.disable_progress_bar()  # no 'Writing model shards' bar in notebook outputs
    try:
        adapted.encoder.save_pretrained(folder)
        control.encoder.save_pretrained(folder / "control")
    finally:
        hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)
    save_file(warmed, str(folder / HEAD_FILE))
    pd.concat([curve(warm, "head warm-up")] + [curve(r, f"DAPT lr {lr:.2g}") for lr, (r, _) in runs.items()]
              + [curve(control_run, "control (general text)")]).to_csv(folder / "history.csv", index=False)
    summary = {"head": {"steps": warm.steps, "max_steps": warm.max_steps, "stopped_early": warm.stopped_early,
                        "held_out_loss": warm.best["loss"], "train_states": len(head_train),
                        "held_out_states": len(head_val), "seconds": round(warm.seconds, 1)},
               "dapt": {"lr": chosen, "steps": steps, "steps_run": result.steps, "max_steps": result.max_steps,
                        "stopped_early": result.stopped_early, "held_out_loss": result.best["loss"],
                        "windows": len(parts["dapt"]), "held_out_windows": len(parts["dapt_val"]),
                        "seconds": round(sum(r.seconds for r, _ in runs.values()), 1)},
               "rate_search": search.assign(held_out_loss=-search["score"]).drop(columns="score").to_dict("records"),
               "control": {"steps": control_run.steps, "lr": chosen, "windows": len(parts["control"]),
                           "seconds": round(control_run.seconds, 1)}}
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
