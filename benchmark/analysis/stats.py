"""Statistical comparison of runs.

The only interface between results and statistics is a score array (as in rliable): for an
algorithm, ``scores[task]`` is a 1-D array with one number per run (seed). Per task: Welch's
t-test, the Mann-Whitney U test, a bootstrap 95% interval of the difference of means and the
probability of improvement. Across tasks: the IQM and mean of normalized scores (random
policy = 0, best model-free final return = 1) with stratified bootstrap intervals, the method
of Agarwal et al. (2021) computed with numpy/scipy (rliable 1.2 pins arch<8, which breaks on
pandas 3). Every bootstrap uses a fixed seed, so the output is reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from algorithms import algorithms_of_family

ScoreArrays = dict[str, np.ndarray]
"""task -> scores of one algorithm's runs on that task."""


def model_free_algorithms() -> list[str]:
    """The registered model-free algorithms (a fact of each algorithm's class)."""
    return algorithms_of_family("model-free")


BOOTSTRAP_SEED = 0


def return_at(curve: pd.DataFrame, at: float | None, metric: str = "return_mean") -> float:
    """A run's evaluation return (the progress column ``metric``) at ``at`` real steps (linear
    interpolation between evaluation points), or its final return when ``at`` is None. NaN if
    the run did not get that far or never logged ``metric``."""
    if metric not in curve.columns:
        return float("nan")
    curve = curve.dropna(subset=["env_steps", metric]).sort_values("env_steps")
    if curve.empty:
        return float("nan")
    if at is None:
        return float(curve[metric].iloc[-1])
    steps = curve["env_steps"].to_numpy(float)
    if at > steps[-1] or at < steps[0]:
        return float("nan")
    return float(np.interp(at, steps, curve[metric].to_numpy(float)))


def score_arrays(
    table: pd.DataFrame,
    algo: str,
    tasks: list[str] | None = None,
    at: float | None = None,
    metric: str = "return_mean",
    statuses: tuple[str, ...] = ("done",),
) -> ScoreArrays:
    """One score per finished run of ``algo``, per task, from the aggregated table: the
    progress column ``metric`` (the deterministic evaluation by default) at ``at`` steps or at
    the end. ``statuses`` widens "finished" (``("done", "running")``: runs still in progress
    count at the ``at`` they reached)."""
    done = table[(table["algo"] == algo) & table["status"].isin(statuses)]
    scores: ScoreArrays = {}
    for task in tasks or sorted(done["task"].unique()):
        runs = done[done["task"] == task]
        values = [return_at(group, at, metric) for _, group in runs.groupby("run_dir")]
        scores[task] = np.array([v for v in values if np.isfinite(v)])
    return scores


def bootstrap_ci(
    sample_fn, data: list[np.ndarray], reps: int = 2000, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """95% percentile interval of ``sample_fn(*resampled data)``, each array resampled with
    replacement on its own (stratified)."""
    rng = np.random.default_rng(seed)
    values = np.empty(reps)
    for i in range(reps):
        values[i] = sample_fn(*(x[rng.integers(len(x), size=len(x))] for x in data))
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) + 0.5 P(X = Y) over all pairs of runs."""
    greater = (x[:, None] > y[None, :]).mean()
    ties = (x[:, None] == y[None, :]).mean()
    return float(greater + 0.5 * ties)


@dataclass
class PairComparison:
    task: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    diff_ci: tuple[float, float]
    welch_t: float
    welch_p: float
    mannwhitney_u: float
    mannwhitney_p: float
    prob_improvement: float
    run_seconds_a: float = float("nan")
    """Mean wall-clock seconds of A's runs to the compared point (``wall_time_s``): what a
    run cost, measured, so other work on the machine inflates it. NaN if not logged."""
    run_seconds_b: float = float("nan")
    """The same for B."""

    @property
    def cost_ratio(self) -> float:
        """A's cost over B's (run seconds); NaN where either is unknown."""
        if not (self.run_seconds_b > 0):
            return float("nan")
        return self.run_seconds_a / self.run_seconds_b


def compare_task(task: str, a: np.ndarray, b: np.ndarray) -> PairComparison:
    """A vs B on one task."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"{task}: need at least 2 runs per algorithm, got {len(a)} and {len(b)}")
    welch = stats.ttest_ind(a, b, equal_var=False)
    mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
    return PairComparison(
        task=task,
        n_a=len(a),
        n_b=len(b),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        diff=float(a.mean() - b.mean()),
        diff_ci=bootstrap_ci(lambda x, y: x.mean() - y.mean(), [a, b]),
        welch_t=float(welch.statistic),
        welch_p=float(welch.pvalue),
        mannwhitney_u=float(mwu.statistic),
        mannwhitney_p=float(mwu.pvalue),
        prob_improvement=probability_of_improvement(a, b),
    )


