"""Build the course notebooks from their jupytext sources (notebooks/src/*.py) and store them executed.

    python tools/build_notebooks.py                 # convert every source to notebooks/NN_name.ipynb
    python tools/build_notebooks.py 03 --execute    # convert and execute (profile from the notebook: auto → cpu here)
    python tools/build_notebooks.py 06 07 --adopt runs/bench-cpu   # store the executed notebooks of a course run
    python tools/build_notebooks.py --markdown      # only the Markdown of the sources (code unchanged: outputs stay)
    python tools/build_notebooks.py --kernelspec     # only store the installed kernelspec (opening changes nothing)
    python tools/build_notebooks.py --metadata       # only store the course number in the notebooks' metadata

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
STORED_RESULTS = OUT / "results"  # the stored notebooks' results JSON (tests/test_claims.py checks the prose against them)
PATHS = [(re.escape(str(ROOT)), "<project>"), (re.escape(sys.prefix), "<env>"),
         (re.escape(str(Path.home())), "~"), (r"/tmp/[\w./-]+", "<tmp>")]


def kernelspec(name: str = "python3") -> dict[str, str]:
    """The installed kernel's metadata exactly as JupyterLab stores it (so opening a notebook changes nothing);
    ipykernel's own spec when no kernel is installed yet."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
        return {"display_name": spec.display_name, "language": spec.language, "name": name}
    except NoSuchKernel:
        from ipykernel.kernelspec import get_kernel_dict

        spec = get_kernel_dict()
        return {"display_name": spec["display_name"], "language": spec["language"], "name": name}


def set_kernelspec(path: Path) -> bool:
    """Store the installed kernel's metadata in a stored notebook, nothing else changed; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    if nb.metadata.get("kernelspec") == kernelspec():
        return False
    nb.metadata["kernelspec"] = kernelspec()
    nbformat.write(nb, path)
    return True


def course_metadata(stem: str) -> dict[str, str]:
    """The notebook's own record of its course number ({"notebook": "06"}), by which `companion check` finds its
    exercise checks even in a renamed copy; {} for a notebook outside the numbered course."""
    return {"notebook": stem[:2]} if re.match(r"\d\d_", stem) else {}


def set_course_metadata(path: Path) -> bool:
    """Store the course number in a stored notebook's metadata, nothing else changed; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    if not course_metadata(path.stem) or nb.metadata.get("companion") == course_metadata(path.stem):
        return False
    nb.metadata["companion"] = course_metadata(path.stem)
    nbformat.write(nb, path)
    return True


def convert(src: Path, target: Path | None = None) -> Path:
    """Write `target` (default <stem>.ipynb in notebooks/, or beside a source outside notebooks/src) from a source."""
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = kernelspec()
    nb.metadata.pop("jupytext", None)
    if course_metadata(src.stem):
        nb.metadata["companion"] = course_metadata(src.stem)
    target = target or (OUT if src.parent == SRC else src.parent) / f"{src.stem}.ipynb"
    nbformat.write(nb, target)
    return target


def _scrub(text: str) -> str:
    """Replace machine-specific paths with placeholders."""
    for pattern, repl in PATHS:
        text = re.sub(pattern, repl, text)
    return text


WARNING = re.compile(r"^\S.*\b\w*Warning\b")  # `path:line: FutureWarning: ...` (its indented source line follows)


def _final_lines(text: str) -> list[str]:
    """The lines a terminal would show: of the `\r`-separated states of a progress bar, only the last."""
    lines = []
    for line in text.split("\n"):
        shown = [part for part in line.split("\r") if part.strip()]
        if shown:
            lines.append(shown[-1].rstrip())
    return lines


def _without_warnings(lines: list[str]) -> list[str]:
    """Drop library warnings (`...Warning: ...` and the indented lines that follow one)."""
    kept, in_warning = [], False
    for line in lines:
        if WARNING.match(line):
            in_warning = True
        elif not (in_warning and line[:1].isspace()):
            in_warning = False
            kept.append(line)
    return kept


