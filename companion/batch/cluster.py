"""Where a sweep's runs execute: a Dask cluster (a LocalCluster on this machine, an existing cluster reached by
its scheduler address, or Slurm / PBS batch jobs through dask-jobqueue), each worker running one run at a time.
Resources come from the optional `resources:` section of the sweep file; the schema is in sweeps/README.md.

Dask is the package's `cluster` extra, so it is imported only inside the functions that start or reach a cluster,
after `require_dask` has turned its absence into one CourseError that says how to install it.
"""
from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..core.errors import CourseError
from .runner import execute_run

CLUSTERS = ("local", "slurm", "pbs")
RESOURCE_KEYS = ("cores", "memory", "walltime", "partition", "gpus", "account", "setup")
BATCH_DEFAULTS = {"cores": 2, "memory": "8GB", "walltime": "02:00:00"}
CONNECT_TIMEOUT_S = 5
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[\w.\-\[\]:]+:\d+$")
INSTALL_CLUSTER = "pip install 'companion[cluster]' (or `make setup`, which installs it)"


def require_dask(cluster: str = "local") -> None:
    """Check that the `cluster` extra is installed (Dask, distributed; dask-jobqueue for slurm / pbs), else one
    CourseError saying how to install it."""
    needed = ("dask", "distributed") + (("dask_jobqueue",) if cluster in ("slurm", "pbs") else ())
    missing = []
    for name in needed:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name.replace("_", "-"))
    if missing:
        raise CourseError(f"sweeps run on Dask, and {', '.join(missing)} is not installed here: {INSTALL_CLUSTER}; "
                          f"without it, `companion sweep GRID --dry-run` prints one `companion run` command per run")


