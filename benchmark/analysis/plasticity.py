"""Fig. 2 of the paper: where the meta-learned policy is plastic, on the 2D point env.

From a finished MB-MPO run on ``point2d``, restored from its checkpoint by the harness
(:func:`benchmark.run.load_run_algorithm`): on a grid over the state space, the ensemble's
prediction std (models disagree where data is scarce) and the mean KL between the pre-update
policy and the adapted policies of the last iteration.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmark.errors import RunDirError


@torch.no_grad()
def plasticity_grid(algorithm: Any, n: int = 50, limit: float = 1.8) -> dict[str, np.ndarray]:
    """Ensemble prediction std and KL(pre || post) on an n x n grid over [-limit, limit]^2,
    for a trained MB-MPO ``algorithm`` on a 2-d task, with adapted policies."""
    if algorithm.task.obs_dim != 2 or getattr(algorithm, "adapted", None) is None:
        raise RunDirError("plasticity maps need an MB-MPO run on point2d with adapted policies")
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
