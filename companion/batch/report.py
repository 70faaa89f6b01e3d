"""Collect a run folder (one sub-folder per run, each with status.json + result JSON) into a tidy CSV,
seaborn plots and a Markdown summary: per sweep entry and parameter setting, the mean over seeds and its 95 %
t-interval (`companion.core.stats.mean_ci`), the course's standard for every number that varies with the seed.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import CourseError
from ..core.results import write_text_atomic
from .runner import STATUS_FILE, is_stale, read_status
from ..core.stats import Interval, mean_ci
from .tables import plain

PLAN_FILE = "sweep.json"  # written by companion.batch.sweep (kept here too, so report does not import sweep)
BASE_COLUMNS = ["group", "notebook", "run_id", "status", "seed", "seconds", "error"]
PARAM = "param."
INTERVAL = "mean ± 95 % t-interval over seeds"  # how every varying number of the summary and the plots reads


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict → {dotted.key: scalar}; lists and other non-scalars are left out."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
    return flat


def _group(run_id: str, notebook: str | None) -> str:
    """The sweep entry a run belongs to: the first part of `<entry>/<setting>`, else the notebook."""
    return run_id.split("/")[0] if "/" in run_id else str(notebook)


def run_row(run_dir: Path, rundir: Path) -> dict[str, Any]:
    """One table row: run identity, parameters (param.<name>), seed, status and the flattened results."""
    status = read_status(run_dir) or {}
    params = dict(status.get("parameters") or {})
    run_id = run_dir.relative_to(rundir).as_posix()
    row: dict[str, Any] = {"group": _group(run_id, status.get("notebook")), "notebook": status.get("notebook"),
                           "run_id": run_id,
                           "status": status.get("status", "unknown"), "seed": params.pop("seed", None),
                           "seconds": status.get("seconds"), "error": status.get("error")}
    row.update({f"{PARAM}{k}": (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in params.items()})
    if not status:
        row.update(status="broken", error=f"{STATUS_FILE} is unreadable: rerun the sweep to redo this run")
    elif is_stale(run_dir, status):  # "running", but its process is gone: it will never finish
        row.update(status="interrupted", error=f"its process ({status.get('pid') or '?'} on {status.get('host')}) "
                                               f"ended without finishing it: rerun the sweep to redo this run")
    elif status.get("status") == "ok":
        results = _read_result(run_dir / (status.get("result") or "-"))
        if isinstance(results, str):
            row.update(status="broken", error=results)
        else:
            for key, value in flatten(results).items():
                row[key if key not in row else f"result.{key}"] = value
    return row


def _read_result(path: Path) -> dict[str, Any] | str:
    """The run's result JSON as a dict, or one line saying why it cannot be read (missing, truncated…)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"result {path.name} is unreadable ({type(err).__name__}: {err}): rerun the sweep to redo this run"
    if not isinstance(data, dict):
        return f"result {path.name} is not a JSON object: rerun the sweep to redo this run"
    return data


def planned_but_missing(rundir: Path, seen: set[str]) -> list[dict[str, Any]]:
    """Rows (status `not run`) for runs a sweep planned (its sweep.json) that have no status.json yet."""
    try:
        planned = json.loads((rundir / PLAN_FILE).read_text()).get("runs", [])
    except (OSError, ValueError, AttributeError):  # no plan (single runs) or an unreadable one: list none
        return []
    rows = []
    for run in planned:
        if run["run_id"] not in seen:
            params = dict(run.get("parameters") or {})
            rows.append({"group": _group(run["run_id"], run.get("notebook")), "notebook": run.get("notebook"),
                         "run_id": run["run_id"], "status": "not run",
                         "seed": params.pop("seed", None), "seconds": None, "error": None,
                         **{f"{PARAM}{k}": (json.dumps(v) if isinstance(v, (list, dict)) else v)
                            for k, v in params.items()}})
    return rows


