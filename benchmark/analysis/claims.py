"""The paper's claims, checked: a verdict with a 95% bootstrap interval for each.

Every verdict is computed from score arrays (one number per run, as in :mod:`stats`) of the
aggregated runs table; runs are found by their labels (the run directory names of the paper
and quick profiles). A verdict is *supported* when the interval lies on the claimed side of the
decision threshold, *contradicted* when it lies on the other side, and *inconclusive* otherwise,
with the reason and what would decide it. Scores are the deterministic evaluation return
(``return_mean``), the protocol every algorithm shares.

The claims (MB-MPO, Clavera, Rothfuss et al. 2018; GrBAL/ReBAL, Nagabandi, Clavera et al. 2019):

- C1 sample efficiency: MB-MPO reaches the model-free methods' asymptotic return with 10-100x
  fewer real steps (Fig. 1).
- C2 MB-MPO beats the model-based baselines ME-TRPO and MB-MPC (Fig. 1).
- C3 with biased, noisy models MB-MPO degrades less than ME-TRPO (Fig. 3).
- C4 at horizon 1000, no adaptation (alpha = 0) learns worse or less stably (Fig. 4).
- C5 the policy's plasticity follows model uncertainty (Fig. 2).
- G1 GrBAL/ReBAL beat non-adaptive methods when the dynamics change at test time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.analysis.stats import (
    BOOTSTRAP_SEED,
    bootstrap_ci,
    probability_of_improvement,
    return_at,
)

MIN_SEEDS = 3
"""Fewer runs per group than this give 'inconclusive: too few seeds'."""

C1_FACTOR = 10.0
"""C1 holds when model-free methods need at least this many times MB-MPO's steps."""

C1_FRACTION = 0.9
"""C1's level: this fraction of the way from the random policy to the model-free asymptote."""

OFFICIAL_MODEL_FREE_BUDGET = {"trpo": 50_000_000, "ppo": 100_000_000, "ddpg": 10_000_000}
"""The official scripts' budgets (docs/fidelity.md): a model-free run that ended sooner gives
C1 an asymptote only on a plateau (:data:`PLATEAU_GAIN`)."""

PLATEAU_GAIN = 0.05
"""A model-free curve short of its official budget is on a plateau when its mean return over
the last tenth of its steps exceeds that over the tenth ending half way by at most this
fraction of the way from random (:func:`late_gain`)."""

PLATEAU_MIN_BUDGET = 0.1
"""...and when it ran at least this fraction of the official budget: a short run that has not
started to learn is flat too, and is no asymptote."""

VERDICTS = ("supported", "contradicted", "inconclusive")


@dataclass
class Verdict:
    """One row of results/claims.csv."""

    claim: str
    task: str
    statistic: str
    estimate: float
    ci_low: float
    ci_high: float
    n: str
    rule: str
    verdict: str
    reason: str
    figure: str


def _curves(table: pd.DataFrame, experiment: str, task: str, label: str) -> list[pd.DataFrame]:
    """The evaluation curve of each finished run of ``label``."""
    runs = table[
        (table["experiment"] == experiment)
        & (table["task"] == task)
        & (table["algo"] == label)
        & (table["status"] == "done")
    ]
    return [curve for _, curve in runs.groupby("run_dir")]


def _finals(table: pd.DataFrame, experiment: str, task: str, label: str) -> np.ndarray:
    """Final evaluation return of each finished run of ``label``."""
    values = [return_at(curve, None) for curve in _curves(table, experiment, task, label)]
    return np.array([v for v in values if np.isfinite(v)])


def inconclusive(
    claim: str, task: str, statistic: str, n: str, rule: str, reason: str, figure: str
) -> Verdict:
    """A verdict with no estimate: the runs cannot decide, for ``reason``."""
    nan = math.nan
    return Verdict(claim, task, statistic, nan, nan, nan, n, rule, "inconclusive", reason, figure)


