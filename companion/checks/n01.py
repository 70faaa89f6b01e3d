"""Exercise checks of notebook 01."""
from __future__ import annotations

from ..lessons.n01_lm_probability import BigramLM, perplexity, window_starts
from . import check_close, check_equal, exercise


@exercise("01", "perplexity")
def check_perplexity(answer: float | None, log_probs: list[float]) -> bool:
    """Exercise: the perplexity of a sequence from its token log-probabilities."""
    return check_close(answer, perplexity(log_probs), "perplexity", "average the log-probabilities, negate, "
                       "then take exp: math.exp(-sum(log_probs) / len(log_probs))", rtol=1e-3)


@exercise("01", "bigram_prob")
def check_bigram_prob(answer: float | None, bigram: BigramLM, prev: str, word: str) -> bool:
    """Exercise: an add-k smoothed bigram probability computed from the counts."""
    return check_close(answer, bigram.prob(prev, word), "bigram_prob", "(bigram.bigrams[(prev, word)] + k) / "
                       "(bigram.unigrams[prev] + k * len(bigram.vocab))", rtol=1e-6, atol=1e-9)


@exercise("01", "window_count")
def check_window_count(answer: int | None, n_tokens: int, max_length: int, stride: int) -> bool:
    """Exercise: how many forward passes strided perplexity needs for a corpus."""
    return check_equal(answer, len(window_starts(n_tokens, max_length, stride)), "window_count",
                       "windows start at 0, stride, 2·stride, …; the last one is the first whose end "
                       "(start + max_length) reaches n_tokens")
