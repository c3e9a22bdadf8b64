"""The claim verdicts on synthetic runs with a known answer: supported, contradicted and
inconclusive (with its reason) for each claim."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis import claims


def table_of(runs: list[tuple[str, str, str, int, list[tuple[int, float]]]]) -> pd.DataFrame:
    """An aggregated runs table: one row per evaluation point of each (experiment, task,
    label, seed, curve)."""
    rows = []
    for experiment, task, label, seed, curve in runs:
        run_dir = f"runs/{experiment}/{task}/{label}/seed{seed}"
        for steps, value in curve:
            rows.append(
                {
                    "experiment": experiment,
                    "task": task,
                    "algo": label,
                    "algorithm": label.split("_")[0],
                    "seed": seed,
                    "status": "done",
                    "run_dir": run_dir,
                    "env_steps": steps,
                    "return_mean": value,
                }
            )
    return pd.DataFrame(rows)


def finals(experiment, task, label, values, steps=10_000):
    """Runs of ``label`` whose curves go from 0 to each of ``values`` at ``steps``."""
    return [
        (experiment, task, label, seed, [(steps // 2, 0.0), (steps, v)])
        for seed, v in enumerate(values)
    ]


def verdicts(rows):
    return {(r.task, r.statistic.split(": ")[-1]): r.verdict for r in rows}


def test_c2_supported_contradicted_and_inconclusive():
    table = table_of(
        finals("fig1", "a", "mbmpo", [100, 110, 120])
        + finals("fig1", "a", "metrpo", [10, 20, 30])
        + finals("fig1", "a", "mbmpc", [0, 5, 10])
        + finals("fig1", "b", "mbmpo", [0, 5, 10])
        + finals("fig1", "b", "metrpo", [100, 110, 120])
        + finals("fig1", "c", "mbmpo", [10, 50, 90])
        + finals("fig1", "c", "mbmpc", [20, 60, 80])
        + finals("fig1", "d", "mbmpo", [100, 110])
        + finals("fig1", "d", "mbmpc", [0, 5])
    )
    rows = claims.c2_beats_model_based_baselines(table, "fig1")
    found = verdicts(rows)
    assert found[("a", "MB-MPO - ME-TRPO")] == "supported"
    assert found[("a", "MB-MPO - MB-MPC")] == "supported"
    assert found[("b", "MB-MPO - ME-TRPO")] == "contradicted"
    assert found[("c", "MB-MPO - MB-MPC")] == "inconclusive"
    assert found[("d", "MB-MPO - MB-MPC")] == "inconclusive"
    # across tasks a and b (3 runs each): P(MB-MPO > ME-TRPO) is 1 on a and 0 on b
    across = next(r for r in rows if r.task == "all (2 tasks)")
    assert across.statistic == "P(MB-MPO > ME-TRPO)" and across.estimate == pytest.approx(0.5)
    assert across.verdict == "inconclusive"
    by_task = {r.task: r for r in rows if r.statistic.endswith("MB-MPC")}
    assert "contains 0" in by_task["c"].reason
    assert "too few seeds (2 vs 2)" in by_task["d"].reason
    supported = next(r for r in rows if r.task == "a" and r.statistic.endswith("ME-TRPO"))
    assert supported.estimate == pytest.approx(90.0) and supported.ci_low > 0


def test_c3_compares_the_drops_of_both_methods():
    robust = (
        finals("fig3", "t", "mbmpo_bias0", [100, 102, 98])
        + finals("fig3", "t", "mbmpo_bias1.0", [95, 97, 93])
        + finals("fig3", "t", "metrpo_bias0", [100, 101, 99])
    )
    table = table_of(robust + finals("fig3", "t", "metrpo_bias1.0", [20, 25, 15]))
    (row,) = claims.c3_robust_to_model_bias(table, "fig3")
    assert row.verdict == "supported" and row.estimate == pytest.approx(80.0 - 5.0)
    table = table_of(robust + finals("fig3", "t", "metrpo_bias1.0", [100, 101, 99]))
    (row,) = claims.c3_robust_to_model_bias(table, "fig3")
    assert row.verdict == "contradicted"  # ME-TRPO lost nothing, MB-MPO lost 5


def test_c4_instability_alone_supports_the_claim():
    stable = [
        ("fig4", "t", "mbmpo_alpha0.001", s, [(1, 10.0), (2, 20.0), (3, 30.0)]) for s in range(3)
    ]
    unstable = [
        ("fig4", "t", "no_adaptation_alpha0", s, [(1, 10.0), (2, 40.0 - s), (3, 30.0)])
        for s in range(3)
    ]
    rows = claims.c4_adaptation_matters(table_of(stable + unstable), "fig4")
    final, drops = rows
    assert final.verdict == "inconclusive"  # equal final returns
    assert drops.verdict == "supported" and "C4 on t: supported" in drops.reason


def test_c5_spearman_over_the_grid():
    rng = np.random.default_rng(0)
    std = rng.uniform(0, 1, size=(20, 20))
    supported = claims.c5_plasticity_follows_uncertainty(
        std, std**2 + 0.01 * rng.random(std.shape), "fig2"
    )
    assert supported.verdict == "supported" and supported.estimate > 0.9
    assert claims.c5_plasticity_follows_uncertainty(std, -std, "fig2").verdict == "contradicted"
    noise = claims.c5_plasticity_follows_uncertainty(std[:3, :3], rng.random((3, 3)), "fig2")
    assert noise.verdict == "inconclusive"


def test_g1_adaptive_against_non_adaptive():
    table = table_of(
        finals("adaptation", "cripple", "grbal", [50, 55, 60])
        + finals("adaptation", "cripple", "rebal", [0, 10, 20])
        + finals("adaptation", "cripple", "mbmpc", [5, 10, 15])
    )
    found = verdicts(claims.g1_adaptive_beats_non_adaptive(table, "adaptation"))
    assert found[("cripple", "GrBAL - MB-MPC")] == "supported"
    assert found[("cripple", "ReBAL - MB-MPC")] == "inconclusive"


def curve_reaching(level_step: int, end: int, value: float = 100.0):
    """A curve at 0 until ``level_step``, then at ``value`` until ``end``."""
    return [(level_step // 2, 0.0), (level_step, value), (end, value)]


def climbing(end: int, evaluations: int = 20, slope: float = 1.0, top: float = 100.0):
    """A curve evaluated ``evaluations`` times up to ``end``: linear to ``top`` at 40% of the
    steps, then rising by ``slope`` x ``top`` more over the remaining 60%."""
    points = np.linspace(end / evaluations, end, evaluations)
    return [
        (
            int(x),
            top * min(x / (0.4 * end), 1.0) + slope * top * max(x - 0.4 * end, 0) / (0.6 * end),
        )
        for x in points
    ]


def test_c1_needs_the_official_model_free_budget_or_a_plateau():
    ours = [("fig1", "t", "mbmpo", s, curve_reaching(100_000 + s, 400_000)) for s in range(3)]

    def trpo(curve_of_seed):
        return [("fig1", "t", "trpo", s, curve_of_seed(s)) for s in range(3)]

    def c1(mf_runs):
        (row,) = claims.c1_sample_efficiency(table_of(ours + mf_runs), "fig1")
        return row

    row = c1(trpo(lambda s: climbing(10_000_000, slope=0.5)))  # 20% of TRPO's 5e7
    assert row.verdict == "inconclusive" and row.reason.startswith("budget")
    assert "still climbing" in row.reason
    row = c1(trpo(lambda s: curve_reaching(500_000, 10_000_000)))
    assert row.verdict == "inconclusive" and "too few evaluations" in row.reason
    row = c1(trpo(lambda s: climbing(2_000_000, slope=0.005)))  # flat, but 4% of the budget
    assert row.verdict == "inconclusive" and "too short" in row.reason
    # A fifth of the budget and flat over its second half (0.5% of the way from random): an
    # asymptote, and the row says where it came from. TRPO reaches 90% of it at 3.6M steps,
    # first evaluated at 4M: 40x MB-MPO's 100k.
    flat = trpo(lambda s: climbing(10_000_000, slope=0.005))
    frames = [pd.DataFrame(run[4], columns=["env_steps", "return_mean"]) for run in flat]
    assert claims.late_gain(frames, 0.0) <= claims.PLATEAU_GAIN
    row = c1(flat)
    assert "plateau at 10,000,000 steps" in row.statistic
    assert row.verdict == "supported" and row.estimate == pytest.approx(40.0, rel=1e-3)
    slow = [("fig1", "t", "trpo", s, curve_reaching(5_000_000 + s, 50_000_000)) for s in range(3)]
    (row,) = claims.c1_sample_efficiency(table_of(ours + slow), "fig1")
    assert row.verdict == "supported" and row.estimate == pytest.approx(50.0, rel=1e-3)
    fast = [("fig1", "t", "trpo", s, curve_reaching(300_000 + s, 50_000_000)) for s in range(3)]
    (row,) = claims.c1_sample_efficiency(table_of(ours + fast), "fig1")
    assert row.verdict == "contradicted"  # 3x, not 10x
    never = [("fig1", "t", "mbmpo", s, [(200_000, 0.0), (400_000, 10.0)]) for s in range(3)]
    (row,) = claims.c1_sample_efficiency(table_of(never + slow), "fig1")
    assert row.verdict == "inconclusive" and "never reached" in row.reason


def test_missing_runs_are_inconclusive_and_the_summary_needs_no_contradiction():
    # MB-MPO and MB-MPC runs outside Fig. 1's experiments are not C2's evidence
    stray = finals("x", "t", "mbmpo", [100, 110, 120]) + finals("x", "t", "mbmpc", [0, 5, 10])
    rows = claims.evaluate_claims(table_of(stray))
    assert [r.claim for r in rows] == list(claims.CLAIMS)  # one row each: nothing to judge
    assert all(r.verdict == "inconclusive" and r.reason.startswith("no runs") for r in rows)
    rows = [
        claims.Verdict("C2", "a", "", 1, 0, 2, "3 vs 3", "", verdict, "", "fig1")
        for verdict in ("supported", "supported", "inconclusive")
    ]
    assert claims.summarize(rows) == {"C2": "supported"}
    rows[2].verdict = "contradicted"
    assert claims.summarize(rows) == {"C2": "inconclusive"}
    frame = claims.to_frame(rows)
    assert list(frame.columns)[:3] == ["claim", "task", "statistic"] and len(frame) == 3


def test_claims_command_writes_the_verdict_table_first(tmp_path, capsys):
    from benchmark.analysis.aggregate import aggregate  # noqa: F401 - the CLI's loader
    from benchmark.cli import main

    table = table_of(
        finals("fig1", "a", "mbmpo", [100, 110, 120]) + finals("fig1", "a", "mbmpc", [0, 5, 10])
    )
    runs_csv = tmp_path / "runs.csv"
    table.to_csv(runs_csv, index=False)
    assert (
        main(
            [
                "claims",
                str(runs_csv),
                "--out",
                str(tmp_path / "out"),
                "--figure",
                "fig1=figures/fig1.png",
            ]
        )
        == 0
    )
    assert "C2: supported" in capsys.readouterr().out
    report = (tmp_path / "out" / "claims.md").read_text()
    first_table = report.split("| claim | statement | verdict | evidence |")[1]
    assert "| C2 |" in first_table.split("\n\n")[0] and "**supported**" in report
    assert "[fig1](figures/fig1.png)" in report
    frame = pd.read_csv(tmp_path / "out" / "claims.csv")
    assert set(frame["claim"]) == set(claims.CLAIMS)


def test_published_numbers_sit_beside_the_verdicts_with_their_setting():
    table = table_of(
        finals("fig1", "halfcheetah", "mbmpo", [100, 110, 120])
        + finals("fig1", "halfcheetah", "metrpo", [10, 20, 30])
    ).assign(horizon=200)
    rows = claims.evaluate_claims(table)
    published = claims.published_beside(table, rows)
    mbmpo = published[(published["claim"] == "C2") & (published["algorithm"] == "MB-MPO")]
    same = mbmpo[mbmpo["setting"] == "same"]
    assert set(same["return"]) == {550.0} and set(same["steps"]) == {100_000}
    other = mbmpo[mbmpo["setting"] != "same"]
    assert len(other) and all("horizon 1000" in s for s in other["setting"])  # MBBL's tables
    text = claims.report(rows, published=published)
    assert "## Published numbers for these tasks" in text and "| 550.0 | 100,000 | same |" in text


def test_g1_across_tasks_is_the_stratified_probability_of_improvement():
    table = table_of(
        finals("adaptation", "one", "grbal", [50, 55, 60])
        + finals("adaptation", "one", "mbmpc", [5, 10, 15])
        + finals("adaptation", "two", "grbal", [20, 25, 30])
        + finals("adaptation", "two", "mbmpc", [0, 21, 3])
    )
    rows = claims.g1_adaptive_beats_non_adaptive(table, "adaptation")
    across = next(r for r in rows if r.task.startswith("all"))
    # task one: 9/9 pairs; task two: 8/9 (21 > 20)
    assert across.estimate == pytest.approx((1 + 8 / 9) / 2)
    assert across.verdict == "supported" and across.ci_low > 0.5