def _decide(low: float, high: float, threshold: float) -> tuple[str, str]:
    """The verdict of a 95% interval against the claim's threshold, and its reason."""
    if low > threshold:
        return "supported", ""
    if high < threshold:
        return "contradicted", ""
    return "inconclusive", f"the 95% interval [{low:.3g}, {high:.3g}] contains {threshold:g}"


def _seeds_needed(n: int, half_width: float, effect: float) -> int | None:
    """Runs per group at which an interval of this half-width would exclude 0, if the effect
    stayed (half-width ~ 1/sqrt(n)); None without an effect."""
    if effect == 0 or not np.isfinite(effect):
        return None
    return max(n + 1, math.ceil(n * (half_width / abs(effect)) ** 2))


def interval_verdict(
    claim: str,
    task: str,
    statistic: str,
    groups: list[np.ndarray],
    estimator: Callable[..., float],
    rule: str,
    figure: str,
    threshold: float = 0.0,
) -> Verdict:
    """Supported if the bootstrap interval of ``estimator(*groups)`` lies above ``threshold``,
    contradicted if below, else inconclusive (each group resampled on its own)."""
    sizes = " vs ".join(str(len(g)) for g in groups)
    if min(len(g) for g in groups) < MIN_SEEDS:
        return inconclusive(
            claim,
            task,
            statistic,
            sizes,
            rule,
            f"too few seeds ({sizes}); needs at least {MIN_SEEDS} finished runs per group",
            figure,
        )
    estimate = float(estimator(*groups))
    low, high = bootstrap_ci(estimator, groups, seed=BOOTSTRAP_SEED)
    verdict, reason = _decide(low, high, threshold)
    if verdict == "inconclusive":
        needed = _seeds_needed(min(len(g) for g in groups), (high - low) / 2, estimate - threshold)
        if needed:
            reason += f"; about {needed} runs per group would decide if the effect held"
    return Verdict(
        claim, task, statistic, estimate, low, high, sizes, rule, verdict, reason, figure
    )


def _difference(x: np.ndarray, y: np.ndarray) -> float:
    return float(x.mean() - y.mean())


def aggregate_improvement(
    claim: str,
    comparison: str,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    figure: str,
    reps: int = 2000,
) -> Verdict:
    """Across tasks: the mean over tasks of the probability of improvement P(A > B) (as
    ``mbbench compare`` and rliable aggregate it), with a stratified bootstrap interval (runs
    resampled within each task). Supported if the interval lies above 0.5."""
    rule = "supported if the 95% CI of the mean probability of improvement lies above 0.5"

    def mean_improvement(*groups: np.ndarray) -> float:
        # groups: a1, b1, a2, b2, ... (each resampled on its own: stratified by task)
        firsts, seconds = groups[0::2], groups[1::2]
        return float(
            np.mean(
                [probability_of_improvement(a, b) for a, b in zip(firsts, seconds, strict=True)]
            )
        )

    groups = [group for pair in pairs for group in pair]
    estimate = mean_improvement(*groups)
    low, high = bootstrap_ci(mean_improvement, groups, reps=reps, seed=BOOTSTRAP_SEED)
    verdict, reason = _decide(low, high, 0.5)
    return Verdict(
        claim,
        f"all ({len(pairs)} tasks)",
        f"P({comparison.replace(' - ', ' > ')})",
        estimate,
        low,
        high,
        " + ".join(f"{len(a)} vs {len(b)}" for a, b in pairs),
        rule,
        verdict,
        reason,
        figure,
    )