def clean_stderr(outputs: list) -> list:
    """One stderr output per cell: each progress bar's final line, no warnings (stdout and others untouched)."""
    stderr = [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    if not stderr:
        return outputs
    lines = _without_warnings(_final_lines("".join(o["text"] for o in stderr)))
    first = outputs.index(stderr[0])
    kept = [o for o in outputs if not any(o is s for s in stderr)]
    if lines:
        kept.insert(first, nbformat.v4.new_output("stream", name="stderr", text="\n".join(lines) + "\n"))
    return kept


def clean(path: Path) -> None:
    """Drop papermill timestamps, machine paths, library warnings and all but the last state of progress bars."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = kernelspec()  # the installed kernel's, whatever the executed copy said
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = clean_stderr(cell.outputs)
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

    STORED_RESULTS.mkdir(exist_ok=True)
    os.environ.setdefault("COURSE_RESULTS_DIR", str(STORED_RESULTS))
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
    results = found[0].with_name(found[0].stem + ".results.json")
    if results.is_file():  # the numbers the stored notebook shows, kept beside it for tests/test_claims.py
        STORED_RESULTS.mkdir(exist_ok=True)
        (STORED_RESULTS / results.name).write_text(results.read_text())
    return target


def sync_markdown(src: Path, stored: Path) -> bool:
    """Copy the source's Markdown cells into the stored notebook, whose code must be the source's (Markdown does not
    change what a run computes, so the outputs stay valid); refuse when a code cell differs. True when changed."""
    fresh, nb = jupytext.read(src), nbformat.read(stored, as_version=4)
    code = lambda cells: [(c.cell_type, c.source) for c in cells if c.cell_type == "code"]  # noqa: E731
    if code(fresh.cells) != code(nb.cells) or len(fresh.cells) != len(nb.cells):
        raise SystemExit(f"{stored.name}: its code differs from {src.name}: re-execute it (--execute or --adopt)")
    changed = False
    for new, old in zip(fresh.cells, nb.cells):
        if new.cell_type == "markdown" and new.source != old.source:
            old.source, changed = new.source, True
    if changed:
        nbformat.write(nb, stored)
    return changed


def main() -> None:
    """Convert (and optionally execute) the selected notebooks."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("only", nargs="*", help="notebook numbers, e.g. 00 03, or .py sources (default: all)")
    parser.add_argument("--execute", action="store_true", help="execute and store outputs")
    parser.add_argument("--adopt", metavar="RUN_DIR", help="store the executed notebooks of a course run folder")
    parser.add_argument("--kernelspec", action="store_true",
                        help="only store the installed kernelspec in the stored notebooks (nothing else changes)")
    parser.add_argument("--metadata", action="store_true",
                        help="only store the course number in the stored notebooks' metadata (nothing else changes)")
    parser.add_argument("--markdown", action="store_true",
                        help="only copy the sources' Markdown cells into the stored notebooks (their code must match)")
    args = parser.parse_args()
    if args.markdown:
        for src in sorted(SRC.glob("[0-9][0-9]_*.py")):
            if (not args.only or src.stem[:2] in args.only) and sync_markdown(src, OUT / f"{src.stem}.ipynb"):
                print(f"notebooks/{src.stem}.ipynb: Markdown from {src.name}", flush=True)
        return
    if args.metadata:
        for path in sorted(OUT.glob("[0-9][0-9]_*.ipynb")):
            if (not args.only or path.stem[:2] in args.only) and set_course_metadata(path):
                print(f"{path.relative_to(ROOT)}: metadata companion.notebook = {path.stem[:2]!r}", flush=True)
        return
    if args.kernelspec:
        for path in sorted(OUT.glob("[0-9][0-9]_*.ipynb")):
            if (not args.only or path.stem[:2] in args.only) and set_kernelspec(path):
                print(f"{path.relative_to(ROOT)}: kernelspec {kernelspec()['display_name']!r}", flush=True)
        return
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
