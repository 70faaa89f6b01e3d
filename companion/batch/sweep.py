"""Parameter sweeps: a YAML grid (notebooks × parameters × seeds) → one run folder per run, run in parallel on a
Dask cluster (companion.batch.cluster), resumable (finished runs are skipped), failures recorded in each run's
status.json. Schema: sweeps/README.md.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .cluster import (CLUSTERS, check_resources, job_script, open_client, require_dask, run_on_worker, threads_per_run,
                      where)
from ..core.errors import CourseError
from .grid_types import check_grid_types
from .params import check_parameters, coerce, resolve_paths
from ..core.paths import NOTEBOOKS_DIR
from .runner import find_notebook, is_finished, read_status
from ..core.results import write_json_atomic

TOP_KEYS = ("name", "description", "out", "jobs", "seeds", "params", "resources", "notebooks", "accept_collapse",
            "rates")  # rates: the self-extending rate search's factor and extensions (companion rates)
ENTRY_KEYS = ("notebook", "name", "params", "grid", "seeds")
PLAN_FILE = "sweep.json"


@dataclass(frozen=True)
class Run:
    """One planned run: its folder name under the run folder, the notebook file and its parameters."""

    run_id: str
    notebook: str
    parameters: dict[str, Any] = field(hash=False)


def _yaml_loader() -> type:
    """A safe YAML loader that also reads 1e-4 as a float (plain YAML 1.1 reads it as a string) and refuses a key
    given twice in one mapping (plain YAML keeps the last value without a word)."""
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader with YAML 1.2-style floats and no repeated keys."""

        def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201 - PyYAML's signature
            """A mapping, after checking that no key appears twice in it."""
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {key!r} is given twice (lines {seen[key]} and "
                                    f"{key_node.start_mark.line + 1}): give each key once", key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[0-9][0-9_]*[eE][-+]?[0-9]+"
                   r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|\.(?:inf|Inf|INF))$|^\.(?:nan|NaN|NAN)$"),
        list("-+0123456789."))
    return Loader


def load_grid(path: str | Path) -> dict[str, Any]:
    """Read a sweep YAML file and check its keys (one CourseError naming the valid ones)."""
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"no sweep file {str(path)!r}: pass a YAML grid such as sweeps/example.yaml")
    try:
        grid = yaml.load(path.read_text(), Loader=_yaml_loader()) or {}
    except yaml.YAMLError as err:
        raise CourseError(f"{path.name} is not valid YAML: {err}") from None
    if not isinstance(grid, dict) or not isinstance(grid.get("notebooks"), list) or not grid["notebooks"]:
        raise CourseError(f"{path.name}: needs a list `notebooks:` of entries like "
                          "`- notebook: \"07\"` (see sweeps/README.md)")
    _check_keys(grid, TOP_KEYS, f"{path.name}")
    for i, entry in enumerate(grid["notebooks"]):
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise CourseError(f"{path.name}: notebooks[{i}] needs a `notebook:` (number, name or .ipynb path)")
        _check_keys(entry, ENTRY_KEYS, f"{path.name}: notebooks[{i}]")
    check_grid_types(grid, path.name)  # value types (jobs: two, params: as a list) before anything runs
    return grid


def _check_keys(mapping: dict[str, Any], valid: tuple[str, ...], where: str) -> None:
    """Reject keys outside `valid` with a message that lists them."""
    unknown = [k for k in mapping if k not in valid]
    if unknown:
        raise CourseError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}")


def _resolve_notebook(name: Any, base: Path) -> Path:
    """A course number/name, or an .ipynb path (relative to the working folder or to the sweep file)."""
    text = str(name)  # text only (check_grid_types): YAML reads `07` as 7, and `010` as the octal number 8
    if text.endswith(".ipynb") and not Path(text).is_file() and (base / text).is_file():
        text = str(base / text)
    return find_notebook(text).resolve()


