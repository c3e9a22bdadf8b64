"""Fig. 2 of the paper: where the meta-learned policy is plastic, on the 2D point env.

From a finished MB-MPO run on ``point2d``: on a grid over the state space, the ensemble's
prediction std (models disagree where data is scarce) and the mean KL between the pre-update
policy and the adapted policies of the last iteration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from benchmark.rundir import RunDir, RunDirError


class _NoLogger:
    eval_every = 1


def load_algorithm(run_dir: str | Path):
    """Rebuild a run's algorithm from its config.yaml and load its checkpoint."""
    from benchmark.run import resolve_run

    run = RunDir(run_dir)
    config = run.read_config()
    checkpoint = run.load_checkpoint()
    if checkpoint is None:
        raise RunDirError(f"{run.path}: no checkpoint to analyse")
    overrides = {
        **{f"algo.{k}": v for k, v in config["algorithm"].items()},
        **{f"run.{k}": v for k, v in config["run"].items()},
        **{f"env.{k}": v for k, v in config["env"].items()},
    }
    resolved = resolve_run(
        config["algo"], config["task"], config["seed"], config["steps"], overrides
    )
    algorithm = resolved.algorithm_cls(
        resolved.task, resolved.algorithm_config, config["seed"], _NoLogger()
    )
    algorithm.load_state_dict(checkpoint["algorithm"])
    return algorithm


@torch.no_grad()
def plasticity_grid(run_dir: str | Path, n: int = 50, limit: float = 1.8) -> dict[str, np.ndarray]:
    """Ensemble prediction std and KL(pre || post) on an n x n grid over [-limit, limit]^2."""
    algorithm = load_algorithm(run_dir)
    if algorithm.task.obs_dim != 2 or algorithm.adapted is None:
        raise RunDirError(f"{run_dir}: needs an MB-MPO run on point2d with adapted policies")
    xs = np.linspace(-limit, limit, n)
    states = torch.tensor(
        [[x, y] for x in xs for y in xs], dtype=torch.float32, device=algorithm.device
    )
    params = {k: v.detach() for k, v in algorithm.policy.base_params().items()}
    actions = algorithm.policy.mean(states, params)
    predictions = algorithm.ensemble.predict(states, actions)  # [K, B, 2]
    model_std = predictions.std(0).mean(-1)
    adapted = algorithm.adapted
    n_tasks = adapted["log_std"].shape[0]
    expanded = {k: v.unsqueeze(0).expand(n_tasks, *v.shape) for k, v in params.items()}
    kl = algorithm.policy.kl(states.expand(n_tasks, -1, -1), expanded, adapted).mean(0)
    return {
        "x": xs,
        "y": xs,
        "model_std": model_std.view(n, n).cpu().numpy(),
        "kl": kl.view(n, n).cpu().numpy(),
    }
