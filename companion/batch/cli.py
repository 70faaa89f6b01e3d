"""Command line: `python -m companion run|course|sweep|report|student|check …` (also the `companion` script)."""
from __future__ import annotations

import argparse
import errno
import signal
import sys
from pathlib import Path

import pandas as pd

from ..core.errors import CourseError
from ..core.rates import choose_rates
from .classroom import check, make_student
from .nbgrader_export import export_course
from .report import report
from .runner import execute_run, run_course
from .sweep import sweep

COLLAPSED_EXIT = 3  # `run`: the notebook ran, but a classifier it trained did not learn (see --accept-collapse)


def _parameters(pairs: list[list[str]] | None, types: dict[str, str] | None = None) -> dict:
    """`-p name value` pairs → a dict of Python values (in the declared `types` where given: a str stays the text
    as written, true/yes/false/no are booleans); a name given twice is a CourseError."""
    from .params import from_text

    parameters: dict = {}
    for name, value in pairs or []:
        if name in parameters:
            raise CourseError(f"parameter {name!r} is given twice (-p {name} … twice): give each parameter once")
        parameters[name] = from_text(value, (types or {}).get(name))
    return parameters


def _declared_types(notebook: str) -> dict[str, str]:
    """Parameter name → declared type of a notebook (run options included where it declares `data`)."""
    from .params import RUN_OPTIONS, declared_parameters
    from .runner import find_notebook

    declared = declared_parameters(find_notebook(notebook))
    return {name: spec["type"] for name, spec in {**declared, **(RUN_OPTIONS if "data" in declared else {})}.items()}


