"""Where the project keeps its registry, caches and runs."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = PROJECT_ROOT / "data"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def cache_dir(kind: str) -> Path:
    """A writable cache folder: $COURSE_CACHE_DIR/<kind>, else the project's data/cache/<kind>."""
    base = os.environ.get("COURSE_CACHE_DIR")
    root = Path(base) if base else (DATA_DIR / "cache" if DATA_DIR.is_dir() else Path.home() / ".cache" / "companion")
    path = root / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
