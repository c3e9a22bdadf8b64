"""GrBAL and ReBAL (Nagabandi, Clavera et al., "Learning to Adapt in Dynamic, Real-World
Environments through Meta-Reinforcement Learning", ICLR 2019): model-based meta-RL that
adapts its dynamics model online.

Every iteration:
1. collect real steps (the first iteration: uniform random actions; then the controller
   below), remembering episode boundaries;
2. meta-train the dynamics model on windows of ``past_steps`` (M) then ``future_steps`` (K)
   consecutive transitions of one episode: adapt on the M, score on predicting the K; Adam
   on the model (and, if learned, GrBAL's step size psi); early stopping on held-out
   episodes;
3. act: before every real action, adapt the meta-trained model on the episode's last M
   transitions (GrBAL: one gradient step of size psi; ReBAL: the GRU's hidden state) and
   plan with MB-MPC's random shooting on the adapted model.

Defaults follow the official code's GrBAL script (learning_to_adapt/run_scripts/run_grbal.py:
512x512 ReLU model, Adam 1e-3, psi = 0.01, 1000 candidates, planning horizon 10, undiscounted
planning, 10% validation split), except that M and K are separate settings (the official
code tied both to ``adapt_batch_size`` = 16) and early stopping uses patience.
``adapt_online=False`` plans with the meta-trained model without adapting (an ablation).
"""

from __future__ import annotations

import math
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from algorithms import register
from algorithms.common.adaptive_model import (
    AdaptiveModel,
    GradientAdaptiveModel,
    RecurrentAdaptiveModel,
)
from algorithms.common.buffer import TransitionBuffer
from algorithms.common.model_based import RealDataAlgorithm, RealDataConfig
from algorithms.common.nets import Normalizer
from algorithms.common.planning import random_shooting
from benchmark.config import param
from benchmark.errors import DivergenceError


@dataclass
class AdaptiveMPCConfig(RealDataConfig):
    """Settings shared by GrBAL and ReBAL (defaults: the official GrBAL script)."""

    initial_random_steps: int = param(4000, ge=1)
    """Uniform-random real steps collected before the first model fit."""
    steps_per_iteration: int = param(4000, ge=1)
    """Real steps collected with the adaptive controller between model fits."""
    past_steps: int = param(16, ge=1)
    """M: transitions the model adapts on (the episode's most recent ones)."""
    future_steps: int = param(16, ge=1)
    """K: following transitions the adapted model is scored on in meta-training."""
    meta_batch_size: int = param(20, ge=1)
    """Windows per meta-training step."""
    model_hidden_sizes: tuple[int, ...] = (512, 512)
    """Hidden layers of the dynamics model (ReLU)."""
    model_lr: float = param(1e-3, gt=0)
    """Adam step size of meta-training."""
    model_max_epochs: int = param(100, ge=1)
    """Cap on meta-training epochs per fit (an epoch: every training window once)."""
    model_max_steps_per_epoch: int = param(1000, ge=1)
    """Cap on meta-training steps per epoch (large buffers)."""
    model_patience: int = param(5, ge=1)
    """Stop a fit after this many epochs without a better validation loss."""
    model_valid_fraction: float = param(0.1, gt=0, lt=1)
    """Share of episodes held out for early stopping."""
    num_candidates: int = param(1000, ge=1)
    """Random action sequences evaluated per real step."""
    planning_horizon: int = param(10, ge=1)
    """Length of each action sequence."""
    discount: float = param(1.0, gt=0, le=1)
    """Discount of rewards along a planned sequence."""
    adapt_online: bool = True
    """Adapt the model on the episode's recent transitions before each action (False: plan
    with the meta-trained model as is, an ablation)."""


@dataclass
class GrBALConfig(AdaptiveMPCConfig):
    """GrBAL: gradient-based adaptation."""

    inner_lr: float = param(0.01, gt=0)
    """psi: step size of the adaptation gradient step (the initial value if learned)."""
    learn_inner_lr: bool = False
    """Meta-learn psi (one step size per parameter tensor) with the model."""
    first_order: bool = False
    """Ignore second derivatives through the adaptation step in meta-training."""


@dataclass
class ReBALConfig(AdaptiveMPCConfig):
    """ReBAL: recurrence-based adaptation."""

    recurrent_size: int = param(128, ge=1)
    """Hidden state size of the GRU that reads the past transitions."""


