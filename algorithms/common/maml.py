"""The MAML policy-gradient meta-objective of MB-MPO (and, with alpha = 0, of ME-TRPO).

Inner step, per task t: L_t(theta) = -mean(log pi_theta(a|s) * A) on pre-update trajectories,
theta'_t = theta - alpha * grad L_t(theta), kept as a function of theta (second order). Outer
objective: mean over tasks of the likelihood-ratio surrogate
pi_theta'_t(a|s) / pi_theta'_t,old(a|s) * A on post-update trajectories; trust region: the mean
KL between the old and new post-update policies. All T tasks are handled in single batched
calls: theta is expanded to [T, ...] so one backward pass gives every task's own gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from algorithms.common.policy import GaussianMLPPolicy, Params


@dataclass
class PolicyBatch:
    """Flattened trajectories of T tasks: [T, M, ...] with M = trajectories x steps."""

    obs: torch.Tensor  # [T, M, obs_dim]
    act: torch.Tensor  # [T, M, act_dim]
    adv: torch.Tensor  # [T, M]
    mask: torch.Tensor  # [T, M]
    logp_old: torch.Tensor  # [T, M], log-probabilities under the sampling policy


def masked_task_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid steps, per task: [T, M] -> [T]."""
    return (x * mask).sum(-1) / mask.sum(-1).clamp_min(1)


def expand_params(params: Params, n_tasks: int) -> Params:
    """The same parameters for each of n_tasks tasks (a differentiable view)."""
    return {k: v.unsqueeze(0).expand(n_tasks, *v.shape) for k, v in params.items()}


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    pre: PolicyBatch,
    alpha: float,
    create_graph: bool,
    first_order: bool = False,
) -> Params:
    """theta'_t = theta - alpha * grad L_t(theta) for every task t, as [T, ...] parameters.

    With ``create_graph`` the result stays differentiable through the gradient (second-order
    MAML); ``first_order`` drops that term (dtheta'/dtheta = I).
    """
    expanded = expand_params(params, pre.obs.shape[0])
    logp = policy.log_prob(pre.obs, pre.act, expanded)
    inner_loss = -masked_task_mean(logp * pre.adv, pre.mask).sum()
    names = list(expanded)
    grads = torch.autograd.grad(
        inner_loss, [expanded[k] for k in names], create_graph=create_graph and not first_order
    )
    return {k: expanded[k] - alpha * g for k, g in zip(names, grads, strict=True)}


def surrogate(policy: GaussianMLPPolicy, params: Params, batch: PolicyBatch) -> torch.Tensor:
    """Mean over tasks of the likelihood-ratio surrogate on the batch."""
    ratio = torch.exp(policy.log_prob(batch.obs, batch.act, params) - batch.logp_old)
    return masked_task_mean(ratio * batch.adv, batch.mask).mean()


def mean_kl(
    policy: GaussianMLPPolicy, old: Params, new: Params, batch: PolicyBatch
) -> torch.Tensor:
    """Mean over tasks and valid steps of KL(pi_old || pi_new)."""
    return masked_task_mean(policy.kl(batch.obs, old, new), batch.mask).mean()


def detach_params(params: Params) -> Params:
    """A snapshot of ``params`` outside the graph. A copy, not a view: the TRPO line search
    writes the policy's parameters in place, and a view taken as the 'old' policy would follow
    them (its KL to the new policy would read 0 and the bound would never bite)."""
    return {k: v.detach().clone() for k, v in params.items()}


def subsample(batch: PolicyBatch, every: int) -> PolicyBatch:
    """Every n-th sample of each task (OpenAI baselines' TRPO takes every 5th for the
    Fisher-vector products)."""
    if every == 1:
        return batch
    return PolicyBatch(
        *(t[:, ::every] for t in (batch.obs, batch.act, batch.adv, batch.mask, batch.logp_old))
    )
