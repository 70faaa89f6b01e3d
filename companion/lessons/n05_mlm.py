"""Masked-LM domain-adaptive pretraining of the classifier's encoder (notebook 05, section 7).

The embedded MiniLM ships without its masked-LM head, so we write BERT's head by hand (transform + decoder tied to
the word embeddings), warm it up on general text with the encoder frozen, then continue masked-LM training of the
whole model on the domain's training texts with the course's one training engine. `adapted_minilm` caches the
adapted encoder (loadable as a classifier by notebook 06 and the sweep).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .n02_cross_entropy import IGNORE_INDEX, mask_tokens
from ..core.errors import CourseError
from ..engine.training import TrainConfig, TrainResult, train

MLM_VERSION = 1  # bump when the training recipe changes: cached adapted encoders are then rebuilt
HEAD_FILE, WARM_HEAD_FILE = "mlm_head.safetensors", "warm_head.safetensors"
BUDGETS = {  # warm-up (head only, general text) and DAPT (whole model, domain training texts) per profile
    "smoke": {"warm_steps": 3, "dapt_steps": 3, "batch_size": 4, "max_length": 32, "warm_lr": 1e-3, "lr": 1e-4,
              "warm_texts": 24, "train_texts": 24, "mask_prob": 0.15},
    "cpu": {"warm_steps": 60, "dapt_steps": 60, "batch_size": 16, "max_length": 64, "warm_lr": 2e-3, "lr": 1e-4,
            "warm_texts": 1000, "train_texts": None, "mask_prob": 0.15},
    "gpu": {"warm_steps": 500, "dapt_steps": 1500, "batch_size": 32, "max_length": 256, "warm_lr": 1e-3,
            "lr": 5e-5, "warm_texts": None, "train_texts": None, "mask_prob": 0.15},
}


class MLMHead(nn.Module):
    """BERT's masked-LM head: dense hidden→hidden, GELU, LayerNorm, then a decoder whose weight IS the encoder's
    word-embedding matrix (tied: the same Parameter) plus its own bias over the vocabulary."""

    def __init__(self, word_embeddings: nn.Embedding, eps: float = 1e-12):
        super().__init__()
        vocab, hidden = word_embeddings.weight.shape
        self.dense = nn.Linear(hidden, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.decoder_weight = word_embeddings.weight  # the same Parameter object, not a copy
        self.bias = nn.Parameter(torch.zeros(vocab))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary scores for hidden states (..., hidden) → (..., vocab)."""
        x = self.LayerNorm(F.gelu(self.dense(hidden)))
        return x @ self.decoder_weight.T + self.bias


class MaskedLM(nn.Module):
    """An encoder (a BertModel) with an MLMHead; with labels, scores only the masked positions (label ≠ -100)."""

    def __init__(self, encoder: nn.Module, head: MLMHead | None = None):
        super().__init__()
        self.encoder = encoder
        self.head = head or MLMHead(encoder.get_input_embeddings(), encoder.config.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None):
        """Logits at masked positions (n_masked, vocab) and their mean cross-entropy; all positions without labels."""
        from transformers.modeling_outputs import MaskedLMOutput

        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        if labels is None:
            return MaskedLMOutput(logits=self.head(hidden))
        chosen = labels != IGNORE_INDEX
        logits = self.head(hidden[chosen])  # a 30k-word softmax only where a token was masked: cheap
        loss = F.cross_entropy(logits.float(), labels[chosen]) if chosen.any() else hidden.sum() * 0.0
        return MaskedLMOutput(loss=loss, logits=logits)


def base_masked_lm(name: str = "minilm") -> tuple[MaskedLM, object]:
    """The encoder `name` with a fresh (untrained) MLMHead, and its tokenizer."""
    from ..core.models import load_model, load_tokenizer

    return MaskedLM(load_model(name, "encoder")), load_tokenizer(name)


