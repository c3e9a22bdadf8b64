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
    max_updates: int | None = param(None, ge=1)
    """Cap on each model's gradient updates (minibatches) per fit, in whole epochs: a fit
    trains at most ceil(max_updates / minibatches per epoch) epochs (and at most
    ``max_epochs``). None: no such cap (the official code has none). Unlike an epoch cap it
    trains small buffers for many epochs and large ones for few."""
    early_stopping: Literal["official", "patience"] = "official"
    """When a model stops training: 'official', when a moving average of its validation loss
    rises (the official code's rule, which rarely fires before ``max_epochs``); 'patience',
    after ``patience`` epochs without a relative improvement of ``min_improvement`` of its
    best validation loss (a cheaper rule, not the paper's; the last weights are kept)."""
    early_stop_persistence: float = param(0.99, ge=0, lt=1)
    """Smoothing of the validation-loss moving average of the 'official' rule."""
    patience: int = param(5, ge=1)
    """Epochs without improvement before a model stops (the 'patience' rule)."""
    min_improvement: float = param(0.01, ge=0, lt=1)
    """Relative decrease of the best validation loss that counts as an improvement."""
    batches: Literal["reshuffled", "fixed"] = "reshuffled"
    """'reshuffled': every epoch deals each model's training split into new minibatches;
    'fixed': the official code's batching, each model's split (a random permutation drawn once
    per fit) cut into fixed minibatches whose order alone is shuffled every epoch, the same
    order for every model (``dataset.batch(500).shuffle(...)``, sandbox/ours/dynamics/
    dynamics_ensemble.py)."""
    prediction_clip: float = param(1000.0, gt=0)
    """Predicted next observations are clipped to +-this value."""


