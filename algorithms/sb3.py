"""Model-free baselines from Stable-Baselines3 (and sb3-contrib's TRPO), under the suite's
evaluation protocol.

Each trains on ``Task.make_env()`` (same horizon as every other algorithm) with the absolute
positions removed from the observation, and reports evaluation points through the run logger
from a callback at the shared step grid, so its progress.csv is interchangeable with the
model-based algorithms'. A checkpoint holds SB3's complete state (replay buffer and the
training env mid-episode included), so a resumed run continues bit for bit. Two
hyperparameter sets: ``paper`` (the MB-MPO paper's 32x32 tanh
policies and its batch sizes where known) and ``zoo`` (rl-baselines3-zoo-style MuJoCo
settings, without observation normalization).

ACKTR, a baseline of the paper, has no implementation in SB3 or sb3-contrib; it is not run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import A2C, DDPG, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper, VecNormalize
from torch import nn

from algorithms import register, register_unavailable
from algorithms.base import Algorithm, AlgorithmConfig
from algorithms.baselines_ddpg import BaselinesDDPG
from benchmark.config import param
from benchmark.errors import ConfigError
from benchmark.tasks.state import (
    env_state,
    global_numpy_rng_state,
    python_rng_state,
    rng_state,
    set_env_state,
    set_global_numpy_rng_state,
    set_python_rng_state,
    set_rng_state,
)

try:
    from sb3_contrib import TRPO
except ImportError:  # pragma: no cover - sb3-contrib is a dependency
    TRPO = None


@dataclass
class SB3Config(AlgorithmConfig):
    """Settings of a Stable-Baselines3 baseline."""

    hyperparams: Literal["paper", "zoo"] = "paper"
    """'paper': 32x32 tanh networks, the paper's batch sizes where known; 'zoo':
    rl-baselines3-zoo-style MuJoCo settings."""
    n_steps: int | None = param(None, ge=1)
    """Rollout steps per update, over the set's (on-policy algorithms; None: the set's).
    Rehearsals (``mbbench rehearse``) shrink it."""
    batch_size: int | None = param(None, ge=1)
    """Minibatch size, over the set's (None: the set's)."""
    learning_starts: int | None = param(None, ge=0)
    """Steps before the first update, over the set's (off-policy algorithms; None: the
    set's)."""


@dataclass
class DDPGConfig(SB3Config):
    """Settings of the DDPG baseline."""

    hyperparams: Literal["paper", "zoo", "gaussian"] = "paper"
    """'paper': OpenAI baselines' DDPG as the official script ran it
    (algorithms/baselines_ddpg.py: LayerNorm networks, parameter noise, observation
    normalization); 'zoo': rl-baselines3-zoo-style settings; 'gaussian': SB3's DDPG with
    32x32 tanh networks and Gaussian action noise 0.1 (the suite's 'paper' set until the
    official one was replicated)."""


PAPER_NET = {"net_arch": [32, 32], "activation_fn": nn.Tanh}

