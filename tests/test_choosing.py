"""Notebook 09's helpers: intervals over seeds, paired differences, Pareto front, rate choice and a guide that names
a winner only where the interval of the difference excludes 0; the source text's claims judged the same way."""
import pandas as pd
import pytest

import companion as cc
from companion.core.rates import choose_rates
from companion.engine.comparison import load_sweep, paired_against, summarise
from companion.lessons.n09_choosing import decision_guide, pareto_front
from companion.engine.strategies import rate_for
from companion.lessons.n09_claims import LITERATURE_CLAIMS, SOURCE_CLAIMS, claims_table, representatives

SEEDS = (0, 1, 2, 3, 4)
JITTER = (0.010, -0.012, 0.004, -0.006, 0.003)  # shared by all settings: the same seed helps or hurts each alike
LORA_VS_FULL = (0.004, -0.003, 0.002, -0.004, 0.0015)


BEFORE = "1101110111" * 20  # the base encoder's probe answers: 200 sentences, 160 right


def flip(answers: str, lost: int, seed: int) -> str:
    """The probe's answers after tuning: `lost` right answers turned wrong (a seeded choice), or gained if < 0."""
    import random

    right = [i for i, a in enumerate(answers) if a == ("1" if lost >= 0 else "0")]
    chosen = set(random.Random(seed).sample(right, abs(lost)))
    return "".join(("0" if a == "1" else "1") if i in chosen else a for i, a in enumerate(answers))


def _frame() -> pd.DataFrame:
    rows = []
    for setting, f1, trainable, step, general in [("full", 0.70, 22_000_000, 0.30, -0.05),
                                                  ("lora", 0.70, 80_000, 0.25, -0.02),
                                                  ("prompt_tuning_text", 0.30, 10_000, 0.31, 0.0),
                                                  ("freeze k=4", 0.60, 9_000_000, 0.10, -0.01)]:
        for seed, jitter in zip(SEEDS, JITTER):
            noise = LORA_VS_FULL[seed] if setting == "lora" else 0.0  # lora − full: noise around 0
            rows.append({"status": "ok", "strategy": setting.split()[0], "seed": seed,
                         "param.k": 4 if setting.startswith("freeze") else float("nan"),
                         "macro_f1": f1 + jitter + noise,
                         "accuracy": f1 + 0.05, "trainable": trainable, "trainable_pct": trainable / 22e6 * 100,
                         "seconds_per_step": step + 0.001 * seed, "peak_memory_mb": 900,
                         "forgetting.drift": -general, "forgetting.cka": 1 + general,
                         "forgetting.general_acc": 0.8 + general + 0.001 * seed,
                         "forgetting.general_acc_change": general + 0.001 * seed,
                         "forgetting.general_correct_before": BEFORE,
                         "forgetting.general_correct": flip(BEFORE, round(-general * len(BEFORE)), seed)})
    return pd.DataFrame(rows)


@pytest.fixture
def runs(tmp_path):
    path = tmp_path / "report.csv"
    _frame().to_csv(path, index=False)
    return load_sweep(path)


def test_summary_has_intervals_and_front(runs):
    assert set(runs["setting"]) == {"full", "lora", "prompt_tuning_text", "freeze k=4"}
    summary = summarise(runs)
    assert summary.index[0] in ("full", "lora") and summary.loc["full", "macro_f1"] == pytest.approx(0.6998)
    assert summary.loc["full", "seeds"] == 5
    low, high = summary.loc["full", ["macro_f1_low", "macro_f1_high"]]
    assert low < 0.6998 < high and high - low == pytest.approx(2 * 2.776 * pd.Series(JITTER).std() / 5 ** 0.5, rel=1e-3)
    assert pareto_front(summary)[0] == "prompt_tuning_text"


def test_guide_names_winners_only_where_the_interval_excludes_zero(runs):
    summary, paired = summarise(runs), paired_against(runs, "full")
    assert not paired.loc["lora", "excludes_0"] and paired.loc["freeze k=4", "excludes_0"]
    guide = decision_guide(summary, paired, tfidf_f1=0.58, majority_f1=0.10, margin=0.02)
    assert "equivalent within ±0.02: lora" in guide[0] and "worse: freeze k=4 and prompt_tuning_text" in guide[0]
    wide = decision_guide(summary, paired, tfidf_f1=0.58, majority_f1=0.10, margin=0.001)
    assert "tied (the data cannot tell): lora" in wide[0] and "Tied is not equivalent" in wide[-2]
    assert "**lora**" in guide[1]  # fewest trainable among those not worse than full


