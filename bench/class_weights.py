"""Which loss should a user's data get by default: plain or class-weighted cross-entropy? Measured, not assumed.

Full fine-tuning under the protocol, 5 seeds, paired by seed, on two data sets: the medical abstracts (5 classes,
33 % to 10 % each) and an imbalanced set built from real abstracts of three of their classes, subsampled to
65 / 26 / 9 %. For each: test macro-F1 with balanced weights minus without (mean and 95 % interval), and how many
runs collapsed (predicted one class, or no better than the majority class).

    python bench/class_weights.py --out bench/results/class-weights-cpu.json   # about 20 runs, 2 workers
    python bench/class_weights.py --data-only runs/medical-imbalanced.csv      # only the imbalanced file
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARES = (0.65, 0.26, 0.09)  # the patient-text set: 65 / 26 / 9 %
CLASSES = ("general pathological conditions", "neoplasms", "digestive system diseases")


def imbalanced_set(path: Path, total: int = 960, seed: int = 0) -> Path:
    """Real medical abstracts of three classes subsampled to SHARES (total rows), written as a CSV (text, label)."""
    from companion.core.data import load_text_classification

    data = load_text_classification("medical_abstracts")
    frame = pd.concat([data[s].to_pandas() for s in data])[["text", "label_name"]]
    parts = [frame[frame["label_name"] == name].sample(round(share * total), random_state=seed)
             for name, share in zip(CLASSES, SHARES)]
    out = pd.concat(parts).sample(frac=1.0, random_state=seed).rename(columns={"label_name": "label"})
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    return path


def grid(data_csv: Path, rundir: Path, lr: float, max_length: int, truncation: str) -> dict:
    """The sweep: {medical, imbalanced} × {none, balanced}, 5 seeds, full fine-tuning at one rate."""
    entries = []
    for data_name, data in (("medical", "medical_abstracts"), ("imbalanced", str(data_csv))):
        for weights in ("none", "balanced"):
            entries.append({"notebook": str(ROOT / "sweeps" / "strategy_run.ipynb"), "name": f"{data_name}-{weights}",
                            "params": {"data": data, "class_weights": weights, "label": f"full, {weights}"}})
    return {"name": "class-weights", "out": str(rundir), "jobs": 2, "seeds": [0, 1, 2, 3, 4],
            "params": {"profile": "cpu", "strategy": "full", "lr": lr, "max_length": max_length,
                       "truncation": truncation}, "notebooks": entries}


def summarise(report_csv: Path) -> dict:
    """Per data set: mean macro-F1 of each arm, the paired difference balanced − none with its 95 % interval, and
    the runs that collapsed."""
    from companion.core.stats import paired_difference

    runs = pd.read_csv(report_csv)
    runs = runs[runs["status"] == "ok"]
    out = {}
    for data_name in ("medical", "imbalanced"):
        arms = {w: runs[runs["group"] == f"{data_name}-{w}"].set_index("seed") for w in ("none", "balanced")}
        seeds = sorted(set(arms["none"].index) & set(arms["balanced"].index))
        d = paired_difference(arms["balanced"].loc[seeds, "macro_f1"], arms["none"].loc[seeds, "macro_f1"])
        out[data_name] = {
            "seeds": seeds, "difference": d.mean, "low": d.low, "high": d.high,
            **{f"{w}_macro_f1": float(arms[w].loc[seeds, "macro_f1"].mean()) for w in arms},
            **{f"{w}_collapsed": int((~arms[w]["trained"].astype(bool)).sum()) for w in arms},
            **{f"{w}_majority_macro_f1": float(arms[w]["majority_macro_f1"].mean()) for w in arms},
            **{f"{w}_stopped_early": int(arms[w]["stopped_early"].astype(bool).sum()) for w in arms}}
    return out


def main() -> None:
    """Build the imbalanced set, run the sweep, write the summary JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "class-weights-cpu.json"))
    parser.add_argument("--runs", default=str(ROOT / "runs" / "class-weights"))
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--truncation", default="head+tail")
    parser.add_argument("--data-only", metavar="CSV", help="only write the imbalanced set to CSV (e.g. to run "
                        "notebook 06 on it: companion run 06 -p data CSV -p text_column text -p label_column label)")
    args = parser.parse_args()
    if args.data_only:
        if Path(args.data_only).exists():
            raise SystemExit(f"error: {args.data_only} exists; choose another path (nothing was overwritten)")
        print(imbalanced_set(Path(args.data_only)))
        return
    from companion.batch.report import report
    from companion.batch.sweep import sweep

    rundir = Path(args.runs).resolve()
    data_csv = imbalanced_set(rundir / "medical-imbalanced.csv")
    spec = grid(data_csv, rundir, args.lr, args.max_length, args.truncation)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "class-weights.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        sweep(path, out=rundir, jobs=2)
    summary = summarise(report(rundir)["csv"]) | {"lr": args.lr, "max_length": args.max_length,
                                                  "truncation": args.truncation, "shares": list(SHARES)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
