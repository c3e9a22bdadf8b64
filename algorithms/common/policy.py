"""Gaussian MLP policy with a state-independent log-std, written functionally.

Parameters are a dict of tensors. Without a leading task dimension they are one policy; with
one (``[T, ...]``) they are T policies, e.g. the T adapted policies of MB-MPO, evaluated in a
single batched call on observations of shape ``[T, N, obs_dim]``. Being plain tensors, adapted
parameters can stay functions of the meta-parameters (second-order MAML).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from algorithms.common.nets import mlp_forward, xavier_uniform

Params = dict[str, torch.Tensor]
LOG_2PI = math.log(2 * math.pi)


class GaussianMLPPolicy(nn.Module):
    """pi(a|s) = N(mu(s), diag(exp(log_std))^2), mu an MLP with tanh hidden layers.

    ``input_dims`` selects the observation dimensions the policy sees (absolute positions are
    left out). Weights: Xavier uniform, zero biases, log-std initialised to log(init_std).
    ``min_std`` floors the standard deviation where it is used, ``max(log_std, log(min_std))``,
    as the official policy class does (its default 1e-6 never binds in practice); below the
    floor the log-std parameter gets no gradient.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: tuple[int, ...] = (32, 32),
        init_std: float = 1.0,
        input_dims: list[int] | None = None,
        generator: torch.Generator | None = None,
        min_std: float = 1e-6,
    ) -> None:
        super().__init__()
        if not 0 < min_std <= init_std:
            raise ValueError(f"min_std must be in (0, init_std={init_std}], got {min_std}")
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.min_log_std = math.log(min_std)
        self.register_buffer(
            "input_dims",
            torch.as_tensor(input_dims if input_dims is not None else range(obs_dim)),
        )
        dims = self.input_dims.tolist()
        # A contiguous range of dimensions is a view, not a gather: cheaper in rollouts.
        contiguous = dims == list(range(dims[0], dims[0] + len(dims))) if dims else False
        self._input_slice = slice(dims[0], dims[0] + len(dims)) if contiguous else None
        sizes = [len(self.input_dims), *hidden_sizes, act_dim]
        self.n_layers = len(sizes) - 1
        self.params = nn.ParameterDict()
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            self.params[f"w{i}"] = nn.Parameter(xavier_uniform(n_in, n_out, generator))
            self.params[f"b{i}"] = nn.Parameter(torch.zeros(n_out))
        self.params["log_std"] = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def base_params(self) -> Params:
        return dict(self.params)

    def mean(self, obs: torch.Tensor, params: Params) -> torch.Tensor:
        """Action means; obs [..., obs_dim] (with [T, N, obs_dim] for task-batched params)."""
        h = obs[..., self._input_slice] if self._input_slice else obs[..., self.input_dims]
        layers = range(self.n_layers)
        weights, biases = [params[f"w{i}"] for i in layers], [params[f"b{i}"] for i in layers]
        return mlp_forward(h, weights, biases, torch.tanh)

    def _floored_log_std(self, params: Params) -> torch.Tensor:
        """The log-std in use: the parameter, floored at log(min_std)."""
        return params["log_std"].clamp_min(self.min_log_std)

    def _log_std(self, params: Params, like: torch.Tensor) -> torch.Tensor:
        log_std = self._floored_log_std(params)
        return log_std.unsqueeze(-2) if log_std.dim() > 1 else log_std

    @torch.no_grad()
    def std(self, params: Params | None = None) -> torch.Tensor:
        """The standard deviations in use (the floor applied), per action dimension."""
        return self._floored_log_std(self.base_params() if params is None else params).exp()

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor, params: Params) -> torch.Tensor:
        """log pi(act | obs), summed over action dimensions."""
        mean = self.mean(obs, params)
        log_std = self._log_std(params, mean)
        z = (act - mean) * torch.exp(-log_std)
        return -0.5 * (z.square() + LOG_2PI).sum(-1) - log_std.sum(-1).expand(z.shape[:-1])

    @torch.no_grad()
    def sample(
        self,
        obs: torch.Tensor,
        params: Params,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions drawn from the policy and their log-probabilities.

        ``noise``: the standard normal draws (shape of the actions) to use instead of drawing
        them from ``generator``; lets a caller draw all of a rollout's noise at once.
        """
        mean = self.mean(obs, params)
        log_std = self._log_std(params, mean)
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator)
        eps = noise.to(mean)
        act = torch.addcmul(mean, torch.exp(log_std), eps)
        # log N(act; mean, std) = -|eps|^2 / 2 - sum(log_std) - d/2 log(2 pi); few ops, as
        # this runs at every imagined step.
        logp = eps.square().sum(-1).mul_(-0.5).sub_(log_std.sum(-1) + 0.5 * LOG_2PI * eps.shape[-1])
        return act, logp

    def kl(self, obs: torch.Tensor, old: Params, new: Params) -> torch.Tensor:
        """KL(pi_old || pi_new) per observation, summed over action dimensions."""
        mean_old, mean_new = self.mean(obs, old), self.mean(obs, new)
        ls_old, ls_new = self._log_std(old, mean_old), self._log_std(new, mean_new)
        var_old, var_new = torch.exp(2 * ls_old), torch.exp(2 * ls_new)
        kl = ls_new - ls_old + (var_old + (mean_old - mean_new).square()) / (2 * var_new) - 0.5
        return kl.sum(-1)
