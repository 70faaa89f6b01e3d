"""`companion decide my.csv --text-column text --label-column label`: the course's whole comparison for your data.

Three steps, each resumable, all under the course's protocol (the budget adapts to the data's size): the rate
search on your validation split (`sweeps/rates.yaml`, extended until every best rate is bracketed), the strategy
comparison over the protocol's seeds (`sweeps/strategies.yaml`), then notebook 09 on their reports. Everything goes
into one folder, `runs/decide/<file name>/`; the report is `09_choosing_a_strategy.ipynb` there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..core.errors import CourseError
from ..core.paths import PROJECT_ROOT
from .rates import search
from .report import report
from .runner import execute_run
from .sweep import load_grid, sweep

SWEEPS = PROJECT_ROOT / "sweeps"


def specialised(grid: dict[str, Any], data: dict[str, str], profile: str, out: Path,
                settings: list[str] | None, seeds: list[int] | None) -> dict[str, Any]:
    """A course sweep file made for a user's data: its data parameters, profile, run folder, the chosen settings
    (entry names; None: all) and seeds (None: the file's)."""
    grid = dict(grid) | {"out": str(out), "params": dict(grid.get("params") or {}) | data | {"profile": profile}}
    names = [e["name"] for e in grid["notebooks"]]
    unknown = [s for s in settings or [] if s not in names]
    if unknown:
        raise CourseError(f"unknown setting(s) {', '.join(unknown)}: SETTINGS / --settings takes the entry names of "
                          f"sweeps/strategies.yaml, comma-separated: {', '.join(names)}")
    entries = [dict(e) for e in grid["notebooks"] if settings is None or e["name"] in settings]
    for entry in entries:
        entry["notebook"] = str(SWEEPS / entry["notebook"])
    grid["notebooks"] = entries
    if seeds is not None:
        grid["seeds"] = seeds
    return grid


def decide(source: str, text_column: str = "text", label_column: str = "label", profile: str = "cpu",
           out: str | Path | None = None, jobs: int = 2, settings: list[str] | None = None,
           seeds: list[int] | None = None) -> Path:
    """Run the rate search, the comparison and notebook 09 on a labelled file; return the executed notebook."""
    data_path = Path(source).resolve()
    if not data_path.is_file():
        raise CourseError(f"no data file {source!r}: pass a .csv/.jsonl/.parquet file with a text and a label column")
    data = {"data": str(data_path), "text_column": text_column, "label_column": label_column}
    folder = Path(out or Path("runs") / "decide" / data_path.stem).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    steps = {}
    for name in ("rates", "strategies"):
        grid = specialised(load_grid(SWEEPS / f"{name}.yaml"), data, profile, folder / name, settings,
                           seeds if name == "strategies" else None)  # the rate search keeps its selection seed
        if name == "strategies":
            grid["params"]["rates_csv"] = str(folder / "rates.csv")
        steps[name] = folder / f"{name}.yaml"
        steps[name].write_text(yaml.safe_dump(grid, sort_keys=False))
    search(steps["rates"], folder / "rates.csv", runs=folder / "rates", jobs=jobs, force=True)
    if sweep(steps["strategies"], out=folder / "strategies", jobs=jobs) != 0:
        raise CourseError(f"the comparison has failed runs: see `companion report {folder / 'strategies'}`")
    csv = report(folder / "strategies")["csv"]
    none = "none"  # no step-time benchmark or data-size study, no notebook 06 run for this data
    status = execute_run("09", folder, {"profile": profile, "report_csv": str(csv), **data,
                                        "rates_csv": str(folder / "rates.csv"), "step_time_csv": none,
                                        "data_size_csv": none, "full_06_json": none})
    if status["status"] != "ok":
        raise CourseError(f"notebook 09 failed on the reports: {status.get('error')}")
    return folder / status["notebook_file"]
