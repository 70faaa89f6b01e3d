"""Claims about the fine-tuning strategies, each tested against the strategy sweep (notebook 09).

Two tables: the course's source text's claims, and claims from the literature (LoRA, text initialisation, domain
adaptation). A claim compares two settings on one metric in an expected direction; its verdict comes from the
paired 95 % interval: supported (the interval excludes 0 in the claimed direction), contradicted (it excludes 0
the other way) or not resolved (it includes 0). A claim that holds by construction (a frozen encoder cannot forget)
says so instead of being "supported". Which variant stands for a family ("layered", "prompt tuning") is fixed by a
rule written before the results: the family's variant with the best validation macro-F1 in the rate search (on the
selection seed, never a compared one), as a practitioner would choose it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.stats import Interval, change_over_items_and_seeds, mean_ci, paired_difference
from ..engine.comparison import matched
from ..engine.forgetting import correct_flags, forgetting_change

FAMILIES = {  # the variants a family's representative is chosen from
    "layered": ["freeze k=2", "freeze k=4", "freeze k=6", "discriminative", "gradual", "ulmfit"],
    "prompt tuning": ["prompt_tuning", "prompt_tuning_text", "p_tuning", "prefix_tuning"],
}


@dataclass(frozen=True)
class Claim:
    """'`a` is <direction> than `b` on `metric`' (b None: `a`'s own change, compared with 0). `a`/`b` may name a
    family (FAMILIES), replaced by its representative. `construction`: why it holds without measuring, if it does."""
    text: str
    a: str
    b: str | None
    metric: str
    sign: int  # +1: a − b (or a's value) should be > 0; −1: < 0
    construction: str = ""


SOURCE_CLAIMS = (
    Claim("full fine-tuning takes longer per training step than layered fine-tuning", "full", "layered",
          "seconds_per_step", +1),
    Claim("full fine-tuning takes longer per training step than prompt tuning", "full", "prompt tuning",
          "seconds_per_step", +1),
    Claim("full fine-tuning needs more training memory than prompt tuning", "full", "prompt tuning",
          "memory_added_mb", +1),
    Claim("full fine-tuning loses general ability", "full", None, "forgetting.general_correct", -1),
    Claim("layered fine-tuning keeps more general ability than full fine-tuning", "layered", "full",
          "forgetting.general_correct", +1),
    Claim("prompt tuning keeps the model intact (no general ability lost)", "prompt tuning", None,
          "forgetting.general_correct", +1,
          construction="the encoder is frozen: its features, and the general task read off them, cannot change"),
    Claim("a soft prompt's capacity is limited: prompt tuning scores below full fine-tuning", "prompt tuning", "full",
          "macro_f1", -1),
)
LITERATURE_CLAIMS = (
    Claim("LoRA matches full fine-tuning (Hu et al. 2021)", "lora", "full", "macro_f1", +1),
    Claim("LoRA needs less training memory than full fine-tuning", "lora", "full", "memory_added_mb", -1),
    Claim("initialising a soft prompt from text helps (Lester et al. 2021)", "prompt_tuning_text", "prompt_tuning",
          "macro_f1", +1),
    Claim("adapting the encoder to the domain first improves the task (Gururangan et al. 2020)", "adapted + full",
          "full", "macro_f1", +1),
)


def representatives(rates: pd.DataFrame | None, present: set[str]) -> dict[str, str]:
    """Each family's representative: its variant with the best chosen validation macro-F1 in the rate search (the
    rule, fixed before the results); a family with no searched variant is left out."""
    if rates is None:
        return {}
    chosen = rates[rates["chosen"].astype(str).str.lower().eq("true")].set_index("setting")["val_macro_f1"]
    out = {}
    for family, variants in FAMILIES.items():
        known = [v for v in variants if v in chosen.index and v in present]
        if known:
            out[family] = max(known, key=lambda v: chosen[v])
    return out


def verdict(interval: Interval, sign: int) -> str:
    """supported / contradicted / not resolved, from the interval and the claimed sign."""
    if not interval.excludes_zero():
        return "not resolved (interval includes 0)"
    return "supported" if (interval.mean > 0) == (sign > 0) else "contradicted"


def general_interval(runs: pd.DataFrame, a: str, b: str | None) -> Interval | None:
    """The general-task accuracy change of `a` (b None: after − before) or its difference with `b` on the same
    seeds and sentences, with the one forgetting test's interval (bootstrap over seeds and sentences)."""
    column = "forgetting.general_correct"
    if column not in runs:
        return None
    rows_a = runs[runs["setting"] == a].set_index("seed")
    if b is None:
        before = rows_a["forgetting.general_correct_before"].iloc[0] if len(rows_a) else None
        return None if before is None else forgetting_change(before, rows_a[column].tolist())
    rows_b = runs[runs["setting"] == b].set_index("seed")
    seeds = sorted(set(rows_a.index) & set(rows_b.index))
    if len(seeds) < 2:
        return None
    a_flags = np.array([correct_flags(rows_a.loc[s, column]) for s in seeds], dtype=float)
    b_flags = np.array([correct_flags(rows_b.loc[s, column]) for s in seeds], dtype=float)
    return change_over_items_and_seeds(np.zeros(a_flags.shape[1]), a_flags - b_flags)


