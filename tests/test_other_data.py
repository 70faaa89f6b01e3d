"""The notebooks carry to other data: a small, differently shaped data set (3 classes, short texts) that this test
writes itself runs through notebooks 05-08 and the sweep's unit at the smoke profile, and nothing they print
names a property of the medical data (abstracts, five conditions)."""
from __future__ import annotations

import json
import re

import nbformat
import pandas as pd
import pytest

pytestmark = pytest.mark.notebook

LABELS = ("history", "music", "nature")  # three classes, named like a user's own labels
MEDICAL_WORDS = re.compile(r"\babstracts?\b|medical|neoplasm|cardiovascular|nervous system|digestive|pathological",
                           re.IGNORECASE)


@pytest.fixture(scope="module")
def other_csv(tmp_path_factory):
    """90 short texts (6-10 words) in 3 classes: sentences of three WikiText-2 articles, one class per article."""
    from companion.core.data import load_wikitext2

    articles = [a for a in load_wikitext2(unit="article")["validation"]["text"] if len(a.split(". ")) > 60][:3]
    rows = []
    for label, article in zip(LABELS, articles):
        sentences = [s.split() for s in re.split(r"(?<=[.!?])\s+", article.replace("\n", " "))]
        short = [" ".join(words[:10]) for words in sentences if len(words) >= 6][:30]
        rows += [{"text": text, "label": label} for text in short]
    assert len(rows) == 90, "WikiText-2 should give three articles with 30 usable sentences each"
    path = tmp_path_factory.mktemp("other") / "headlines.csv"
    pd.DataFrame(rows).sample(frac=1.0, random_state=0).to_csv(path, index=False)
    return str(path)


def _printed(executed: str) -> str:
    """Everything the executed notebook's code cells printed or displayed (text only)."""
    nb = nbformat.read(executed, as_version=4)
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts += [str(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
    return "\n".join(parts)


@pytest.mark.parametrize("number", ["06", "07", "08"])
def test_finetuning_notebooks_speak_of_the_data_they_ran_on(smoke_run, other_csv, number):
    result = smoke_run(number, data=other_csv)
    printed = _printed(result["_executed"])
    assert not MEDICAL_WORDS.search(printed), MEDICAL_WORDS.search(printed).group(0)
    if number == "06":
        assert "ln(3)" in printed and "3 classes" in printed
    if number == "08":  # the committed sweep is of other data: 08 says how to get one and skips its tables
        assert result["sweep"] is None and "make decide DATA=" in printed
        assert result["multitask"]["lr_chosen_on_validation"] is False  # a borrowed rate is never called chosen
        assert "NOT chosen on validation" in printed and result["hard_prompts"]["search"]["combinations"] >= 20


def test_domain_adaptation_runs_on_other_data(smoke_run, other_csv):
    result = smoke_run("05", data=other_csv)
    printed = _printed(result["_executed"])
    assert not MEDICAL_WORDS.search(printed), MEDICAL_WORDS.search(printed).group(0)


def test_the_sweep_unit_runs_on_other_data(tmp_path, other_csv):
    from companion.batch.runner import run_notebook
    from companion.core.paths import PROJECT_ROOT

    out = tmp_path / "run"
    run_notebook(PROJECT_ROOT / "sweeps" / "strategy_run.ipynb", out,
                 {"profile": "smoke", "data": other_csv, "strategy": "full"}, progress=False)
    result = json.loads((out / "strategy_run.results.json").read_text())
    assert result["train_size"] > 0 and 0 <= result["macro_f1"] <= 1
    assert len(set(result["test_labels"])) == 3
