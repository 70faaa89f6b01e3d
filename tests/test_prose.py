"""Prose that matches the code beside it (issue 25): what a Markdown cell of a notebook names and states is checked
against the repository and the notebook's own settings.

1. Every file or folder a Markdown cell names under `artifacts/`, `runs/` or `sweeps/` exists in the repository, or
   is made by the run that names it: by a command in the same cell (`--out runs/x`), or by a course command listed in
   MADE with the reason and the line of code that makes it (checked to be still there).
2. Every setting a Markdown cell states for a profile equals the profile's: in a sentence that names a profile in
   backticks (`` `cpu` ``), `name = 1, 2 and 3` must equal that profile's row of the notebook's `cc.settings` table
   (or its protocol, for notebooks that use one), `N seeds` the number of its seeds, and "trains in float32/bf16"
   under `smoke` the precision every machine uses there. Names that are no setting of the notebook are not read.

Both rules run on the stored notebooks and on their sources; one known to break a rule would be listed in KNOWN.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest

from companion.batch.runner import list_notebooks
from companion.core.data import registry

ROOT = Path(__file__).resolve().parents[1]
STORED = list_notebooks()
SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py"))
PROFILES = ("smoke", "cpu", "gpu")

# a name under artifacts/, runs/ or sweeps/ (placeholders such as <profile> kept), without trailing punctuation
NAMED = re.compile(r"(?<![\w/.-])((?:artifacts|runs|sweeps)/[\w.<>{}*/-]*[\w>}*/])")
_DATA = "|".join(["<data>", "{data}", *map(re.escape, registry())])
_PROFILE = "|".join(["<profile>", "{profile}", *PROFILES])
# names a course command makes: (pattern, reason, (file, the text in it that makes the name))
MADE = [
    (r"runs/single/?", "the default --out of `python -m companion run`",
     ("companion/batch/cli.py", 'default="runs/single"')),
    (rf"runs/({_PROFILE})/?", "`python -m companion course` writes runs/<profile> (`make course`: runs/cpu)",
     ("companion/batch/cli.py", 'f"runs/{args.profile}"')),
    (r"runs/decide/(<file>|<file name>|[\w.-]+)(/09_choosing_a_strategy\.ipynb|/)?",
     "`python -m companion decide FILE` writes its runs and notebook 09 into runs/decide/<file name>",
     ("companion/batch/decide.py", 'Path("runs") / "decide" / data_path.stem')),
    (rf"artifacts/smollm2-({_DATA})-dapt-({_PROFILE})/?", "notebook 05's continued pretraining caches its model there",
     ("companion/lessons/n05_adaptation.py", "-dapt-{profile}")),
    (rf"artifacts/minilm-({_DATA})-mlm-dapt-({_PROFILE})(-seed\d+)?/?", "notebook 05's masked-LM adaptation caches there",
     ("companion/lessons/n05_mlm_recipe.py", "-mlm-dapt-")),
]
# (rule, notebook) known to break a rule today, with the reason: "names" or "settings", and the stored notebook
# ("notebooks/NN_…") or its source ("src/NN_…")
KNOWN: dict[tuple[str, str], str] = {}  # (rule, notebook) → why it breaks the rule for now; empty: none does

NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e-?\d+)?"  # 2,048 is one number; "2, 4" two
STATED = re.compile(rf"`?(\w+)`?\s*=\s*({NUMBER}(?:(?:,\s+|\s+and\s+|,\s+and\s+){NUMBER})*)")
SEEDS = re.compile(r"\b(\d+) seeds\b")
PRECISION = re.compile(r"\btrains? in (float32|fp32|bf16|bfloat16)\b")


def markdown_cells(nb) -> list[tuple[int, str]]:
    """(index, text) of each Markdown cell."""
    return [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


def unmade_names(nb) -> list[str]:
    """The names under artifacts/, runs/ or sweeps/ that no file, no command of the cell and no MADE entry accounts
    for, as 'cell N: name'."""
    problems = []
    for index, text in markdown_cells(nb):
        for name in NAMED.findall(text):
            made_here = re.search(rf"--out\s+{re.escape(name.rstrip('/'))}/?(?![\w.-])", text)
            if (ROOT / name).exists() or made_here or any(re.fullmatch(p, name) for p, _, _ in MADE):
                continue
            problems.append(f"cell {index}: {name}")
    return problems


def _value(text: str) -> int | float:
    """A number as written (thousands separators allowed)."""
    text = text.replace(",", "")
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def notebook_settings(nb) -> dict[str, dict]:
    """Each profile's settings: the rows of the notebook's `cc.settings` tables, plus its protocol's fields when the
    notebook uses one (`cc.protocol(...)`)."""
    from companion.engine.protocol import PROTOCOLS
    from companion.lessons.n05_adaptation import DAPT_SETTINGS

    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and not c.source.startswith("%"))
    settings: dict[str, dict] = {p: {} for p in PROFILES}
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "settings" and len(node.args) == 2:
            try:
                table = ast.literal_eval(node.args[1])
            except ValueError:
                table = eval(compile(ast.Expression(node.args[1]), "<settings>", "eval"),
                             {"__builtins__": {}, "DAPT_SETTINGS": DAPT_SETTINGS})
            for profile in PROFILES:
                settings[profile].update(table.get(profile, {}))
    if re.search(r"\bprotocol\(", code):
        for profile in PROFILES:
            settings[profile] = {**PROTOCOLS[profile].record(), **settings[profile]}
    return settings


def _spans(text: str) -> list[tuple[str, str]]:
    """(profile, the text after its backticked name up to the next backticked profile or the sentence's end)."""
    flat = re.sub(r"\s+", " ", text)
    marks = list(re.finditer(r"`(smoke|cpu|gpu)`", flat))
    spans = []
    for mark, following in zip(marks, marks[1:] + [None]):
        end = following.start() if following else len(flat)
        sentence_end = re.search(r"[.;!?](\s|$)", flat[mark.end():end])
        spans.append((mark.group(1), flat[mark.end(): mark.end() + sentence_end.start() if sentence_end else end]))
    return spans


def stated_settings(nb) -> list[tuple[int, str, str, object]]:
    """(cell, profile, setting, stated value) of every readable setting statement of the Markdown cells."""
    found = []
    for index, text in markdown_cells(nb):
        for profile, span in _spans(text):
            for name, values in STATED.findall(span):
                numbers = [_value(v) for v in re.split(r",\s+and\s+|,\s+|\s+and\s+", values)]
                found.append((index, profile, name, numbers[0] if len(numbers) == 1 else numbers))
            for count in SEEDS.findall(span):
                found.append((index, profile, "seeds#", int(count)))
            for precision in PRECISION.findall(span):
                found.append((index, profile, "precision", "fp32" if precision in ("float32", "fp32") else "bf16"))
    return found


def _setting(row: dict, name: str) -> tuple[bool, object]:
    """(found, value) of a stated name in a profile's row: the key itself, its plural or its singular."""
    for key in (name, f"{name}s", name.removesuffix("s")):
        if key in row:
            value = row[key]
            return True, list(value) if isinstance(value, (list, tuple)) else value
    return False, None


def wrong_settings(nb) -> list[str]:
    """Each stated setting that differs from the profile's, as 'cell N: `profile` name stated X, is Y'."""
    from companion.core.device import pick_precision

    import torch

    settings, problems = notebook_settings(nb), []
    for index, profile, name, stated in stated_settings(nb):
        row = settings[profile]
        if name == "seeds#":
            found, value = ("seeds" in row), len(row.get("seeds") or [])
        elif name == "precision":
            if profile != "smoke":  # cpu and gpu depend on the machine's hardware: not a fixed setting
                continue
            found, value = True, pick_precision("auto", "smoke", torch.device("cpu"))
        else:
            found, value = _setting(row, name)
        if found and stated != value and not (isinstance(stated, (int, float)) and value == [stated]):
            problems.append(f"cell {index}: `{profile}` {name.rstrip('#')} stated {stated}, the notebook has {value}")
    return problems


def _read(path: Path):
    """A stored notebook, or a source read as a notebook."""
    return nbformat.read(path, as_version=4) if path.suffix == ".ipynb" else jupytext.read(path)


def _cases(rule: str) -> list:
    """pytest params of every stored notebook and source, those in KNOWN for `rule` marked as expected failures."""
    params = []
    for path in STORED + SOURCES:
        key = (rule, f"{path.parent.name}/{path.stem}")
        marks = [pytest.mark.xfail(reason=KNOWN[key], strict=False)] if key in KNOWN else []
        params.append(pytest.param(path, id=key[1], marks=marks))
    return params


@pytest.mark.parametrize("path", _cases("names"))
def test_named_files_exist_or_are_made_by_the_run(path):
    problems = unmade_names(_read(path))
    assert not problems, f"{path.name} names what nothing makes: {problems}"


@pytest.mark.parametrize("path", _cases("settings"))
def test_stated_settings_are_the_profiles(path):
    problems = wrong_settings(_read(path))
    assert not problems, f"{path.name}: {problems}"


@pytest.mark.parametrize("pattern, reason, where", MADE)
def test_what_made_names_still_comes_from_that_code(pattern, reason, where):
    file, text = where
    assert text in (ROOT / file).read_text(encoding="utf-8"), f"{pattern} ({reason}): {file} no longer has {text!r}"


def test_the_course_states_settings_the_test_reads():
    """The rule is exercised: notebook 04 states its profiles' sizes, and they are read."""
    stated = stated_settings(jupytext.read(next(p for p in SOURCES if p.stem.startswith("04_"))))
    assert {(profile, name) for _, profile, name, _ in stated} >= {("cpu", "corpus_tokens"), ("cpu", "max_length"),
                                                                   ("smoke", "corpus_tokens")}


def test_a_changed_setting_or_an_unmade_name_fails(tmp_path):
    """A copy of notebook 04 whose prose says the `cpu` profile scores 2049 tokens, or names runs/nowhere/, fails."""
    nb = jupytext.read(next(p for p in SOURCES if p.stem.startswith("04_")))
    assert not wrong_settings(nb) and not unmade_names(nb)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and "corpus_tokens = 2048" in c.source)
    cell.source = cell.source.replace("corpus_tokens = 2048", "corpus_tokens = 2049")
    copy = tmp_path / "04_domain_gap.ipynb"
    nbformat.write(nb, copy)
    problems = wrong_settings(_read(copy))
    assert problems == [f"cell {nb.cells.index(cell)}: `cpu` corpus_tokens stated 2049, the notebook has 2048"]
    cell.source += "\nThe executed copy lands in `runs/nowhere/`, and `--out runs/elsewhere` makes runs/elsewhere/."
    assert unmade_names(nb) == [f"cell {nb.cells.index(cell)}: runs/nowhere/"]


def test_seeds_and_precision_statements_are_read():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('cfg = cc.settings(PROFILE, {"smoke": {"k": [0, 2]}, "cpu": {"k": [0, 2, 4, 6]}, '
                                  '"gpu": {"k": [0, 1, 2, 3, 4, 5, 6]}})\nprotocol = cc.protocol(PROFILE)'),
        nbformat.v4.new_markdown_cell("The `cpu` profile runs k = 0, 2, 4 and 6 over 5 seeds; the `smoke` profile "
                                      "always trains in float32."),
        nbformat.v4.new_markdown_cell("The `gpu` profile runs k = 0, 2, 4, 6. The `smoke` profile trains in bf16.")])
    assert wrong_settings(nb) == ["cell 2: `gpu` k stated [0, 2, 4, 6], the notebook has [0, 1, 2, 3, 4, 5, 6]",
                                  "cell 2: `smoke` precision stated bf16, the notebook has fp32"]