def collect(rundir: str | Path) -> pd.DataFrame:
    """Every run under `rundir` (any folder holding a status.json) as one tidy DataFrame, sorted by run id."""
    rundir = Path(rundir).resolve()
    if not rundir.is_dir():
        raise CourseError(f"no run folder {str(rundir)!r}: pass the --out folder of a sweep or run")
    rows = [run_row(p.parent, rundir) for p in sorted(rundir.rglob(STATUS_FILE))]
    rows += planned_but_missing(rundir, {r["run_id"] for r in rows})
    if not rows:
        raise CourseError(f"no runs in {rundir}: a run folder holds a {STATUS_FILE} "
                          "(made by `python -m companion sweep` or `run`)")
    frame = pd.DataFrame(rows)
    rest = [c for c in frame.columns if c not in BASE_COLUMNS]
    params = sorted(c for c in rest if c.startswith(PARAM))
    return frame[BASE_COLUMNS + params + [c for c in rest if c not in params]].sort_values("run_id")


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric result columns (not the run's identity, seed, time or booleans)."""
    skip = set(BASE_COLUMNS) | {c for c in frame.columns if c.startswith(PARAM)} | {"result.seed"}
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c]) and frame[c].notna().any()]


def setting_label(frame: pd.DataFrame) -> pd.Series:
    """Per row, the parameters that vary within its group (sweep entry), as `k=v, k=v` (or `default`)."""
    labels = pd.Series("default", index=frame.index)
    for _, group in frame.groupby("group"):
        varying = [c for c in group.columns if c.startswith(PARAM) and group[c].map(str).nunique() > 1]
        if varying:
            labels[group.index] = group[varying].apply(
                lambda r: ", ".join(f"{c[len(PARAM):]}={r[c]}" for c in varying), axis=1)
    return labels


def seed_interval(values: pd.Series) -> Interval | None:
    """The mean over seeds and its 95 % Student-t interval (`mean_ci`); None when no seed has a value."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    return mean_ci(values.to_numpy(dtype=float)) if len(values) else None


def _fmt(interval: Interval | None) -> str:
    """`mean ± h` (h: half the 95 % t-interval) with 4 significant digits, never in scientific notation; a single
    seed has no interval and shows the mean alone, no value shows '–'."""
    if interval is None:
        return "–"
    if interval.n < 2:
        return plain(interval.mean, 4)
    half = interval.half_width
    return f"{plain(interval.mean, 4)} ± {plain(0 if half <= 1e-9 * max(1.0, abs(interval.mean)) else half, 2)}"


def split_metrics(group: pd.DataFrame) -> tuple[list[str], dict[str, Any]]:
    """A group's metrics that differ between its finished runs, and those equal in all of them (name → value)."""
    metrics = metric_columns(group)
    if len(group) < 2:
        return metrics, {}
    same = {c: group[c].iloc[0] for c in metrics if group[c].nunique(dropna=False) == 1}
    return [c for c in metrics if c not in same], same


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """The finished runs, with a `setting` column (the parameters that vary within their group)."""
    ok = frame[frame["status"] == "ok"]
    return ok.assign(setting=setting_label(ok))


