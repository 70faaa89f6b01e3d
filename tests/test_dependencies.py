"""Runtime dependencies are what the notebooks and the package import; test, cluster, classroom and site tools are
extras. pyproject.toml and environment.yml pin the same versions, and `companion sweep` without Dask (the
`cluster` extra) is one clear error that says how to install it."""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

from companion import CourseError
from companion.batch.cli import main
from companion.batch.sweep import sweep

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CODE = sorted((ROOT / "companion").rglob("*.py")) + sorted((ROOT / "notebooks" / "src").glob("*.py")) + [
    ROOT / "sweeps" / "strategy_run.py"]
DASK = {"dask", "distributed", "dask_jobqueue"}
TINY = ROOT / "tests" / "assets" / "tiny.ipynb"


def name_of(requirement: str) -> str:
    """`scikit-learn==1.9.1` → scikit-learn (normalised: lower case, `_` and `.` as `-`)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0]).lower()


def pins(requirements: list[str]) -> dict[str, str]:
    """Name → the requirement as written (`torch==2.13.0`, or `pandas` unpinned)."""
    return {name_of(r): r.replace(" ", "") for r in requirements}


def third_party_imports(path: Path) -> dict[str, list[int]]:
    """Top-level module → the lines that import it (stdlib, __future__ and companion left out)."""
    found: dict[str, list[int]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        for top in {name.split(".")[0] for name in names} - {"__future__", "companion"}:
            if top not in sys.stdlib_module_names:
                found.setdefault(top, []).append(node.lineno)
    return found


def test_runtime_dependencies_cover_every_import_of_the_notebooks_and_the_package():
    runtime = set(pins(PYPROJECT["dependencies"]))
    distributions = packages_distributions()
    missing = sorted({f"{path.relative_to(ROOT)}: {module} ({', '.join(distributions.get(module, ['?']))})"
                      for path in CODE for module in third_party_imports(path)
                      if module not in DASK and not {name_of(d) for d in distributions.get(module, [module])} & runtime})
    assert missing == [], "imported at run time but not a runtime dependency in pyproject.toml"


def test_test_cluster_classroom_and_site_tools_are_extras():
    runtime = set(pins(PYPROJECT["dependencies"]))
    extras = {name: set(pins(reqs)) for name, reqs in PYPROJECT["optional-dependencies"].items()}
    assert {"pytest", "nbval", "pytest-timeout", "jupytext"} <= extras["dev"]
    assert {"dask", "distributed", "dask-jobqueue"} == extras["cluster"]
    assert not runtime & set().union(*extras.values()), "a package is both a runtime dependency and an extra"
    assert "cluster" in (ROOT / "Makefile").read_text().split('pip install --quiet -e ".[')[1].split("]")[0]


def test_dask_is_imported_only_inside_the_sweep_functions():
    """The `cluster` extra: no module imports Dask at its top, so everything but a sweep works without it."""
    users = {}
    for path in CODE:
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(m.split(".")[0] in DASK for m in modules):
                    users.setdefault(str(path.relative_to(ROOT)), set()).add("top level" if id(node) in top else "inside")
    assert users and set(users) <= {"companion/batch/cluster.py", "companion/batch/sweep.py"}, users
    assert all(where == {"inside"} for where in users.values()), users


def test_environment_yml_pins_what_pyproject_pins():
    listed = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    conda = pins([r for r in next(d["pip"] for d in listed if isinstance(d, dict)) if not r.startswith("-e")])
    extras = PYPROJECT["optional-dependencies"]
    wanted = pins(PYPROJECT["dependencies"] + extras["dev"] + extras["cluster"])
    assert conda == wanted


@pytest.fixture
def without_dask(monkeypatch):
    """This process as it would be without the `cluster` extra: importing Dask fails."""
    for name in [m for m in sys.modules if m.split(".")[0] in DASK] + sorted(DASK):
        monkeypatch.setitem(sys.modules, name, None)


def grid(tmp_path: Path) -> Path:
    """A two-run sweep of the tiny test notebook."""
    path = tmp_path / "tiny.yaml"
    path.write_text(f"params: {{profile: smoke, sleep: 0}}\nnotebooks:\n  - notebook: {TINY}\n    grid: {{x: [1.0, 2.0]}}\n")
    return path


def test_a_sweep_without_dask_is_one_error_that_says_how_to_install_it(tmp_path, without_dask, capsys):
    with pytest.raises(CourseError, match=r"pip install 'companion\[cluster\]' \(or `make setup`"):
        sweep(grid(tmp_path), out=tmp_path / "runs")
    assert main(["sweep", str(grid(tmp_path)), "--out", str(tmp_path / "runs"), "--cluster", "slurm"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: sweeps run on Dask") and "dask-jobqueue" in err[0]
    assert not (tmp_path / "runs").exists()


def test_a_dry_run_needs_no_dask(tmp_path, without_dask, capsys):
    assert sweep(grid(tmp_path), out=tmp_path / "runs", dry_run=True) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2  # one `companion run` command per run
