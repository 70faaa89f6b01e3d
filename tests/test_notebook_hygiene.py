"""Stored notebooks read cleanly: no library warnings, at most one (final) progress line per loop.

tools/build_notebooks.py `clean` does this when it stores a notebook; the unit tests below check `clean` itself
on made-up outputs, the last one checks every stored notebook.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_notebooks  # noqa: E402

BAR = re.compile(r"\d+%\|")  # a tqdm state: ` 40%|████      | 2/5 [...]`
STORED = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _stream(name: str, text: str) -> nbformat.NotebookNode:
    """One stream output."""
    return nbformat.v4.new_output("stream", name=name, text=text)


def _problems(cell: nbformat.NotebookNode) -> list[str]:
    """What a stored code cell shows that it should not: warnings, repeated progress states, split stderr."""
    found = []
    stderr = [o for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    if len(stderr) > 1:
        found.append(f"{len(stderr)} stderr blocks")
    for out in cell.outputs:
        texts = [out.get("text", "")] + [str(v) for v in out.get("data", {}).values()]
        if any("Warning" in t for t in texts):
            found.append("a warning: " + next(t for t in texts if "Warning" in t)[:120])
    for out in stderr:
        for line in out["text"].split("\n"):
            if len(BAR.findall(line)) > 1 or "\r" in line.strip("\r"):
                found.append(f"a progress bar with several states: {line[:80]!r}")
    return found


def test_clean_keeps_the_final_state_of_each_bar_and_drops_warnings() -> None:
    """Fragments of two bars and a FutureWarning become the two final bar lines; stdout is untouched."""
    outputs = [
        _stream("stderr", "\rstride 128:   0%|          | 0/3 [00:00<?, ?it/s]"),
        _stream("stdout", "perplexity 12.3\n"),
        _stream("stderr", "\rstride 128:  33%|███▎      | 1/3 [00:01<00:02]"),
        _stream("stderr", "<env>/transformers/modeling_utils.py:3303: FutureWarning: `x` is deprecated.\n"
                          "  warnings.warn(\n"),
        _stream("stderr", "\rstride 128: 100%|██████████| 3/3 [00:03<00:00]\n"),
        _stream("stderr", "\rembedding: 100%|██████████| 5/5 [00:03<00:00]\n"),
    ]
    cleaned = build_notebooks.clean_stderr(outputs)
    assert [o["name"] for o in cleaned] == ["stderr", "stdout"]
    assert cleaned[0]["text"] == ("stride 128: 100%|██████████| 3/3 [00:03<00:00]\n"
                                  "embedding: 100%|██████████| 5/5 [00:03<00:00]\n")
    assert cleaned[1]["text"] == "perplexity 12.3\n"
    cell = nbformat.v4.new_code_cell(outputs=cleaned)
    assert _problems(cell) == []
    assert _problems(nbformat.v4.new_code_cell(outputs=outputs))  # the uncleaned outputs are caught


def test_clean_drops_a_stderr_block_that_only_held_warnings() -> None:
    """A cell whose stderr was only a warning keeps no stderr at all; other output types stay."""
    outputs = [_stream("stderr", "<env>/peft/x.py:1: UserWarning: y\n  warnings.warn(\n"),
               nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    assert [o["output_type"] for o in build_notebooks.clean_stderr(outputs)] == ["execute_result"]


def test_clean_keeps_other_stderr_lines() -> None:
    """stderr that is neither a bar nor a warning (a message for the learner) is kept."""
    outputs = [_stream("stderr", "note: the cache is cold\n")]
    assert build_notebooks.clean_stderr(outputs)[0]["text"] == "note: the cache is cold\n"


@pytest.mark.parametrize("path", STORED, ids=[p.stem[:2] for p in STORED])
def test_stored_notebook_has_no_warnings_and_one_line_per_loop(path: Path) -> None:
    """Every code cell of a stored notebook: ≤ 1 stderr block, one final line per progress bar, no 'Warning'."""
    nb = nbformat.read(path, as_version=4)
    problems = [f"cell {i}: {p}" for i, c in enumerate(nb.cells) if c.cell_type == "code" for p in _problems(c)]
    assert not problems, f"{path.name} (store it with tools/build_notebooks.py, which cleans it):\n" + "\n".join(
        problems[:10])
