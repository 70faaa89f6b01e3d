"""Corpus statistics for the domain gap (notebook 04): words, tokenizer fertility, the words split into the most
pieces, vocabulary overlap, per-document perplexity and an embedding-space comparison of two corpora."""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

import numpy as np
import pandas as pd
import torch

from ..core.errors import CourseError
from ..core.stats import Interval, percentile_interval
from .n01_lm_probability import sentence_nlls, strided_perplexity

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]")  # alphabetic words (hyphens/apostrophes inside)
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he
her here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now
of off on once only or other our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves also may one two three""".split())
MARKERS = re.compile(r"<unk>|<formula>")  # WikiText-2's placeholders for a rare word and for a formula


def words(text: str, lowercase: bool = True) -> list[str]:
    """The alphabetic words of a text (numbers and punctuation dropped), lower-cased by default."""
    found = WORD.findall(text)
    return [w.lower() for w in found] if lowercase else found


def word_counts(texts: Iterable[str], lowercase: bool = True, drop_stopwords: bool = False) -> Counter:
    """How often each word occurs in a corpus."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(w for w in words(text, lowercase) if not (drop_stopwords and w.lower() in STOPWORDS))
    return counts


def pieces(tokenizer, word: str) -> list[str]:
    """The subword pieces of a word as it appears inside running text (with its leading space)."""
    return tokenizer.tokenize(" " + word)


def fertility(tokenizer, texts: Iterable[str]) -> dict[str, float]:
    """Tokens per word of a corpus: subword tokens of the whole texts divided by their whitespace words."""
    n_tokens = n_words = 0
    for text in texts:
        n_tokens += len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
        n_words += len(text.split())
    if n_words == 0:
        raise CourseError("fertility needs at least one word of text")
    return {"tokens": n_tokens, "words": n_words, "tokens_per_word": n_tokens / n_words}


def word_pieces_table(tokenizer, counts: Counter, min_count: int = 1) -> pd.DataFrame:
    """One row per word type (seen ≥ min_count times): count, number of pieces and the pieces themselves."""
    rows = [{"word": w, "count": c, "pieces": len(p := pieces(tokenizer, w)), "split": " ".join(p)}
            for w, c in counts.items() if c >= min_count]
    return pd.DataFrame(rows, columns=["word", "count", "pieces", "split"])


def pieces_per_word(table: pd.DataFrame) -> float:
    """Average pieces per running word (each word type weighted by its count)."""
    return float((table["pieces"] * table["count"]).sum() / table["count"].sum())


def most_split(table: pd.DataFrame, top: int = 15, min_count: int = 5) -> pd.DataFrame:
    """The frequent words the tokenizer cuts into the most pieces (ties: the more frequent first)."""
    frequent = table[table["count"] >= min_count]
    return frequent.sort_values(["pieces", "count"], ascending=[False, False]).head(top).reset_index(drop=True)


def oov_rate(domain: Counter, general: Counter) -> float:
    """Share of the domain's running words whose type never occurs in the general corpus."""
    total = sum(domain.values())
    return sum(c for w, c in domain.items() if w not in general) / max(total, 1)


def vocabulary_overlap(domain: Counter, general: Counter, top: int = 5000) -> dict[str, float]:
    """Overlap of two corpora's vocabularies: of their `top` most frequent words (Gururangan et al. 2020, Fig. 2),
    Jaccard of all types, and the domain's out-of-vocabulary rate against the general corpus."""
    top_d = {w for w, _ in domain.most_common(top)}
    top_g = {w for w, _ in general.most_common(top)}
    both = set(domain) & set(general)
    return {"top_k": min(top, len(top_d), len(top_g)),
            "top_k_overlap": len(top_d & top_g) / max(1, min(len(top_d), len(top_g))),
            "jaccard_all_types": len(both) / max(1, len(set(domain) | set(general))),
            "domain_types": len(domain), "general_types": len(general),
            "domain_oov_rate": oov_rate(domain, general)}


def keyness(domain: Counter, general: Counter, min_count: int = 10, smoothing: float = 1.0) -> pd.DataFrame:
    """Words over- and under-represented in the domain: log2 ratio of smoothed relative frequencies."""
    n_d, n_g = sum(domain.values()), sum(general.values())
    rows = []
    for word in set(domain) | set(general):
        cd, cg = domain.get(word, 0), general.get(word, 0)
        if cd + cg < min_count:
            continue
        ratio = ((cd + smoothing) / n_d) / ((cg + smoothing) / n_g)
        rows.append({"word": word, "domain_per_million": 1e6 * cd / n_d, "general_per_million": 1e6 * cg / n_g,
                     "log2_ratio": math.log2(ratio)})
    return pd.DataFrame(rows).sort_values("log2_ratio", ascending=False).reset_index(drop=True)


def document_perplexities(model: torch.nn.Module, tokenizer, texts: list[str], max_tokens: int = 128,
                          batch_size: int = 8, progress: bool = False) -> pd.Series:
    """Perplexity of each document's first `max_tokens` tokens (start token prepended)."""
    table = sentence_nlls(model, tokenizer, texts, max_tokens, batch_size, progress)
    return pd.Series(np.exp(table["nll_sum"] / table["tokens"]).to_numpy(), name="perplexity")