def pairwise_claim(
    claim: str,
    table: pd.DataFrame,
    experiment: str,
    comparisons: list[tuple[str, str, str, str]],
) -> list[Verdict]:
    """Per task, the difference of final returns of each (label A, name A, label B, name B);
    and, for a comparison with enough runs on two tasks or more, the aggregate probability of
    improvement across them (:func:`aggregate_improvement`)."""
    rule = "supported if the 95% CI of the difference of final returns lies above 0"
    rows = []
    for ours_label, ours_name, their_label, their_name in comparisons:
        comparison = f"{ours_name} - {their_name}"
        pairs = []
        for task in sorted(table.loc[table["experiment"] == experiment, "task"].unique()):
            ours = _finals(table, experiment, task, ours_label)
            theirs = _finals(table, experiment, task, their_label)
            if len(ours) == 0 or len(theirs) == 0:
                continue
            rows.append(
                interval_verdict(
                    claim,
                    task,
                    f"final return: {comparison}",
                    [ours, theirs],
                    _difference,
                    rule,
                    experiment,
                )
            )
            if min(len(ours), len(theirs)) >= MIN_SEEDS:
                pairs.append((ours, theirs))
        if len(pairs) >= 2:
            rows.append(aggregate_improvement(claim, comparison, pairs, experiment))
    return rows


def c2_beats_model_based_baselines(table: pd.DataFrame, experiment: str) -> list[Verdict]:
    """C2: final return of MB-MPO minus ME-TRPO's and minus MB-MPC's, per task and across
    tasks."""
    return pairwise_claim(
        "C2",
        table,
        experiment,
        [("mbmpo", "MB-MPO", "metrpo", "ME-TRPO"), ("mbmpo", "MB-MPO", "mbmpc", "MB-MPC")],
    )


def c3_robust_to_model_bias(table: pd.DataFrame, experiment: str) -> list[Verdict]:
    """C3: ME-TRPO's drop from b_max 0 to b minus MB-MPO's drop (positive: MB-MPO more
    robust), per bias level."""
    rule = "supported if the 95% CI of (ME-TRPO's drop - MB-MPO's drop) lies above 0"
    rows = []
    for task in sorted(table.loc[table["experiment"] == experiment, "task"].unique()):
        labels = table.loc[(table["experiment"] == experiment) & (table["task"] == task), "algo"]
        levels = sorted(
            {lab.removeprefix("mbmpo_bias") for lab in labels if lab.startswith("mbmpo_bias")}
            - {"0"}
        )
        for level in levels:
            groups = [
                _finals(table, experiment, task, label)
                for label in (
                    "mbmpo_bias0",
                    f"mbmpo_bias{level}",
                    "metrpo_bias0",
                    f"metrpo_bias{level}",
                )
            ]
            if min(len(g) for g in groups) == 0:
                continue
            rows.append(
                interval_verdict(
                    "C3",
                    task,
                    f"drop at b_max {level}: ME-TRPO - MB-MPO",
                    groups,
                    lambda m0, mb, t0, tb: (t0.mean() - tb.mean()) - (m0.mean() - mb.mean()),
                    rule,
                    experiment,
                )
            )
    return rows


def largest_drop(curve: pd.DataFrame) -> float:
    """The largest fall of the evaluation return between consecutive evaluation points."""
    values = curve.sort_values("env_steps")["return_mean"].dropna().to_numpy(float)
    return float(max(0.0, np.max(values[:-1] - values[1:]))) if len(values) > 1 else 0.0


def c4_adaptation_matters(
    table: pd.DataFrame,
    experiment: str,
    adapted: str = "mbmpo_alpha0.001",
    frozen: str = "no_adaptation_alpha0",
) -> list[Verdict]:
    """C4: final return (alpha 0.001 - alpha 0) and instability (largest drop, alpha 0 -
    alpha 0.001). Supported if either interval lies above 0; contradicted if both lie below."""
    rule = (
        "supported if the final-return or the instability CI lies above 0; "
        "contradicted if both lie below"
    )
    rows = []
    for task in sorted(table.loc[table["experiment"] == experiment, "task"].unique()):
        finals = [_finals(table, experiment, task, lab) for lab in (adapted, frozen)]
        if min(len(f) for f in finals) == 0:
            continue
        drops = [
            np.array([largest_drop(c) for c in _curves(table, experiment, task, label)])
            for label in (frozen, adapted)
        ]
        final = interval_verdict(
            "C4",
            task,
            "final return: alpha 0.001 - alpha 0",
            finals,
            _difference,
            rule,
            experiment,
        )
        unstable = interval_verdict(
            "C4",
            task,
            "largest drop between evaluations: alpha 0 - alpha 0.001",
            drops,
            _difference,
            rule,
            experiment,
        )
        verdicts = {final.verdict, unstable.verdict}
        combined = (
            "supported"
            if "supported" in verdicts
            else "contradicted"
            if verdicts == {"contradicted"}
            else "inconclusive"
        )
        for row in (final, unstable):
            row.reason = (row.reason + "; " if row.reason else "") + f"C4 on {task}: {combined}"
        rows += [final, unstable]
    return rows


