"""Imagined rollouts: many policies, many trajectories, all models, one call per time step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from algorithms.common.ensemble import FrozenEnsemble

PolicyStep = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""obs [T, N, obs_dim] -> (actions [T, N, act_dim], log-probs [T, N]); T policies, N each."""


@dataclass
class Trajectories:
    """A batch of T x N trajectories of length H. ``mask`` is 1 for steps taken before (and
    including) termination, 0 after; rewards after termination are 0."""

    obs: torch.Tensor  # [T, N, H, obs_dim]
    actions: torch.Tensor  # [T, N, H, act_dim]
    rewards: torch.Tensor  # [T, N, H]
    log_probs: torch.Tensor  # [T, N, H]
    mask: torch.Tensor  # [T, N, H]

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each trajectory, [T, N]."""
        return self.rewards.sum(-1)


@torch.no_grad()
def imagine(
    ensemble: FrozenEnsemble,
    policy_step: PolicyStep,
    start_obs: torch.Tensor,
    horizon: int,
    reward_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    termination_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    model_assignment: Literal["task", "random_step"] = "task",
    generator: torch.Generator | None = None,
) -> Trajectories:
    """Roll T policies out in the ensemble, N trajectories each, for ``horizon`` steps.

    ``model_assignment="task"``: the T tasks are split into K contiguous groups, group k uses
    model k throughout (T must be a multiple of K; MB-MPO's meta-tasks). ``"random_step"``:
    every trajectory draws a random model at every step (Kurutach et al.'s ME-TRPO).
    """
    n_tasks, n_traj, obs_dim = start_obs.shape
    k = ensemble.num_models
    if model_assignment == "task" and n_tasks % k:
        raise ValueError(f"{n_tasks} tasks cannot be split evenly over {k} models")
    obs = start_obs.contiguous()
    all_obs, all_act, all_rew, all_logp, all_mask = [], [], [], [], []
    alive = torch.ones(n_tasks, n_traj, dtype=torch.bool, device=obs.device)
    for _ in range(horizon):
        act, logp = policy_step(obs)
        if model_assignment == "task":
            next_obs = ensemble.predict_grouped(
                obs.view(k, -1, obs_dim), act.reshape(k, -1, act.shape[-1])
            ).view_as(obs)
        else:
            ids = torch.randint(k, (n_tasks * n_traj,), generator=generator).to(obs.device)
            next_obs = ensemble.predict_assigned(
                obs.reshape(-1, obs_dim), act.reshape(-1, act.shape[-1]), ids
            ).view_as(obs)
        reward = reward_fn(obs, act, next_obs)
        done = termination_fn(obs, act, next_obs)
        mask = alive.to(obs.dtype)
        all_obs.append(obs)
        all_act.append(act)
        all_rew.append(reward * mask)
        all_logp.append(logp)
        all_mask.append(mask)
        alive = alive & ~done
        obs = torch.where(alive.unsqueeze(-1), next_obs, obs)
    return Trajectories(
        torch.stack(all_obs, 2),
        torch.stack(all_act, 2),
        torch.stack(all_rew, 2),
        torch.stack(all_logp, 2),
        torch.stack(all_mask, 2),
    )