def _seeds(value: Any, where: str) -> list[int]:
    """`seeds:` as a list of ints (a single int is allowed)."""
    seeds = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                          for s in seeds):
        raise CourseError(f"{where}: `seeds` must be an int or a non-empty list of ints, got {value!r}")
    return seeds


def slug(value: Any) -> str:
    """A value as a safe folder-name part: plain when it is safe and short, else shortened + a short hash."""
    text = value if isinstance(value, str) else json.dumps(value)
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "x"
    if safe != text or len(safe) > 40:
        safe = f"{safe[:24]}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"
    return safe


def run_name(grid_values: dict[str, Any], seed: int) -> str:
    """`name=value_…_seed=<n>` from the grid's varying parameters (sorted by name) and the seed."""
    parts = [f"{k}={slug(v)}" for k, v in sorted(grid_values.items())]
    return "_".join(parts + [f"seed={seed}"])


def expand(grid: dict[str, Any], base: Path = Path(".")) -> list[Run]:
    """The cross product of each entry's grid × seeds, with top-level and per-entry fixed params merged in."""
    runs: list[Run] = []
    top_params = grid.get("params") or {}
    top_seeds = _seeds(grid.get("seeds", [0]), "top level")
    for i, entry in enumerate(grid["notebooks"]):
        where = f"notebooks[{i}] ({entry['notebook']})"
        nb = _resolve_notebook(entry["notebook"], base)
        fixed = {**top_params, **(entry.get("params") or {})}
        axes = entry.get("grid") or {}
        if not isinstance(fixed, dict) or not isinstance(axes, dict):
            raise CourseError(f"{where}: `params` and `grid` must be mappings of parameter names")
        for name, values in axes.items():
            if not isinstance(values, list) or not values:
                raise CourseError(f"{where}: grid.{name} must be a non-empty list; put a single fixed value "
                                  f"under params: instead")
        both = sorted(set(fixed) & set(axes))
        if both or "seed" in fixed or "seed" in axes:
            raise CourseError(f"{where}: {', '.join(both) or 'seed'} is given twice: a parameter goes in params "
                              "(fixed) or grid (varied), and seeds go in `seeds:`")
        seeds = _seeds(entry["seeds"], where) if "seeds" in entry else top_seeds
        label = slug(str(entry.get("name") or nb.stem))
        for combo in itertools.product(*axes.values()):
            varied = dict(zip(axes, combo))
            for seed in seeds:
                runs.append(Run(f"{label}/{run_name(varied, seed)}", str(nb), {**fixed, **varied, "seed": seed}))
    ids = [r.run_id for r in runs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise CourseError(f"two runs would share a folder: {', '.join(dupes[:5])}; give repeated notebook "
                          "entries different `name:`s, and do not repeat grid values")
    return runs


def validate(runs: list[Run]) -> None:
    """Check every run's parameters against its notebook before any run starts; one CourseError for all."""
    problems: list[str] = []
    bad = 0
    for run in runs:
        try:
            check_parameters(run.notebook, run.parameters)
        except CourseError as err:
            bad += 1
            if str(err) not in problems:
                problems.append(str(err))
    if problems:
        more = [f"… and {len(problems) - 5} other problems"] if len(problems) > 5 else []
        raise CourseError(f"{bad} of {len(runs)} runs have bad parameters (nothing was run):\n  "
                          + "\n  ".join(problems[:5] + more))


def _normal(value: Any) -> Any:
    """A value as it reads back from JSON (tuples → lists), for comparing with a stored status."""
    return json.loads(json.dumps(value, default=str))


def check_folders(runs: list[Run], rundir: Path) -> None:
    """Refuse to resume into run folders that were made with other parameters."""
    clashes = []
    for run in runs:
        status = read_status(rundir / run.run_id)
        if status and _normal(status.get("parameters")) != _normal(run.parameters):
            clashes.append(f"{run.run_id} has {status.get('parameters')}, the grid says {run.parameters}")
    if clashes:
        raise CourseError(f"{len(clashes)} run folder(s) in {rundir} were made with other parameters "
                          f"(use another --out, or delete them): " + "; ".join(clashes[:3]))


def pending(runs: list[Run], rundir: Path) -> list[Run]:
    """The runs that are not finished yet (no ok status.json + result JSON): new, failed or interrupted."""
    return [r for r in runs if not is_finished(rundir / r.run_id)]


def _cli_value(value: Any) -> str:
    """A parameter value as `companion run -p` reads it back (coerce): plain text when that round-trips."""
    text = value if isinstance(value, str) else repr(value)
    back = coerce(text)
    return text if back == value and type(back) is type(value) else repr(value)


def _target(run: Run) -> str:
    """The notebook as a worker finds it: a course notebook by name (its own install), else the path."""
    nb = Path(run.notebook)
    return nb.stem if nb.parent == NOTEBOOKS_DIR.resolve() else str(nb)


def command(run: Run, rundir: Path, accept_collapse: bool = False) -> str:
    """One self-contained shell command that executes `run` into its folder (for a scheduler)."""
    parts = ["python", "-m", "companion", "run", _target(run), "--out", str(rundir.resolve() / run.run_id),
             "--quiet"] + (["--accept-collapse"] if accept_collapse else [])
    for name, value in run.parameters.items():
        parts += ["-p", name, _cli_value(value)]
    return shlex.join(parts)


def plan(grid_path: str | Path, out: str | Path | None = None) -> tuple[list[Run], Path, dict[str, Any]]:
    """Read, expand and validate a grid; return the runs, the run folder and the grid."""
    from .notebooks import check_out_dir

    grid_path = Path(grid_path)
    grid = load_grid(grid_path)
    rundir = check_out_dir(out or grid.get("out") or Path("runs") / grid_path.stem)
    runs = expand(grid, grid_path.resolve().parent)
    # relative data/model paths mean "from where the sweep was started": made absolute here, so that every
    # worker (another folder, another machine with the same file system) and every --dry-run command agrees
    runs = [Run(r.run_id, r.notebook, resolve_paths(r.parameters)) for r in runs]
    validate(runs)
    check_folders(runs, rundir)
    return runs, rundir, grid


def _line(i: int, n: int, run_id: str, status: dict[str, Any]) -> str:
    """One progress line per finished run."""
    error = f": {status['error']}" if status.get("error") else ""
    return f"[{i}/{n}] {run_id}: {status['status']} ({status.get('seconds')} s){error}"


def _failed(run: Run, rundir: Path, err: BaseException) -> dict[str, Any]:
    """Record a run whose task failed outside the notebook (its worker died, the cluster went away)."""
    status = {"status": "failed", "notebook": Path(run.notebook).stem, "notebook_file": Path(run.notebook).name,
              "parameters": run.parameters, "result": None, "seconds": None, "error": task_error(err)}
    if not is_finished(rundir / run.run_id):  # never overwrite a run that did finish
        write_json_atomic(rundir / run.run_id / "status.json", status)
    return status


def task_error(err: BaseException) -> str:
    """One line saying why a Dask task failed, and what to do about it."""
    from distributed import KilledWorker

    if isinstance(err, KilledWorker):
        return ("worker process died while running it (killed, out of memory, or its batch job ended), "
                "also on every retry; run the sweep again to redo it")
    first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
    return f"the task failed on its Dask worker: {type(err).__name__}: {first}"


def execute(runs: list[Run], rundir: Path, jobs: int = 1, log: Callable[[str], Any] = print,
            cluster: str = "local", scheduler: str | None = None,
            resources: dict[str, Any] | None = None, force: bool = False, accept_collapse: bool = False
            ) -> dict[str, int]:
    """Run the unfinished runs on a Dask cluster; return counts of ok / failed / busy / skipped (a collapsed run
    counts as failed)."""
    from distributed import as_completed

    todo = pending(runs, rundir)
    counts = {"ok": 0, "failed": 0, "busy": 0, "skipped": len(runs) - len(todo)}
    jobs = max(1, min(jobs, len(todo)))
    log(f"{len(runs)} runs in {rundir}: {counts['skipped']} already finished, {len(todo)} to run "
        f"on {where(cluster, jobs, scheduler)}")
    write_json_atomic(rundir / PLAN_FILE, {"runs": [{"run_id": r.run_id, "notebook": Path(r.notebook).stem,
                                                     "parameters": r.parameters} for r in runs]})
    if not todo:
        return counts
    resources = resources or {}
    threads = threads_per_run(cluster if not scheduler else "remote", jobs, resources)
    with open_client(cluster, jobs, resources, scheduler) as client:
        slots = max(jobs, sum(client.nthreads().values())) if scheduler else jobs

        def submit(run: Run) -> Any:
            """Hand one run to the cluster (course notebooks by name, so a worker uses its own install)."""
            return client.submit(run_on_worker, _target(run), str(rundir / run.run_id), run.parameters, threads,
                                 force, accept_collapse, key=f"run-{run.run_id}", pure=False)

        waiting = iter(todo[slots:])  # submitted one by one as runs end: a worker holds only the run it runs
        futures = {submit(r): r for r in todo[:slots]}
        finished = as_completed(list(futures))
        for i, future in enumerate(finished, 1):
            run = futures[future]
            try:
                status = future.result()
            except Exception as err:  # the worker died on every try, or the cluster went away: record, go on
                status = _failed(run, rundir, err)
            counts["failed" if status["status"] == "collapsed" else status["status"]] += 1
            log(_line(i, len(todo), run.run_id, status))
            following = next(waiting, None)
            if following is not None:
                futures[nxt := submit(following)] = following
                finished.add(nxt)
    return counts


def sweep(grid_path: str | Path, out: str | Path | None = None, jobs: int | None = None,
          dry_run: bool = False, cluster: str = "local", scheduler: str | None = None, force: bool = False) -> int:
    """The `sweep` command: validate everything, then run on Dask (or print the unfinished runs' commands);
    0 if every run finished. `force`: run `profile gpu` where there is no CUDA."""
    from .params import check_device

    if not dry_run or (cluster in ("slurm", "pbs") and not scheduler):  # a plain dry run needs no Dask
        require_dask(cluster if not scheduler else "local")
    runs, rundir, grid = plan(grid_path, out)
    resources = check_resources(grid.get("resources"))
    if cluster not in CLUSTERS:
        raise CourseError(f"--cluster {cluster!r}: use one of {', '.join(CLUSTERS)}, or --scheduler tcp://HOST:8786")
    if cluster == "local" and not scheduler and not dry_run:  # the runs' kernels start on this machine
        for run in runs:
            check_device(run.parameters, force)
    if dry_run:
        if cluster != "local" and not scheduler:
            print(job_script(cluster, resources), file=sys.stderr)
        todo = pending(runs, rundir)
        for run in todo:
            print(command(run, rundir, bool(grid.get("accept_collapse"))))
        print(f"# {len(todo)} command(s) for the unfinished runs of {len(runs)} into {rundir} "
              f"({len(runs) - len(todo)} finished, not printed)", file=sys.stderr)
        return 0
    jobs = int(jobs or grid.get("jobs") or 1)
    counts = execute(runs, rundir, jobs, log=lambda text: print(text, flush=True), cluster=cluster,
                     scheduler=scheduler, resources=resources, force=force,
                     accept_collapse=bool(grid.get("accept_collapse")))
    print(f"{counts['skipped'] + counts['ok']} of {len(runs)} runs finished ({counts['skipped']} earlier), "
          f"{counts['failed']} failed, {counts['busy']} busy elsewhere; "
          f"next: python -m companion report {rundir}", flush=True)
    return 0 if counts["failed"] == counts["busy"] == 0 else 1