def iqm(x: np.ndarray, axis: int | None = None) -> float | np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the scores (of all of them, or along
    ``axis``)."""
    if axis is None:
        return float(stats.trim_mean(np.ravel(x), 0.25))
    return stats.trim_mean(x, 0.25, axis=axis)


def normalize(scores: ScoreArrays, low: dict[str, float], high: dict[str, float]) -> ScoreArrays:
    """(score - low) / (high - low) per task."""
    return {t: (s - low[t]) / (high[t] - low[t]) for t, s in scores.items()}


def aggregate_with_ci(
    normalized: ScoreArrays, statistic, reps: int = 2000, seed: int = BOOTSTRAP_SEED
) -> tuple[float, tuple[float, float]]:
    """A statistic of all normalized scores, with a stratified bootstrap 95% percentile
    interval (runs resampled within each task). ``statistic(x, axis=...)`` must reduce along
    an axis (``iqm``, ``np.mean``): all resamples are computed in one call."""
    tasks = sorted(normalized)
    point = statistic(np.concatenate([normalized[t] for t in tasks]))
    rng = np.random.default_rng(seed)
    resampled = np.concatenate(
        [
            normalized[t][rng.integers(len(normalized[t]), size=(reps, len(normalized[t])))]
            for t in tasks
        ],
        axis=1,
    )
    low, high = np.percentile(statistic(resampled, axis=1), [2.5, 97.5])
    return float(point), (float(low), float(high))


def performance_profile(
    normalized: ScoreArrays, taus: np.ndarray, reps: int = 2000, seed: int = BOOTSTRAP_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The run-score distribution of Agarwal et al. (2021): for each threshold tau, the share
    of runs whose normalized score exceeds it, averaged over tasks (every task weighs the
    same), with a stratified bootstrap 95% band (runs resampled within each task). Returns
    (point, low, high), each shaped like ``taus``."""
    tasks = sorted(normalized)

    def profile(samples: list[np.ndarray]) -> np.ndarray:
        # samples[t]: [..., runs] -> share above each tau: [..., len(taus)], mean over tasks
        return np.mean(
            [(x[..., None] > taus).mean(axis=-2) for x in samples],
            axis=0,
        )

    point = profile([normalized[t] for t in tasks])
    rng = np.random.default_rng(seed)
    resampled = [
        normalized[t][rng.integers(len(normalized[t]), size=(reps, len(normalized[t])))]
        for t in tasks
    ]
    low, high = np.percentile(profile(resampled), [2.5, 97.5], axis=0)
    return point, low, high


@dataclass
class AggregateScores:
    """Every algorithm's normalized scores across an experiment's tasks, and how they were
    normalized (what the aggregate figure draws)."""

    normalized: dict[str, ScoreArrays]
    """algorithm label -> task -> normalized scores of its runs."""
    normalization: str
    """What 0 and 1 mean on the normalized scale."""


def aggregate_scores(
    table: pd.DataFrame,
    algos: list[str],
    tasks: list[str],
    at: float | None = None,
    metric: str = "return_mean",
) -> AggregateScores:
    """Each algorithm's scores (``metric`` at ``at`` or final) normalized per task: random = 0
    and the best model-free algorithm = 1 where the table has those runs (as ``mbbench
    compare``); otherwise the worst and the best algorithm's mean score of the task (a scale
    relative to the compared algorithms, and named so)."""
    scores = {a: score_arrays(table, a, tasks, at, metric) for a in algos}
    try:
        low, high = normalization_bounds(table, tasks, metric)
        normalization = "0 = random policy, 1 = best model-free algorithm (mean final score)"
    except ValueError:
        low, high = {}, {}
        for task in tasks:
            means = [s[task].mean() for s in scores.values() if len(s[task])]
            if len(means) < 2 or max(means) <= min(means):
                raise ValueError(
                    f"{task}: cannot normalize: fewer than 2 distinct algorithms"
                ) from None
            low[task], high[task] = float(min(means)), float(max(means))
        normalization = "0 = worst, 1 = best algorithm of the experiment (mean score per task)"
    normalized = {a: normalize(s, low, high) for a, s in scores.items()}
    for algo, per_task in normalized.items():
        missing = [t for t in tasks if not len(per_task[t])]
        if missing:
            raise ValueError(f"{algo}: no finished run on {', '.join(missing)}")
    return AggregateScores(normalized, normalization)


