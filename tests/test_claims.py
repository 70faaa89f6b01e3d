"""Every claim the Markdown of notebooks 05-09 states in words, checked against the numbers the stored notebooks
were run with (notebooks/results/*.results.json, written when the notebooks are stored) and the committed strategy
sweep (sweeps/results/strategies-cpu.csv).

A claim is a phrase that must appear in the notebook's Markdown and a test of the numbers. When a re-run changes
a number so that a sentence no longer holds, the test fails and names the sentence: rewrite it to what was
measured (or make the cell print it from the numbers). `test_a_contradicting_number_fails` shows the mechanism on
copies of the stored numbers.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Callable

import nbformat
import pandas as pd
import pytest

from companion.engine.comparison import load_sweep, pair
from companion.core.paths import NOTEBOOKS_DIR, PROJECT_ROOT

RESULTS = NOTEBOOKS_DIR / "results"
SWEEP = PROJECT_ROOT / "sweeps" / "results" / "strategies-cpu.csv"
STEP_TIMES = PROJECT_ROOT / "sweeps" / "results" / "step-time-cpu.csv"  # bench/step_time.py: one process, rounds
LENGTH_TIMES = PROJECT_ROOT / "sweeps" / "results" / "step-time-lengths-cpu.csv"  # bench/step_time.py --lengths


def load_evidence() -> dict:
    """The stored results of 05-09 (by number) and the sweep's runs under 'sweep'."""
    evidence = {path.name[:2]: json.loads(path.read_text()) for path in RESULTS.glob("0[5-9]_*.results.json")}
    evidence["sweep"] = load_sweep(SWEEP)
    evidence["steps"] = pd.read_csv(STEP_TIMES)
    evidence["length_steps"] = pd.read_csv(LENGTH_TIMES).groupby("max_length")["seconds_per_step"].median()
    evidence["minilm"] = minilm_shares()
    return evidence


def minilm_shares() -> dict[str, float]:
    """Share of MiniLM's parameters in its word-piece table and in one encoder layer (07's structural claims)."""
    from companion.core.models import load_model

    model = load_model("minilm", "encoder")
    total = sum(p.numel() for p in model.parameters())
    return {"word_embeddings": model.embeddings.word_embeddings.weight.numel() / total,
            "layer": sum(p.numel() for p in model.encoder.layer[0].parameters()) / total}


def markdown(number: str) -> str:
    """The Markdown of a stored notebook, as one string with single spaces."""
    path = next(NOTEBOOKS_DIR.glob(f"{number}_*.ipynb"))
    cells = nbformat.read(path, as_version=4).cells
    return " ".join(" ".join(c.source.split()) for c in cells if c.cell_type == "markdown")


def paired(evidence: dict, a: str, b: str, metric: str = "macro_f1"):
    """The paired difference a − b on `metric`: over the sweep's seeds, or for time per step over the step-time
    benchmark's rounds (one process, so the strategies met the same machine load)."""
    if metric == "seconds_per_step":
        return pair(evidence["steps"], a, b, metric, index="round")
    return pair(evidence["sweep"], a, b, metric)


@dataclass(frozen=True)
class StatedClaim:
    """A sentence (or its key phrase) a notebook's Markdown states, and the test of the numbers behind it."""
    notebook: str
    words: str
    holds: Callable[[dict], bool]

    def __str__(self) -> str:
        return f"{self.notebook}: {self.words[:60]}"


def mlm_losses(e: dict) -> list[float]:
    """05's masked-LM losses of the encoder before, after and in the control run, on both evaluation texts."""
    return [v for k, v in e["05"]["mlm"].items() if k.endswith(("_loss_before", "_loss_after", "_loss_control"))]


def step_ratios(e: dict, a: str, b: str) -> pd.Series:
    """Per round of the step-time benchmark, a's time per step divided by b's (same round, same process)."""
    table = e["steps"].pivot_table(index="round", columns="setting", values="seconds_per_step")
    return table[a] / table[b]


def step_ratio(e: dict, a: str, b: str) -> float:
    """Median over the benchmark's rounds of a's time per step divided by b's."""
    return float(step_ratios(e, a, b).median())


def trainable_orders(sweep: pd.DataFrame, settings: list[str]) -> bool:
    """Whether fewer trainable parameters always means a higher mean test macro-F1 among `settings`."""
    means = sweep[sweep["setting"].isin(settings)].groupby("setting")[["trainable", "macro_f1"]].mean()
    return bool(means.sort_values("trainable")["macro_f1"].is_monotonic_decreasing)


