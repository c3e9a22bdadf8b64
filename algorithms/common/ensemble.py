"""An ensemble of MLP dynamics models, as in the official MB-MPO code.

Each model predicts the z-scored change of the observation, s' - s, from the z-scored
(s, a); the normalization statistics are recomputed from the data at every fit. Every model
has its own random train/validation split of the shared data and stops training on its own
when a moving average of its validation loss rises (or at ``max_epochs``). Weights persist
across fits (warm start).

For imagined rollouts, :meth:`DynamicsEnsemble.frozen` folds the normalization, the weight
normalization and the choice of input dimensions into plain per-model weight matrices, so one
prediction is three matrix products per model and nothing else.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.base import AlgorithmConfig
from algorithms.common.nets import Normalizer, xavier_uniform
from benchmark.config import param


@dataclass
class EnsembleConfig(AlgorithmConfig):
    """Dynamics ensemble settings (defaults: the official MB-MPO values)."""

    num_models: int = param(5, ge=1)
    """Number of models in the ensemble."""
    hidden_sizes: tuple[int, ...] = (512, 512)
    """Hidden layer widths of each model's MLP (ReLU)."""
    weight_norm: bool = True
    """Weight normalization on every layer."""
    learning_rate: float = param(1e-3, gt=0)
    """Adam step size."""
    batch_size: int = param(500, ge=1)
    """Minibatch size per model."""
    valid_fraction: float = param(0.2, gt=0, lt=1)
    """Share of the data each model holds out for validation (its own random split)."""
    max_epochs: int = param(500, ge=1)
    """Cap on training epochs per fit."""
    early_stop_persistence: float = param(0.99, ge=0, lt=1)
    """Smoothing of the validation-loss moving average; a model stops when the average rises."""
    prediction_clip: float = param(1000.0, gt=0)
    """Predicted next observations are clipped to +-this value."""


class _WNLinear(nn.Module):
    """A linear layer with optional weight normalization: W = g * v / ||v|| (per output row)."""

    def __init__(self, n_in: int, n_out: int, weight_norm: bool, generator: torch.Generator):
        super().__init__()
        v = xavier_uniform(n_out, n_in, generator)
        self.v = nn.Parameter(v)
        self.g = nn.Parameter(v.norm(dim=1)) if weight_norm else None
        self.bias = nn.Parameter(torch.zeros(n_out))

    def weight(self) -> torch.Tensor:
        if self.g is None:
            return self.v
        return self.v * (self.g / self.v.norm(dim=1)).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight(), self.bias)


