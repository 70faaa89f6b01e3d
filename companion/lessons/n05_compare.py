"""Reading an adaptation with a control (notebook 05): per-sequence losses of several models on the same evaluation
sets, their means with 95 % intervals, paired differences (same block or window, two models) with 95 % intervals,
and the attribution the intervals support: a change specific to the domain, or one that any continued pretraining
gives (format, recovering from instruction tuning, relearning masked-LM prediction)."""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from ..core.errors import CourseError
from ..core.stats import Interval, mean_ci, paired_difference

Losses = dict[str, dict[str, Sequence[float]]]  # model → set → per-sequence losses (the same sequences per set)


def loss_table(losses: Losses) -> pd.DataFrame:
    """One row per (model, set): sequences, mean loss with its 95 % half-width, perplexity exp(mean loss)."""
    rows = []
    for model, sets in losses.items():
        for name, values in sets.items():
            iv = mean_ci(values)
            rows.append({"model": model, "set": name, "sequences": iv.n, "loss": iv.mean, "loss_ci": iv.half_width,
                         "perplexity": math.exp(iv.mean)})
    return pd.DataFrame(rows).set_index(["model", "set"])


def paired_table(losses: Losses, pairs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """One row per (a − b, set): the mean paired difference of the per-sequence losses with its 95 % interval
    (negative: a's loss is lower) and whether the interval excludes 0."""
    rows = []
    for a, b in pairs:
        for name in losses[a]:
            iv = paired_difference(losses[a][name], losses[b][name])
            rows.append({"difference": f"{a} − {b}", "set": name, "sequences": iv.n, "change": iv.mean,
                         "low": iv.low, "high": iv.high, "excludes_0": iv.excludes_zero()})
    return pd.DataFrame(rows).set_index(["difference", "set"])


def interval(table: pd.DataFrame, a: str, b: str, name: str) -> Interval:
    """The paired difference a − b on one set, from a paired_table, as an Interval."""
    try:
        row = table.loc[(f"{a} − {b}", name)]
    except KeyError:
        raise CourseError(f"no paired difference {a} − {b} on {name!r} in the table") from None
    return Interval(float(row["change"]), float(row["low"]), float(row["high"]), int(row["sequences"]))


def direction(iv: Interval) -> str:
    """'lower', 'higher' or 'tied' for a difference of losses, from its interval."""
    return "tied" if not iv.excludes_zero() else ("lower" if iv.mean < 0 else "higher")


def attribution(table: pd.DataFrame, names: tuple[str, str, str] = ("adapted", "control", "base"),
                sets: tuple[str, str] = ("domain", "general"), generic: str = "a generic effect") -> dict:
    """What the intervals support. With a = the model trained on domain text, c = the control trained as long on
    general text, b = the model before: on the domain set, is a − c below 0 (a fall specific to the domain, beyond
    what training on any text gives)? and does c − b fall too (a generic part, named by `generic`)? On the general
    set, did a − b fall (domain text cannot teach general text, so that fall is generic too), and was it as much as
    under general training (a − c tied or lower) or less (a − c higher)?"""
    a, c, b = names
    domain, general = sets
    ivs = {key: interval(table, *pair, name) for key, pair, name in (
        ("domain_specific", (a, c), domain), ("domain_generic", (c, b), domain), ("domain_total", (a, b), domain),
        ("general_total", (a, b), general), ("general_control", (c, b), general), ("general_vs_control", (a, c), general))}
    specific = direction(ivs["domain_specific"]) == "lower"
    generic_part = direction(ivs["domain_generic"]) == "lower"
    total = ivs["domain_total"].mean
    share = min(1.0, ivs["domain_generic"].mean / total) if total < 0 and ivs["domain_generic"].mean < 0 else 0.0
    general_fell = direction(ivs["general_total"]) == "lower"
    general_as_much = general_fell and direction(ivs["general_vs_control"]) in ("tied", "lower")
    if specific and generic_part:
        verdict = (f"both: training on any text lowers the {domain} loss ({generic}: the control's part, {share:.0%} "
                   f"of the fall), and training on {domain} text lowers it further (a domain-specific part)")
    elif specific:
        verdict = f"domain-specific: training on {domain} text lowered the {domain} loss, training on general text did not"
    elif generic_part:
        verdict = f"generic: training on general text lowered the {domain} loss as much ({generic}), not the domain"
    else:
        verdict = f"no effect beyond noise on the {domain} loss"
    return {"intervals": ivs, "domain_specific": specific, "generic_part": generic_part, "generic_share": share,
            "general_fell": general_fell, "general_fell_as_much_as_control": general_as_much, "generic": generic,
            "verdict": verdict}


def attribution_lines(found: dict, labels: dict[str, str], unit: str = "nats") -> list[str]:
    """The attribution as sentences, each with its interval (labels: how to name domain, a, c and b)."""
    ivs, L, generic = found["intervals"], labels, found["generic"]
    domain, a, c, b = L["domain"], L["a"], L["c"], L["b"]
    specific = {"lower": f"training on {domain} text lowered the {domain} loss more than training on general text "
                         f"did: a domain-specific part",
                "higher": f"training on general text lowered the {domain} loss more than training on {domain} text",
                "tied": "tied within noise: no domain-specific part shown"}[direction(ivs["domain_specific"])]
    generic_words = {"lower": f"general text alone lowered the {domain} loss: a generic part ({generic}), "
                              f"{found['generic_share']:.0%} of the fall under {domain} training",
                     "higher": f"general text alone raised the {domain} loss",
                     "tied": f"general text alone did not move the {domain} loss beyond noise"}[
                         direction(ivs["domain_generic"])]
    general = direction(ivs["general_total"])
    if general == "lower":
        versus = ("as much as" if found["general_fell_as_much_as_control"] else "less than")
        general_words = (f"fell: {domain} text cannot teach general English, so this fall is generic ({generic}); "
                         f"{versus} under general training ({c} − {b}: {ivs['general_control']}; {a} − {c}: "
                         f"{ivs['general_vs_control']})")
    elif general == "higher":
        general_words = f"rose: forgetting (under general training: {c} − {b} {ivs['general_control']})"
    else:
        general_words = f"did not change beyond noise (under general training: {c} − {b} {ivs['general_control']})"
    return [f"{a} − {c} on {domain} text: {ivs['domain_specific']} {unit} → {specific}",
            f"{c} − {b} on {domain} text: {ivs['domain_generic']} {unit} → {generic_words}",
            f"{a} − {b} on general text: {ivs['general_total']} {unit} → the general loss {general_words}",
            f"verdict: {found['verdict']}"]
