"""MB-MPC (Nagabandi et al. 2018), the model-based baseline of the MB-MPO paper.

A dynamics ensemble fitted on all real data so far, and model-predictive control by random
shooting: at every real step, ``num_candidates`` uniform action sequences of length
``planning_horizon`` are rolled out in the ensemble (each sequence in one ensemble member),
scored by the discounted sum of the task's reward, and the first action of the best is
executed. Every iteration collects ``steps_per_iteration`` real steps with the controller
(the first: uniform random actions) and refits the ensemble (data aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from algorithms import register
from algorithms.common.ensemble import FrozenEnsemble
from algorithms.common.model_based import ModelBasedAlgorithm, ModelBasedConfig
from algorithms.common.planning import grouped_predictor, random_member_predictor, random_shooting
from benchmark.config import param
from benchmark.errors import ConfigError


@dataclass
class MBMPCConfig(ModelBasedConfig):
    """MB-MPC settings, as configured for the MB-MPO paper's baseline
    (experiments/run_scripts/mb_comparison/mb_mpc_train.py)."""

    initial_random_steps: int = param(4000, ge=1)
    """Uniform-random real steps before the first fit (official: 4000)."""
    model_max_epochs: int = param(200, ge=1)
    """Cap on model epochs per fit (official: 200)."""

    steps_per_iteration: int = param(4000, ge=1)
    """Real steps collected with the controller between model fits."""
    num_candidates: int = param(1000, ge=1)
    """Random action sequences evaluated per real step."""
    planning_horizon: int = param(10, ge=1)
    """Length of each action sequence."""
    discount: float = param(0.99, gt=0, le=1)
    """Discount of rewards along a planned sequence."""
    planning_model_assignment: Literal["random_step", "group"] = "random_step"
    """'random_step': every candidate draws a random model at every planning step (the official
    code); 'group': each model plans a fixed share of the candidates."""

    def check(self) -> None:
        if self.planning_model_assignment == "group" and self.num_candidates % self.num_models:
            raise ConfigError(
                f"num_candidates ({self.num_candidates}) must be a multiple of num_models "
                f"({self.num_models}): each model rolls out the same number of sequences"
            )


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
            "planning_model_assignment": "group",
        },
    }
    published_name = "RS"  # random shooting, as the published tables name it
    seconds_per_1000_steps = {None: 120.0, "quick": 40.0}
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
        predictor = (
            random_member_predictor(frozen, generator)
            if cfg.planning_model_assignment == "random_step"
            else grouped_predictor(frozen)
        )
        action = random_shooting(
            predictor,
            torch.as_tensor(obs, dtype=torch.float32, device=self.device),
            self.model_reward_fn,
            self.task.termination_fn,
            self.action_low,
            self.action_high,
            cfg.num_candidates,
            cfg.planning_horizon,
            cfg.discount,
            generator,
        )
        return action.cpu().numpy().astype(np.float64)

    @property
    def steps_per_iteration(self) -> int:
        return self.config.steps_per_iteration

    @classmethod
    def rehearsal_sizes(cls, config: MBMPCConfig, horizon: int) -> dict[str, Any]:
        return {
            "num_models": min(config.num_models, 2),
            "num_candidates": min(config.num_candidates, 20),
            "steps_per_iteration": min(config.steps_per_iteration, horizon),
            "model_max_epochs": min(config.model_max_epochs, 2),
        }

    @classmethod
    def probe_cuts(cls, config: MBMPCConfig) -> dict[str, Any]:
        # Every real step plans alike: 200 of them measure the planner's rate.
        return {"steps_per_iteration": min(config.steps_per_iteration, 200), "model_max_epochs": 1}

    def collect_with_policy(self, n_steps: int) -> list[float]:
        frozen = self.watched_models()
        returns = self.collect(n_steps, lambda obs: self.plan(obs, frozen, self.generator))
        off_range = frozen.off_range_share()
        if off_range is not None:
            self.iteration_stats["imagined_off_range"] = off_range
        return returns

    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        frozen, eval_gen = self.ensemble.frozen(), self.evaluation_generator()
        mean, std = self.logger.evaluate(lambda obs: self.plan(obs, frozen, eval_gen))
        return mean, std, {}
