"""Shared test set-up: offline hub, data from ../shared/datasets (or COURSE_DATA_DIR), smoke-run helper."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "COURSE_DATA_DIR" not in os.environ and (ROOT.parent / "shared" / "datasets").is_dir():
    os.environ["COURSE_DATA_DIR"] = str(ROOT.parent / "shared" / "datasets")

collect_ignore = ["assets"]  # tests/assets/tiny.ipynb is a fixture of the sweep tests, not a course notebook
_SMOKE_CACHE: dict[str, dict] = {}


def _built_or_source(number: str) -> str:
    """The stored notebook, or (not stored yet) a fresh conversion of its source in notebooks/src."""
    from companion.errors import CourseError
    from companion.runner import find_notebook

    try:
        return str(find_notebook(number))
    except CourseError:
        import jupytext

        src = next((ROOT / "notebooks" / "src").glob(f"{number}_*.py"))
        target = ROOT / "notebooks" / f".smoke-{src.stem}.ipynb"  # beside the others: same relative paths
        nb = jupytext.read(src)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        jupytext.write(nb, target)
        return str(target)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Run a notebook with profile=smoke (once per session) and return its result JSON as a dict."""
    from companion.results import load_results
    from companion.runner import run_notebook

    def run(number: str, **parameters) -> dict:
        key = f"{number}:{sorted(parameters.items())}"
        if key not in _SMOKE_CACHE:
            out = tmp_path_factory.mktemp(f"smoke{number}")
            notebook = _built_or_source(number)
            try:
                executed = run_notebook(notebook, out, {"profile": "smoke", **parameters}, progress=False)
            finally:
                if Path(notebook).name.startswith(".smoke-"):
                    Path(notebook).unlink()
            stem = Path(notebook).stem.removeprefix(".smoke-")
            result = load_results(out / f"{stem}.results.json")
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
    from companion.data import load_medical_abstracts

    return load_medical_abstracts()
