"""Masked-LM domain-adaptive pretraining (DAPT) of the classifier's encoder (notebook 05, section 7).

The embedded MiniLM ships without its masked-LM head, so we write BERT's head by hand (transform + decoder tied to
the word embeddings) and warm it with the encoder frozen: the encoder runs once over masked texts, and the head
trains on the stored hidden states at the masked positions until its held-out loss stops falling (thousands of
cheap steps). The head is then frozen. DAPT trains the encoder alone (masked LM with BERT's 80/10/10 rule, fresh
masks every batch) on the domain's training texts at a rate chosen on held-out domain text; a control run trains
the same encoder for as many steps on general text. Any change measured with the frozen head belongs to the encoder.
`adapted_minilm` caches the adapted encoder, the control encoder and the warmed head (notebook 06 and the strategy
sweep load the adapted encoder as a classifier).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..engine.training import TrainConfig, TrainResult, train
from .n02_cross_entropy import IGNORE_INDEX

HEAD_FILE = "mlm_head.safetensors"


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

    def own_parameters(self) -> list[nn.Parameter]:
        """The head's own weights (dense, LayerNorm, bias): the tied decoder belongs to the encoder."""
        return [p for name, p in self.named_parameters() if name != "decoder_weight"]


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


class HeadOnStates(nn.Module):
    """The head alone, fed the encoder's stored hidden states at masked positions (the warm-up's model)."""

    def __init__(self, head: MLMHead):
        super().__init__()
        self.head = head

    def forward(self, hidden_states: torch.Tensor, labels: torch.Tensor):
        """Vocabulary logits of the stored states and their cross-entropy with the masked tokens."""
        from transformers.modeling_outputs import MaskedLMOutput

        logits = self.head(hidden_states)
        return MaskedLMOutput(loss=F.cross_entropy(logits.float(), labels), logits=logits)


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


def bert_masking(input_ids: torch.Tensor, special: torch.Tensor, mask_token_id: int, vocab_size: int,
                 mask_prob: float = 0.15, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: choose each non-special token with probability `mask_prob`; of the chosen, 80 % become
    [MASK], 10 % a random token, 10 % stay; labels keep the chosen tokens' ids and -100 elsewhere. The random draws
    are those of transformers' DataCollatorForLanguageModeling, in its order, so one seeded generator gives the
    collator's masks exactly."""
    probability = torch.full(input_ids.shape, mask_prob).masked_fill(special.bool(), 0.0)
    chosen = torch.bernoulli(probability, generator=generator).bool()
    labels = input_ids.masked_fill(~chosen, IGNORE_INDEX)
    inputs = input_ids.clone()
    replaced = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    inputs[replaced] = mask_token_id
    randomised = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & chosen & ~replaced
    words = torch.randint(vocab_size, input_ids.shape, dtype=torch.long, generator=generator)
    inputs[randomised] = words[randomised]
    return inputs, labels


def windows(tokenizer, texts: Sequence[str], max_length: int, limit: int | None = None) -> list[dict[str, list[int]]]:
    """Each text cut into consecutive windows of at most max_length tokens (special tokens included), so the
    whole text is read, not only its opening: a list of {input_ids, attention_mask} for the engine."""
    room = max_length - tokenizer.num_special_tokens_to_add()
    out: list[dict[str, list[int]]] = []
    for ids in tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]:
        for start in range(0, len(ids), room):
            piece = [tokenizer.cls_token_id] + ids[start:start + room] + [tokenizer.sep_token_id]
            out.append({"input_ids": piece, "attention_mask": [1] * len(piece)})
            if limit is not None and len(out) >= limit:
                return out
    return out


def mlm_collator(tokenizer, mask_prob: float = 0.15, seed: int = 0) -> Callable[[list[dict]], dict]:
    """Pad a batch and mask it with `bert_masking` (fresh masks each batch: dynamic masking, as RoBERTa)."""
    generator = torch.Generator().manual_seed(seed)

    def collate(items: list[dict]) -> dict[str, torch.Tensor]:
        batch = tokenizer.pad([{k: item[k] for k in ("input_ids", "attention_mask")} for item in items],
                              return_tensors="pt")
        special = special_mask(batch["input_ids"], batch["attention_mask"], tokenizer)
        ids, labels = bert_masking(batch["input_ids"], special, tokenizer.mask_token_id, len(tokenizer), mask_prob,
                                   generator)
        return {"input_ids": ids, "attention_mask": batch["attention_mask"], "labels": labels}

    return collate