def _positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """An int ≥ `minimum` (not a bool), else a CourseError naming the key."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CourseError(f"resources.{name} must be a whole number ≥ {minimum}, got {value!r}")
    return value


def check_resources(resources: Any) -> dict[str, Any]:
    """The sweep file's `resources:` mapping with every key's type checked (one CourseError saying the fix)."""
    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise CourseError(f"`resources:` must be a mapping such as {{cores: 4, memory: 16GB}}, got {resources!r}")
    unknown = [k for k in resources if k not in RESOURCE_KEYS]
    if unknown:
        raise CourseError(f"resources: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"valid keys: {', '.join(RESOURCE_KEYS)}")
    checked = dict(resources)
    if "cores" in checked:
        _positive_int(checked["cores"], "cores")
    if "gpus" in checked:
        _positive_int(checked["gpus"], "gpus", minimum=0)
    if "memory" in checked:
        require_dask()
        from dask.utils import parse_bytes

        try:
            parse_bytes(str(checked["memory"]))
        except ValueError:
            raise CourseError(f"resources.memory must be a size such as 16GB, got {checked['memory']!r}") from None
    if "walltime" in checked and not (isinstance(checked["walltime"], str)
                                      and re.fullmatch(r"(\d+-)?\d+(:\d\d){0,2}", checked["walltime"])):
        raise CourseError(f"resources.walltime must be a quoted time such as \"02:00:00\", "
                          f"got {checked['walltime']!r}")
    for key in ("partition", "account"):
        if key in checked and not isinstance(checked[key], str):
            raise CourseError(f"resources.{key} must be a name (text), got {checked[key]!r}")
    setup = checked.get("setup", [])
    if not isinstance(setup, list) or not all(isinstance(line, str) for line in setup):
        raise CourseError("resources.setup must be a list of shell lines, e.g. "
                          "[\"source /shared/course/.venv/bin/activate\"]")
    return checked


def threads_per_run(cluster: str, jobs: int, resources: dict[str, Any]) -> int | None:
    """Threads each run's kernel may use: `cores`, else (locally) this machine's cores shared by the jobs."""
    if "cores" in resources:
        return int(resources["cores"])
    if cluster == "local":
        if os.environ.get("OMP_NUM_THREADS", "").isdigit():  # the caller's own choice wins
            return int(os.environ["OMP_NUM_THREADS"])
        return max(1, len(os.sched_getaffinity(0)) // max(1, jobs))
    return BATCH_DEFAULTS["cores"] if cluster in ("slurm", "pbs") else None


def batch_cluster(kind: str, resources: dict[str, Any]) -> Any:
    """A dask-jobqueue SLURMCluster / PBSCluster whose every job is one single-threaded worker (no jobs yet)."""
    require_dask(kind)
    from dask_jobqueue import PBSCluster, SLURMCluster
    from dask_jobqueue.pbs import pbs_format_bytes_ceil
    from dask.utils import parse_bytes

    res = {**BATCH_DEFAULTS, **resources}
    common = {"cores": 1, "processes": 1, "memory": str(res["memory"]), "walltime": res["walltime"],
              "queue": res.get("partition"), "account": res.get("account"), "job_name": "companion-sweep",
              "job_script_prologue": list(res.get("setup", [])), "log_directory": None}
    if kind == "slurm":
        gres = [f"--gres=gpu:{res['gpus']}"] if res.get("gpus") else []
        return SLURMCluster(job_cpu=int(res["cores"]), job_extra_directives=gres, **common)
    spec = f"select=1:ncpus={int(res['cores'])}:mem={pbs_format_bytes_ceil(parse_bytes(str(res['memory'])))}"
    return PBSCluster(resource_spec=spec + (f":ngpus={res['gpus']}" if res.get("gpus") else ""), **common)


def job_script(kind: str, resources: dict[str, Any]) -> str:
    """The batch script one worker job would be submitted with (nothing is submitted)."""
    cluster = batch_cluster(kind, resources)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def _connect(address: str) -> Any:
    """A Client of the running Dask scheduler at `address`, or one CourseError within CONNECT_TIMEOUT_S."""
    from distributed import Client

    if not ADDRESS.match(address):
        raise CourseError(f"--scheduler {address!r} is not a Dask scheduler address: use tcp://HOST:8786")
    try:
        return Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError) as err:
        raise CourseError(f"no Dask scheduler answered at {address} within {CONNECT_TIMEOUT_S} s "
                          f"({type(err).__name__}): start one with `dask scheduler` (and workers with "
                          f"`dask worker {address} --nthreads 1`), or check the address and the firewall") from None


@contextmanager
def open_client(cluster: str = "local", jobs: int = 1, resources: dict[str, Any] | None = None,
                scheduler: str | None = None) -> Iterator[Any]:
    """A Dask Client for the sweep: an existing scheduler, or a cluster started here and closed at the end."""
    require_dask(cluster if not scheduler else "local")
    from distributed import Client, LocalCluster

    if scheduler:
        client = _connect(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    if cluster not in CLUSTERS:
        raise CourseError(f"--cluster {cluster!r}: use one of {', '.join(CLUSTERS)}, or --scheduler tcp://HOST:8786")
    if cluster == "local":
        made = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, memory_limit=0,
                            dashboard_address=":0", silence_logs=logging.ERROR)  # the sweep logs each run
    else:
        made = batch_cluster(cluster, resources or {})
        made.scale(jobs=jobs)
    try:
        with Client(made) as client:
            yield client
    finally:
        made.close()


def where(cluster: str, jobs: int, scheduler: str | None) -> str:
    """The cluster in words, for the sweep's first line."""
    if scheduler:
        return f"the Dask cluster at {scheduler}"
    return f"{jobs} local worker process(es)" if cluster == "local" else f"{jobs} {cluster} worker job(s)"


def run_on_worker(notebook: str, run_dir: str, parameters: dict[str, Any], threads: int | None,
                  force: bool = False, accept_collapse: bool = False) -> dict[str, Any]:
    """The task a Dask worker runs: one run into its folder, skipped under the lock if already finished."""
    for name in THREAD_VARIABLES if threads else ():
        os.environ[name] = str(threads)  # the kernel inherits them (a Dask nanny sets 1 by default)
    return execute_run(notebook, run_dir, parameters, skip_finished=True, force=force, accept_collapse=accept_collapse)
