"""Execute notebooks with papermill into a run folder: executed notebook + its result JSON side by side."""
from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .notebooks import find_notebook, list_notebooks, output_path, select_notebooks
from .params import check_parameters
from ..core.results import RESULTS_ENV, write_json_atomic

__all__ = ["execute_run", "find_notebook", "is_finished", "list_notebooks", "read_status", "run_course",
           "run_notebook", "write_json_atomic"]


def run_notebook(notebook: str | Path, out_dir: str | Path, parameters: dict[str, Any] | None = None,
                 progress: bool = True) -> Path:
    """Validate parameters, then execute the notebook into `out_dir`; return the executed notebook's path."""
    import papermill  # here: slow to import, and the command line reaches this module before any parameter check

    nb = find_notebook(str(notebook))
    parameters = check_parameters(nb, dict(parameters or {}))
    output = output_path(nb, out_dir)  # never the notebook itself, nor a notebook no run wrote
    out_dir = output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(out_dir)  # the kernel inherits it: the result JSON lands beside the notebook
    try:
        papermill.execute_notebook(str(nb), str(output), parameters=parameters, cwd=str(nb.parent),
                                   progress_bar=progress, kernel_name="python3", language="python")
    finally:
        if previous is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = previous
    return output


STATUS_FILE = "status.json"
LOCK_FILE = ".lock"




def read_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The run folder's status.json as a dict, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(run_dir) / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


def is_finished(run_dir: str | Path) -> bool:
    """A run is finished when its status.json says ok and the result JSON it names reads as a JSON object
    (a truncated or unreadable result counts as unfinished, so a sweep redoes that run)."""
    status = read_status(run_dir)
    if not (status and status.get("status") == "ok" and status.get("result")):
        return False
    try:
        return isinstance(json.loads((Path(run_dir) / status["result"]).read_text()), dict)
    except (OSError, ValueError):
        return False


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
    import fcntl  # here: POSIX only, and every other function of this module works without it

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
                progress: bool = False, skip_finished: bool = False) -> dict[str, Any]:
    """Run one notebook into its own folder and record status.json (running → ok / failed); never raises
    for a failing notebook. Parameters are validated first (CourseError, folder untouched). With
    `skip_finished` (sweeps), a run that another process finished is checked under the lock and not rerun."""
    nb = find_notebook(str(notebook))
    given = dict(parameters or {})  # status.json keeps them as given (relative paths as written)
    parameters = check_parameters(nb, given)  # the kernel gets paths resolved against the working folder
    output = output_path(nb, run_dir)  # refuses the notebook itself, or a notebook no run wrote
    run_dir = output.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = _lock(run_dir)
    if lock is None:
        return {"status": "busy", "notebook": nb.stem, "parameters": given,
                "error": f"another process is running {run_dir} (it holds {LOCK_FILE})"}
    try:
        if skip_finished and is_finished(run_dir):  # finished by another process since the sweep listed it
            return {**(read_status(run_dir) or {}), "status": "skipped",
                    "error": "already finished by another process (not rerun)"}
        for stale in (run_dir / STATUS_FILE, run_dir / f"{nb.stem}.results.json", output):
            stale.unlink(missing_ok=True)  # a rerun starts clean: no result of an earlier, unfinished attempt
        status: dict[str, Any] = {"status": "running", "notebook": nb.stem, "notebook_file": nb.name,
                                  "parameters": given, "result": None, "error": None, "started": _now(),
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
    notebooks = select_notebooks(only)
    for nb in notebooks:  # every output is checked before the first notebook starts
        output_path(nb, out_dir)
    rows = []
    for nb in notebooks:
        start = time.perf_counter()
        status = "ok"
        try:
            run_notebook(nb, out_dir, {"profile": profile})
        except Exception as err:  # record and go on: one failing notebook must not hide the others
            status = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        rows.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - start, 1), "status": status})
        print(f"{nb.stem}: {status} ({rows[-1]['seconds']} s)", flush=True)
    return rows