def fixed_masks(tokenizer, items: list[dict], mask_prob: float = 0.15, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """One masked copy of each window, drawn once from `seed` (the same masks before and after training); a window
    that drew no mask gets its first word piece masked, so every window has a loss."""
    generator, masked = torch.Generator().manual_seed(seed), []
    for item in items:
        ids, attention = torch.tensor(item["input_ids"])[None], torch.tensor(item["attention_mask"])[None]
        special = special_mask(ids, attention, tokenizer)
        inputs, labels = bert_masking(ids, special, tokenizer.mask_token_id, len(tokenizer), mask_prob, generator)
        if (labels == IGNORE_INDEX).all():
            first = int((~special[0]).nonzero()[0])
            inputs[0, first], labels[0, first] = tokenizer.mask_token_id, ids[0, first]
        masked.append({"input_ids": inputs[0], "attention_mask": attention[0], "labels": labels[0]})
    return masked


def padded(items: list[dict[str, torch.Tensor]], device: torch.device) -> dict[str, torch.Tensor]:
    """Pad masked windows into one batch (labels with -100)."""
    return {k: torch.nn.utils.rnn.pad_sequence([m[k] for m in items], batch_first=True,
                                               padding_value=IGNORE_INDEX if k == "labels" else 0).to(device)
            for k in ("input_ids", "attention_mask", "labels")}


@torch.no_grad()
def masked_states(encoder: nn.Module, masked: list[dict[str, torch.Tensor]], batch_size: int = 64
                  ) -> list[dict[str, torch.Tensor]]:
    """Run the encoder once over fixed masked windows; keep the hidden state and the true token of every masked
    position: the head's warm-up data (one item per masked token)."""
    encoder.eval()
    device, out = next(encoder.parameters()).device, []
    for start in range(0, len(masked), batch_size):
        batch = padded(masked[start:start + batch_size], device)
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        chosen = batch["labels"] != IGNORE_INDEX
        out += [{"hidden_states": h, "labels": y} for h, y in zip(hidden[chosen].float().cpu(),
                                                                   batch["labels"][chosen].cpu())]
    return out


def stack_states(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Collate stored states into a batch."""
    return {"hidden_states": torch.stack([i["hidden_states"] for i in items]),
            "labels": torch.stack([i["labels"] for i in items])}


def warm_head(head: MLMHead, train_states: list[dict], val_states: list[dict], config: TrainConfig) -> TrainResult:
    """Train the head's own weights on stored states (the encoder, and with it the tied decoder, untouched) with the
    course's training loop, scoring the held-out states every `config.eval_every` steps; the best weights are kept."""
    model, val = HeadOnStates(head), stack_states(val_states)

    def held_out(m: nn.Module) -> dict[str, float]:
        release_free_memory()
        return {"loss": states_loss(m, val)}

    head.decoder_weight.requires_grad_(False)
    try:
        return train(model, train_states, None, stack_states, config,
                     groups=[{"params": head.own_parameters(), "lr": config.lr, "weight_decay": 0.0}],
                     evaluate_fn=held_out)
    finally:
        head.decoder_weight.requires_grad_(True)


def release_free_memory() -> None:
    """Hand freed heap memory back to the system (glibc's malloc_trim; elsewhere nothing). Thousands of steps that
    each allocate and free vocabulary-sized tensors leave glibc's heap fragmented, and the process would otherwise
    grow by tens of MB per step; the warm-up calls this at every held-out evaluation."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


@torch.no_grad()
def states_loss(model: HeadOnStates, states: dict[str, torch.Tensor], chunk: int = 512) -> float:
    """Mean cross-entropy of the head over stored states, in chunks (a 30k-word softmax per state is large)."""
    device, total, n = next(model.parameters()).device, 0.0, len(states["labels"])
    for start in range(0, n, chunk):
        part = {k: v[start:start + chunk].to(device) for k, v in states.items()}
        total += float(model(**part).loss) * len(part["labels"])
    return total / max(1, n)


def freeze_head(model: MaskedLM, frozen: bool) -> None:
    """Freeze (or thaw) the head's own weights; the tied decoder is the encoder's word-embedding table, not frozen."""
    for p in model.head.own_parameters():
        p.requires_grad_(not frozen)


@torch.no_grad()
def masked_loss(model: MaskedLM, masked: list[dict[str, torch.Tensor]], batch_size: int = 64) -> float:
    """Mean cross-entropy over every masked token of fixed masked windows (the DAPT's held-out score)."""
    model.eval()
    device, total, count = next(model.parameters()).device, 0.0, 0
    for start in range(0, len(masked), batch_size):
        batch = padded(masked[start:start + batch_size], device)
        out = model(**batch)
        n = int((batch["labels"] != IGNORE_INDEX).sum())
        total, count = total + float(out.loss) * n, count + n
    return total / max(1, count)


def dapt(model: MaskedLM, tokenizer, train_items: list[dict], val_masked: list[dict] | None, config: TrainConfig,
         mask_prob: float = 0.15) -> TrainResult:
    """Masked-LM training of the encoder alone (the head frozen) with dynamic BERT masking; the held-out masked
    loss (if `val_masked`) is scored every `config.eval_every` steps and the best weights kept."""
    freeze_head(model, True)
    try:
        return train(model, train_items, None, mlm_collator(tokenizer, mask_prob, config.seed), config,
                     evaluate_fn=lambda m: {"loss": masked_loss(m, val_masked)} if val_masked else {})
    finally:
        freeze_head(model, False)
