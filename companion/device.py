"""Device, dtype and reproducibility: the same calls on CPU, Apple MPS and CUDA."""
from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


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
