"""Companion package of the course "Domain adaptation and fine-tuning strategies for language models"."""
from __future__ import annotations

import os

import warnings

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tqdm.auto falls back to text bars without ipywidgets: that is fine (and renders on GitHub), so no warning
warnings.filterwarnings("ignore", message="IProgress not found")

from .device import device_report, pick_device, pick_dtype, seed_everything  # noqa: E402
from .errors import CourseError, install_notebook_handler  # noqa: E402
from .models import count_parameters, load_model, load_tokenizer  # noqa: E402
from .batch.params import check_values  # noqa: E402
from .profiles import by_profile, resolve_profile, settings, start  # noqa: E402
from .results import save_results  # noqa: E402

__version__ = "0.1.0"
install_notebook_handler()  # in Jupyter, a CourseError shows as one clear line, not a long traceback

__all__ = ["CourseError", "by_profile", "check_values", "count_parameters", "device_report", "load_model",
           "load_tokenizer", "pick_device", "pick_dtype", "resolve_profile", "save_results", "seed_everything",
           "settings", "start"]
