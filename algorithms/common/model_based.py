"""The real-data loop every model-based algorithm shares, and the dynamics-ensemble base.

:class:`RealDataAlgorithm` owns the training loop (as Stable-Baselines3's base classes own
theirs); an algorithm supplies only its own steps:

    while the budget lasts:
        collect real steps        first iteration: uniform random actions;
                                  then ``collect_with_policy`` (the algorithm's controller),
                                  and ``score_new_data`` (the last fit's loss on them)
        ``fit_model()``           learn dynamics from the buffer
        ``improve()``             improve the policy in the models (MB-MPO's meta steps)
        evaluate when due         ``evaluate()``, on the logger's grid (its one rule)
        checkpoint

At an evaluation point the row also holds ``paper_return``, the quantity the paper's Fig. 1
plots for the algorithm: by default the mean return of the episodes its controller finished
while collecting this iteration's real data (the official code's training rollouts); MB-MPO
overrides it with its stochastic pre-update policy's evaluation return.

It also holds the random streams, the iteration count and the buffer of real transitions,
and checkpoints them; subclasses add their own state.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from algorithms.base import AlgorithmConfig, SeededAlgorithm
from algorithms.common.buffer import TransitionBuffer
from algorithms.common.ensemble import DynamicsEnsemble, EnsembleConfig, FrozenEnsemble
from benchmark.config import param
from benchmark.errors import ConfigError, DivergenceError
from benchmark.logger import Policy
from benchmark.tasks import Task


@dataclass
class RealDataConfig(AlgorithmConfig):
    """Real-data settings of every model-based algorithm."""

    initial_random_steps: int = param(5000, ge=1)
    """Uniform-random real steps collected before the first model fit."""
    buffer_size: int = param(1_000_000, ge=1)
    """FIFO buffer of the most recent real transitions the models are fitted on."""


@dataclass
class ModelBasedConfig(RealDataConfig):
    """Real-data and dynamics-ensemble settings (defaults: the official MB-MPO values)."""

    num_models: int = param(5, ge=1)
    """Models in the ensemble."""
    model_hidden_sizes: tuple[int, ...] = (512, 512)
    """Hidden layers of each dynamics model (ReLU)."""
    model_weight_norm: bool = True
    """Weight normalization in the dynamics models."""
    model_lr: float = param(1e-3, gt=0)
    """Adam step size of the dynamics models."""
    model_batch_size: int = param(500, ge=1)
    """Minibatch size of model training."""
    model_max_epochs: int = param(500, ge=1)
    """Cap on model training epochs per fit (early stopping usually ends sooner)."""
    model_max_updates: int | None = param(None, ge=1)
    """Cap on each model's gradient updates (minibatches) per fit, rounded up to whole epochs;
    None: no cap (the official code's). A cheaper fit rule than the official one that, unlike
    model_max_epochs, trains the small buffers of a run's first iterations for many epochs
    (a labelled variant)."""
    model_valid_fraction: float = param(0.2, gt=0, lt=1)
    """Share of the buffer each model holds out for early stopping."""
    model_early_stopping: Literal["official", "patience"] = "official"
    """'official': a model stops when the moving average (0.99) of its held-out loss rises,
    the official code's rule, which rarely fires before the cap; 'patience': after
    model_patience epochs without a relative improvement of model_min_improvement (cheaper;
    not the paper's rule, labelled as a variant)."""
    model_patience: int = param(5, ge=1)
    """Epochs without improvement before a model stops (model_early_stopping='patience')."""
    model_min_improvement: float = param(0.01, ge=0, lt=1)
    """Relative decrease of the best held-out loss that counts as an improvement ('patience')."""
    model_batches: Literal["reshuffled", "fixed"] = "reshuffled"
    """Model minibatches: 'reshuffled' anew every epoch, or 'fixed' for the whole fit with
    only their order shuffled (the official code's batching)."""
    imagined_reward: Literal["auto", "official", "env"] = "auto"
    """The reward imagined (model) steps are scored with. 'official': the official code's
    model-side ``reward(obs, act, obs_next)`` (the paper's -rllab tasks only): the control cost
    on the policy's raw, unclipped action, velocity read from the next observation, the +-1000
    clip; 'env': the env's own reward (clipped action), what evaluation measures; 'auto': the
    official one where the task has it, else the env's. The task's ``imagined_reward_fn``."""

    def check_task(self, task: Task) -> None:
        """Settings that depend on the task: a task without an official model-side reward
        cannot be asked for it."""
        try:
            task.imagined_reward_fn(self.imagined_reward)
        except ValueError as error:
            raise ConfigError(f"imagined_reward: {error}") from None

    def ensemble_config(self) -> EnsembleConfig:
        return EnsembleConfig(
            num_models=self.num_models,
            hidden_sizes=self.model_hidden_sizes,
            weight_norm=self.model_weight_norm,
            learning_rate=self.model_lr,
            batch_size=self.model_batch_size,
            valid_fraction=self.model_valid_fraction,
            max_epochs=self.model_max_epochs,
            max_updates=self.model_max_updates,
            early_stopping=self.model_early_stopping,
            patience=self.model_patience,
            min_improvement=self.model_min_improvement,
            batches=self.model_batches,
        )


@dataclass(frozen=True)
class RealSteps:
    """What :func:`collect_real` collected: one row per real step, episodes back to back."""

    obs: np.ndarray
    act: np.ndarray
    next_obs: np.ndarray
    reward: np.ndarray
    end: np.ndarray
    """True where an episode ends (terminated, truncated, or the last step collected)."""
    t: np.ndarray
    """The step's index within its episode."""
    returns: list[float]
    """Returns of the episodes that finished."""


def collect_real(env, act: Policy, n_steps: int, reset_seed: int) -> RealSteps:
    """``n_steps`` real steps with ``act(obs)``, resetting at episode ends (and calling
    ``act.reset()`` there, if it has one)."""
    obs, _ = env.reset(seed=reset_seed)
    if hasattr(act, "reset"):
        act.reset()
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "next_obs", "reward", "end", "t")}
    returns, episode_return, t = [], 0.0, 0
    for _ in range(n_steps):
        action = act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        step = (obs, action, next_obs, reward, bool(terminated or truncated), t)
        for key, value in zip(rows, step, strict=True):
            rows[key].append(value)
        episode_return += float(reward)
        obs, t = next_obs, t + 1
        if terminated or truncated:
            returns.append(episode_return)
            episode_return, t = 0.0, 0
            obs, _ = env.reset()
            if hasattr(act, "reset"):
                act.reset()
    rows["end"][-1] = True
    return RealSteps(**{k: np.array(v) for k, v in rows.items()}, returns=returns)