CLAIMS = [
    # 05: the masked-LM table beside Gururangan et al.'s (RoBERTa-base: biomedical 1.32 → 0.99, general 1.19 → 1.63)
    StatedClaim("05", "Our absolute losses are much higher", lambda e: min(mlm_losses(e)) > 2 * 1.63),
    StatedClaim("05", "A head that reads the context must beat it clearly",
                lambda e: e["05"]["mlm"]["head_beats_unigram"]),
    # 06: the length study's price panel (one process, round after round)
    StatedClaim("06", "a step's cost grows with the tokens kept",
                lambda e: e["length_steps"].sort_index().is_monotonic_increasing and len(e["length_steps"]) >= 3),
    # 07: the structure and the cache
    StatedClaim("07", "Every epoch then skips k of the 6 layers",
                lambda e: e["07"]["cache_check"]["equal"] and e["07"]["cache_check"]["speedup_per_epoch"] > 1),
    StatedClaim("07", "each encoder layer is 7.8 % of the parameters",
                lambda e: 0.45 < e["minilm"]["word_embeddings"] < 0.55 and abs(e["minilm"]["layer"] - 0.078) < 0.0005),
    # 08: hard prompts like for like with the trained models; the winner's curse
    StatedClaim("08", "on the **whole test split**",
                lambda e: e["08"]["hard_prompts"]["test_texts"] == e["08"]["hard_prompts"]["test_split"]),
    StatedClaim("08", "The number of trained weights alone does not order the methods",
                lambda e: not trainable_orders(e["sweep"], ["full", "lora", "prompt_tuning", "prompt_tuning_text",
                                                            "p_tuning", "prefix_tuning"])),
    StatedClaim("08", "the score falls towards its true value",
                lambda e: e["08"]["hard_prompts"]["winners_curse"]["test_mean"]
                < e["08"]["hard_prompts"]["winners_curse"]["validation_mean"]),
    # 09: the literature paragraph's measured side, and the table's set-up
    StatedClaim("09", "LoRA well under 1 %",
                lambda e: e["sweep"].query("setting == 'lora'")["trainable_pct"].max() < 1),
    StatedClaim("09", "prompt tuning only a few thousand",
                lambda e: e["sweep"].query("setting == 'prompt_tuning'")["trainable"].max() < 20_000),
    StatedClaim("09", "so its step is not much cheaper than full fine-tuning's",
                lambda e: min(step_ratio(e, s, "full") for s in ("prompt_tuning", "prompt_tuning_text", "p_tuning",
                                                                "prefix_tuning")) > 0.5),
    StatedClaim("09", "a frozen lower stack is computed once, so each step only",
                lambda e: step_ratios(e, "freeze k=4", "full").max() < 1),  # cheaper in every round
    StatedClaim("09", "5 seeds", lambda e: e["sweep"].groupby("setting")["seed"].nunique().min() >= 5),
    StatedClaim("09", "more than a thousand in what they train",
                lambda e: e["sweep"]["trainable"].max() / e["sweep"]["trainable"].min() > 1000),
    StatedClaim("09", "gradual unfreezing and ULMFiT are left out of it",
                lambda e: not {"gradual", "ulmfit"} & set(e["steps"]["setting"])
                and {"gradual", "ulmfit"} <= set(e["sweep"]["setting"])),
]


@pytest.fixture(scope="module")
def evidence() -> dict:
    return load_evidence()


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_claim_is_stated_and_holds(claim: StatedClaim, evidence: dict):
    assert claim.words in markdown(claim.notebook), f"notebook {claim.notebook} no longer says {claim.words!r}"
    assert claim.holds(evidence), f"notebook {claim.notebook} says {claim.words!r}, which its numbers contradict"


def test_every_stored_result_is_from_the_cpu_profile(evidence: dict):
    assert {n for n in evidence if n != "sweep"} >= {"05", "06", "07", "08", "09"}
    assert all(evidence[n]["profile"] == "cpu" for n in ("05", "06", "07", "08", "09"))
    assert set(evidence["sweep"]["param.profile"]) == {"cpu"}


def test_a_contradicting_number_fails(evidence: dict):
    """Change one stored number so that a sentence becomes false: its claim must then fail."""
    curse = next(c for c in CLAIMS if c.words == "the score falls towards its true value")
    broken = copy.deepcopy({k: v for k, v in evidence.items() if k not in ("sweep", "steps")})
    broken |= {"sweep": evidence["sweep"], "steps": evidence["steps"]}
    table = broken["08"]["hard_prompts"]["winners_curse"]
    table["test_mean"] = table["validation_mean"] + 0.05  # the chosen templates score higher on test
    assert curse.holds(evidence) and not curse.holds(broken)

    not_cheaper = next(c for c in CLAIMS if c.words.startswith("so its step is not much cheaper"))
    steps = evidence["steps"].copy()
    prompt = steps["setting"] == "prompt_tuning"
    steps.loc[prompt, "seconds_per_step"] = steps.loc[prompt, "seconds_per_step"] / 10  # prompt steps 10× cheaper
    assert not_cheaper.holds(evidence) and not not_cheaper.holds(evidence | {"steps": steps})


def test_a_length_that_costs_less_breaks_the_price_sentence(evidence: dict):
    """06 says a step's cost grows with the tokens kept: a longest length as cheap as the shortest contradicts it."""
    price = next(c for c in CLAIMS if c.words == "a step's cost grows with the tokens kept")
    broken = dict(evidence, length_steps=evidence["length_steps"].copy())
    broken["length_steps"].iloc[-1] = broken["length_steps"].iloc[0]
    assert price.holds(evidence) and not price.holds(broken)
