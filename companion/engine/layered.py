"""Layered fine-tuning helpers for BERT-style classifiers: the model's parts, freezing the lowest k layers,
gradual unfreezing, discriminative (layer-wise) learning rates, a frozen-layer feature cache, and the
`prepare_*` functions that make a fresh classifier ready for each layered strategy."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.errors import CourseError

ULMFIT_DECAY = 2.6  # Howard & Ruder 2018: each lower layer's rate is the upper layer's / 2.6


def model_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The parts of a BERT-style classifier, bottom to top: embeddings, layer_0 … layer_{n-1}, head."""
    base = getattr(model, "base_model", None)
    if base is None or not hasattr(base, "embeddings") or not hasattr(getattr(base, "encoder", None), "layer"):
        raise CourseError(f"layered strategies need a BERT-style classifier (embeddings + encoder.layer); "
                          f"got {type(model).__name__}: use model_name='minilm' or another BERT/RoBERTa model")
    parts: dict[str, nn.Module] = {"embeddings": base.embeddings}
    for i, layer in enumerate(base.encoder.layer):
        parts[f"layer_{i}"] = layer
    head = nn.ModuleDict({name: mod for name, mod in model.named_children() if mod is not base})
    if getattr(base, "pooler", None) is not None:
        head["pooler"] = base.pooler
    parts["head"] = head
    return parts


def parameter_shares(model: nn.Module) -> pd.DataFrame:
    """Parameters per part and their share of the whole model."""
    rows = [{"part": name, "params": sum(p.numel() for p in part.parameters())}
            for name, part in model_parts(model).items()]
    table = pd.DataFrame(rows)
    table["share_pct"] = 100 * table["params"] / table["params"].sum()
    return table


def num_layers(model: nn.Module) -> int:
    """Number of encoder layers."""
    return len(model.base_model.encoder.layer)


def set_frozen(module: nn.Module, frozen: bool) -> None:
    """Freeze (no gradients, eval mode during training) or unfreeze one module."""
    for p in module.parameters():
        p.requires_grad = not frozen
    module._course_frozen = frozen  # training.train_mode keeps frozen modules in eval mode (no dropout)


def freeze_lower(model: nn.Module, k: int, freeze_embeddings: bool | None = None) -> nn.Module:
    """Freeze the embeddings and the lowest k encoder layers (k=0: nothing frozen); the rest stays trainable.

    `freeze_embeddings` None means: frozen when k > 0 (they sit below every layer).
    """
    n = num_layers(model)
    if not 0 <= k <= n:
        raise CourseError(f"k={k} frozen layers is not possible: the model has {n} encoder layers (use 0…{n})")
    for name, part in model_parts(model).items():
        embeddings_frozen = k > 0 if freeze_embeddings is None else freeze_embeddings
        lower = (name == "embeddings" and embeddings_frozen) or (
            name.startswith("layer_") and int(name.split("_")[1]) < k)
        set_frozen(part, lower)
    return model


def gradual_unfreezing(model: nn.Module, start_frozen: bool = True) -> Callable[[int, nn.Module], None]:
    """An `on_epoch_start` hook: epoch 0 trains the head only, each later epoch unfreezes one more layer (top-down).

    Build the optimizer over *all* parameters (`only_trainable=False`) so the newly thawed ones are in it.
    """
    parts = list(model_parts(model).items())  # bottom → top
    if start_frozen:
        for _, part in parts[:-1]:
            set_frozen(part, True)
        set_frozen(parts[-1][1], False)

    def hook(epoch: int, _model: nn.Module) -> None:
        for name, part in parts[max(0, len(parts) - 1 - epoch):]:
            if getattr(part, "_course_frozen", False):
                set_frozen(part, False)
    return hook


def trainable_parts(model: nn.Module) -> list[str]:
    """Names of the parts that currently have trainable parameters."""
    return [n for n, part in model_parts(model).items() if any(p.requires_grad for p in part.parameters())]


def discriminative_groups(model: nn.Module, lr: float, decay: float = ULMFIT_DECAY, weight_decay: float = 0.01,
                          only_trainable: bool = True) -> list[dict]:
    """AdamW parameter groups with layer-wise rates: head lr, top layer lr/decay, next lr/decay², …, embeddings."""
    groups = []
    parts = list(model_parts(model).items())[::-1]  # top → bottom
    for depth, (name, part) in enumerate(parts):
        for suffix, wd, pick in (("", weight_decay, lambda n, p: p.ndim >= 2 and "LayerNorm" not in n),
                                 ("/no_decay", 0.0, lambda n, p: p.ndim < 2 or "LayerNorm" in n)):
            params = [p for n, p in part.named_parameters() if pick(n, p) and (p.requires_grad or not only_trainable)]
            if params:
                groups.append({"params": params, "lr": lr / decay ** depth, "weight_decay": wd, "name": name + suffix})
    return groups


