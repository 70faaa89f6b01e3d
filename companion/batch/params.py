"""Notebook parameters: read the `parameters` cell, and reject unknown names, wrong types, bad choices,
out-of-range values and unusable data files or models before any kernel starts.

Convention for every notebook's parameters cell (one per line, typed, documented)::

    profile: str = "auto"  # one of: auto, smoke, cpu, gpu
    epochs: Optional[int] = None  # range: [1, inf); passes over the data; None means the profile default

The comment grammar: `one of: a, b, c` lists the allowed values; `range: [low, high]` bounds a number (or every
number of a list): `[`/`]` include the bound, `(`/`)` exclude it, `inf` means unbounded. None is always allowed
for an Optional parameter. Names say what a value is: `data` (with `text_column`/`label_column`) is a data
source, `model_name`/`lm_name`/`encoder_name` a model, and `*_path`/`*_file`/`*_dir`/`*_csv` a file path.

`check_values` is the one place for types, choices and ranges: the command line (`check_parameters`) and the
notebook itself (`cc.check_values("06", globals())`, so a run in Jupyter is checked the same way) both use it.
From the command line and in sweeps, relative paths are relative to the caller's working folder.
"""
from __future__ import annotations

import ast
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from ..core.data import check_data
from ..core.errors import CourseError
from ..core.files import DATA_SUFFIXES
from ..core.models import EMBEDDED, check_model_name
from .notebooks import find_notebook, notebook_facts

_TYPES = {"int": (int,), "float": (float, int), "str": (str,), "bool": (bool,), "list": (list, tuple),
          "dict": (dict,)}
_RANGE = re.compile(r"range:\s*([\[(])\s*([^,\])]*?)\s*,\s*([^\])]*?)\s*([\])])")
MODEL_PARAMETERS = ("model_name", "lm_name", "encoder_name")
PATH_SUFFIXES = ("_path", "_file", "_dir", "_csv")
BOOL_WORDS = {"true": True, "yes": True, "false": False, "no": False}
# options of a run, not of the notebook: accepted (and checked) as `-p` wherever a notebook declares `data`, and
# passed to the kernel's loaders in the environment (companion.data reads it)
RUN_OPTIONS = {"merge_label_case": {"type": "bool", "default": "False", "choices": None, "range": None,
                                    "help": "labels of a data file that differ only by case are one class "
                                            "(else an error names them)"}}


class Range(NamedTuple):
    """A numeric interval parsed from `range: [low, high)`; None bounds are unbounded."""

    low: float | None
    high: float | None
    low_closed: bool
    high_closed: bool

    def __contains__(self, value: object) -> bool:
        """Whether a number lies in the interval (NaN and ±inf never do)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return False
        above = self.low is None or (value >= self.low if self.low_closed else value > self.low)
        below = self.high is None or (value <= self.high if self.high_closed else value < self.high)
        return above and below

    def __str__(self) -> str:
        """The interval as written in a parameters cell, e.g. [1, inf)."""
        low = "-inf" if self.low is None else _number(self.low)
        high = "inf" if self.high is None else _number(self.high)
        return f"{'[' if self.low_closed else '('}{low}, {high}{']' if self.high_closed else ')'}"


def _number(value: float) -> str:
    """A bound as written: 4294967295, not 4.29497e+09."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def _bound(text: str) -> float | None:
    """One bound of a range: a number, or '', 'inf', '-inf' for none."""
    if text.strip().lstrip("+-") in ("", "inf"):
        return None
    return float(text)


def parse_range(help_text: str | None) -> Range | None:
    """The `range: [low, high)` of a parameter comment, or None when it has none."""
    match = _RANGE.search(help_text or "")
    if not match:
        return None
    opening, low, high, closing = match.groups()
    return Range(_bound(low), _bound(high), opening == "[", closing == "]")


