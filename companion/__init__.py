"""Companion package of the course "Domain adaptation and fine-tuning strategies for language models".

Five parts, one folder each; imports only run down (checks → lessons → engine → core, and batch → core):

- `companion.core`: what every part shares: errors, paths, device and precision, profiles, models, data,
  statistics, results, learning-rate choice, the artifact cache;
- `companion.engine`: the one training loop (`training.train`), the experimental protocol, the strategies as one
  table (`strategies.STRATEGIES`), a strategy run (`finetune.run_strategy`), metrics, forgetting;
- `companion.lessons`: one module per notebook topic, named after its notebook (`n01_lm_probability`, …,
  `n09_choosing`): what a notebook teaches and then reuses;
- `companion.checks`: the exercise checks, one module per notebook (`checks.n06`), and their machinery;
- `companion.batch`: papermill runs, parameter checks, Dask sweeps, reports, the classroom, the command line.

The names below are what a notebook's set-up cells use (`import companion as cc`).
"""
from __future__ import annotations

import os

import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tqdm.auto falls back to text bars without ipywidgets: that is fine (and renders on GitHub), so no warning
warnings.filterwarnings("ignore", message="IProgress not found")

from .core.device import device_report, pick_device, pick_dtype, seed_everything  # noqa: E402
from .core.errors import CourseError, install_notebook_handler  # noqa: E402
from .core.models import count_parameters, load_model, load_tokenizer  # noqa: E402
from .batch.params import check_values  # noqa: E402
from .core.profiles import by_profile, resolve_profile, settings, start  # noqa: E402
from .core.results import save_results  # noqa: E402
from .engine.metrics import training_check  # noqa: E402
from .engine.protocol import protocol  # noqa: E402

__version__ = "0.1.0"
install_notebook_handler()  # in Jupyter, a CourseError shows as one clear line, not a long traceback

__all__ = ["CourseError", "by_profile", "check_values", "count_parameters", "device_report", "load_model",
           "load_tokenizer", "pick_device", "pick_dtype", "protocol", "resolve_profile", "save_results",
           "seed_everything", "settings", "start", "training_check"]