# ---------------------------------------------------------------- a strategy = a way to prepare the model
@dataclass
class Prepared:
    """A classifier made ready for one strategy, and what its training needs to know."""
    model: nn.Module  # the classifier, with frozen parts or wrapped by peft
    frozen: int = 0  # encoder layers frozen for the whole run (with the embeddings): the feature cache skips them
    decay: float | None = None  # layer-wise learning rates: each part's rate is the rate above it / decay
    hook: Callable[[int, nn.Module], None] | None = None  # called at the start of each epoch (gradual unfreezing)
    all_parameters: bool = False  # the optimiser also holds the frozen parameters (they thaw during training)

    def groups(self, lr: float, weight_decay: float) -> list[dict] | None:
        """AdamW parameter groups for this strategy, or None for the loop's default (trainable ones, one rate)."""
        from .training import param_groups

        if self.decay is not None:
            return discriminative_groups(self.model, lr, self.decay, weight_decay,
                                         only_trainable=not self.all_parameters)
        if self.all_parameters:
            return param_groups(self.model, lr, weight_decay, only_trainable=False)
        return None


def prepare_full(model: nn.Module) -> Prepared:
    """Full fine-tuning: every parameter trains at one rate."""
    return Prepared(model)


def prepare_freeze(model: nn.Module, k: int = 4) -> Prepared:
    """Freeze the embeddings and the lowest k encoder layers; train the rest."""
    return Prepared(freeze_lower(model, k), frozen=k)


def prepare_head_only(model: nn.Module) -> Prepared:
    """Freeze the whole encoder; train the pooler and the classifier only."""
    n = num_layers(model)
    return Prepared(freeze_lower(model, n), frozen=n)


def prepare_gradual(model: nn.Module) -> Prepared:
    """Gradual unfreezing: the head first, one more layer (top-down) each epoch."""
    return Prepared(model, hook=gradual_unfreezing(model), all_parameters=True)


def prepare_discriminative(model: nn.Module, decay: float = ULMFIT_DECAY) -> Prepared:
    """Every layer trains, each at the rate of the layer above it divided by `decay`."""
    model_parts(model)  # checks that it is BERT-style before any training
    return Prepared(model, decay=decay)


def prepare_ulmfit(model: nn.Module, decay: float = ULMFIT_DECAY) -> Prepared:
    """ULMFiT: gradual unfreezing with discriminative rates."""
    return Prepared(model, decay=decay, hook=gradual_unfreezing(model), all_parameters=True)


# ---------------------------------------------------------------- the frozen-layer feature cache
class UpperStack(nn.Module):
    """The classifier above layer k, fed with cached hidden states: layers k…n-1, pooler, dropout, classifier.

    It shares its weights with `model` (registered as a sub-module), so training it trains the model in place.
    """

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        model_parts(model)  # checks that it is BERT-style
        self.model, self.k = model, k

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None):
        """Run the upper layers and the head on cached hidden states; return loss and logits like the model."""
        from transformers.masking_utils import create_bidirectional_mask
        from transformers.modeling_outputs import SequenceClassifierOutput

        base = self.model.base_model
        mask = create_bidirectional_mask(config=base.config, inputs_embeds=hidden_states, attention_mask=attention_mask)
        h = hidden_states
        for layer in base.encoder.layer[self.k:]:
            h = layer(h, mask)
            h = h[0] if isinstance(h, tuple) else h
        pooled = base.pooler(h) if getattr(base, "pooler", None) is not None else h[:, 0]
        logits = self.model.classifier(self.model.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


@torch.no_grad()
def cache_lower_features(model: nn.Module, data, collate: Callable, k: int, batch_size: int = 64,
                         progress: bool = False) -> list[dict]:
    """Run embeddings + the lowest k layers once (eval mode) and keep each example's unpadded hidden states."""
    from transformers.masking_utils import create_bidirectional_mask

    from .batches import make_loader

    base = model.base_model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    loader = make_loader(data, collate, batch_size, shuffle=False, group=False)
    features: list[dict] = []
    for batch in tqdm(loader, desc=f"caching layers below {k}", mininterval=10, disable=not progress):
        batch = {key: v.to(device) for key, v in batch.items()}
        h = base.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
        mask = create_bidirectional_mask(config=base.config, inputs_embeds=h, attention_mask=batch["attention_mask"])
        for layer in base.encoder.layer[:k]:
            h = layer(h, mask)
            h = h[0] if isinstance(h, tuple) else h
        for row, am, y in zip(h.cpu(), batch["attention_mask"].cpu(), batch["labels"].cpu()):
            n = int(am.sum())
            features.append({"hidden_states": row[:n].clone(), "attention_mask": am[:n].clone(), "labels": y})
    model.train(was_training)
    return features


def collate_features(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad cached hidden states (zeros) and masks to the longest in the batch."""
    longest = max(len(it["attention_mask"]) for it in items)
    dim = items[0]["hidden_states"].shape[-1]
    hidden = torch.zeros(len(items), longest, dim, dtype=items[0]["hidden_states"].dtype)
    mask = torch.zeros(len(items), longest, dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["attention_mask"])
        hidden[i, :n], mask[i, :n] = it["hidden_states"], it["attention_mask"]
    return {"hidden_states": hidden, "attention_mask": mask, "labels": torch.stack([it["labels"] for it in items])}


# ---------------------------------------------------------------- exercise checks (notebook 07)