HYPERPARAMS: dict[str, dict[str, dict[str, Any]]] = {
    # TRPO/PPO: the paper's batch of 50k steps per update; DDPG: its batch of 64.
    "ppo": {
        # experiments/run_scripts/mf_comparison/ppo_train.py (OpenAI baselines' ppo2): 250 envs
        # x 200 steps = 50k per update (one env for 50k steps here: the same samples), 25
        # minibatches, 10 epochs, clip 0.2 for the policy and the value, lr 3e-4, lambda 0.95,
        # separate 32x32 tanh policy and value nets, observations and rewards normalized.
        "paper": {
            "n_steps": 50_000,
            "batch_size": 2_000,
            "n_epochs": 10,
            "learning_rate": 3e-4,
            "clip_range": 0.2,
            "clip_range_vf": 0.2,
            "gae_lambda": 0.95,
            "policy_kwargs": PAPER_NET,
            "normalize": {"norm_obs": True, "norm_reward": True, "gamma": 0.99},
        },
        "zoo": {"n_steps": 2048, "batch_size": 64, "n_epochs": 10, "gae_lambda": 0.95},
    },
    "trpo": {
        # experiments/run_scripts/mf_comparison/trpo_train.py (rllab TRPO): 50k steps per
        # iteration, KL 0.01, lambda 1, 10 CG iterations, damping 1e-5, backtracking 0.8 x 15.
        # rllab's linear feature baseline has no SB3 counterpart: the critic is an MLP here.
        "paper": {
            "n_steps": 50_000,
            "batch_size": 5_000,
            "target_kl": 0.01,
            "gae_lambda": 1.0,
            "cg_max_steps": 10,
            "cg_damping": 1e-5,
            "line_search_shrinking_factor": 0.8,
            "line_search_max_iter": 15,
            "policy_kwargs": PAPER_NET,
        },
        "zoo": {
            "n_steps": 1024,
            "batch_size": 128,
            "gae_lambda": 0.95,
            "n_critic_updates": 20,
            "cg_max_steps": 25,
            "cg_damping": 0.1,
            "learning_rate": 1e-3,
        },
    },
    "ddpg": {
        # experiments/run_scripts/mf_comparison/ddpg_train.py (OpenAI baselines' DDPG): see
        # algorithms/baselines_ddpg.py for what SB3's DDPG lacks. 2000 epochs x 25 cycles x
        # (200 steps, then 50 updates); batch 64, tau 0.01, actor lr 1e-5, critic lr 1e-3.
        "paper": {
            "algorithm_class": BaselinesDDPG,
            "learning_rate": 1e-5,
            "batch_size": 64,
            "tau": 0.01,
            "gamma": 0.99,
            "buffer_size": 1_000_000,
            "learning_starts": 0,
            "train_freq": (200, "step"),
            "gradient_steps": 50,
            "desired_action_std": 0.2,
            "policy_kwargs": {
                "net_arch": {"pi": [32, 32], "qf": [64, 64]},
                "activation_fn": nn.Tanh,
                "critic_learning_rate": 1e-3,
                "critic_l2": 0.01,
                "param_noise_std": 0.2,
            },
            "normalize": {"norm_obs": True, "norm_reward": False, "clip_obs": 5.0},
        },
        # The suite's DDPG before the paper set was replicated (and its learning case):
        # SB3's DDPG with 32x32 tanh networks, Gaussian action noise 0.1, batch 64.
        "gaussian": {"batch_size": 64, "policy_kwargs": PAPER_NET, "noise_std": 0.1},
        "zoo": {
            "learning_starts": 10_000,
            "noise_std": 0.1,
            "policy_kwargs": {"net_arch": [400, 300]},
        },
    },
    "td3": {
        "paper": {"policy_kwargs": PAPER_NET, "noise_std": 0.1},
        "zoo": {
            "learning_starts": 10_000,
            "noise_std": 0.1,
            "policy_kwargs": {"net_arch": [400, 300]},
        },
    },
    "sac": {
        "paper": {"policy_kwargs": PAPER_NET},
        "zoo": {"learning_starts": 10_000},
    },
    "a2c": {
        "paper": {"policy_kwargs": PAPER_NET},
        "zoo": {},
    },
}
"""SB3 keyword arguments per algorithm and set; ``noise_std`` becomes Gaussian action noise,
``normalize`` wraps the training env in VecNormalize with these arguments, ``algorithm_class``
replaces the SB3 class. SAC, TD3 and A2C
are not in the paper: their 'paper' set only uses its 32x32 tanh nets."""


class DropPositions(gym.ObservationWrapper):
    """Remove the absolute positions (the task's ``position_dims``) from observations."""

    def __init__(self, env: gym.Env, keep: list[int]) -> None:
        super().__init__(env)
        self.keep = np.asarray(keep)
        low, high = env.observation_space.low[self.keep], env.observation_space.high[self.keep]
        self.observation_space = gym.spaces.Box(low, high, dtype=env.observation_space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.keep]


class _EvaluationCallback(BaseCallback):
    """Evaluates at the shared step grid and logs through the run logger; checkpoints at the
    next rollout start, the only moment SB3's state is complete without its rollout buffer."""

    def __init__(self, owner: SB3Algorithm, total_steps: int) -> None:
        super().__init__()
        self.owner = owner
        self.total_steps = total_steps

    def _on_rollout_start(self) -> None:
        if self.owner.checkpoint_pending:
            self.owner.save_checkpoint()

    def _on_step(self) -> bool:
        owner = self.owner
        owner.env_steps = self.num_timesteps
        if owner.logger.evaluation_due(owner.env_steps, self.total_steps):
            owner.evaluate_and_log()
        return owner.env_steps < self.total_steps


