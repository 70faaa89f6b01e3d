"""Training throughput and peak memory: the course loop vs transformers.Trainer vs a bare PyTorch loop.

`trainer` is Trainer's default (random batches); `trainer_grouped` groups similar lengths like the course loop.
Same model (MiniLM classifier), data (medical train split), batch size, sequence length and number of
optimiser steps and precision; each run has its own process (clean peak-memory numbers), one after the other.
`--precisions fp32 bf16 --repeats 3` interleaves the precisions and repeats, and reports medians, the bf16/fp32
speed-up and the mean training loss of each precision (`auto`: what `companion` picks on this machine).

    python bench/throughput.py                       # CPU here: 4 variants, 40 steps, batch 32, 128 tokens
    python bench/throughput.py --variants course trainer --precisions fp32 bf16 --repeats 3 --steps 10
    python bench/throughput.py --steps 300 --batch 256 --out bench/results/gpu_throughput.json   # on a GPU
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("course", "trainer", "trainer_grouped", "bare")
PRECISIONS = ("auto", "fp32", "bf16")


def _data(max_length: int, n: int):
    """Tokenised medical training texts (no padding), a tokenizer and the number of labels."""
    from companion.core.data import load_medical_abstracts
    from companion.core.models import load_tokenizer
    from companion.engine.batches import tokenize_dataset

    ds = load_medical_abstracts()
    tokenizer = load_tokenizer("minilm")
    train = ds["train"].select(range(min(n, len(ds["train"]))))
    return tokenize_dataset(train, tokenizer, max_length), tokenizer


def samples_seen(n: int, batch: int, steps: int) -> int:
    """Examples in the first `steps` batches of repeated epochs over `n` examples (the last batch is short)."""
    per_epoch = math.ceil(n / batch)
    full, rest = divmod(steps, per_epoch)
    return full * n + min(rest * batch, n)


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used: on a busy machine, the work a run cost."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb(device) -> float:
    """CUDA max allocated or the process's peak RSS, in MiB."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, steps: int, batch: int, max_length: int, seed: int, precision: str = "auto",
                threads: int = 0) -> dict:
    """Train `steps` optimiser steps with one implementation; return samples/s (wall and CPU time), mean training
    loss and peak memory. `threads` > 0 sets torch's CPU threads."""
    import torch

    import companion as cc
    from companion.core.device import pick_precision
    from companion.engine.training import TrainConfig, train
    from companion.engine.batches import padding_collator

    if threads > 0:
        torch.set_num_threads(threads)
    cc.seed_everything(seed)
    device = cc.pick_device()
    bf16 = pick_precision(precision, "gpu" if device.type == "cuda" else "cpu", device) == "bf16"
    data, tokenizer = _data(max_length, steps * batch)
    collate = padding_collator(tokenizer)
    model = cc.load_model("minilm", "classifier", num_labels=5)
    samples = samples_seen(len(data), batch, steps)
    if variant == "course":
        epochs = math.ceil(steps / math.ceil(len(data) / batch))  # enough passes over the data for `steps`
        config = TrainConfig(epochs=epochs, batch_size=batch, lr=5e-5, max_steps=steps, patience=None,
                             progress=False, restore_best=False, seed=seed, mixed_precision="bf16" if bf16 else "no")
        cpu_start = cpu_seconds()
        result = train(model, data, data.select(range(8)), collate, config)
        seconds, cpu = result.train_seconds, cpu_seconds() - cpu_start  # cpu: with the 8-example evaluation
        epoch_losses = result.history.query("split == 'validation'")["train_loss"].tolist()
        loss = sum(epoch_losses) / len(epoch_losses)  # one epoch unless `steps` exceeds one pass
    elif variant.startswith("trainer"):
        from transformers import Trainer, TrainingArguments

        args = TrainingArguments(output_dir=os.environ.get("TMPDIR", "/tmp") + "/bench-trainer", max_steps=steps,
                                 per_device_train_batch_size=batch, learning_rate=5e-5, warmup_steps=0.1,
                                 weight_decay=0.01, eval_strategy="no", save_strategy="no", report_to=[],
                                 logging_strategy="no", bf16=bf16, seed=seed, disable_tqdm=True,
                                 dataloader_num_workers=0, use_cpu=device.type == "cpu",
                                 train_sampling_strategy="group_by_length" if variant == "trainer_grouped" else "random")
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate)
        start, cpu_start = time.perf_counter(), cpu_seconds()
        loss = trainer.train().training_loss
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    else:
        from torch.utils.data import DataLoader

        model.to(device).train()
        loader = DataLoader(data, batch_size=batch, shuffle=True, collate_fn=collate)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
        start, cpu_start = time.perf_counter(), cpu_seconds()
        done, total = 0, 0.0
        while done < steps:
            for batch_ in loader:
                batch_ = {k: v.to(device) for k, v in batch_.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = model(**batch_).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                total += float(loss)
                done += 1
                if done >= steps:
                    break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        loss = total / steps
    return {"variant": variant, "precision": "bf16" if bf16 else "fp32", "device": device.type, "bf16": bf16,
            "steps": steps, "batch": batch, "max_length": max_length, "seconds": round(seconds, 2),
            "samples_per_s": round(samples / seconds, 1), "cpu_seconds": round(cpu, 2),
            "samples_per_cpu_s": round(samples / cpu, 2), "train_loss": round(loss, 4),
            "peak_memory_mb": round(_peak_mb(device), 1), "torch_threads": torch.get_num_threads()}


def run_in_process(variant: str, precision: str, args: argparse.Namespace) -> dict:
    """One run in a fresh Python process; a failure becomes a row with its last error line."""
    cmd = [sys.executable, __file__, "--variant", variant, "--precisions", precision, "--steps", str(args.steps),
           "--batch", str(args.batch), "--max-length", str(args.max_length), "--seed", str(args.seed),
           "--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:  # record the failure and go on with the other runs
        return {"variant": variant, "precision": precision, "error": done.stderr.strip().splitlines()[-1:],
                "samples_per_s": None, "peak_memory_mb": None}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> list[dict]:
    """One row per (variant, precision): medians over the repeats, × Trainer at the same precision, × fp32."""
    rows = []
    for key in dict.fromkeys((r["variant"], r["precision"]) for r in runs):
        same = [r for r in runs if (r["variant"], r["precision"]) == key]
        ok = [r for r in same if r.get("samples_per_s")]
        row = dict(ok[0] if ok else same[0])
        if ok:
            for name in ("seconds", "samples_per_s", "cpu_seconds", "samples_per_cpu_s", "train_loss",
                         "peak_memory_mb"):
                row[name] = round(statistics.median(r[name] for r in ok), 4 if name == "train_loss" else 1)
        row["repeats"], row["runs_samples_per_s"] = len(ok), [r["samples_per_s"] for r in same]
        rows.append(row)
    for speed in ("samples_per_s", "samples_per_cpu_s"):
        value = {(r["variant"], r["precision"]): r.get(speed) for r in rows}
        suffix = "" if speed == "samples_per_s" else "_cpu"
        for row in rows:
            trainer, fp32 = value.get(("trainer", row["precision"])), value.get((row["variant"], "fp32"))
            row["vs_trainer" + suffix] = round(row[speed] / trainer, 3) if trainer and row.get(speed) else None
            row["vs_fp32" + suffix] = round(row[speed] / fp32, 3) if fp32 and row.get(speed) else None
    return rows


def main() -> None:
    """Run each variant in a fresh process and print / save a table with the ratios to Trainer."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["auto"],
                        help="auto: bf16 where companion picks it (CUDA, or a CPU with native bf16), else fp32")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (variant, precision), interleaved")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--variant", choices=VARIANTS, help="(internal) run one variant in this process")
    parser.add_argument("--out", default="bench/results/throughput.json")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.batch, args.max_length, args.seed,
                                     args.precisions[0], args.threads)))
        return
    runs = []
    for _ in range(args.repeats):  # interleaved: a busy spell of the machine hits every setting alike
        for variant in args.variants:
            for precision in args.precisions:
                runs.append(run_in_process(variant, precision, args))
                print(runs[-1], flush=True)
    rows = summarise(runs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"{'variant':<16} {'precision':>9} {'samples/s':>10} {'× Trainer':>10} {'× fp32':>7} {'/CPU-s':>7} "
          f"{'× Trainer':>10} {'× fp32':>7} {'loss':>7} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['variant']:<16} {r['precision']:>9} {r['samples_per_s']!s:>10} {r['vs_trainer']!s:>10} "
              f"{r['vs_fp32']!s:>7} {r.get('samples_per_cpu_s')!s:>7} {r['vs_trainer_cpu']!s:>10} "
              f"{r['vs_fp32_cpu']!s:>7} {r.get('train_loss')!s:>7} {r['peak_memory_mb']!s:>9}")


if __name__ == "__main__":
    main()