def c5_plasticity_follows_uncertainty(
    model_std: np.ndarray, kl: np.ndarray, figure: str, reps: int = 2000
) -> Verdict:
    """C5: Spearman correlation between the ensemble's disagreement and KL(pre || post) over
    the plasticity grid, with a bootstrap interval over grid points."""
    rule = "supported if the 95% CI of Spearman's rho lies above 0"
    x, y = np.ravel(model_std), np.ravel(kl)
    rho = float(stats.spearmanr(x, y).statistic)

    def resampled_rho(idx: np.ndarray) -> float:  # grid points resampled together
        return float(stats.spearmanr(x[idx], y[idx]).statistic)

    low, high = bootstrap_ci(resampled_rho, [np.arange(x.size)], reps=reps, seed=BOOTSTRAP_SEED)
    verdict, reason = _decide(low, high, 0.0)
    return Verdict(
        "C5",
        "point2d",
        "Spearman rho(ensemble std, KL pre-post) over the grid",
        rho,
        low,
        high,
        f"{x.size} grid points",
        rule,
        verdict,
        reason,
        figure,
    )


def g1_adaptive_beats_non_adaptive(table: pd.DataFrame, experiment: str) -> list[Verdict]:
    """G1: final return of GrBAL and ReBAL minus MB-MPC's and MB-MPO's, per changing-dynamics
    task and across them."""
    return pairwise_claim(
        "G1",
        table,
        experiment,
        [
            (adaptive, a_name, other, o_name)
            for adaptive, a_name in (("grbal", "GrBAL"), ("rebal", "ReBAL"))
            for other, o_name in (("mbmpc", "MB-MPC"), ("mbmpo", "MB-MPO"))
        ],
    )


def _steps_to_reach(curve: pd.DataFrame, level: float) -> float:
    """First evaluation step at which the return reaches ``level`` (inf if never)."""
    curve = curve.sort_values("env_steps")
    reached = curve[curve["return_mean"] >= level]
    return float(reached["env_steps"].iloc[0]) if len(reached) else math.inf


def _window_mean(curves: list[pd.DataFrame], low: float, high: float) -> float:
    """Mean evaluation return of ``curves`` over the evaluations in (low, high] steps."""
    values = [
        c.loc[(c["env_steps"] > low) & (c["env_steps"] <= high), "return_mean"] for c in curves
    ]
    return float(pd.concat(values).mean())


def late_gain(curves: list[pd.DataFrame], floor: float) -> float:
    """How far a method still climbed over the second half of its runs: the mean return over
    the last tenth of their steps minus that over the tenth ending at half way, as a fraction
    of the way from ``floor`` (random) to the last tenth's return."""
    end = min(float(c["env_steps"].max()) for c in curves)
    last = _window_mean(curves, 0.9 * end, end)
    middle = _window_mean(curves, 0.4 * end, 0.5 * end)
    return (last - middle) / max(abs(last - floor), 1e-8)