def on_log_times(claim: Claim, step_times: pd.DataFrame | None) -> bool:
    """True when the claim is about time per step and the step-time benchmark is there: it is then compared as
    paired log times (ratios)."""
    return claim.metric == "seconds_per_step" and step_times is not None


def measured(runs: pd.DataFrame, claim: Claim, step_times: pd.DataFrame | None, names: dict[str, str]
             ) -> Interval | None:
    """The claim's interval: paired a − b over common seeds (time per step: of the log times over the benchmark's
    rounds, measured in one process, so e^mean is the ratio a/b; forgetting: the one forgetting test), or a's own
    values; None when the numbers are missing."""
    a, b = names.get(claim.a, claim.a), names.get(claim.b, claim.b) if claim.b else None
    if claim.metric == "forgetting.general_correct":
        return general_interval(runs, a, b)
    if on_log_times(claim, step_times):
        table = np.log(matched(step_times, "seconds_per_step", "round"))  # times compare as ratios: paired log times
    elif claim.metric not in runs:
        return None
    else:
        table = matched(runs, claim.metric)
    wanted = [a] + ([b] if b else [])
    if any(name not in table for name in wanted):
        return None
    table = table[wanted].dropna()
    if len(table) < 2:
        return None
    return mean_ci(table[a]) if b is None else paired_difference(table[a], table[b])


def claims_table(runs: pd.DataFrame, claims: tuple[Claim, ...], step_times: pd.DataFrame | None = None,
                 rates: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim the numbers can test: the claim, what was compared (families by their representative),
    the measured interval and the verdict ("true by construction" where it cannot be otherwise)."""
    names = representatives(rates, set(runs["setting"]))
    rows = []
    for claim in claims:
        interval = measured(runs, claim, step_times, names)
        if interval is None:
            continue
        a, b = names.get(claim.a, claim.a), names.get(claim.b, claim.b) if claim.b else None
        metric = f"log {claim.metric}" if on_log_times(claim, step_times) else claim.metric
        rows.append({"claim": claim.text, "metric": metric, "compared": f"{a} − {b}" if b else a,
                     "mean": round(interval.mean, 4), "low": round(interval.low, 4), "high": round(interval.high, 4),
                     "n": interval.n, "verdict": (f"true by construction: {claim.construction}" if claim.construction
                                                  else verdict(interval, claim.sign))})
    return pd.DataFrame(rows, columns=["claim", "metric", "compared", "mean", "low", "high", "n", "verdict"])
