"""Sweeps: a YAML grid expands to named runs, validates everything first, runs in parallel, records failures,
resumes after being killed (every run finishes exactly once), and its --dry-run commands make the same folders."""
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from companion import CourseError
from companion.batch.cli import main
from companion.batch.report import report
from companion.batch.runner import is_finished, read_status
from companion.batch.sweep import expand, load_grid, pending, plan, slug, sweep

TINY = (Path(__file__).parent / "assets" / "tiny.ipynb").resolve()


def grid_file(tmp_path: Path, body: str, name: str = "grid.yaml") -> Path:
    """Write a sweep file whose notebook entries point at the tiny test notebook."""
    path = tmp_path / name
    path.write_text(body.replace("TINY", str(TINY)))
    return path


def test_expand_cross_product_fixed_params_and_names(tmp_path):
    grid = load_grid(grid_file(tmp_path, """
seeds: [0, 1]
params: {profile: smoke}
notebooks:
  - notebook: TINY
    params: {sleep: 0}
    grid: {x: [1.0, 1e-4], fail: [false]}
  - notebook: TINY
    name: tiny-b
    seeds: 7
"""))
    runs = expand(grid)
    assert [r.run_id for r in runs] == [
        "tiny/fail=false_x=1.0_seed=0", "tiny/fail=false_x=1.0_seed=1",
        "tiny/fail=false_x=0.0001_seed=0", "tiny/fail=false_x=0.0001_seed=1", "tiny-b/seed=7"]
    assert runs[2].parameters == {"profile": "smoke", "sleep": 0, "x": 1e-4, "fail": False, "seed": 0}
    assert runs[-1].parameters == {"profile": "smoke", "seed": 7}
    assert runs[0].notebook == str(TINY)
    assert slug("data/my file.csv").startswith("data-my-file.csv-") and slug("gradual_unfreezing") == "gradual_unfreezing"


def test_the_example_sweep_file_is_valid(tmp_path):
    runs, rundir, grid = plan(Path(__file__).parents[1] / "sweeps" / "example.yaml", tmp_path / "runs")
    assert [r.run_id for r in runs] == ["00_setup/seed=0", "00_setup/seed=1"] and grid["jobs"] == 2


@pytest.mark.parametrize("body, message", [
    ("notebooks:\n  - notebook: TINY\n    grid: {x: 2.0}", "grid.x must be a non-empty list"),
    ("notebooks:\n  - notebook: TINY\n    paramz: {x: 2.0}", "valid keys: notebook, name, params, grid, seeds"),
    ("jobz: 2\nnotebooks:\n  - notebook: TINY", "valid keys: name, description, out, jobs"),
    ("notebooks:\n  - notebook: TINY\n  - notebook: TINY", "two runs would share a folder"),
    ("notebooks:\n  - notebook: TINY\n    params: {seed: 1}", "seeds go in `seeds:`"),
    ("notebooks:\n  - notebook: nope.ipynb", "no notebook 'nope.ipynb'"),
])
def test_schema_errors_are_clear(tmp_path, body, message):
    with pytest.raises(CourseError) as err:
        expand(load_grid(grid_file(tmp_path, body)), tmp_path)
    assert message in str(err.value)


def test_bad_parameters_stop_the_sweep_before_any_run(tmp_path, capsys):
    path = grid_file(tmp_path, """
params: {profile: fast}
notebooks:
  - notebook: TINY
    grid: {x: [1.0, "abc"], bogus: [1]}
""")
    with pytest.raises(CourseError) as err:
        sweep(path, out=tmp_path / "runs")
    message = str(err.value)
    assert message.startswith("2 of 2 runs have bad parameters (nothing was run)")
    assert "unknown parameter 'bogus'" in message and "x='abc' is not of type float" in message
    assert "profile='fast' is not one of" in message and "Valid parameters" in message
    assert not (tmp_path / "runs").exists()
    assert main(["sweep", str(path), "--out", str(tmp_path / "runs"), "--dry-run"]) == 2
    assert "error: 2 of 2 runs have bad parameters" in capsys.readouterr().err


def _run_shell(line: str, cwd: Path) -> None:
    """Execute one --dry-run command line with this interpreter in place of `python`."""
    argv = shlex.split(line)
    assert argv[:3] == ["python", "-m", "companion"]
    subprocess.run([sys.executable, *argv[1:]], cwd=cwd, check=True, capture_output=True, timeout=300)


