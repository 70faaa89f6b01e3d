"""bf16 autocast vs float32 on this CPU: one MiniLM training step (batch 32 × 128 tokens), paired and interleaved.

Two copies of the same classifier train on the same batch, one step each in turn (the order alternates), after a
warm-up step each; CPU time per step (user + system) is the measure that a busy machine disturbs least, wall time
is printed too. Prints the medians, the speed-up and the loss of every step in each precision.

    python bench/precision_step.py --threads 1 --repeats 5
"""
from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import time

PRECISIONS = ("fp32", "bf16")


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(threads: int, repeats: int, batch: int, max_length: int) -> dict:
    """Interleaved steps in both precisions; medians of CPU and wall seconds per step, losses per step."""
    import torch

    import companion as cc
    from companion.core.data import load_medical_abstracts
    from companion.core.models import load_tokenizer

    torch.set_num_threads(threads)
    cc.seed_everything(0)
    texts = load_medical_abstracts()["train"].select(range(batch))
    enc = load_tokenizer("minilm")(list(texts["text"]), truncation=True, max_length=max_length,
                                   padding="max_length", return_tensors="pt")
    labels = torch.tensor(list(texts["label"]))
    base = cc.load_model("minilm", "classifier", num_labels=5)
    models = {p: copy.deepcopy(base).train() for p in PRECISIONS}
    optims = {p: torch.optim.AdamW(models[p].parameters(), lr=5e-5, fused=True) for p in PRECISIONS}
    losses: dict[str, list[float]] = {p: [] for p in PRECISIONS}

    def step(p: str) -> tuple[float, float]:
        cpu, wall = cpu_seconds(), time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=p == "bf16"):
            loss = models[p](input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], labels=labels).loss
        loss.backward()
        optims[p].step()
        optims[p].zero_grad()
        losses[p].append(round(float(loss.detach()), 4))
        return cpu_seconds() - cpu, time.perf_counter() - wall

    for p in PRECISIONS:
        step(p)  # warm-up: kernel selection and first allocations
    times: dict[str, list[tuple[float, float]]] = {p: [] for p in PRECISIONS}
    for r in range(repeats):
        for p in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
            times[p].append(step(p))
    out: dict = {"threads": threads, "repeats": repeats, "batch": batch, "max_length": max_length}
    for p in PRECISIONS:
        cpu = statistics.median(c for c, _ in times[p])
        wall = statistics.median(w for _, w in times[p])
        out[p] = {"cpu_s_per_step": round(cpu, 3), "wall_s_per_step": round(wall, 3),
                  "samples_per_cpu_s": round(batch / cpu, 2), "losses": losses[p]}
    out["bf16_speedup_cpu"] = round(out["fp32"]["cpu_s_per_step"] / out["bf16"]["cpu_s_per_step"], 3)
    out["bf16_speedup_wall"] = round(out["fp32"]["wall_s_per_step"] / out["bf16"]["wall_s_per_step"], 3)
    out["paired_cpu_ratios"] = [round(f[0] / b[0], 3) for f, b in zip(times["fp32"], times["bf16"])]
    return out


def main() -> None:
    """Parse the options, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    print(json.dumps(measure(args.threads, args.repeats, args.batch, args.max_length)))


if __name__ == "__main__":
    main()
