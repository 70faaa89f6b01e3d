"""Result JSON written next to the executed notebook, so sweeps collect numbers without parsing outputs."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

RESULTS_ENV = "COURSE_RESULTS_DIR"


def _clean(value: Any) -> Any:
    """Make numpy/torch scalars, paths and NaN JSON-friendly."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return value.name
    return value


def results_path(notebook: str, folder: str | os.PathLike | None = None) -> Path:
    """Where `<notebook>.results.json` goes: `folder`, else $COURSE_RESULTS_DIR, else the working folder."""
    base = Path(folder or os.environ.get(RESULTS_ENV) or ".")
    return base / f"{notebook}.results.json"


def save_results(notebook: str, results: dict[str, Any], folder: str | os.PathLike | None = None) -> Path:
    """Write the results atomically (temp file + rename) and return the path."""
    path = results_path(notebook, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_clean(results), indent=2, sort_keys=True))
    os.replace(tmp, path)
    return path


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read one result JSON."""
    return json.loads(Path(path).read_text())