def library_masked_lm(model: MaskedLM, path: str):
    """transformers' BertForMaskedLM loaded from `path`, with our head's weights copied into `cls.predictions`."""
    from transformers import BertForMaskedLM
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its head is newly initialised: we overwrite it next
    hf_logging.disable_progress_bar()
    try:
        ref = BertForMaskedLM.from_pretrained(path, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    ref.bert.load_state_dict(model.encoder.state_dict(), strict=False)
    pred = ref.cls.predictions
    with torch.no_grad():
        pred.transform.dense.load_state_dict(model.head.dense.state_dict())
        pred.transform.LayerNorm.load_state_dict(model.head.LayerNorm.state_dict())
        pred.bias.copy_(model.head.bias)
        if getattr(pred.decoder, "bias", None) is not None:
            pred.decoder.bias.copy_(model.head.bias)
    return ref.eval()


def special_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, tokenizer) -> torch.Tensor:
    """True where a token must never be masked: [CLS], [SEP], padding."""
    return torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids)) | (attention_mask == 0)


def encode_texts(tokenizer, texts: Sequence[str], max_length: int) -> list[dict[str, list[int]]]:
    """Tokenised texts (truncated to max_length) as a list of {input_ids, attention_mask} for the engine."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return [{"input_ids": ids, "attention_mask": mask} for ids, mask in zip(enc["input_ids"], enc["attention_mask"])]


def mlm_collator(tokenizer, mask_prob: float = 0.15, seed: int = 0) -> Callable[[list[dict]], dict]:
    """Pad a batch and mask it with notebook 02's `mask_tokens` (fresh masks each batch: dynamic masking)."""
    generator = torch.Generator().manual_seed(seed)

    def collate(items: list[dict]) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad(items, return_tensors="pt")
        special = special_mask(batch["input_ids"], batch["attention_mask"], tokenizer)
        ids, labels = mask_tokens(batch["input_ids"], tokenizer.mask_token_id, special, mask_prob, generator)
        return {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}

    return collate


