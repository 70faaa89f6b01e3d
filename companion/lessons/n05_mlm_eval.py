"""Measuring masked-LM adaptation (notebook 05, section 7): per-window losses on fixed masks, a unigram-frequency
baseline on the same masks, the before / after / control table with 95 % intervals (paired per window), fill-mask
predictions, and the table of the four model families' pretraining objectives with a masked-LM and a causal-LM loss
on the same text."""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from ..core.errors import CourseError
from ..core.stats import Interval, mean_ci, paired_difference
from .n01_lm_probability import token_nlls
from .n02_cross_entropy import IGNORE_INDEX
from .n05_mlm import MaskedLM, fixed_masks, padded, windows


@torch.no_grad()
def sequence_losses(model: MaskedLM, masked: list[dict[str, torch.Tensor]], batch_size: int = 32) -> np.ndarray:
    """Each window's mean cross-entropy over its masked positions (nats), in the order of `masked`."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(masked)), key=lambda i: len(masked[i]["input_ids"]))
    out = np.zeros(len(masked))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = padded([masked[i] for i in idx], device)
        hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        chosen = batch["labels"] != IGNORE_INDEX
        nll = F.cross_entropy(model.head(hidden[chosen]).float(), batch["labels"][chosen], reduction="none")
        rows = chosen.nonzero()[:, 0]
        sums = torch.zeros(len(idx), device=device).index_add_(0, rows, nll)
        out[idx] = (sums / chosen.sum(1)).cpu().numpy()
    return out


def token_loss(model: MaskedLM, masked: list[dict[str, torch.Tensor]]) -> float:
    """Mean cross-entropy over every masked token of the set (the loss a training step reports)."""
    counts = np.array([int((m["labels"] != IGNORE_INDEX).sum()) for m in masked])
    return float((sequence_losses(model, masked) * counts).sum() / counts.sum())


def unigram_log_probs(items: list[dict], vocab_size: int, special_ids: Sequence[int]) -> torch.Tensor:
    """log P(token) of a unigram model: token frequencies in windows (special tokens left out), add-one smoothed."""
    special = set(special_ids)
    counts = Counter(t for item in items for t in item["input_ids"] if t not in special)
    table = torch.ones(vocab_size, dtype=torch.float64)
    for token, n in counts.items():
        table[token] += n
    return (table / table.sum()).log()


def unigram_losses(log_probs: torch.Tensor, masked: list[dict[str, torch.Tensor]]) -> np.ndarray:
    """Each window's mean −log P(token) over its masked positions under a unigram model (the same masks as
    `sequence_losses`): what a model that ignores the context would score."""
    return np.array([float(-log_probs[m["labels"][m["labels"] != IGNORE_INDEX]].mean()) for m in masked])


@torch.no_grad()
def token_losses(model: MaskedLM, masked: list[dict[str, torch.Tensor]], batch_size: int = 32) -> torch.Tensor:
    """The cross-entropy of every masked position (nats), window by window in the order of `masked`."""
    model.eval()
    device, out = next(model.parameters()).device, []
    for start in range(0, len(masked), batch_size):
        batch = padded(masked[start:start + batch_size], device)
        hidden = model.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        chosen = batch["labels"] != IGNORE_INDEX
        out.append(F.cross_entropy(model.head(hidden[chosen]).float(), batch["labels"][chosen], reduction="none").cpu())
    return torch.cat(out)


def shown_as(masked: list[dict[str, torch.Tensor]], mask_token_id: int) -> list[str]:
    """How each masked position was shown to the model, in the order of token_losses: [MASK], a random token, or
    the token itself (BERT's 80/10/10)."""
    kinds = []
    for m in masked:
        chosen = m["labels"] != IGNORE_INDEX
        for shown, true in zip(m["input_ids"][chosen].tolist(), m["labels"][chosen].tolist()):
            kinds.append("[MASK]" if shown == mask_token_id else "kept" if shown == true else "random token")
    return kinds


def head_vs_unigram(model: MaskedLM, log_probs: torch.Tensor, sets: dict[str, list[dict]], mask_token_id: int
                    ) -> pd.DataFrame:
    """Per set and per way a position was shown: masked positions, the head's mean loss and the unigram model's on
    the same positions (nats), and the head's advantage (unigram − head)."""
    rows = []
    for name, masked in sets.items():
        head = token_losses(model, masked).numpy()
        labels = torch.cat([m["labels"][m["labels"] != IGNORE_INDEX] for m in masked])
        frame = pd.DataFrame({"shown": shown_as(masked, mask_token_id), "head": head,
                              "unigram": (-log_probs[labels]).numpy()})
        for shown, part in [("all", frame)] + list(frame.groupby("shown")):
            rows.append({"set": name, "shown as": shown, "positions": len(part), "head_loss": part["head"].mean(),
                         "unigram_loss": part["unigram"].mean()})
    table = pd.DataFrame(rows).set_index(["set", "shown as"])
    return table.assign(advantage=table["unigram_loss"] - table["head_loss"])


def change_row(name: str, before: np.ndarray, after: np.ndarray) -> dict:
    """One row of the before/after table: mean losses with intervals, the paired change and perplexities."""
    b, a, change = mean_ci(before), mean_ci(after), paired_difference(after, before)
    return {"set": name, "sequences": len(before), "loss_before": b.mean, "loss_before_ci": b.half_width,
            "loss_after": a.mean, "loss_after_ci": a.half_width, "change": change.mean, "change_low": change.low,
            "change_high": change.high, "change_excludes_0": change.excludes_zero(),
            "ppl_before": math.exp(b.mean), "ppl_after": math.exp(a.mean)}


def before_after_table(losses: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """The Gururangan table: per set (e.g. medical, general) loss before/after ± 95 % CI, the paired change
    after − before with its 95 % interval, and perplexity exp(mean loss) before/after."""
    if not losses:
        raise CourseError("before_after_table needs at least one set of (before, after) losses")
    return pd.DataFrame([change_row(name, *pair) for name, pair in losses.items()]).set_index("set")


def change_sentence(table: pd.DataFrame, name: str, label: str) -> str:
    """One sentence chosen by the numbers: the loss on `name` rose, fell, or stayed within its 95 % interval."""
    row = table.loc[name]
    interval = f"{row['change']:+.3f} nats, 95 % CI {row['change_low']:+.3f} to {row['change_high']:+.3f}"
    if not row["change_excludes_0"]:
        return f"{label} masked-LM loss did not change beyond noise ({interval}: the interval includes 0)"
    verb = "fell" if row["change"] < 0 else "rose"
    return (f"{label} masked-LM loss {verb} from {row['loss_before']:.2f} to {row['loss_after']:.2f} nats "
            f"(perplexity {row['ppl_before']:.1f} → {row['ppl_after']:.1f}; change {interval})")


def interval_of(table: pd.DataFrame, name: str) -> Interval:
    """The paired change of one row as an Interval (for comparisons and results)."""
    row = table.loc[name]
    return Interval(float(row["change"]), float(row["change_low"]), float(row["change_high"]), int(row["sequences"]))


def eval_masks(tokenizer, texts: Sequence[str], max_length: int, limit: int, seed: int = 0) -> list[dict]:
    """The first `limit` windows of held-out texts, each masked once with BERT's rule from `seed`."""
    return fixed_masks(tokenizer, windows(tokenizer, texts, max_length, limit), seed=seed)


@torch.no_grad()
def fill_mask(model: MaskedLM, tokenizer, sentence: str, k: int = 5) -> list[str]:
    """The model's top-k word pieces for the one [MASK] in a sentence."""
    model.eval()
    enc = tokenizer(sentence, return_tensors="pt").to(next(model.parameters()).device)
    where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero()
    if len(where) != 1:
        raise CourseError(f"fill_mask needs exactly one {tokenizer.mask_token} in the sentence: {sentence!r}")
    hidden = model.encoder(**enc).last_hidden_state[0, int(where[0])]
    return tokenizer.convert_ids_to_tokens(model.head(hidden).topk(k).indices.tolist())


def masked_sentences(tokenizer, texts: Sequence[str], n: int, words: int = 24, min_letters: int = 5
                     ) -> list[tuple[str, str]]:
    """`n` (sentence with one [MASK], hidden word) pairs from texts: each text's opening `words` words, the longest
    word that is one whole word piece (at least `min_letters` letters) replaced by the mask; texts without one are
    skipped."""
    vocab, out = tokenizer.get_vocab(), []
    for text in texts:
        opening = text.split()[:words]
        candidates = [(len(w), -i, i) for i, w in enumerate(opening)
                      if w.isalpha() and len(w) >= min_letters and w.lower() in vocab]
        if not candidates:
            continue
        i = max(candidates)[2]
        out.append((" ".join(opening[:i] + [tokenizer.mask_token] + opening[i + 1:]), opening[i].lower()))
        if len(out) == n:
            break
    return out


def fill_mask_table(models: dict[str, MaskedLM], tokenizer, sentences: dict[str, tuple[str, str]], k: int = 5
                    ) -> pd.DataFrame:
    """Top-k predictions of each model (columns) for each sentence (rows, named by their set), beside the hidden
    word; `sentences`: name → (sentence with one [MASK], hidden word)."""
    table = pd.DataFrame({"hidden word": [word for _, word in sentences.values()]},
                         index=pd.Index(list(sentences), name="sentence"))
    for name, model in models.items():
        table[name] = [", ".join(fill_mask(model, tokenizer, s, k)) for s, _ in sentences.values()]
    return table


OBJECTIVES = [
    {"family": "BERT", "objective": "masked LM + next-sentence prediction",
     "predicts": "~15 % masked tokens from both sides; whether sentence B follows A",
     "context": "bidirectional", "in this course": "02, 05 (§7), 06-09: MiniLM, a distilled BERT encoder"},
    {"family": "GPT", "objective": "causal LM", "predicts": "each next token from the tokens before it",
     "context": "left to right", "in this course": "01, 04, 05 (§1-5), 08: SmolLM2, a Llama-style decoder"},
    {"family": "XLNet", "objective": "permutation LM",
     "predicts": "tokens in a random factorisation order, each from those before it in that order",
     "context": "both sides, autoregressively", "in this course": "—"},
    {"family": "RoBERTa", "objective": "masked LM, no next-sentence prediction",
     "predicts": "as BERT's masked LM, with dynamic masking (new masks each epoch), more data, larger batches",
     "context": "bidirectional", "in this course": "05 §7 masks dynamically, as RoBERTa"},
]


def objectives_table() -> pd.DataFrame:
    """The four model families' pretraining objectives beside the notebooks that use each."""
    return pd.DataFrame(OBJECTIVES).set_index("family")


@torch.no_grad()
def causal_lm_loss(model, tokenizer, texts: Sequence[str], max_length: int = 64) -> float:
    """Mean next-token cross-entropy (nats per predicted token) of a causal LM over texts."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)["input_ids"].to(device)
        total, count = total + float(token_nlls(model(input_ids=ids).logits, ids).sum()), count + ids.shape[1] - 1
    return total / count


def same_text_losses(mlm: MaskedLM, mlm_tokenizer, lm, lm_tokenizer, texts: Sequence[str], max_length: int = 64,
                     seed: int = 0, names: tuple[str, str] = ("MiniLM + warmed head", "SmolLM2")) -> pd.DataFrame:
    """The masked-LM loss (BERT's masking, fixed) and the causal-LM loss on the same texts, with token counts."""
    masked = fixed_masks(mlm_tokenizer, windows(mlm_tokenizer, texts, max_length, len(texts)), seed=seed)
    lm_tokens = sum(len(lm_tokenizer(t, truncation=True, max_length=max_length)["input_ids"]) - 1 for t in texts)
    return pd.DataFrame([
        {"objective": "masked LM", "model": names[0], "loss_nats": token_loss(mlm, masked),
         "predicted_tokens": int(sum(int((m["labels"] != IGNORE_INDEX).sum()) for m in masked))},
        {"objective": "causal LM", "model": names[1], "loss_nats": causal_lm_loss(lm, lm_tokenizer, texts, max_length),
         "predicted_tokens": lm_tokens},
    ]).set_index("objective")
