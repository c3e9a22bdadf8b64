"""One model fit from a run's checkpoint, with other fit settings: what the fit gives the models.

From a run's checkpoint at S steps: add the real transitions of the next iteration
(S..S+4000, read from a later checkpoint of the same run), fit as the run's next iteration
would (warm start from the checkpoint's models) with each variant's settings, and score the
held-out loss and the loss on the iteration after (S+4000..S+8000: the ``model_next_loss``
that iteration would log). Variants run interleaved, one ensemble seed (``rep``) at a time,
so that a partial CSV holds paired rows; rows already in OUT_CSV are kept and skipped, so an
interrupted experiment resumes.

    python refit.py SNAPSHOT_RUN_DIR LATER_CHECKPOINT OUT_CSV --reps 3 \
        --variant reshuffled:model_batches=reshuffled --variant fixed:model_batches=fixed

SNAPSHOT_RUN_DIR holds the run's config.yaml, meta.json, progress.csv and its checkpoint at S
steps; LATER_CHECKPOINT is a checkpoint of the same run at S+8000 steps or more (its buffer
holds the transitions of both iterations). A variant is NAME:KEY=VALUE[,KEY=VALUE...], the
keys being the algorithm's settings (values read as ``--set`` reads them).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch

from algorithms.common.model_based import fit_ensemble
from benchmark.config import parse_assignments
from benchmark.run import load_run_algorithm


def parse_variant(text: str) -> tuple[str, dict]:
    """``NAME:KEY=VALUE[,KEY=VALUE...]`` -> (NAME, settings)."""
    name, sep, settings = text.partition(":")
    if not sep or not name:
        raise SystemExit(f"--variant expects NAME:KEY=VALUE[,KEY=VALUE], got {text!r}")
    return name, parse_assignments(settings.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("snapshot")
    parser.add_argument("later")
    parser.add_argument("out")
    parser.add_argument("--variant", action="append", required=True, type=parse_variant)
    parser.add_argument("--reps", type=int, default=3, help="ensemble seeds per variant")
    args = parser.parse_args()
    torch.set_num_threads(1)
    later = torch.load(args.later, weights_only=False)
    buffer = later["algorithm"]["buffer"]
    first = later["env_steps"] - buffer["obs"].shape[0]  # the real step of its first row
    out = Path(args.out)
    rows = pd.read_csv(out).to_dict("records") if out.exists() else []
    done = {(row["variant"], row["rep"]) for row in rows}
    for rep in range(args.reps):
        for name, settings in args.variant:
            if (name, rep) in done:
                continue
            algorithm = load_run_algorithm(args.snapshot, settings)
            steps = algorithm.env_steps
            if later["env_steps"] < steps + 8000:
                raise SystemExit(
                    f"{args.later}: at {later['env_steps']} steps, need {steps + 8000}"
                )
            new = slice(steps - first, steps + 4000 - first)
            after = slice(steps + 4000 - first, steps + 8000 - first)
            algorithm.buffer.add(*(buffer[k][new].numpy() for k in ("obs", "act", "next_obs")))
            algorithm.ensemble.generator.manual_seed(1000 + rep)
            fit = fit_ensemble(algorithm.ensemble, algorithm.buffer)
            next_loss = algorithm.ensemble.loss(
                *(buffer[k][after] for k in ("obs", "act", "next_obs"))
            )
            rows.append(
                {"from_steps": steps, "variant": name, "rep": rep, **fit, "next_loss": next_loss}
            )
            print(rows[-1], flush=True)
            pd.DataFrame(rows).to_csv(out.with_suffix(".tmp"), index=False)
            out.with_suffix(".tmp").replace(out)


if __name__ == "__main__":
    main()
