"""`report` turns a run folder into one tidy CSV, seaborn plots and a Markdown summary of means with their 95 %
t-intervals over seeds."""
import json

import pandas as pd
import pytest

from companion import CourseError
from companion.batch.cli import main
from companion.batch.report import collect, flatten, report, summary_table
from companion.core.stats import mean_ci
from companion.core.results import save_results
from companion.core.results import write_json_atomic

ACCURACY = {0.1: [0.80, 0.82, 0.84], 0.2: [0.70, 0.70, 0.70]}


def make_run(rundir, run_id, params, status="ok", results=None, error=None):
    """A run folder as `companion run` / `sweep` leave it: status.json (+ the result JSON when ok)."""
    folder = rundir / run_id
    if results is not None:
        save_results("demo", results, folder)
    write_json_atomic(folder / "status.json", {
        "status": status, "notebook": "demo", "notebook_file": "demo.ipynb", "parameters": params,
        "result": "demo.results.json" if results is not None else None, "error": error, "seconds": 2.0})


@pytest.fixture
def rundir(tmp_path):
    """Two settings × three seeds, one failed run and one planned run that never started."""
    for lr, values in ACCURACY.items():
        for seed, acc in enumerate(values):
            make_run(tmp_path, f"demo/lr={lr}_seed={seed}", {"profile": "cpu", "lr": lr, "seed": seed},
                     results={"accuracy": acc, "cost": {"params": 1000, "device": "cpu"}, "curve": [1, 2]})
    make_run(tmp_path, "demo/lr=9.0_seed=0", {"profile": "cpu", "lr": 9.0, "seed": 0}, status="failed",
             error="RuntimeError: loss is nan")
    plan = [{"run_id": "demo/lr=5.0_seed=0", "notebook": "demo", "parameters": {"lr": 5.0, "seed": 0}}]
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": plan}))
    return tmp_path


def test_flatten_keeps_scalars_with_dotted_keys():
    assert flatten({"a": 1, "b": {"c": 2.5, "d": {"e": "x"}}, "l": [1, 2], "n": None}) == {
        "a": 1, "b.c": 2.5, "b.d.e": "x", "n": None}


def test_collect_one_tidy_row_per_run(rundir):
    frame = collect(rundir)
    assert len(frame) == 8 and frame["run_id"].is_unique
    assert list(frame.columns[:7]) == ["group", "notebook", "run_id", "status", "seed", "seconds", "error"]
    assert {"param.lr", "param.profile", "accuracy", "cost.params", "cost.device"} <= set(frame.columns)
    assert "curve" not in frame.columns and "param.seed" not in frame.columns
    assert frame["status"].value_counts().to_dict() == {"ok": 6, "failed": 1, "not run": 1}
    row = frame.set_index("run_id").loc["demo/lr=0.1_seed=2"]
    assert row["accuracy"] == 0.84 and row["seed"] == 2 and row["param.lr"] == 0.1


def test_report_writes_csv_plots_and_interval_summary(rundir):
    paths = report(rundir)
    csv = pd.read_csv(paths["csv"])
    assert len(csv) == 8 and csv.loc[csv["run_id"] == "demo/lr=9.0_seed=0", "error"].item() == "RuntimeError: loss is nan"
    md = paths["markdown"].read_text()
    assert "8 runs: 1 failed, 1 not run, 6 ok." in md
    assert "| setting | seeds | accuracy | seconds |" in md
    # 0.80, 0.82, 0.84: mean 0.82, sd 0.02, 95 % t-interval ± t(0.975, 2) · 0.02 / √3 = ± 0.0497
    assert "| lr=0.1 | 3 | 0.82 ± 0.05 | 2 ± 0 |" in md and "| lr=0.2 | 3 | 0.7 ± 0 | 2 ± 0 |" in md
    assert "95 % t-interval" in md and "standard deviation" not in md and "Each value: mean ± 95 % t-interval" in md
    assert "Same in every run: `cost.params` = 1,000" in md
    assert "| demo/lr=9.0_seed=0 | failed | RuntimeError: loss is nan |" in md and "demo/lr=5.0_seed=0 | not run" in md
    assert paths["plot:demo"] == rundir / "plots" / "demo.png" and paths["plot:demo"].read_bytes()[:4] == b"\x89PNG"
    assert "![demo](plots/demo.png)" in md


def test_the_summary_is_the_mean_and_its_95_percent_t_interval(rundir):
    """The ± of every summary cell is half of `mean_ci`'s interval over the seeds, not the standard deviation."""
    row = summary_table(collect(rundir)).set_index("setting").loc["lr=0.1"]
    interval = mean_ci(ACCURACY[0.1])
    assert interval.half_width == pytest.approx(0.0497, abs=1e-4) and interval.half_width > 2 * 0.02
    mean, half = (float(x) for x in row["accuracy"].split(" ± "))
    assert mean == pytest.approx(interval.mean) and half == pytest.approx(interval.half_width, abs=0.005)


def test_report_cli_and_empty_folder(rundir, tmp_path_factory, capsys):
    assert main(["report", str(rundir)]) == 0
    assert "report.csv" in capsys.readouterr().out
    with pytest.raises(CourseError, match="no runs in"):
        report(tmp_path_factory.mktemp("empty"))


def test_a_truncated_result_is_named_not_a_traceback(rundir, capsys):
    broken = rundir / "demo/lr=0.2_seed=1/demo.results.json"
    broken.write_text(broken.read_text()[:20])  # a result cut off mid-write (a full disk, a copy interrupted)
    (rundir / "demo/lr=0.2_seed=2/status.json").write_text('{"status": "o')
    assert main(["report", str(rundir)]) == 0
    err = capsys.readouterr().err
    assert "2 run(s) left a broken result" in err
    assert "demo/lr=0.2_seed=1" in err and "demo/lr=0.2_seed=2" in err
    frame = collect(rundir).set_index("run_id")
    assert frame.loc["demo/lr=0.2_seed=1", "status"] == "broken"
    assert "result demo.results.json is unreadable (JSONDecodeError" in frame.loc["demo/lr=0.2_seed=1", "error"]
    assert frame.loc["demo/lr=0.2_seed=2", "error"].startswith("status.json is unreadable")
    md = (rundir / "report.md").read_text()
    assert "| lr=0.2 | 1 | 0.7 | 2 |" in md  # the one good seed of that setting is still summarised
    assert "| demo/lr=0.2_seed=1 | broken | result demo.results.json is unreadable" in md
