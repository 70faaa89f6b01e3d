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


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Run a notebook with profile=smoke (once per session) and return its result JSON as a dict."""
    from companion.results import load_results
    from companion.runner import find_notebook, run_notebook

    def run(number: str, **parameters) -> dict:
        key = f"{number}:{sorted(parameters.items())}"
        if key not in _SMOKE_CACHE:
            out = tmp_path_factory.mktemp(f"smoke{number}")
            executed = run_notebook(number, out, {"profile": "smoke", **parameters}, progress=False)
            stem = find_notebook(number).stem
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
