"""Tables: final returns next to published numbers, and real steps needed to reach a level.

Each table is written as Markdown (for the report) and CSV (for further analysis).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from algorithms import UnknownAlgorithmError, get_algorithm, list_unavailable
from benchmark.analysis.report import html_table_page
from benchmark.analysis.stats import model_free_algorithms, return_at
from benchmark.rundir import atomic_write_text

# Suite task -> env name in the published table (an algorithm's published name is a fact of
# its registered class: ``published_name``).
PUBLISHED_ENV = {
    "halfcheetah": "HalfCheetah",
    "hopper": "Hopper",
    "walker2d": "Walker2D",
    "ant": "Ant",
    "swimmer": "Swimmer",
    # The paper's own task definitions (the official code rerun and RLlib ran these; MBBL's
    # Table 1 used its own gym envs: the source column says which).
    "halfcheetah-rllab": "HalfCheetah",
    "hopper-rllab": "Hopper",
    "walker2d-rllab": "Walker2D",
    "ant-rllab": "Ant",
    "swimmer-rllab": "Swimmer",
}


def published_name(algorithm: str) -> str:
    """The registered algorithm's name in the published table ('' if it has none there, or
    is no longer registered)."""
    try:
        return get_algorithm(algorithm).published_name or ""
    except UnknownAlgorithmError:
        return ""


def not_available_note() -> str:
    """One sentence per baseline of the paper that is listed but not available."""
    return " ".join(f"{m.name.upper()}: {m.reason}." for m in list_unavailable())


def _horizon(value: object) -> int | None:
    """A run's recorded horizon (None where it was not recorded)."""
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _text(value: object) -> str:
    """A text cell of the aggregated table ('' where a CSV read it back as NaN)."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _model_fits(runs: pd.DataFrame) -> str:
    """The model-fit labels of a group of runs (one, unless runs of one label differ)."""
    return "; ".join(sorted(set(runs["model_fit"]) - {""}))


def published_returns() -> pd.DataFrame:
    """The published numbers shipped with the suite (sources in their first column)."""
    with resources.files("benchmark.reference").joinpath("published_returns.csv").open() as f:
        return pd.read_csv(f)


def published_curves() -> pd.DataFrame:
    """Published learning curves shipped with the suite: one row per (source, env, algorithm,
    timesteps) point (benchmark/reference/README.md says where each comes from)."""
    with resources.files("benchmark.reference").joinpath("published_curves.csv").open() as f:
        return pd.read_csv(f)


def run_summaries(table: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run: its final return, steps, horizon."""
    done = table[table["status"] == "done"]
    rows = []
    for run_dir, curve in done.groupby("run_dir"):
        first = curve.iloc[0]
        rows.append(
            {
                "experiment": first["experiment"],
                "task": first["task"],
                "algo": first["algo"],
                "algorithm": first.get("algorithm", first["algo"]),
                "seed": first["seed"],
                "final_steps": int(curve["env_steps"].max()),
                "horizon": _horizon(first.get("horizon")),
                "final_return": return_at(curve, None),
                "model_fit": _text(first.get("model_fit")),
                "run_dir": run_dir,
            }
        )
    return pd.DataFrame(rows)


def published_of(published: pd.DataFrame, name: str, task: str) -> pd.DataFrame:
    """The rows of ``published`` for the suite task's env and the algorithm published as
    ``name`` or a reimplementation of it (e.g. "MB-MPO(rllib)"), any horizon."""
    same_algorithm = (published["algorithm"] == name) | published["algorithm"].str.startswith(
        f"{name}("
    )
    return published[same_algorithm & (published["env"] == PUBLISHED_ENV.get(task, ""))]


