"""Quality parity of bf16 autocast and float32: the full strategy on the medical task, N seeds in each precision.

For every seed both precisions train from the same new head on the same batches, so the paired difference
(bf16 − fp32) of test macro-F1 is what precision changes. Prints the mean ± 95 % t-interval of each precision and
of the paired difference, and the speed of each (wall and CPU time: on a busy machine CPU time is the fairer).

    python bench/precision_parity.py                          # 5 seeds, 400 examples, 3 epochs, 32 tokens
    python bench/precision_parity.py --seeds 3 --train-size 100 --threads 1 --out bench/results/precision_parity.json
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
from pathlib import Path

PRECISIONS = ("fp32", "bf16")


def interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided t-interval (half-width nan for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return mean, half


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_all(args: argparse.Namespace) -> list[dict]:
    """Train the full strategy for every (seed, precision); one row each with test macro-F1 and the costs."""
    from companion.core.data import load_medical_abstracts
    from companion.engine.finetune import make_task, run_strategy
    from companion.engine.training import TrainConfig

    task = make_task(load_medical_abstracts(), "minilm", args.max_length, args.train_size, seed=0)
    rows = []
    for seed in range(args.seeds):
        for precision in PRECISIONS:
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, patience=None, seed=seed,
                                 progress=False, mixed_precision=precision)
            start = cpu_seconds()
            row = run_strategy("full", task, config)
            rows.append({"seed": seed, "precision": precision, "macro_f1": row["macro_f1"],
                         "accuracy": row["accuracy"], "train_seconds": round(row["train_seconds"], 2),
                         "cpu_seconds": round(cpu_seconds() - start, 2),
                         "samples_per_s": round(row["samples_per_s"], 1)})
            print(rows[-1], flush=True)
    return rows


def summary(rows: list[dict]) -> dict:
    """Mean ± 95 % interval per precision and of the paired difference; wall and CPU time ratios."""
    by = {p: sorted((r for r in rows if r["precision"] == p), key=lambda r: r["seed"]) for p in PRECISIONS}
    out = {}
    for p in PRECISIONS:
        mean, half = interval([r["macro_f1"] for r in by[p]])
        out[p] = {"macro_f1": round(mean, 4), "ci95": round(half, 4),
                  "train_seconds": round(statistics.median(r["train_seconds"] for r in by[p]), 2),
                  "cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in by[p]), 2)}
    diffs = [b["macro_f1"] - f["macro_f1"] for f, b in zip(by["fp32"], by["bf16"])]
    mean, half = interval(diffs)
    out["difference"] = {"bf16_minus_fp32": round(mean, 4), "ci95": round(half, 4), "per_seed": diffs,
                         "zero_inside": bool(abs(mean) <= half) if not math.isnan(half) else None}
    out["bf16_speedup_wall"] = round(out["fp32"]["train_seconds"] / out["bf16"]["train_seconds"], 3)
    out["bf16_speedup_cpu"] = round(out["fp32"]["cpu_seconds"] / out["bf16"]["cpu_seconds"], 3)
    return out


def main() -> None:
    """Parse the options, run, print and (with --out) save the rows and the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", help="a JSON file for the rows and the summary")
    args = parser.parse_args()
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    rows = run_all(args)
    result = summary(rows)
    for p in PRECISIONS:
        print(f"{p}: test macro-F1 {result[p]['macro_f1']:.4f} ± {result[p]['ci95']:.4f} (95 %, {args.seeds} seeds)")
    d = result["difference"]
    print(f"bf16 − fp32 (paired): {d['bf16_minus_fp32']:+.4f} ± {d['ci95']:.4f}; 0 inside the interval: "
          f"{d['zero_inside']}")
    print(f"bf16 speed-up: wall {result['bf16_speedup_wall']}×, CPU time {result['bf16_speedup_cpu']}×")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"settings": vars(args), "rows": rows, "summary": result}, indent=2))


if __name__ == "__main__":
    main()
