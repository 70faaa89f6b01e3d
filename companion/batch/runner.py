"""Execute notebooks with papermill into a run folder: executed notebook + its result JSON side by side."""
from __future__ import annotations

import errno
import json
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from .notebooks import find_notebook, list_notebooks, read_marks, run_outputs, select_notebooks
from .params import RUN_OPTIONS, check_device, check_parameters, option_environment
from ..core.errors import CourseError
from ..core.results import RESULTS_ENV, write_json_atomic, write_text_atomic

__all__ = ["execute_run", "find_notebook", "is_finished", "is_stale", "list_notebooks", "read_status", "run_course",
           "run_notebook", "write_json_atomic"]

STATUS_FILE = "status.json"
LOCK_FILE = ".lock"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (the kernel inherits them) for the duration of a run, then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


_ATOMIC: list[Any] = []  # the papermill I/O handler registered by _atomic_saves (once per process)


def _atomic_saves() -> None:
    """Make papermill save executed notebooks at absolute paths atomically (temp file + rename): a full disk or a
    kill mid-save leaves the last whole save, never a truncated notebook; reads stay papermill's own."""
    if _ATOMIC:
        return
    from papermill.iorw import LocalHandler, papermill_io

    class AtomicLocalHandler(LocalHandler):
        """papermill's local file I/O whose writes go through write_text_atomic."""

        def write(self, buf: str, path: str) -> None:
            """Save the notebook text atomically."""
            write_text_atomic(path, buf)

    _ATOMIC.append(AtomicLocalHandler())
    papermill_io.register("/", _ATOMIC[0])  # papermill picks a handler by path prefix: every absolute path


def _children() -> set[int]:
    """The process ids of this process's descendants (a notebook's kernel among them)."""
    import psutil

    return {child.pid for child in psutil.Process().children(recursive=True)}


def _stop_processes(pids: set[int]) -> None:
    """Terminate these processes (a run's kernel after Ctrl-C), and kill those still alive after 3 s."""
    import psutil

    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
            procs[-1].terminate()
        except psutil.Error:
            pass
    for proc in psutil.wait_procs(procs, timeout=3)[1]:
        try:
            proc.kill()
        except psutil.Error:
            pass


def mark_outputs(folder: Path, stem: str, names: list[str]) -> None:
    """Record in the run folder's marks that a run of `stem` writes these files (so a later run may replace them)."""
    from .notebooks import MARKS_FILE

    marks = read_marks(folder)
    if any(marks.get(name) != stem for name in names):
        write_json_atomic(folder / MARKS_FILE, {"files": {**marks, **{name: stem for name in names}}})


def kernel_options() -> dict[str, Any]:
    """papermill options that keep the kernel's transport warning off the console: where pyzmq has CurveZMQ and the
    kernel declares support for it, the kernel manager provisions keys (the traffic is encrypted and ipykernel has no
    "Kernel is running over TCP without encryption" to say); elsewhere the kernel's own log shows errors only."""
    import zmq
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_client.manager import AsyncKernelManager

    try:
        declared = KernelSpecManager().get_kernel_spec("python3").metadata.get("supported_encryption") or []
    except NoSuchKernel:
        declared = []
    if zmq.has("curve") and "curve" in declared and AsyncKernelManager.class_traits().get("transport_encryption"):

        class EncryptedKernelManager(AsyncKernelManager):
            """nbclient's kernel manager, provisioning CurveZMQ keys for the kernel it starts."""

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                self.transport_encryption = "auto"

        return {"kernel_manager_class": EncryptedKernelManager}
    return {"extra_arguments": ["--IPKernelApp.log_level=ERROR"]}


