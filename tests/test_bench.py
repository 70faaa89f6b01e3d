"""The benchmark scripts' own arithmetic, and the GPU script's CPU fallback (the benchmarks are run by hand)."""
from __future__ import annotations

import math

import pytest

from companion.paths import PROJECT_ROOT


@pytest.mark.parametrize("n,batch,steps", [(1859, 256, 300), (1859, 32, 40), (100, 30, 4), (100, 30, 9), (64, 64, 3)])
def test_samples_seen_counts_short_last_batches(n, batch, steps, script):
    per_epoch = [min(batch, n - i) for i in range(0, n, batch)]  # the batch sizes of one epoch, last one short
    stream = (per_epoch * math.ceil(steps / len(per_epoch)))[:steps]
    assert script("bench/throughput.py").samples_seen(n, batch, steps) == sum(stream)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="on CUDA this would run the whole gpu profile")
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
