"""Sweeps on Dask: a real LocalCluster with 2 worker processes survives a worker killed mid-run (retried, or
recorded as failed and redone by a rerun, never duplicated), a run finished by another process is not rerun,
an unreachable scheduler gives one clear error quickly, and Slurm / PBS job scripts follow `resources:`."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
from distributed import LocalCluster

import companion.batch.sweep as sweep_module
from companion import CourseError
from companion.batch.cli import main
from companion.batch.cluster import check_resources, job_script, open_client
from companion.batch.runner import execute_run, is_finished, read_status
from companion.batch.sweep import execute, load_grid, pending, plan, sweep

TINY = (Path(__file__).parent / "assets" / "tiny.ipynb").resolve()
RUN_FILES = [".lock", ".written-by-runs.json", "status.json", "tiny.ipynb", "tiny.results.json"]  # + the marks of runs
GRID = f"""
params: {{profile: smoke, sleep: 3.0}}
notebooks:
  - notebook: {TINY}
    grid: {{x: [1.0, 2.0, 3.0]}}
"""


def grid_file(tmp_path: Path, body: str = GRID) -> Path:
    """Write a sweep file (three runs of the tiny test notebook unless told otherwise)."""
    path = tmp_path / "grid.yaml"
    path.write_text(body)
    return path


def _started_cells(notebook: Path) -> int:
    """How many cells papermill has started in the executed copy it keeps saving (0 if not there yet)."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(c.get("metadata", {}).get("papermill", {}).get("status") in ("running", "completed") for c in cells)


def _kernel_worker(root: psutil.Process, run_dir: Path) -> psutil.Process | None:
    """The Dask worker process whose Jupyter kernel is running `run_dir` (the kernel's parent)."""
    for proc in root.children(recursive=True):
        try:
            if proc.environ().get("COURSE_RESULTS_DIR") == str(run_dir) and "ipykernel" in " ".join(proc.cmdline()):
                return proc.parent()
        except psutil.Error:
            continue
    return None


