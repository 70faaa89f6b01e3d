"""Build the course website from the stored notebooks, offline: one page per notebook, in course order.

    python tools/build_site.py                  # every notebooks/NN_*.ipynb -> _site/
    python tools/build_site.py --only 00 03 --out /tmp/site

Pages are nbconvert's JupyterLab HTML (plots embedded, tables as HTML) with a navigation bar, a box that says
how to run the notebook, and solution cells (tagged `solution`) collapsed. Math is typeset in the browser by
the MathJax shipped in the `jupyter-server-mathjax` package, copied into the site: no page needs the network.
"""
from __future__ import annotations

import argparse
import html
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SITE_SRC = ROOT / "site"
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
NO_ALT = "No description has been provided for this image"  # what nbconvert writes for a plot without alt text


@dataclass
class Page:
    """One notebook of the course and the page it becomes."""

    path: Path
    title: str
    summary: str

    @property
    def number(self) -> str:
        """The notebook number, e.g. '03'."""
        return self.path.stem[:2]

    @property
    def html_name(self) -> str:
        """The page's file name in the site."""
        return f"{self.path.stem}.html"


def read_page(path: Path) -> Page:
    """Title (the first markdown heading) and summary (the paragraph after it) of a stored notebook."""
    nb = nbformat.read(path, as_version=4)
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    lines = first.splitlines()
    title = next((ln.lstrip("# ").strip() for ln in lines if ln.startswith("#")), path.stem)
    paragraphs = [p.strip() for p in "\n".join(ln for ln in lines if not ln.startswith("#")).split("\n\n")]
    summary = next((p for p in paragraphs if p), "")
    return Page(path, title, " ".join(summary.split()))


def select(only: list[str] | None) -> list[Page]:
    """The stored notebooks in course order, optionally only the given numbers."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if p.stem[:2] in only]
    if not paths:
        raise SystemExit(f"no stored notebooks matched {only or 'notebooks/NN_*.ipynb'}")
    return [read_page(p) for p in paths]


def nav_html(pages: list[Page], current: Page | None) -> str:
    """The navigation bar: course home, previous / next, and every notebook by number."""
    links = ['<a class="course-home" href="index.html">Course home</a>']
    if current is not None:
        i = pages.index(current)
        if i > 0:
            links.append(f'<a rel="prev" href="{pages[i - 1].html_name}">← {html.escape(pages[i - 1].title)}</a>')
        if i + 1 < len(pages):
            links.append(f'<a rel="next" href="{pages[i + 1].html_name}">{html.escape(pages[i + 1].title)} →</a>')
    for page in pages:
        cls = ' class="current"' if page is current else ""
        links.append(f'<a{cls} href="{page.html_name}" title="{html.escape(page.title)}">{page.number}</a>')
    return f'<nav class="course-nav">{" ".join(links)}</nav>'


def run_html(page: Page) -> str:
    """How to run this notebook yourself: in JupyterLab, with the course CLI, or with papermill."""
    nb = f"notebooks/{page.path.name}"
    commands = [
        ("Open it in JupyterLab", f"make setup &amp;&amp; .venv/bin/jupyter lab {nb}"),
        ("Run it (executed copy + results JSON in runs/single/)", f".venv/bin/python -m companion run {page.number}"),
        ("A quick smoke run", f".venv/bin/python -m companion run {page.number} -p profile smoke --out runs/smoke"),
        ("With papermill",
         f"mkdir -p runs &amp;&amp; .venv/bin/papermill {nb} runs/{page.path.name} -p profile cpu --cwd notebooks"),
    ]
    items = "".join(f"<li>{label}: <code>{cmd}</code></li>" for label, cmd in commands)
    return (f'<div class="course-run"><strong>Run this notebook</strong> (from the root of the course repository; '
            f"the page shows its stored outputs):<ul>{items}</ul></div>")


def exporter():
    """nbconvert's HTML exporter with the course template."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="course", extra_template_basedirs=[str(SITE_SRC / "templates")])


def _describe_images(body: str, title: str) -> str:
    """Replace nbconvert's placeholder alternative text of each plot with 'Figure N of <page title>'."""
    parts = body.split(f'alt="{NO_ALT}"')
    return "".join(part + (f'alt="Figure {i + 1} of {html.escape(title)}, made by the code cell above it"'
                           if i + 1 < len(parts) else "") for i, part in enumerate(parts))


def render(page: Page, pages: list[Page], out: Path) -> Path:
    """Write one notebook's page."""
    nb = nbformat.read(page.path, as_version=4)
    resources = {"metadata": {"name": page.title},
                 "site": {"mathjax_url": MATHJAX_URL, "css_url": "course.css",
                          "nav_html": nav_html(pages, page), "run_html": run_html(page)}}
    html_exporter = exporter()
    html_exporter.log.setLevel(logging.ERROR)  # its "alternative text is missing" notice: we set our own below
    body, _ = html_exporter.from_notebook_node(nb, resources=resources)
    body = _describe_images(body, page.title)
    target = out / page.html_name
    target.write_text(body, encoding="utf-8")
    return target


def index_html(pages: list[Page]) -> str:
    """The home page: the notebooks in course order with their summaries."""
    items = "".join(
        f'<li><a href="{p.html_name}">{html.escape(p.title)}</a>'
        f'<div class="summary">{html.escape(re.sub(r"[*`]", "", p.summary))}</div></li>' for p in pages)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">"
            "<title>Domain adaptation and fine-tuning strategies for language models</title>"
            "<link rel=\"stylesheet\" href=\"course.css\">"
            "<link rel=\"icon\" href=\"favicon.svg\" type=\"image/svg+xml\">"
            "</head><body>"
            f"{nav_html(pages, None)}<h1>Domain adaptation and fine-tuning strategies for language models</h1>"
            "<p>The course's notebooks with their stored outputs, in order. Each page says how to run it yourself "
            "(<code>make setup</code> first, then JupyterLab or <code>python -m companion run NN</code>).</p>"
            f'<ol class="course-index" start="0">{items}</ol></body></html>\n')


def copy_assets(out: Path) -> None:
    """Copy the course stylesheet, its icon and the packaged MathJax into the site."""
    import jupyter_server_mathjax

    for name in ("course.css", "favicon.svg"):
        shutil.copy(SITE_SRC / name, out / name)
    mathjax = Path(jupyter_server_mathjax.__file__).parent / "static"
    shutil.copytree(mathjax, out / "mathjax", dirs_exist_ok=True)


def build(out: Path, only: list[str] | None = None) -> list[Path]:
    """Build the site into `out` (its previous pages are replaced); return the pages written."""
    pages = select(only)
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out)
    written = [render(page, pages, out) for page in pages]
    index = out / "index.html"
    index.write_text(index_html(pages), encoding="utf-8")
    return [index, *written]


def main() -> None:
    """Parse the command line and build."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "_site"), help="output folder (default _site/)")
    parser.add_argument("--only", nargs="*", help="only these notebook numbers, e.g. --only 00 03")
    args = parser.parse_args()
    written = build(Path(args.out), args.only)
    print(f"{len(written)} pages in {args.out}: open {Path(args.out) / 'index.html'}")


if __name__ == "__main__":
    main()
