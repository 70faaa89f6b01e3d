"""Layered fine-tuning with k = 0…6 frozen layers, with and without the frozen-layer feature cache.

For each k: seconds per training epoch (the cache's one-off build time reported separately and amortised over
the epochs), and the speed-up against full fine-tuning (k = 0, no cache).

    python bench/cache_speedup.py                    # CPU: 2 epochs on 600 training examples, 64 tokens
    python bench/cache_speedup.py --train-size 0 --max-length 128 --epochs 3   # all training data
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    """Run the k sweep twice (cache on / off) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=600, help="0: the whole training split")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ks", type=int, nargs="*", default=[0, 1, 2, 3, 4, 5, 6])
    parser.add_argument("--out", default="bench/results/cache_speedup.json")
    args = parser.parse_args()

    from companion.core.data import load_medical_abstracts
    from companion.engine.finetune import make_task, run_strategy
    from companion.engine.training import TrainConfig

    task = make_task(load_medical_abstracts(), "minilm", args.max_length, args.train_size or None, seed=0)
    config = TrainConfig(epochs=args.epochs, lr=1e-4, patience=None, seed=0, progress=False)
    rows = []
    for k in args.ks:
        for cached in (False, True):
            if k == 0 and cached:
                continue  # nothing frozen: nothing to cache
            r = run_strategy("freeze", task, config, use_cache=cached, k=k)
            rows.append({"k": k, "cached": cached, "seconds_per_epoch": round(r["seconds_per_epoch"], 2),
                         "cache_seconds": round(r["cache_seconds"], 2), "epochs": r["epochs_run"],
                         "trainable": r["trainable"], "val_macro_f1": round(r["val_macro_f1"], 4),
                         "test_macro_f1": round(r["macro_f1"], 4)})
            print(rows[-1], flush=True)
    full = rows[0]["seconds_per_epoch"]
    for row in rows:
        row["speedup_per_epoch"] = round(full / row["seconds_per_epoch"], 2)
        with_cache = row["seconds_per_epoch"] + row["cache_seconds"] / max(1, row["epochs"])
        row["speedup_amortised"] = round(full / with_cache, 2)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"{'k':>2} {'cache':>5} {'s/epoch':>8} {'speed-up':>8} {'amortised':>9} {'trainable':>10} {'val F1':>7}")
    for r in rows:
        print(f"{r['k']:>2} {str(r['cached']):>5} {r['seconds_per_epoch']:>8} {r['speedup_per_epoch']:>8} "
              f"{r['speedup_amortised']:>9} {r['trainable']:>10,} {r['val_macro_f1']:>7}")


if __name__ == "__main__":
    main()
