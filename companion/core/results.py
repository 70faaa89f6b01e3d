"""Result JSON written next to the executed notebook, so sweeps collect numbers without parsing outputs."""
from __future__ import annotations

import json
import math
import os
import uuid
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


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to a uniquely named temp file beside `path`, then rename it into place (never half-written, and
    two writers never share a temp file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def results_path(notebook: str, folder: str | os.PathLike | None = None) -> Path:
    """Where `<notebook>.results.json` goes: `folder`, else $COURSE_RESULTS_DIR, else the working folder."""
    base = Path(folder or os.environ.get(RESULTS_ENV) or ".")
    return base / f"{notebook}.results.json"


def save_results(notebook: str, results: dict[str, Any], folder: str | os.PathLike | None = None) -> Path:
    """Write the results atomically (temp file + rename) and return the path."""
    return write_json_atomic(results_path(notebook, folder), _clean(results))


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read one result JSON."""
    return json.loads(Path(path).read_text())
