"""Execute notebooks with papermill into a run folder: executed notebook + its result JSON side by side."""
from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import CourseError
from .params import check_parameters
from .paths import NOTEBOOKS_DIR
from .results import RESULTS_ENV


def list_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course notebooks in order (00_… to 09_…)."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def find_notebook(name: str) -> Path:
    """Resolve '00', '00_setup', '00_setup.ipynb' or a path to a notebook file."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path
    for nb in list_notebooks():
        if nb.stem == name or nb.name == name or nb.stem.split("_")[0] == name:
            return nb
    known = ", ".join(nb.stem for nb in list_notebooks())
    raise CourseError(f"no notebook {name!r}: use a number or a name from {known}, or a path to an .ipynb file")


def run_notebook(notebook: str | Path, out_dir: str | Path, parameters: dict[str, Any] | None = None,
                 progress: bool = True) -> Path:
    """Validate parameters, then execute the notebook into `out_dir`; return the executed notebook's path."""
    import papermill

    nb = find_notebook(str(notebook))
    parameters = check_parameters(nb, dict(parameters or {}))
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / nb.name
    previous = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(out_dir)  # the kernel inherits it: the result JSON lands beside the notebook
    try:
        papermill.execute_notebook(str(nb), str(output), parameters=parameters, cwd=str(nb.parent),
                                   progress_bar=progress, kernel_name="python3")
    finally:
        if previous is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = previous
    return output


STATUS_FILE = "status.json"
LOCK_FILE = ".lock"


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON to a temp file beside `path`, then rename it into place (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The run folder's status.json as a dict, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_finished(run_dir: str | Path) -> bool:
    """A run is finished when its status.json says ok and the result JSON it names exists."""
    status = read_status(run_dir)
    return bool(status and status.get("status") == "ok" and status.get("result")
                and (Path(run_dir) / status["result"]).is_file())


def _now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _error_text(err: BaseException) -> str:
    """One line for status.json: the exception in the notebook (with its cell) or in the runner."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        return f"{ename}: {evalue} (notebook cell In [{getattr(err, 'exec_count', '?')}])"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first[:500]}"


def _lock(run_dir: Path) -> Any:
    """Hold an exclusive lock on the run folder (released when the process ends); None if another holds it."""
    import fcntl

    handle = open(run_dir / LOCK_FILE, "w")  # noqa: SIM115 - kept open for the lock's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except OSError:  # a file system without locks (some network mounts): run unlocked
        pass
    return handle


def execute_run(notebook: str | Path, run_dir: str | Path, parameters: dict[str, Any] | None = None,
                progress: bool = False) -> dict[str, Any]:
    """Run one notebook into its own folder and record status.json (running → ok / failed); never raises
    for a failing notebook. Parameters are validated first (CourseError, folder untouched)."""
    nb = find_notebook(str(notebook))
    parameters = check_parameters(nb, dict(parameters or {}))
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(run_dir)
    if lock is None:
        return {"status": "busy", "notebook": nb.stem, "parameters": parameters,
                "error": f"another process is running {run_dir} (it holds {LOCK_FILE})"}
    try:
        for stale in (run_dir / STATUS_FILE, run_dir / f"{nb.stem}.results.json", run_dir / nb.name):
            stale.unlink(missing_ok=True)  # a rerun starts clean: no result of an earlier, unfinished attempt
        status: dict[str, Any] = {"status": "running", "notebook": nb.stem, "notebook_file": nb.name,
                                  "parameters": parameters, "result": None, "error": None, "started": _now(),
                                  "finished": None, "seconds": None, "host": socket.gethostname()}
        write_json_atomic(run_dir / STATUS_FILE, status)
        start = time.perf_counter()
        try:
            run_notebook(nb, run_dir, parameters, progress=progress)
            result = run_dir / f"{nb.stem}.results.json"
            if result.is_file():
                status.update(status="ok", result=result.name)
            else:
                status.update(status="failed", error=f"the notebook wrote no {result.name} "
                                                      f"(call cc.save_results({nb.stem!r}, {{...}}) at its end)")
        except Exception as err:  # recorded, not raised: one failing run must not stop a sweep
            status.update(status="failed", error=_error_text(err))
        status.update(finished=_now(), seconds=round(time.perf_counter() - start, 2))
        write_json_atomic(run_dir / STATUS_FILE, status)
        return status
    finally:
        lock.close()


def run_course(out_dir: str | Path, profile: str = "cpu", only: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every notebook (or `only` these) in order with one profile; return name, seconds and status each."""
    rows = []
    for nb in list_notebooks():
        if only and nb.stem.split("_")[0] not in only and nb.stem not in only:
            continue
        start = time.perf_counter()
        status = "ok"
        try:
            run_notebook(nb, out_dir, {"profile": profile})
        except Exception as err:  # record and go on: one failing notebook must not hide the others
            status = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        rows.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - start, 1), "status": status})
        print(f"{nb.stem}: {status} ({rows[-1]['seconds']} s)", flush=True)
    return rows