def published_points(
    table: pd.DataFrame, experiment: str, published: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The published numbers that belong in an experiment's learning-curve panels: per task and
    run label, those of the same env, algorithm and horizon (columns task, algo, timesteps,
    return_mean, source). ``published``: the table to match against (default: the published
    returns; :func:`published_curve_points` passes the published curves)."""
    runs = table[(table["experiment"] == experiment) & table["env_steps"].notna()]
    published = published_returns() if published is None else published
    rows = []
    for (task, algo), group in runs.groupby(["task", "algo"], sort=True):
        name = published_name(group["algorithm"].iloc[0])
        if not name:
            continue
        horizon = _horizon(group["horizon"].iloc[0])
        match = published_of(published, name, task)
        match = match[match["horizon"] == horizon]
        for _, ref in match.iterrows():
            rows.append(
                {
                    "task": task,
                    "algo": algo,
                    "timesteps": int(ref["timesteps"]),
                    "return_mean": float(ref["return_mean"]),
                    "source": ref["source"],
                }
            )
    return pd.DataFrame(rows, columns=["task", "algo", "timesteps", "return_mean", "source"])


def published_curve_points(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """The points of every published curve that belongs in an experiment's panels (same env,
    algorithm and horizon as one of its run labels), in the columns of
    :func:`published_points`, sorted by step: a panel draws each (task, algo, source) as a
    reference line."""
    points = published_points(table, experiment, published_curves())
    return points.sort_values(["task", "algo", "source", "timesteps"], ignore_index=True)


def final_returns(table: pd.DataFrame, horizons: dict[str, int] | None = None) -> pd.DataFrame:
    """Final return mean +- std over seeds per (experiment, task, algo), with the published
    number of the same setting (env, algorithm, steps and horizon) where there is one."""
    runs = run_summaries(table)
    if runs.empty:
        return pd.DataFrame()
    published = published_returns()
    grouped = runs.groupby(["experiment", "task", "algo"], sort=True)
    rows = []
    for (experiment, task, algo), group in grouped:
        algorithm = group["algorithm"].iloc[0]
        steps = int(group["final_steps"].median())
        horizon = (horizons or {}).get(experiment, group["horizon"].iloc[0])
        candidates = published[
            (published["env"] == PUBLISHED_ENV.get(task, ""))
            & (published["algorithm"] == published_name(algorithm))
        ]
        match = candidates[(candidates["timesteps"] == steps) & (candidates["horizon"] == horizon)]
        if len(match):
            ref = match.iloc[0]
            spread = f" ± {ref['return_std']:.1f}" if pd.notna(ref["return_std"]) else ""
            published_text = f"{ref['return_mean']:.1f}{spread} ({ref['source']})"
        elif len(candidates):
            ref = candidates.iloc[0]
            published_text = (
                f"other setting: {ref['return_mean']:.1f} at {ref['timesteps']:,} steps, "
                f"horizon {ref['horizon']} ({ref['source']})"
            )
        else:
            published_text = ""
        rows.append(
            {
                "experiment": experiment,
                "task": task,
                "algo": algo,
                "model_fit": _model_fits(group),
                "seeds": len(group),
                "steps": steps,
                "return_mean": group["final_return"].mean(),
                "return_std": group["final_return"].std(ddof=0),
                "published": published_text,
            }
        )
    return pd.DataFrame(rows)


def steps_to_reach(curve: pd.DataFrame, level: float) -> float:
    """Real steps at which a curve first reaches ``level`` (linear interpolation between
    evaluation points); NaN if it never does."""
    curve = curve.sort_values("env_steps")
    steps = curve["env_steps"].to_numpy(float)
    values = curve["return_mean"].to_numpy(float)
    above = np.nonzero(values >= level)[0]
    if not len(above):
        return float("nan")
    i = above[0]
    if i == 0:
        return float(steps[0])
    frac = (level - values[i - 1]) / (values[i] - values[i - 1])
    return float(steps[i - 1] + frac * (steps[i] - steps[i - 1]))


def samples_needed(table: pd.DataFrame, fraction: float = 0.9) -> pd.DataFrame:
    """Per (experiment, task, algo): median real steps its runs need to reach a target: the
    random policy's return plus ``fraction`` of the way to the best model-free algorithm's
    mean final return (the paper's "10-100x fewer samples" claim, measured). Without random
    runs the random level is taken as 0. Runs that never reach it count as not reached."""
    runs = run_summaries(table)
    done = table[table["status"] == "done"]
    rows = []
    for (experiment, task), group in runs.groupby(["experiment", "task"]):
        model_free = group[group["algorithm"].isin(model_free_algorithms())]
        if model_free.empty:
            continue
        best_algo, best = max(
            ((a, g["final_return"].mean()) for a, g in model_free.groupby("algo")),
            key=lambda item: item[1],
        )
        random_runs = group[group["algorithm"] == "random"]
        floor = float(random_runs["final_return"].mean()) if len(random_runs) else 0.0
        level = floor + fraction * (best - floor)
        for algo, algo_runs in group.groupby("algo"):
            needed = [
                steps_to_reach(done[done["run_dir"] == r], level) for r in algo_runs["run_dir"]
            ]
            reached = [n for n in needed if np.isfinite(n)]
            rows.append(
                {
                    "experiment": experiment,
                    "task": task,
                    "algo": algo,
                    "model_fit": _model_fits(algo_runs),
                    "target": f"random {floor:.1f} + {fraction:.0%} of the way to "
                    f"{best_algo}'s {best:.1f} = {level:.1f}",
                    "runs_reaching": f"{len(reached)}/{len(needed)}",
                    "median_steps": float(np.median(reached)) if reached else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def to_markdown(frame: pd.DataFrame, float_format: str = "{:.1f}") -> str:
    """A plain Markdown table (no extra dependency)."""
    if frame.empty:
        return "(no finished runs)\n"
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = []
    for _, row in frame.iterrows():
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("–" if np.isnan(value) else float_format.format(value))
            else:
                cells.append(str(value))
        body.append("| " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *body]) + "\n"


def write_table(frame: pd.DataFrame, stem: Path, preamble: str = "") -> list[Path]:
    """``stem``.csv, ``stem``.md and ``stem``.html (for the HTML report), written atomically."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    html_path = stem.with_suffix(".html")
    atomic_write_text(csv_path, frame.to_csv(index=False))
    atomic_write_text(md_path, (preamble + "\n\n" if preamble else "") + to_markdown(frame))
    title = stem.name.replace("_", " ").capitalize()
    atomic_write_text(html_path, html_table_page(title, frame, preamble))
    return [csv_path, md_path, html_path]
