"""Command line: `python -m companion run|course …` (also installed as the `companion` script)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import CourseError


def _parameters(pairs: list[list[str]] | None) -> dict:
    """`-p name value` pairs → a dict of Python values."""
    from .params import coerce

    return {name: coerce(value) for name, value in (pairs or [])}


def cmd_run(args: argparse.Namespace) -> int:
    """Run one notebook with parameters into a run folder."""
    from .runner import run_notebook

    out = run_notebook(args.notebook, args.out, _parameters(args.p), progress=not args.quiet)
    print(f"executed: {out}")
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    """Run every notebook with one profile; fail if any notebook failed."""
    from .runner import run_course

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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input prints one 'error: …' line and exits with status 2."""
    args = build_parser().parse_args(argv)
    if getattr(args, "out", "x") is None:
        args.out = f"runs/{args.profile}"
    try:
        return args.func(args)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
