"""A user's unbalanced data never yields a silently collapsed model: class-weighted loss and early stopping that waits
for learning make it train, and a run that cannot train says so in one line and exits non-zero."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from companion.core.paths import PROJECT_ROOT

pytestmark = pytest.mark.notebook
UNIT = PROJECT_ROOT / "sweeps" / "strategy_run.ipynb"
WORDS = {"heart": "cardiac artery ventricle valve pressure rhythm", "tumour": "cancer oncology carcinoma lesion biopsy",
         "liver": "hepatic bowel gastric stomach biliary"}
FILLER = "the patient was seen again after the study and the results were reported to the team".split()


def unbalanced_csv(path: Path, n: int = 150, shares=(0.65, 0.26, 0.09), seed: int = 0) -> Path:
    """A 3-class set, 65 / 26 / 9 %, each text a few words of its class among filler words."""
    rng = random.Random(seed)
    rows = []
    for (label, words), share in zip(WORDS.items(), shares):
        for _ in range(round(n * share)):
            text = rng.sample(FILLER, 8) + rng.sample(words.split(), 2)
            rng.shuffle(text)
            rows.append(f"{' '.join(text)},{label}")
    rng.shuffle(rows)
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def run(tmp_path: Path, name: str, *params: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """`companion run` of the sweep unit on the unbalanced file at smoke (a longer step budget)."""
    data = unbalanced_csv(tmp_path / "unbalanced.csv")
    out = tmp_path / name
    args = [sys.executable, "-m", "companion", "run", str(UNIT), "--out", str(out), "--quiet", "-p", "profile",
            "smoke", "-p", "data", str(data), "-p", "train_size", "100", "-p", "epochs", "12", "-p", "test", "True"]
    done = subprocess.run(args + list(params), capture_output=True, text=True, cwd=tmp_path, timeout=600)
    result = out / "strategy_run.results.json"
    return done, json.loads(result.read_text()) if result.is_file() else None


def test_an_unbalanced_set_trains_with_the_protocols_defaults(tmp_path):
    done, result = run(tmp_path, "default", "-p", "lr", "1e-3")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    check = result["training_checks"][0]
    assert check["trained"] and check["classes_predicted"] >= 2 and check["macro_f1"] > check["majority_macro_f1"]
    assert result["protocol"]["class_weights"] == "balanced"


def test_an_untrainable_run_says_it_collapsed_and_exits_non_zero(tmp_path):
    done, result = run(tmp_path, "tiny-rate", "-p", "lr", "1e-9")
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("collapsed: "))  # one line says so, and how to keep it
    assert "did not train: full" in line and "--accept-collapse" in line
    assert result["training_checks"][0]["trained"] is False
    status = json.loads((tmp_path / "tiny-rate" / "status.json").read_text())
    assert status["status"] == "collapsed" and status["collapsed"]
    accepted, _ = run(tmp_path, "accepted", "-p", "lr", "1e-9", "--accept-collapse")
    assert accepted.returncode == 0 and "ok:" in accepted.stdout
