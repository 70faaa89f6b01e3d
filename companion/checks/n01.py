"""Exercise checks of notebook 01."""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from ..core.stats import mean_ci
from ..lessons.n01_lm_probability import BigramLM, encode_with_start, perplexity, window_starts
from . import Verdict, check_close, check_equal, exercise, feedback, not_attempted

# Sentences the notebook never scores: a function that only works on the notebook's own sentence fails on them
FRESH_SENTENCES = ("Aspirin lowers the risk of a second heart attack.",
                   "The committee met on Tuesday to discuss the budget for 2024.",
                   "Serum creatinine rose after contrast, so metformin was withheld.")
# The bins of the reversal exercise: perplexity ratio reversed / original
REVERSAL_BINS = {"about 1": (0.0, 2.0), "2 to 5": (2.0, 5.0), "more than 5": (5.0, math.inf)}


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


@torch.no_grad()
def _log_prob_by_loss(model: torch.nn.Module, tokenizer, text: str) -> float:
    """log P(text) from the model's own loss: −(number of predicted tokens) × mean NLL."""
    ids = encode_with_start(tokenizer, text).to(next(model.parameters()).device)
    return -float(model(input_ids=ids, labels=ids).loss) * (ids.shape[1] - 1)


@exercise("01", "log_prob_function")
def check_log_prob_function(fn: Callable | None, model: torch.nn.Module, tokenizer,
                            sentences: Sequence[str] = FRESH_SENTENCES) -> Verdict:
    """Mechanism: the learner's `fn(model, tokenizer, text)` → log P(text) (nats, summed over the tokens after the
    start token), run on sentences the notebook never scores, against −n × the model's own loss."""
    name, hint = "log_prob_function", ("read position t's logits at the column of token t + 1 (drop the last "
                                       "position and the first token), take log_softmax, then sum, not mean")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for text in sentences:
        try:
            got = fn(model, tokenizer, text)
        except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
            return feedback(False, name, f"on {text!r} your function raised {type(err).__name__}: {err}. {hint}")
        if got is None:
            return Verdict(name, "pending", "your function returns None: finish its body, then run the cell "
                                            "again").emit()
        expected = _log_prob_by_loss(model, tokenizer, text)
        value = float(got.detach().cpu()) if torch.is_tensor(got) else float(got)
        if not math.isclose(value, expected, rel_tol=1e-4, abs_tol=1e-3):
            return feedback(False, name, f"on {text!r} you return {value:.4f}, the model's loss gives "
                                         f"{expected:.4f} (= −n × loss). Hint: {hint}")
    return feedback(True, name, hint)


@exercise("01", "reversed_ratio")
def check_reversal_prediction(prediction: str | float | None, ratios: Sequence[float], own: float | None = None
                              ) -> Verdict:
    """Predict-then-measure: how much reversing the word order multiplies the perplexity (a bin of REVERSAL_BINS, or a
    number). The measurement is the geometric mean of the per-sentence ratios with its 95 % t-interval over the
    sentences (which sentences were drawn is its noise); a bin counts when it overlaps the interval, a number when
    the interval holds it."""
    name = "reversed_ratio"
    pending = not_attempted(prediction, name)
    if pending is not None:
        return pending
    ci = mean_ci([math.log(r) for r in ratios])
    low, mean, high = math.exp(ci.low), math.exp(ci.mean), math.exp(ci.high)
    spread = f"from {min(ratios):.1f} to {max(ratios):.1f} over {len(ratios)} sentences"
    measured = (f"geometric mean {mean:.1f}, 95 % interval {low:.1f} to {high:.1f} (per-sentence ratios {spread}"
                + (f"; the notebook's sentence: {own:.1f}" if own is not None else "") + ")")
    if isinstance(prediction, str) and prediction.strip().lower() in REVERSAL_BINS:
        lo, hi = REVERSAL_BINS[prediction.strip().lower()]
        ok = lo < high and low < hi
    elif isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
        ok = low <= float(prediction) <= high
    else:
        return feedback(False, name, f"answer one of {', '.join(map(repr, REVERSAL_BINS))}, or a number")
    explanation = (f"Measured: {measured}. A bag-of-words model would give exactly 1; the neural LM predicts each "
                   "token from the words before it, and reversed, those words are the ones that normally come after: "
                   "it scores word order, not only vocabulary.")
    head = "your prediction holds" if ok else "not what was measured"
    return Verdict(name, "correct" if ok else "not_yet", f"{head} (you said {prediction!r}). {explanation}").emit()
