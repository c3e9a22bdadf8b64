"""Network parts shared by the dynamics ensemble, the policy and the adaptive models: one
initialiser, one batched functional MLP, one normaliser.

Parameters are plain tensors so that they can be batched (a leading dimension of T models or
tasks) and can stay functions of other parameters (MAML's adapted weights).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def xavier_uniform(rows: int, cols: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A [rows, cols] weight drawn from Glorot/Xavier's uniform U(-b, b), b = sqrt(6 / (rows +
    cols)); rows and cols are fan-in and fan-out in either order (the bound is symmetric)."""
    bound = math.sqrt(6.0 / (rows + cols))
    return torch.empty(rows, cols).uniform_(-bound, bound, generator=generator)


def mlp_forward(
    x: torch.Tensor,
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    activation: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """An MLP: ``activation`` after every layer but the last.

    A weight is [in, out] (one network; ``x`` is [..., in]) or [B, in, out] with its bias
    [B, out] (B networks in one batched product; ``x`` is [B, N, in]).
    """
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        if w.dim() == 3:
            x = torch.baddbmm(b.unsqueeze(-2), x, w)
        else:
            x = torch.matmul(x, w) + b
        if i < last:
            x = activation(x)
    return x


@dataclass
class Normalizer:
    """z-scoring of a dynamics model's inputs and of the observation change it predicts,
    with statistics fitted to data (the official codes recompute them at every model fit)."""

    input_mean: torch.Tensor
    input_std: torch.Tensor
    delta_mean: torch.Tensor
    delta_std: torch.Tensor

    @classmethod
    def identity(cls, input_dim: int, obs_dim: int) -> Normalizer:
        return cls(
            torch.zeros(input_dim), torch.ones(input_dim), torch.zeros(obs_dim), torch.ones(obs_dim)
        )

    @classmethod
    def fit(
        cls,
        inputs: torch.Tensor,
        deltas: torch.Tensor,
        std_floor: float = 0.0,
        std_eps: float = 0.0,
    ) -> Normalizer:
        """Means and standard deviations of the rows of ``inputs`` and ``deltas``; each std is
        floored at ``std_floor`` and then ``std_eps`` is added (the MB-MPO code floors at
        1e-6, the GrBAL code adds 1e-8)."""

        def spread(x: torch.Tensor) -> torch.Tensor:
            std = x.std(0).clamp_min(std_floor)
            return std + std_eps if std_eps else std

        return cls(inputs.mean(0), spread(inputs), deltas.mean(0), spread(deltas))

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized model inputs."""
        return (x - self.input_mean.to(x)) / self.input_std.to(x)

    def delta(self, delta: torch.Tensor) -> torch.Tensor:
        """A normalized observation change (a model's training target)."""
        return (delta - self.delta_mean.to(delta)) / self.delta_std.to(delta)

    def to(self, device: torch.device | str) -> Normalizer:
        return Normalizer(*(t.to(device) for t in vars(self).values()))

    def state(self) -> dict[str, torch.Tensor]:
        return dict(vars(self))

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> Normalizer:
        return cls(**state)