def c1_sample_efficiency(table: pd.DataFrame, experiment: str) -> list[Verdict]:
    """C1: steps a model-free method needs to reach 90% of the way from random to its own
    asymptote, over the steps MB-MPO needs for the same level.

    The asymptote is the final return of model-free runs that ran their official budget, or
    that ran at least :data:`PLATEAU_MIN_BUDGET` of it and ended on a plateau
    (:func:`late_gain` at most :data:`PLATEAU_GAIN`); a shorter run, or a curve still climbing
    when its budget ends, has no asymptote to measure against: inconclusive."""
    rule = f"supported if the 95% CI of (model-free steps / MB-MPO steps) lies above {C1_FACTOR:g}"
    rows = []
    done = table[(table["experiment"] == experiment) & (table["status"] == "done")]
    for task in sorted(done["task"].unique()):
        ours = _curves(table, experiment, task, "mbmpo")
        random_finals = _finals(table, experiment, task, "random")
        floor = float(random_finals.mean()) if len(random_finals) else 0.0
        for mf, budget in OFFICIAL_MODEL_FREE_BUDGET.items():
            theirs = _curves(table, experiment, task, mf)
            if not ours or not theirs:
                continue
            ran = min(float(c["env_steps"].max()) for c in theirs)
            statistic = f"steps to 90% of the {mf.upper()} asymptote: {mf.upper()} / MB-MPO"
            n = f"{len(ours)} vs {len(theirs)}"
            gain = late_gain(theirs, floor)
            if ran < budget and not (ran >= PLATEAU_MIN_BUDGET * budget and gain <= PLATEAU_GAIN):
                ended = f"budget: the {mf.upper()} runs ended at {ran:,.0f} steps"
                if ran < PLATEAU_MIN_BUDGET * budget:
                    reason = (
                        f"{ended}, under {PLATEAU_MIN_BUDGET:.0%} of the official {budget:,}: "
                        "too short to show an asymptote (the paper profile runs the official "
                        "budget)"
                    )
                else:
                    climbing = (
                        f"still climbing ({gain:.0%} over their second half, more than "
                        f"{PLATEAU_GAIN:.0%})"
                        if math.isfinite(gain)
                        else "with too few evaluations in their second half to show a plateau"
                    )
                    reason = (
                        f"{ended} {climbing}, before the official {budget:,} (the paper "
                        "profile runs it)"
                    )
                rows.append(inconclusive("C1", task, statistic, n, rule, reason, experiment))
                continue
            if ran < budget:
                statistic += f" (asymptote: plateau at {ran:,.0f} steps)"
            asymptote = float(np.mean([return_at(c, None) for c in theirs]))
            level = floor + C1_FRACTION * (asymptote - floor)
            mf_steps = np.array([_steps_to_reach(c, level) for c in theirs])
            our_steps = np.array([_steps_to_reach(c, level) for c in ours])
            if not np.isfinite(our_steps).all():
                reason = (
                    f"budget: {int((~np.isfinite(our_steps)).sum())} MB-MPO runs never "
                    f"reached {level:.1f} within their steps"
                )
                rows.append(inconclusive("C1", task, statistic, n, rule, reason, experiment))
                continue
            rows.append(
                interval_verdict(
                    "C1",
                    task,
                    statistic,
                    [mf_steps, our_steps],
                    lambda a, b: a.mean() / b.mean(),
                    rule,
                    experiment,
                    threshold=C1_FACTOR,
                )
            )
    return rows


CLAIM_EXPERIMENTS = {
    "C1": "fig1",
    "C2": "fig1",
    "C3": "fig3",
    "C4": "fig4",
    "C5": "fig2",
    "G1": "adaptation",
}
"""Where each claim's runs are: the experiment of that name and its variants (``fig1`` and
``fig1_gymnasium``), as the profiles name them."""


def claim_experiments(claim: str, experiments: list[str]) -> list[str]:
    """The experiments of ``experiments`` that hold ``claim``'s runs."""
    name = CLAIM_EXPERIMENTS[claim]
    return [e for e in experiments if e == name or e.startswith(f"{name}_")]


