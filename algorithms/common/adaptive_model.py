"""Dynamics models that adapt online to the last M transitions (GrBAL and ReBAL, Nagabandi,
Clavera et al., ICLR 2019), their data and their meta-training.

Both are trained on windows of M past and K future transitions of one episode (M and K are
separate settings): the model is adapted on the M past transitions and scored on predicting
the K future ones, so it learns to be adapted.

- :class:`GradientAdaptiveModel` (GrBAL): an MLP adapted by one gradient step of size psi
  (fixed, or learned per layer) on the past transitions' loss; meta-trained through that
  step (second order by default), as MAML.
- :class:`RecurrentAdaptiveModel` (ReBAL): a GRU reads the past transitions; its final
  hidden state conditions an MLP. The adaptation is the recurrence itself.

Inputs (the observation without absolute positions, and the action) and targets (the
change of the full observation) are z-scored with statistics recomputed at every fit, as in
the official code. ``adapted_predictor`` returns the adapted model as a batched function
``(obs, act) -> next_obs`` for the planner.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn

from algorithms.common.nets import Normalizer, mlp_forward, xavier_uniform
from algorithms.common.planning import Predictor


class AdaptiveModel(nn.Module, ABC):
    """What GrBAL and ReBAL share: normalization and the (past, future) window losses."""

    train_on_shorter_pasts = False
    """Meta-train on pasts of random length 1..M too, not only M."""

    def __init__(self, obs_dim: int, act_dim: int, input_dims: list[int]) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.input_dims = list(input_dims)
        self.input_dim = len(self.input_dims) + act_dim
        self.normalizer = Normalizer.identity(self.input_dim, obs_dim)

    def fit_normalizer(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> None:
        self.normalizer = Normalizer.fit(
            self.model_input(obs, act, normalize=False), next_obs - obs, std_eps=1e-8
        )

    def model_input(
        self, obs: torch.Tensor, act: torch.Tensor, normalize: bool = True
    ) -> torch.Tensor:
        x = torch.cat([obs[..., self.input_dims], act], dim=-1)
        return self.normalizer.inputs(x) if normalize else x

    def target(self, obs: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return self.normalizer.delta(next_obs - obs)

    def next_obs(self, obs: torch.Tensor, normalized_delta: torch.Tensor) -> torch.Tensor:
        n = self.normalizer
        return obs + n.delta_mean.to(obs) + n.delta_std.to(obs) * normalized_delta

    def normalized(
        self, transitions: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs and targets of (obs, act, next_obs)."""
        obs, act, next_obs = transitions
        return self.model_input(obs, act), self.target(obs, next_obs)

    @abstractmethod
    def window_losses(
        self, past: tuple[torch.Tensor, ...], future: tuple[torch.Tensor, ...], create_graph: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared error (normalized deltas) on the future transitions before and after
        adapting on the past ones; windows are batched along dimension 0."""

    @abstractmethod
    def adapted_predictor(self, past: tuple[torch.Tensor, ...] | None) -> Predictor:
        """The model adapted on ``past`` = (obs, act, next_obs) of shape [L, dim] (None or
        L = 0: not adapted), as ``(obs [N, d], act [N, a]) -> next_obs [N, d]``."""


class GradientAdaptiveModel(AdaptiveModel):
    """GrBAL's model: an MLP whose parameters take one gradient step on the past loss."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        input_dims: list[int],
        hidden_sizes: tuple[int, ...],
        inner_lr: float,
        learn_inner_lr: bool,
        first_order: bool,
        generator: torch.Generator,
    ) -> None:
        super().__init__(obs_dim, act_dim, input_dims)
        sizes = [self.input_dim, *hidden_sizes, obs_dim]
        self.weights = nn.ParameterList(
            [
                nn.Parameter(xavier_uniform(a, b, generator))
                for a, b in zip(sizes, sizes[1:], strict=False)
            ]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(b)) for b in sizes[1:]])
        # One step size per parameter tensor, stored as a log so it stays positive.
        log_lr = torch.full((2 * len(self.weights),), math.log(inner_lr))
        self.log_inner_lr = nn.Parameter(log_lr, requires_grad=learn_inner_lr)
        self.first_order = first_order

    def params(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    @staticmethod
    def forward_with(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """MLP forward. Parameters may carry a leading batch dimension (one set per window);
        then ``x`` is [B, n, in]."""
        n_layers = len(params) // 2
        return mlp_forward(x, params[:n_layers], params[n_layers:], torch.relu)

    def _adapt(
        self, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, create_graph: bool
    ) -> list[torch.Tensor]:
        loss = (self.forward_with(params, x) - y).square().mean(dim=(-2, -1)).sum()
        grads = torch.autograd.grad(loss, params, create_graph=create_graph)
        lrs = self.log_inner_lr.exp()
        return [p - lr * g for p, lr, g in zip(params, lrs, grads, strict=True)]

    def window_losses(self, past, future, create_graph):
        x_past, y_past = self.normalized(past)
        x_fut, y_fut = self.normalized(future)
        batch = x_past.shape[0]
        # theta expanded to one copy per window: one backward gives every window's gradient.
        expanded = [p.unsqueeze(0).expand(batch, *p.shape) for p in self.params()]
        pre = (self.forward_with(expanded, x_fut) - y_fut).square().mean()
        if x_past.shape[1] == 0:
            return pre, pre
        # First order: the inner gradient is a constant, so d(post)/d(theta) skips its Hessian.
        second_order = create_graph and not self.first_order
        adapted = self._adapt(expanded, x_past, y_past, create_graph=second_order)
        post = (self.forward_with(adapted, x_fut) - y_fut).square().mean()
        return pre, post

    def adapted_predictor(self, past):
        params = [p.detach() for p in self.params()]
        if past is not None and past[0].shape[0] > 0:
            with torch.enable_grad():
                leaves = [p.clone().requires_grad_(True) for p in params]
                x, y = self.normalized(past)
                params = [p.detach() for p in self._adapt(leaves, x, y, create_graph=False)]

        def predict(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
            return self.next_obs(obs, self.forward_with(params, self.model_input(obs, act)))

        return predict


class RecurrentAdaptiveModel(AdaptiveModel):
    """ReBAL's model: a GRU over the past transitions (normalized input and delta); its last
    hidden state (zeros when there is no past) conditions an MLP predicting the delta."""

    train_on_shorter_pasts = True
    """At the start of an episode fewer than M transitions exist: train on such pasts too."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        input_dims: list[int],
        hidden_sizes: tuple[int, ...],
        recurrent_size: int,
        generator: torch.Generator,
    ) -> None:
        super().__init__(obs_dim, act_dim, input_dims)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
            self.gru = nn.GRU(self.input_dim + obs_dim, recurrent_size, batch_first=True)
            layers: list[nn.Module] = []
            sizes = [self.input_dim + recurrent_size, *hidden_sizes]
            for a, b in zip(sizes, sizes[1:], strict=False):
                layers += [nn.Linear(a, b), nn.ReLU()]
            layers.append(nn.Linear(sizes[-1], obs_dim))
            self.head = nn.Sequential(*layers)
        self.recurrent_size = recurrent_size

    def _hidden(self, x_past: torch.Tensor, y_past: torch.Tensor) -> torch.Tensor:
        """[B, recurrent_size] after reading the past transitions (zeros for none)."""
        if x_past.shape[1] == 0:
            return x_past.new_zeros(x_past.shape[0], self.recurrent_size)
        _, h = self.gru(torch.cat([x_past, y_past], dim=-1))
        return h[-1]

    def _predict(self, x: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([x, hidden.expand(*x.shape[:-1], -1)], dim=-1))

    def window_losses(self, past, future, create_graph):
        x_past, y_past = self.normalized(past)
        x_fut, y_fut = self.normalized(future)
        batch = x_fut.shape[0]
        zeros = x_fut.new_zeros(batch, 1, self.recurrent_size)
        pre = (self._predict(x_fut, zeros) - y_fut).square().mean()
        hidden = self._hidden(x_past, y_past).unsqueeze(1)
        post = (self._predict(x_fut, hidden) - y_fut).square().mean()
        return pre, post

    def adapted_predictor(self, past):
        with torch.no_grad():
            if past is None or past[0].shape[0] == 0:
                hidden = torch.zeros(1, self.recurrent_size)
            else:
                x, y = self.normalized(past)
                hidden = self._hidden(x.unsqueeze(0), y.unsqueeze(0))

        def predict(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
            x = self.model_input(obs, act)
            return self.next_obs(obs, self._predict(x, hidden.to(x).expand(x.shape[0], -1)))

        return predict
