"""One protocol per profile: what every compared run shares, how the budget adapts to the data's size, and the
sweeps that run it agree with it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from companion.core.errors import CourseError
from companion.engine.protocol import PROTOCOLS, protocol

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"


def test_the_selection_seed_is_never_a_compared_seed():
    for p in PROTOCOLS.values():
        assert p.selection_seed not in p.seeds and len(p.seeds) >= 2
    assert len(PROTOCOLS["cpu"].seeds) >= 5 and len(PROTOCOLS["gpu"].seeds) >= 5


@pytest.fixture(autouse=True)
def unforced(monkeypatch):
    """The test suite forces the smoke profile; these tests read the real profiles' protocols."""
    monkeypatch.delenv("COURSE_FORCE_PROFILE", raising=False)


def test_the_budget_adapts_to_the_data_size():
    cpu = protocol("cpu")
    assert cpu.epochs(400) == cpu.max_epochs  # 25 steps an epoch: the epoch cap holds
    small = cpu.epochs(48)  # 3 steps an epoch: more epochs, to reach min_steps
    assert small * cpu.steps_per_epoch(48) >= cpu.min_steps > cpu.max_epochs * cpu.steps_per_epoch(48)
    assert cpu.eval_every(400) is None and cpu.eval_every(2000) == cpu.eval_steps  # long epochs: scored more often


def test_config_carries_the_protocol():
    cpu = protocol("cpu")
    config = cpu.config(lr=3e-4, seed=2, n_train=400, progress=False)
    assert (config.lr, config.seed, config.batch_size, config.patience, config.class_weights) == (
        3e-4, 2, cpu.batch_size, cpu.patience, cpu.class_weights)
    assert config.epochs == cpu.epochs(400) and config.progress is False


def test_changes_are_named_and_checked():
    assert protocol("cpu", max_length=32, train_size=None).max_length == 32
    assert protocol("cpu", max_length=None).max_length == PROTOCOLS["cpu"].max_length  # None: the protocol's
    with pytest.raises(CourseError, match="unknown protocol setting"):
        protocol("cpu", epochs=3)
    assert "protocol `cpu`" in protocol("cpu").describe()


@pytest.mark.parametrize("name", ["rates.yaml", "lengths-rates.yaml"])
def test_rate_searches_use_the_selection_seed_and_the_protocols_grid(name):
    grid = yaml.safe_load((SWEEPS / name).read_text())
    cpu = PROTOCOLS[grid["params"]["profile"]]
    assert grid["seeds"] == [cpu.selection_seed] and grid["params"]["test"] is False
    assert grid["rates"] == {"factor": cpu.rate_factor, "extensions": cpu.rate_extensions}
    for entry in grid["notebooks"]:
        assert len(entry["grid"]["lr_scale"]) == cpu.rate_candidates


@pytest.mark.parametrize("name", ["strategies.yaml", "lengths.yaml"])
def test_comparisons_score_the_protocols_seeds(name):
    grid = yaml.safe_load((SWEEPS / name).read_text())
    assert grid["seeds"][:3] == list(PROTOCOLS[grid["params"]["profile"]].seeds)[:3]
    assert name != "strategies.yaml" or grid["seeds"] == list(PROTOCOLS["cpu"].seeds)


def _sweep_csv(tmp_path, record: dict, **changed) -> str:
    """A two-run sweep report of the medical data under `record`, with some protocol columns changed."""
    import pandas as pd

    columns = {f"protocol.{k}": changed.get(k, v) for k, v in record.items() if k != "seeds"}
    rows = [{"status": "ok", "macro_f1": 0.5, "strategy": "full", "setting": "full", "seed": s, "profile": "cpu",
             "data": "medical_abstracts", **columns} for s in (0, 1)]
    path = tmp_path / "report.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_a_sweep_counts_only_under_the_same_protocol(tmp_path):
    from companion.engine.comparison import sweep_for

    record = protocol("cpu").record()
    runs, why = sweep_for(_sweep_csv(tmp_path, record), "medical_abstracts", record)
    assert runs is not None and len(runs) == 2 and why == ""
    runs, why = sweep_for(_sweep_csv(tmp_path, record, max_length=32), "medical_abstracts", record)
    assert runs is None and f"max_length: 32 ≠ {record['max_length']}" in why
    runs, why = sweep_for(_sweep_csv(tmp_path, record), "my_file", record)
    assert runs is None and "not a sweep of 'my_file'" in why
    runs, why = sweep_for(tmp_path / "missing.csv", "medical_abstracts", record)
    assert runs is None and "no sweep report" in why
    runs, why = sweep_for(_sweep_csv(tmp_path, record), "medical_abstracts")  # a smoke notebook reading the cpu sweep
    assert runs is not None and why == ""
    runs, why = sweep_for(_sweep_csv(tmp_path, record, truncation="head"), "medical_abstracts")
    assert runs is None and "truncation: head ≠ head+tail" in why


def test_the_length_study_takes_the_protocols_length_from_the_comparison(tmp_path):
    import pandas as pd

    from companion.engine.comparison import length_study

    def runs(settings: list[tuple[str, int, str]], seeds) -> list[dict]:
        return [{"status": "ok", "macro_f1": 0.5 + n / 1000, "strategy": "full", "setting": name, "seed": s,
                 "max_length": n, "truncation": t, "data": "medical_abstracts", "lr": 2e-4} for name, n, t in settings
                for s in seeds]
    study, comparison = tmp_path / "lengths.csv", tmp_path / "strategies.csv"
    pd.DataFrame(runs([("full, 32", 32, "head+tail"), ("full, 64 head", 64, "head")], (0, 1, 2))).to_csv(study)
    pd.DataFrame(runs([("full", 64, "head+tail"), ("lora", 64, "head+tail")], range(5))).to_csv(comparison)
    merged = length_study(study, comparison, "medical_abstracts")
    points = merged.groupby(["max_length", "truncation"])["seed"].apply(sorted).to_dict()
    assert points == {(32, "head+tail"): [0, 1, 2], (64, "head"): [0, 1, 2], (64, "head+tail"): [0, 1, 2]}
    assert set(merged.loc[merged["truncation"].eq("head+tail") & merged["max_length"].eq(64), "setting"]) == {"full"}
    assert length_study(study, comparison, "my_file") is None  # another data set's study is not this one's
    assert length_study(tmp_path / "missing.csv", comparison, "medical_abstracts") is None
    alone = length_study(study, tmp_path / "missing.csv", "medical_abstracts")  # no comparison: the study alone
    assert len(alone) == 6
