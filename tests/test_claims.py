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


def load_evidence() -> dict:
    """The stored results of 05-09 (by number) and the sweep's runs under 'sweep'."""
    evidence = {path.name[:2]: json.loads(path.read_text()) for path in RESULTS.glob("0[5-9]_*.results.json")}
    evidence["sweep"] = load_sweep(SWEEP)
    evidence["steps"] = pd.read_csv(STEP_TIMES)
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
class Claim:
    """A sentence (or its key phrase) a notebook's Markdown states, and the test of the numbers behind it."""
    notebook: str
    words: str
    holds: Callable[[dict], bool]

    def __str__(self) -> str:
        return f"{self.notebook}: {self.words[:60]}"


CLAIMS = [
    # 05: the masked-LM table beside Gururangan et al.'s (RoBERTa-base: biomedical 1.32 → 0.99, general 1.19 → 1.63)
    Claim("05", "Our absolute losses are much higher",
          lambda e: min(e["05"]["mlm"][f"{s}_loss_{t}"] for s in ("medical", "general") for t in ("before", "after"))
          > 2 * 1.63),
    Claim("05", "the reloaded model gives the same perplexity", lambda e: e["05"]["reload_matches"]),
    # 06: the overfitting experiment and its moral
    Claim("06", "validation loss turns up while training loss falls",
          lambda e: e["06"]["overfitting"]["best_val_loss_epoch"] < e["06"]["settings"]["small_epochs"]),
    Claim("06", "more data is the real cure",
          lambda e: e["06"]["test"]["macro_f1"] > e["06"]["overfitting"]["test_macro_f1"]),
    Claim("06", "the companion's `train` is the same loop", lambda e: e["06"]["loop_equivalence"]["equal"]),
    # 07: the structure, the cache, the step time
    Claim("07", "the cached run equals the ordinary one", lambda e: e["07"]["cache_check"]["equal"]),
    Claim("07", "Every epoch then skips k of the 6 layers",
          lambda e: e["07"]["comparison"]["full (k=0)"]["seconds_per_step"]
          > e["07"]["comparison"][f"freeze k={e['07']['freeze_check']['k']}"]["seconds_per_step"]),
    Claim("07", "Half of MiniLM's parameters are the word-piece table; each encoder layer is ~8 %",
          lambda e: 0.45 < e["minilm"]["word_embeddings"] < 0.55 and 0.075 < e["minilm"]["layer"] < 0.085),
    # 08: hard prompts like for like with the trained models
    Claim("08", "on the **whole test split**",
          lambda e: e["08"]["hard_prompts"]["test_texts"] == e["08"]["hard_prompts"]["test_split"]),
    Claim("08", "Every soft-prompt run must predict more than one class and beat the majority class",
          lambda e: not e["08"]["did_not_train"]),
    # 09: the literature paragraph's measured side, and the table's set-up
    Claim("09", "LoRA well under 1 %", lambda e: e["sweep"].query("setting == 'lora'")["trainable_pct"].max() < 1),
    Claim("09", "prompt tuning from a task description only a few thousand",
          lambda e: e["sweep"].query("setting == 'prompt_tuning_text'")["trainable"].max() < 20_000),
    Claim("09", "on a CPU its step is not cheaper than full fine-tuning's",
          lambda e: paired(e, "prompt_tuning_text", "full", "seconds_per_step").high > 0),
    Claim("09", "a frozen lower stack is computed once, so each step only runs the layers above it",
          lambda e: paired(e, "freeze k=4", "full", "seconds_per_step").high < 0),
    Claim("09", "the same three candidates (1/3, 1 and 3 × its default)",
          lambda e: e["09"]["rate_candidates"] == 3),
    Claim("09", "5 seeds", lambda e: e["sweep"].groupby("setting")["seed"].nunique().min() >= 5),
]


@pytest.fixture(scope="module")
def evidence() -> dict:
    return load_evidence()


@pytest.mark.parametrize("claim", CLAIMS, ids=str)
def test_claim_is_stated_and_holds(claim: Claim, evidence: dict):
    assert claim.words in markdown(claim.notebook), f"notebook {claim.notebook} no longer says {claim.words!r}"
    assert claim.holds(evidence), f"notebook {claim.notebook} says {claim.words!r}, which its numbers contradict"


def test_every_stored_result_is_from_the_cpu_profile(evidence: dict):
    assert {n for n in evidence if n != "sweep"} >= {"05", "06", "07", "08", "09"}
    assert all(evidence[n]["profile"] == "cpu" for n in ("05", "06", "07", "08", "09"))
    assert set(evidence["sweep"]["param.profile"]) == {"cpu"}


def test_a_contradicting_number_fails(evidence: dict):
    """Change one stored number so that a sentence becomes false: its claim must then fail."""
    cure = next(c for c in CLAIMS if c.words == "more data is the real cure")
    broken = copy.deepcopy({k: v for k, v in evidence.items() if k != "sweep"})
    broken["sweep"] = evidence["sweep"]
    broken["06"]["overfitting"]["test_macro_f1"] = broken["06"]["test"]["macro_f1"] + 0.05
    assert cure.holds(evidence) and not cure.holds(broken)

    not_cheaper = next(c for c in CLAIMS if c.words.startswith("on a CPU its step"))
    steps = evidence["steps"].copy()
    prompt = steps["setting"] == "prompt_tuning_text"
    steps.loc[prompt, "seconds_per_step"] = steps.loc[prompt, "seconds_per_step"] / 10  # prompt steps 10× cheaper
    assert not_cheaper.holds(evidence) and not not_cheaper.holds(evidence | {"steps": steps})
