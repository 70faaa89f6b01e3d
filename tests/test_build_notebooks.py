"""tools/build_notebooks.py: a course run's executed notebook is stored without papermill's traces or machine paths."""
from __future__ import annotations

import nbformat
import pytest

from companion.core.paths import PROJECT_ROOT


def test_adopt_drops_the_injected_cell_and_scrubs_paths(tmp_path, script):
    tool = script("tools/build_notebooks.py")
    run, out = tmp_path / "run", tmp_path / "out"
    run.mkdir(), out.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile: str = "auto"', metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["injected-parameters"], "papermill": {}})
    work = nbformat.v4.new_code_cell("print(path)", execution_count=1, metadata={"execution": {"iopub.status.busy": "x"}})
    work.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"saved to {PROJECT_ROOT}/runs/x.json\n")]
    nb.cells = [params, injected, work]
    nb.metadata["papermill"] = {"start_time": "2026-11-29"}
    nbformat.write(nb, run / "07_layered_finetuning.ipynb")

    stored = nbformat.read(tool.adopt(run, "07", out), as_version=4)
    assert [c.metadata.get("tags", []) for c in stored.cells] == [["parameters"], []]
    assert "papermill" not in stored.metadata and "execution" not in stored.cells[1].metadata
    assert stored.cells[1].outputs[0]["text"] == "saved to <project>/runs/x.json\n"
    with pytest.raises(SystemExit, match="expected one executed notebook 05_"):
        tool.adopt(run, "05", out)


def test_markdown_sync_keeps_outputs_and_refuses_changed_code(tmp_path, script):
    """--markdown copies a source's Markdown into the stored notebook; a changed code cell must be re-executed."""
    tool = script("tools/build_notebooks.py")
    src = tmp_path / "05_demo.py"
    src.write_text('# %% [markdown]\n# # Old title\n\n# %%\nprint(1)\n')
    stored = tool.convert(src, tmp_path / "05_demo.ipynb")
    nb = nbformat.read(stored, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nbformat.write(nb, stored)

    src.write_text('# %% [markdown]\n# # New title\n\n# %%\nprint(1)\n')
    assert tool.sync_markdown(src, stored) is True
    synced = nbformat.read(stored, as_version=4)
    assert synced.cells[0].source == "# New title" and synced.cells[1].outputs[0]["text"] == "1\n"
    src.write_text('# %% [markdown]\n# # New title\n\n# %%\nprint(2)\n')
    with pytest.raises(SystemExit, match="re-execute"):
        tool.sync_markdown(src, stored)
