"""Build the course notebooks from their jupytext sources (notebooks/src/*.py) and store them executed.

    python tools/build_notebooks.py                 # convert every source to notebooks/NN_name.ipynb
    python tools/build_notebooks.py 03 --execute    # convert and execute (profile from the notebook: auto → cpu here)
    python tools/build_notebooks.py 06 07 --adopt runs/bench-cpu   # store the executed notebooks of a course run

Executed notebooks are cleaned before they are stored: papermill's per-cell timestamps are dropped and
machine paths in outputs are replaced, so a re-run on another machine gives the same file.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "notebooks" / "src"
OUT = ROOT / "notebooks"
PATHS = [(re.escape(str(ROOT)), "<project>"), (re.escape(sys.prefix), "<env>"),
         (re.escape(str(Path.home())), "~"), (r"/tmp/[\w./-]+", "<tmp>")]


def convert(src: Path, target: Path | None = None) -> Path:
    """Write `target` (default <stem>.ipynb in notebooks/, or beside a source outside notebooks/src) from a source."""
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    target = target or (OUT if src.parent == SRC else src.parent) / f"{src.stem}.ipynb"
    nbformat.write(nb, target)
    return target


def _scrub(text: str) -> str:
    """Replace machine-specific paths with placeholders."""
    for pattern, repl in PATHS:
        text = re.sub(pattern, repl, text)
    return text


def clean(path: Path) -> None:
    """Drop papermill timestamps and machine paths from a stored notebook."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = _scrub(out["text"])
            for key in ("text/plain", "text/html", "text/markdown"):
                if key in out.get("data", {}):
                    value = out["data"][key]
                    out["data"][key] = _scrub(value if isinstance(value, str) else "".join(value))
    nbformat.write(nb, path)


def execute(path: Path) -> float:
    """Execute a notebook in place with papermill (results JSON to notebooks/); return seconds."""
    import papermill

    os.environ.setdefault("COURSE_RESULTS_DIR", str(OUT))
    start = time.perf_counter()
    papermill.execute_notebook(str(path), str(path), cwd=str(OUT), kernel_name="python3")
    clean(path)
    return time.perf_counter() - start


def adopt(run_dir: Path, number: str, out: Path = OUT) -> Path:
    """Store the executed notebook NN of a `python -m companion course` run folder (papermill's injected cell dropped)."""
    found = sorted(Path(run_dir).glob(f"{number}_*.ipynb"))
    if len(found) != 1:
        raise SystemExit(f"expected one executed notebook {number}_*.ipynb in {run_dir}, found {len(found)}")
    nb = nbformat.read(found[0], as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    target = Path(out) / found[0].name
    nbformat.write(nb, target)
    clean(target)
    return target


def main() -> None:
    """Convert (and optionally execute) the selected notebooks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="notebook numbers, e.g. 00 03, or .py sources (default: all)")
    parser.add_argument("--execute", action="store_true", help="execute and store outputs")
    parser.add_argument("--adopt", metavar="RUN_DIR", help="store the executed notebooks of a course run folder")
    args = parser.parse_args()
    if args.adopt:
        for number in args.only:
            print(f"{adopt(Path(args.adopt), number).relative_to(ROOT)} adopted from {args.adopt}", flush=True)
        return
    extra = [Path(a).resolve() for a in args.only if a.endswith(".py")]
    for src in sorted(SRC.glob("[0-9][0-9]_*.py")) + extra:
        if args.only and src not in extra and src.stem[:2] not in args.only:
            continue
        target = convert(src)
        note = f" executed in {execute(target):.0f} s" if args.execute else ""
        print(f"{target.relative_to(ROOT)}{note}", flush=True)


if __name__ == "__main__":
    main()
