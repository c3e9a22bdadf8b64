"""The interface every algorithm implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from benchmark.logger import RunLogger
from benchmark.tasks import Task


@dataclass
class AlgorithmConfig:
    """Base of algorithm configs: a dataclass with defaults and a docstring per field.

    Subclasses may define ``check(self)`` to validate combinations of fields.
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

    @abstractmethod
    def train(self, total_steps: int) -> None:
        """Learn from real env steps until ``self.env_steps >= total_steps``."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: tensors, numbers, strings, lists and dicts only."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
