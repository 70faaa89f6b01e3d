"""The source text's claims about fine-tuning strategies, each tested against a strategy sweep (notebook 09).

A claim compares two settings on one metric in an expected direction; the verdict comes from the paired 95 %
interval over seeds: supported (the interval excludes 0 in the claimed direction), contradicted (it excludes 0 the
other way) or not resolved (it includes 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..engine.comparison import matched
from ..core.stats import Interval, mean_ci, paired_difference


@dataclass(frozen=True)
class Claim:
    """'`a` is <direction> than `b` on `metric`' (b None: `a`'s own change, compared with 0)."""
    text: str
    a: str
    b: str | None
    metric: str
    sign: int  # +1: a − b (or a's value) should be > 0; −1: < 0


# The claims of the source text, in its words, with the sweep settings and metric that test each.
CLAIMS = (
    Claim("full fine-tuning takes longer per step than freezing the lower layers", "full", "freeze k=4",
          "seconds_per_step", +1),
    Claim("full fine-tuning takes longer per step than prompt tuning", "full", "prompt_tuning_text",
          "seconds_per_step", +1),
    Claim("full fine-tuning needs more training memory than prompt tuning", "full", "prompt_tuning_text",
          "memory_added_mb", +1),
    Claim("full fine-tuning needs more training memory than LoRA", "full", "lora", "memory_added_mb", +1),
    Claim("full fine-tuning loses general ability (general-task accuracy falls)", "full", None,
          "forgetting.general_acc_change", -1),
    Claim("freezing the lower layers keeps more general ability than full fine-tuning", "freeze k=4", "full",
          "forgetting.general_acc", +1),
    Claim("prompt tuning keeps more general ability than full fine-tuning", "prompt_tuning_text", "full",
          "forgetting.general_acc", +1),
    Claim("LoRA keeps more general ability than full fine-tuning", "lora", "full", "forgetting.general_acc", +1),
    Claim("a soft prompt's capacity is limited: prompt tuning scores below full fine-tuning", "prompt_tuning_text",
          "full", "macro_f1", -1),
    Claim("initialising the soft prompt from a task description helps", "prompt_tuning_text", "prompt_tuning",
          "macro_f1", +1),
    Claim("adapting the encoder to the domain first improves the task", "adapted + full", "full", "macro_f1", +1),
)


def verdict(interval: Interval, sign: int) -> str:
    """supported / contradicted / not resolved, from the interval and the claimed sign."""
    if not interval.excludes_zero():
        return "not resolved (interval includes 0)"
    return "supported" if (interval.mean > 0) == (sign > 0) else "contradicted"


def _values(runs: pd.DataFrame, claim: Claim, step_times: pd.DataFrame | None = None) -> Interval | None:
    """The claim's interval: paired a − b over common seeds (time per step: over the benchmark's rounds, measured
    in one process), or a's own values; None when the numbers are missing."""
    if claim.metric == "seconds_per_step" and step_times is not None:
        table = matched(step_times, "seconds_per_step", "round")
    elif claim.metric not in runs:
        return None
    else:
        table = matched(runs, claim.metric)
    names = [claim.a] + ([claim.b] if claim.b else [])
    if any(name not in table for name in names):
        return None
    table = table[names].dropna()
    if len(table) < 2:
        return None
    if claim.b is None:
        return mean_ci(table[claim.a])
    return paired_difference(table[claim.a], table[claim.b])


def source_claims(runs: pd.DataFrame, step_times: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim the sweep can test: the claim, what was compared, the measured interval and the verdict.
    `step_times` (bench/step_time.py: setting, round, seconds_per_step) replaces the sweep's per-run step times,
    which met different machine load."""
    rows = []
    for claim in CLAIMS:
        interval = _values(runs, claim, step_times)
        if interval is None:
            continue
        compared = f"{claim.a} − {claim.b}" if claim.b else claim.a
        rows.append({"claim": claim.text, "metric": claim.metric, "compared": compared,
                     "mean": round(interval.mean, 4), "low": round(interval.low, 4), "high": round(interval.high, 4),
                     "seeds": interval.n, "verdict": verdict(interval, claim.sign)})
    return pd.DataFrame(rows, columns=["claim", "metric", "compared", "mean", "low", "high", "seeds", "verdict"])
