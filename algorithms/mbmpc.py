"""MB-MPC (Nagabandi et al. 2018), the model-based baseline of the MB-MPO paper.

A dynamics ensemble fitted on all real data so far, and model-predictive control by random
shooting: at every real step, ``num_candidates`` uniform action sequences of length
``planning_horizon`` are rolled out in the ensemble (each sequence in one ensemble member),
scored by the discounted sum of the task's reward, and the first action of the best is
executed. Every iteration collects ``steps_per_iteration`` real steps with the controller
(the first: uniform random actions) and refits the ensemble (data aggregation).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from algorithms import register
from algorithms.common.ensemble import FrozenEnsemble
from algorithms.common.model_based import ModelBasedAlgorithm, ModelBasedConfig, fit_ensemble
from benchmark.config import ConfigError, param


@dataclass
class MBMPCConfig(ModelBasedConfig):
    """MB-MPC settings, as configured for the MB-MPO paper's baseline."""

    steps_per_iteration: int = param(4000, ge=1)
    """Real steps collected with the controller between model fits."""
    num_candidates: int = param(1000, ge=1)
    """Random action sequences evaluated per real step."""
    planning_horizon: int = param(10, ge=1)
    """Length of each action sequence."""
    discount: float = param(0.99, gt=0, le=1)
    """Discount of rewards along a planned sequence."""

    def check(self) -> None:
        if self.num_candidates % self.num_models:
            raise ConfigError(
                f"num_candidates ({self.num_candidates}) must be a multiple of num_models "
                f"({self.num_models}): each model rolls out the same number of sequences"
            )


def grouped_predictor(ensemble: FrozenEnsemble) -> Any:
    """``(state [N, d], act [N, a]) -> next_state`` with the N rows split into K equal groups,
    group k predicted by model k (sequences are i.i.d., so this is a random member per
    sequence)."""
    k = ensemble.num_models

    def predict(state: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        grouped = ensemble.predict_grouped(
            state.view(k, -1, state.shape[-1]), act.reshape(k, -1, act.shape[-1])
        )
        return grouped.view_as(state)

    return predict


@torch.no_grad()
def random_shooting(
    predict: Any,
    obs: torch.Tensor,
    reward_fn: Any,
    termination_fn: Any,
    action_low: torch.Tensor,
    action_high: torch.Tensor,
    num_candidates: int,
    horizon: int,
    discount: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The first action of the best of ``num_candidates`` uniform random action sequences,
    rolled out with ``predict(state [N, d], act [N, a]) -> next_state`` (one batched call per
    planning step). A sequence stops earning reward once the task says it terminated.
    """
    act_dim = action_low.shape[0]
    uniform = torch.rand(num_candidates, horizon, act_dim, generator=generator).to(obs)
    actions = action_low + (action_high - action_low) * uniform
    state = obs.expand(num_candidates, -1).contiguous()
    score = torch.zeros(num_candidates, dtype=obs.dtype, device=obs.device)
    alive = torch.ones(num_candidates, dtype=torch.bool, device=obs.device)
    for h in range(horizon):
        act = actions[:, h]
        next_state = predict(state, act)
        score += (discount**h) * reward_fn(state, act, next_state) * alive
        alive &= ~termination_fn(state, act, next_state)
        state = next_state
    return actions[torch.argmax(score), 0]


@register("mbmpc")
class MBMPC(ModelBasedAlgorithm):
    """MB-MPC (Nagabandi et al. 2018): ensemble dynamics + random-shooting MPC."""

    Config = MBMPCConfig
    presets = {
        "paper": {},
        "quick": {
            "num_candidates": 500,
            "model_max_epochs": 15,
            "initial_random_steps": 4000,
        },
    }
    config: MBMPCConfig

    def __init__(self, task, config, seed, logger, device="cpu") -> None:
        super().__init__(task, config, seed, logger, device)
        self.action_low = torch.as_tensor(task.action_low, dtype=torch.float32, device=self.device)
        self.action_high = torch.as_tensor(
            task.action_high, dtype=torch.float32, device=self.device
        )

    def plan(
        self, obs: np.ndarray, frozen: FrozenEnsemble, generator: torch.Generator
    ) -> np.ndarray:
        """The controller's action for one real observation."""
        cfg = self.config
        action = random_shooting(
            grouped_predictor(frozen),
            torch.as_tensor(obs, dtype=torch.float32, device=self.device),
            self.task.reward_fn,
            self.task.termination_fn,
            self.action_low,
            self.action_high,
            cfg.num_candidates,
            cfg.planning_horizon,
            cfg.discount,
            generator,
        )
        return action.cpu().numpy().astype(np.float64)

    def train(self, total_steps: int) -> None:
        cfg = self.config
        eval_every = self.logger.eval_every
        while self.env_steps < total_steps:
            stats: dict[str, float] = {"iteration": self.iteration}
            last_eval = self.env_steps
            start = time.perf_counter()
            remaining = total_steps - self.env_steps
            if self.iteration == 0:
                returns = self.collect(min(cfg.initial_random_steps, remaining), None)
            else:
                frozen = self.ensemble.frozen()
                returns = self.collect(
                    min(cfg.steps_per_iteration, remaining),
                    lambda obs: self.plan(obs, frozen, self.generator),  # noqa: B023
                )
            stats["collected_return"] = float(np.mean(returns)) if returns else float("nan")
            stats["time_collect_s"] = time.perf_counter() - start
            stats |= fit_ensemble(self.ensemble, self.buffer)
            self.iteration += 1
            crossed = self.env_steps // eval_every > last_eval // eval_every
            if crossed or self.env_steps >= total_steps:
                self._evaluate_and_log(stats)
            self.logger.checkpoint(self.env_steps, self.state_dict())

    def _evaluate_and_log(self, stats: dict[str, float]) -> None:
        frozen = self.ensemble.frozen()
        eval_gen = self.evaluation_generator()
        start = time.perf_counter()
        mean, std = self.logger.evaluate(lambda obs: self.plan(obs, frozen, eval_gen))
        stats["time_eval_s"] = time.perf_counter() - start
        self.logger.log(self.env_steps, mean, std, **stats)
