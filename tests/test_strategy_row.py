"""A new strategy is one row: a `Strategy` added to (a copy of) `companion.engine.strategies.STRATEGIES`, with its
prepare function, is prepared, checked, given its rates and trained with no other edit; the strategy sweep's
`one of:` list (sweeps/strategy_run) is the table's names, in the table's order (CONTRIBUTING shows the example)."""
from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest
import torch
from datasets import DatasetDict
from torch import nn

from companion import CourseError, count_parameters, load_model
from companion.batch.params import check_parameters, declared_parameters
from companion.engine import strategies
from companion.engine.finetune import make_task, run_strategy
from companion.engine.layered import Prepared
from companion.engine.strategies import STRATEGIES, Strategy, check_strategy, default_rate, prepare_strategy
from companion.engine.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SWEEP_SOURCE = ROOT / "sweeps" / "strategy_run.py"


def prepare_bitfit(model: nn.Module) -> Prepared:
    """BitFit (Ben Zaken et al. 2022): only the biases train, and the new classification head."""
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.endswith(".bias") or name.startswith("classifier.")
    return Prepared(model)


BITFIT = Strategy(prepare_bitfit, lr=1e-3, small_budget_lr=1e-2, description="only the biases (and the head) train")


@pytest.fixture
def with_bitfit(monkeypatch):
    """The strategy table plus one row, for this test only (the package's table is left as it is)."""
    monkeypatch.setattr(strategies, "STRATEGIES", {**STRATEGIES, "bitfit": BITFIT})
    return strategies.STRATEGIES


def test_one_row_is_a_strategy(with_bitfit):
    assert "bitfit" in with_bitfit and "bitfit" not in STRATEGIES
    check_strategy("bitfit")
    check_strategy("bitfit", {"k": 3, "r": 4})  # the sweep sets every strategy's options; others ignore them
    assert default_rate("bitfit", "cpu") == default_rate("bitfit", "smoke") == 1e-2
    assert default_rate("bitfit", "gpu") == 1e-3
    model = load_model("minilm", "classifier", num_labels=5)
    prepared = prepare_strategy("bitfit", model, k=3, r=4)
    trainable = {name for name, p in prepared.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith(".bias") or n.startswith("classifier.") for n in trainable)
    biases = sum(p.numel() for n, p in model.named_parameters() if n.endswith(".bias") and not n.startswith("classifier."))
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith("classifier."))
    assert count_parameters(prepared.model)["trainable"] == biases + head
    with pytest.raises(CourseError, match=r"unknown strategy 'bitfits': use one of full, .*lora, bitfit"):
        check_strategy("bitfits")


def test_the_new_row_trains_through_the_one_loop(with_bitfit, medical):
    small = DatasetDict({"train": medical["train"].select(range(16)), "validation": medical["validation"].select(range(8)),
                         "test": medical["test"].select(range(8))})
    task = make_task(small, "minilm", max_length=16)
    row = run_strategy("bitfit", task, TrainConfig(epochs=1, batch_size=8, lr=default_rate("bitfit", "smoke"),
                                                   progress=False, seed=0))
    assert row["strategy"] == "bitfit" and 0 < row["trainable"] < row["total"] / 100  # biases: well under 1 %
    assert torch.isfinite(torch.tensor(row["history"][-1]["loss"]))


def declared_in_source(tmp_path: Path, name: str) -> dict:
    """A parameter of sweeps/strategy_run.py's `parameters` cell, read as `companion run`/`sweep` read it."""
    notebook = tmp_path / "strategy_run.ipynb"
    nbformat.write(jupytext.read(SWEEP_SOURCE), notebook)
    return declared_parameters(notebook)[name]


def test_the_strategy_sweep_offers_exactly_the_table(tmp_path):
    """`strategy`'s `# one of: …` in sweeps/strategy_run.py lists the table's names in its order: a new row must be
    added there too (and the stored notebook rebuilt: tests/test_notebook_sources.py), or this test names it."""
    choices = declared_in_source(tmp_path, "strategy")["choices"]
    assert choices == list(STRATEGIES), (f"sweeps/strategy_run.py's strategy `one of:` list {choices} differs from "
                                         f"STRATEGIES {list(STRATEGIES)}: write `# one of: {', '.join(STRATEGIES)}`")


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_the_stored_sweep_notebook_accepts_every_strategy(name):
    stored = ROOT / "sweeps" / "strategy_run.ipynb"
    assert check_parameters(stored, {"strategy": name, "profile": "smoke"})["strategy"] == name


def test_the_stored_sweep_notebook_refuses_a_name_outside_the_table():
    with pytest.raises(CourseError, match="strategy='bitfit' is not one of"):
        check_parameters(ROOT / "sweeps" / "strategy_run.ipynb", {"strategy": "bitfit"})
