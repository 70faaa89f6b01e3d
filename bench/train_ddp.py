"""Data-parallel training: one full fine-tuning run on 1 or N processes, with the same global batch.

Under N processes each one takes every N-th batch of the seeded order (accelerate shards the batch sampler) with the
per-process batch `global_batch / N`, and the gradients are averaged across processes (gloo on CPUs, NCCL on GPUs),
so a step sees the same examples as one process with the whole batch. Dropout is off: its random masks are drawn
per process, and without it the runs differ only by float rounding. Rank 0 writes one JSON: validation scores,
the final classifier weights, and per process the batches it trained on and which examples they held.

    python bench/train_ddp.py --out /tmp/ddp1.json                                        # one process
    accelerate launch --multi_gpu --num_processes 2 bench/train_ddp.py --out /tmp/ddp2.json  # 2 CPU processes
    accelerate launch --multi_gpu --num_processes 8 bench/train_ddp.py --out ddp8.json       # 8 GPUs

(`--cpu --num_processes 2` starts only one process unless MPI is set up; `--multi_gpu` starts N processes with
torchrun, and on a machine without a GPU companion's Accelerator joins them into a gloo group on the CPU.)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Callable


def fingerprint(example: dict) -> str:
    """A short, stable id of one tokenised example (its token ids)."""
    return hashlib.sha1(str(list(example["input_ids"])).encode()).hexdigest()[:12]


def recording(collate: Callable, seen: list[str]) -> Callable:
    """The collator, also appending the fingerprint of every example it batches to `seen`."""
    def wrapped(examples: list[dict]):
        seen.extend(fingerprint(example) for example in examples)
        return collate(examples)

    return wrapped


def run(args: argparse.Namespace) -> dict | None:
    """Train once on this process's share; return the gathered record on rank 0 (None elsewhere)."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import gather_object

    import companion as cc
    from companion.core.data import load_medical_abstracts
    from companion.core.errors import CourseError
    from companion.engine.finetune import make_task, new_classifier
    from companion.engine.strategies import prepare_strategy
    from companion.engine.training import TrainConfig, train
    from companion.engine.batches import padding_collator

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.global_batch % world or args.train_size % args.global_batch:
        raise CourseError(f"--global-batch {args.global_batch} must split evenly over {world} processes and divide "
                          f"--train-size {args.train_size}: every process then gets whole, equal batches")
    data = load_medical_abstracts()
    data["validation"] = data["validation"].select(range(args.eval_size))
    data["test"] = data["test"].select(range(2))  # not used here
    task = make_task(data, "minilm", args.max_length, args.train_size, args.seed)
    cc.seed_everything(args.seed)  # the same new head on every process
    model = new_classifier(task)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    prepared = prepare_strategy("full", model)
    config = TrainConfig(epochs=args.epochs, batch_size=args.global_batch // world, lr=args.lr, patience=None,
                         group_by_length=False, restore_best=False, progress=False, seed=args.seed,
                         eval_batch_size=16, mixed_precision="fp32", warmup_ratio=args.warmup_ratio)
    seen: list[str] = []
    result = train(prepared.model, task.data["train"], task.data["validation"],
                   recording(padding_collator(task.tokenizer), seen), config,
                   groups=prepared.groups(config.lr, config.weight_decay))
    state = PartialState()
    train_ids = {fingerprint(example) for example in task.data["train"]}
    mine = [f for f in seen if f in train_ids]  # the validation batches go through the same collator
    last = result.history.query("split == 'validation'").iloc[-1]
    ranks = gather_object([{"rank": state.process_index, "steps": result.steps,
                            "batches_per_epoch": result.steps // result.epochs_run,
                            "train_loss": float(last["train_loss"]), "examples": mine}])
    if not state.is_main_process:
        return None
    head = prepared.model.classifier.weight.detach().double()
    return {"processes": state.num_processes, "backend": state.backend, "global_batch": args.global_batch,
            "per_process_batch": config.batch_size, "train_size": len(task.data["train"]),
            "threads": torch.get_num_threads(),
            "validation": {k: float(last[k]) for k in ("loss", "accuracy", "macro_f1")},
            "train_loss": sum(r["train_loss"] for r in ranks) / len(ranks),
            "classifier_weight": head.flatten().tolist(), "ranks": ranks}


def main() -> None:
    """Parse the options, train, write the JSON on rank 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=64)
    parser.add_argument("--eval-size", type=int, default=32)
    parser.add_argument("--global-batch", type=int, default=16, help="examples per optimiser step, all processes")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup-ratio", type=float, default=0.1, help="share of the steps with a linear warm-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    record = run(args)
    if record is not None:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record))
        print(json.dumps({k: v for k, v in record.items() if k not in ("classifier_weight", "ranks")}))


if __name__ == "__main__":
    main()