class SB3Algorithm(Algorithm):
    """A Stable-Baselines3 algorithm run under the suite's protocol."""

    Config = SB3Config
    presets = {"paper": {"hyperparams": "paper"}, "zoo": {"hyperparams": "zoo"}}
    family = "model-free"
    sb3_class: ClassVar[type[BaseAlgorithm]]
    key: ClassVar[str]
    config: SB3Config

    def __init__(self, task, config, seed, logger, device="cpu") -> None:
        super().__init__(task, config, seed, logger, device)
        self.keep = task.model_input_dims
        env = DropPositions(task.make_env(), self.keep)
        # A deep copy: SB3 adds keys to policy_kwargs in place (e.g. SAC's n_critics).
        kwargs = copy.deepcopy(HYPERPARAMS[self.key][config.hyperparams])
        for name, applies in (
            ("n_steps", not self.off_policy),
            ("batch_size", True),
            ("learning_starts", self.off_policy),
        ):
            value = getattr(config, name)
            if value is not None and not applies:
                kind = "off" if self.off_policy else "on"
                raise ConfigError(f"{name}: not a setting of {self.name} ({kind}-policy)")
            if value is not None:
                kwargs[name] = value
        noise_std = kwargs.pop("noise_std", None)
        if noise_std is not None:
            kwargs["action_noise"] = NormalActionNoise(
                np.zeros(task.act_dim), noise_std * np.ones(task.act_dim)
            )
        normalize = kwargs.pop("normalize", None)
        sb3_class = kwargs.pop("algorithm_class", self.sb3_class)
        train_env: gym.Env | VecEnv = env
        if normalize is not None:
            train_env = VecNormalize(DummyVecEnv([lambda: Monitor(env)]), **normalize)
        self.model = sb3_class("MlpPolicy", train_env, seed=seed, device=self.device, **kwargs)
        # SB3's default logger writes nothing at verbose=0 but makes an empty /tmp/SB3-<time>
        # directory at every learn(); the run logger is the record here.
        self.model.set_logger(Logger(folder=None, output_formats=[]))
        self.normalizer: VecNormalize | None = self.model.get_vec_normalize_env()
        self.checkpoint_pending = False

    @classmethod
    def set_value(cls, config: SB3Config, name: str, default: Any) -> Any:
        """A keyword argument as the job runs it: the config's override, else the set's, else
        ``default`` (SB3's)."""
        value = getattr(config, name)
        return (
            value
            if value is not None
            else HYPERPARAMS[cls.key][config.hyperparams].get(name, default)
        )

    @classmethod
    def rehearsal_settings(cls, config: SB3Config, horizon: int) -> tuple[int, dict[str, Any]]:
        # Two updates (on-policy: two rollouts of 256 steps; off-policy: updates from step
        # 100), two evaluations, two checkpoints.
        if cls.off_policy:
            return 1000, {"learning_starts": 100}
        return 512, {"n_steps": 256, "batch_size": 64}

    @classmethod
    def full_size_probe(
        cls, config: SB3Config, horizon: int, steps: int
    ) -> tuple[int, dict[str, Any]]:
        # One update at full size (on-policy: its whole rollout); off-policy: 5,000 steps of
        # updates after the set's start (the replay buffer's growth is extrapolated).
        if cls.off_policy:
            return min(steps, cls.set_value(config, "learning_starts", 100) + 5000), {}
        return min(steps, cls.set_value(config, "n_steps", 2048)), {}

    def _policy_obs(self, obs: np.ndarray) -> np.ndarray:
        """What the policy sees of an env observation: positions dropped, then normalized with
        the running statistics (without updating them) where the training env normalizes."""
        kept = obs[self.keep]
        return kept if self.normalizer is None else self.normalizer.normalize_obs(kept)

    def act(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(self._policy_obs(obs), deterministic=True)
        return action

    def act_stochastic(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(self._policy_obs(obs), deterministic=False)
        return action

    def evaluate_and_log(self) -> None:
        """The deterministic policy's evaluation return, and as ``paper_return`` the stochastic
        policy's (the official baselines' curves are their stochastic policies' returns). The
        stochastic draws come from a forked torch generator seeded by the evaluation point, so
        training's random stream is untouched and a resumed run draws the same."""
        self.logger.phase("evaluating")
        mean, std = self.logger.evaluate(self.act)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 7919 + self.env_steps)
            paper_return, _ = self.logger.evaluate(self.act_stochastic)
        self.logger.log(self.env_steps, mean, std, paper_return=paper_return)
        self.logger.phase("training")
        self.checkpoint_pending = True

    def save_checkpoint(self) -> None:
        self.logger.checkpoint(self.env_steps, self.state_dict())
        self.checkpoint_pending = False

    def train(self, total_steps: int) -> None:
        self.logger.phase("training")
        remaining = total_steps - self.env_steps
        if remaining > 0:
            self.model.learn(
                remaining,
                callback=_EvaluationCallback(self, total_steps),
                reset_num_timesteps=False,
            )
        if self.logger.evaluation_due(self.env_steps, total_steps):
            self.evaluate_and_log()
        if self.checkpoint_pending:
            self.save_checkpoint()

    # Everything SB3 carries from one rollout to the next, so that a run resumed at a rollout
    # start continues exactly as the uninterrupted run: weights and optimizers, the learned
    # scalars (SAC's entropy coefficient), counters, the training env mid-episode, the random
    # generators and, for off-policy algorithms, the replay buffer.

    _REPLAY_ARRAYS = (
        "observations",
        "next_observations",
        "actions",
        "rewards",
        "dones",
        "timeouts",
    )

    def state_dict(self) -> dict[str, Any]:
        model = self.model
        _, variables = model._get_torch_save_params()
        state: dict[str, Any] = {
            "env_steps": self.env_steps,
            "params": {name: dict(sd) for name, sd in model.get_parameters().items()},
            "variables": {name: _attribute(model, name).detach().clone() for name in variables},
            "n_updates": int(model._n_updates),
            "episode_num": int(model._episode_num),
            "last_obs": torch.from_numpy(np.array(model._last_obs, copy=True)),
            # Off-policy algorithms store the unnormalized observation in the replay buffer.
            "last_original_obs": torch.from_numpy(np.array(_last_original_obs(model), copy=True)),
            "env": env_state(self._base_env()),
            "numpy_rng": global_numpy_rng_state(),
            "python_rng": python_rng_state(),
            "action_space_rng": rng_state(model.action_space.np_random),
        }
        if getattr(model, "_last_episode_starts", None) is not None:
            state["last_episode_starts"] = torch.from_numpy(model._last_episode_starts.copy())
        if self.normalizer is not None:
            state["normalizer"] = {
                **{
                    name: torch.from_numpy(np.array(value, dtype=np.float64))
                    for name, value in self._normalizer_arrays().items()
                },
                "obs_count": torch.tensor(
                    float(self.normalizer.obs_rms.count), dtype=torch.float64
                ),
                "ret_count": torch.tensor(
                    float(self.normalizer.ret_rms.count), dtype=torch.float64
                ),
            }
        buffer = getattr(model, "replay_buffer", None)
        if buffer is not None:
            filled = buffer.buffer_size if buffer.full else buffer.pos
            state["replay_buffer"] = {
                "pos": int(buffer.pos),
                "full": bool(buffer.full),
                **{
                    name: torch.from_numpy(getattr(buffer, name)[:filled].copy())
                    for name in self._REPLAY_ARRAYS
                    if isinstance(getattr(buffer, name, None), np.ndarray)
                },
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        model = self.model
        model.set_parameters(state["params"], exact_match=True, device=self.device)
        with torch.no_grad():
            for name, value in state["variables"].items():
                _attribute(model, name).copy_(value)
        self.env_steps = int(state["env_steps"])
        model.num_timesteps = self.env_steps
        model._n_updates = int(state["n_updates"])
        model._episode_num = int(state["episode_num"])
        vec_env = model.get_env()
        vec_env.reset()  # spends the construction seed, as the first run's first reset did
        set_env_state(self._base_env(), state["env"])
        if "normalizer" in state:
            saved = state["normalizer"]
            for name, array in self._normalizer_arrays().items():
                array[...] = saved[name].numpy()
            self.normalizer.obs_rms.count = float(saved["obs_count"])
            self.normalizer.ret_rms.count = float(saved["ret_count"])
        model._last_obs = state["last_obs"].numpy().copy()
        original = state.get("last_original_obs", state["last_obs"])  # older checkpoints
        model._last_original_obs = original.numpy().copy()
        if "last_episode_starts" in state:
            model._last_episode_starts = state["last_episode_starts"].numpy().copy()
        set_global_numpy_rng_state(state["numpy_rng"])
        set_python_rng_state(state["python_rng"])
        set_rng_state(model.action_space.np_random, state["action_space_rng"])
        if "replay_buffer" in state:
            saved, buffer = state["replay_buffer"], model.replay_buffer
            for name in self._REPLAY_ARRAYS:
                if name in saved:
                    array = saved[name].numpy()
                    getattr(buffer, name)[: len(array)] = array
            buffer.pos, buffer.full = int(saved["pos"]), bool(saved["full"])

    def _base_env(self) -> gym.Env:
        """The training env under SB3's vectorization (and normalization) wrappers."""
        vec_env = self.model.get_env()
        while isinstance(vec_env, VecEnvWrapper):
            vec_env = vec_env.venv
        return vec_env.envs[0]

    def _normalizer_arrays(self) -> dict[str, np.ndarray]:
        """VecNormalize's state held in arrays (written in place on load): the running means
        and variances and the per-env discounted returns. Its two counts are floats."""
        assert self.normalizer is not None
        norm = self.normalizer
        return {
            "obs_mean": norm.obs_rms.mean,
            "obs_var": norm.obs_rms.var,
            "ret_mean": norm.ret_rms.mean,
            "ret_var": norm.ret_rms.var,
            "returns": norm.returns,
        }


def _last_original_obs(model: BaseAlgorithm) -> np.ndarray:
    """The last observation before VecNormalize (the normalized one without it)."""
    original = getattr(model, "_last_original_obs", None)
    return model._last_obs if original is None else original


def _attribute(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _register(
    name: str,
    sb3_class: type[BaseAlgorithm] | None,
    doc: str,
    seconds_per_1000_steps: float | dict[str | None, float],
    published_name: str | None = None,
    **class_attributes: Any,
) -> None:
    if sb3_class is None:
        return
    facts = {
        **class_attributes,
        "sb3_class": sb3_class,
        "key": name,
        "__doc__": doc,
        "seconds_per_1000_steps": (
            seconds_per_1000_steps
            if isinstance(seconds_per_1000_steps, dict)
            else {None: seconds_per_1000_steps}
        ),
        "published_name": published_name,
        "off_policy": issubclass(sb3_class, OffPolicyAlgorithm),
    }
    register(name)(type(name.upper(), (SB3Algorithm,), facts))


# Seconds per 1000 real steps: measured on the project's 2-core machine (docs/performance.md).
# The paper presets update every 50k steps, so environment steps dominate: 150k steps on
# halfcheetah-rllab, one thread, evaluated every 50k, took 143 s (PPO) and 119 s (TRPO).
_register("ppo", PPO, "PPO (Stable-Baselines3), model-free baseline.", {None: 6, "paper": 1}, "PPO")
_register("trpo", TRPO, "TRPO (sb3-contrib), model-free baseline.", {None: 6, "paper": 1}, "TRPO")
_register(
    "ddpg",
    DDPG,
    "DDPG (Stable-Baselines3; the paper set: OpenAI baselines' DDPG), model-free baseline.",
    {None: 21, "paper": 3},  # paper: 50 updates per 200 steps; 4000 steps took 12 s
    Config=DDPGConfig,
    presets={**SB3Algorithm.presets, "gaussian": {"hyperparams": "gaussian"}},
)
_register(
    "td3",
    TD3,
    "TD3 (Stable-Baselines3), model-free baseline (not in the paper).",
    45,
    "TD3",
)
_register(
    "sac",
    SAC,
    "SAC (Stable-Baselines3), model-free baseline (not in the paper).",
    70,
    "SAC",
)
_register("a2c", A2C, "A2C (Stable-Baselines3), model-free baseline (not in the paper).", 8)
register_unavailable(
    "acktr",
    "model-free",
    "a baseline of the paper with no implementation in Stable-Baselines3 or sb3-contrib; "
    "not run, shown as such in the tables",
)