class RealDataAlgorithm(SeededAlgorithm):
    """Base of the algorithms that alternate real-data collection and model fitting (MB-MPO,
    ME-TRPO, MB-MPC, GrBAL, ReBAL): the loop of the module docstring.

    A subclass sets ``self.buffer`` and implements ``steps_per_iteration``,
    ``collect_with_policy``, ``fit_model`` and ``evaluate``; ``improve`` and ``close`` are
    optional.
    """

    extendable = True  # the budget only ends the loop (and caps the last collection)
    config: RealDataConfig
    buffer: TransitionBuffer
    iteration_stats: dict[str, float]
    """Progress columns a step of the iteration (e.g. collecting with a planner) adds; the
    loop empties it at the start of each iteration and logs it with the rest."""

    # -- what an algorithm supplies ---------------------------------------------------------

    @property
    @abstractmethod
    def steps_per_iteration(self) -> int:
        """Real steps collected with the algorithm's controller between model fits."""

    @abstractmethod
    def collect_with_policy(self, n_steps: int) -> list[float]:
        """``n_steps`` real steps with the current controller into the buffer (counted in
        ``env_steps``); the returns of the episodes that finished."""

    @abstractmethod
    def fit_model(self) -> dict[str, float]:
        """Learn the dynamics from the buffer; the fit's progress columns."""

    def improve(self) -> dict[str, float]:
        """Improve the policy in the learned models (none for pure planners); progress
        columns."""
        return {}

    @abstractmethod
    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        """Mean and std of the evaluation return (``self.logger.evaluate``), and any further
        progress columns of the evaluation point."""

    def close(self) -> None:
        """Release what training holds open (envs); called when ``train`` ends."""

    def score_new_data(self, n_steps: int) -> dict[str, float]:
        """Progress columns on the ``n_steps`` real transitions just collected with the
        controller, scored before the next fit sees them (the models' quality where the
        policy now goes); none by default."""
        return {}

    # -- rehearsal and full-size probe (Algorithm.rehearsal_settings, .full_size_probe) -------

    @classmethod
    def iteration_steps(cls, config: RealDataConfig, horizon: int) -> int:
        """Real steps of each iteration after the first (``steps_per_iteration``), from the
        config alone."""
        return int(config.steps_per_iteration)  # type: ignore[attr-defined]

    @classmethod
    def rehearsal_sizes(cls, config: RealDataConfig, horizon: int) -> dict[str, Any]:
        """Settings a rehearsal shrinks (ensemble, candidates, tasks, epochs, meta steps). An
        iteration keeps at least one whole episode of ``horizon`` steps: each collection
        starts a fresh episode, and a controller's ``paper_return`` is the mean return of the
        episodes it finished."""
        return {}

    @classmethod
    def probe_cuts(cls, config: RealDataConfig) -> dict[str, Any]:
        """Repetitions of identical work a full-size probe cuts (epochs, meta steps)."""
        return {}

    @classmethod
    def rehearsal_settings(cls, config: Any, horizon: int) -> tuple[int, dict[str, Any]]:
        # Random data for two episodes, then two iterations: the second fits, improves,
        # evaluates and checkpoints after a resume from the first's checkpoint.
        shrunk = {"initial_random_steps": min(config.initial_random_steps, 2 * horizon)}
        shrunk |= cls.rehearsal_sizes(config, horizon)
        per_iteration = cls.iteration_steps(dataclasses.replace(config, **shrunk), horizon)
        return shrunk["initial_random_steps"] + 2 * per_iteration, shrunk

    @classmethod
    def full_size_probe(cls, config: Any, horizon: int, steps: int) -> tuple[int, dict[str, Any]]:
        # The buffer at its largest (random data up to it), then one iteration at full size:
        # collection, the fit on everything, the improvement step, an evaluation.
        cuts = cls.probe_cuts(config)
        per_iteration = cls.iteration_steps(dataclasses.replace(config, **cuts), horizon)
        peak = min(config.buffer_size, steps)
        initial = max(config.initial_random_steps, peak - per_iteration)
        return initial + per_iteration, {**cuts, "initial_random_steps": initial}

    # -- the loop ---------------------------------------------------------------------------

    def train(self, total_steps: int) -> None:
        try:
            while self.env_steps < total_steps:
                stats: dict[str, float] = {"iteration": self.iteration}
                label = f"iteration {self.iteration}"
                start = time.perf_counter()
                remaining = total_steps - self.env_steps
                self.logger.phase(f"{label}: collecting real steps")
                self.iteration_stats = {}
                if self.iteration == 0:
                    returns = self.collect(min(self.config.initial_random_steps, remaining), None)
                else:
                    steps_before = self.env_steps
                    returns = self.collect_with_policy(min(self.steps_per_iteration, remaining))
                    stats |= self.score_new_data(self.env_steps - steps_before)
                if returns:  # no column when no episode finished in this iteration
                    stats["collected_return"] = float(np.mean(returns))
                stats["time_collect_s"] = time.perf_counter() - start
                self.logger.phase(f"{label}: fitting the model")
                stats |= self.fit_model()
                self.logger.phase(f"{label}: improving the policy")
                stats |= self.improve()
                stats |= self.iteration_stats
                self.iteration += 1
                if self.logger.evaluation_due(self.env_steps, total_steps):
                    self.logger.phase(f"{label}: evaluating")
                    start = time.perf_counter()
                    mean, std, evaluation_stats = self.evaluate()
                    stats |= evaluation_stats
                    stats["time_eval_s"] = time.perf_counter() - start
                    if "paper_return" not in stats and "collected_return" in stats:
                        stats["paper_return"] = stats["collected_return"]
                    self.logger.log(self.env_steps, mean, std, **stats)
                self.logger.checkpoint(self.env_steps, self.state_dict())
        finally:
            self.close()

    # -- shared parts -----------------------------------------------------------------------

    def evaluation_generator(self) -> torch.Generator:
        """A generator for this evaluation point only: evaluating does not disturb the training
        stream, and a resumed run evaluates with the same randomness."""
        return torch.Generator().manual_seed(self.seed * 7919 + self.env_steps)

    def real_steps(self, n_steps: int, act: Policy | None) -> RealSteps:
        """``n_steps`` real steps with ``act`` (None: uniform random actions) on a fresh env,
        counted in ``env_steps``; what :func:`collect_real` returns."""
        if act is None:
            low, high = self.task.action_low, self.task.action_high
            act = lambda _: self.rng.uniform(low, high)  # noqa: E731
        env = self.task.make_env()
        collected = collect_real(env, act, n_steps, int(self.rng.integers(2**31)))
        env.close()
        self.env_steps += n_steps
        return collected

    def collect(self, n_steps: int, act: Policy | None) -> list[float]:
        """Real steps with ``act`` (None: uniform random actions) into the buffer, episode
        boundaries included where the buffer keeps them; the returns of the episodes that
        finished."""
        steps = self.real_steps(n_steps, act)
        self.buffer.add(steps.obs, steps.act, steps.next_obs, steps.end, self.rng)
        return steps.returns

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "buffer": self.buffer.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.buffer.load_state(state["buffer"])


