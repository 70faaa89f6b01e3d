"""Your data, one command: `companion decide FILE` runs the rate search, the comparison and notebook 09 on a labelled
file, under the course's protocol (here at smoke, with two settings and two seeds to keep it short)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_collapse import unbalanced_csv

pytestmark = pytest.mark.notebook


def test_decide_builds_notebook_09_for_a_users_file(tmp_path):
    data = unbalanced_csv(tmp_path / "mine.csv", n=120, shares=(0.4, 0.35, 0.25))
    done = subprocess.run([sys.executable, "-m", "companion", "decide", str(data), "--profile", "smoke",
                           "--settings", "full,freeze-k4", "--seeds", "0,1", "--out", str(tmp_path / "decide")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "decide" / "09_choosing_a_strategy.results.json").read_text())
    assert result["data"].endswith("mine.csv") and result["seeds"] == [0, 1]
    assert set(result["table"]) == {"full", "freeze k=4"} and "freeze k=4" in result["paired"]
    rates = (tmp_path / "decide" / "rates.csv").read_text()
    assert "freeze k=4" in rates and "mine.csv" in rates  # each setting's rate, chosen on this data's validation
    assert "the report for" in done.stdout


def test_an_unknown_setting_name_is_one_clear_error_before_any_run(tmp_path):
    from companion.batch.decide import SWEEPS, specialised
    from companion.batch.sweep import load_grid
    from companion.core.errors import CourseError

    grid = load_grid(SWEEPS / "strategies.yaml")
    data = {"data": "x.csv", "text_column": "text", "label_column": "label"}
    with pytest.raises(CourseError, match="unknown setting.*prompt_tuning.*entry names of sweeps/strategies.yaml.*"
                                          "prompt-tuning"):
        specialised(grid, data, "smoke", tmp_path, ["full", "prompt_tuning"], None)
    kept = specialised(grid, data, "smoke", tmp_path, ["full", "prompt-tuning"], None)
    assert [e["name"] for e in kept["notebooks"]] == ["full", "prompt-tuning"]