CLAIMS = {
    "C1": (
        "MB-MPO reaches the model-free asymptote with 10-100x fewer real steps (Fig. 1)",
        c1_sample_efficiency,
        "MB-MPO with TRPO, PPO or DDPG",
    ),
    "C2": (
        "MB-MPO beats the model-based baselines ME-TRPO and MB-MPC (Fig. 1)",
        c2_beats_model_based_baselines,
        "MB-MPO with ME-TRPO or MB-MPC",
    ),
    "C3": (
        "with biased, noisy models MB-MPO degrades less than ME-TRPO (Fig. 3)",
        c3_robust_to_model_bias,
        "labels mbmpo_bias0, mbmpo_bias<b>, metrpo_bias0, metrpo_bias<b>",
    ),
    "C4": (
        "at horizon 1000, no adaptation (alpha = 0) learns worse or less stably (Fig. 4)",
        c4_adaptation_matters,
        "labels mbmpo_alpha0.001 and no_adaptation_alpha0",
    ),
    "C5": (
        "the policy's plasticity follows model uncertainty (Fig. 2)",
        None,
        "an MB-MPO point2d run for the plasticity grid",
    ),
    "G1": (
        "GrBAL/ReBAL beat non-adaptive methods when dynamics change (Nagabandi et al. 2019)",
        g1_adaptive_beats_non_adaptive,
        "GrBAL or ReBAL with MB-MPC or MB-MPO",
    ),
}
"""Claim -> (statement, verdict function over one experiment, what its runs are)."""


def evaluate_claims(
    table: pd.DataFrame,
    plasticity: dict[str, np.ndarray] | None = None,
    plasticity_figure: str = "fig2",
) -> list[Verdict]:
    """Every claim on its experiments of ``table`` (:data:`CLAIM_EXPERIMENTS`); a claim without
    runs there is one inconclusive row saying what is missing. ``plasticity``: the grid of
    :func:`benchmark.analysis.plasticity.plasticity_grid` for C5."""
    experiments = sorted(table["experiment"].dropna().unique()) if len(table) else []
    rows: list[Verdict] = []
    for claim, (_, check, needs) in CLAIMS.items():
        found: list[Verdict] = []
        if check is not None:
            for experiment in claim_experiments(claim, experiments):
                found += check(table, experiment)
        elif plasticity is not None:
            found = [
                c5_plasticity_follows_uncertainty(
                    plasticity["model_std"], plasticity["kl"], plasticity_figure
                )
            ]
        rows += found or [inconclusive(claim, "all", "", "0", "", f"no runs: needs {needs}", "")]
    return rows


def summarize(rows: list[Verdict]) -> dict[str, str]:
    """One verdict per claim: supported if supported on at least half of its rows and
    contradicted on none; contradicted if the reverse; else inconclusive."""
    summary = {}
    for claim in sorted({r.claim for r in rows}):
        verdicts = [r.verdict for r in rows if r.claim == claim]
        half = len(verdicts) / 2
        if verdicts.count("supported") >= half and "contradicted" not in verdicts:
            summary[claim] = "supported"
        elif verdicts.count("contradicted") >= half and "supported" not in verdicts:
            summary[claim] = "contradicted"
        else:
            summary[claim] = "inconclusive"
    return summary


def to_frame(rows: list[Verdict]) -> pd.DataFrame:
    """The verdict rows as a table (results/claims.csv)."""
    return pd.DataFrame([asdict(r) for r in rows], columns=list(Verdict.__dataclass_fields__))


def _number(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.3g}"


