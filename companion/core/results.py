"""Result JSON written next to the executed notebook, so sweeps collect numbers without parsing outputs."""
from __future__ import annotations

import json
import math
import os
import secrets
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


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write text to a uniquely named temp file beside `path`, then rename it into place: `path` is never
    half-written, and a failed write (a full disk) leaves no temp file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")  # unique: parallel writers
    handle = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the usual permissions (umask applies)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)  # "no space left on device" then says where
        raise
    return path


def write_json_atomic(path: str | os.PathLike, data: Any, default: Any = str) -> Path:
    """Write JSON (indented, keys sorted; `default` turns other values into JSON, None refuses them) atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=default))


def save_results(notebook: str, results: dict[str, Any], folder: str | os.PathLike | None = None) -> Path:
    """Write the results atomically (temp file + rename) and return the path."""
    return write_json_atomic(results_path(notebook, folder), _clean(results), default=None)


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read one result JSON."""
    return json.loads(Path(path).read_text())
