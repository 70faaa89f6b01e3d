"""Training throughput and peak memory: the course loop vs transformers.Trainer vs a bare PyTorch loop.

`trainer` is Trainer's default (random batches); `trainer_grouped` groups similar lengths like the course loop.
Same model (MiniLM classifier), data (medical train split), batch size, sequence length and number of
optimiser steps; each variant runs in its own process (clean peak-memory numbers), one after the other.

    python bench/throughput.py                       # CPU here: 3 variants, 40 steps, batch 32, 128 tokens
    python bench/throughput.py --steps 300 --batch 256 --out bench/results/gpu_throughput.json   # on a GPU
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("course", "trainer", "trainer_grouped", "bare")


def _data(max_length: int, n: int):
    """Tokenised medical training texts (no padding), a tokenizer and the number of labels."""
    from companion.data import load_medical_abstracts
    from companion.models import load_tokenizer
    from companion.training import tokenize_dataset

    ds = load_medical_abstracts()
    tokenizer = load_tokenizer("minilm")
    train = ds["train"].select(range(min(n, len(ds["train"]))))
    return tokenize_dataset(train, tokenizer, max_length), tokenizer


def samples_seen(n: int, batch: int, steps: int) -> int:
    """Examples in the first `steps` batches of repeated epochs over `n` examples (the last batch is short)."""
    per_epoch = math.ceil(n / batch)
    full, rest = divmod(steps, per_epoch)
    return full * n + min(rest * batch, n)


def _peak_mb(device) -> float:
    """CUDA max allocated or the process's peak RSS, in MiB."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(variant: str, steps: int, batch: int, max_length: int, seed: int) -> dict:
    """Train `steps` optimiser steps with one implementation; return samples/s and peak memory."""
    import torch

    import companion as cc
    from companion.training import TrainConfig, padding_collator, train

    cc.seed_everything(seed)
    device = cc.pick_device()
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    data, tokenizer = _data(max_length, steps * batch)
    collate = padding_collator(tokenizer)
    model = cc.load_model("minilm", "classifier", num_labels=5)
    samples = samples_seen(len(data), batch, steps)
    if variant == "course":
        epochs = math.ceil(steps / math.ceil(len(data) / batch))  # enough passes over the data for `steps`
        config = TrainConfig(epochs=epochs, batch_size=batch, lr=5e-5, max_steps=steps, patience=None,
                             progress=False, restore_best=False, seed=seed)
        result = train(model, data, data.select(range(8)), collate, config)
        seconds = result.train_seconds
    elif variant.startswith("trainer"):
        from transformers import Trainer, TrainingArguments

        args = TrainingArguments(output_dir=os.environ.get("TMPDIR", "/tmp") + "/bench-trainer", max_steps=steps,
                                 per_device_train_batch_size=batch, learning_rate=5e-5, warmup_steps=0.1,
                                 weight_decay=0.01, eval_strategy="no", save_strategy="no", report_to=[],
                                 logging_strategy="no", bf16=bf16, seed=seed, disable_tqdm=True,
                                 dataloader_num_workers=0, use_cpu=device.type == "cpu",
                                 train_sampling_strategy="group_by_length" if variant == "trainer_grouped" else "random")
        trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    else:
        from torch.utils.data import DataLoader

        model.to(device).train()
        loader = DataLoader(data, batch_size=batch, shuffle=True, collate_fn=collate)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
        start = time.perf_counter()
        done = 0
        while done < steps:
            for batch_ in loader:
                batch_ = {k: v.to(device) for k, v in batch_.items()}
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    loss = model(**batch_).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
                done += 1
                if done >= steps:
                    break
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return {"variant": variant, "device": device.type, "bf16": bf16, "steps": steps, "batch": batch,
            "max_length": max_length, "seconds": round(seconds, 2), "samples_per_s": round(samples / seconds, 1),
            "peak_memory_mb": round(_peak_mb(device), 1), "torch_threads": torch.get_num_threads()}


def main() -> None:
    """Run each variant in a fresh process and print / save a table with the ratios to Trainer."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=VARIANTS, help="(internal) run one variant in this process")
    parser.add_argument("--out", default="bench/results/throughput.json")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.steps, args.batch, args.max_length, args.seed)))
        return
    rows = []
    for variant in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", variant, "--steps", str(args.steps), "--batch",
               str(args.batch), "--max-length", str(args.max_length), "--seed", str(args.seed)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:  # record the failure and go on with the other variants
            rows.append({"variant": variant, "error": done.stderr.strip().splitlines()[-1:], "samples_per_s": None,
                         "peak_memory_mb": None})
        else:
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    trainer = next((r["samples_per_s"] for r in rows if r["variant"] == "trainer"), None)
    for row in rows:
        row["vs_trainer"] = round(row["samples_per_s"] / trainer, 3) if trainer and row["samples_per_s"] else None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"{'variant':<8} {'samples/s':>10} {'× Trainer':>10} {'peak MiB':>9}")
    for row in rows:
        print(f"{row['variant']:<8} {row['samples_per_s']:>10} {row['vs_trainer']:>10} {row['peak_memory_mb']:>9}")


if __name__ == "__main__":
    main()
