"""Seconds per training step of each strategy of the sweep, measured in ONE process, interleaved over rounds.

A sweep's runs meet different machine load, so their step times are not comparable; here every setting trains
the same steps on the same batches under the `cpu` protocol (companion.engine.protocol: training sample, length,
truncation, batch size, precision) one after the other, round after round, and the times are compared within a
round (paired). Evaluation and the frozen-layer feature cache are not counted. Notebook 09 reads the CSV for every
claim about time per step.

    .venv/bin/python bench/step_time.py                      # → sweeps/results/step-time-cpu.csv
    .venv/bin/python bench/step_time.py --rounds 3 --steps 10 --out /tmp/steps.csv
    .venv/bin/python bench/step_time.py --settings "freeze k=4" lora prompt_tuning   # only these, and full
    .venv/bin/python bench/step_time.py --lengths 32 64 128 256   # full fine-tuning at each length (the length study)
                                                                  # → sweeps/results/step-time-lengths-cpu.csv
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"full": ("full", {}), "freeze k=2": ("freeze", {"k": 2}), "freeze k=4": ("freeze", {"k": 4}),
            "freeze k=6": ("freeze", {"k": 6}), "discriminative": ("discriminative", {}), "lora": ("lora", {}),
            "prompt_tuning": ("prompt_tuning", {}),
            "prompt_tuning_text": ("prompt_tuning_text", {}), "p_tuning": ("p_tuning", {}),
            "prefix_tuning": ("prefix_tuning", {})}


def _start(profile: str):
    """Seed the run and load the medical abstracts (the data every step time is measured on)."""
    import companion as cc
    from companion.core.data import load_text_classification
    cc.start(profile, 0)
    return load_text_classification("medical_abstracts")


def _time_steps(strategy: str, task, protocol, round_: int, steps: int, **options) -> dict:
    """Train `steps` optimiser steps of `strategy` on `task` under `protocol` (validation only) and return its row."""
    from companion.engine.finetune import run_strategy
    config = protocol.config(1e-4, round_, len(task.data["train"]), epochs=None, max_steps=steps, patience=None,
                             progress=False)
    return run_strategy(strategy, task, config, None, test=False, **options)


def measure(rounds: int, steps: int, profile: str = "cpu", settings: list[str] | None = None) -> pd.DataFrame:
    """One row per (round, setting): seconds per optimiser step, the mean over `steps` steps. Gradual unfreezing
    (and ULMFiT) are left out: their step grows epoch by epoch as layers thaw, so a few steps do not represent it."""
    import companion as cc
    from companion.engine.finetune import task_for
    data = _start(profile)
    protocol = cc.protocol(profile)
    task = task_for(data, "minilm", protocol, 0)
    rows = []
    for round_ in range(rounds):
        for name, (strategy, options) in SETTINGS.items():
            if settings and name not in settings:
                continue
            began = time.perf_counter()
            row = _time_steps(strategy, task, protocol, round_, steps, **options)
            rows.append({"round": round_, "setting": name, "seconds_per_step": row["seconds_per_step"],
                         "steps": row["steps"], "cache_seconds": row["cache_seconds"],
                         "wall_seconds": time.perf_counter() - began})
            print(f"round {round_} {name}: {row['seconds_per_step']:.3f} s/step", flush=True)
    return pd.DataFrame(rows)


def measure_lengths(rounds: int, steps: int, lengths: list[int], profile: str = "cpu") -> pd.DataFrame:
    """One row per (round, length): seconds per full fine-tuning step with `length` tokens kept (the protocol's
    truncation), every length on the same sample, one after the other, round after round (the length study's times)."""
    import companion as cc
    from companion.engine.finetune import task_for
    data = _start(profile)
    protocols = {n: cc.protocol(profile, max_length=n) for n in lengths}
    tasks = {n: task_for(data, "minilm", protocols[n], 0) for n in lengths}
    rows = []
    for round_ in range(rounds):
        for n in lengths:
            row = _time_steps("full", tasks[n], protocols[n], round_, steps)
            rows.append({"round": round_, "max_length": n, "truncation": protocols[n].truncation,
                         "seconds_per_step": row["seconds_per_step"], "steps": row["steps"]})
            print(f"round {round_} {n} tokens: {row['seconds_per_step']:.3f} s/step", flush=True)
    return pd.DataFrame(rows)


def _write(table: pd.DataFrame, out: str, key: str, reference, label: str) -> None:
    """Write `table` to `out` and print each median step time as a multiple of the `reference` row's."""
    table.to_csv(out, index=False)
    median = table.groupby(key)["seconds_per_step"].median()
    print((median / median[reference]).round(2).rename(label).to_string())
    print(f"written: {out}")


def main() -> None:
    """Parse the options, measure, write the CSV and print medians and ratios to full fine-tuning."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--profile", default="cpu", help="the protocol whose budget the steps use")
    parser.add_argument("--out", help="the CSV to write (default: sweeps/results/step-time[-lengths]-<profile>.csv)")
    parser.add_argument("--settings", nargs="*", choices=list(SETTINGS), help="only these (default: all; full always)")
    parser.add_argument("--lengths", nargs="+", type=int, help="full fine-tuning at these lengths instead")
    args = parser.parse_args()
    results = ROOT / "sweeps" / "results"
    if args.lengths:
        lengths = sorted(set(args.lengths))
        _write(measure_lengths(args.rounds, args.steps, lengths, args.profile),
               args.out or str(results / f"step-time-lengths-{args.profile}.csv"), "max_length", lengths[0],
               "× the shortest length's step")
        return
    chosen = sorted(set(args.settings) | {"full"}) if args.settings else None
    _write(measure(args.rounds, args.steps, args.profile, chosen),
           args.out or str(results / f"step-time-{args.profile}.csv"), "setting", "full", "× full fine-tuning's step")


if __name__ == "__main__":
    main()