def _number(value: Any) -> str:
    """A number for people: whole numbers with thousands separators, others to 6 significant digits."""
    return plain(value, 6)


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The mean over seeds ± half its 95 % t-interval of each varying metric, per group (sweep entry) and
    parameter setting (text cells: `0.82 ± 0.05`; one seed: the mean alone)."""
    rows = []
    for name, entry in finished(frame).groupby("group", sort=True):
        varying, _ = split_metrics(entry)
        for setting, group in entry.groupby("setting", sort=True):
            row = {"group": name, "notebook": group["notebook"].iloc[0], "setting": setting,
                   "seeds": int(group["seed"].nunique())}
            for col in varying + ["seconds"]:
                row[col] = _fmt(seed_interval(group[col]))
            rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (no extra dependency)."""
    cols = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join("" if pd.isna(v) else str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def markdown(frame: pd.DataFrame, rundir: Path, plots: list[Path]) -> str:
    """The Markdown summary: counts, one table per group (sweep entry) of means with 95 % t-intervals over seeds,
    failed runs, plots."""
    counts = frame["status"].value_counts().to_dict()
    text = [f"# Sweep report: {rundir.name}", "",
            f"{len(frame)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ". "
            "Values are the mean over seeds ± half the width of its 95 % t-interval (Student t, n − 1 degrees of "
            "freedom): the interval runs from mean − h to mean + h. A setting with one seed shows its mean alone (no "
            "interval); `seeds` counts the finished runs.", ""]
    summary = summary_table(frame)
    for name, group in (summary.groupby("group") if len(summary) else []):
        notebook = group["notebook"].iloc[0]
        group = group.drop(columns=["group", "notebook"]).dropna(axis=1, how="all")
        text += [f"## {name}" + (f" ({notebook})" if notebook != name else ""), "", f"Each value: {INTERVAL}.", "",
                 markdown_table(group), ""]
        same = split_metrics(finished(frame).query("group == @name"))[1]
        if same:
            text += ["Same in every run: " + ", ".join(f"`{k}` = {_number(v)}" for k, v in same.items()), ""]
    failed = frame[frame["status"] != "ok"]
    if len(failed):
        text += ["## Not finished", "", markdown_table(failed[["run_id", "status", "error"]]), ""]
    text += [f"![{p.stem}]({p.relative_to(rundir).as_posix()})" for p in plots]
    return "\n".join(text) + "\n"


def plot(frame: pd.DataFrame, rundir: Path, max_metrics: int = 8) -> list[Path]:
    """One PNG per group (sweep entry): each varying metric per setting, bar = mean over seeds, error bar = its 95 %
    t-interval (none for a single seed), dots = the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    paths = []
    for name, group in finished(frame).groupby("group"):
        varying, _ = split_metrics(group)
        metrics = (varying or metric_columns(group))[:max_metrics]
        if not metrics:
            continue
        ncols = min(4, len(metrics))
        nrows = math.ceil(len(metrics) / ncols)
        width = max(3.5, 0.6 * group["setting"].nunique() + 2)
        fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, 3.6 * nrows), squeeze=False)
        order = sorted(group["setting"].unique())
        for ax, metric in zip(axes.flat, metrics):
            intervals = [seed_interval(group.loc[group["setting"] == s, metric]) for s in order]
            ax.bar(range(len(order)), [i.mean if i else math.nan for i in intervals], color="C0", alpha=0.6)
            spread = [(x, i) for x, i in enumerate(intervals) if i and i.n > 1]  # one seed: no interval drawn
            if spread:
                ax.errorbar([x for x, _ in spread], [i.mean for _, i in spread],
                            yerr=[i.half_width for _, i in spread], fmt="none", ecolor="k", capsize=4)
            sns.stripplot(data=group, x="setting", y=metric, order=order, ax=ax, color="k", size=4)
            ax.set_title(metric)
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.tick_params(axis="x", rotation=30)
        for ax in list(axes.flat)[len(metrics):]:
            ax.set_visible(False)
        fig.suptitle(f"{name}\n{INTERVAL}\n(bar: mean, line: interval, dots: seeds)", fontsize=10)
        fig.tight_layout()
        path = rundir / "plots" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def report(rundir: str | Path) -> dict[str, Path]:
    """Write report.csv, plots/<group>.png and report.md into `rundir`; return their paths."""
    rundir = Path(rundir).resolve()
    frame = collect(rundir)
    broken = frame.loc[frame["status"] == "broken", "run_id"].tolist()
    if broken:
        print(f"warning: {len(broken)} run(s) left a broken result and are reported as not finished "
              f"(`companion sweep` redoes them): {', '.join(broken)}", file=sys.stderr)
    csv = write_text_atomic(rundir / "report.csv", frame.to_csv(index=False))
    plots = plot(frame, rundir)
    md = write_text_atomic(rundir / "report.md", markdown(frame, rundir, plots))
    return {"csv": csv, "markdown": md, **{f"plot:{p.stem}": p for p in plots}}
