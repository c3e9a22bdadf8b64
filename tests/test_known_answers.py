"""Known answers for the numbers the suite prints: synthetic run directories, written with
the run format's own writer, whose tables, statistics and figures have answers computed by
hand below."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import layout
from benchmark.analysis import plots, tables
from benchmark.analysis import stats as S
from benchmark.analysis.aggregate import aggregate, select_labels
from benchmark.rundir import RunDir


def write_run(
    root: Path,
    experiment: str,
    task: str,
    algo: str,
    seed: int,
    curve: list[tuple[int, float]],
    horizon: int = 200,
    status: str = "done",
) -> None:
    """A run directory as a finished run leaves it, with the evaluation points ``curve``."""
    run = RunDir(layout.run_dir(root, experiment, task, algo, seed))
    run.path.mkdir(parents=True)
    run.write_config({"algo": algo, "task": task, "seed": seed, "steps": curve[-1][0]})
    run.write_meta({"algo": algo, "task": task, "seed": seed, "status": status, "horizon": horizon})
    run.write_progress(
        [
            {
                "env_steps": steps,
                "wall_time_s": 1.0,
                "return_mean": value,
                "return_std": 0.0,
                "eval_episodes": 5,
            }
            for steps, value in curve
        ]
    )


@pytest.fixture
def results(tmp_path) -> pd.DataFrame:
    """Experiment 'e' on halfcheetah (horizon 200) and hopper (horizon 1000):

    halfcheetah, evaluation points at 50k and 100k steps:
      mbmpo   finals 100, 200, 300 (seeds 0-2), crossing 89 at known steps
      ppo     finals 90, 110;  trpo final 50;  random finals -10, -10
    hopper: mbmpo finals 10, 30 at 200k steps, horizon 1000.
    """
    root = tmp_path / "runs"
    for seed, (mid, final) in enumerate([(0.0, 100.0), (50.0, 200.0), (100.0, 300.0)]):
        write_run(root, "e", "halfcheetah", "mbmpo", seed, [(50_000, mid), (100_000, final)])
    for seed, final in enumerate([90.0, 110.0]):
        write_run(root, "e", "halfcheetah", "ppo", seed, [(50_000, 0.0), (100_000, final)])
    write_run(root, "e", "halfcheetah", "trpo", 0, [(50_000, 0.0), (100_000, 50.0)])
    for seed in range(2):
        write_run(root, "e", "halfcheetah", "random", seed, [(50_000, -10.0), (100_000, -10.0)])
    for seed, final in enumerate([10.0, 30.0]):
        write_run(root, "e", "hopper", "mbmpo", seed, [(200_000, final)], horizon=1000)
    write_run(root, "e", "hopper", "ppo", 0, [(1000, 5.0)], status="failed")
    return aggregate(root, warn=False)


def test_final_returns_and_the_published_number_of_the_same_setting(results):
    final = tables.final_returns(results).set_index(["task", "algo"])
    cheetah = final.loc[("halfcheetah", "mbmpo")]
    assert cheetah["seeds"] == 3 and cheetah["steps"] == 100_000
    assert cheetah["return_mean"] == pytest.approx(200.0)
    assert cheetah["return_std"] == pytest.approx(math.sqrt((100**2 + 0 + 100**2) / 3))
    # The official code rerun at 100k steps, horizon 200: the same setting.
    assert cheetah["published"] == "550.0 (rl_experiments_readme_original_code_rerun)"
    # Hopper at horizon 1000, 200k steps: MBBL's table 1 has MB-MPO there.
    hopper = final.loc[("hopper", "mbmpo")]
    assert hopper["return_mean"] == pytest.approx(20.0) and hopper["seeds"] == 2
    assert hopper["published"] == "333.2 ± 1189.7 (wang2019_mbbl_table1)"
    # PPO on halfcheetah: published only at 200k steps, horizon 1000 -> another setting.
    assert final.loc[("halfcheetah", "ppo"), "published"].startswith(
        "other setting: 17.2 at 200,000 steps, horizon 1000"
    )
    # A failed run is not a result.
    assert ("hopper", "ppo") not in final.index


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (20.0, 2500.0),  # crosses between 2000 (10) and 3000 (30): 2000 + 10/20 * 1000
        (10.0, 2000.0),  # reached exactly at a point
        (-5.0, 1000.0),  # already reached at the first point
        (40.0, math.nan),  # never reached
    ],
)
def test_steps_to_reach(level, expected):
    curve = pd.DataFrame({"env_steps": [3000, 1000, 2000], "return_mean": [30.0, 0.0, 10.0]})
    got = tables.steps_to_reach(curve, level)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_samples_needed_target_is_random_plus_a_fraction_of_the_best_model_free(results):
    needed = tables.samples_needed(results, fraction=0.9).set_index(["task", "algo"])
    # random -10, best model-free: ppo with mean 100 (trpo 50), so 90% of the way: 89.
    row = needed.loc[("halfcheetah", "mbmpo")]
    assert row["target"] == "random -10.0 + 90% of the way to ppo's 100.0 = 89.0"
    # mbmpo's seeds cross 89 at: 50k + 89/100*50k = 94.5k; 50k + 39/150*50k; 50k (already 100).
    crossings = [94_500.0, 50_000 + 39 / 150 * 50_000, 50_000.0]
    assert row["runs_reaching"] == "3/3"
    assert row["median_steps"] == pytest.approx(np.median(crossings))
    ppo = needed.loc[("halfcheetah", "ppo")]
    # ppo seed 0 ends at 90 >= 89: crosses at 50k + 89/90*50k; seed 1 at 50k + 89/110*50k.
    assert ppo["runs_reaching"] == "2/2"
    assert ppo["median_steps"] == pytest.approx(
        np.median([50_000 + 89 / 90 * 50_000, 50_000 + 89 / 110 * 50_000])
    )
    assert needed.loc[("halfcheetah", "trpo"), "runs_reaching"] == "0/1"
    assert math.isnan(needed.loc[("halfcheetah", "trpo"), "median_steps"])
    assert ("hopper", "mbmpo") not in needed.index  # no model-free result there: no target


def test_normalized_scores_random_zero_best_model_free_one(results):
    low, high = S.normalization_bounds(results, ["halfcheetah"])
    assert low == {"halfcheetah": -10.0} and high == {"halfcheetah": 100.0}
    scores = S.score_arrays(results, "mbmpo", ["halfcheetah"])
    normalized = S.normalize(scores, low, high)["halfcheetah"]
    np.testing.assert_allclose(normalized, [110 / 110, 210 / 110, 310 / 110])
    # At 50k steps (an evaluation point): 0, 50 and 100.
    at = S.score_arrays(results, "mbmpo", ["halfcheetah"], at=50_000)["halfcheetah"]
    np.testing.assert_allclose(np.sort(at), [0.0, 50.0, 100.0])
    # At 75k: halfway between the two points of each seed.
    mid = S.score_arrays(results, "mbmpo", ["halfcheetah"], at=75_000)["halfcheetah"]
    np.testing.assert_allclose(np.sort(mid), [50.0, 125.0, 200.0])


def test_iqm_and_probability_of_improvement_by_hand():
    assert S.iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    # 10 values: the middle 50% keeps 5 whole values... scipy trims 25% each side: 3..8.
    assert S.iqm(np.arange(1.0, 11.0)) == pytest.approx(np.mean([3, 4, 5, 6, 7, 8]))
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0])
    # pairs: 1 loses twice; 2 ties twice (2 x 0.5); 3 wins twice -> (1 + 2) / 6
    assert S.probability_of_improvement(x, y) == pytest.approx(0.5)
    assert S.probability_of_improvement(np.array([5.0]), np.array([1.0, 2.0])) == 1.0


def iqm_interval_coverage(runs: int, draws: int = 1000) -> int:
    """In how many of ``draws`` synthetic experiments (3 tasks x ``runs`` normalized scores
    from known normals) the stratified bootstrap 95% interval covers the population IQM."""
    rng = np.random.default_rng(2024)
    means, sds = np.array([0.2, 0.5, 0.9]), np.array([0.1, 0.2, 0.15])
    population = np.concatenate(
        [rng.normal(m, s, 1_000_000) for m, s in zip(means, sds, strict=True)]
    )
    truth = S.iqm(population)
    covered = 0
    for draw in range(draws):
        data = {
            f"t{k}": rng.normal(m, s, runs) for k, (m, s) in enumerate(zip(means, sds, strict=True))
        }
        _, (low, high) = S.aggregate_with_ci(data, S.iqm, reps=1000, seed=draw)
        covered += low <= truth <= high
    return covered


def test_stratified_bootstrap_interval_of_the_iqm_covers_the_truth_95_percent():
    """With 30 runs per task the nominal 95% interval covers the truth in 93-97% of 1000
    synthetic experiments (measured: 936)."""
    assert 930 <= iqm_interval_coverage(runs=30) <= 970


def test_with_few_seeds_the_percentile_interval_covers_less_than_it_says():
    """The percentile bootstrap is known to undercover with few runs: measured 859 of 1000
    with 5 runs per task, 893 with 10 (README, Statistics). This pins that behaviour, so a
    change of the interval method shows up here."""
    assert 820 <= iqm_interval_coverage(runs=5) <= 900


def test_learning_curve_figure_draws_the_tables_numbers(results, tmp_path, monkeypatch):
    drawn = {}

    def keep(fig, stem):
        drawn["fig"] = fig
        return [stem]

    monkeypatch.setattr(plots, "save", keep)
    plots.learning_curves(results, "e", tmp_path / "fig", log_x=False)
    axes = {ax.get_title().split(" ")[0]: ax for ax in drawn["fig"].axes}
    cheetah = axes["halfcheetah"]
    (legend,) = drawn["fig"].legends  # one legend for the figure, beside its panels
    labels = [t.get_text() for t in legend.get_texts()]
    lines = {}
    for line in cheetah.get_lines():
        if len(line.get_xdata()) > 1 and line.get_label() not in lines:
            lines[line.get_label()] = line
    done = results[results["status"] == "done"]
    for algo in ("mbmpo", "ppo", "trpo", "random"):
        assert algo in labels
        expected = done[(done["task"] == "halfcheetah") & (done["algo"] == algo)]
        expected = expected.groupby("env_steps")["return_mean"].mean()
        matching = [
            line
            for line in cheetah.get_lines()
            if len(line.get_xdata()) == len(expected)
            and np.allclose(line.get_xdata(), expected.index)
            and np.allclose(line.get_ydata(), expected.to_numpy())
        ]
        assert matching, f"no line of {algo} draws its mean curve {expected.to_dict()}"


def test_the_paper_metric_figure_draws_paper_return(results, tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, stem: drawn.setdefault("fig", fig) and [stem])
    table = results.assign(paper_return=results["return_mean"] - 1000.0)
    plots.learning_curves(table, "e", tmp_path / "fig", log_x=False, metric="paper_return")
    cheetah = next(ax for ax in drawn["fig"].axes if ax.get_title().startswith("halfcheetah"))
    assert cheetah.get_ylabel() == plots.METRICS["paper_return"]
    done = table[(table["status"] == "done") & (table["task"] == "halfcheetah")]
    expected = done[done["algo"] == "mbmpo"].groupby("env_steps")["paper_return"].mean()
    assert any(
        np.allclose(line.get_ydata(), expected.to_numpy())
        for line in cheetah.get_lines()
        if len(line.get_ydata()) == len(expected)
    )
    with pytest.raises(ValueError, match="no run logged 'paper_return'"):
        plots.learning_curves(results, "e", tmp_path / "fig", metric="paper_return")
    with pytest.raises(ValueError, match="unknown metric"):
        plots.learning_curves(table, "e", tmp_path / "fig", metric="return_max")


def test_published_points_are_those_of_the_same_setting(results, tmp_path, monkeypatch):
    points = tables.published_points(results, "e")
    cheetah = points[(points["task"] == "halfcheetah") & (points["algo"] == "mbmpo")]
    # horizon 200: the official code rerun (550) and RLlib (520) at 100k steps
    assert sorted(cheetah["return_mean"]) == [520.0, 550.0]
    assert set(cheetah["timesteps"]) == {100_000}
    hopper = points[points["task"] == "hopper"]
    assert set(hopper["timesteps"]) == {200_000, 1_000_000}  # horizon 1000: MBBL, not the 100k
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, stem: drawn.setdefault("fig", fig) and [stem])
    plots.learning_curves(results, "e", tmp_path / "fig", log_x=False, published=points)
    ax = next(a for a in drawn["fig"].axes if a.get_title().startswith("halfcheetah"))
    stars = [line for line in ax.get_lines() if line.get_marker() in plots.PUBLISHED_MARKERS]
    assert sorted(float(line.get_ydata()[0]) for line in stars) == [520.0, 550.0]


def test_published_curves_are_drawn_as_reference_lines_of_the_same_setting(
    results, tmp_path, monkeypatch
):
    """RLlib's logged MB-MPO HalfCheetah curve (horizon 200) belongs in the halfcheetah panel;
    none in the hopper panel (horizon 1000 there); the line is drawn where the runs are."""
    curves = tables.published_curve_points(results, "e")
    cheetah = curves[(curves["task"] == "halfcheetah") & (curves["algo"] == "mbmpo")]
    assert set(cheetah["source"]) == {"rllib_rl_experiments_mbmpo_progress"}
    at = cheetah.set_index("timesteps")["return_mean"]
    assert (at[8000], at[48000], at[100_000]) == (-86.88, 341.41, 516.91)
    assert list(cheetah["timesteps"]) == sorted(cheetah["timesteps"])
    assert curves[curves["task"] == "hopper"].empty
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, stem: drawn.setdefault("fig", fig) and [stem])
    plots.learning_curves(results, "e", tmp_path / "fig", log_x=False, published_curves=curves)
    ax = next(a for a in drawn["fig"].axes if a.get_title().startswith("halfcheetah"))
    (line,) = [line for line in ax.get_lines() if "published curve" in line.get_label()]
    assert line.get_linestyle() == "--"
    assert max(line.get_xdata()) <= 125_000  # the runs end at 100k: the line stops near them
    np.testing.assert_allclose(line.get_ydata()[:3], [-86.88, -18.13, 68.04])


def test_tables_label_each_rows_model_fit_and_carry_the_profile_note(tmp_path):
    """A variant fit (the patience rule, a 10-epoch cap) is named in the rows of its runs,
    read from each run's recorded settings; model-free rows have none; the profile's note
    heads both tables; an aggregated runs.csv read back gives the same labels."""
    from benchmark.analysis.aggregate import model_fit_label
    from benchmark.cli import main

    root = tmp_path / "runs"
    fits = {
        "mbmpo_official": {"model_max_epochs": 500, "model_early_stopping": "official"},
        "mbmpo_patience": {
            "model_max_epochs": 500,
            "model_early_stopping": "patience",
            "model_patience": 5,
            "model_min_improvement": 0.01,
        },
        "mbmpo_epochs10": {"model_max_epochs": 10, "model_early_stopping": "official"},
        "ppo": {"n_steps": 2048},
    }
    for label, settings in fits.items():
        algorithm = "ppo" if label == "ppo" else "mbmpo"
        for seed in range(2):
            write_run(root, "e", "halfcheetah", label, seed, [(1000, 0.0), (2000, 5.0 + seed)])
            run = RunDir(layout.run_dir(root, "e", "halfcheetah", label, seed))
            config = {"algo": algorithm, "task": "halfcheetah", "seed": seed, "steps": 2000}
            run.write_config({**config, "algorithm": settings})
    expected = {
        "mbmpo_official": "official, <=500 epochs",
        "mbmpo_patience": "patience 5 / 1%, <=500 epochs",
        "mbmpo_epochs10": "official, <=10 epochs",
        "ppo": "",
    }
    assert {label: model_fit_label(s) for label, s in fits.items()} == expected
    assert model_fit_label({"model_max_epochs": 100}) == "<=100 epochs"  # GrBAL: no rule key
    capped = {
        "model_max_epochs": 500,
        "model_early_stopping": "official",
        "model_max_updates": 2000,
    }
    assert model_fit_label(capped) == "official, <=500 epochs, <=2000 updates"
    table = aggregate(root, warn=False)
    csv_path = tmp_path / "runs.csv"
    table.to_csv(csv_path, index=False)
    for source in (table, pd.read_csv(csv_path)):
        final = tables.final_returns(source).set_index("algo")
        assert final["model_fit"].to_dict() == expected
    out = tmp_path / "tables"
    note = "Claims profile: the patience fit rule (a labelled variant)."
    assert main(["tables", str(csv_path), "--out", str(out), "--note", note]) == 0
    for name in ("final_returns.md", "samples_needed.md"):
        text = (out / name).read_text()
        assert text.startswith(note) and "| model_fit |" in text
    assert "| mbmpo_patience | patience 5 / 1%, <=500 epochs |" in (
        out / "samples_needed.md"
    ).read_text().replace("| e | halfcheetah ", "")


@pytest.fixture
def two_task_results(tmp_path) -> pd.DataFrame:
    """Experiment 'agg' on halfcheetah and hopper, final returns (1000 steps):
    random 0 and ppo 100 on both tasks (the normalization: 0 and 1);
    steady: 50, 50, 50 on both (normalized 0.5 each);
    spread: 0, 100, 200 on halfcheetah and 100, 100, 100 on hopper (0, 1, 2 and 1, 1, 1)."""
    root = tmp_path / "runs"
    finals = {
        "random": {"halfcheetah": [0, 0], "hopper": [0, 0]},
        "ppo": {"halfcheetah": [100, 100], "hopper": [100, 100]},
        "steady": {"halfcheetah": [50, 50, 50], "hopper": [50, 50, 50]},
        "spread": {"halfcheetah": [0, 100, 200], "hopper": [100, 100, 100]},
    }
    for algo, per_task in finals.items():
        for task, values in per_task.items():
            for seed, value in enumerate(values):
                write_run(root, "agg", task, algo, seed, [(500, 0.0), (1000, float(value))])
    table = aggregate(root, warn=False)
    # 'steady' and 'spread' are labels of MB-MPO runs; random and ppo are what they are.
    table["algorithm"] = table["algo"].replace({"steady": "mbmpo", "spread": "mbmpo"})
    return table


def test_aggregate_scores_and_performance_profiles_by_hand(two_task_results):
    scores = S.aggregate_scores(two_task_results, ["spread", "steady"], ["halfcheetah", "hopper"])
    assert scores.normalization.startswith("0 = random policy, 1 = best model-free")
    np.testing.assert_allclose(scores.normalized["spread"]["halfcheetah"], [0, 1, 2])
    iqm, (low, high) = S.aggregate_with_ci(scores.normalized["steady"], S.iqm)
    assert (iqm, low, high) == (0.5, 0.5, 0.5)  # every run at 0.5: no spread at all
    # spread: [0, 1, 2, 1, 1, 1]: IQM trims one run at each end -> 1; mean 1
    assert S.aggregate_with_ci(scores.normalized["spread"], S.iqm)[0] == pytest.approx(1.0)
    assert S.aggregate_with_ci(scores.normalized["spread"], np.mean)[0] == pytest.approx(1.0)
    taus = np.array([0.4, 0.6, 1.5])
    point, low, high = S.performance_profile(scores.normalized["steady"], taus)
    np.testing.assert_allclose(point, [1.0, 0.0, 0.0])
    point, low, high = S.performance_profile(scores.normalized["spread"], taus)
    # halfcheetah: 2/3, 2/3, 1/3 of runs above; hopper: 1, 1, 0; the mean over tasks
    np.testing.assert_allclose(point, [5 / 6, 5 / 6, 1 / 6])
    assert (low <= point).all() and (point <= high).all() and (high - low).max() > 0
    # Without random runs: 0 and 1 are the worst and best algorithm's mean per task.
    no_random = two_task_results[two_task_results["algo"] != "random"]
    relative = S.aggregate_scores(no_random, ["spread", "steady"], ["halfcheetah", "hopper"])
    assert relative.normalization.startswith("0 = worst, 1 = best algorithm")
    np.testing.assert_allclose(relative.normalized["steady"]["hopper"], [0, 0, 0])
    np.testing.assert_allclose(relative.normalized["spread"]["halfcheetah"], [-1, 1, 3])


def test_aggregate_figure_draws_the_intervals_and_profiles(two_task_results, tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(plots, "save", lambda fig, stem: drawn.setdefault("fig", fig) and [stem])
    plots.aggregate_figure(two_task_results, "agg", tmp_path / "agg")
    iqm_ax, mean_ax, profile_ax = drawn["fig"].axes
    labels = [t.get_text() for t in iqm_ax.get_yticklabels()]
    assert labels == ["ppo", "random", "spread", "steady"]
    # the point estimate of 'steady' (row 3) is the black line at 0.5
    steady_lines = [line for line in iqm_ax.get_lines() if min(line.get_ydata()) > 2.5]
    assert [float(line.get_xdata()[0]) for line in steady_lines] == [0.5]
    assert {line.get_label() for line in profile_ax.get_lines()} >= {"spread", "steady"}
    assert "fraction of runs" in profile_ax.get_ylabel()
    with pytest.raises(ValueError, match="2\\+ tasks"):
        one_task = two_task_results[two_task_results["task"] == "hopper"]
        plots.aggregate_figure(one_task, "agg", tmp_path / "one")


def test_compare_across_shipped_experiments_by_qualified_label(tmp_path, capsys):
    """A folder of several runs roots (as results/reference/ is) names runs by their own
    root's layout, a label two experiments ran is refused bare, and EXPERIMENT/LABEL compares
    one experiment's runs of it with the other's: here 'long' runs end 100 higher."""
    from benchmark.cli import main

    shipped = tmp_path / "reference"
    for experiment, level in (("short", 100.0), ("long", 200.0)):
        root = shipped / experiment / "runs"
        for seed in range(3):
            curve = [(1000, level + 10.0 * seed), (2000, level + 10.0 * seed)]
            write_run(root, experiment, "halfcheetah", "mbmpo_official", seed, curve)
    table = aggregate(shipped, warn=False)
    assert set(table["experiment"]) == {"short", "long"}
    assert set(table["algo"]) == {"mbmpo_official"}
    with pytest.raises(ValueError, match=r"2 experiments \(long, short\).*EXPERIMENT/LABEL"):
        select_labels(table, ["mbmpo_official", "long/mbmpo_official"])
    with pytest.raises(ValueError, match="experiments with runs of 'mbmpo_official': long, short"):
        select_labels(table, ["other/mbmpo_official"])
    args = ["compare", str(shipped), "--algos", "long/mbmpo_official", "short/mbmpo_official"]
    assert main([*args, "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["records"]
    assert record["diff"] == pytest.approx(100.0) and record["n_a"] == record["n_b"] == 3
    assert main(["compare", str(shipped), "--algos", "mbmpo_official", "x"]) == 2
    assert "names runs of 2 experiments" in capsys.readouterr().err
