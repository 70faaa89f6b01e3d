"""Shared test set-up: offline hub, data from ../shared/datasets (or COURSE_DATA_DIR), smoke-run helper."""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "COURSE_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "datasets").is_dir():
    os.environ["COURSE_DATA_DIR"] = str(ROOT.parent / "shared" / "datasets")

collect_ignore = ["assets"]  # tests/assets/tiny.ipynb is a fixture of the sweep tests, not a course notebook
_SMOKE_CACHE: dict[str, dict] = {}


def load_script(relative: str) -> ModuleType:
    """Import a repository script that is not part of the package (bench/…, tools/…) from its path."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def script():
    """`load_script` for tests: script("bench/throughput.py").samples_seen(…)."""
    return load_script


def _built_or_source(number: str) -> str:
    """The stored notebook, or (not stored yet) a fresh conversion of its source in notebooks/src."""
    from companion.core.errors import CourseError
    from companion.batch.runner import find_notebook

    try:
        return str(find_notebook(number))
    except CourseError:
        src = next((ROOT / "notebooks" / "src").glob(f"{number}_*.py"))
        target = ROOT / "notebooks" / f".smoke-{src.stem}.ipynb"  # beside the others: same relative paths
        return str(load_script("tools/build_notebooks.py").convert(src, target))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Run a notebook with profile=smoke (once per session) and return its result JSON as a dict."""
    from companion.core.results import load_results
    from companion.batch.runner import run_notebook

    def run(number: str, **parameters) -> dict:
        key = f"{number}:{sorted(parameters.items())}"
        if key not in _SMOKE_CACHE:
            out = tmp_path_factory.mktemp(f"smoke{number}")
            notebook = _built_or_source(number)
            began = time.perf_counter()
            try:
                executed = run_notebook(notebook, out, {"profile": "smoke", **parameters}, progress=False)
            finally:
                if Path(notebook).name.startswith(".smoke-"):
                    Path(notebook).unlink()
            wall = time.perf_counter() - began
            stem = Path(notebook).stem.removeprefix(".smoke-")
            result = load_results(out / f"{stem}.results.json")
            # every notebook's own clock must measure its run, never something longer (e.g. a clobbered start)
            assert 0 <= result.get("seconds", 0) <= wall, f"{stem} saved seconds={result.get('seconds')} > run {wall:.1f} s"
            result["_executed"] = str(executed)
            _SMOKE_CACHE[key] = result
        return _SMOKE_CACHE[key]

    return run


@pytest.fixture(scope="session")
def minilm():
    """The embedded encoder and its tokenizer (loaded once)."""
    from companion import load_model, load_tokenizer

    return load_model("minilm", "encoder"), load_tokenizer("minilm")


@pytest.fixture(scope="session")
def smollm2():
    """The embedded causal LM and its tokenizer (loaded once)."""
    from companion import load_model, load_tokenizer

    return load_model("smollm2", "causal-lm"), load_tokenizer("smollm2")


@pytest.fixture(scope="session")
def medical():
    """The split medical abstracts DatasetDict."""
    from companion.core.data import load_medical_abstracts

    return load_medical_abstracts()
