"""bench/sweep_scaling.py: times one grid with 1 and 2 local Dask workers into a JSON (here at a tiny size), and
formats the paper projection of a 50-run grid from per-run seconds."""
import json
from pathlib import Path

import pytest

TINY = (Path(__file__).parent / "assets" / "tiny.ipynb").resolve()


@pytest.mark.kernel
def test_scaling_bench_writes_both_wall_times_and_their_ratio(tmp_path, script):
    bench = script("bench/sweep_scaling.py")
    grid = tmp_path / "tiny.yaml"
    grid.write_text(f"params: {{profile: smoke, sleep: 0}}\nnotebooks:\n  - notebook: {TINY}\n"
                    "    grid: {x: [1.0, 2.0]}\n")
    out = tmp_path / "sweep_scaling.json"
    assert bench.main(["--grid", str(grid), "--runs-dir", str(tmp_path / "runs"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["workers"] for r in result["results"]] == [1, 2]
    assert all(r["runs"] == r["ok"] == 2 and r["wall_s"] > r["mean_run_s"] > 0 for r in result["results"])
    walls = [r["wall_s"] for r in result["results"]]
    assert abs(result["ratio"] - walls[0] / walls[1]) < 1e-2 and result["cpus"] >= 1
    with pytest.raises(SystemExit, match="exists: pass an empty or new --runs-dir"):  # never times a resume
        bench.main(["--grid", str(grid), "--runs-dir", str(tmp_path / "runs"), "--out", str(out)])


def test_projection_paragraph_from_numbers(script):
    bench = script("bench/sweep_scaling.py")
    text = bench.projection([30.0, 40.0], runs=50, workers=(1, 2, 16), local_ratio=1.23)
    assert "The 2 measured runs of the strategy sweep took 35.0 s each on average (30.0–40.0 s), 2 runs" in text
    assert "needs 29.2 min of worker time" in text  # 50 × 35 s
    assert "N = 1: 14.6 min, 2: 7.6 min, 16: 70 s." in text  # ceil(50/2N) waves × 35 s (2 workers per machine)
    assert "divided by that with 2 was 1.23 (measured)" in text and "not measured yet" in text
    gpu = bench.projection([30.0], runs=10, workers=(5,), gpu_per_run_s=6.0)
    assert "at 6.0 s per run (measured), N GPUs = 5: 12 s." in gpu


def test_projection_reads_the_committed_per_run_seconds(script):
    bench = script("bench/sweep_scaling.py")
    seconds = bench.per_run_seconds()
    import pandas as pd

    from companion.core.paths import PROJECT_ROOT

    committed = pd.read_csv(PROJECT_ROOT / "sweeps" / "results" / "strategies-cpu.csv")
    assert len(seconds) == int((committed["status"] == "ok").sum()) and all(s > 0 for s in seconds)
