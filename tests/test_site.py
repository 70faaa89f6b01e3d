"""The course website (tools/build_site.py) in a real browser: headless Chromium from Debian's `chromium` package.

The whole site is built from the stored notebooks (about 20 s) and served on localhost. Every page must load with
no console error, typeset all its math with the site's own MathJax, and load every plot of its notebook.
Screenshots of two pages (and of an opened solution) go to build/site-screenshots/ for a person to look at.
`make test` installs chromium when it is missing; without it this test fails, it does not skip.
"""
from __future__ import annotations

import functools
import re
import http.server
import shutil
import socketserver
import sys
import threading
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

SHOTS = ROOT / "build" / "site-screenshots"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
MATH_DONE = ("return !!(window.MathJax && MathJax.Hub && MathJax.Hub.queue "
             "&& MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The whole site."""
    out = tmp_path_factory.mktemp("site")
    build_site.build(out)
    return out


@pytest.fixture(scope="module")
def server(site: Path):
    """The site served over HTTP on a free localhost port."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        """No request log on stderr."""


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by selenium; fails (never skips) when chromium is not installed."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium is not installed: `apt-get install -y chromium chromium-driver` (make test does it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(browser, url: str) -> list[dict]:
    """Load a page, wait for MathJax to finish if the page has it; return the console's errors."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")
    if browser.execute_script("return !!window.MathJax"):
        WebDriverWait(browser, 90).until(lambda d: d.execute_script(MATH_DONE))
    return [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _notebook(page: str) -> nbformat.NotebookNode:
    """The stored notebook a page was built from."""
    return nbformat.read(ROOT / "notebooks" / page.replace(".html", ".ipynb"), as_version=4)


def _formulas(page: str) -> int:
    """How many $...$ / $$...$$ formulas the markdown cells of a page's notebook hold."""
    text = "\n".join(c.source for c in _notebook(page).cells if c.cell_type == "markdown")
    return len(re.findall(r"\$\$.+?\$\$|\$[^$\n]+?\$", text, flags=re.S))


def _plots(page: str) -> int:
    """How many images the outputs of a page's notebook hold."""
    return sum(any(k.startswith("image/") for k in o.get("data", {}))
               for c in _notebook(page).cells if c.cell_type == "code" for o in c.outputs)


def test_site_pages_in_order_with_navigation(site: Path) -> None:
    """The index lists the notebooks in course order; each page links home, to its neighbour, and shows how to run."""
    index = (site / "index.html").read_text()
    assert index.index("00_setup.html") < index.index("03_attention.html")
    page = (site / "00_setup.html").read_text()
    assert 'href="index.html"' in page and '<a href="01_lm_probability.html" rel="next">' in page
    assert "python -m companion run 00" in page and "jupyter lab notebooks/00_setup.ipynb" in page
    assert "papermill notebooks/00_setup.ipynb" in page
    assert page.count('<details class="course-solution">') >= 1
    assert _formulas("03_attention.html") > 0, "the site must hold math to check"
    assert 'alt="Figure 1 of 00 · Setup and tour' in page and build_site.NO_ALT not in page
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page), "a page must not load anything from the network"


def test_site_in_chromium(site: Path, server: str, browser) -> None:
    """Every page: no console error, all math typeset, every plot loaded, solutions collapsed; two screenshots."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    pages = ["index.html"] + [p.name for p in sorted(site.glob("[0-9][0-9]_*.html"))]
    assert len(pages) == 1 + len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for name in pages:
        errors = _open(browser, f"{server}/{name}")
        assert not errors, f"{name}: console errors {errors}"
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert all(done and width > 0 for done, width in images), f"{name}: images not loaded {images}"
        if name == "index.html":
            continue
        assert len(images) == _plots(name), f"{name}: {len(images)} images for {_plots(name)} plots in the notebook"
        math = browser.execute_script("return document.querySelectorAll('span.MathJax').length")
        raw = browser.execute_script("return document.querySelectorAll('script[type^=\"math/tex\"]').length")
        assert math == raw >= _formulas(name), f"{name}: {math} typeset of {raw} found, {_formulas(name)} in source"
        errors_in_math = browser.execute_script("return document.querySelectorAll('.MathJax .merror').length")
        assert errors_in_math == 0, f"{name}: {errors_in_math} formulas failed to typeset"
        assert browser.execute_script("return document.querySelectorAll('details.course-solution[open]').length") == 0
        solutions = sum("solution" in c.metadata.get("tags", []) for c in _notebook(name).cells)
        assert browser.execute_script("return document.querySelectorAll('details.course-solution').length") == solutions
    for name in ("00_setup.html", "03_attention.html"):
        _open(browser, f"{server}/{name}")
        browser.save_screenshot(str(SHOTS / name.replace(".html", ".png")))
    browser.execute_script("document.querySelector('details.course-solution').open = true; "
                           "document.querySelector('details.course-solution').scrollIntoView()")
    browser.save_screenshot(str(SHOTS / "03_attention-solution.png"))
    assert all((SHOTS / f).stat().st_size > 10_000 for f in ("00_setup.png", "03_attention.png"))
