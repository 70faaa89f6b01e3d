"""Command line: `python -m companion run|course|sweep|report|student|check …` (also the `companion` script)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from ..core.errors import CourseError
from ..core.rates import choose_rates
from .classroom import check, make_student
from .nbgrader_export import export_course
from .params import coerce
from .report import report
from .runner import execute_run, run_course
from .sweep import sweep


def _parameters(pairs: list[list[str]] | None) -> dict:
    """`-p name value` pairs → a dict of Python values; a name given twice is a CourseError."""
    parameters: dict = {}
    for name, value in pairs or []:
        if name in parameters:
            raise CourseError(f"parameter {name!r} is given twice (-p {name} … twice): give each parameter once")
        parameters[name] = coerce(value)
    return parameters


def cmd_run(args: argparse.Namespace) -> int:
    """Run one notebook with parameters into a run folder (executed notebook, result JSON, status.json)."""
    status = execute_run(args.notebook, args.out, _parameters(args.p), progress=not args.quiet)
    print(f"{status['status']}: {Path(args.out) / (status.get('notebook_file') or '')}"
          + (f" ({status['seconds']} s)" if status.get("seconds") is not None else "")
          + (f": {status['error']}" if status.get("error") else ""))
    return 0 if status["status"] == "ok" else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run (or with --dry-run print the commands of) every run of a YAML grid; resumable."""
    return sweep(args.grid, out=args.out, jobs=args.jobs, dry_run=args.dry_run, cluster=args.cluster,
                 scheduler=args.scheduler)


def cmd_report(args: argparse.Namespace) -> int:
    """Collect a run folder into report.csv, plots/*.png and report.md."""
    for kind, path in report(args.rundir).items():
        print(f"{kind}: {path}")
    return 0


def cmd_rates(args: argparse.Namespace) -> int:
    """Choose each strategy's rate from a rate search's report (validation macro-F1) and write the rates CSV."""
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CourseError(f"{out} exists: pass --force to replace it")
    table = choose_rates(pd.read_csv(Path(args.report)))
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    for row in table[table["chosen"]].itertuples():
        print(f"{row.strategy}: lr {row.lr:.2g} (validation macro-F1 {row.val_macro_f1:.3f})")
    print(f"rates: {out}")
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
    return check(args.notebook, profile=args.profile, execute=not args.no_execute, out=args.out)


def cmd_course(args: argparse.Namespace) -> int:
    """Run every notebook with one profile; fail if any notebook failed."""
    rows = run_course(args.out, args.profile, args.only)
    (Path(args.out) / "course_run.json").write_text(json.dumps(rows, indent=2))
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
    run.set_defaults(func=cmd_run)
    course = sub.add_parser("course", help="run every notebook in order")
    course.add_argument("--profile", default="cpu", choices=["auto", "smoke", "cpu", "gpu"])
    course.add_argument("--out", default=None, help="run folder (default runs/<profile>)")
    course.add_argument("--only", nargs="*", help="only these notebook numbers, e.g. --only 00 01")
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
    sweep.set_defaults(func=cmd_sweep)
    report = sub.add_parser("report", help="report.csv + plots + report.md from a run folder")
    report.add_argument("rundir", help="the --out folder of a sweep (or of runs)")
    report.set_defaults(func=cmd_report)
    rates = sub.add_parser("rates", help="choose each strategy's rate from a rate search (validation only)")
    rates.add_argument("report", help="report.csv of the rate search (make rates runs sweeps/rates.yaml)")
    rates.add_argument("--out", required=True, help="the rates CSV, e.g. sweeps/results/rates-cpu.csv")
    rates.add_argument("--force", action="store_true", help="replace an existing rates CSV")
    rates.set_defaults(func=cmd_rates)
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
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input prints one 'error: …' line and exits with status 2."""
    args = build_parser().parse_args(argv)
    if args.command == "course" and args.out is None:
        args.out = f"runs/{args.profile}"
    try:
        return args.func(args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
