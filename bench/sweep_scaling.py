"""Sweep scaling: the same grid swept with 1 and then 2 local Dask workers (each `companion sweep` in its own
process, into a fresh run folder), wall times and their ratio → bench/results/sweep_scaling.json; and, on
paper, what a grid of 50 runs costs on N workers / N GPUs from measured per-run times.

    .venv/bin/python bench/sweep_scaling.py                     # sweeps/strategies.yaml, 1 then 2 workers
    .venv/bin/python bench/sweep_scaling.py --grid G --workers 1 2 4 --runs-dir /tmp/scaling
    .venv/bin/python bench/sweep_scaling.py --project           # the BENCHMARKS.md paragraph, from the numbers
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sweep_scaling.json"
PER_RUN_CSV = ROOT / "sweeps" / "results" / "strategies-cpu.csv"


def time_sweep(grid: Path, workers: int, rundir: Path) -> dict:
    """Sweep `grid` into the empty folder `rundir` with `workers` local workers; wall time and per-run times."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "companion", "sweep", str(grid), "--jobs", str(workers),
                           "--out", str(rundir)], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    statuses = [json.loads(p.read_text()) for p in sorted(rundir.rglob("status.json"))]
    seconds = [s["seconds"] for s in statuses if s.get("status") == "ok"]
    if done.returncode != 0 or not seconds:
        raise SystemExit(f"the sweep with {workers} worker(s) failed (exit {done.returncode}):\n{done.stdout[-2000:]}"
                         f"\n{done.stderr[-2000:]}")
    return {"workers": workers, "wall_s": round(wall, 1), "runs": len(statuses), "ok": len(seconds),
            "mean_run_s": round(sum(seconds) / len(seconds), 2)}


def measure(grid: Path, workers: list[int], runs_dir: Path) -> dict:
    """Time the grid once per worker count (fresh folders) and the wall-time ratio first / last."""
    rows = []
    for n in workers:
        rundir = runs_dir / f"workers-{n}"
        if rundir.exists():  # every sweep must start empty (a resumed sweep would time nothing)
            raise SystemExit(f"{rundir} exists: pass an empty or new --runs-dir")
        rows.append(time_sweep(grid, n, rundir))
        print(f"{n} worker(s): {rows[-1]['wall_s']} s wall, {rows[-1]['mean_run_s']} s per run", flush=True)
    return {"grid": str(grid.relative_to(ROOT) if grid.is_relative_to(ROOT) else grid), "results": rows,
            "ratio": round(rows[0]["wall_s"] / rows[-1]["wall_s"], 3),
            "ratio_means": f"wall time with {workers[0]} worker(s) / with {workers[-1]}",
            "cpus": len(os.sched_getaffinity(0)), "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(), "date": datetime.now(timezone.utc).date().isoformat()}


def per_run_seconds(path: Path = PER_RUN_CSV) -> list[float]:
    """The measured seconds of every finished run in a committed report.csv (sweeps/results/)."""
    with path.open() as handle:
        return [float(row["seconds"]) for row in csv.DictReader(handle) if row["status"] == "ok" and row["seconds"]]


def _duration(seconds: float) -> str:
    """Seconds as `42 s`, `12.5 min` or `3.2 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def projection(per_run_s: list[float], runs: int = 50, workers: tuple[int, ...] = (1, 2, 4, 8, 16),
               local_ratio: float | None = None, gpu_per_run_s: float | None = None, cores: int = 2) -> str:
    """The paper projection for BENCHMARKS.md: what `runs` runs cost on N workers (and N GPUs), as a paragraph."""
    mean = sum(per_run_s) / len(per_run_s)
    slots = 2  # the sweep ran 2 workers on each 2-core machine: 2 runs at a time, each at `mean` seconds
    costs = ", ".join(f"{n}: {_duration(math.ceil(runs / (slots * n)) * mean)}" for n in workers)
    text = [f"**Projection (on paper).** The {len(per_run_s)} measured runs of the strategy sweep took "
            f"{mean:.1f} s each on average ({min(per_run_s):.1f}–{max(per_run_s):.1f} s), {slots} runs at a time "
            f"on one {cores}-core machine ({slots} workers, as the sweep runs). A grid of {runs} such runs needs "
            f"{_duration(runs * mean)} of worker time; N such machines with {slots} workers each run {slots}N at a "
            f"time, in ceil({runs}/{slots}N) waves, so the wall time is about ceil({runs}/{slots}N) × {mean:.1f} s, "
            f"plus the start of the workers: N = {costs}."]
    if local_ratio is not None:
        text.append(f"On one {cores}-core machine, the wall time with 1 worker divided by that with 2 was "
                    f"{local_ratio:.2f} (measured): there the workers share the same cores, so more workers only "
                    "help where each brings its own.")
    if gpu_per_run_s is None:
        text.append("On GPUs (one worker per GPU, `resources: {gpus: 1}`) the same formula holds with the "
                    "per-run time on a GPU, which is not measured yet.")
    else:
        gpu_costs = ", ".join(f"{n}: {_duration(math.ceil(runs / n) * gpu_per_run_s)}" for n in workers)
        text.append(f"On GPUs (one worker per GPU, `resources: {{gpus: 1}}`), at {gpu_per_run_s:.1f} s per run "
                    f"(measured), N GPUs = {gpu_costs}.")
    return " ".join(text)


def main(argv: list[str] | None = None) -> int:
    """Measure (default) or print the projection paragraph (--project)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=Path, default=ROOT / "sweeps" / "strategies.yaml")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs-dir", type=Path, default=None, help="scratch run folders (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the JSON (default {RESULTS.relative_to(ROOT)})")
    parser.add_argument("--project", action="store_true", help="print the projection paragraph, measure nothing")
    parser.add_argument("--csv", type=Path, default=PER_RUN_CSV, help="per-run seconds for --project")
    args = parser.parse_args(argv)
    if args.project:
        ratio = json.loads(args.out.read_text())["ratio"] if args.out.is_file() else None
        print(projection(per_run_seconds(args.csv), local_ratio=ratio))
        return 0
    with tempfile.TemporaryDirectory(prefix="sweep-scaling-") as scratch:
        result = measure(args.grid.resolve(), args.workers, (args.runs_dir or Path(scratch)).resolve())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ratio {result['ratio']} ({result['ratio_means']}) → {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