def cmd_run(args: argparse.Namespace) -> int:
    """Run one notebook with parameters into a run folder (executed notebook, result JSON, status.json)."""

    parameters = _parameters(args.p, _declared_types(args.notebook))
    status = execute_run(args.notebook, args.out, parameters, progress=not args.quiet, force=args.force,
                         accept_collapse=args.accept_collapse)
    print(f"{status['status']}: {Path(args.out) / (status.get('notebook_file') or '')}"
          + (f" ({status['seconds']} s)" if status.get("seconds") is not None else "")
          + (f": {status['error']}" if status.get("error") else ""))
    return 0 if status["status"] == "ok" else COLLAPSED_EXIT if status["status"] == "collapsed" else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or with --dry-run print the commands of) every run of a YAML grid; resumable."""
    return sweep(args.grid, out=args.out, jobs=args.jobs, dry_run=args.dry_run, cluster=args.cluster,
                 scheduler=args.scheduler, force=args.force)


def cmd_report(args: argparse.Namespace) -> int:
    """Collect a run folder into report.csv, plots/*.png and report.md."""
    for kind, path in report(args.rundir).items():
        print(f"{kind}: {path}")
    return 0


def cmd_rates(args: argparse.Namespace) -> int:
    """The rate search: run a rate-search YAML until every best rate is bracketed, or choose from a report.csv."""
    if str(args.source).endswith((".yaml", ".yml")):
        from .rates import search

        return search(args.source, args.out, runs=args.runs, jobs=args.jobs, force=args.force)


    out = Path(args.out)
    if out.exists() and not args.force:
        raise CourseError(f"{out} exists: pass --force to replace it")
    if not Path(args.source).is_file():
        raise CourseError(f"no report {args.source!r}: pass a rate-search YAML (sweeps/rates.yaml) or the report.csv "
                          f"of a rate search (runs/rates/report.csv)")
    try:
        search = pd.read_csv(Path(args.source))
    except (ValueError, OSError, UnicodeDecodeError) as err:
        raise CourseError(f"cannot read {args.source} as a CSV table ({type(err).__name__}): pass the report.csv of "
                          f"a rate search") from None
    table = choose_rates(search)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    for row in table[table["chosen"]].itertuples():
        print(f"{row.setting}: lr {row.lr:.2g} (validation macro-F1 {row.val_macro_f1:.3f}, {row.position})")
    print(f"rates: {out}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """The rate search, the comparison and notebook 09 on a labelled file of the user's."""
    from .decide import decide

    notebook = decide(args.data, args.text_column, args.label_column, args.profile, args.out, args.jobs,
                      args.settings.split(",") if args.settings else None,
                      [int(s) for s in args.seeds.split(",")] if args.seeds else None)
    print(f"the report for {args.data}: {notebook}")
    return 0


def cmd_student(args: argparse.Namespace) -> int:
    """Write student versions of the notebooks (solution cells removed, outputs cleared), or an nbgrader course."""
    if args.nbgrader:
        written = export_course(args.nbgrader, args.notebooks or None, force=args.force)
        print(f"{len(written)} nbgrader assignment(s) in {args.nbgrader}/source: "
              f"cd {args.nbgrader} && nbgrader generate_assignment <name>")
        return 0
    written = make_student(args.out, args.notebooks or None, force=args.force)
    print(f"{len(written)} student notebook(s) in {args.out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Run a notebook and summarise its exercise checks (exit 0 when every one is correct)."""

    return check(args.notebook, profile=args.profile, execute=not args.no_execute, out=args.out,
                 timeout=args.timeout, force=args.force)


def cmd_course(args: argparse.Namespace) -> int:
    """Run every notebook with one profile; fail if any notebook failed."""

    from ..core.results import write_json_atomic

    rows = run_course(args.out, args.profile, args.only, force=args.force)
    write_json_atomic(Path(args.out) / "course_run.json", rows)
    failed = [r for r in rows if r["status"] != "ok"]
    total = sum(r["seconds"] for r in rows)
    print(f"{len(rows) - len(failed)} of {len(rows)} notebooks ran ({total:.0f} s); results in {args.out}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-command per task."""
    parser = argparse.ArgumentParser(prog="companion", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one notebook: companion run 05 -p profile smoke -p seed 1")
    run.add_argument("notebook", help="number, name or path, e.g. 05 or 05_domain_adaptation")
    run.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter")
    run.add_argument("--out", default="runs/single", help="run folder (default runs/single)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--force", action="store_true", help="run profile gpu even on a machine without CUDA")
    run.add_argument("--accept-collapse", action="store_true",
                     help="a classifier that did not train (one class predicted, or no better than the majority "
                          "class) is reported but the run counts as ok (exit 0)")
    run.set_defaults(func=cmd_run)
    course = sub.add_parser("course", help="run every notebook in order")
    course.add_argument("--profile", default="cpu", choices=["auto", "smoke", "cpu", "gpu"])
    course.add_argument("--out", default=None, help="run folder (default runs/<profile>)")
    course.add_argument("--only", nargs="*", help="only these notebook numbers, e.g. --only 00 01")
    course.add_argument("--force", action="store_true", help="run profile gpu even on a machine without CUDA")
    course.set_defaults(func=cmd_course)
    sweep = sub.add_parser("sweep", help="run a YAML grid of notebooks × parameters × seeds (resumable)")
    sweep.add_argument("grid", help="a sweep file, e.g. sweeps/example.yaml (schema: sweeps/README.md)")
    sweep.add_argument("--jobs", type=int, default=None,
                       help="parallel runs: local worker processes or batch jobs (default: the file's jobs, else 1)")
    sweep.add_argument("--out", default=None, help="run folder (default: the file's out, else runs/<file name>)")
    sweep.add_argument("--dry-run", action="store_true", help="print one shell command per run, run nothing")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--cluster", default="local", choices=["local", "slurm", "pbs"],
                       help="local: a Dask LocalCluster here (default); slurm/pbs: workers as batch jobs "
                            "(dask-jobqueue) with the file's resources:")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="submit to a running Dask cluster, e.g. tcp://HOST:8786")
    sweep.add_argument("--force", action="store_true", help="run profile gpu even where there is no CUDA")
    sweep.set_defaults(func=cmd_sweep)
    report = sub.add_parser("report", help="report.csv + plots + report.md from a run folder")
    report.add_argument("rundir", help="the --out folder of a sweep (or of runs)")
    report.set_defaults(func=cmd_report)
    rates = sub.add_parser("rates", help="the rate search on validation: run a rate-search YAML (extended until the "
                                         "best rate of every setting is bracketed), or choose from its report.csv")
    rates.add_argument("source", help="a rate-search YAML (sweeps/rates.yaml) or the report.csv of one")
    rates.add_argument("--out", required=True, help="the rates CSV, e.g. sweeps/results/rates-cpu.csv")
    rates.add_argument("--runs", help="the search's run folder (default: the YAML's out)")
    rates.add_argument("--jobs", type=int, help="parallel runs (default: the YAML's jobs)")
    rates.add_argument("--force", action="store_true", help="replace an existing rates CSV")
    rates.set_defaults(func=cmd_rates)
    decide = sub.add_parser("decide", help="the course's comparison on your own data: rate search, 5 seeds, notebook 09")
    decide.add_argument("data", help="a .csv/.jsonl/.parquet file with a text column and a label column")
    decide.add_argument("--text-column", default="text")
    decide.add_argument("--label-column", default="label")
    decide.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "gpu"])
    decide.add_argument("--out", help="the folder of every run and the report (default runs/decide/<file name>)")
    decide.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    decide.add_argument("--settings", help="only these entries of sweeps/strategies.yaml, comma-separated (e.g. full,lora)")
    decide.add_argument("--seeds", help="the comparison's seeds, comma-separated (default: the protocol's)")
    decide.set_defaults(func=cmd_decide)
    student = sub.add_parser("student", help="student notebooks: solution cells removed, outputs cleared")
    student.add_argument("notebooks", nargs="*", help="numbers, names or paths (default: every notebook)")
    student.add_argument("--out", default="student", help="output folder (default student/)")
    student.add_argument("--force", action="store_true", help="overwrite notebooks that already exist there")
    student.add_argument("--nbgrader", metavar="COURSE_DIR", default=None,
                         help="write an nbgrader course instead (COURSE_DIR/source/<assignment>/<notebook>.ipynb)")
    student.set_defaults(func=cmd_student)
    check = sub.add_parser("check", help="run a notebook and summarise its exercise checks")
    check.add_argument("notebook", help="number, name or path (e.g. your edited copy of a notebook)")
    check.add_argument("--profile", default="smoke", choices=["auto", "smoke", "cpu", "gpu"])
    check.add_argument("--no-execute", action="store_true", help="read the outputs saved in the notebook")
    check.add_argument("--out", default=None, help="where the executed copy goes (default: a temp folder)")
    check.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="the most seconds one cell may run (default 300; a cell over it fails its exercise)")
    check.add_argument("--force", action="store_true", help="run profile gpu even on a machine without CUDA")
    check.set_defaults(func=cmd_check)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM ends a command as Ctrl-C does (its run is recorded as interrupted, its kernel stopped)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input (or a full disk) prints one 'error: …' line and exits with status 2; Ctrl-C or SIGTERM
    prints one line and exits with status 130."""
    args = build_parser().parse_args(argv)
    if args.command == "course" and args.out is None:
        args.out = f"runs/{args.profile}"
    previous = signal.signal(signal.SIGTERM, _interrupt) if _main_thread() else None
    try:
        return args.func(args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: companion {args.command} stopped (Ctrl-C or SIGTERM); a run it was running is recorded "
              f"as interrupted and redone by a rerun", file=sys.stderr)
        return 130
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        print(f"error: no space left on device (writing {err.filename or 'a file'}): free some space, or choose "
              f"another --out", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    """Whether this is the main thread (the only one that may install signal handlers)."""
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
