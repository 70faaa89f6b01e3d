"""Exercise checks of notebook 04."""
from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from ..core.stats import Interval
from ..lessons.n04_domain_gap import fertility, gap_verdict, oov_rate
from . import Verdict, check_close, exercise, feedback, not_attempted


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
def check_surprise_prediction(prediction: str | None, ppl: pd.DataFrame, gap: dict[str, Interval]) -> Verdict:
    """Predict-then-measure: which corpus ('medical' or 'general') has the higher perplexity per *token*. `gap` holds
    the medical − general NLL per token and per word with their bootstrap intervals over text blocks: the measurement
    decides only when the interval excludes 0; inside the noise, no prediction is contradicted."""
    name = "surprise_prediction"
    pending = not_attempted(prediction, name)
    if pending is not None:
        return pending
    answer = prediction.strip().lower() if isinstance(prediction, str) else prediction
    if answer not in ("medical", "general"):
        return feedback(False, name, "answer 'medical' or 'general'")
    med, gen = ppl.loc["medical"], ppl.loc["general"]
    per_token, per_word = gap["token"], gap["word"]
    resolved = per_token.excludes_zero()
    measured = ("medical" if per_token.mean > 0 else "general") if resolved else None
    fertility = f"A medical word costs {med['tokens_per_word']:.2f} tokens, a general one {gen['tokens_per_word']:.2f}"
    explanation = (f"Per token: medical {med['token_ppl']:.1f}, general {gen['token_ppl']:.1f}, "
                   f"{gap_verdict(per_token, 'medical', 'general', 'token')}. Per word: medical {med['word_ppl']:.1f}, "
                   f"general {gen['word_ppl']:.1f}, {gap_verdict(per_word, 'medical', 'general', 'word')}. "
                   f"{fertility}: a word's NLL is shared by its tokens, so more tokens per word pull the per-token "
                   "number down; compare corpora per word. The intervals resample blocks of text, so they say how "
                   "much other text of the same kind could move each number.")
    if measured is None:
        head = ("not contradicted: per token the two corpora are tied within noise at this size, so the run cannot "
                "tell which is higher (a larger corpus_tokens can)")
        return Verdict(name, "correct", f"{head} (you said {prediction!r}). {explanation}").emit()
    ok = answer == measured
    head = "your prediction holds" if ok else "not what was measured"
    return Verdict(name, "correct" if ok else "not_yet",
                   f"{head} (you said {prediction!r}, the run measured {measured!r}, its interval excludes a "
                   f"tie). {explanation}").emit()


# Texts the notebook never measures, of very different lengths (an average of per-text ratios is not the corpus's)
FRESH_TEXTS = ("Hyperkalemia was corrected with intravenous calcium gluconate.",
               "The band toured Europe in 1998, playing to sold-out halls in Berlin, Vienna and Prague before "
               "returning home to record their second album, which critics praised for its arrangements.",
               "Echocardiography showed mild mitral regurgitation.",
               "Rain.")


@exercise("04", "tokens_per_word_function")
def check_tokens_per_word_function(fn, tokenizers: list) -> Verdict:
    """Mechanism: the learner's `fn(tokenizer, texts)` → subword tokens per whitespace word of a corpus, run on fresh
    texts with every tokenizer given against `fertility(tokenizer, texts)`."""
    name = "tokens_per_word_function"
    hint = ("count the tokens of every text without special tokens (tokenizer(text, add_special_tokens=False)"
            "['input_ids']) and the whitespace words (text.split()); divide the two totals, not an average of "
            "per-text ratios")
    pending = not_attempted(fn, name)
    if pending is not None:
        return pending
    for tokenizer in tokenizers:
        for texts in (list(FRESH_TEXTS), list(FRESH_TEXTS[:1])):
            expected = fertility(tokenizer, texts)["tokens_per_word"]
            try:
                got = fn(tokenizer, texts)
            except Exception as err:  # noqa: BLE001 - the learner's code: any error is a "not yet" with its message
                return feedback(False, name, f"your function raised {type(err).__name__}: {err}. {hint}")
            if got is None:
                return Verdict(name, "pending", "your function returns None: finish its body, then run the cell "
                                                "again").emit()
            if not math.isclose(float(got), expected, rel_tol=1e-9):
                return feedback(False, name, f"with the {type(tokenizer).__name__} on {len(texts)} fresh text(s) you "
                                             f"return {float(got):.4f}, fertility() gives {expected:.4f}. {hint}")
    return feedback(True, name, hint)
