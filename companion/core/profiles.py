"""Run profiles: `smoke` (seconds, for tests), `cpu` (a 2-core laptop, minutes), `gpu` (full data, bf16)."""
from __future__ import annotations

import os
import time
import warnings
from typing import Any

import torch

from .device import describe_precision, pick_device, seed_everything, training_precision
from .errors import CourseError

PROFILES = ("smoke", "cpu", "gpu")
CHOICES = ("auto",) + PROFILES
FORCE_ENV = "COURSE_FORCE_PROFILE"  # the test suite sets it to `smoke` when nbval re-runs stored notebooks


def resolve_profile(profile: str = "auto") -> str:
    """Map `auto` to `gpu` on CUDA, else `cpu`; honour COURSE_FORCE_PROFILE; reject unknown names."""
    forced = os.environ.get(FORCE_ENV)
    if forced:
        profile = forced
    if profile not in CHOICES:
        raise CourseError(f"unknown profile {profile!r}: use one of {', '.join(CHOICES)}")
    if profile == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return profile


def by_profile(profile: str, **values: Any) -> Any:
    """Pick the value for a resolved profile, e.g. by_profile(p, smoke=8, cpu=400, gpu=None)."""
    if profile not in values:
        raise CourseError(f"no setting for profile {profile!r}; given: {', '.join(values)}")
    return values[profile]


def settings(profile: str, table: dict[str, dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """One profile's row of a settings table, with non-None overrides (notebook parameters) applied."""
    row = dict(by_profile(profile, **table))
    for key, value in overrides.items():
        if key not in row:
            raise CourseError(f"unknown setting {key!r}; valid: {', '.join(row)}")
        if value is not None:
            row[key] = value
    return row


# Deprecation notices that transformers raises inside the libraries' own code paths the course calls (peft asks
# a model `is_gradient_checkpointing`): nothing a learner can act on, so a notebook does not show them.
LIBRARY_NOTICES = (r".*`is_gradient_checkpointing` is deprecated",)


def quiet_libraries() -> None:
    """Library logs at error level and known library FutureWarnings off; progress bars stay (live runs show them)."""
    import transformers  # here, not at the top: `import companion` (every command line call) needs no transformers

    transformers.logging.set_verbosity_error()
    for message in LIBRARY_NOTICES:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning, module=r"transformers\.")


def start(profile: str = "auto", seed: int = 0, precision: str = "auto", trains: bool = True
          ) -> tuple[str, torch.device, float]:
    """A notebook's set-up: resolve the profile, seed everything, pick the device and the training precision (and
    print it, when the notebook `trains`), quiet the libraries' warnings, set the plot theme; start a clock."""
    import seaborn as sns  # here: `import companion` (every command line call) needs no plotting stack

    resolved = resolve_profile(profile)
    device = pick_device()
    if trains:
        print("training precision:", describe_precision(training_precision(precision, resolved, device), device))
    quiet_libraries()
    seed_everything(seed)
    sns.set_theme(style="whitegrid")
    return resolved, device, time.perf_counter()