def run_notebook(notebook: str | Path, out_dir: str | Path, parameters: dict[str, Any] | None = None,
                 progress: bool = True, timeout: float | None = None, force: bool = False) -> Path:
    """Validate parameters, then execute the notebook into `out_dir`; return the executed notebook's path.
    `timeout`: seconds any one cell may run (None: no limit); `force`: run `profile gpu` without CUDA."""
    import papermill

    nb = find_notebook(str(notebook))
    parameters = check_parameters(nb, dict(parameters or {}))
    check_device(parameters, force)
    output, result = run_outputs(nb, out_dir)  # never the notebook itself, nor a file no run of it wrote
    out_dir = output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    mark_outputs(out_dir, nb.stem, [output.name, result.name])
    kernel = {name: value for name, value in parameters.items() if name not in RUN_OPTIONS}
    _atomic_saves()
    before = _children()
    # the kernel inherits the environment: the result JSON lands beside the notebook, run options reach the loaders
    with _environment({RESULTS_ENV: str(out_dir), **option_environment(parameters)}):
        try:
            # the kernel is killed at the end ("immediate"): a graceful shutdown of a kernel still running a cell
            # (Ctrl-C, a cell over `timeout`) races with the cell's reply and prints a kernel traceback
            papermill.execute_notebook(str(nb), str(output), parameters=kernel, cwd=str(nb.parent),
                                       progress_bar=progress, kernel_name="python3", language="python",
                                       execution_timeout=timeout, shutdown_kernel="immediate", **kernel_options())
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the kernel is stopped too, not left running
            _stop_processes(_children() - before)
            raise
    return output


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


def _alive(pid: Any) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError, OverflowError):
        return True  # someone else's process, or no usable id: assume it runs
    return True


def is_stale(run_dir: str | Path, status: dict[str, Any] | None = None) -> bool:
    """Whether a status.json says "running" although no process runs it any more (killed, machine restarted):
    its process is gone from this host, or (another host) nobody holds the run folder's lock."""
    status = read_status(run_dir) if status is None else status
    if not status or status.get("status") != "running":
        return False
    if status.get("host") == socket.gethostname() and status.get("pid") is not None:
        return not _alive(status["pid"])
    lock = _lock(Path(run_dir), create=False)
    if lock is None:
        return False  # held: the run goes on elsewhere
    if lock is not True:
        lock.close()
    return True


def _now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _error_text(err: BaseException) -> str:
    """One line for status.json: the exception in the notebook (with its cell) or in the runner."""
    ename, evalue = getattr(err, "ename", None), getattr(err, "evalue", None)
    if ename:
        return f"{ename}: {evalue} (notebook cell In [{getattr(err, 'exec_count', '?')}])"
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"no space left on device (writing {err.filename or 'a file'}): free some space or choose another --out"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first[:500]}"


def _lock(run_dir: Path, create: bool = True) -> Any:
    """Hold an exclusive lock on the run folder (released when the process ends); None if another holds it
    (True: no lock file to take, with create=False, or a file system without locks)."""
    import fcntl

    if not create and not (run_dir / LOCK_FILE).exists():
        return True
    handle = open(run_dir / LOCK_FILE, "a")  # noqa: SIM115 - kept open for the lock's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except OSError:  # a file system without locks (some network mounts): run unlocked
        pass
    return handle


def _write_status(run_dir: Path, status: dict[str, Any]) -> None:
    """Write status.json atomically; if that fails (a full disk), remove it rather than leave "running" behind."""
    try:
        write_json_atomic(run_dir / STATUS_FILE, status)
    except OSError as err:
        (run_dir / STATUS_FILE).unlink(missing_ok=True)
        raise CourseError(f"cannot record the run in {run_dir}: {_error_text(err)}") from None


