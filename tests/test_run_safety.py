"""Nothing a learner made is lost: `run`/`course` never replace the notebook being run (or any notebook no run
wrote); opening a stored notebook in JupyterLab changes nothing on disk; `make lab` works as root."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from companion import CourseError
from companion.batch import notebooks as N
from companion.batch.runner import execute_run, find_notebook, list_notebooks, run_course, run_notebook

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "assets" / "tiny.ipynb"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m companion …` in `cwd`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "companion", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_run_into_the_notebooks_own_folder_is_refused_and_the_notebook_kept(tmp_path):
    """`companion run my_edited.ipynb --out .` once deleted the learner's only copy."""
    mine = tmp_path / "my_edited.ipynb"
    shutil.copy(TINY, mine)
    before = mine.read_bytes()
    proc = cli("run", "my_edited.ipynb", "--out", ".", "-p", "sleep", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --out . would overwrite the notebook being run")
    assert mine.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["my_edited.ipynb"]
    for call in (lambda: execute_run(mine, tmp_path), lambda: run_notebook(mine, tmp_path / "." / "")):
        with pytest.raises(CourseError, match="would overwrite the notebook being run"):
            call()
    assert mine.read_bytes() == before


def test_run_02_into_a_copy_of_notebooks_is_refused(tmp_path):
    """`run 02 --out notebooks` (on a temporary copy): the stored notebook stays as it was."""
    copy = tmp_path / "notebooks" / find_notebook("02").name
    copy.parent.mkdir()
    shutil.copy(find_notebook("02"), copy)
    before = copy.read_bytes()
    proc = cli("run", str(copy), "--out", "notebooks", cwd=tmp_path)
    assert proc.returncode == 2 and "would overwrite the notebook being run" in proc.stderr
    assert copy.read_bytes() == before
    with pytest.raises(CourseError, match="would overwrite"):  # the real folder: refused before anything is written
        N.output_path(find_notebook("02"), ROOT / "notebooks")


def test_course_into_the_notebooks_folder_is_refused_before_any_run(tmp_path, monkeypatch):
    """`course --out notebooks` (on a temporary copy of two stored notebooks)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for number in ("00", "01"):
        shutil.copy(find_notebook(number), folder / find_notebook(number).name)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(N, "NOTEBOOKS_DIR", folder)
    assert [p.parent for p in list_notebooks()] == [folder, folder]
    with pytest.raises(CourseError, match="would overwrite the notebook being run"):
        run_course(folder, "smoke", only=["01"])
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_notebook_no_run_wrote_is_never_replaced(tmp_path):
    """An edited copy with the same name in the --out folder is the learner's: refused, kept."""
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / TINY.name
    theirs.write_text(TINY.read_text().replace("a number the result depends on", "my own notes"))
    before = theirs.read_bytes()
    with pytest.raises(CourseError, match="was not written by a run"):
        execute_run(TINY, out, {"sleep": 0})
    assert theirs.read_bytes() == before and not (out / "status.json").exists()


def test_a_previous_runs_output_may_be_replaced(tmp_path):
    """A rerun into the same folder replaces papermill's output of the earlier run (that is what a run folder is)."""
    out = tmp_path / "out"
    out.mkdir()
    earlier = json.loads(TINY.read_text())
    earlier["metadata"]["papermill"] = {"input_path": str(TINY)}
    (out / TINY.name).write_text(json.dumps(earlier))
    assert N.output_path(TINY, out) == (out / TINY.name).resolve()


def test_course_only_an_unknown_number_is_one_error():
    with pytest.raises(CourseError, match="no course notebook '99'"):
        N.select_notebooks(["99"])
    assert [p.stem[:2] for p in N.select_notebooks(["03", "01"])] == ["01", "03"]


def test_stored_notebooks_carry_the_installed_kernelspec(script):
    """Opening a stored notebook in JupyterLab changes nothing: the kernelspec is what ipykernel installed."""
    listed = subprocess.run([str(Path(sys.executable).parent / "jupyter"), "kernelspec", "list", "--json"],
                            capture_output=True, text=True, check=True)
    installed = json.loads(listed.stdout)["kernelspecs"]["python3"]["spec"]
    expected = {"display_name": installed["display_name"], "language": installed["language"], "name": "python3"}
    assert script("tools/build_notebooks.py").kernelspec() == expected
    for nb in list_notebooks():
        assert json.loads(nb.read_text())["metadata"]["kernelspec"] == expected, nb.name


def test_storing_the_kernelspec_changes_nothing_else(tmp_path, script):
    build = script("tools/build_notebooks.py")
    stored = find_notebook("03").read_text()
    old = json.loads(stored)
    old["metadata"]["kernelspec"]["display_name"] = "Python 3"
    copy = tmp_path / "03.ipynb"
    copy.write_text(stored.replace(json.dumps(build.kernelspec()["display_name"]), '"Python 3"', 1))
    assert json.loads(copy.read_text()) == old
    assert build.set_kernelspec(copy) and copy.read_text() == stored and not build.set_kernelspec(copy)


def test_make_lab_passes_lab_args_and_allows_root():
    proc = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--no-browser --port 9999"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    command = [line for line in proc.stdout.splitlines() if "jupyter lab" in line][-1]
    assert "--no-browser --port 9999" in command and command.endswith("notebooks/")
    assert ("--allow-root" in command) == (os.geteuid() == 0)


# ---- issue 23: no result file lost ---------------------------------------------------------------------------------

def test_a_result_file_no_run_wrote_is_kept(tmp_path):
    """`run --out keep` once deleted keep/<notebook>.results.json before it started, whoever wrote it."""
    keep = tmp_path / "keep"
    keep.mkdir()
    mine = keep / "tiny.results.json"
    mine.write_text('{"macro_f1": 0.661}')
    with pytest.raises(CourseError, match="tiny.results.json exists and was not written by a run of tiny"):
        execute_run(TINY, keep, {"sleep": 0, "fail": True})
    assert mine.read_text() == '{"macro_f1": 0.661}' and [p.name for p in keep.iterdir()] == ["tiny.results.json"]
    assert not execute_run(TINY, keep / "other", {"sleep": 0})["error"]  # another folder: fine


def test_runs_never_write_into_the_stored_course_folders(tmp_path):
    """`--out notebooks/results` replaced the committed cpu result (macro-F1 0.661) with a smoke one (0.184)."""
    stored = ROOT / "notebooks" / "results" / "06_full_finetuning.results.json"
    before = stored.read_bytes()
    for folder in (ROOT / "notebooks" / "results", ROOT / "sweeps" / "results", ROOT / "notebooks" / "src" / "x"):
        with pytest.raises(CourseError, match="stored .* folder .* which a run never writes into"):
            N.output_path(find_notebook("06"), folder)
    proc = cli("run", "06", "--out", "notebooks/results", cwd=ROOT)
    assert proc.returncode == 2 and "which a run never writes into" in proc.stderr
    assert stored.read_bytes() == before and not (ROOT / "notebooks" / "results" / "status.json").exists()


def test_a_run_replaces_only_what_runs_of_the_same_notebook_wrote(tmp_path):
    """Marks: the rerun of a notebook replaces its own result; a folder of an earlier version (no marks) too."""
    out = tmp_path / "out"
    assert execute_run(TINY, out, {"sleep": 0})["status"] == "ok"
    assert N.read_marks(out) == {"tiny.ipynb": "tiny", "tiny.results.json": "tiny"}
    assert execute_run(TINY, out, {"sleep": 0, "x": 2.0})["status"] == "ok"  # its own files: replaced
    assert json.loads((out / "tiny.results.json").read_text())["x"] == 2.0
    (out / N.MARKS_FILE).unlink()  # as an earlier version left it: status.json names the notebook
    assert N.run_outputs(TINY, out)[1] == out / "tiny.results.json"
    (out / "status.json").write_text(json.dumps({"status": "ok", "notebook": "another"}))
    with pytest.raises(CourseError, match="not written by a run of tiny"):
        N.run_outputs(TINY, out)


def _children_of(pid: int) -> list[int]:
    """The process ids below `pid` (its kernel)."""
    import psutil

    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_ends_cleanly(tmp_path, sig):
    """Ctrl-C / SIGTERM left a 66-line traceback and a status.json saying "running" forever."""
    import psutil

    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "companion", "run", str(TINY), "-p", "sleep", "60", "--out",
                             str(out), "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ((out / "status.json").exists() and _children_of(proc.pid)):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(3)  # the kernel runs the notebook's 60 s cell
    kernels = _children_of(proc.pid)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("[IPKernelApp]")]
    assert proc.returncode == 130 and "Traceback" not in stderr + stdout, stderr
    assert len(lines) == 1 and lines[0].startswith("interrupted: companion run stopped"), stderr
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "interrupted" and status["pid"] == proc.pid
    assert not [pid for pid in kernels if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE], "the kernel was left running"
    assert not list(out.glob("*.tmp"))


