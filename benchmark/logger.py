"""The run-logger protocol: what an algorithm talks to while it trains.

An algorithm never writes files or runs evaluation episodes itself. It asks its logger to
evaluate a policy, to log an evaluation point, and to checkpoint its state; and it asks the
logger whether an evaluation point is due, a rule that lives here only, so every algorithm
(model-based loops, the SB3 adapters, the random policy) evaluates at the same real steps.

Implementations: :class:`benchmark.rundir.DirectoryLogger` (a run directory), and the stand-ins
of the speed benchmark and of offline analysis (:class:`NullLogger` below).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
"""``act(obs) -> action`` on one real observation; may have ``reset()`` (episode start)."""


class RunLogger(ABC):
    """Evaluation, progress rows and checkpoints of one run."""

    eval_every: int
    """Real env steps between evaluation points (the same grid for every algorithm)."""
    rows: list[dict[str, Any]]
    """The evaluation points logged so far."""

    @property
    def last_logged_steps(self) -> int:
        """Real steps at the last evaluation point (-1: none yet)."""
        return int(self.rows[-1]["env_steps"]) if self.rows else -1

    def evaluation_due(self, env_steps: int, total_steps: int) -> bool:
        """Whether to evaluate now, at ``env_steps`` real steps of a ``total_steps`` budget:
        a point of the ``eval_every`` grid was crossed since the last evaluation point, or
        the budget is spent and its last step not yet evaluated."""
        last = max(self.last_logged_steps, 0)
        crossed = env_steps // self.eval_every > last // self.eval_every
        finished = env_steps >= total_steps and self.last_logged_steps < env_steps
        return crossed or finished

    def phase(self, name: str) -> None:  # noqa: B027 - optional, a no-op by default
        """What the algorithm is doing now ("fitting models", "meta step 3/30"), for progress
        displays; a no-op unless the logger shows progress."""

    @abstractmethod
    def evaluate(self, act: Policy) -> tuple[float, float]:
        """Mean and std of the return of ``act`` under the evaluation protocol."""

    @abstractmethod
    def log(self, env_steps: int, return_mean: float, return_std: float, **metrics: Any) -> None:
        """Record one evaluation point (with any diagnostics)."""

    @abstractmethod
    def checkpoint(self, env_steps: int, state: dict[str, Any]) -> None:
        """Save the algorithm's state; a resumed run continues from here."""


class NullLogger(RunLogger):
    """A logger that evaluates nothing and keeps what is logged in memory (speed benchmarks,
    analysis of a finished run's checkpoint, tests)."""

    def __init__(self, eval_every: int = 1) -> None:
        self.eval_every = eval_every
        self.rows = []
        self.checkpoints = 0

    def evaluate(self, act: Policy) -> tuple[float, float]:
        return 0.0, 0.0

    def log(self, env_steps: int, return_mean: float, return_std: float, **metrics: Any) -> None:
        self.rows.append({"env_steps": env_steps, "return_mean": return_mean, **metrics})

    def checkpoint(self, env_steps: int, state: dict[str, Any]) -> None:
        self.checkpoints += 1
