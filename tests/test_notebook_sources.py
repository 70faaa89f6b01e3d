"""The stored notebooks follow their sources: every code cell of `notebooks/NN_*.ipynb` (and of
`sweeps/strategy_run.ipynb`) equals the code cell of its jupytext source (`notebooks/src/NN_*.py`,
`sweeps/strategy_run.py`), the same cells in the same order, so no test passes on a stale stored notebook."""
from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")) + [ROOT / "sweeps" / "strategy_run.py"]


def stored_notebook(source: Path) -> Path:
    """The stored notebook built from a source: notebooks/src/NN_x.py → notebooks/NN_x.ipynb; others beside it."""
    folder = source.parent.parent if source.parent.name == "src" else source.parent
    return folder / f"{source.stem}.ipynb"


def code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    """The source text of every code cell, in order."""
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def first_difference(source: Path, stored: Path) -> str | None:
    """None when the stored notebook's code cells equal the source's; else one message naming the first cell
    that differs (its number among the code cells, its first line, and a diff) or the difference in count."""
    want = code_cells(jupytext.read(source))
    have = code_cells(nbformat.read(stored, as_version=4))
    for i, (a, b) in enumerate(zip(want, have), 1):
        if a != b:
            diff = "\n".join(difflib.unified_diff(b.splitlines(), a.splitlines(), "stored", "source", lineterm="", n=1))
            first = a.splitlines()[0] if a.strip() else "(empty)"
            return (f"{stored.name}: code cell {i} differs from {source.name} (source cell starts {first!r}); "
                    f"rebuild it from the source (tools/build_notebooks.py):\n{diff}")
    if len(want) != len(have):
        return (f"{stored.name} has {len(have)} code cells, {source.name} has {len(want)}: first unmatched cell "
                f"{min(len(want), len(have)) + 1}; rebuild it from the source (tools/build_notebooks.py)")
    return None


def test_every_source_has_a_stored_notebook():
    missing = [str(stored_notebook(s).relative_to(ROOT)) for s in SOURCES if not stored_notebook(s).is_file()]
    assert len(SOURCES) >= 11 and missing == []


def assert_in_sync(source: Path, stored: Path) -> None:
    """Fail with the first differing cell when the stored notebook's code is not its source's."""
    difference = first_difference(source, stored)
    assert difference is None, difference


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_stored_code_cells_equal_the_source(source):
    assert_in_sync(source, stored_notebook(source))


def test_the_sync_test_fails_on_an_edited_copy(tmp_path):
    """An edited code cell, a removed one and a swapped order are each caught, and the message names the cell."""
    source = ROOT / "notebooks" / "src" / "02_cross_entropy.py"
    stored = tmp_path / "02_cross_entropy.ipynb"
    shutil.copy(stored_notebook(source), stored)
    assert_in_sync(source, stored)  # the unedited copy passes

    nb = nbformat.read(stored, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[2].source += "\nprint('edited by hand')"
    nbformat.write(nb, stored)
    with pytest.raises(AssertionError, match="code cell 3 differs") as failure:
        assert_in_sync(source, stored)
    assert "-print('edited by hand')" in str(failure.value)  # the diff shows the stored line the source lacks

    nb = nbformat.read(stored_notebook(source), as_version=4)
    nb.cells.remove([c for c in nb.cells if c.cell_type == "code"][-1])
    nbformat.write(nb, stored)
    with pytest.raises(AssertionError, match=r"has \d+ code cells, 02_cross_entropy.py has \d+"):
        assert_in_sync(source, stored)

    nb = nbformat.read(stored_notebook(source), as_version=4)
    at = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    nb.cells[at[1]], nb.cells[at[2]] = nb.cells[at[2]], nb.cells[at[1]]
    nbformat.write(nb, stored)
    with pytest.raises(AssertionError, match="code cell 2 differs"):
        assert_in_sync(source, stored)
