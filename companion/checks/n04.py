"""Exercise checks of notebook 04."""
from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from ..lessons.n04_domain_gap import fertility, oov_rate
from . import Verdict, check_close, check_prediction, exercise


@exercise("04", "fertility")
def check_fertility(answer: float | None, tokenizer, text: str) -> bool:
    """Exercise: tokens per whitespace word of one text."""
    expected = fertility(tokenizer, [text])["tokens_per_word"]
    return check_close(answer, expected, "fertility", "len(tokenizer(text, add_special_tokens=False)['input_ids']) "
                       "divided by len(text.split())", rtol=1e-6)


@exercise("04", "oov_rate")
def check_oov_rate(answer: float | None, domain: Counter, general: Counter) -> bool:
    """Exercise: the share of domain running words never seen in the general corpus."""
    return check_close(answer, oov_rate(domain, general), "oov_rate", "sum the counts of domain words that are not "
                       "keys of the general Counter, divide by sum(domain.values())", rtol=1e-6)


@exercise("04", "perplexity_gap")
def check_perplexity_gap(answer: float | None, domain_nll: float, general_nll: float) -> bool:
    """Exercise: how many times higher the domain perplexity is, from the two mean NLLs."""
    return check_close(answer, math.exp(domain_nll - general_nll), "perplexity_gap", "perplexity = exp(mean NLL), "
                       "so the ratio is exp(domain_nll) / exp(general_nll) = exp(domain_nll - general_nll)", rtol=1e-6)


@exercise("04", "surprise_prediction")
def check_surprise_prediction(prediction: str | None, ppl: pd.DataFrame) -> Verdict:
    """Predict-then-measure: which corpus ('medical' or 'general') has the higher perplexity per *token*."""
    measured = str(ppl["token_ppl"].idxmax())
    med, gen = ppl.loc["medical"], ppl.loc["general"]
    per_word = "medical" if med["word_ppl"] > gen["word_ppl"] else "general"
    fertility = f"A medical word costs {med['tokens_per_word']:.2f} tokens, a general one {gen['tokens_per_word']:.2f}"
    if med["tokens_per_word"] > gen["tokens_per_word"] * 1.05:
        why = (f"{fertility}: once the first pieces of a split word are seen the rest is easy to guess, which pulls "
               "the per-token average down, so compare corpora per word, not per token.")
    else:
        why = f"{fertility}, about the same, so per token and per word tell the same story here."
    explanation = (f"Per token: medical {med['token_ppl']:.1f}, general {gen['token_ppl']:.1f}. Per word: medical "
                   f"{med['word_ppl']:.1f}, general {gen['word_ppl']:.1f} (higher: {per_word}). {why}")
    answer = prediction.strip().lower() if isinstance(prediction, str) else prediction
    return check_prediction(answer, measured, "surprise_prediction", explanation)
