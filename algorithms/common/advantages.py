"""Discounted returns, the rllab linear feature baseline and GAE, batched over tasks.

Trajectory tensors are [T, N, H]: T tasks, N trajectories each, H steps; ``mask`` is 1 on
steps taken and 0 after termination. A row may also hold several episodes back to back
(imagined trajectories restarted at termination): ``ends`` is True on each episode's last
step, where returns and advantages stop, and ``episode_steps`` counts steps within an episode
for the baseline's time features. Without them a row is one episode (the results are then
bit-identical to before these arguments existed).
"""

from __future__ import annotations

import torch


def _continues(ends: torch.Tensor, t: int, like: torch.Tensor) -> torch.Tensor:
    """1 where the episode goes on after step t, 0 where it ended there (``like``'s dtype)."""
    return (~ends[..., t]).to(like)


def discounted_returns(
    rewards: torch.Tensor, mask: torch.Tensor, gamma: float, ends: torch.Tensor | None = None
) -> torch.Tensor:
    """Reward-to-go sum_k gamma^k r_{t+k}, with nothing after a trajectory's (or, with
    ``ends``, an episode's) end."""
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(rewards.shape[-1] - 1, -1, -1):
        if ends is not None:
            running = running * _continues(ends, t, running)
        running = (rewards[..., t] + gamma * running) * mask[..., t]
        out[..., t] = running
    return out


def baseline_features(obs: torch.Tensor, episode_steps: torch.Tensor | None = None) -> torch.Tensor:
    """rllab's LinearFeatureBaseline features: [o, o^2, t, t^2, t^3, 1], o clipped to +-10 and
    t = step index in the episode / 100 (the column index unless ``episode_steps`` [T, N, H]
    says otherwise). ``obs`` is [T, N, H, d]."""
    o = obs.clamp(-10, 10)
    if episode_steps is None:
        steps = torch.arange(obs.shape[-2], dtype=obs.dtype, device=obs.device) / 100.0
        t = steps.view(*([1] * (obs.dim() - 2)), -1, 1).expand(*obs.shape[:-1], 1)
    else:
        t = (episode_steps.to(obs.dtype) / 100.0).unsqueeze(-1)
    return torch.cat([o, o.square(), t, t.square(), t**3, torch.ones_like(t)], dim=-1)


def fit_linear_baseline(
    obs: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    reg: float = 1e-5,
    episode_steps: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fit one linear baseline per task on its own trajectories and return its predictions.

    Least squares with ridge ``reg`` (raised tenfold, per task, until the solution is finite),
    as rllab does; solved in float64. Returns values [T, N, H] (0 on masked steps).
    """
    n_tasks = obs.shape[0]
    feats = baseline_features(obs.double(), episode_steps) * mask.double().unsqueeze(-1)
    x = feats.reshape(n_tasks, -1, feats.shape[-1])
    y = (returns.double() * mask.double()).reshape(n_tasks, -1, 1)
    xtx, xty = x.transpose(1, 2) @ x, x.transpose(1, 2) @ y
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    coeffs = torch.full_like(xty, float("nan"))
    todo = torch.ones(n_tasks, dtype=torch.bool, device=x.device)
    for _ in range(10):
        solution = torch.linalg.solve(xtx[todo] + reg * eye, xty[todo])
        coeffs[todo] = solution
        todo = ~torch.isfinite(coeffs).all(dim=(1, 2))
        if not todo.any():
            break
        reg *= 10
    values = (feats @ coeffs.unsqueeze(1)).squeeze(-1)
    return values.to(returns.dtype) * mask


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float,
    lam: float,
    ends: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generalized advantage estimates; no bootstrap past a trajectory's (or, with ``ends``,
    an episode's) last step."""
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    horizon = rewards.shape[-1]
    for t in range(horizon - 1, -1, -1):
        next_value = values[..., t + 1] * mask[..., t + 1] if t + 1 < horizon else 0.0
        if ends is not None:
            going_on = _continues(ends, t, running)
            next_value = next_value * going_on
            running = running * going_on
        delta = rewards[..., t] + gamma * next_value - values[..., t]
        running = (delta + gamma * lam * running) * mask[..., t]
        adv[..., t] = running
    return adv


def normalize_per_task(adv: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Centre and scale advantages within each task (over its valid steps), as rllab's
    ``center_adv`` does."""
    dims = tuple(range(1, adv.dim()))
    count = mask.sum(dims, keepdim=True).clamp_min(1)
    mean = (adv * mask).sum(dims, keepdim=True) / count
    var = ((adv - mean).square() * mask).sum(dims, keepdim=True) / count
    return (adv - mean) / (var.sqrt() + eps) * mask
