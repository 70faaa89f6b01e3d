"""Device, dtype, training precision and reproducibility: the same calls on CPU, Apple MPS and CUDA."""
from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from .errors import CourseError

PRECISIONS = ("auto", "fp32", "bf16")  # `precision` of a notebook / TrainConfig ("no" is accepted for fp32)
PRECISION_ENV = "COURSE_PRECISION"  # overrides `auto` for a whole run, e.g. COURSE_PRECISION=fp32
# CPU features with which bf16 autocast trains faster than float32 (BENCHMARKS.md, "Precision on the CPU"): AMX
# (Intel Xeon, 1.70×) and AVX512-BF16 (AMD EPYC, 2.1× less CPU time per MiniLM step); AVX2-only CPUs emulate bf16
# and are slower with it.
FAST_CPU_BF16 = ("amx_bf16", "avx512_bf16")


def pick_device(prefer: str = "auto") -> torch.device:
    """Return CUDA if available, else Apple MPS, else CPU (or the device named by `prefer`)."""
    if prefer != "auto":
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on CUDA cards that support it, float32 everywhere else."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def cpu_bf16_features(cpuinfo: str | None = None) -> list[str]:
    """The CPU's native bfloat16 features (`amx_bf16`, `avx512_bf16`) that oneDNN can use; [] if none or unknown."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")  # Linux; elsewhere the features are unknown and float32 is kept
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
        if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return []
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return [name for name in ("amx_bf16", "avx512_bf16") if name in flags]


def cpu_bf16_native(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has a bfloat16 feature of FAST_CPU_BF16 (then `auto` trains in bf16 autocast)."""
    return any(name in FAST_CPU_BF16 for name in cpu_bf16_features(cpuinfo))


def pick_precision(precision: str = "auto", profile: str = "cpu", device: torch.device | None = None) -> str:
    """`bf16` or `fp32`: the one asked for, else (auto) bf16 on CUDA cards and CPUs with native bf16, fp32 elsewhere
    and under the smoke profile (the tests then print the same numbers on every machine)."""
    if precision == "no":
        precision = "fp32"
    if precision not in PRECISIONS:
        raise CourseError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    device = device or pick_device()
    if profile == "smoke":
        return "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_bf16_native() else "fp32"


def training_precision(precision: str = "auto", profile: str = "cpu", device: torch.device | None = None) -> str:
    """The precision a run at `profile` trains in: `precision` if explicit, else COURSE_PRECISION if set, else the
    device's choice (pick_precision)."""
    if precision == "auto":
        precision = os.environ.get(PRECISION_ENV) or "auto"
    return pick_precision(precision, profile, device)


def default_precision() -> str:
    """What `auto` means where no profile says more (library use, unit tests): COURSE_PRECISION if set, else bf16 on
    a CUDA card that has it, else fp32 (every CPU)."""
    if os.environ.get(PRECISION_ENV):
        return pick_precision(os.environ[PRECISION_ENV])
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def autocast(precision: str, device: torch.device):
    """A context in which matrix products run in bf16 when `precision` is bf16 (torch.autocast), else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def describe_precision(precision: str, device: torch.device | None = None) -> str:
    """One line for a notebook: the training precision and why, e.g. `bf16 autocast (CPU with amx_bf16)`."""
    device = device or pick_device()
    if precision == "fp32":
        return "fp32 (float32)"
    where = "CUDA" if device.type == "cuda" else f"CPU with {', '.join(cpu_bf16_features()) or 'no native bf16'}"
    return f"bf16 autocast ({where})"


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed python, numpy and torch; on CPU this makes runs repeat exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def device_report(device: torch.device | None = None) -> dict:
    """Versions and hardware in one dict (for notebook 00 and the result JSON)."""
    import transformers, datasets, peft, accelerate  # noqa: E401 - report only

    device = device or pick_device()
    info = {
        "device": device.type,
        "dtype": str(pick_dtype(device)).replace("torch.", ""),
        "training_precision": describe_precision(default_precision(), device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "peft": peft.__version__,
        "accelerate": accelerate.__version__,
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info