def fit_ensemble(ensemble: DynamicsEnsemble, buffer: TransitionBuffer) -> dict[str, float]:
    """Fit the ensemble on the buffer; the progress columns of the fit. A non-finite loss
    stops the run (DivergenceError)."""
    start = time.perf_counter()
    fit = ensemble.fit(buffer.obs, buffer.act, buffer.next_obs)
    stats = {
        "time_fit_s": time.perf_counter() - start,
        "model_train_loss": float(fit["train_loss"]),
        "model_valid_loss": float(fit["valid_loss"]),
        "model_epochs": float(np.mean(fit["epochs"])),
    }
    if not math.isfinite(stats["model_train_loss"]):
        raise DivergenceError(f"model loss is {stats['model_train_loss']}")
    return stats


class ModelBasedAlgorithm(RealDataAlgorithm):
    """Base of the algorithms that learn a dynamics ensemble from a buffer of real data."""

    config: ModelBasedConfig
    progress_columns = {
        "collected_return": "mean return of the episodes the controller finished while "
        "collecting the iteration's real data",
        "model_train_loss": "the fit's last-epoch training loss (MSE of normalized deltas, "
        "mean over models)",
        "model_valid_loss": "the fit's last held-out loss (each model's random 20% of the "
        "buffer; neighbouring transitions of an episode fall on both sides of the split)",
        "model_epochs": "epochs the fit trained, mean over models",
        "model_next_loss": "the loss of the models fitted at the previous iteration on this "
        "iteration's real transitions, before any fit saw them: how well the models predict "
        "where the current policy goes (empty after the random data)",
        "imagined_off_range": "share of imagined (MB-MPC: planned) steps whose predicted "
        "observation left the buffer's observed range by more than half its width in any "
        "dimension, or hit the prediction clip",
        "time_collect_s, time_fit_s": "seconds collecting real data, fitting the models",
    }

    def __init__(self, task, config, seed, logger, device="cpu") -> None:
        super().__init__(task, config, seed, logger, device)
        self.ensemble = DynamicsEnsemble(
            task.obs_dim,
            task.act_dim,
            task.model_input_dims,
            config.ensemble_config(),
            seed=seed + 1,
            device=self.device,
        )
        self.buffer = TransitionBuffer(task.obs_dim, task.act_dim, config.buffer_size)
        self.model_reward_fn = task.imagined_reward_fn(config.imagined_reward)
        """What imagined and planned steps are scored with (``imagined_reward``)."""

    def fit_model(self) -> dict[str, float]:
        return fit_ensemble(self.ensemble, self.buffer)

    def score_new_data(self, n_steps: int) -> dict[str, float]:
        """``model_next_loss``: the loss of the models fitted last iteration on the real
        transitions collected since (the newest ``n_steps`` in the buffer; no model has been
        fitted on them yet): how well the models predict where the current policy goes, at
        no extra real steps. On the fit's scale (MSE of normalized deltas, mean over models),
        so it reads beside ``model_valid_loss``."""
        n = min(n_steps, len(self.buffer))
        if n == 0:
            return {}
        tail = slice(len(self.buffer) - n, None)
        b = self.buffer
        return {"model_next_loss": self.ensemble.loss(b.obs[tail], b.act[tail], b.next_obs[tail])}

    def watched_models(self) -> FrozenEnsemble:
        """The fitted ensemble's inference view, counting imagined steps that leave the
        buffer's observations by more than half their range in any dimension (or hit the
        prediction clip): read with ``off_range_share()`` as ``imagined_off_range``."""
        frozen = self.ensemble.frozen()
        seen = torch.cat([self.buffer.obs, self.buffer.next_obs]).to(self.device)
        low, high = seen.amin(0), seen.amax(0)
        margin = 0.5 * (high - low)
        frozen.watch_range(low - margin, high + margin)
        return frozen

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "ensemble": self.ensemble.state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.ensemble.load_state(state["ensemble"])
