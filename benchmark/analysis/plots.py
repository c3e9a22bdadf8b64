"""The paper's figures from the aggregated table (seaborn; PNG and PDF)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

BOOTSTRAP_SEED = 0

METRICS = {
    "return_mean": "average return (deterministic evaluation)",
    "paper_return": "average return (the paper's metric)",
}
"""Progress columns a learning-curve figure can plot, and their axis labels. ``paper_return``
is what the paper's Fig. 1 plotted per algorithm (MB-MPO: its stochastic pre-update policy;
ME-TRPO, MB-MPC: their training rollouts; model-free: the stochastic policy)."""

PUBLISHED_MARKERS = ["*", "P", "X", "D", "s", "^"]
"""Markers of published numbers in a panel, one per published row (legend entries)."""

PAPER_METRIC_NOTE = (
    "The paper's metric: MB-MPO's stochastic pre-update policy, the other model-based methods' "
    "training rollouts, the model-free methods' stochastic policy; the official plots' shift "
    "of MB-MPO by half an iteration is not applied."
)


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf; return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def learning_curves(
    table: pd.DataFrame,
    experiment: str,
    stem: Path,
    title: str = "",
    per_seed: bool = False,
    note: str = "",
    log_x: bool = True,
    metric: str = "return_mean",
    published: pd.DataFrame | None = None,
    include_unfinished: bool = False,
    published_curves: pd.DataFrame | None = None,
) -> list[Path]:
    """One panel per task: ``metric`` (a key of :data:`METRICS`) against real env steps, one
    line per algorithm with the mean over seeds and a 95% bootstrap band (or, ``per_seed``,
    one line per seed). ``published`` (``tables.published_points``) adds the published
    numbers of the same setting as labelled markers and ``published_curves``
    (``tables.published_curve_points``) the published learning curves as dashed black
    reference lines; ``include_unfinished`` also draws runs still in progress (a long
    reference run), which the title then says."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from: {', '.join(METRICS)}")
    statuses = ["done", "running"] if include_unfinished else ["done"]
    done = table[(table["experiment"] == experiment) & table["status"].isin(statuses)]
    if metric not in done.columns:
        raise ValueError(f"experiment {experiment!r}: no run logged {metric!r}")
    data = done.dropna(subset=["env_steps", metric])
    if data.empty:
        raise ValueError(f"experiment {experiment!r}: no finished runs to plot")
    if metric == "paper_return":
        note = f"{note} {PAPER_METRIC_NOTE}".strip()
    tasks = sorted(data["task"].unique())
    width = max(7.0, 4.2 * len(tasks))
    fig, axes = plt.subplots(1, len(tasks), figsize=(width, 3.4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        sub = data[data["task"] == task]
        if per_seed:
            sns.lineplot(
                sub,
                x="env_steps",
                y=metric,
                hue="algo",
                style="seed",
                ax=ax,
                errorbar=None,
                marker="o",
                markersize=3,
            )
        else:
            sns.lineplot(
                sub,
                x="env_steps",
                y=metric,
                hue="algo",
                ax=ax,
                errorbar=("ci", 95),
                n_boot=1000,
                seed=BOOTSTRAP_SEED,
                marker="o",
                markersize=3,
            )
        if published is not None:
            refs = published[published["task"] == task]
            # A published number once, however many run labels of its algorithm it matches.
            by_algorithm = refs.groupby(["timesteps", "return_mean", "source"], sort=False)
            for i, (steps, value, source) in enumerate(by_algorithm.groups):
                ax.plot(
                    steps,
                    value,
                    PUBLISHED_MARKERS[i % len(PUBLISHED_MARKERS)],
                    color="black",
                    markersize=8,
                    linestyle="none",
                    label=f"published: {value:.0f} ({source})",
                )
        if published_curves is not None:
            curves = published_curves[published_curves["task"] == task]
            # Only the stretch of the curve the runs cover: the panel stays on their steps.
            curves = curves[curves["timesteps"] <= sub["env_steps"].max() * 1.25]
            # One line per published curve, however many run labels it belongs beside.
            for source, curve in curves.groupby("source", sort=True):
                curve = curve[curve["algo"] == curve["algo"].iloc[0]]
                ax.plot(
                    curve["timesteps"],
                    curve["return_mean"],
                    linestyle="--",
                    color="black",
                    linewidth=1.2,
                    label=f"published curve ({source})",
                )
        if log_x and sub["env_steps"].min() > 0:
            ax.set_xscale("log")
        seeds = sub.groupby("algo")["seed"].nunique()
        ax.set_title(
            f"{task} ({', '.join(f'{a}: {n}' for a, n in seeds.items())} seed"
            f"{'' if seeds.max() == 1 else 's'})",
            fontsize=9,
        )
        ax.set_xlabel("real environment steps" + (" (log scale)" if log_x else ""))
        ax.set_ylabel(METRICS[metric])
        ax.grid(alpha=0.3)
        if ax.get_legend() is not None:
            ax.get_legend().remove()  # one legend for the figure, beside the panels (below)
    band = "one line per seed" if per_seed else "mean over seeds, shaded: 95% bootstrap CI"
    if include_unfinished and (data["status"] != "done").any():
        band += " (includes runs still in progress)"
    chars_per_line = int(width * 15)  # keep title and note within the figure's width
    fig.suptitle(textwrap.fill(f"{title or experiment} — {band}", chars_per_line), fontsize=10)
    if note:
        wrapped = textwrap.fill(note, int(chars_per_line * 1.2))
        fig.text(0.5, -0.02, wrapped, ha="center", va="top", fontsize=8, style="italic")
    fig.tight_layout()
    entries: dict[str, object] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    fig.legend(
        list(entries.values()),
        list(entries),
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7,
        frameon=False,
    )
    return save(fig, stem)


def aggregate_figure(
    table: pd.DataFrame,
    experiment: str,
    stem: Path,
    title: str = "",
    note: str = "",
    metric: str = "return_mean",
    at: float | None = None,
) -> list[Path]:
    """Across the experiment's tasks, as rliable draws them: the IQM and the mean of normalized
    scores per algorithm with stratified bootstrap 95% intervals, and performance profiles
    (share of runs above each normalized score, 95% band), from the statistics ``mbbench
    compare`` uses (``benchmark.analysis.stats``). Needs two or more tasks."""
    from benchmark.analysis.stats import (
        aggregate_scores,
        aggregate_with_ci,
        iqm,
        performance_profile,
    )

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from: {', '.join(METRICS)}")
    runs = table[(table["experiment"] == experiment) & (table["status"] == "done")]
    tasks = sorted(runs["task"].unique())
    if len(tasks) < 2:
        raise ValueError(f"experiment {experiment!r}: an aggregate needs 2+ tasks, got {tasks}")
    algos = sorted(runs["algo"].unique())
    scores = aggregate_scores(runs, algos, tasks, at, metric)
    colors = dict(zip(algos, sns.color_palette(n_colors=len(algos)), strict=True))
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.9 + 0.45 * len(algos) + 2.2))
    for ax, (name, statistic) in zip(axes[:2], (("IQM", iqm), ("Mean", np.mean)), strict=True):
        for row, algo in enumerate(algos):
            estimate, (low, high) = aggregate_with_ci(scores.normalized[algo], statistic)
            ax.barh(row, high - low, left=low, height=0.6, color=colors[algo], alpha=0.75)
            ax.plot([estimate, estimate], [row - 0.3, row + 0.3], color="black", linewidth=2)
        ax.set_yticks(range(len(algos)), algos)
        ax.set_xlabel(f"{name} of normalized score")
        ax.grid(axis="x", alpha=0.3)
    taus = np.linspace(
        min(min(x.min() for x in s.values()) for s in scores.normalized.values()) - 0.05,
        max(max(x.max() for x in s.values()) for s in scores.normalized.values()) + 0.05,
        101,
    )
    ax = axes[2]
    for algo in algos:
        point, low, high = performance_profile(scores.normalized[algo], taus)
        ax.plot(taus, point, color=colors[algo], label=algo)
        ax.fill_between(taus, low, high, color=colors[algo], alpha=0.2)
    ax.set_xlabel("normalized score tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    where = f"at {at:g} steps" if at is not None else "final"
    seeds = runs.groupby("algo")["seed"].nunique()
    heading = (
        f"{title or experiment}: {len(tasks)} tasks, {where} {METRICS[metric]}; "
        f"bars: 95% stratified bootstrap CI, line: point estimate "
        f"({', '.join(f'{a}: {n}' for a, n in seeds.items())} seeds per task)"
    )
    fig.suptitle(textwrap.fill(heading, 180), fontsize=10)
    caption = f"Normalized score: {scores.normalization}. {note}".strip()
    fig.text(0.5, -0.02, textwrap.fill(caption, 200), ha="center", va="top", fontsize=8)
    fig.tight_layout()
    return save(fig, stem)


def plasticity_heatmaps(grid: dict[str, np.ndarray], stem: Path, note: str = "") -> list[Path]:
    """Fig. 2: the ensemble's prediction std and KL(pre || post-update policy) over the 2D
    point env's state space."""
    extent = [grid["x"][0], grid["x"][-1], grid["y"][0], grid["y"][-1]]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for ax, key, label, title in (
        (axes[0], "model_std", "std of the models' predictions", "ensemble disagreement"),
        (axes[1], "kl", "KL(pre-update || post-update policy)", "policy plasticity"),
    ):
        image = ax.imshow(
            grid[key].T, origin="lower", extent=extent, cmap="viridis", aspect="equal"
        )
        fig.colorbar(image, ax=ax, label=label)
        ax.plot(0, 0, "r*", markersize=10, label="goal")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("Policy plasticity on the 2D point env (Fig. 2)", fontsize=10)
    if note:
        fig.text(0.5, -0.02, note, ha="center", fontsize=8, style="italic")
    fig.tight_layout()
    return save(fig, stem)