def test_a_stale_running_status_counts_as_unfinished(tmp_path):
    """`report` listed a run killed mid-way as running forever; a sweep reruns it."""
    from companion.batch.report import collect
    from companion.batch.runner import is_stale
    from companion.core.results import write_json_atomic
    from companion.batch.sweep import Run, pending

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    status = {"status": "running", "notebook": "tiny", "notebook_file": "tiny.ipynb", "parameters": {"seed": 0},
              "result": None, "host": __import__("socket").gethostname(), "pid": int(gone.stdout)}
    write_json_atomic(tmp_path / "tiny" / "seed=0" / "status.json", status)
    alive = {**status, "pid": os.getpid()}
    write_json_atomic(tmp_path / "tiny" / "seed=1" / "status.json", alive)
    assert is_stale(tmp_path / "tiny" / "seed=0") and not is_stale(tmp_path / "tiny" / "seed=1")
    rows = collect(tmp_path).set_index("run_id")
    assert rows.loc["tiny/seed=0", "status"] == "interrupted" and "ended without finishing" in rows.loc[
        "tiny/seed=0", "error"]
    assert rows.loc["tiny/seed=1", "status"] == "running"
    write_json_atomic(tmp_path / "tiny" / "seed=2" / "status.json", {**status, "host": "elsewhere"})
    assert is_stale(tmp_path / "tiny" / "seed=2")  # another machine, and nobody holds the folder's lock
    runs = [Run(f"tiny/seed={s}", str(TINY), {"seed": s}) for s in range(3)]
    assert [r.run_id for r in pending(runs, tmp_path)] == ["tiny/seed=0", "tiny/seed=1", "tiny/seed=2"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fill the disk")
def test_a_full_disk_leaves_nothing_that_looks_complete_or_running(tmp_path, monkeypatch, capsys):
    """`--out` on a 2 MB tmpfs: a traceback, status "running", a truncated .ipynb and a 0-byte temp file."""
    from companion.batch import runner
    from companion.batch.cli import main

    real_open, saves = os.open, []

    def full_after_two_saves(path, flags, mode=0o777):
        """os.open, but from the third save of the executed notebook on, its temp file sits on a full disk."""
        fd = real_open(path, flags, mode)
        if ".ipynb." in str(path) and str(path).endswith(".tmp"):
            saves.append(path)
            if len(saves) > 2:
                os.close(fd)
                return real_open("/dev/full", os.O_WRONLY)  # every write: ENOSPC, as on a full disk
        return fd

    monkeypatch.setattr(os, "open", full_after_two_saves)
    out = tmp_path / "out"
    status = execute_run(TINY, out, {"sleep": 0})
    assert status["status"] == "failed" and "no space left on device" in status["error"], status
    assert json.loads((out / "status.json").read_text())["status"] == "failed"
    assert len(saves) >= 3 and not [p for p in saves if Path(p).exists()]  # no temp file left
    nbformat.validate(nbformat.read(out / "tiny.ipynb", as_version=4))  # the last whole save, never a cut one
    assert sorted(p.name for p in out.iterdir()) == [".lock", N.MARKS_FILE, "status.json", "tiny.ipynb"]
    monkeypatch.setattr(os, "open", real_open)

    def status_on_a_full_disk(path, data, **kwargs):
        """write_json_atomic of status.json on a full disk."""
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner, "write_json_atomic", status_on_a_full_disk)
    assert main(["run", str(TINY), "--out", str(tmp_path / "full"), "-p", "sleep", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot record the run in") and "no space left" in err[0]
    assert not (tmp_path / "full" / "status.json").exists()
    from companion.core.results import write_text_atomic  # the one atomic writer (status, results, notebooks, reports)

    target = tmp_path / "kept.json"
    target.write_text("{}")
    monkeypatch.setattr(os, "fsync", lambda fd: status_on_a_full_disk(None, None))
    with pytest.raises(OSError):
        write_text_atomic(target, "new")
    assert target.read_text() == "{}" and [p.name for p in tmp_path.glob(".kept.json*")] == []