@lru_cache(maxsize=64)
def _declared(notebook: str, mtime: float) -> dict[str, dict[str, Any]]:
    """declared_parameters, cached per file version (sweeps check many runs of one notebook)."""
    # here, not at the top: both take about a second to import, and `import companion` (every notebook's set-up)
    # imports this module
    import nbformat
    from papermill.translators import PythonTranslator

    try:
        nb = nbformat.read(notebook, as_version=4)
    except (ValueError, KeyError, AttributeError, nbformat.ValidationError) as err:  # empty, not JSON, not nbformat
        raise CourseError(f"{Path(notebook).name} is not a valid notebook ({type(err).__name__}: "
                          f"{str(err).splitlines()[0][:120] if str(err) else ''}): pass an .ipynb saved by "
                          f"Jupyter, or a course number such as 06") from None
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    info = {p.name: p._asdict() for p in PythonTranslator.inspect(cells[0])} if cells else {}  # the run's kernel
    declared = {}
    for name, p in info.items():
        match = re.search(r"one of:\s*([\w\-.+, ]+)", p["help"] or "")
        choices = [c.strip() for c in match.group(1).split(",") if c.strip()] if match else None
        declared[name] = {"type": p["inferred_type_name"], "default": p["default"], "help": p["help"],
                          "choices": choices, "range": parse_range(p["help"])}
    return declared


def declared_parameters(notebook: str | Path) -> dict[str, dict[str, Any]]:
    """Name → {type, default, help, choices, range} for the notebook's `parameters` cell."""
    path = Path(notebook)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise CourseError(f"no notebook file {str(notebook)!r}") from None
    declared = _declared(str(path), mtime)
    if not declared:
        raise CourseError(f"{path.name} has no cell tagged 'parameters'")
    return {name: dict(spec) for name, spec in declared.items()}


def _base(type_name: str | None) -> str:
    """The type inside Optional[…]: Optional[int] → int."""
    optional = re.fullmatch(r"Optional\[(\w+)\]", type_name or "")
    return optional.group(1) if optional else (type_name or "")


def _type_ok(value: Any, type_name: str) -> bool:
    """Whether `value` fits an annotation such as int, Optional[float] or str."""
    optional = re.fullmatch(r"Optional\[(\w+)\]", type_name)
    if optional:
        return value is None or _type_ok(value, optional.group(1))
    allowed = _TYPES.get(type_name)
    if allowed is None:
        return True  # unannotated or an exotic type: accept
    if isinstance(value, bool) and type_name in ("int", "float"):
        return False
    return isinstance(value, allowed)


def coerce(value: str) -> Any:
    """Turn a command-line string into a Python value: 3 → int, 0.1 → float, None, True, [1,2] or plain text."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def as_declared(value: Any, type_name: str | None) -> Any:
    """A value in its declared type where the text is unambiguous: true/false/yes/no (any case) for a bool."""
    if _base(type_name) == "bool" and isinstance(value, str) and value.strip().lower() in BOOL_WORDS:
        return BOOL_WORDS[value.strip().lower()]
    return value


def from_text(text: str, type_name: str | None = None) -> Any:
    """A command-line value in its parameter's declared type: `coerce`, except that true/false/yes/no are booleans
    for a bool, and a parameter declared str keeps the text as written (a column named 0 or 1.50)."""
    value = as_declared(coerce(text), type_name)
    if _base(type_name) == "str" and value is not None and not isinstance(value, str):
        return text
    return value


def _short(value: Any, width: int = 60) -> str:
    """repr(value), cut to `width` characters (a long list stays readable in a one-line message)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width - 5]} …{text[-3:]}"