def _sweep_and_kill_one_worker(tmp_path: Path, rundir: Path, log: Path, **env: str) -> tuple[int, str]:
    """Run the grid on 2 local workers in a subprocess; SIGKILL the worker running x=1.0 mid-run."""
    target = rundir / "tiny/x=1.0_seed=0"
    proc = subprocess.Popen([sys.executable, "-m", "companion", "sweep", str(grid_file(tmp_path)), "--out",
                             str(rundir), "--jobs", "2"], cwd=tmp_path, env={**os.environ, "TINY_LOG": str(log), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while _started_cells(target / "tiny.ipynb") < 2:  # the kernel is inside the notebook's 3-second sleep
        assert proc.poll() is None and time.time() < deadline, "the run never started"
        time.sleep(0.1)
    worker = _kernel_worker(psutil.Process(proc.pid), target)
    assert worker is not None and worker.pid != proc.pid
    worker.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def _assert_clean_and_once(rundir: Path, log: Path) -> None:
    """Every run finished exactly once, each folder holds exactly the files of one finished run."""
    run_dirs = sorted(p.parent for p in rundir.rglob("status.json"))
    assert len(run_dirs) == 3 and all(is_finished(d) for d in run_dirs)
    assert all(sorted(p.name for p in d.iterdir()) == RUN_FILES for d in run_dirs)  # no temp or stale files
    assert Counter(log.read_text().splitlines()) == {f"x={x} seed=0": 1 for x in (1.0, 2.0, 3.0)}


@pytest.mark.kernel
def test_a_killed_worker_is_recorded_as_failed_the_others_finish_and_a_rerun_completes_it(
        tmp_path, monkeypatch, capsys):
    rundir, log = tmp_path / "runs", tmp_path / "completed.log"
    code, out = _sweep_and_kill_one_worker(tmp_path, rundir, log, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    assert code == 1, out
    failed = read_status(rundir / "tiny/x=1.0_seed=0")
    assert failed["status"] == "failed" and "worker process died while running it" in failed["error"]
    assert "2 of 3 runs finished (0 earlier), 1 failed" in out, out
    assert all(is_finished(rundir / f"tiny/x={x}_seed=0") for x in (2.0, 3.0))
    time.sleep(1.5)  # the killed worker's orphaned kernel notices its parent is gone within a second and exits
    monkeypatch.setenv("TINY_LOG", str(log))
    assert sweep(grid_file(tmp_path), out=rundir, jobs=2) == 0
    assert "2 already finished, 1 to run" in capsys.readouterr().out
    _assert_clean_and_once(rundir, log)


@pytest.mark.kernel
def test_a_killed_worker_run_is_retried_by_dask(tmp_path):
    rundir, log = tmp_path / "runs", tmp_path / "completed.log"
    code, out = _sweep_and_kill_one_worker(tmp_path, rundir, log)
    assert code == 0 and "3 of 3 runs finished (0 earlier), 0 failed" in out, out
    _assert_clean_and_once(rundir, log)


@pytest.mark.kernel
def test_on_an_existing_cluster_a_run_finished_elsewhere_is_not_rerun_and_a_broken_result_is_redone(
        tmp_path, monkeypatch, capsys):
    path = grid_file(tmp_path, GRID.replace("sleep: 3.0", "sleep: 0").replace("x: [1.0, 2.0, 3.0]", "x: [1.0, 2.0]"))
    runs, rundir, _ = plan(path, tmp_path / "runs")
    listed = pending(runs, rundir)  # what the sweep saw when it started: both runs to do
    done, broken = rundir / "tiny/x=1.0_seed=0", rundir / "tiny/x=2.0_seed=0"
    for run, folder in zip(runs, (done, broken)):
        assert execute_run(run.notebook, folder, run.parameters)["status"] == "ok"  # e.g. a job-array task
    result = broken / "tiny.results.json"
    result.write_text(result.read_text()[:15])  # truncated (a full disk, an interrupted copy)
    assert not is_finished(broken) and [r.run_id for r in pending(runs, rundir)] == ["tiny/x=2.0_seed=0"]
    stamp = read_status(done)["finished"]
    monkeypatch.setattr(sweep_module, "pending", lambda runs, rundir: listed)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as running:  # "existing"
        counts = execute(runs, rundir, jobs=1, scheduler=running.scheduler_address)
    assert counts == {"ok": 1, "failed": 0, "busy": 0, "skipped": 1}
    out = capsys.readouterr().out
    assert "to run on the Dask cluster at tcp://127.0.0.1:" in out and "tiny/x=1.0_seed=0: skipped" in out
    assert read_status(done)["finished"] == stamp and is_finished(broken)  # not rerun; the broken one redone


def _free_port() -> int:
    """A local TCP port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_is_one_clear_error_within_seconds(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(CourseError, match=f"no Dask scheduler answered at {address} within 5 s"):
        with open_client(scheduler=address):
            pass
    assert time.perf_counter() - start < 10
    path = grid_file(tmp_path, GRID.replace("sleep: 3.0", "sleep: 0"))
    assert main(["sweep", str(path), "--out", str(tmp_path / "runs"), "--scheduler", "localhost:8786"]) == 2
    assert "error: --scheduler 'localhost:8786' is not a Dask scheduler address" in capsys.readouterr().err
    assert not any(is_finished(p.parent) for p in tmp_path.rglob("status.json"))


RESOURCES = """
resources:
  cores: 4
  memory: 16GB
  walltime: "04:00:00"
  partition: gpu
  gpus: 1
  account: nlp-course
  setup: ["source /shared/course/.venv/bin/activate", "export COURSE_DATA_DIR=/shared/datasets"]
"""


def test_slurm_and_pbs_job_scripts_follow_the_grid_resources(tmp_path, capsys):
    path = grid_file(tmp_path, RESOURCES + GRID)
    resources = check_resources(load_grid(path)["resources"])
    slurm = job_script("slurm", resources)
    for line in ("#SBATCH -p gpu", "#SBATCH -A nlp-course", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=15G",
                 "#SBATCH -t 04:00:00", "#SBATCH --gres=gpu:1", "source /shared/course/.venv/bin/activate",
                 "export COURSE_DATA_DIR=/shared/datasets"):
        assert line in slurm.splitlines(), (line, slurm)
    assert "--nthreads 1" in slurm  # one run at a time per job; the run's kernel gets the 4 cores
    pbs = job_script("pbs", resources)
    assert "#PBS -l select=1:ncpus=4:mem=15GB:ngpus=1" in pbs and "#PBS -q gpu" in pbs, pbs
    assert sweep(path, out=tmp_path / "runs", dry_run=True, cluster="slurm") == 0
    captured = capsys.readouterr()
    assert "#SBATCH --gres=gpu:1" in captured.err and len(captured.out.strip().splitlines()) == 3


@pytest.mark.parametrize("resources, message", [
    ("resources: {cores: two}", "resources.cores must be a whole number"),
    ("resources: {memory: lots}", "resources.memory must be a size such as 16GB"),
    ("resources: {walltime: 1:00:00}", "resources.walltime must be a quoted time"),  # YAML reads 3600
    ("resources: {gpu: 1}", "valid keys: cores, memory, walltime, partition, gpus"),
    ("resources: [4, 16GB]", "resources:? must be a mapping of names to values"),
])
def test_bad_resources_are_one_clear_error_before_anything_runs(tmp_path, resources, message):
    with pytest.raises(CourseError, match=message):
        sweep(grid_file(tmp_path, resources + GRID), out=tmp_path / "runs", cluster="slurm")
    assert not (tmp_path / "runs").exists()
