"""Statistics agree with scipy and with hand computation on fixed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.analysis import stats as S
from benchmark.cli import main


def curve_table():
    """Synthetic aggregated table: 2 tasks, algos a, b, random, ppo; 4 seeds each."""
    rng = np.random.default_rng(0)
    rows = []
    levels = {"a": 100.0, "b": 60.0, "random": 0.0, "ppo": 80.0}
    for task, scale in (("t1", 1.0), ("t2", 3.0)):
        for algo, level in levels.items():
            for seed in range(4):
                final = scale * (level + rng.normal(0, 10))
                for steps in (1000, 2000):
                    rows.append(
                        dict(
                            experiment="e",
                            task=task,
                            algo=algo,
                            seed=seed,
                            status="done",
                            error="",
                            run_dir=f"{task}/{algo}/{seed}",
                            env_steps=steps,
                            return_mean=final * steps / 2000,
                        )
                    )
    return pd.DataFrame(rows)


def test_per_task_tests_agree_with_scipy():
    a = np.array([3.1, 4.5, 2.2, 5.0, 4.1])
    b = np.array([1.0, 2.4, 2.2, 0.5])
    c = S.compare_task("t", a, b)
    welch = stats.ttest_ind(a, b, equal_var=False)
    mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert c.welch_p == pytest.approx(welch.pvalue) and c.welch_t == pytest.approx(welch.statistic)
    assert c.mannwhitney_p == pytest.approx(mwu.pvalue)
    assert c.prob_improvement == pytest.approx(mwu.statistic / (len(a) * len(b)))
    assert c.diff_ci[0] < c.diff < c.diff_ci[1]
    assert S.compare_task("t", a, b).diff_ci == c.diff_ci  # fixed bootstrap seed


def test_iqm_and_stratified_bootstrap():
    x = np.arange(1.0, 9.0)  # 1..8: the middle half is 3..6
    assert S.iqm(x) == pytest.approx(4.5)
    normalized = {"t1": np.array([0.1, 0.2, 0.3]), "t2": np.array([0.9, 1.0, 1.1])}
    point, (low, high) = S.aggregate_with_ci(normalized, np.mean)
    assert point == pytest.approx(0.6) and low <= point <= high
    # Stratified: every resample keeps 3 runs per task, so the mean stays between the
    # task means' extremes.
    assert 0.5 < low and high < 0.7


def test_return_at_interpolates_and_refuses_extrapolation():
    curve = pd.DataFrame({"env_steps": [1000, 3000], "return_mean": [10.0, 30.0]})
    assert S.return_at(curve, 2000) == pytest.approx(20.0)
    assert S.return_at(curve, None) == 30.0
    assert np.isnan(S.return_at(curve, 5000))


def test_normalized_scores_use_random_and_best_model_free():
    table = curve_table()
    low, high = S.normalization_bounds(table, ["t1", "t2"])
    ppo_t2 = S.score_arrays(table, "ppo", ["t2"])["t2"].mean()
    assert high["t2"] == pytest.approx(ppo_t2)
    report = S.format_comparison(S.compare(table, "a", "b", None, None))
    assert "IQM" in report and "| t1 | 4/4 |" in report


def test_compare_cli_on_an_aggregated_csv(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    curve_table().to_csv(path, index=False)
    assert main(["compare", str(path), "--algos", "a", "b", "--at", "1500"]) == 0
    out = capsys.readouterr().out
    assert "a vs b, at 1500 steps" in out and "Welch" in out
    assert main(["compare", str(path), "--algos", "a", "zzz"]) == 2
    assert "no runs of 'zzz'" in capsys.readouterr().err


def test_compare_writes_full_precision_csv_and_json(tmp_path, capsys):
    import io
    import json

    path = tmp_path / "runs.csv"
    curve_table().to_csv(path, index=False)
    expected = S.compare(curve_table(), "a", "b", None, None)
    assert main(["compare", str(path), "--algos", "a", "b", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    tasks = [r for r in document["records"] if r["scope"] == "task"]
    aggregates = [r for r in document["records"] if r["scope"] == "aggregate"]
    assert [r["task"] for r in tasks] == ["t1", "t2"]
    first = expected.tasks[0]
    # Not rounded: every number is the float the statistics computed.
    assert tasks[0]["welch_p"] == first.welch_p and tasks[0]["diff_ci_low"] == first.diff_ci[0]
    assert {(r["algorithm"], r["statistic"]) for r in aggregates} == {
        ("a", "iqm"),
        ("a", "mean"),
        ("b", "iqm"),
        ("b", "mean"),
    }
    assert main(["compare", str(path), "--algos", "a", "b", "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert len(frame) == 6 and {"n_a", "mannwhitney_u", "prob_improvement", "ci_low"} <= set(
        frame.columns
    )
    row = frame[(frame["scope"] == "task") & (frame["task"] == "t1")].iloc[0]
    assert row["mean_a"] == pytest.approx(first.mean_a, rel=1e-15)


def test_compare_on_the_papers_metric_reads_that_column(tmp_path, capsys):
    """--metric paper_return compares the paper's metric: here it ranks b above a, the
    opposite of the deterministic evaluation, and the report says which column it used."""
    table = curve_table()
    table["paper_return"] = -table["return_mean"]
    deterministic = S.compare(table, "a", "b", ["t1"], None)
    paper = S.compare(table, "a", "b", ["t1"], None, metric="paper_return")
    assert deterministic.tasks[0].diff > 0 > paper.tasks[0].diff
    assert paper.tasks[0].diff == pytest.approx(-deterministic.tasks[0].diff)
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    args = ["compare", str(path), "--algos", "a", "b", "--task", "t1", "--metric", "paper_return"]
    assert main(args) == 0
    assert "a vs b, final return (paper_return)" in capsys.readouterr().out


def test_compare_reports_each_sides_run_cost(tmp_path, capsys):
    """The cost of a run is its wall_time_s at the compared point: a's runs take twice as
    long as b's here, so the ratio is 2, at the end and at a step interpolated between points."""
    table = curve_table()
    per_step = table["algo"].map({"a": 2.0, "b": 1.0, "random": 0.1, "ppo": 0.5})
    table["wall_time_s"] = per_step * table["env_steps"]
    final = S.compare(table, "a", "b", ["t1"], None).tasks[0]
    assert (final.run_seconds_a, final.run_seconds_b, final.cost_ratio) == (4000.0, 2000.0, 2.0)
    midway = S.compare(table, "a", "b", ["t1"], 1500).tasks[0]
    assert midway.run_seconds_a == pytest.approx(3000.0) and midway.cost_ratio == pytest.approx(2)
    # Runs that never logged their wall time have no cost, and the report leaves it out.
    assert np.isnan(S.compare(curve_table(), "a", "b", ["t1"], None).tasks[0].cost_ratio)
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    assert main(["compare", str(path), "--algos", "a", "b", "--task", "t1"]) == 0
    assert "| t1 | 1.11 | 0.56 | 2.00 |" in capsys.readouterr().out