def _problem(name: str, value: Any, spec: dict[str, Any]) -> str | None:
    """What is wrong with one value (type, finiteness, choice or range), or None."""
    shown_value = f"{name}={_short(value)}"
    if not _type_ok(value, spec["type"]):
        hint = ""
        if _base(spec["type"]) == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            hint = f" (a name that looks like a number is text: quote it, e.g. {name}: \"{value}\" in a sweep file)"
        return f"{shown_value} is not of type {spec['type']}{hint}"
    numbers = list(value) if isinstance(value, (list, tuple)) else [value]
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        return f"{shown_value} is not a finite number (inf and nan are refused): give a number such as 1e-4"
    if spec["choices"] and value not in spec["choices"] and not (value is None and spec["type"].startswith("Optional")):
        return f"{shown_value} is not one of {spec['choices']}"
    interval = spec.get("range")
    if interval is not None and value is not None:
        outside = [v for v in numbers if v not in interval]
        if outside or not numbers:
            what = "every value" if isinstance(value, (list, tuple)) else "the value"
            return f"{shown_value} is out of range: {what} must be in {interval}"
    return None


def check_values(notebook: str | Path, values: Mapping[str, Any]) -> None:
    """Check the values of a notebook's declared parameters (types, choices, ranges); in a notebook call
    `cc.check_values("06", globals())` so a run in Jupyter is checked as the command line checks it."""
    nb = find_notebook(str(notebook))
    declared = declared_parameters(nb)
    problems = [p for name in declared if name in values
                for p in [_problem(name, values[name], declared[name])] if p]
    if problems:
        raise CourseError(f"{nb.name}: {_listed(problems)}. Fix the parameters cell (or the -p values)")


def _listed(problems: list[str], first: int = 5) -> str:
    """Problems joined into one line: the first few, and how many there are in all."""
    more = f" (and {len(problems) - first} more problems)" if len(problems) > first else ""
    return ", ".join(problems[:first]) + more


def _is_path_like(text: str) -> bool:
    """Whether a string is written as a path (starts with ., / or ~) rather than a name."""
    return text.startswith((".", "/", "~")) or text.count("/") > 1


def resolve_paths(parameters: dict[str, Any], cwd: str | Path | None = None) -> dict[str, Any]:
    """Path-valued parameters made absolute against `cwd` (default: the caller's working folder), because the
    kernel runs in the notebook's folder; registered data sets, embedded models and hub ids stay as they are."""
    base = Path(cwd or os.getcwd())
    resolved = dict(parameters)
    for name, value in parameters.items():
        if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
            continue
        local = base / Path(value).expanduser()
        if name == "data":
            is_path = value != "medical_abstracts" and (value.lower().endswith(DATA_SUFFIXES) or local.exists()
                                                        or _is_path_like(value))
        elif name in MODEL_PARAMETERS:
            is_path = value not in EMBEDDED and (local.exists() or _is_path_like(value))
        else:
            is_path = name.endswith(PATH_SUFFIXES)
        if is_path:
            resolved[name] = str(local.resolve())
    return resolved


def option_environment(parameters: dict[str, Any]) -> dict[str, str]:
    """The environment variables that carry the run options given (RUN_OPTIONS) to the kernel's loaders."""
    from ..core.data import MERGE_CASE_ENV

    if "merge_label_case" not in parameters:
        return {}
    return {MERGE_CASE_ENV: "1" if parameters["merge_label_case"] else "0"}


def check_device(parameters: dict[str, Any], force: bool = False) -> None:
    """Refuse `profile gpu` on a machine without CUDA (its settings would run on the CPU for hours) unless forced."""
    from ..core.profiles import FORCE_ENV

    if force or (os.environ.get(FORCE_ENV) or parameters.get("profile")) != "gpu":
        return
    import torch

    if not torch.cuda.is_available():
        raise CourseError("profile gpu needs a CUDA GPU and this machine has none: its settings (full data, longer "
                          "sequences, more epochs: thousands of steps) would run on the CPU for hours. Use -p profile "
                          "cpu (or auto), or pass --force to run it anyway")


