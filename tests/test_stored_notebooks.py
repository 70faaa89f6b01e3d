"""The stored notebooks: executed, parameterised, clean, and nbval really compares their checked cells."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from companion.batch.params import declared_parameters
from companion.batch.runner import list_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = list_notebooks()
MARK = "# NBVAL_CHECK_OUTPUT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_notebook_is_executed_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "store the notebook executed (tools/build_notebooks.py --execute)"
    checked = [c for c in code if c.source.startswith(MARK)]
    assert len(checked) >= 2 and all(c.outputs for c in checked), "mark ≥ 2 deterministic cells for nbval"
    text = json.dumps(nb)
    assert not re.search(r"/(work|tmp|root|home)/[A-Za-z0-9_.-]+", text), "machine path in stored outputs"
    assert not any(c.outputs and c.outputs[0].get("ename") for c in code)
    declared = declared_parameters(path)
    assert {"profile", "seed"} <= set(declared)
    assert declared["profile"]["choices"] == ["auto", "smoke", "cpu", "gpu"]
    assert any("solution" in c.metadata.get("tags", []) for c in code), "exercises need solution cells"


def settings_table(node) -> dict:
    """A notebook's settings table: a literal dict, or rows built from the package's shared tables (05 extends
    companion.lessons.n05_adaptation.DAPT_SETTINGS, which notebook 08 rebuilds the same model from)."""
    import ast

    from companion.lessons.n05_adaptation import DAPT_SETTINGS

    try:
        return ast.literal_eval(node)
    except ValueError:
        names = {"__builtins__": {}, "DAPT_SETTINGS": DAPT_SETTINGS}
        return eval(compile(ast.Expression(node), "<settings>", "eval"), names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_profile_sets_the_same_settings(path):
    """The `gpu` row is not run in CI, so a key missing from it would only fail on a GPU: compare the rows here."""
    import ast

    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    calls = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)
             and getattr(n.func, "attr", None) == "settings" and len(n.args) == 2]
    assert len(calls) == source.count("cc.settings("), "a settings table that is not a dict"
    for call in calls:
        table = settings_table(call.args[1])
        assert set(table) == {"smoke", "cpu", "gpu"}, path.stem
        keys = {profile: set(row) for profile, row in table.items()}
        assert keys["smoke"] == keys["cpu"] == keys["gpu"], f"{path.stem}: {keys}"
        overrides = {k.arg for k in call.keywords}
        assert overrides <= keys["cpu"], f"{path.stem}: parameters without a setting: {overrides - keys['cpu']}"


def test_nbval_fails_when_a_checked_output_changes(tmp_path):
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(MARK)
                and any(o.get("name") == "stdout" for o in c.outputs))
    stream = next(o for o in cell.outputs if o.get("name") == "stdout")
    stream.text = stream.text.replace("e", "E", 1) + "tampered\n"
    target = tmp_path / NOTEBOOKS[0].name
    nbformat.write(nb, target)
    env = {**os.environ, "COURSE_FORCE_PROFILE": "smoke"}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(target), "-p", "no:cacheprovider", "-q",
                           "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1 and "tampered" in proc.stdout, proc.stdout[-2000:]