@pytest.mark.kernel
def test_two_run_sweep_end_to_end_and_dry_run_commands_make_the_same_folders(tmp_path, capsys):
    path = grid_file(tmp_path, """
params: {profile: smoke, sleep: 0.1}
notebooks:
  - notebook: TINY
    grid: {x: [1.0, 2.0]}
""")
    rundir = tmp_path / "runs"
    assert sweep(path, out=rundir, dry_run=True) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and f"--out {rundir}/tiny/x=1.0_seed=0" in lines[0] and "-p x 1.0 -p seed 0" in lines[0]
    assert not rundir.exists()  # a dry run runs nothing and writes nothing
    _run_shell(lines[0], tmp_path)  # what one Slurm array task would do
    assert is_finished(rundir / "tiny/x=1.0_seed=0")
    assert sweep(path, out=rundir, jobs=2) == 0  # picks up the finished run, runs the other
    out = capsys.readouterr().out
    assert "1 already finished, 1 to run" in out and "2 of 2 runs finished (1 earlier)" in out
    assert sweep(path, out=rundir, dry_run=True) == 0 and capsys.readouterr().out == ""  # nothing left to run
    a, b = rundir / "tiny/x=1.0_seed=0", rundir / "tiny/x=2.0_seed=0"
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir()) == [
        ".lock", ".written-by-runs.json", "status.json", "tiny.ipynb", "tiny.results.json"]  # + the marks of runs
    sa, sb = read_status(a), read_status(b)
    assert sa.keys() == sb.keys() and sa["status"] == sb["status"] == "ok"
    assert sb["parameters"] == {"profile": "smoke", "sleep": 0.1, "x": 2.0, "seed": 0}
    paths = report(rundir)
    assert paths["csv"].read_text().count("\n") == 3 and paths["markdown"].is_file()
    assert paths["plot:tiny"].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.kernel
def test_a_failing_run_is_recorded_and_does_not_stop_the_others(tmp_path, capsys):
    path = grid_file(tmp_path, """
params: {profile: smoke, sleep: 0}
notebooks:
  - notebook: TINY
    grid: {fail: [true, false]}
""")
    rundir = tmp_path / "runs"
    assert sweep(path, out=rundir, jobs=2) == 1
    failed, ok = read_status(rundir / "tiny/fail=true_seed=0"), read_status(rundir / "tiny/fail=false_seed=0")
    assert failed["status"] == "failed" and failed["result"] is None
    assert failed["error"].startswith("RuntimeError: tiny failure on purpose (x=1.0)")
    assert ok["status"] == "ok" and (rundir / "tiny/fail=false_seed=0/tiny.results.json").is_file()
    assert "1 of 2 runs finished (0 earlier), 1 failed" in capsys.readouterr().out
    runs, _, _ = plan(path, rundir)
    assert [r.run_id for r in pending(runs, rundir)] == ["tiny/fail=true_seed=0"]  # a resume retries it only


def test_resume_refuses_a_folder_made_with_other_parameters(tmp_path):
    first = grid_file(tmp_path, "notebooks:\n  - notebook: TINY\n    params: {x: 1.0}\n")
    (tmp_path / "runs/tiny/seed=0").mkdir(parents=True)
    (tmp_path / "runs/tiny/seed=0/status.json").write_text('{"status": "ok", "parameters": {"x": 3.0, "seed": 0}}')
    with pytest.raises(CourseError, match="made with other parameters"):
        plan(first, tmp_path / "runs")


@pytest.mark.kernel
def test_killed_sweep_resumes_and_runs_every_run_exactly_once(tmp_path, monkeypatch, capsys):
    path = grid_file(tmp_path, """
params: {profile: smoke, sleep: 1.0}
notebooks:
  - notebook: TINY
    grid: {x: [1.0, 2.0, 3.0]}
""")
    rundir, log = tmp_path / "runs", tmp_path / "completed.log"
    run_dirs = [rundir / r.run_id for r in expand(load_grid(path))]
    env = {**os.environ, "TINY_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-m", "companion", "sweep", str(path), "--out", str(rundir)],
                            cwd=tmp_path, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not any(is_finished(d) for d in run_dirs):
        assert proc.poll() is None and time.time() < deadline, "the sweep ended before its first run finished"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, as a scheduler or Ctrl-\ would
    proc.wait()
    done_before = [d for d in run_dirs if is_finished(d)]
    assert 1 <= len(done_before) < 3
    stamps = {d: read_status(d)["finished"] for d in done_before}
    time.sleep(1.5)  # an orphaned kernel notices its parent is gone within a second and exits
    monkeypatch.setenv("TINY_LOG", str(log))
    assert sweep(path, out=rundir) == 0
    assert f"{len(done_before)} already finished" in capsys.readouterr().out
    assert all(is_finished(d) for d in run_dirs)
    assert {d: read_status(d)["finished"] for d in done_before} == stamps  # finished runs were not rerun
    assert Counter(log.read_text().splitlines()) == {f"x={x} seed=0": 1 for x in (1.0, 2.0, 3.0)}
