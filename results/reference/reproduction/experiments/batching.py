"""Effect of the model minibatching ('reshuffled' against the official 'fixed') on one fit.

From a run's checkpoint at S steps: add the real transitions of the next iteration
(S..S+4000, read from a later checkpoint of the same run), fit as the run would (warm start,
its epoch cap) with each batching, three ensemble seeds each, and score the held-out loss and
the loss on the iteration after (S+4000..S+8000), the run's ``model_next_loss`` of that row.

    python batching.py SNAPSHOT_RUN_DIR LATER_CHECKPOINT OUT_CSV

SNAPSHOT_RUN_DIR holds the run's config.yaml, meta.json, progress.csv and its checkpoint at S
steps; LATER_CHECKPOINT is a checkpoint of the same run at S+8000 steps or more (its buffer
holds the transitions of both iterations).
"""

from __future__ import annotations

import sys

import pandas as pd
import torch

from algorithms.common.model_based import fit_ensemble
from benchmark.run import load_run_algorithm


def main(snapshot: str, later_path: str, out: str) -> None:
    torch.set_num_threads(1)
    later = torch.load(later_path, weights_only=False)
    buffer = later["algorithm"]["buffer"]
    first = later["env_steps"] - buffer["obs"].shape[0]  # the real step of its first row
    rows = []
    for batches in ("reshuffled", "fixed"):
        for rep in range(3):
            algorithm = load_run_algorithm(snapshot, {"model_batches": batches})
            steps = algorithm.env_steps
            new = slice(steps - first, steps + 4000 - first)
            after = slice(steps + 4000 - first, steps + 8000 - first)
            algorithm.buffer.add(*(buffer[k][new].numpy() for k in ("obs", "act", "next_obs")))
            algorithm.ensemble.generator.manual_seed(1000 + rep)
            fit = fit_ensemble(algorithm.ensemble, algorithm.buffer)
            next_loss = algorithm.ensemble.loss(
                *(buffer[k][after] for k in ("obs", "act", "next_obs"))
            )
            rows.append(
                {"from_steps": steps, "batches": batches, "rep": rep, **fit, "next_loss": next_loss}
            )
            print(rows[-1], flush=True)
            pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
