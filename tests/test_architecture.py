"""The package's shape, read from its own code: five parts whose imports only run down, one training loop, one
strategy table, one split rule, and no function with a long list of loose settings in the engine or the core."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "companion"
# part → the parts it may import (besides itself). The facade (companion/__init__.py, __main__.py) may import any.
ALLOWED = {"core": set(), "engine": {"core"}, "lessons": {"core", "engine"}, "checks": {"core", "engine", "lessons"},
           "batch": {"core", "checks"}}


def module_name(path: Path) -> str:
    """companion/engine/training.py → companion.engine.training (a package → its name)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every companion module a file imports, at top level or inside a function (relative imports resolved)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.startswith("companion"):
                for alias in node.names:  # `from . import n06` names a module; `from .x import y` names x
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if module_file(candidate) else base)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("companion")}
    return found - {here}


def module_file(module: str) -> Path | None:
    """The file of a companion module, or None."""
    rel = Path(*module.split("."))
    for candidate in (PACKAGE.parent / rel.with_suffix(".py"), PACKAGE.parent / rel / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def graph() -> dict[str, set[str]]:
    """Module → the companion modules it imports."""
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def part(module: str) -> str:
    """The part a module belongs to: core, engine, lessons, checks, batch, or the facade."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[1] in ALLOWED else "facade"


def test_the_package_is_five_parts_and_a_facade():
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith("__") or p.suffix != ".py")
    assert [name for name in top if name != "__pycache__"] == ["batch", "checks", "core", "engine", "lessons"]
    assert {p.name for p in PACKAGE.glob("*.py")} == {"__init__.py", "__main__.py"}


def test_imports_only_run_down():
    upward = [(a, b) for a, targets in graph().items() for b in targets
              if part(a) != "facade" and part(b) != part(a) and part(b) not in ALLOWED[part(a)]]
    assert upward == [], f"imports that run up or sideways: {upward}"


def test_lessons_import_only_earlier_or_same_notebooks():
    number = lambda m: int(re.match(r"companion\.lessons\.n(\d\d)_", m).group(1))  # noqa: E731
    late = [(a, b) for a, targets in graph().items() if a.startswith("companion.lessons.n")
            for b in targets if b.startswith("companion.lessons.n") and number(b) > number(a)]
    assert late == [], f"a lesson imports a later notebook's lesson: {late}"


def test_no_cycles():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges.get(nxt_ := node, set())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state and nxt in edges:
                visit(nxt, stack + [nxt])
        state[node] = "done"
        del nxt_

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert cycles == [], f"import cycles: {cycles}"


def test_one_module_runs_a_backward_pass():
    loops = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py") if ".backward(" in p.read_text())
    assert loops == ["companion/engine/training.py"]


def test_lessons_are_named_after_their_notebook():
    names = [p.stem for p in (PACKAGE / "lessons").glob("*.py") if p.stem != "__init__"]
    assert names and all(re.fullmatch(r"n0\d_[a-z0-9_]+", n) for n in names), names
    checks = [p.stem for p in (PACKAGE / "checks").glob("*.py") if p.stem != "__init__"]
    assert all(re.fullmatch(r"n0\d", n) for n in checks), checks


def test_checks_live_only_in_the_checks_part():
    outside = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if "@exercise(" in p.read_text() and p.parent.name != "checks"]
    assert outside == []


@pytest.mark.parametrize("folder", ["engine", "core"])
def test_settings_travel_whole_in_the_engine_and_core(folder):
    """No function in engine/ or core/ takes more than 8 parameters: a config object carries the settings."""
    long = []
    for path in (PACKAGE / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
                if len(names) > 8:
                    long.append(f"{path.name}:{node.name} ({len(names)})")
    assert long == []


def test_the_split_rule_is_written_once():
    """The rule that fixes the medical abstracts' split lives in the data loader only."""
    root = PACKAGE.parent
    sources = list(PACKAGE.rglob("*.py")) + list((root / "notebooks" / "src").glob("*.py")) + [
        root / "sweeps" / "strategy_run.py"]
    hits = [str(p.relative_to(root)) for p in sources if re.search(r"!= ?\"medical_abstracts\" else 42", p.read_text())]
    assert hits == []
