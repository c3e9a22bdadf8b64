"""Uniform random actions: the floor of every comparison (normalized score 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from algorithms import register
from algorithms.base import Algorithm, AlgorithmConfig


@dataclass
class RandomConfig(AlgorithmConfig):
    """The random policy has no settings."""


@register("random")
class RandomPolicy(Algorithm):
    """Acts uniformly at random within the action bounds and learns nothing.

    It still consumes real steps (so its curve has the same x-axis as the others) and is
    evaluated under the shared protocol.
    """

    Config = RandomConfig
    family = "reference"
    seconds_per_1000_steps = {None: 1.0}

    def _rng(self, *stream: int) -> np.random.Generator:
        # One generator per (purpose, env_steps): results do not depend on where a run resumed.
        return np.random.default_rng([self.seed, *stream])

    def _act_fn(self, rng: np.random.Generator):
        low, high = self.task.action_low, self.task.action_high
        return lambda obs: rng.uniform(low, high)

    def train(self, total_steps: int) -> None:
        env = self.task.make_env()
        try:
            act = None  # a new stream of actions starts at every evaluation point
            while self.env_steps < total_steps:
                if act is None:
                    self.logger.phase("acting")
                    act = self._act_fn(self._rng(0, self.env_steps))
                    env.reset(seed=int(self._rng(1, self.env_steps).integers(2**31)))
                _, _, terminated, truncated, _ = env.step(act(None))
                self.env_steps += 1
                if terminated or truncated:
                    env.reset()
                if self.logger.evaluation_due(self.env_steps, total_steps):
                    self.logger.phase("evaluating")
                    mean, std = self.logger.evaluate(self._act_fn(self._rng(2, self.env_steps)))
                    # Random actions are their own stochastic policy: the paper's metric too.
                    self.logger.log(self.env_steps, mean, std, paper_return=mean)
                    self.logger.checkpoint(self.env_steps, self.state_dict())
                    act = None
        finally:
            env.close()

    def state_dict(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state["env_steps"])
