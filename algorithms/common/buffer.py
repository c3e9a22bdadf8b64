"""The buffer of real transitions every model-based algorithm learns from.

A FIFO of the most recent ``max_size`` transitions (obs, act, next_obs). With
``valid_fraction`` set it also remembers episodes, so that windows of consecutive transitions
never cross an episode boundary (GrBAL/ReBAL train on such windows), and assigns each episode
to the training or the validation split when it is added.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class TransitionBuffer:
    """FIFO buffer of real transitions, episode boundaries optional."""

    def __init__(
        self, obs_dim: int, act_dim: int, max_size: int, valid_fraction: float | None = None
    ) -> None:
        self.max_size = max_size
        self.valid_fraction = valid_fraction
        self.obs = torch.empty(0, obs_dim)
        self.act = torch.empty(0, act_dim)
        self.next_obs = torch.empty(0, obs_dim)
        if self.tracks_episodes:
            self.episode = torch.empty(0, dtype=torch.int64)
            self.validation = torch.empty(0, dtype=torch.bool)
            self.episodes_added = 0

    @property
    def tracks_episodes(self) -> bool:
        """Whether episodes (and their split) are remembered."""
        return self.valid_fraction is not None

    def __len__(self) -> int:
        return self.obs.shape[0]

    def _append(self, old: torch.Tensor, new: Any, dtype: torch.dtype) -> torch.Tensor:
        return torch.cat([old, torch.as_tensor(new, dtype=dtype)])[-self.max_size :]

    def add(
        self,
        obs: Any,
        act: Any,
        next_obs: Any,
        episode_ends: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        """Append transitions. A buffer that tracks episodes needs ``episode_ends`` (True at
        the last transition of each episode) and ``rng``, which draws each new episode's
        split; other buffers ignore both."""
        if self.tracks_episodes and (episode_ends is None or rng is None):
            raise ValueError("a buffer that tracks episodes needs episode_ends and rng")
        self.obs = self._append(self.obs, obs, torch.float32)
        self.act = self._append(self.act, act, torch.float32)
        self.next_obs = self._append(self.next_obs, next_obs, torch.float32)
        if self.tracks_episodes:
            ends = np.asarray(episode_ends, dtype=bool)
            starts = np.concatenate([[True], ends[:-1]])
            episode = self.episodes_added + np.cumsum(starts) - 1
            n_new = int(starts.sum())
            held_out = rng.uniform(size=n_new) < self.valid_fraction
            self.episodes_added += n_new
            self.episode = self._append(self.episode, episode, torch.int64)
            self.validation = self._append(
                self.validation, held_out[episode - episode[0]], torch.bool
            )

    def window_starts(self, length: int, validation: bool) -> torch.Tensor:
        """Indices t whose window [t, t + length) lies in one episode of the given split."""
        if not self.tracks_episodes:
            raise ValueError("windows need a buffer that tracks episodes (valid_fraction)")
        if len(self) < length:
            return torch.empty(0, dtype=torch.int64)
        same_episode = self.episode[: len(self) - length + 1] == self.episode[length - 1 :]
        in_split = self.validation[: len(self) - length + 1] == validation
        return torch.nonzero(same_episode & in_split).flatten()

    def windows(self, starts: torch.Tensor, length: int) -> tuple[torch.Tensor, ...]:
        """(obs, act, next_obs), each [len(starts), length, dim]."""
        index = starts[:, None] + torch.arange(length)
        return self.obs[index], self.act[index], self.next_obs[index]

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"obs": self.obs, "act": self.act, "next_obs": self.next_obs}
        if self.tracks_episodes:
            state |= {
                "episode": self.episode,
                "validation": self.validation,
                "episodes_added": self.episodes_added,
            }
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.obs, self.act, self.next_obs = state["obs"], state["act"], state["next_obs"]
        if self.tracks_episodes:
            self.episode, self.validation = state["episode"], state["validation"]
            self.episodes_added = int(state["episodes_added"])