def normalization_bounds(
    table: pd.DataFrame, tasks: list[str], metric: str = "return_mean"
) -> tuple[dict[str, float], dict[str, float]]:
    """Per task: the random policy's mean final return (0) and the best model-free
    algorithm's mean final return (1), from the runs in the table (column ``metric``)."""
    low, high = {}, {}
    model_free = model_free_algorithms()
    for task in tasks:
        rnd = score_arrays(table, "random", [task], metric=metric)[task]
        best = [
            s.mean()
            for algo in model_free
            if len(s := score_arrays(table, algo, [task], metric=metric)[task])
        ]
        if not len(rnd) or not best:
            raise ValueError(
                f"{task}: normalized scores need finished 'random' runs and at least one "
                f"model-free baseline ({', '.join(model_free)}) in the results"
            )
        low[task], high[task] = float(rnd.mean()), float(max(best))
        if high[task] <= low[task]:
            raise ValueError(f"{task}: the best model-free return does not beat random")
    return low, high


@dataclass
class Comparison:
    """Everything ``mbbench compare`` computes, at full precision."""

    algo_a: str
    algo_b: str
    at: float | None
    tasks: list[PairComparison]
    aggregates: list[dict[str, float | str]]
    """Per algorithm and statistic (IQM, mean) of normalized scores: estimate, CI."""
    aggregates_skipped: str | None
    """Why there are no aggregates (no random or model-free runs to normalize with)."""
    metric: str = "return_mean"
    """The progress column compared."""
    include_unfinished: bool = False
    """Whether runs still in progress counted (at ``at``, where they had reached it)."""
    bootstrap: str = f"2000 resamples, seed {BOOTSTRAP_SEED} (stratified by task for aggregates)"

    def records(self) -> list[dict[str, float | int | str | None]]:
        """One flat record per task comparison and per aggregate (CSV/JSON rows)."""
        common = {"algo_a": self.algo_a, "algo_b": self.algo_b, "at": self.at}
        common["metric"] = self.metric
        common["include_unfinished"] = self.include_unfinished
        rows: list[dict[str, float | int | str | None]] = []
        for c in self.tasks:
            fields = {k: v for k, v in asdict(c).items() if k != "diff_ci"}
            rows.append(
                {
                    "scope": "task",
                    **common,
                    **fields,
                    "diff_ci_low": c.diff_ci[0],
                    "diff_ci_high": c.diff_ci[1],
                    "cost_ratio": c.cost_ratio,
                }
            )
        for agg in self.aggregates:
            rows.append({"scope": "aggregate", **common, **agg})
        return rows


