"""The benchmark scripts' own arithmetic (the benchmarks themselves are run by hand: see bench/README.md)."""
from __future__ import annotations

import importlib.util
import math

import pytest

from companion.paths import PROJECT_ROOT


def _throughput():
    spec = importlib.util.spec_from_file_location("throughput", PROJECT_ROOT / "bench" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("n,batch,steps", [(1859, 256, 300), (1859, 32, 40), (100, 30, 4), (100, 30, 9), (64, 64, 3)])
def test_samples_seen_counts_short_last_batches(n, batch, steps):
    per_epoch = [min(batch, n - i) for i in range(0, n, batch)]  # the batch sizes of one epoch, last one short
    stream = (per_epoch * math.ceil(steps / len(per_epoch)))[:steps]
    assert _throughput().samples_seen(n, batch, steps) == sum(stream)
