"""Imagined rollouts: many policies, many trajectories, all models, one batched call per
time step.

On the CPU the trajectories are split into one shard per torch thread, and each shard rolls
out its whole horizon on its own core with single-threaded torch ops (the ops release the
GIL). On the project's 2-core machine that is ~1.2x faster than letting every op split its
work over both cores: the per-model matmuls of an imagined step are small (a few hundred
rows), and the small ops between them (policy, reward, masking) do not parallelize at all
(docs/performance.md). All random numbers of a rollout are drawn up front, so the
trajectories do not depend on how many shards ran or in which order they finished.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import torch

from algorithms.common.ensemble import FrozenEnsemble

PolicyStep = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(obs [T, N, obs_dim], standard normal noise [T, N, act_dim]) -> (actions [T, N, act_dim],
log-probs [T, N]); T policies, N observations each. The noise makes the policy's draw."""


@dataclass
class Trajectories:
    """A batch of T x N rows of H steps each.

    Masked (the default): a row is one trajectory; ``mask`` is 1 for steps taken before (and
    including) termination, 0 after; rewards after termination are 0. Restarted
    (``restart_states``): a terminated episode is followed at once by a new one from a fresh
    start state, so every row holds H real samples (``mask`` all 1); ``ends`` marks each
    episode's last step and ``episode_steps`` counts steps within the episode.
    """

    obs: torch.Tensor  # [T, N, H, obs_dim]
    actions: torch.Tensor  # [T, N, H, act_dim]
    rewards: torch.Tensor  # [T, N, H]
    log_probs: torch.Tensor  # [T, N, H]
    mask: torch.Tensor  # [T, N, H]
    ends: torch.Tensor | None = None  # [T, N, H] bool; restarted rows only
    episode_steps: torch.Tensor | None = None  # [T, N, H] long; restarted rows only

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each row, [T, N] (restarted: of its H steps, which may
        span several episodes)."""
        return self.rewards.sum(-1)


def imagine(
    ensemble: FrozenEnsemble,
    policy_step: PolicyStep,
    start_obs: torch.Tensor,
    horizon: int,
    reward_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    termination_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    model_assignment: Literal["task", "random_step"] = "task",
    generator: torch.Generator | None = None,
    num_shards: int | None = None,
    restart_states: torch.Tensor | None = None,
) -> Trajectories:
    """Roll T policies out in the ensemble, N trajectories each, for ``horizon`` steps.

    ``restart_states`` [P, obs_dim]: a trajectory that terminates goes on from one of these
    states, drawn uniformly (the official code's sampler resets terminated imagined paths until
    its batch is full); without it, steps after termination are masked.

    ``model_assignment="task"``: the T tasks are split into K contiguous groups, group k uses
    model k throughout (T must be a multiple of K; MB-MPO's meta-tasks). ``"random_step"``:
    every trajectory draws a random model at every step (Kurutach et al.'s ME-TRPO).

    ``generator`` draws the policy noise and the model choices; the noisy-model ablation's
    noise comes from the ensemble's own generator. ``num_shards``: how many groups of
    trajectories run in parallel threads (default: torch's thread count on the CPU, 1 on
    other devices); results agree across shard counts up to float rounding.
    """
    n_tasks, n_traj, obs_dim = start_obs.shape
    k, act_dim = ensemble.num_models, ensemble.act_dim
    if model_assignment not in ("task", "random_step"):
        raise ValueError(f"unknown model_assignment {model_assignment!r}")
    if model_assignment == "task" and n_tasks % k:
        raise ValueError(f"{n_tasks} tasks cannot be split evenly over {k} models")
    device, dtype = start_obs.device, start_obs.dtype
    if num_shards is None:
        num_shards = torch.get_num_threads() if device.type == "cpu" else 1
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")

    # Every random number up front, from the generators, in one fixed order.
    act_noise = torch.randn(horizon, n_tasks, n_traj, act_dim, generator=generator).to(device)
    model_ids = (
        torch.randint(k, (horizon, n_tasks, n_traj), generator=generator).to(device)
        if model_assignment == "random_step"
        else None
    )
    model_noise = (
        torch.randn(horizon, n_tasks, n_traj, obs_dim, generator=ensemble.generator).to(device)
        if ensemble.perturbation_noise
        else None
    )
    restart = restart_states is not None
    restart_ids = (
        torch.randint(len(restart_states), (horizon, n_tasks, n_traj), generator=generator).to(
            device
        )
        if restart
        else None
    )

    out = Trajectories(
        obs=torch.empty(n_tasks, n_traj, horizon, obs_dim, device=device, dtype=dtype),
        actions=torch.empty(n_tasks, n_traj, horizon, act_dim, device=device, dtype=dtype),
        rewards=torch.empty(n_tasks, n_traj, horizon, device=device, dtype=dtype),
        log_probs=torch.empty(n_tasks, n_traj, horizon, device=device, dtype=dtype),
        mask=torch.empty(n_tasks, n_traj, horizon, device=device, dtype=dtype),
    )
    if restart:
        out.ends = torch.empty(n_tasks, n_traj, horizon, device=device, dtype=torch.bool)
        out.episode_steps = torch.empty(n_tasks, n_traj, horizon, device=device, dtype=torch.long)

    def roll_shard(shard: slice, single_threaded: bool) -> None:
        """Trajectories ``shard`` of every task, all steps; writes into ``out``."""
        if single_threaded:
            torch.set_num_threads(1)  # OpenMP's thread count is per thread: set it here
        with torch.no_grad():  # grad mode is per thread
            obs = start_obs[:, shard].contiguous()
            alive = torch.ones(obs.shape[:2], dtype=torch.bool, device=device)
            ones = torch.ones(obs.shape[:2], device=device, dtype=dtype)
            everyone_alive = True
            episode_step = torch.zeros(obs.shape[:2], dtype=torch.long, device=device)
            steps: list[tuple[torch.Tensor, ...]] = []
            for t in range(horizon):
                act, logp = policy_step(obs, act_noise[t, :, shard])
                noise = None if model_noise is None else model_noise[t, :, shard]
                if model_ids is None:
                    next_obs = ensemble.predict_grouped(
                        obs.view(k, -1, obs_dim),
                        act.reshape(k, -1, act_dim),
                        None if noise is None else noise.reshape(k, -1, obs_dim),
                    ).view_as(obs)
                else:
                    next_obs = ensemble.predict_assigned(
                        obs.view(-1, obs_dim),
                        act.reshape(-1, act_dim),
                        model_ids[t, :, shard].reshape(-1),
                        None if noise is None else noise.reshape(-1, obs_dim),
                    ).view_as(obs)
                reward = reward_fn(obs, act, next_obs)
                done = termination_fn(obs, act, next_obs)
                if restart:
                    assert restart_states is not None and restart_ids is not None
                    steps.append((obs, act, reward, logp, ones, done, episode_step))
                    if bool(done.any()):
                        fresh = restart_states[restart_ids[t, :, shard]].to(dtype)
                        obs = torch.where(done.unsqueeze(-1), fresh, next_obs)
                        episode_step = torch.where(done, 0, episode_step + 1)
                    else:
                        obs, episode_step = next_obs, episode_step + 1
                    continue
                if everyone_alive:
                    mask = ones  # no masking work while nothing has terminated
                else:
                    mask = alive.to(dtype)
                    reward = reward * mask
                steps.append((obs, act, reward, logp, mask))
                if everyone_alive and not bool(done.any()):
                    obs = next_obs
                    continue
                everyone_alive = False
                alive &= ~done
                obs = torch.where(alive.unsqueeze(-1), next_obs, obs)
            # One copy per field at the end instead of five strided writes per step.
            fields = [out.obs, out.actions, out.rewards, out.log_probs, out.mask]
            if restart:
                fields += [out.ends, out.episode_steps]
            for field, values in zip(fields, zip(*steps, strict=True), strict=True):
                field[:, shard] = torch.stack(values, 2)

    bounds = torch.linspace(0, n_traj, min(num_shards, n_traj) + 1).round().long().tolist()
    shards = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if len(shards) == 1:
        roll_shard(shards[0], single_threaded=False)
        return out
    threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(len(shards), thread_name_prefix="imagine") as pool:
            for job in [pool.submit(roll_shard, s, True) for s in shards]:
                job.result()
    finally:
        torch.set_num_threads(threads)  # the workers' setting also reaches MKL's global one
    return out