def _mean_or_nan(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def compare(
    table: pd.DataFrame,
    algo_a: str,
    algo_b: str,
    tasks: list[str] | None,
    at: float | None,
    metric: str = "return_mean",
    include_unfinished: bool = False,
) -> Comparison:
    """Per task: A against B (difference with bootstrap CI, Welch, Mann-Whitney, P(A>B));
    across tasks, where random and model-free runs allow normalizing: IQM and mean with
    stratified bootstrap CIs. Scores are the progress column ``metric``. Each task's
    comparison also carries the runs' mean cost (wall-clock seconds to the compared point).
    ``include_unfinished`` also counts runs still in progress that reached ``at`` (which it
    then needs: such a run has no final score); normalization bounds stay finished runs'."""
    if include_unfinished and at is None:
        raise ValueError("runs in progress have no final score: give the step to compare at")
    statuses = ("done", "running") if include_unfinished else ("done",)
    a = score_arrays(table, algo_a, tasks, at, metric, statuses)
    b = score_arrays(table, algo_b, tasks, at, metric, statuses)
    common = [
        t for t in (tasks or sorted(set(a) & set(b))) if len(a.get(t, [])) and len(b.get(t, []))
    ]
    if not common:
        raise ValueError(f"no task has finished runs of both {algo_a} and {algo_b}")
    seconds_a = score_arrays(table, algo_a, common, at, "wall_time_s", statuses)
    seconds_b = score_arrays(table, algo_b, common, at, "wall_time_s", statuses)
    pairs = [
        replace(
            compare_task(task, a[task], b[task]),
            run_seconds_a=_mean_or_nan(seconds_a[task]),
            run_seconds_b=_mean_or_nan(seconds_b[task]),
        )
        for task in common
    ]
    try:
        low, high = normalization_bounds(table, common, metric)
    except ValueError as error:
        return Comparison(algo_a, algo_b, at, pairs, [], str(error), metric, include_unfinished)
    aggregates: list[dict[str, float | str]] = []
    for name, scores in ((algo_a, a), (algo_b, b)):
        normalized = normalize({t: scores[t] for t in common}, low, high)
        for statistic, fn in (("iqm", iqm), ("mean", np.mean)):
            estimate, (ci_low, ci_high) = aggregate_with_ci(normalized, fn)
            aggregates.append(
                {
                    "algorithm": name,
                    "statistic": statistic,
                    "estimate": estimate,
                    "ci_low": ci_low,
                    "ci_high": ci_high,
                    "n_tasks": len(common),
                }
            )
    return Comparison(algo_a, algo_b, at, pairs, aggregates, None, metric, include_unfinished)


def _num(x: float) -> str:
    """A score for reading: one decimal for returns, three significant digits for the small
    numbers of other columns (losses, standard deviations)."""
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def format_comparison(comparison: Comparison) -> str:
    """The Markdown report printed by ``mbbench compare`` (rounded for reading)."""
    at = comparison.at
    where = f"at {at:g} steps" if at is not None else "final return"
    if comparison.metric != "return_mean":
        where += f" ({comparison.metric})"
    if comparison.include_unfinished:
        where += ", runs still in progress included"
    lines = [
        f"{comparison.algo_a} vs {comparison.algo_b}, {where}",
        "",
        "| task | n | mean A | mean B | A-B [95% CI] | Welch t (p) | Mann-Whitney U (p) | P(A>B) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in comparison.tasks:
        lines.append(
            f"| {c.task} | {c.n_a}/{c.n_b} | {_num(c.mean_a)} | {_num(c.mean_b)} | "
            f"{_num(c.diff)} [{_num(c.diff_ci[0])}, {_num(c.diff_ci[1])}] | "
            f"{c.welch_t:.2f} ({c.welch_p:.3g}) | {c.mannwhitney_u:.1f} ({c.mannwhitney_p:.3g}) | "
            f"{c.prob_improvement:.2f} |"
        )
    costed = [c for c in comparison.tasks if np.isfinite(c.cost_ratio)]
    if costed:
        lines += [
            "",
            "Cost: mean wall-clock hours per run to that point (wall_time_s; measured, so other",
            "work on the machine inflates it):",
            "",
            "| task | hours A | hours B | A/B |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c.task} | {c.run_seconds_a / 3600:.2f} | {c.run_seconds_b / 3600:.2f} | "
            f"{c.cost_ratio:.2f} |"
            for c in costed
        ]
    if comparison.aggregates_skipped:
        lines += ["", f"Across tasks: not computed ({comparison.aggregates_skipped})."]
        return "\n".join(lines)
    lines += ["", "Across tasks, normalized scores (random = 0, best model-free final = 1):", ""]
    lines += ["| algorithm | IQM [95% CI] | mean [95% CI] |", "| --- | --- | --- |"]
    by_algo: dict[str, dict[str, dict]] = {}
    for agg in comparison.aggregates:
        by_algo.setdefault(str(agg["algorithm"]), {})[str(agg["statistic"])] = agg
    for name, stats_of in by_algo.items():
        q, m = stats_of["iqm"], stats_of["mean"]
        lines.append(
            f"| {name} | {q['estimate']:.3f} [{q['ci_low']:.3f}, {q['ci_high']:.3f}] "
            f"| {m['estimate']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] |"
        )
    lines += ["", f"Bootstrap: {comparison.bootstrap}."]
    return "\n".join(lines)
