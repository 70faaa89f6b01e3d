"""The benchmark scripts' own arithmetic, and the GPU script's CPU fallback (the benchmarks are run by hand)."""
from __future__ import annotations

import math

import pytest

from companion.core.paths import PROJECT_ROOT


@pytest.mark.parametrize("n,batch,steps", [(1859, 256, 300), (1859, 32, 40), (100, 30, 4), (100, 30, 9), (64, 64, 3)])
def test_samples_seen_counts_short_last_batches(n, batch, steps, script):
    per_epoch = [min(batch, n - i) for i in range(0, n, batch)]  # the batch sizes of one epoch, last one short
    stream = (per_epoch * math.ceil(steps / len(per_epoch)))[:steps]
    assert script("bench/throughput.py").samples_seen(n, batch, steps) == sum(stream)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="on CUDA this would run the whole gpu profile")
@pytest.mark.kernel
def test_gpu_script_falls_back_to_the_cpu_and_writes_one_file(tmp_path):
    """bench/gpu.sh without CUDA: says so, runs both parts with small settings, leaves bench/results alone."""
    import json
    import os
    import subprocess
    import sys

    committed = {p.name: p.read_bytes() for p in (PROJECT_ROOT / "bench" / "results").glob("*.json")}
    env = {**os.environ, "PY": sys.executable, "STEPS": "2", "BATCH": "4", "ONLY": "00 02",
           "RESULTS": str(tmp_path / "results"), "RUNS": str(tmp_path / "runs")}
    done = subprocess.run(["bash", str(PROJECT_ROOT / "bench" / "gpu.sh")], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no CUDA device: falling back to the CPU" in done.stdout
    out = json.loads((tmp_path / "results" / "gpu.json").read_text())
    assert out["profile"] == "smoke"
    assert [r["variant"] for r in out["throughput"]] == ["course", "trainer", "trainer_grouped", "bare"]
    assert all(r["samples_per_s"] > 0 and r["steps"] == 2 and r["batch"] == 4 for r in out["throughput"])
    assert out["course"]["exit_status"] == 0
    assert [(r["notebook"][:2], r["status"]) for r in out["course"]["notebooks"]] == [("00", "ok"), ("02", "ok")]
    assert {p.name: p.read_bytes() for p in (PROJECT_ROOT / "bench" / "results").glob("*.json")} == committed


def test_throughput_summary_pairs_precisions_and_trainer(script):
    """Medians over interleaved repeats; × Trainer at the same precision; × fp32 for the same variant."""
    def run(variant, precision, speed, cpu):
        return {"variant": variant, "precision": precision, "seconds": 10.0, "samples_per_s": speed,
                "cpu_seconds": 20.0, "samples_per_cpu_s": cpu, "train_loss": 1.5, "peak_memory_mb": 100.0}

    runs = [run("course", "fp32", 10, 5), run("course", "bf16", 21, 10), run("trainer", "fp32", 8, 4),
            run("trainer", "bf16", 16, 8), run("course", "fp32", 12, 5), run("course", "bf16", 18, 11),
            run("trainer", "fp32", 9, 4), run("trainer", "bf16", 14, 8), run("course", "fp32", 11, 6),
            run("course", "bf16", 20, 10), run("trainer", "fp32", 10, 4), run("trainer", "bf16", 15, 8)]
    rows = {(r["variant"], r["precision"]): r for r in script("bench/throughput.py").summarise(runs)}
    assert rows["course", "bf16"]["samples_per_s"] == 20 and rows["course", "bf16"]["repeats"] == 3
    assert rows["course", "bf16"]["runs_samples_per_s"] == [21, 18, 20]
    assert rows["course", "bf16"]["vs_trainer"] == round(20 / 15, 3)  # Trainer in bf16, not in fp32
    assert rows["course", "fp32"]["vs_trainer"] == round(11 / 9, 3)
    assert rows["course", "bf16"]["vs_fp32"] == round(20 / 11, 3) and rows["trainer", "bf16"]["vs_fp32"] == 1.667
    assert rows["course", "bf16"]["vs_fp32_cpu"] == 2.0 and rows["trainer", "fp32"]["vs_trainer_cpu"] == 1.0


def test_precision_parity_interval(script):
    """The paired difference's t-interval: mean ± t(0.975, n−1)·s/√n, checked against scipy's own interval."""
    from scipy import stats

    parity = script("bench/precision_parity.py")
    rows = [{"seed": s, "precision": p, "macro_f1": f, "train_seconds": t, "cpu_seconds": 2 * t}
            for s, (a, b) in enumerate([(0.50, 0.52), (0.60, 0.58), (0.55, 0.56)])
            for p, f, t in (("fp32", a, 10.0), ("bf16", b, 5.0))]
    out = parity.summary(rows)
    diffs = [0.02, -0.02, 0.01]
    low, high = stats.t.interval(0.95, 2, loc=sum(diffs) / 3, scale=stats.sem(diffs))
    assert out["difference"]["bf16_minus_fp32"] == round(sum(diffs) / 3, 4)
    assert out["difference"]["ci95"] == round((high - low) / 2, 4) and out["difference"]["zero_inside"]
    assert out["bf16_speedup_wall"] == 2.0 and out["bf16_speedup_cpu"] == 2.0


def test_the_imbalanced_set_is_real_abstracts_at_65_26_9_and_never_overwrites(tmp_path, script):
    """`bench/class_weights.py --data-only` writes the imbalanced set issue 26's note reports 06 on, and leaves an
    existing file alone."""
    import subprocess
    import sys

    import pandas as pd

    path = script("bench/class_weights.py").imbalanced_set(tmp_path / "imbalanced.csv")
    shares = pd.read_csv(path)["label"].value_counts(normalize=True).round(2).tolist()
    assert shares == [0.65, 0.26, 0.09] and len(pd.read_csv(path)) == 960
    before = path.read_bytes()
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "bench" / "class_weights.py"), "--data-only", str(path)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "exists" in done.stderr and path.read_bytes() == before
