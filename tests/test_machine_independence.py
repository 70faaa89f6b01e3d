"""The nbval pass cannot depend on the machine: every `# NBVAL_CHECK_OUTPUT` cell must print the same under another
numeric configuration than the one that stored it (scalar kernels instead of AVX2/AVX-512, one thread instead of
several), as it will on a learner's laptop, another CPU or Apple Silicon."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from companion.batch.runner import list_notebooks

ROOT = Path(__file__).resolve().parents[1]
MARK = "# NBVAL_CHECK_OUTPUT"
# Another machine, simulated: ATen's scalar kernels (not AVX2/AVX-512) and a single thread for ATen, OpenMP and BLAS.
OTHER_MACHINE = {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                 "OPENBLAS_NUM_THREADS": "1"}


def nbval(paths: list[Path], extra_env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the project's nbval pass (pyproject's options) over `paths` with `extra_env` in the kernels' environment."""
    env = {**os.environ, "COURSE_FORCE_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", **extra_env}
    return subprocess.run([sys.executable, "-m", "pytest", *map(str, paths), "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


def test_checked_cells_print_the_same_on_another_machine():
    """The guard: the stored notebooks' checked cells, re-run with scalar kernels on one thread, print the same."""
    proc = nbval(list_notebooks(), OTHER_MACHINE)
    assert proc.returncode == 0, "a checked cell prints something machine-dependent:\n" + proc.stdout[-6000:]


def _stored(cell_source: str, folder: Path) -> Path:
    """A one-cell checked notebook, executed here (natively) and stored with its outputs, like a course notebook."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"{MARK}\n{cell_source}")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=300).execute()
    path = folder / "stored.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def stored(tmp_path):
    """Store a checked cell; the fixture notebook lives outside notebooks/ so nbval collects only it."""
    return lambda source: _stored(source, tmp_path)


FRAGILE = """import torch
x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0)) * 1000
print(f"{float(x.sum()):.9e} {float(torch.softmax(x[:4096] / 500, 0).max()):.9e}")  # float32 digits: machine noise"""

ROBUST = """import torch
x = torch.randn(1_000_000, generator=torch.Generator().manual_seed(0)) * 1000
print("float32 sum = float64 sum within 1e-6 relative:", bool(torch.isclose(x.sum().double(), x.double().sum(), rtol=1e-6)))"""


def test_the_guard_fails_on_a_cell_that_prints_float32_noise(stored):
    """A cell printing float32 results to 9 digits (like `6.019e-03`) passes where it was stored, fails the guard."""
    path = stored(FRAGILE)
    assert nbval([path], {}).returncode == 0  # same machine, same configuration: identical
    proc = nbval([path], OTHER_MACHINE)
    assert proc.returncode == 1 and "mismatch" in proc.stdout, proc.stdout[-3000:]


def test_the_guard_passes_a_cell_that_prints_a_tolerance_check(stored):
    """The fix: print a boolean for an equality within a stated tolerance."""
    assert nbval([stored(ROBUST)], OTHER_MACHINE).returncode == 0