def test_runs_in_progress_count_only_when_asked_and_only_where_they_got(tmp_path, capsys):
    """Two of a's four runs on t1 are still running and have reached 1000 steps only: by
    default a has 2 runs on t1; --include-unfinished counts all 4 at 1000 steps, still 2 at
    1500 (the running ones did not get there), and refuses a final comparison."""
    table = curve_table()
    running = (table["algo"] == "a") & (table["task"] == "t1") & (table["seed"] >= 2)
    table.loc[running, "status"] = "running"
    table = table[~(running & (table["env_steps"] == 2000))]
    assert S.compare(table, "a", "b", ["t1"], 1000).tasks[0].n_a == 2
    counted = S.compare(table, "a", "b", ["t1"], 1000, include_unfinished=True)
    assert counted.tasks[0].n_a == 4 and counted.records()[0]["include_unfinished"] is True
    expected = table[
        (table["algo"] == "a") & (table["task"] == "t1") & (table["env_steps"] == 1000)
    ]
    assert counted.tasks[0].mean_a == pytest.approx(expected["return_mean"].mean())
    assert S.compare(table, "a", "b", ["t1"], 1500, include_unfinished=True).tasks[0].n_a == 2
    with pytest.raises(ValueError, match="give the step"):
        S.compare(table, "a", "b", ["t1"], None, include_unfinished=True)
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    args = ["compare", str(path), "--algos", "a", "b", "--task", "t1", "--include-unfinished"]
    assert main([*args, "--at", "1000"]) == 0
    out = capsys.readouterr().out
    assert "at 1000 steps, runs still in progress included" in out and "| t1 | 4/4 |" in out
    assert main(args) == 2
    assert "give the step" in capsys.readouterr().err