def _check_max_length(values: dict[str, Any]) -> None:
    """`max_length` must fit the model's positions (with the soft prompt's virtual tokens, where there is one)."""
    from ..core.models import max_positions

    length, model = values.get("max_length"), values.get("model_name")
    if not isinstance(length, int) or isinstance(length, bool) or not isinstance(model, str):
        return
    limit = max_positions(model)
    virtual = [v for v in [values.get("num_virtual_tokens"), *(values.get("prompt_lengths") or [])]
               if isinstance(v, int) and not isinstance(v, bool)]
    room = limit - max(virtual, default=0) if limit else None
    if room is not None and length > room:
        extra = f" minus {max(virtual)} virtual tokens" if virtual else ""
        raise CourseError(f"max_length={length} is more than model {model!r} can read ({limit} positions{extra}): "
                          f"use -p max_length {max(room, 2)} or less")


def _check_given_tables(parameters: dict[str, Any]) -> None:
    """A table given as a `*_csv` parameter must exist (a missing one would silently fall back to a default);
    `{profile}` is filled in with the run's profile (any profile when it is auto); a file named `none` means none."""
    profile = parameters.get("profile", "auto")
    profiles = [profile] if profile in ("smoke", "cpu", "gpu") else ["smoke", "cpu", "gpu"]
    for name, value in parameters.items():
        if not (name.endswith("_csv") and isinstance(value, str)) or Path(value).name == "none":
            continue
        if not any(Path(value.replace("{profile}", p)).expanduser().is_file() for p in profiles):
            shown = value.replace("{profile}", profiles[0]) if len(profiles) == 1 else value
            raise CourseError(f"{name}: there is no file at {shown}. Run what writes it first (e.g. `make rates` for a "
                              f"rate table), give the right path (relative to the folder you start from), or leave "
                              f"{name} out to use the notebook's default")


def check_inputs(notebook: Path, parameters: dict[str, Any]) -> None:
    """Check the data source and models a run will load (with the notebook's defaults for the rest), the data sets
    its code needs (WikiText-2), that its labels can be turned into words (hard prompts) and that max_length fits."""
    from ..core.data import check_registered

    _check_given_tables(parameters)
    declared = declared_parameters(notebook)
    values = {name: coerce(spec["default"]) for name, spec in declared.items()}  # defaults are source text
    values.update(parameters)
    for name in MODEL_PARAMETERS:
        if name in declared and isinstance(values.get(name), str):
            check_model_name(values[name])
    uses = notebook_facts(notebook)[1]
    if "general_text" in uses:
        check_registered("wikitext2")
    data = values.get("data")
    if "data" in declared and isinstance(data, str) and data != "medical_abstracts":
        columns = str(values.get("text_column", "text")), str(values.get("label_column", "label"))
        merge = values.get("merge_label_case")  # None: as the environment says (COURSE_MERGE_LABEL_CASE)
        names = check_data(data, *columns, merge_case=merge)["label_names"]
        if "label_words" in uses and isinstance(values.get("lm_name"), str):
            from ..checks.n08 import check_label_words

            check_label_words(values["lm_name"], tuple(names))
    _check_max_length(values)


def check_parameters(notebook: str | Path, parameters: dict[str, Any],
                     cwd: str | Path | None = None) -> dict[str, Any]:
    """Validate `parameters` against the notebook's declarations (one CourseError listing every problem), then
    the data and models they name; return them in their declared types (true/yes → True for a bool) with relative
    paths resolved against `cwd`."""
    declared = declared_parameters(notebook)
    if "data" in declared:
        declared.update(RUN_OPTIONS)
    problems = []
    typed = {}
    for name, value in parameters.items():
        if name not in declared:
            problems.append(f"unknown parameter {name!r}")
            continue
        typed[name] = as_declared(value, declared[name]["type"])
        problem = _problem(name, typed[name], declared[name])
        if problem:
            problems.append(problem)
    if problems:
        valid = ", ".join(f"{n}: {s['type']}" for n, s in declared.items())
        raise CourseError(f"{Path(notebook).name}: {_listed(problems)}. Valid parameters: {valid} (choices, ranges "
                          f"and defaults: the notebook's parameters cell)")
    resolved = resolve_paths(typed, cwd)
    check_inputs(Path(notebook), resolved)
    return resolved