class AdaptiveController:
    """Acts on one real env: before each action, adapts the model on the episode's last M
    transitions, then plans by random shooting. ``reset()`` at every episode start."""

    def __init__(self, algorithm: AdaptiveMPC, generator: torch.Generator) -> None:
        self.algorithm = algorithm
        self.generator = generator
        self.reset()

    def reset(self) -> None:
        self.history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.previous: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        algo, cfg = self.algorithm, self.algorithm.config
        if self.previous is not None:
            self.history = [*self.history, (*self.previous, obs)][-cfg.past_steps :]
        past = None
        if cfg.adapt_online and self.history:
            past = tuple(
                torch.as_tensor(np.array(column), dtype=torch.float32, device=algo.device)
                for column in zip(*self.history, strict=True)
            )
        predict = algo.model.adapted_predictor(past)
        action = random_shooting(
            predict,
            torch.as_tensor(obs, dtype=torch.float32, device=algo.device),
            algo.task.reward_fn,
            algo.task.termination_fn,
            algo.action_low,
            algo.action_high,
            cfg.num_candidates,
            cfg.planning_horizon,
            cfg.discount,
            self.generator,
        )
        action = action.cpu().numpy().astype(np.float64)
        self.previous = (obs, action)
        return action


class AdaptiveMPC(RealDataAlgorithm):
    """The GrBAL/ReBAL loop; subclasses choose the adaptive model."""

    config: AdaptiveMPCConfig
    # adapt, then plan 1000 x 10 on a 512x512 model, at every real step
    seconds_per_1000_steps: ClassVar[dict[str | None, float]] = {None: 300.0, "quick": 40.0}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "quick": {
            "initial_random_steps": 2000,
            "steps_per_iteration": 2000,
            "model_hidden_sizes": [256, 256],
            "model_max_epochs": 20,
            "model_max_steps_per_epoch": 200,
            "num_candidates": 500,
        },
    }

    def __init__(self, task, config, seed, logger, device="cpu") -> None:
        super().__init__(task, config, seed, logger, device)
        self.model = self.build_model(torch.Generator().manual_seed(seed + 1)).to(self.device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=config.model_lr)
        self.buffer = TransitionBuffer(
            task.obs_dim, task.act_dim, config.buffer_size, config.model_valid_fraction
        )
        self.action_low = torch.as_tensor(task.action_low, dtype=torch.float32, device=self.device)
        self.action_high = torch.as_tensor(
            task.action_high, dtype=torch.float32, device=self.device
        )

    @abstractmethod
    def build_model(self, generator: torch.Generator) -> AdaptiveModel:
        """The adaptive dynamics model, initialized from ``generator``."""

    # -- the algorithm's steps ---------------------------------------------------------------

    @property
    def steps_per_iteration(self) -> int:
        return self.config.steps_per_iteration

    @classmethod
    def rehearsal_sizes(cls, config: AdaptiveMPCConfig, horizon: int) -> dict[str, Any]:
        return {
            "num_candidates": min(config.num_candidates, 20),
            "steps_per_iteration": min(config.steps_per_iteration, horizon),
            "meta_batch_size": min(config.meta_batch_size, 4),
            "model_max_epochs": min(config.model_max_epochs, 2),
            "model_max_steps_per_epoch": min(config.model_max_steps_per_epoch, 20),
        }

    @classmethod
    def full_size_probe(
        cls, config: AdaptiveMPCConfig, horizon: int, steps: int
    ) -> tuple[int, dict[str, Any]]:
        # Projected per 1000 real steps (no schedule model): the probe keeps the job's initial
        # data and plans 200 steps after one epoch of the fit (each epoch is capped in steps,
        # so the fit's cost does not grow with the buffer).
        per_iteration = min(config.steps_per_iteration, 200)
        cuts = {"steps_per_iteration": per_iteration, "model_max_epochs": 1}
        return config.initial_random_steps + per_iteration, cuts

    def collect_with_policy(self, n_steps: int) -> list[float]:
        return self.collect(n_steps, AdaptiveController(self, self.generator))

    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        mean, std = self.logger.evaluate(AdaptiveController(self, self.evaluation_generator()))
        stats = {}
        if isinstance(self.model, GradientAdaptiveModel):
            stats["inner_lr"] = float(self.model.log_inner_lr.exp().mean())
        return mean, std, stats

    # -- meta-training ----------------------------------------------------------------------

    def _split(self, starts: torch.Tensor, past_len: int) -> tuple[tuple, tuple]:
        cfg = self.config
        windows = self.buffer.windows(starts, cfg.past_steps + cfg.future_steps)
        windows = tuple(w.to(self.device) for w in windows)
        m = cfg.past_steps
        past = tuple(w[:, m - past_len : m] for w in windows)
        future = tuple(w[:, m:] for w in windows)
        return past, future

    def validation_losses(self, starts: torch.Tensor) -> tuple[float, float]:
        """Mean future-prediction loss before and after adapting, over ``starts``."""
        cfg = self.config
        pre_sum = post_sum = 0.0
        batches = starts.split(cfg.meta_batch_size * 10)
        for batch in batches:
            past, future = self._split(batch, cfg.past_steps)
            pre, post = self.model.window_losses(past, future, create_graph=False)
            pre_sum += float(pre.detach())
            post_sum += float(post.detach())
        return pre_sum / len(batches), post_sum / len(batches)

    def fit_model(self) -> dict[str, float]:
        """Meta-train on the buffer's windows; the progress columns of the fit."""
        cfg = self.config
        start_time = time.perf_counter()
        buffer, model = self.buffer, self.model
        model.fit_normalizer(buffer.obs, buffer.act, buffer.next_obs)
        length = cfg.past_steps + cfg.future_steps
        train_starts = buffer.window_starts(length, validation=False)
        valid_starts = buffer.window_starts(length, validation=True)
        if len(train_starts) == 0:
            raise ValueError(
                f"no episode has past_steps + future_steps = {length} transitions: collect "
                "longer episodes or shorten the windows"
            )
        if len(valid_starts) == 0:  # too few episodes to hold any out yet
            valid_starts = train_starts
        # A fixed subset of validation windows keeps the early-stopping signal comparable.
        pick = torch.randperm(len(valid_starts), generator=self.generator)[:2000]
        valid_starts = valid_starts[pick]
        steps_per_epoch = min(
            max(1, len(train_starts) // cfg.meta_batch_size), cfg.model_max_steps_per_epoch
        )
        best, since_best, epochs, train_loss = math.inf, 0, 0, math.nan
        for _ in range(cfg.model_max_epochs):
            order = torch.randperm(len(train_starts), generator=self.generator)
            losses = []
            for step in range(steps_per_epoch):
                index = order[step * cfg.meta_batch_size : (step + 1) * cfg.meta_batch_size]
                past_len = cfg.past_steps
                if model.train_on_shorter_pasts:
                    past_len = int(
                        torch.randint(1, cfg.past_steps + 1, (1,), generator=self.generator)
                    )
                past, future = self._split(train_starts[index], past_len)
                _, post = model.window_losses(past, future, create_graph=True)
                self.optimizer.zero_grad()
                post.backward()
                self.optimizer.step()
                losses.append(float(post.detach()))
            train_loss = float(np.mean(losses))
            if not math.isfinite(train_loss):
                raise DivergenceError(f"model meta-training loss is {train_loss}")
            epochs += 1
            _, valid_post = self.validation_losses(valid_starts)
            if valid_post < best - 1e-6:
                best, since_best = valid_post, 0
            else:
                since_best += 1
                if since_best >= cfg.model_patience:
                    break
        before, after = self.validation_losses(valid_starts)
        return {
            "time_fit_s": time.perf_counter() - start_time,
            "model_train_loss": train_loss,
            "model_valid_loss_before_adaptation": before,
            "model_valid_loss_after_adaptation": after,
            "model_epochs": float(epochs),
        }

    # -- checkpoints ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "model": self.model.state_dict(),
            "normalizer": self.model.normalizer.state(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.model.normalizer = Normalizer.from_state(state["normalizer"])
        self.optimizer.load_state_dict(state["optimizer"])


@register("grbal")
class GrBAL(AdaptiveMPC):
    """GrBAL: a dynamics model meta-trained to adapt by one gradient step, with MPC."""

    Config = GrBALConfig
    config: GrBALConfig

    def build_model(self, generator: torch.Generator) -> AdaptiveModel:
        cfg, task = self.config, self.task
        return GradientAdaptiveModel(
            task.obs_dim,
            task.act_dim,
            task.model_input_dims,
            tuple(cfg.model_hidden_sizes),
            cfg.inner_lr,
            cfg.learn_inner_lr,
            cfg.first_order,
            generator,
        )


@register("rebal")
class ReBAL(AdaptiveMPC):
    """ReBAL: a recurrent dynamics model whose hidden state adapts, with MPC."""

    Config = ReBALConfig
    config: ReBALConfig

    def build_model(self, generator: torch.Generator) -> AdaptiveModel:
        cfg, task = self.config, self.task
        return RecurrentAdaptiveModel(
            task.obs_dim,
            task.act_dim,
            task.model_input_dims,
            tuple(cfg.model_hidden_sizes),
            cfg.recurrent_size,
            generator,
        )