def corpus_perplexity(model: torch.nn.Module, tokenizer, texts: list[str], max_length: int = 256, stride: int = 128,
                      max_tokens: int | None = 4096, progress: bool = False) -> dict[str, float]:
    """Strided perplexity of a whole corpus (companion.lessons.n01_lm_probability.strided_perplexity, capped at max_tokens)."""
    return strided_perplexity(model, tokenizer, texts, max_length, stride, max_tokens=max_tokens, progress=progress)


def strip_markers(text: str) -> str:
    """A text without WikiText's format markers (`<unk>`, `<formula>`), spaces and punctuation tidied."""
    text = MARKERS.sub("", text)
    text = re.sub(r"[ \t]+([.,;:!?)])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def marker_tokens(tokenizer, text: str) -> torch.Tensor:
    """For each token of `text` (no special tokens), whether it overlaps a format marker (`<unk>`, `<formula>`)."""
    inside = np.zeros(len(text) + 1, dtype=np.int64)  # characters inside a marker, as a running count
    for match in MARKERS.finditer(text):
        inside[match.start() + 1: match.end() + 1] = 1
    count = np.cumsum(inside)
    offsets = np.asarray(tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"])
    if len(offsets) == 0:
        return torch.zeros(0, dtype=torch.bool)
    return torch.from_numpy(count[offsets[:, 1]] > count[offsets[:, 0]])


def word_starts(tokenizer, ids: torch.Tensor) -> torch.Tensor:
    """For each token id, whether a whitespace-separated word starts with it (special tokens count as whitespace):
    the words of a stretch of tokens are the starts in it, so text.split() is never needed on cut text."""
    special = set(tokenizer.all_special_ids)
    starts, after_space = [], True
    for token in ids.tolist():
        piece = " " if token in special else tokenizer.decode([token])
        if not piece:
            starts.append(False)
            continue
        starts.append(bool(piece.strip()) and (after_space or piece[0].isspace()))
        after_space = piece[-1].isspace()
    return torch.tensor(starts, dtype=torch.bool)


def corpus_blocks(tokenizer, found: dict, block: int) -> pd.DataFrame:
    """The scored tokens of a strided evaluation (`strided_token_nlls`) cut into consecutive blocks of `block` tokens:
    per block its tokens, the words that start in it and its summed NLL (the units a bootstrap resamples)."""
    scored = ~torch.isnan(found["nll"])
    nll, starts = found["nll"][scored], word_starts(tokenizer, found["ids"])[scored]
    rows = [{"block": b, "tokens": len(nll[i:i + block]), "words": int(starts[i:i + block].sum()),
             "nll_sum": float(nll[i:i + block].sum())} for b, i in enumerate(range(0, len(nll), block))]
    return pd.DataFrame(rows)


def corpus_gap(a: pd.DataFrame, b: pd.DataFrame, resamples: int = 2000, seed: int = 0, level: float = 0.95
               ) -> dict[str, Interval]:
    """The difference a − b of two corpora's mean NLL per token and per word (nats), each with a bootstrap interval
    that resamples each corpus's blocks (`corpus_blocks`; the corpora are independent samples of text)."""
    rng = np.random.default_rng(seed)
    pick_a = rng.integers(0, len(a), size=(resamples, len(a)))
    pick_b = rng.integers(0, len(b), size=(resamples, len(b)))
    out = {}
    for unit in ("tokens", "words"):
        na, ua, nb, ub = (f[c].to_numpy(float) for f, c in ((a, "nll_sum"), (a, unit), (b, "nll_sum"), (b, unit)))
        estimate = na.sum() / ua.sum() - nb.sum() / ub.sum()
        samples = na[pick_a].sum(1) / ua[pick_a].sum(1) - nb[pick_b].sum(1) / ub[pick_b].sum(1)
        out[unit[:-1]] = percentile_interval(samples, estimate, len(a) + len(b), level)
    return out


def gap_verdict(difference: Interval, name_a: str, name_b: str, unit: str) -> str:
    """One line from an interval of a − b in NLL: the perplexity ratio with its interval, and who is more surprising
    only when the interval excludes 0 (else tied within noise)."""
    ratio = (f"perplexity per {unit} {name_a} / {name_b} = {math.exp(difference.mean):.2f} "
             f"(95 % interval {math.exp(difference.low):.2f} to {math.exp(difference.high):.2f})")
    if not difference.excludes_zero():
        return f"{ratio}: tied within noise"
    higher = name_a if difference.mean > 0 else name_b
    return f"{ratio}: {higher} is more surprising per {unit}"


def centroid_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of the mean vectors of two sets of embeddings."""
    return float(torch.nn.functional.cosine_similarity(a.mean(0), b.mean(0), dim=0))


def domain_separability(a: torch.Tensor, b: torch.Tensor, seed: int = 0, folds: int = 5) -> float:
    """Cross-validated accuracy of a logistic regression telling set a from set b (0.5 = indistinguishable)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x = torch.cat([a, b]).numpy()
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    scores = cross_val_score(LogisticRegression(max_iter=2000, random_state=seed), x, y, cv=folds)
    return float(scores.mean())


def project_2d(vectors: torch.Tensor, seed: int = 0) -> np.ndarray:
    """Project vectors to 2-D with PCA (deterministic, so the picture repeats)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(vectors.numpy())