def execute_run(notebook: str | Path, run_dir: str | Path, parameters: dict[str, Any] | None = None,
                progress: bool = False, skip_finished: bool = False, force: bool = False,
                accept_collapse: bool = False) -> dict[str, Any]:
    """Run one notebook into its own folder and record status.json (running → ok / collapsed / failed /
    interrupted); never raises for a failing notebook (Ctrl-C and SIGTERM are recorded, then raised again).
    Parameters are validated first (CourseError, folder untouched). With `skip_finished` (sweeps), a run that
    another process finished is checked under the lock and not rerun. `force`: run `profile gpu` on a machine
    without CUDA. A run whose result says a classifier did not train is `collapsed` (a failure) unless
    `accept_collapse`, then `ok` with the collapse recorded."""
    nb = find_notebook(str(notebook))
    given = dict(parameters or {})  # status.json keeps them as given (relative paths as written)
    parameters = check_parameters(nb, given)  # the kernel gets paths resolved against the working folder
    check_device(parameters, force)
    output, result = run_outputs(nb, run_dir)  # refuses the notebook itself, or files no run of it wrote
    run_dir = output.parent
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(f"cannot make the run folder {run_dir}: {_error_text(err)}") from None
    lock = _lock(run_dir)
    if lock is None:
        return {"status": "busy", "notebook": nb.stem, "parameters": given,
                "error": f"another process is running {run_dir} (it holds {LOCK_FILE})"}
    try:
        if skip_finished and is_finished(run_dir):  # finished by another process since the sweep listed it
            return {**(read_status(run_dir) or {}), "status": "skipped",
                    "error": "already finished by another process (not rerun)"}
        leftovers = [p for name in (STATUS_FILE, result.name, output.name) for p in run_dir.glob(f".{name}.*.tmp")]
        for stale in (run_dir / STATUS_FILE, result, output, *leftovers):  # temp files: of a run killed mid-save
            stale.unlink(missing_ok=True)  # a rerun starts clean: only files that runs of this notebook wrote
        status: dict[str, Any] = {"status": "running", "notebook": nb.stem, "notebook_file": nb.name,
                                  "parameters": given, "result": None, "error": None, "started": _now(),
                                  "finished": None, "seconds": None, "host": socket.gethostname(),
                                  "pid": os.getpid()}
        _write_status(run_dir, status)
        start = time.perf_counter()
        try:
            run_notebook(nb, run_dir, parameters, progress=progress, force=force)
            if result.is_file():
                status.update(status="ok", result=result.name)
                collapses = collapsed(result)
                if collapses:
                    status["collapsed"] = collapses
                    if not accept_collapse:
                        status.update(status="collapsed", error="did not train: " + "; ".join(collapses)
                                      + " (pass --accept-collapse to keep such a run as ok)")
            else:
                status.update(status="failed", error=f"the notebook wrote no {result.name} "
                                                      f"(call cc.save_results({nb.stem!r}, {{...}}) at its end)")
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: recorded as interrupted (a sweep redoes it), then raised
            status.update(status="interrupted", error="interrupted (Ctrl-C or SIGTERM); run it again to redo it",
                          finished=_now(), seconds=round(time.perf_counter() - start, 2))
            _write_status(run_dir, status)
            raise
        except Exception as err:  # recorded, not raised: one failing run must not stop a sweep
            status.update(status="failed", error=_error_text(err))
        status.update(finished=_now(), seconds=round(time.perf_counter() - start, 2))
        _write_status(run_dir, status)
        return status
    finally:
        if lock is not True:
            lock.close()


def collapsed(result: Path) -> list[str]:
    """The classifiers a result JSON says did not train (its `training_checks`), each as the check's name."""
    try:
        checks = json.loads(result.read_text()).get("training_checks") or []
    except (OSError, ValueError):
        return []
    return [str(c.get("name")) for c in checks if isinstance(c, dict) and c.get("trained") is False]


def run_course(out_dir: str | Path, profile: str = "cpu", only: list[str] | None = None,
               force: bool = False) -> list[dict[str, Any]]:
    """Run every notebook (or `only` these) in order with one profile; return name, seconds and status each."""
    notebooks = select_notebooks(only)
    check_device({"profile": profile}, force)
    for nb in notebooks:  # every output is checked before the first notebook starts
        run_outputs(nb, out_dir)
    rows = []
    for nb in notebooks:
        start = time.perf_counter()
        status = "ok"
        try:
            run_notebook(nb, out_dir, {"profile": profile}, force=force)
        except Exception as err:  # record and go on: one failing notebook must not hide the others
            status = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
        rows.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - start, 1), "status": status})
        print(f"{nb.stem}: {status} ({rows[-1]['seconds']} s)", flush=True)
    return rows
