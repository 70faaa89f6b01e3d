"""Data-parallel training with accelerate: 2 CPU processes (gloo) give one process's run, with the data split.

bench/train_ddp.py trains MiniLM (full fine-tuning, dropout off) on 64 medical abstracts, global batch 16, 2 epochs:
once alone, once as 2 processes of 8 examples per batch. The same examples make up each optimiser step; the
gradients are averaged across the processes; what differs is float rounding (batches of 8 instead of 16, padded to
their own longest text, 1 thread instead of 2, a gloo all-reduce). Measured on a 2-core CPU: validation loss equal
to all printed digits, classifier weights within 7e-9. A warm-up one step shorter (an off-by-one in the schedule)
moved the validation loss by 8e-3 and the weights by 5e-4: the tolerances below are far from both.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

from companion.core.paths import PROJECT_ROOT

SCRIPT = str(PROJECT_ROOT / "bench" / "train_ddp.py")
LOSS_TOL = 1e-4  # validation and mean training loss (≈1.56)
WEIGHT_TOL = 1e-5  # largest difference of a classifier weight (|w| ≤ 0.1)


def free_port() -> int:
    """A TCP port nobody listens on now (for the processes' rendezvous)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def per_step(examples: list[str], batch: int) -> list[set[str]]:
    """The example ids of each optimiser step, from one process's record of what it trained on."""
    return [set(examples[i:i + batch]) for i in range(0, len(examples), batch)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[dict, dict]:
    """One run alone and one with `accelerate launch` on 2 processes, started together."""
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch has no gloo backend")
    tmp = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("WORLD_SIZE", None)
    one = subprocess.Popen([sys.executable, SCRIPT, "--out", str(tmp / "one.json")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    two = subprocess.Popen([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                            "--main_process_port", str(free_port()), SCRIPT, "--out", str(tmp / "two.json")],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    try:
        for name, proc in (("one process", one), ("two processes", two)):
            output, _ = proc.communicate(timeout=1800)  # generous: a shared, busy machine
            assert proc.returncode == 0, f"{name} failed:\n{output[-3000:]}"
    finally:
        for proc in (one, two):
            if proc.poll() is None:  # timed out: stop it and the processes it started
                os.killpg(proc.pid, signal.SIGKILL)
    return json.loads((tmp / "one.json").read_text()), json.loads((tmp / "two.json").read_text())


@pytest.mark.slow
def test_two_processes_split_the_data(runs):
    one, two = runs
    assert (one["processes"], two["processes"], two["backend"]) == (1, 2, "gloo")
    assert (one["per_process_batch"], two["per_process_batch"]) == (16, 8)
    first, second = (rank["examples"] for rank in two["ranks"])
    per_epoch = one["train_size"] // 2  # each process: half of the examples in every epoch
    assert len(first) == len(second) == 2 * per_epoch  # 2 epochs
    for epoch in range(2):
        mine, theirs = (set(ex[epoch * per_epoch:(epoch + 1) * per_epoch]) for ex in (first, second))
        assert not mine & theirs and len(mine | theirs) == one["train_size"]
    # 8 batches of 8 per epoch, 4 to each process: as many optimiser steps as one process with batches of 16
    assert [rank["batches_per_epoch"] for rank in two["ranks"]] == [4, 4]
    assert one["ranks"][0]["batches_per_epoch"] == 4
    steps = [a | b for a, b in zip(per_step(first, 8), per_step(second, 8))]
    assert steps == per_step(one["ranks"][0]["examples"], 16)  # the same examples make up each step


def test_two_processes_give_the_metrics_of_one(runs):
    one, two = runs
    assert abs(one["validation"]["loss"] - two["validation"]["loss"]) <= LOSS_TOL
    assert abs(one["train_loss"] - two["train_loss"]) <= LOSS_TOL
    assert one["validation"]["macro_f1"] == pytest.approx(two["validation"]["macro_f1"], abs=1e-9)
    gap = max(abs(a - b) for a, b in zip(one["classifier_weight"], two["classifier_weight"]))
    assert gap <= WEIGHT_TOL, f"classifier weights differ by {gap:.2e}"
