"""The fit-rule comparison per evaluation point, from the committed small files: each arm's
seeds (paper_return), RLlib's logged curve, the official rule's epochs per fit and the models'
loss on the next real data (``model_next_loss``: each arm's mean where all its seeds got
there, else per seed), as docs/reproduction.md shows it.

    .venv/bin/python results/reference/fitrules48k/table.py [--metric paper_return]

The official rule's arm is the reproduction's ``mbmpo_official_fit`` runs (to 48k here, then
extended to 104k) and the 10-epoch cap's its ``mbmpo_official_reward`` runs (same settings
and seeds but the fit; README.md here). Runs still in progress contribute the rows they
have; '-' marks a point a run has not reached.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[3]
CHEETAH = "halfcheetah-rllab"
ARMS = {  # column title -> run label folder
    "official rule": REPO
    / f"results/reference/reproduction/runs/reproduction/{CHEETAH}/mbmpo_official_fit",
    "<=4000 updates": REPO
    / f"results/reference/fitrules48k/runs/fitrules48k/{CHEETAH}/mbmpo_updates4000",
    "10-epoch cap": REPO
    / f"results/reference/reproduction/runs/reproduction/{CHEETAH}/mbmpo_official_reward",
}


def seeds_of(folder: Path, last_step: float) -> dict[int, pd.DataFrame]:
    """seed -> progress rows up to ``last_step`` (indexed by env_steps), for runs that have any."""
    runs = {}
    for path in sorted(folder.glob("seed*/progress.csv")):
        rows = pd.read_csv(path)
        if len(rows):
            runs[int(path.parent.name[4:])] = rows[rows.env_steps <= last_step].set_index(
                "env_steps"
            )
    return runs


def value(rows: pd.DataFrame, column: str, step: float) -> float:
    """A run's ``column`` at ``step``; NaN where it has no such row or column (yet)."""
    return rows[column].get(step, np.nan) if column in rows else np.nan


def fmt(value: float, digits: str = ".0f") -> str:
    return "-" if not np.isfinite(value) else format(value, digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metric", default="paper_return")
    parser.add_argument("--to", type=float, default=48000, help="last step shown")
    args = parser.parse_args()
    arms = {name: seeds_of(folder, args.to) for name, folder in ARMS.items()}
    arms = {name: runs for name, runs in arms.items() if runs}
    published = pd.read_csv(REPO / "benchmark/reference/published_curves.csv")
    rllib = published[published.env.str.contains("HalfCheetah")].set_index("timesteps")
    steps = sorted(set().union(*(r.index for runs in arms.values() for r in runs.values())))
    official = arms.get("official rule", {})
    head = [f"{name}: seeds {', '.join(map(str, runs))} (mean)" for name, runs in arms.items()]
    head += ["RLlib", "official rule's epochs per fit", "next-data loss: " + ", ".join(arms)]
    print("| steps | " + " | ".join(head) + " |")
    print("|" + " --- |" * (len(head) + 1))
    for step in steps:
        cells = []
        losses = []
        for runs in arms.values():
            values = [value(r, args.metric, step) for r in runs.values()]
            reached = len(values) > 1 and all(np.isfinite(values))  # mean of every seed only
            mean = f" ({int(round(np.mean(values)))})" if reached else ""
            cells.append(", ".join(fmt(v) for v in values) + mean)
            loss = [value(r, "model_next_loss", step) for r in runs.values()]
            every = all(np.isfinite(loss))
            losses.append(
                fmt(np.mean(loss), ".3g") if every else ", ".join(fmt(v, ".3g") for v in loss)
            )
        epochs = [value(r, "model_epochs", step) for r in official.values()]
        cells.append(fmt(rllib.return_mean.get(step, np.nan)))
        cells.append(", ".join(fmt(v) for v in epochs) if epochs else "-")
        cells.append(" / ".join(losses))
        print(f"| {step / 1000:g}k | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