def test_guide_times_only_the_settings_the_step_benchmark_measured(runs):
    summary, paired = summarise(runs), paired_against(runs, "full")
    summary["seconds_per_step"] = [0.25 if s == "full" else float("nan") for s in summary.index]
    fastest = decision_guide(summary, paired, tfidf_f1=0.58, majority_f1=0.10, margin=0.02)[2]
    assert fastest == "Among them, the fastest training step: **full** (0.250 s per step; not timed: lora)."
    summary["seconds_per_step"] = float("nan")  # nothing timed: no sentence about speed
    assert not any("fastest" in line for line in decision_guide(summary, paired, 0.58, 0.10, margin=0.02))


def test_claims_verdicts_and_representatives(runs):
    rates = pd.DataFrame({"setting": ["freeze k=4", "prompt_tuning_text", "full", "lora"], "lr": 1e-3,
                          "val_macro_f1": [0.6, 0.3, 0.7, 0.7], "chosen": True})
    assert representatives(rates, set(runs["setting"])) == {"layered": "freeze k=4", "prompt tuning": "prompt_tuning_text"}
    claims = claims_table(runs, SOURCE_CLAIMS, rates=rates).set_index("claim")
    per_step = claims.loc["full fine-tuning takes longer per training step than layered fine-tuning"]
    assert per_step["verdict"] == "supported" and per_step["compared"] == "full − freeze k=4"
    assert per_step["mean"] == pytest.approx(0.20, abs=1e-6)
    assert claims.loc["full fine-tuning takes longer per training step than prompt tuning", "verdict"] == "contradicted"
    assert claims.loc["full fine-tuning loses general ability", "verdict"] == "supported"
    intact = claims.loc["prompt tuning keeps the model intact (no general ability lost)", "verdict"]
    assert intact.startswith("true by construction")
    literature = claims_table(runs, LITERATURE_CLAIMS, rates=rates).set_index("claim")
    assert "not resolved" in literature.loc["LoRA matches full fine-tuning (Hu et al. 2021)", "verdict"]
    assert not any("adapting the encoder" in c for c in literature.index)  # no adapted runs here


def test_a_setting_reads_its_rate_chosen_on_its_own_data(tmp_path):
    search = pd.DataFrame({"status": "ok", "setting": ["full"] * 3 + ["lora"] * 3,
                           "lr": [1e-4, 2e-4, 6e-4, 3e-3, 1e-2, 3e-2],
                           "val_macro_f1": [0.5, 0.6, 0.55, 0.4, 0.45, 0.3], "test_scored": False})
    table = choose_rates(search).assign(data="medical_abstracts", profile="cpu")
    path = tmp_path / "rates.csv"
    table.to_csv(path, index=False)
    assert rate_for(path, "lora", "lora", "cpu") == (1e-2, "chosen on validation (rates.csv)")
    assert rate_for(path, "p_tuning", "p_tuning", "cpu")[1].startswith("the default for p_tuning")
    lr, source = rate_for(path, "full", "full", "cpu", data="my.csv")  # another data set: never "chosen on validation"
    assert lr == 2e-4 and "NOT chosen on validation" in source
    assert rate_for(tmp_path / "none.csv", "full", "full", "cpu")[1].startswith("the default")


def test_missing_report_is_a_clear_error(tmp_path):
    with pytest.raises(cc.CourseError, match="make sweep"):
        load_sweep(tmp_path / "none.csv")


def test_per_sentence_strings_keep_their_leading_zeros(tmp_path):
    """A run whose first probe sentences were answered wrongly stores '00…': read as a number it would lose the
    zeros and no longer line up with the probe (the forgetting test would then fail or, worse, shift)."""
    path = tmp_path / "report.csv"
    path.write_text("status,seed,setting,macro_f1,forgetting.general_correct,forgetting.general_correct_before\n"
                    "ok,0,full,0.5,0011,0111\nok,1,full,0.6,1011,0111\n")
    frame = load_sweep(path)
    assert frame["forgetting.general_correct"].tolist() == ["0011", "1011"]
    assert frame["forgetting.general_correct_before"].tolist() == ["0111", "0111"]


def test_settings_with_equal_trainable_counts_are_all_the_cheapest(runs):
    from companion.checks.n09 import check_cheapest_above_tfidf

    summary, paired = summarise(runs), paired_against(runs, "full")
    summary.loc["lora", "trainable"] = summary.loc["full", "trainable"] = summary["trainable"].min()
    assert "fewest trainable parameters: **full and lora**" in decision_guide(summary, paired, 0.58, 0.10)[1]
    summary["macro_f1_low"] = 0.9  # every setting above TF-IDF: the cheapest are the tied ones
    tied = summary.index[summary["trainable"] == summary["trainable"].min()].tolist()
    assert len(tied) >= 2 and all(check_cheapest_above_tfidf(name, summary, 0.58) for name in tied)
    assert not check_cheapest_above_tfidf(next(s for s in summary.index if s not in tied), summary, 0.58)
