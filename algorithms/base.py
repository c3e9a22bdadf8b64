"""The interface every algorithm implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from benchmark.logger import RunLogger
from benchmark.tasks import Task

Family = Literal["model-based", "model-free", "reference"]


@dataclass
class AlgorithmConfig:
    """Base of algorithm configs: a dataclass with defaults and a docstring per field.

    Subclasses may define ``check(self)`` to validate combinations of fields, and
    ``check_task(self, task)`` to validate fields against the task (both raise ConfigError).
    """


class Algorithm(ABC):
    """A learning algorithm, built from (task, config, seed, logger, device).

    ``train(total_steps)`` consumes real env steps until the budget is spent, reporting
    evaluation points through ``logger.log`` and saving its state through
    ``logger.checkpoint``. A run resumed from a checkpoint calls ``load_state_dict`` and then
    ``train`` again with the same budget: the algorithm must continue where it stopped.
    """

    Config: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    """Named sets of config overrides, e.g. ``{"paper": {...}, "quick": {...}}``."""

    # Facts about the algorithm, read by analysis, tables and the workflow (a plugin's
    # algorithm states them the same way).
    name: ClassVar[str]
    """The registered name (set by ``@register``)."""
    family: ClassVar[Family] = "model-based"
    """'model-based', 'model-free' (normalized scores and samples-needed targets use the
    best of these), or 'reference' (the random policy: the 0 of normalized scores)."""
    off_policy: ClassVar[bool] = False
    """Keeps a replay buffer of every transition (the scheduler asks for its memory)."""
    progress_columns: ClassVar[dict[str, str]] = {}
    """The algorithm's own diagnostic columns of progress.csv and what each measures (shown by
    ``mbbench config``); the columns every run logs are in README's run format."""
    extendable: ClassVar[bool] = False
    """A run may be continued to a larger budget (``mbbench run --extend``) and then equals a
    run started with that budget: nothing but the loop's end depends on the budget. Not so
    for SB3's algorithms, whose schedules run on the fraction of the budget spent."""
    published_name: ClassVar[str | None] = None
    """The algorithm's name in the published-returns table, if it appears there."""
    seconds_per_1000_steps: ClassVar[dict[str | None, float]] = {None: 150.0}
    """Measured seconds per 1000 real steps of one single-threaded run on the project's
    2-core machine (docs/performance.md), by preset (None: the default settings); the
    workflow's scheduler requests are computed from it."""

    def __init__(
        self,
        task: Task,
        config: AlgorithmConfig,
        seed: int,
        logger: RunLogger,
        device: str | torch.device = "cpu",
    ) -> None:
        self.task = task
        self.config = config
        self.seed = seed
        self.logger = logger
        self.device = torch.device(device)
        self.env_steps = 0

    @classmethod
    def seconds_per_1000(cls, preset: str | None) -> float:
        """Measured seconds per 1000 real steps with ``preset`` (the default settings' figure
        for a preset that was not measured)."""
        table = cls.seconds_per_1000_steps
        return table.get(preset, table.get(None, Algorithm.seconds_per_1000_steps[None]))

    @classmethod
    def rehearsal_settings(
        cls, config: AlgorithmConfig, horizon: int
    ) -> tuple[int, dict[str, Any]]:
        """Budget and setting overrides of a job's rehearsal (``mbbench rehearse``), from the
        job's resolved ``config`` at episode length ``horizon``: a brief run that still passes
        through every phase the full job does (initial data, a model fit, an improvement step,
        an evaluation, a checkpoint), every size that only repeats work shrunk. Default, for
        an algorithm that states nothing: four episodes at its own settings."""
        return 4 * horizon, {}

    @classmethod
    def full_size_probe(
        cls, config: AlgorithmConfig, horizon: int, steps: int
    ) -> tuple[int, dict[str, Any]]:
        """Budget and setting overrides of a full-size probe of a job of ``steps`` real steps:
        an iteration at the job's own sizes (networks, batches, horizon, tasks) and, where
        data accumulates, with as much data as the job holds at its largest; only repetitions
        of identical work (epochs, meta steps) are cut, so the probe's seconds per unit of
        work and its peak memory are the full job's. Default: four episodes."""
        return min(steps, 4 * horizon), {}

    @abstractmethod
    def train(self, total_steps: int) -> None:
        """Learn from real env steps until ``self.env_steps >= total_steps``."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tensors, numbers, strings, lists and dicts only."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""


class SeededAlgorithm(Algorithm):
    """An algorithm that draws from random streams of its own, seeded by the run's seed (a torch
    generator and a numpy generator), and counts its iterations. Its checkpoint holds them with
    the step count; a subclass adds its own entries to :meth:`state_dict` and restores them
    after calling ``super().load_state_dict``."""

    def __init__(
        self,
        task: Task,
        config: AlgorithmConfig,
        seed: int,
        logger: RunLogger,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(task, config, seed, logger, device)
        self.generator = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.iteration = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "env_steps": self.env_steps,
            "iteration": self.iteration,
            "generator": self.generator.get_state(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps = int(state["env_steps"])
        self.iteration = int(state["iteration"])
        self.generator.set_state(state["generator"])
        self.rng.bit_generator.state = state["rng"]