class _WNLinear(nn.Module):
    """A linear layer with optional weight normalization: W = g * v / ||v|| (per output row).

    ``g`` starts at ones, as in the official layers (``sandbox/rocky/tf/core/layers.py``):
    every row of W starts at unit norm (PyTorch's ``weight_norm`` would start at ``g = |v|``,
    W = v)."""

    def __init__(self, n_in: int, n_out: int, weight_norm: bool, generator: torch.Generator):
        super().__init__()
        v = xavier_uniform(n_out, n_in, generator)
        self.v = nn.Parameter(v)
        self.g = nn.Parameter(torch.ones(n_out)) if weight_norm else None
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
        self._watched_range: tuple[torch.Tensor, torch.Tensor] | None = None
        self._off_range: list[tuple[torch.Tensor, int]] = []

    def watch_range(self, low: torch.Tensor, high: torch.Tensor) -> None:
        """Count, from now on, the predictions that leave ``[low, high]`` ([obs_dim] each) in
        any dimension or hit the prediction clip; :meth:`off_range_share` reads the count.
        A diagnostic of model quality: a model that leaves the data it was fitted on predicts
        what it never saw."""
        self._watched_range = (low, high)
        self._off_range = []

    def off_range_share(self) -> float | None:
        """Share of the predictions since :meth:`watch_range` that left the range or hit the
        clip (None: nothing watched or predicted)."""
        rows = sum(n for _, n in self._off_range)
        if self._watched_range is None or rows == 0:
            return None
        return float(torch.stack([count for count, _ in self._off_range]).sum()) / rows

    def _finish(self, next_obs: torch.Tensor) -> torch.Tensor:
        """Clip a prediction; count it if a range is watched."""
        next_obs = next_obs.clamp_(-self.clip, self.clip)
        if self._watched_range is not None:
            low, high = self._watched_range
            outside = (next_obs < low) | (next_obs > high) | (next_obs.abs() >= self.clip)
            # list.append is atomic: imagined rollouts predict from several threads.
            self._off_range.append((outside.any(-1).sum(), outside.numel() // outside.shape[-1]))
        return next_obs

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
        return self._finish(h.add_(obs))

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
        return self._finish(out.add_(obs))


def batches_per_epoch(config: EnsembleConfig, n_train: int) -> int:
    """Minibatches (gradient updates per model) of one epoch over ``n_train`` training rows;
    the last one may be short."""
    return math.ceil(n_train / config.batch_size)


def fit_epoch_cap(config: EnsembleConfig, n_train: int) -> int:
    """Most epochs a fit on ``n_train`` training rows per model may take: ``max_epochs``,
    lowered by ``max_updates`` (rounded up to whole epochs) when that is set."""
    if config.max_updates is None:
        return config.max_epochs
    per_epoch = batches_per_epoch(config, n_train)
    return min(config.max_epochs, math.ceil(config.max_updates / per_epoch))


class EarlyStopping:
    """One model's stopping rule, fed its validation loss after every epoch."""

    def __init__(self, config: EnsembleConfig) -> None:
        self.config = config
        self.average: float | None = None  # 'official': the moving average of the loss
        self.previous = math.inf  # 'official': the average after the previous epoch
        self.best = math.inf  # 'patience': the best loss so far
        self.epochs_since_best = 0

    def stops_after(self, loss: float) -> bool:
        """Whether the model stops after an epoch that ended with validation loss ``loss``."""
        cfg = self.config
        if cfg.early_stopping == "patience":
            if loss < self.best * (1 - cfg.min_improvement):
                self.best, self.epochs_since_best = loss, 0
                return False
            self.epochs_since_best += 1
            return self.epochs_since_best >= cfg.patience
        # The official code's rule: start the average above the first loss, stop the model
        # as soon as the smoothed validation loss goes up.
        if self.average is None:
            self.average, self.previous = 1.5 * loss, 2.0 * loss
        p = cfg.early_stop_persistence
        self.average = p * self.average + (1 - p) * loss
        stops = self.previous < self.average
        self.previous = self.average
        return stops


class _BatchedLinear(torch.autograd.Function):
    """x @ W^T + b for every model at once: x [models, rows, in], W [models, out, in].

    The backward forms each gradient as ``F.linear``'s does for one model (the weight's as
    grad^T @ x, contiguous), so small layers, where batched and single matmuls would round
    differently, give bit-identical results to training each model alone.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad.bmm(weight) if ctx.needs_input_grad[0] else None
        return grad_x, grad.transpose(1, 2).bmm(x), grad.sum(dim=1)


LOSS_CHUNK_ROWS = 32_768
"""Rows per model scored at once on a fit's held-out set (``LockstepTrainer.losses``): below it
(buffers up to about 160,000 transitions at a 20% split) one pass, as before chunking."""


class LockstepTrainer:
    """Steps every model of a :class:`DynamicsEnsemble` at once, in batched matmuls.

    The per-model modules and Adam optimizers stay the storage (checkpoints keep their
    format): the trainer copies their weights and Adam moments into tensors stacked over the
    models, runs one forward/backward of all the models being trained per minibatch
    (``baddbmm``), applies Adam to the stacked tensors with the same elementwise operations as
    ``torch.optim.Adam`` (each model with its own step count, so a model that stopped early
    keeps its bias correction), and :meth:`write_back` copies the results into the modules
    and optimizers. A subset of models can be stepped (the others stopped early): only their
    rows are read and written.
    """

    def __init__(self, ensemble: DynamicsEnsemble) -> None:
        models, optimizers = list(ensemble.models), ensemble.optimizers
        self._ensemble = ensemble
        per_model = [list(m.parameters()) for m in models]
        self.params = [
            torch.stack([ps[j].detach() for ps in per_model]).requires_grad_()
            for j in range(len(per_model[0]))
        ]
        # Parameter layout of one layer: v, [g], bias (see _WNLinear).
        self._per_layer = 3 if ensemble.config.weight_norm else 2
        group = optimizers[0].param_groups[0]
        self.lr, (self.beta1, self.beta2), self.eps = group["lr"], group["betas"], group["eps"]

        def moment(optimizer: torch.optim.Optimizer, q: torch.Tensor, key: str) -> torch.Tensor:
            state = optimizer.state.get(q)  # absent until the model's first step
            return state[key] if state else torch.zeros_like(q)

        pairs = list(zip(optimizers, per_model, strict=True))
        self.steps = [
            float(o.state[ps[0]]["step"]) if o.state.get(ps[0]) else 0.0 for o, ps in pairs
        ]
        self.exp_avg, self.exp_avg_sq = (
            [
                torch.stack([moment(o, ps[j], key) for o, ps in pairs])
                for j in range(len(self.params))
            ]
            for key in ("exp_avg", "exp_avg_sq")
        )

    def _rows(self, active: list[int]) -> torch.Tensor | None:
        """Index of the active models' rows, or None when every model is active."""
        if len(active) == len(self.steps):
            return None
        return torch.as_tensor(active, device=self.params[0].device)

    def _forward(self, params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        n_layers = len(params) // self._per_layer
        for i in range(n_layers):
            layer = params[i * self._per_layer : (i + 1) * self._per_layer]
            v, bias = layer[0], layer[-1]
            weight = v * (layer[1] / v.norm(dim=2)).unsqueeze(2) if len(layer) == 3 else v
            x = _BatchedLinear.apply(x, weight, bias)
            if i < n_layers - 1:
                x = torch.relu(x)
        return x

    def _selected(self, rows: torch.Tensor | None) -> list[torch.Tensor]:
        return self.params if rows is None else [p.index_select(0, rows) for p in self.params]

    def losses(self, active: list[int], x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        """Each active model's MSE on its own rows of x, y ([active, rows, dim]).

        Held-out sets beyond :data:`LOSS_CHUNK_ROWS` rows are scored in chunks: their hidden
        activations, all models at once, grow with the buffer (5 x 200,000 rows x 512 units
        are 2 GB per layer at a million transitions), which no job's memory request covers."""
        params = self._selected(self._rows(active))
        with torch.no_grad():
            rows = x.shape[1]
            if rows <= LOSS_CHUNK_ROWS:  # one pass: the loss exactly as before chunking
                pred = self._forward(params, x)
                return [F.mse_loss(pred[i], y[i]) for i in range(len(active))]
            squared = torch.zeros(len(active), dtype=torch.float64, device=x.device)
            for start in range(0, rows, LOSS_CHUNK_ROWS):
                pred = self._forward(params, x[:, start : start + LOSS_CHUNK_ROWS])
                error = (pred - y[:, start : start + LOSS_CHUNK_ROWS]).square()
                squared += error.sum(dim=(1, 2), dtype=torch.float64)
            mean = (squared / (rows * y.shape[2])).to(torch.float32)
            return list(mean.unbind())

    def step(self, active: list[int], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One Adam step of each active model on its minibatch; returns their losses."""
        rows = self._rows(active)
        pred = self._forward(self._selected(rows), x)
        # One mse_loss per model: the same reduction and gradient as training it alone.
        losses = [F.mse_loss(pred[i], y[i]) for i in range(len(active))]
        for p in self.params:
            p.grad = None
        torch.stack(losses).sum().backward()
        for k in active:
            self.steps[k] += 1.0
        # torch.optim.Adam's single-tensor update, per model step counts as [models, 1, ...].
        bias_correction1 = [1 - self.beta1 ** self.steps[k] for k in active]
        bias_correction2 = [1 - self.beta2 ** self.steps[k] for k in active]
        step_size = torch.tensor([-self.lr / bc for bc in bias_correction1])
        bc2_sqrt = torch.tensor([bc**0.5 for bc in bias_correction2])
        with torch.no_grad():
            for j, p in enumerate(self.params):
                grad = p.grad if rows is None else p.grad.index_select(0, rows)
                shape = (len(active),) + (1,) * (p.dim() - 1)
                m = self.exp_avg[j] if rows is None else self.exp_avg[j].index_select(0, rows)
                v = self.exp_avg_sq[j] if rows is None else self.exp_avg_sq[j].index_select(0, rows)
                m.lerp_(grad, 1 - self.beta1)
                v.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
                denom = v.sqrt().div_(bc2_sqrt.to(p).view(shape)).add_(self.eps)
                # Adam's addcdiv(value=-step_size) computes (value * m) / denom.
                scaled = m * step_size.to(p).view(shape)
                if rows is None:
                    p.addcdiv_(scaled, denom)
                else:
                    p.index_add_(0, rows, scaled.div_(denom))
                    self.exp_avg[j].index_copy_(0, rows, m)
                    self.exp_avg_sq[j].index_copy_(0, rows, v)
        return torch.stack([loss.detach() for loss in losses])

    def write_back(self) -> None:
        """Copy the trained weights and Adam states into the models and their optimizers."""
        ensemble = self._ensemble
        for k, (model, optimizer) in enumerate(
            zip(ensemble.models, ensemble.optimizers, strict=True)
        ):
            if self.steps[k] == 0:
                continue
            for j, q in enumerate(model.parameters()):
                with torch.no_grad():
                    q.copy_(self.params[j][k])
                optimizer.state[q] = {
                    "step": torch.tensor(self.steps[k], dtype=torch.float32),
                    "exp_avg": self.exp_avg[j][k].clone(),
                    "exp_avg_sq": self.exp_avg_sq[j][k].clone(),
                }


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

        inputs = self.normalizer.inputs(self._inputs(obs, act))
        trainer = LockstepTrainer(self)
        active = list(range(self.num_models))
        epochs = [0] * self.num_models
        stopping = [EarlyStopping(cfg) for _ in range(self.num_models)]
        train_loss = [math.nan] * self.num_models
        valid_loss = [math.nan] * self.num_models
        n_train = n - n_valid
        n_batches = batches_per_epoch(cfg, n_train)
        for _ in range(fit_epoch_cap(cfg, n_train)):
            if not active:
                break
            if cfg.batches == "fixed":
                # the same minibatches every epoch (each model's split is already a random
                # permutation), in an order drawn anew, shared by the models
                split = torch.stack([train_idx[k] for k in active])
                order = torch.randperm(n_batches, generator=self.generator).tolist()
                starts = [b * cfg.batch_size for b in order]
            else:
                # One permutation per active model, drawn in model order (the generator's
                # stream is the one a loop over models draws).
                split = torch.stack(
                    [
                        train_idx[k][
                            torch.randperm(n_train, generator=self.generator).to(self.device)
                        ]
                        for k in active
                    ]
                )
                starts = list(range(0, n_train, cfg.batch_size))
            losses = []
            for start in starts:
                batch = split[:, start : start + cfg.batch_size]
                losses.append(trainer.step(active, inputs[batch], target[batch]))
            per_model = torch.stack(losses, dim=1)  # [active, batches]
            for i, k in enumerate(active):
                train_loss[k] = float(per_model[i].mean())
                epochs[k] += 1
            held_out = torch.stack([valid_idx[k] for k in active])
            losses = trainer.losses(active, inputs[held_out], target[held_out])
            for k, loss in zip(active, losses, strict=True):
                valid_loss[k] = float(loss)
            for k in list(active):
                if stopping[k].stops_after(valid_loss[k]):
                    active.remove(k)
        trainer.write_back()
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

    @torch.no_grad()
    def loss(self, obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> float:
        """Mean over models of the training loss (MSE on normalized deltas, this fit's
        normalization) on the given transitions: the held-out loss on data no model saw."""
        obs, act, next_obs = (t.to(self.device, torch.float32) for t in (obs, act, next_obs))
        target = self.normalizer.delta(next_obs - obs)
        losses = [
            (self.normalized_delta(k, obs, act) - target).square().mean()
            for k in range(self.num_models)
        ]
        return float(torch.stack(losses).mean())

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
