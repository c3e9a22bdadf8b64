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

from dataclasses import dataclass

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


def return_at(curve: pd.DataFrame, at: float | None) -> float:
    """A run's evaluation return at ``at`` real steps (linear interpolation between
    evaluation points), or its final return when ``at`` is None. NaN if the run did not get
    that far."""
    curve = curve.dropna(subset=["env_steps", "return_mean"]).sort_values("env_steps")
    if curve.empty:
        return float("nan")
    if at is None:
        return float(curve["return_mean"].iloc[-1])
    steps = curve["env_steps"].to_numpy(float)
    if at > steps[-1] or at < steps[0]:
        return float("nan")
    return float(np.interp(at, steps, curve["return_mean"].to_numpy(float)))


def score_arrays(
    table: pd.DataFrame, algo: str, tasks: list[str] | None = None, at: float | None = None
) -> ScoreArrays:
    """One score per finished run of ``algo``, per task, from the aggregated table."""
    done = table[(table["algo"] == algo) & (table["status"] == "done")]
    scores: ScoreArrays = {}
    for task in tasks or sorted(done["task"].unique()):
        runs = done[done["task"] == task]
        values = [return_at(group, at) for _, group in runs.groupby("run_dir")]
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


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the scores."""
    return float(stats.trim_mean(np.ravel(x), 0.25))


def normalize(scores: ScoreArrays, low: dict[str, float], high: dict[str, float]) -> ScoreArrays:
    """(score - low) / (high - low) per task."""
    return {t: (s - low[t]) / (high[t] - low[t]) for t, s in scores.items()}


def aggregate_with_ci(
    normalized: ScoreArrays, statistic, reps: int = 2000, seed: int = BOOTSTRAP_SEED
) -> tuple[float, tuple[float, float]]:
    """A statistic of all normalized scores, with a stratified bootstrap 95% interval
    (runs resampled within each task)."""
    tasks = sorted(normalized)
    point = statistic(np.concatenate([normalized[t] for t in tasks]))
    interval = bootstrap_ci(
        lambda *xs: statistic(np.concatenate(xs)), [normalized[t] for t in tasks], reps, seed
    )
    return float(point), interval


def normalization_bounds(
    table: pd.DataFrame, tasks: list[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per task: the random policy's mean final return (0) and the best model-free
    algorithm's mean final return (1), from the runs in the table."""
    low, high = {}, {}
    for task in tasks:
        rnd = score_arrays(table, "random", [task])[task]
        best = [
            s.mean()
            for algo in model_free_algorithms()
            if len(s := score_arrays(table, algo, [task])[task])
        ]
        if not len(rnd) or not best:
            raise ValueError(
                f"{task}: normalized scores need finished 'random' runs and at least one "
                f"model-free baseline ({', '.join(model_free_algorithms())}) in the results"
            )
        low[task], high[task] = float(rnd.mean()), float(max(best))
        if high[task] <= low[task]:
            raise ValueError(f"{task}: the best model-free return does not beat random")
    return low, high


def format_comparison(
    table: pd.DataFrame, algo_a: str, algo_b: str, tasks: list[str] | None, at: float | None
) -> str:
    """The report printed by ``mbbench compare``."""
    a, b = score_arrays(table, algo_a, tasks, at), score_arrays(table, algo_b, tasks, at)
    common = [
        t for t in (tasks or sorted(set(a) & set(b))) if len(a.get(t, [])) and len(b.get(t, []))
    ]
    if not common:
        raise ValueError(f"no task has finished runs of both {algo_a} and {algo_b}")
    where = f"at {at:g} steps" if at is not None else "final return"
    lines = [
        f"{algo_a} vs {algo_b}, {where}",
        "",
        "| task | n | mean A | mean B | A-B [95% CI] | Welch t (p) | Mann-Whitney U (p) | P(A>B) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in common:
        c = compare_task(task, a[task], b[task])
        lines.append(
            f"| {task} | {c.n_a}/{c.n_b} | {c.mean_a:.1f} | {c.mean_b:.1f} | "
            f"{c.diff:.1f} [{c.diff_ci[0]:.1f}, {c.diff_ci[1]:.1f}] | "
            f"{c.welch_t:.2f} ({c.welch_p:.3g}) | {c.mannwhitney_u:.1f} ({c.mannwhitney_p:.3g}) | "
            f"{c.prob_improvement:.2f} |"
        )
    try:
        low, high = normalization_bounds(table, common)
    except ValueError as error:
        lines += ["", f"Across tasks: not computed ({error})."]
        return "\n".join(lines)
    lines += ["", "Across tasks, normalized scores (random = 0, best model-free final = 1):", ""]
    lines += ["| algorithm | IQM [95% CI] | mean [95% CI] |", "| --- | --- | --- |"]
    for name, scores in ((algo_a, a), (algo_b, b)):
        normalized = normalize({t: scores[t] for t in common}, low, high)
        q, q_ci = aggregate_with_ci(normalized, iqm)
        m, m_ci = aggregate_with_ci(normalized, np.mean)
        lines.append(
            f"| {name} | {q:.3f} [{q_ci[0]:.3f}, {q_ci[1]:.3f}] "
            f"| {m:.3f} [{m_ci[0]:.3f}, {m_ci[1]:.3f}] |"
        )
    lines += ["", "Bootstrap: 2000 resamples, seed 0 (stratified by task for the aggregates)."]
    return "\n".join(lines)
