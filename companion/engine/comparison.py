"""Reading a comparison: a sweep's finished runs, one row per run with its setting; mean and 95 % interval over seeds
per setting; paired differences on the same seeds; how many runs converged (early stopping ended them) and how many
collapsed. Notebooks 07, 08 and 09 read the strategy sweep with it, so a number means the same thing in each."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import CourseError
from ..core.rates import setting_name
from ..core.stats import Interval, mean_ci, paired_difference
from .protocol import PROTOCOLS

METRICS = {"macro_f1": "macro-F1", "val_macro_f1": "validation macro-F1", "accuracy": "accuracy",
           "trainable": "trainable params", "trainable_pct": "trainable %", "lr": "learning rate",
           "steps": "training steps", "seconds_per_step": "s per training step", "train_seconds": "training s",
           "result.seconds": "seconds", "peak_memory_mb": "peak MiB", "memory_added_mb": "MiB added by training",
           "forgetting.drift": "forgetting (1 − cosine)", "forgetting.cka": "CKA to original",
           "forgetting.general_acc": "general-task accuracy", "forgetting.general_acc_change": "general-task change"}


# The protocol's settings that make two runs' budgets the same (a sweep under other ones answers another question).
BUDGET = ("train_size", "max_length", "truncation", "batch_size", "max_epochs", "min_steps", "eval_steps", "patience",
          "class_weights", "eval_size")


PER_ITEM_COLUMNS = ("forgetting.general_correct", "forgetting.general_correct_before")


def load_sweep(csv: str | Path) -> pd.DataFrame:
    """The finished runs of a strategy sweep (report.csv), one row per run, with a `setting` label."""
    path = Path(csv)
    if not path.is_file():
        raise CourseError(f"no sweep report at {path}: run `make sweep` (sweeps/strategies.yaml) or pass report_csv")
    # per-sentence 0/1 strings ("0110…") stay text: read as numbers they would lose their leading zeros
    frame = pd.read_csv(path, dtype={c: str for c in PER_ITEM_COLUMNS})
    frame = frame[frame["status"] == "ok"].copy()
    if frame.empty or "macro_f1" not in frame:
        raise CourseError(f"{path.name} has no finished strategy runs (column macro_f1 missing)")
    if "setting" not in frame:  # a sweep of an older unit: the label from the strategy and its options
        ks = frame["param.k"] if "param.k" in frame else [None] * len(frame)
        adapted = frame["param.adapted"] if "param.adapted" in frame else [False] * len(frame)
        frame["setting"] = [setting_name(s, k, a) for s, k, a in zip(frame["strategy"], ks, adapted)]
    return frame


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Per setting: mean, std and 95 % interval (low, high) over seeds of every metric in METRICS; best first."""
    cols = [c for c in METRICS if c in frame]
    rows = {}
    for setting, group in frame.groupby("setting"):
        row: dict[str, float] = {"seeds": len(group)}
        for col in cols:
            values = group[col].astype(float).dropna()
            if len(values):
                interval = mean_ci(values)
                row |= {col: interval.mean, f"{col}_std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                        f"{col}_low": interval.low, f"{col}_high": interval.high}
        rows[setting] = row
    return pd.DataFrame(rows).T.sort_values("macro_f1", ascending=False)


def matched(frame: pd.DataFrame, metric: str, index: str = "seed") -> pd.DataFrame:
    """One metric as a table of `index` (seed, or a benchmark's round) × setting: the pairs of a paired comparison."""
    return frame.pivot_table(index=index, columns="setting", values=metric, aggfunc="mean")


def paired_against(frame: pd.DataFrame, reference: str = "full", metric: str = "macro_f1") -> pd.DataFrame:
    """Every setting's paired difference to `reference` on the same seeds (setting − reference), with its 95 %
    interval and whether the interval excludes 0."""
    table = matched(frame, metric)
    if reference not in table:
        raise CourseError(f"no {reference!r} runs in the sweep: the paired comparison needs them")
    rows = {}
    for setting in table.columns.drop(reference):
        pair = table[[setting, reference]].dropna()
        if len(pair) >= 2:
            d = paired_difference(pair[setting], pair[reference])
            rows[setting] = {"difference": d.mean, "low": d.low, "high": d.high, "seeds": d.n,
                             "excludes_0": d.excludes_zero()}
    return pd.DataFrame(rows).T.sort_values("difference", ascending=False)


def pair(frame: pd.DataFrame, a: str, b: str, metric: str = "macro_f1", index: str = "seed") -> Interval:
    """The paired difference a − b of one metric over the seeds (or rounds) both settings ran."""
    table = matched(frame, metric, index)[[a, b]].dropna()
    return paired_difference(table[a], table[b])


def convergence(frame: pd.DataFrame) -> pd.DataFrame:
    """Per setting: runs, the share that early stopping ended before the step cap (converged on validation), and
    the share that trained at all (the did-it-train check)."""
    rows = {}
    for setting, group in frame.groupby("setting"):
        stopped = group["stopped_early"].astype(str).str.lower().eq("true") if "stopped_early" in group else None
        trained = group["trained"].astype(str).str.lower().eq("true") if "trained" in group else None
        rows[setting] = {"runs": len(group), "converged_share": None if stopped is None else float(stopped.mean()),
                         "trained_share": None if trained is None else float(trained.mean())}
    return pd.DataFrame(rows).T


def for_data(frame: pd.DataFrame, data: str) -> bool:
    """Whether a sweep's runs were made on `data` (a sweep of older runs without the column: the medical abstracts)."""
    made_on = set(frame["data"].astype(str)) if "data" in frame else {"medical_abstracts"}
    return made_on == {data}


def protocol_differences(frame: pd.DataFrame, record: dict[str, Any]) -> list[str]:
    """The budget settings (BUDGET) on which a sweep's runs differ from a protocol's record, as 'key: sweep ≠ ours'."""
    differences = []
    for key in BUDGET:
        column = f"protocol.{key}"
        seen = sorted({_plain(v) for v in frame[column]}) if column in frame else ["not recorded"]
        if seen != [_plain(record[key])]:
            differences.append(f"{key}: {', '.join(seen)} ≠ {_plain(record[key])}")
    return differences


def _plain(value: Any) -> str:
    """A setting as text, the same whether pandas read it as a number, a float with .0, or empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "None"
    return str(value).removesuffix(".0")


def sweep_for(csv: str | Path, data: str, record: dict[str, Any] | None = None) -> tuple[pd.DataFrame | None, str]:
    """A sweep's finished runs if `csv` holds runs on `data` under the protocol `record` (None: today's protocol of
    the profile the sweep ran at, so a smoke run may read the cpu sweep); else None and why not."""
    if not Path(csv).is_file():
        return None, f"there is no sweep report at {csv}"
    frame = load_sweep(csv)
    if not for_data(frame, data):
        return None, f"{csv} is not a sweep of {data!r}"
    if record is None:
        profiles = set(frame["profile"].astype(str)) if "profile" in frame else set()
        if len(profiles) != 1 or next(iter(profiles)) not in PROTOCOLS:
            return None, f"{csv} does not record one profile its runs ran at"
        record = PROTOCOLS[next(iter(profiles))].record()
    differences = protocol_differences(frame, record)
    if differences:
        return None, f"{csv} ran under another protocol ({'; '.join(differences)})"
    return frame, ""


def length_study(lengths_csv: str | Path, comparison_csv: str | Path, data: str) -> pd.DataFrame | None:
    """The length study's finished runs on `data` plus the protocol's own length: the comparison's `full` runs at the
    study's seeds (the same runs; the study does not repeat them). None when the study has no runs on `data`."""
    if not Path(lengths_csv).is_file():
        return None
    study = pd.read_csv(lengths_csv)
    study = study[(study["status"] == "ok")] if "status" in study else study
    if study.empty or not for_data(study, data):
        return None
    comparison = load_sweep(comparison_csv) if Path(comparison_csv).is_file() else None
    if comparison is not None and for_data(comparison, data):
        measured = set(zip(study["max_length"].astype(int), study["truncation"]))
        points = pd.MultiIndex.from_arrays([comparison["max_length"].astype(int), comparison["truncation"]])
        ours = ~points.isin(measured)
        full = comparison[(comparison["setting"] == "full") & comparison["seed"].isin(study["seed"]) & ours]
        study = pd.concat([study, full.assign(source="the strategy comparison's full runs")], ignore_index=True)
    study["max_length"] = study["max_length"].astype(int)
    return study.reset_index(drop=True)
