"""The rate search as a sweep that extends itself: `companion rates sweeps/rates.yaml --out sweeps/results/rates-cpu.csv`.

Each entry of the YAML is one setting (a strategy and its options) with a `grid:` of `lr_scale` values (the start
grid around the strategy's default rate). The search runs the sweep, reads every setting's validation macro-F1,
adds the next rate beyond the best one wherever the best sits at an edge (the top-level `rates:` section gives the
factor and how many extensions a side may have), and runs again — finished runs are never redone — until every
best rate is bracketed or capped. Then it writes the rates table: every candidate, the chosen one, and where it lies.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..core.errors import CourseError
from ..core.rates import choose_rates, next_rate
from .report import collect
from .sweep import load_grid, sweep

SCALE = "lr_scale"


def search_settings(grid: dict[str, Any]) -> tuple[float, int]:
    """The factor and the extensions per side of a rate-search YAML's `rates:` section (defaults 3 and 3)."""
    spec = grid.get("rates") or {}
    factor, extensions = float(spec.get("factor", 3.0)), int(spec.get("extensions", 3))
    if factor <= 1 or extensions < 0:
        raise CourseError(f"rates: factor must be > 1 and extensions >= 0 (got {factor}, {extensions})")
    for i, entry in enumerate(grid["notebooks"]):
        if list((entry.get("grid") or {})) != [SCALE]:
            raise CourseError(f"rate search entry {i} ({entry.get('name', '?')}): its grid must be `{SCALE}` only "
                              f"(one setting per entry, its options under params:)")
    return factor, extensions


def candidates(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """One entry's finished runs as (lr = its lr_scale, val_macro_f1), the form core.rates reasons about."""
    rows = frame[(frame["group"] == group) & (frame["status"] == "ok")]
    return pd.DataFrame({"lr": rows[f"param.{SCALE}"].astype(float), "val_macro_f1": rows["val_macro_f1"].astype(float)})


def extend(grid: dict[str, Any], frame: pd.DataFrame, factor: float, extensions: int) -> list[str]:
    """Add the next lr_scale to every entry whose best rate is at an edge of what it tried (in place), within the
    cap counted from the entry's start grid; returns the extensions made, in words."""
    extended = []
    for entry in grid["notebooks"]:
        scale = next_rate(candidates(frame, entry["name"]), entry["start"], factor, extensions)
        if scale is not None:
            entry["grid"][SCALE] = sorted(entry["grid"][SCALE] + [scale])
            extended.append(f"{entry['name']} → lr_scale {scale:.4g}")
    return extended


def table_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The rates table: every setting's candidates (actual rates), chosen, position, the data and the profile."""
    ok = frame[frame["status"] == "ok"]
    table = choose_rates(ok)
    first = ok.groupby("setting").first()
    for column in ("data", "profile"):
        if column in first:
            table[column] = table["setting"].map(first[column])
    counts = ok.groupby("setting").size()
    table["candidates"] = table["setting"].map(counts)
    return table


def search(grid_path: str | Path, out: str | Path, runs: str | Path | None = None, jobs: int | None = None,
           force: bool = False) -> int:
    """Run the self-extending rate search of a YAML and write its table to `out`; 0 when every setting finished."""
    out = Path(out)
    if out.exists() and not force:
        raise CourseError(f"{out} exists: pass --force to replace it")
    grid = load_grid(grid_path)
    factor, extensions = search_settings(grid)
    here = Path(grid_path).resolve().parent
    for entry in grid["notebooks"]:  # the working copy lives in the run folder: notebooks by absolute path
        if (here / str(entry["notebook"])).is_file():
            entry["notebook"] = str(here / str(entry["notebook"]))
        entry["grid"][SCALE] = [float(s) for s in entry["grid"][SCALE]]
        entry["start"] = list(entry["grid"][SCALE])
    rundir = Path(runs or grid.get("out") or f"runs/{Path(grid_path).stem}").resolve()
    rundir.mkdir(parents=True, exist_ok=True)
    working = rundir / "rates-grid.yaml"
    while True:
        plain = {key: value for key, value in grid.items() if key != "rates"}
        plain["notebooks"] = [{k: v for k, v in e.items() if k != "start"} for e in grid["notebooks"]]
        working.write_text(yaml.safe_dump(plain | {"out": str(rundir)}, sort_keys=False))
        if sweep(working, out=rundir, jobs=jobs) != 0:
            raise CourseError(f"the rate search's sweep has failed runs: see `companion report {rundir}`")
        frame = collect(rundir)
        extended = extend(grid, frame, factor, extensions)
        if not extended:
            break
        print("best rate at an edge, extending: " + "; ".join(extended), flush=True)
    table = table_of(frame)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    for row in table[table["chosen"]].itertuples():
        note = "" if row.position == "interior" else f" (at the {row.position} edge: the extension cap was hit)"
        print(f"{row.setting}: lr {row.lr:.3g}, validation macro-F1 {row.val_macro_f1:.3f}, "
              f"{row.candidates} candidates{note}")
    print(f"rates: {out}")
    return 0