def published_beside(table: pd.DataFrame, rows: list[Verdict]) -> pd.DataFrame:
    """The published numbers for the tasks and algorithms of each claim's rows: same task
    definition and horizon where they exist (``setting`` 'same'), else the task's numbers at
    another horizon (``setting`` says which)."""
    from benchmark.analysis.tables import (
        PUBLISHED_ENV,
        published_name,
        published_of,
        published_returns,
    )

    published = published_returns()
    out = []
    for claim in CLAIM_EXPERIMENTS:
        figures = {r.figure for r in rows if r.claim == claim and r.figure}
        runs = table[table["experiment"].isin(figures) & table["env_steps"].notna()]
        for (task, algorithm), group in runs.groupby(["task", "algorithm"]):
            name = published_name(algorithm)
            env = PUBLISHED_ENV.get(task, "")
            if not name or not env:
                continue
            horizon = group["horizon"].iloc[0] if "horizon" in group else None
            for _, ref in published_of(published, name, task).iterrows():
                setting = (
                    "same"
                    if horizon is not None and float(ref["horizon"]) == float(horizon)
                    else f"other: horizon {ref['horizon']} (runs: {horizon})"
                )
                out.append(
                    {
                        "claim": claim,
                        "task": task,
                        "algorithm": ref["algorithm"],
                        "return": ref["return_mean"],
                        "steps": int(ref["timesteps"]),
                        "setting": setting,
                        "source": ref["source"],
                    }
                )
    columns = ["claim", "task", "algorithm", "return", "steps", "setting", "source"]
    return pd.DataFrame(out, columns=columns).drop_duplicates()


def report(
    rows: list[Verdict],
    figures: dict[str, str] | None = None,
    note: str = "",
    published: pd.DataFrame | None = None,
) -> str:
    """results/claims.md: the verdict per claim first, then every row with its statistic,
    estimate, 95% interval, decision rule and reason, then the published numbers for the same
    tasks (:func:`published_beside`). ``figures``: experiment -> figure path (relative to the
    report) each verdict links to."""
    figures = figures or {}
    summary = summarize(rows)
    lines = ["# The paper's claims, checked", ""]
    if note:
        lines += [note, ""]
    lines += [
        "| claim | statement | verdict | evidence |",
        "| --- | --- | --- | --- |",
    ]
    for claim, (statement, _, _) in CLAIMS.items():
        own = [r for r in rows if r.claim == claim]
        counts = ", ".join(
            f"{sum(r.verdict == v for r in own)} {v}"
            for v in VERDICTS
            if any(r.verdict == v for r in own)
        )
        links = sorted({r.figure for r in own if r.figure})
        linked = " ".join(f"[{f}]({figures[f]})" if f in figures else f for f in links)
        lines.append(
            f"| {claim} | {statement} | **{summary.get(claim, 'inconclusive')}** | "
            f"{counts}; {linked} |"
        )
    lines += [
        "",
        "A claim is supported when at least half of its rows are and none contradicts it, "
        "contradicted in the reverse case, inconclusive otherwise. Intervals: 95% percentile "
        "bootstrap over runs (seeds), each group resampled on its own (C5: over grid points); "
        "rows 'all (k tasks)': the mean over tasks of the probability of improvement, runs "
        "resampled within each task (stratified); "
        "with 3-5 seeds such intervals cover less often than they say (README, Statistics). "
        "Scores: the final deterministic evaluation return of each run.",
        "",
        "| claim | task | statistic | estimate | 95% CI | runs | verdict | rule / reason |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        interval = f"[{_number(r.ci_low)}, {_number(r.ci_high)}]" if np.isfinite(r.ci_low) else ""
        why = r.reason or r.rule
        lines.append(
            f"| {r.claim} | {r.task} | {r.statistic} | {_number(r.estimate)} | "
            f"{interval} | {r.n} | {r.verdict} | {why} |"
        )
    if published is not None and len(published):
        lines += [
            "",
            "## Published numbers for these tasks",
            "",
            "`setting`: 'same' for the same task definition and horizon as the runs; otherwise "
            "the number belongs to another setting (say, MBBL's horizon 1000) and is shown for "
            "scale only.",
            "",
            "| claim | task | algorithm | published return | at steps | setting | source |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for _, p in published.iterrows():
            lines.append(
                f"| {p['claim']} | {p['task']} | {p['algorithm']} | {p['return']:.1f} | "
                f"{p['steps']:,} | {p['setting']} | {p['source']} |"
            )
    return "\n".join(lines) + "\n"