class _MLP(nn.Module):
    def __init__(self, sizes: list[int], weight_norm: bool, generator: torch.Generator):
        super().__init__()
        self.layers = nn.ModuleList(
            _WNLinear(a, b, weight_norm, generator)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


class FrozenEnsemble:
    """Fast inference view of the ensemble, valid until the next fit.

    Normalization is folded into the weights: for model k, with layers stacked on dim 0,
    ``h = relu([obs, act] @ w_in[k] + b_in[k])``, then the hidden layers, and the last layer
    outputs the denormalized delta. ``w_in`` has zero rows for the observation dimensions the
    models do not see, so the input is the plain concatenation of observation and action.
    """

    def __init__(
        self,
        w_in: torch.Tensor,  # [K, obs_dim + act_dim, h1]
        b_in: torch.Tensor,  # [K, 1, h1]
        layers: list[tuple[torch.Tensor, torch.Tensor]],  # ([K, h_i, h_i+1], [K, 1, h_i+1])
        delta_std: torch.Tensor,  # [obs_dim], scale of the bias/noise ablation
        clip: float,
        grouped_impl: Literal["loop", "bmm"] = "bmm",
    ) -> None:
        self.w_in, self.b_in, self.layers = w_in, b_in, layers
        self.delta_std = delta_std
        self.clip = clip
        self.grouped_impl = grouped_impl
        self.bias: torch.Tensor | None = None  # [K], in normalized units
        self.noise_std = 0.0
        self.generator: torch.Generator | None = None
        self._thread_buffers = threading.local()

    @property
    def num_models(self) -> int:
        return self.w_in.shape[0]

    @property
    def obs_dim(self) -> int:
        return self.delta_std.shape[0]

    @property
    def act_dim(self) -> int:
        return self.w_in.shape[1] - self.obs_dim

    @property
    def perturbation_noise(self) -> bool:
        """Whether predictions get random noise added (the Fig. 3 ablation with sigma > 0)."""
        return self.bias is not None and self.noise_std > 0

    def _hidden_buffers(self, rows: int, device: torch.device) -> list[torch.Tensor]:
        """Reused activation buffers [K, rows, h_i], one set per thread and batch shape.

        An imagined rollout makes the same prediction thousands of times; fresh multi-MB
        activations each time cost as much as a fifth of the step in allocation and cold
        memory. Only hidden activations live here: what a prediction returns is always new.
        """
        cache = self._thread_buffers.__dict__.setdefault("by_shape", {})
        key = (rows, device)
        if key not in cache:
            widths = [self.w_in.shape[-1], *(w.shape[-1] for w, _ in self.layers[:-1])]
            cache[key] = [
                torch.empty(self.num_models, rows, n, device=device, dtype=self.w_in.dtype)
                for n in widths
            ]
        return cache[key]

    def _perturb(
        self, delta: torch.Tensor, bias: torch.Tensor, noise: torch.Tensor | None
    ) -> torch.Tensor:
        """Fig. 3 ablation: add N(b_k, noise_std^2), in normalized units, to the delta.
        ``noise`` holds the standard normal draws; drawn here (CPU generator) when None."""
        if self.noise_std == 0:
            return delta.add_(bias * self.delta_std)
        if noise is None:
            noise = torch.randn(delta.shape, generator=self.generator)
        return delta.add_((bias + self.noise_std * noise.to(delta)) * self.delta_std)

    def _predict_one(
        self, k: int, x: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Model k's predicted delta for inputs x = [obs, act]."""
        h = torch.addmm(self.b_in[k, 0], x, self.w_in[k]).relu_()
        for i, (w, b) in enumerate(self.layers):
            h = torch.addmm(b[k, 0], h, w[k])
            if i < len(self.layers) - 1:
                h.relu_()
        if self.bias is not None:
            h = self._perturb(h, self.bias[k], noise)
        return h

    def predict_grouped(
        self, obs: torch.Tensor, act: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next observations; ``obs`` is [K, M, obs_dim]: row k goes through model k.

        ``noise`` ([K, M, obs_dim], standard normal) is used by the noisy-model ablation only.
        """
        x = torch.cat([obs, act], dim=-1)
        if self.grouped_impl == "bmm":
            hidden = self._hidden_buffers(x.shape[1], x.device)
            h = torch.baddbmm(self.b_in, x, self.w_in, out=hidden[0]).relu_()
            for i, (w, b) in enumerate(self.layers):
                if i < len(self.layers) - 1:
                    h = torch.baddbmm(b, h, w, out=hidden[i + 1]).relu_()
                else:
                    h = torch.baddbmm(b, h, w)
            if self.bias is not None:
                h = self._perturb(h, self.bias.view(-1, 1, 1), noise)
        else:
            h = torch.stack(
                [
                    self._predict_one(k, x[k], None if noise is None else noise[k])
                    for k in range(self.num_models)
                ]
            )
        return h.add_(obs).clamp_(-self.clip, self.clip)

    def predict_assigned(
        self,
        obs: torch.Tensor,
        act: torch.Tensor,
        model_ids: torch.Tensor,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Next observations; ``obs`` is [B, obs_dim] and row i goes through model_ids[i]."""
        x = torch.cat([obs, act], dim=-1)
        out = torch.empty_like(obs)
        for k in range(self.num_models):
            rows = (model_ids == k).nonzero(as_tuple=True)[0]
            if rows.numel():
                out[rows] = self._predict_one(k, x[rows], None if noise is None else noise[rows])
        return out.add_(obs).clamp_(-self.clip, self.clip)


class DynamicsEnsemble(nn.Module):
    """K MLPs predicting the normalized delta s' - s from normalized (s, a)."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        input_obs_dims: list[int],
        config: EnsembleConfig,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.config = config
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)
        self.register_buffer("input_obs_dims", torch.as_tensor(input_obs_dims, dtype=torch.long))
        n_in = len(input_obs_dims) + act_dim
        sizes = [n_in, *config.hidden_sizes, obs_dim]
        self.models = nn.ModuleList(
            _MLP(sizes, config.weight_norm, self.generator) for _ in range(config.num_models)
        )
        self.to(self.device)
        self.normalizer = Normalizer.identity(n_in, obs_dim).to(self.device)
        self.optimizers = [
            torch.optim.Adam(m.parameters(), lr=config.learning_rate) for m in self.models
        ]
        self.bias: torch.Tensor | None = None
        self.noise_std = 0.0

    @property
    def num_models(self) -> int:
        return self.config.num_models

    def _inputs(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs[..., self.input_obs_dims], act], dim=-1)

    def set_normalization(
        self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
    ) -> None:
        """Recompute the z-score statistics from data (std floored at 1e-6)."""
        self.normalizer = Normalizer.fit(self._inputs(obs, act), next_obs - obs, std_floor=1e-6)

    def normalized_delta(self, k: int, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Model k's prediction of the normalized delta (differentiable; for training)."""
        return self.models[k](self.normalizer.inputs(self._inputs(obs, act)))

    def fit(
        self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor
    ) -> dict[str, float | list[int]]:
        """Train every model on its own split of the data until early stopping.

        Returns the mean final train and validation losses (MSE on normalized deltas) and
        the epochs each model trained.
        """
        cfg = self.config
        obs, act, next_obs = (t.to(self.device, torch.float32) for t in (obs, act, next_obs))
        n = obs.shape[0]
        n_valid = max(1, int(round(n * cfg.valid_fraction)))
        if n - n_valid < 1:
            raise ValueError(f"need at least 2 transitions to fit the ensemble, got {n}")
        self.set_normalization(obs, act, next_obs)
        target = self.normalizer.delta(next_obs - obs)
        splits = [torch.randperm(n, generator=self.generator).to(self.device) for _ in self.models]
        train_idx = [s[n_valid:] for s in splits]
        valid_idx = [s[:n_valid] for s in splits]

        active = list(range(self.num_models))
        epochs = [0] * self.num_models
        rolling: list[float | None] = [None] * self.num_models
        rolling_prev: list[float] = [math.inf] * self.num_models
        train_loss = [math.nan] * self.num_models
        valid_loss = [math.nan] * self.num_models
        for _ in range(cfg.max_epochs):
            if not active:
                break
            for k in active:
                order = train_idx[k][
                    torch.randperm(len(train_idx[k]), generator=self.generator).to(self.device)
                ]
                losses = []
                for start in range(0, len(order), cfg.batch_size):
                    batch = order[start : start + cfg.batch_size]
                    pred = self.normalized_delta(k, obs[batch], act[batch])
                    loss = F.mse_loss(pred, target[batch])
                    self.optimizers[k].zero_grad(set_to_none=True)
                    loss.backward()
                    self.optimizers[k].step()
                    losses.append(loss.detach())
                train_loss[k] = float(torch.stack(losses).mean())
                epochs[k] += 1
            with torch.no_grad():
                for k in list(active):
                    v = valid_idx[k]
                    valid_loss[k] = float(
                        F.mse_loss(self.normalized_delta(k, obs[v], act[v]), target[v])
                    )
                    # The official code's rule: start the average above the first loss, stop
                    # the model as soon as the smoothed validation loss goes up.
                    if rolling[k] is None:
                        rolling[k], rolling_prev[k] = 1.5 * valid_loss[k], 2.0 * valid_loss[k]
                    p = cfg.early_stop_persistence
                    rolling[k] = p * rolling[k] + (1 - p) * valid_loss[k]
                    if rolling_prev[k] < rolling[k]:
                        active.remove(k)
                    rolling_prev[k] = rolling[k]
        return {
            "train_loss": sum(train_loss) / self.num_models,
            "valid_loss": sum(valid_loss) / self.num_models,
            "epochs": epochs,
        }

    @torch.no_grad()
    def frozen(self, grouped_impl: Literal["loop", "bmm"] = "bmm") -> FrozenEnsemble:
        """Inference view with normalization folded into the weights (see FrozenEnsemble)."""
        n_in_obs = len(self.input_obs_dims)
        norm = self.normalizer
        per_model = []
        for model in self.models:
            layers = [(layer.weight().t(), layer.bias) for layer in model.layers]
            w1, b1 = layers[0]
            w1 = w1 / norm.input_std.unsqueeze(1)  # x_norm = (x - mean) / std
            b1 = b1 - norm.input_mean @ w1
            w_in = torch.zeros(self.obs_dim + self.act_dim, w1.shape[1], device=w1.device)
            w_in[self.input_obs_dims] = w1[:n_in_obs]
            w_in[self.obs_dim :] = w1[n_in_obs:]
            w_out, b_out = layers[-1]
            hidden = [
                *layers[1:-1],
                (w_out * norm.delta_std, b_out * norm.delta_std + norm.delta_mean),
            ]
            per_model.append((w_in, b1, hidden))
        view = FrozenEnsemble(
            torch.stack([m[0] for m in per_model]),
            torch.stack([m[1] for m in per_model]).unsqueeze(1),
            [
                (
                    torch.stack([m[2][i][0] for m in per_model]),
                    torch.stack([m[2][i][1] for m in per_model]).unsqueeze(1),
                )
                for i in range(len(per_model[0][2]))
            ],
            norm.delta_std.clone(),
            self.config.prediction_clip,
            grouped_impl,
        )
        view.bias, view.noise_std, view.generator = self.bias, self.noise_std, self.generator
        return view

    def sample_bias(self, bias_max: float, noise_std: float) -> torch.Tensor:
        """Fig. 3 ablation: model k's normalized prediction gets N(b_k, noise_std^2) added,
        b_k ~ U(0, bias_max), drawn anew on each call. Both 0 switches it off."""
        if bias_max < 0 or noise_std < 0:
            raise ValueError("bias_max and noise_std must be non-negative")
        if bias_max == 0 and noise_std == 0:
            self.bias, self.noise_std = None, 0.0
            return torch.zeros(self.num_models)
        self.bias = bias_max * torch.rand(self.num_models, generator=self.generator).to(self.device)
        self.noise_std = float(noise_std)
        return self.bias

    def predict(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Next observations from every model: [B, obs_dim] -> [K, B, obs_dim]."""
        frozen = self.frozen()
        k = self.num_models
        return frozen.predict_grouped(
            obs.expand(k, *obs.shape).contiguous(), act.expand(k, *act.shape).contiguous()
        )

    def state(self) -> dict[str, Any]:
        """Weights, optimizer states and RNG state, for checkpoints."""
        return {
            "weights": self.state_dict(),
            "normalizer": self.normalizer.state(),
            "optimizers": [o.state_dict() for o in self.optimizers],
            "generator": self.generator.get_state(),
            "bias": self.bias,
            "noise_std": self.noise_std,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["weights"])
        self.normalizer = Normalizer.from_state(state["normalizer"]).to(self.device)
        for optimizer, s in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(s)
        self.generator.set_state(state["generator"])
        self.bias, self.noise_std = state["bias"], float(state["noise_std"])