def mlm_config(n_texts: int, steps: int, batch_size: int, lr: float, seed: int = 0, desc: str = "masked LM",
               progress: bool = True, mixed_precision: str = "auto") -> TrainConfig:
    """The engine's settings for a step budget: enough epochs, 10 % warm-up, no evaluation until the end."""
    per_epoch = math.ceil(n_texts / batch_size)
    return TrainConfig(epochs=math.ceil(steps / per_epoch), batch_size=batch_size, lr=lr, weight_decay=0.01,
                       warmup_steps=max(1, steps // 10), patience=None, max_steps=steps, group_by_length=True,
                       mixed_precision=mixed_precision, metric="", greater_is_better=False, seed=seed, log_every=1,
                       restore_best=False, progress=progress, desc=desc, eval_every=steps, eval_at_start=False)


def set_encoder_frozen(model: MaskedLM, frozen: bool) -> None:
    """Freeze (or unfreeze) the encoder, and with it the tied decoder; frozen modules stay in eval mode."""
    for p in model.encoder.parameters():
        p.requires_grad_(not frozen)
    model.encoder._course_frozen = frozen


def train_mlm(model: MaskedLM, tokenizer, texts: Sequence[str], steps: int, batch_size: int, lr: float,
              max_length: int, mask_prob: float = 0.15, seed: int = 0, head_only: bool = False,
              desc: str = "masked LM", progress: bool = True, mixed_precision: str = "auto") -> TrainResult:
    """Masked-LM training with the course's engine: the head alone (encoder frozen) or the whole model."""
    if steps < 1 or not texts:
        raise CourseError("masked-LM training needs steps >= 1 and at least one text")
    set_encoder_frozen(model, head_only)
    data = encode_texts(tokenizer, texts, max_length)
    config = mlm_config(len(data), steps, batch_size, lr, seed, desc, progress, mixed_precision)
    try:
        return train(model, data, None, mlm_collator(tokenizer, mask_prob, seed), config,
                     evaluate_fn=lambda m: {})
    finally:
        set_encoder_frozen(model, False)


def head_state(model: MaskedLM) -> dict[str, torch.Tensor]:
    """The head's own weights (the tied decoder lives in the encoder and is saved with it)."""
    return {k: v.detach().cpu().contiguous() for k, v in model.head.state_dict().items() if k != "decoder_weight"}


def load_masked_lm(encoder_path: str, head_file: Path) -> MaskedLM:
    """An encoder (embedded name or folder) with a saved head's weights."""
    from safetensors.torch import load_file

    from ..core.models import load_model

    model = MaskedLM(load_model(encoder_path, "encoder"))
    model.head.load_state_dict(load_file(str(head_file)), strict=False)
    return model.eval()


def budget(profile: str) -> dict:
    """The warm-up / DAPT budget of a profile (`auto` resolves to cpu or gpu)."""
    from ..core.profiles import resolve_profile

    resolved = resolve_profile(profile)
    if resolved not in BUDGETS:
        raise CourseError(f"unknown profile {profile!r}: use one of auto, {', '.join(BUDGETS)}")
    return dict(BUDGETS[resolved], profile=resolved)


def adaptation_texts(cfg: dict, data: str, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """General warm-up texts (WikiText-2 validation) and domain training texts (the data's training split, the one
    split every notebook uses), so the adaptation never sees a validation or test text."""
    from ..core.data import load_text_classification, load_wikitext2

    dataset = load_text_classification(data, text_column, label_column)
    domain = list(dataset["train"]["text"])
    general = list(load_wikitext2()["validation"]["text"])
    return general[:cfg["warm_texts"]], domain[:cfg["train_texts"]]


def build_adapted(folder: Path, cfg: dict, general: list[str], domain: list[str], seed: int = 0,
                  progress: bool = True) -> None:
    """Warm the head on general text (encoder frozen), save it; DAPT the whole model on domain text; save the
    encoder (save_pretrained), tokenizer, both heads, the loss history and a summary into `folder`."""
    from safetensors.torch import save_file

    from ..core.device import pick_device

    model, tokenizer = base_masked_lm("minilm")
    model.to(pick_device())
    common = {"batch_size": cfg["batch_size"], "max_length": cfg["max_length"], "mask_prob": cfg["mask_prob"],
              "seed": seed, "progress": progress, "mixed_precision": cfg.get("mixed_precision", "auto")}
    warm = train_mlm(model, tokenizer, general, cfg["warm_steps"], lr=cfg["warm_lr"], head_only=True,
                     desc="warm-up: head only, general text", **common)
    save_file(head_state(model), str(folder / WARM_HEAD_FILE))
    dapt = train_mlm(model, tokenizer, domain, cfg["dapt_steps"], lr=cfg["lr"], desc="DAPT: whole model, domain",
                     **common)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no 'Writing model shards' bar in notebook outputs
    try:
        model.encoder.save_pretrained(folder)
    finally:
        hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)
    save_file(head_state(model), str(folder / HEAD_FILE))
    runs = {"warm-up": warm, "dapt": dapt}
    pd.concat([r.history[r.history["split"] == "train"][["step", "loss", "lr"]].assign(phase=name)
               for name, r in runs.items()]).to_csv(folder / "history.csv", index=False)
    summary = {name: {"steps": r.steps, "seconds": round(r.seconds, 2), "sequences": r.examples,
                      "trainable": r.params["trainable"]} for name, r in runs.items()}
    (folder / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def adapted_minilm(profile: str, data: str = "medical_abstracts", text_column: str = "text",
                   label_column: str = "label", seed: int = 0, precision: str = "auto", rebuild: bool = False,
                   progress: bool = True) -> Path:
    """The MiniLM encoder after masked-LM DAPT on `data`'s training texts: built with `profile`'s budget when the
    cache has no fresh copy, else the cached folder (load it with load_model(path, "classifier", num_labels=…)).
    `seed` is the adaptation's own seed: keep 0 so that fine-tuning runs over several seeds share one encoder."""
    import re

    from ..core.cache import cached_artifact, file_digest, texts_digest
    from ..core.device import pick_device, training_precision
    from ..core.models import resolve_model

    cfg = budget(profile)
    device = pick_device()
    cfg["mixed_precision"] = training_precision(precision, cfg["profile"], device)  # what a notebook's cc.start picks
    general, domain = adaptation_texts(cfg, data, text_column, label_column)
    fingerprint = {"recipe": f"05 masked-LM DAPT v{MLM_VERSION}", "budget": cfg, "seed": seed,
                   "device": device.type, "model": file_digest([resolve_model("minilm")]),
                   "train_texts": texts_digest(domain), "warm_texts": texts_digest(general)}
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(data).stem if data != "medical_abstracts" else data)
    name = f"minilm-{slug}-mlm-dapt-{cfg['profile']}" + (f"-seed{seed}" if seed else "")
    return cached_artifact(name, fingerprint,
                           lambda folder: build_adapted(folder, cfg, general, domain, seed, progress), rebuild)
