"""Task registry: an env factory, a horizon, and the env's reward and termination as batched
torch functions, given to the model-based algorithms as in the paper.

Every reward and termination function reads its weights and bounds from an instance of the
task's env, never from constants copied here, so ``make_task("hopper", ctrl_cost_weight=0.3)``
stays exact. ``tests/test_tasks.py`` checks each against the env on real transitions.

Observations keep absolute positions (``exclude_current_positions_from_observation=False``)
because the forward reward needs x; :attr:`Task.position_dims` says which dimensions they
are, so policies and dynamics models can leave them out of their inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from benchmark.tasks.envs import register_envs

RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
TerminationFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

register_envs()


def _never_terminates(obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    return torch.zeros(next_obs.shape[:-1], dtype=torch.bool, device=next_obs.device)


def _ctrl_cost(act: torch.Tensor, weight: float) -> torch.Tensor:
    return weight * act.square().sum(-1)


def _forward_velocity(obs: torch.Tensor, next_obs: torch.Tensor, dt: float) -> torch.Tensor:
    """x velocity from the x position at observation dimension 0, as the envs compute it."""
    return (next_obs[..., 0] - obs[..., 0]) / dt


# Each builder takes the unwrapped env instance and returns (reward_fn, termination_fn).


def _halfcheetah_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    w_forward, w_ctrl, dt = env._forward_reward_weight, env._ctrl_cost_weight, env.dt

    def reward_fn(obs, act, next_obs):
        return w_forward * _forward_velocity(obs, next_obs, dt) - _ctrl_cost(act, w_ctrl)

    return reward_fn, _never_terminates


def _action_clipper(env: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The action as an rllab env simulates it and charges for it: clipped to its bounds."""
    low, high = env.action_space.low.copy(), env.action_space.high.copy()

    def clip(act: torch.Tensor) -> torch.Tensor:
        return act.clamp(torch.as_tensor(low).to(act), torch.as_tensor(high).to(act))

    return clip


def _halfcheetah_rllab_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    w_forward, w_ctrl = env._forward_reward_weight, env._ctrl_cost_weight
    x_velocity = env.data.qpos.size - 1  # qvel[0] in (qpos[1:], qvel)
    clip = _action_clipper(env)

    def reward_fn(obs, act, next_obs):
        forward = w_forward * next_obs[..., x_velocity]
        return forward - _ctrl_cost(clip(act), w_ctrl)

    return reward_fn, _never_terminates


def _swimmer_rllab_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    w_forward, w_ctrl, dt = env._forward_reward_weight, env._ctrl_cost_weight, env.dt
    clip = _action_clipper(env)

    def reward_fn(obs, act, next_obs):
        forward = w_forward * _forward_velocity(obs, next_obs, dt)
        return forward - _ctrl_cost(clip(act), w_ctrl)

    return reward_fn, _never_terminates


def _hopper_rllab_healthy(env: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    z_min, angle_max, state_max = env._healthy_z_min, env._healthy_angle_max, env._state_max

    def healthy(next_obs: torch.Tensor) -> torch.Tensor:
        # obs = [x, z, angle, other qpos, clipped qvel]; rllab's observation is obs[1:].
        return (
            torch.isfinite(next_obs[..., 1:]).all(-1)
            & (next_obs[..., 2:].abs() < state_max).all(-1)
            & (next_obs[..., 1] > z_min)
            & (next_obs[..., 2].abs() < angle_max)
        )

    return healthy


def _walker2d_rllab_healthy(env: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    (z_low, z_high), (angle_low, angle_high) = env._healthy_z_range, env._healthy_angle_range

    def healthy(next_obs: torch.Tensor) -> torch.Tensor:
        z, angle = next_obs[..., 1], next_obs[..., 2]
        return (z_low < z) & (z < z_high) & (angle_low < angle) & (angle < angle_high)

    return healthy


def _walker_rllab_fns(
    healthy_of: Callable[[Any], Callable[[torch.Tensor], torch.Tensor]],
) -> Callable[[Any], tuple[RewardFn, TerminationFn]]:
    """rllab's Hopper and Walker2d: forward velocity + alive bonus (every step) - control cost
    on the clipped action; ends when unhealthy."""

    def build(env: Any) -> tuple[RewardFn, TerminationFn]:
        healthy = healthy_of(env)
        w_forward, w_ctrl, dt = env._forward_reward_weight, env._ctrl_cost_weight, env.dt
        alive_bonus = env._alive_bonus
        clip = _action_clipper(env)

        def reward_fn(obs, act, next_obs):
            forward = w_forward * _forward_velocity(obs, next_obs, dt)
            return forward + alive_bonus - _ctrl_cost(clip(act), w_ctrl)

        def termination_fn(obs, act, next_obs):
            return ~healthy(next_obs)

        return reward_fn, termination_fn

    return build


def _ant_rllab_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    """Without the contact cost, which the observation cannot give (AntRllabEnv)."""
    w_ctrl, survive = env._ctrl_cost_weight, env._survive_reward
    z_low, z_high = env._healthy_z_range
    half_range = (env.action_space.high - env.action_space.low) / 2
    x_velocity = env.data.qpos.size - 2  # qvel[0] in (qpos[2:], qvel)
    clip = _action_clipper(env)

    def reward_fn(obs, act, next_obs):
        scaled = clip(act) / torch.as_tensor(half_range).to(act)
        return next_obs[..., x_velocity] + survive - _ctrl_cost(scaled, w_ctrl)

    def termination_fn(obs, act, next_obs):
        z = next_obs[..., 0]
        return ~(torch.isfinite(next_obs).all(-1) & (z_low <= z) & (z <= z_high))

    return reward_fn, termination_fn


_swimmer_fns = _halfcheetah_fns  # same reward: forward velocity of qpos[0] minus control cost


def _hopper_healthy(env: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    min_state, max_state = env._healthy_state_range
    min_z, max_z = env._healthy_z_range
    min_angle, max_angle = env._healthy_angle_range

    def healthy(next_obs: torch.Tensor) -> torch.Tensor:
        # obs = [x, z, angle, other qpos, qvel]; state_vector()[2:] is obs[2:].
        state = next_obs[..., 2:]
        z, angle = next_obs[..., 1], next_obs[..., 2]
        return (
            ((min_state < state) & (state < max_state)).all(-1)
            & (min_z < z)
            & (z < max_z)
            & (min_angle < angle)
            & (angle < max_angle)
        )

    return healthy


def _walker2d_healthy(env: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    min_z, max_z = env._healthy_z_range
    min_angle, max_angle = env._healthy_angle_range

    def healthy(next_obs: torch.Tensor) -> torch.Tensor:
        z, angle = next_obs[..., 1], next_obs[..., 2]
        return (min_z < z) & (z < max_z) & (min_angle < angle) & (angle < max_angle)

    return healthy


def _ant_healthy(env: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    min_z, max_z = env._healthy_z_range
    n_state = env.data.qpos.size + env.data.qvel.size

    def healthy(next_obs: torch.Tensor) -> torch.Tensor:
        z = next_obs[..., 2]
        return torch.isfinite(next_obs[..., :n_state]).all(-1) & (min_z <= z) & (z <= max_z)

    return healthy


def _legged_fns(
    healthy_of: Callable[[Any], Callable[[torch.Tensor], torch.Tensor]],
) -> Callable[[Any], tuple[RewardFn, TerminationFn]]:
    """Forward velocity + healthy bonus - control (- contact) cost; ends when unhealthy."""

    def build(env: Any) -> tuple[RewardFn, TerminationFn]:
        healthy = healthy_of(env)
        w_forward, w_ctrl, dt = env._forward_reward_weight, env._ctrl_cost_weight, env.dt
        healthy_reward = env._healthy_reward
        terminate_when_unhealthy = env._terminate_when_unhealthy
        w_contact = getattr(env, "_contact_cost_weight", 0.0)
        contact_start = env.data.qpos.size + env.data.qvel.size
        if w_contact != 0.0 and not env._include_cfrc_ext_in_observation:
            raise ValueError(
                "contact_cost_weight != 0 needs include_cfrc_ext_in_observation=True: "
                "the contact cost is not a function of the observation otherwise"
            )

        def reward_fn(obs, act, next_obs):
            reward = (
                w_forward * _forward_velocity(obs, next_obs, dt)
                + healthy_reward * healthy(next_obs).to(next_obs.dtype)
                - _ctrl_cost(act, w_ctrl)
            )
            if w_contact != 0.0:
                # The observation holds the clipped external forces of bodies 1..n; body 0
                # (the world) has none.
                reward = reward - w_contact * next_obs[..., contact_start:].square().sum(-1)
            return reward

        def termination_fn(obs, act, next_obs):
            if not terminate_when_unhealthy:
                return _never_terminates(obs, act, next_obs)
            return ~healthy(next_obs)

        return reward_fn, termination_fn

    return build


def _pr2reach_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    w_dist, w_ctrl = env._reward_dist_weight, env._reward_control_weight

    def reward_fn(obs, act, next_obs):
        tip, goal = next_obs[..., 14:17], next_obs[..., 17:20]
        return -w_dist * (tip - goal).square().sum(-1) - _ctrl_cost(act, w_ctrl)

    return reward_fn, _never_terminates


def _pr2reach_rllab_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    """The distance is the current observation's (rllab measures it before the action)."""
    w_dist, w_ctrl = env._reward_dist_weight, env._reward_control_weight
    half_range = (env.action_space.high - env.action_space.low) / 2
    clip = _action_clipper(env)

    def reward_fn(obs, act, next_obs):
        scaled = clip(act) / torch.as_tensor(half_range).to(act)
        return -w_dist * obs[..., 14:17].square().sum(-1) - _ctrl_cost(scaled, w_ctrl)

    return reward_fn, _never_terminates


# The official model-side rewards: each official env's ``reward(obs, act, obs_next)``
# (sandbox/ours/envs/mujoco/*_rand_param.py in jonasrothfuss/model_ensemble_meta_learning), which
# MB-MPO's imagined rollouts were scored with. They differ from the env's own reward in three
# ways the official code had: the control cost is charged on the policy's raw, unclipped action
# (only the real env clips it); the forward velocity is read from the next observation's qvel[0]
# (Hopper, Walker2d, Swimmer: the env pays a finite difference of x); PR2 pays the next tip
# distance (the env: the current one). HalfCheetah, Hopper and Swimmer clip the reward to +-1000.
# Weights are read from the env, as for the exact reward functions.

OFFICIAL_REWARD_CLIP = 1000.0
"""The official HalfCheetah, Hopper and Swimmer ``reward()`` clip to +-this value."""


def _clip_official(reward: torch.Tensor) -> torch.Tensor:
    return reward.clamp(-OFFICIAL_REWARD_CLIP, OFFICIAL_REWARD_CLIP)


def _velocity_official_reward(
    velocity_dim: int, alive_bonus: float, reward_clip: bool
) -> Callable[[Any], RewardFn]:
    """``w_forward * next_obs[velocity_dim] + alive_bonus - w_ctrl * |a|^2`` on the raw action
    (HalfCheetah, Hopper, Walker2d, Swimmer); ``velocity_dim`` counts from the end of qpos."""

    def build(env: Any) -> RewardFn:
        w_forward, w_ctrl = env._forward_reward_weight, env._ctrl_cost_weight
        bonus = getattr(env, "_alive_bonus", 0.0) if alive_bonus else 0.0
        dim = env.data.qpos.size + velocity_dim

        def reward_fn(obs, act, next_obs):
            reward = w_forward * next_obs[..., dim] + bonus - _ctrl_cost(act, w_ctrl)
            return _clip_official(reward) if reward_clip else reward

        return reward_fn

    return build


def _ant_rllab_official_reward(env: Any) -> RewardFn:
    """``qvel[0]' + survive - w_ctrl * |a / half_range|^2`` on the raw action, not clipped."""
    w_ctrl, survive = env._ctrl_cost_weight, env._survive_reward
    half_range = (env.action_space.high - env.action_space.low) / 2
    x_velocity = env.data.qpos.size - 2

    def reward_fn(obs, act, next_obs):
        scaled = act / torch.as_tensor(half_range).to(act)
        return next_obs[..., x_velocity] + survive - _ctrl_cost(scaled, w_ctrl)

    return reward_fn


def _pr2reach_rllab_official_reward(env: Any) -> RewardFn:
    """``-w_dist * |goal - tip'|^2 - w_ctrl * |a / half_range|^2``: the next observation's
    distance and the raw action, not clipped."""
    w_dist, w_ctrl = env._reward_dist_weight, env._reward_control_weight
    half_range = (env.action_space.high - env.action_space.low) / 2

    def reward_fn(obs, act, next_obs):
        scaled = act / torch.as_tensor(half_range).to(act)
        return -w_dist * next_obs[..., 14:17].square().sum(-1) - _ctrl_cost(scaled, w_ctrl)

    return reward_fn


def _point2d_fns(env: Any) -> tuple[RewardFn, TerminationFn]:
    goal = torch.as_tensor(env.goal)

    def reward_fn(obs, act, next_obs):
        return -(next_obs - goal.to(next_obs)).norm(dim=-1)

    return reward_fn, _never_terminates


@dataclass(frozen=True)
class TaskSpec:
    """A registry entry: how to build a task's env and its reward/termination functions."""

    env_id: str
    horizon: int
    build_fns: Callable[[Any], tuple[RewardFn, TerminationFn]]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    position_dims: tuple[int, ...] = ()
    description: str = ""
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env kwargs that differ in evaluation (e.g. the Ant's leg crippled only at test time)."""
    build_official_reward: Callable[[Any], RewardFn] | None = None
    """The official code's model-side ``reward(obs, act, obs_next)`` for this task, where its
    env has one (the paper's -rllab tasks): what MB-MPO's imagined rollouts were scored with."""


_LOCOMOTION_KWARGS = {"exclude_current_positions_from_observation": False}

TASKS: dict[str, TaskSpec] = {
    "halfcheetah": TaskSpec(
        "mbbench/HalfCheetah-v5",
        200,
        _halfcheetah_fns,
        _LOCOMOTION_KWARGS,
        (0,),
        "HalfCheetah-v5 (no deprecated settotalmass)",
    ),
    "hopper": TaskSpec(
        "Hopper-v5", 200, _legged_fns(_hopper_healthy), _LOCOMOTION_KWARGS, (0,), "Hopper-v5"
    ),
    "walker2d": TaskSpec(
        "Walker2d-v5", 200, _legged_fns(_walker2d_healthy), _LOCOMOTION_KWARGS, (0,), "Walker2d-v5"
    ),
    "ant": TaskSpec(
        "mbbench/Ant-v5",
        200,
        _legged_fns(_ant_healthy),
        {
            **_LOCOMOTION_KWARGS,
            # The 2018 Ant: a 27-d observation (29 with x, y) and no contact cost.
            "include_cfrc_ext_in_observation": False,
            "contact_cost_weight": 0.0,
        },
        (0, 1),
        "Ant-v5 as in 2018 (27-d observation, no contact cost; x velocity from qpos)",
    ),
    "swimmer": TaskSpec("Swimmer-v5", 200, _swimmer_fns, _LOCOMOTION_KWARGS, (0, 1), "Swimmer-v5"),
    "pr2reach": TaskSpec(
        "mbbench/PR2Reach-v0",
        200,
        _pr2reach_fns,
        description="7-DoF arm (Gymnasium Pusher) reaching a goal drawn from a box",
    ),
    "point2d": TaskSpec(
        "mbbench/Point2D-v0", 30, _point2d_fns, description="2D point env of Fig. 2"
    ),
    # Changing dynamics (GrBAL/ReBAL, Nagabandi, Clavera et al. 2019), horizon 1000 as there.
    "halfcheetah-cripple": TaskSpec(
        "mbbench/HalfCheetahCripple-v0",
        1000,
        _halfcheetah_fns,
        _LOCOMOTION_KWARGS,
        (0,),
        "HalfCheetah-v5 with a random joint's motor disabled per episode",
    ),
    "ant-cripple": TaskSpec(
        "mbbench/AntCripple-v0",
        1000,
        _legged_fns(_ant_healthy),
        {
            **_LOCOMOTION_KWARGS,
            "include_cfrc_ext_in_observation": False,
            "contact_cost_weight": 0.0,
            "crippled_choices": (0, 1, 2),
        },
        (0, 1),
        "the suite's Ant with a leg disabled: one of legs 0-2 in training, leg 3 in evaluation",
        eval_env_kwargs={"crippled_choices": (3,)},
    ),
    "halfcheetah-dynamics": TaskSpec(
        "mbbench/HalfCheetahRandomDynamics-v0",
        1000,
        _halfcheetah_fns,
        _LOCOMOTION_KWARGS,
        (0,),
        "HalfCheetah-v5 with mass and damping scaled by random factors in [0.5, 2] per episode",
    ),
    # The paper's tasks as the official code ran them (rllab's gym_mujoco envs, tasks/rllab.py).
    "halfcheetah-rllab": TaskSpec(
        "mbbench/HalfCheetahRllab-v0",
        200,
        _halfcheetah_rllab_fns,
        build_official_reward=_velocity_official_reward(-1, alive_bonus=False, reward_clip=True),
        description="the paper's HalfCheetah (rllab): dt 0.01, obs qpos[1:], qvel, clipped actions",
    ),
    "hopper-rllab": TaskSpec(
        "mbbench/HopperRllab-v0",
        200,
        _walker_rllab_fns(_hopper_rllab_healthy),
        position_dims=(0,),
        build_official_reward=_velocity_official_reward(0, alive_bonus=True, reward_clip=True),
        description="the paper's Hopper (rllab): dt 0.02, obs x + rllab's, clipped actions",
    ),
    "walker2d-rllab": TaskSpec(
        "mbbench/Walker2dRllab-v0",
        200,
        _walker_rllab_fns(_walker2d_rllab_healthy),
        position_dims=(0,),
        build_official_reward=_velocity_official_reward(0, alive_bonus=True, reward_clip=False),
        description="the paper's Walker2d (rllab): dt 0.02, obs x + rllab's, clipped actions",
    ),
    "swimmer-rllab": TaskSpec(
        "mbbench/SwimmerRllab-v0",
        200,
        _swimmer_rllab_fns,
        position_dims=(0,),
        build_official_reward=_velocity_official_reward(-1, alive_bonus=False, reward_clip=True),
        description="the paper's Swimmer (rllab): dt 0.01, obs x + rllab's, clipped actions",
    ),
    "ant-rllab": TaskSpec(
        "mbbench/AntRllab-v0",
        200,
        _ant_rllab_fns,
        build_official_reward=_ant_rllab_official_reward,
        description="the paper's Ant (rllab): dt 0.02, obs qpos[2:], qvel, contact cost",
    ),
    "pr2reach-rllab": TaskSpec(
        "mbbench/PR2ReachRllab-v0",
        200,
        _pr2reach_rllab_fns,
        build_official_reward=_pr2reach_rllab_official_reward,
        description="the paper's PR2 reaching task (rllab) on Gymnasium's Pusher arm",
    ),
    "point2d-flip": TaskSpec(
        "mbbench/Point2D-v0",
        30,
        _point2d_fns,
        {"action_flip_prob": 0.5},
        description="2D point env whose actions are mirrored in a random half of the episodes",
    ),
}


class UnknownTaskError(KeyError):
    """Raised for a task name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0])


class Task:
    """A benchmark task: a Gymnasium env with fixed kwargs and horizon, plus its reward and
    termination as batched torch functions of ``(obs, act, next_obs)`` on the env's own
    observations (shape ``[..., obs_dim]``)."""

    def __init__(self, name: str, spec: TaskSpec, horizon: int, env_kwargs: dict[str, Any]):
        self.name = name
        self.env_id = spec.env_id
        self.horizon = int(horizon)
        self.env_kwargs = dict(env_kwargs)
        self.eval_env_kwargs = dict(spec.eval_env_kwargs)
        self.position_dims = spec.position_dims
        env = gym.make(self.env_id, **self.env_kwargs)
        try:
            obs_space, act_space = env.observation_space, env.action_space
            if not isinstance(act_space, gym.spaces.Box):
                raise ValueError(f"task {name!r}: only continuous (Box) action spaces work")
            self.obs_dim = int(np.prod(obs_space.shape))
            self.act_dim = int(np.prod(act_space.shape))
            self.action_low = act_space.low.astype(np.float64)
            self.action_high = act_space.high.astype(np.float64)
            self.reward_fn, self.termination_fn = spec.build_fns(env.unwrapped)
            build_official = spec.build_official_reward
            self.official_reward_fn: RewardFn | None = (
                None if build_official is None else build_official(env.unwrapped)
            )
        finally:
            env.close()

    @property
    def can_terminate(self) -> bool:
        """False for tasks whose episodes only end at the time limit."""
        return self.termination_fn is not _never_terminates

    def imagined_reward_fn(self, kind: str) -> RewardFn:
        """The reward a model-based algorithm scores imagined steps with. ``"env"``: the
        env's own reward (:attr:`reward_fn`). ``"official"``: the official code's model-side
        reward (:attr:`official_reward_fn`); a task without one has none to offer (ValueError).
        ``"auto"``: the official one where the task has it, else the env's."""
        if kind == "env" or (kind == "auto" and self.official_reward_fn is None):
            return self.reward_fn
        if kind in ("official", "auto"):
            if self.official_reward_fn is None:
                raise ValueError(
                    f"task {self.name!r} has no official model-side reward (only the paper's "
                    "-rllab tasks do); use imagined_reward='env' or 'auto'"
                )
            return self.official_reward_fn
        raise ValueError(f"unknown imagined reward {kind!r}; choose from: auto, official, env")

    @property
    def model_input_dims(self) -> list[int]:
        """Observation dimensions a policy or dynamics model should see (positions removed)."""
        return [d for d in range(self.obs_dim) if d not in self.position_dims]

    def make_env(self, render_mode: str | None = None, evaluation: bool = False) -> gym.Env:
        """A fresh env with the task's kwargs and a TimeLimit of ``horizon`` steps; with
        ``evaluation``, the task's evaluation kwargs on top (the env agents are scored on)."""
        kwargs = {**self.env_kwargs, **(self.eval_env_kwargs if evaluation else {})}
        return gym.make(
            self.env_id, max_episode_steps=self.horizon, render_mode=render_mode, **kwargs
        )

    def __repr__(self) -> str:
        dims = f"obs_dim={self.obs_dim}, act_dim={self.act_dim}"
        return f"Task({self.name!r}, horizon={self.horizon}, {dims})"


def list_tasks() -> list[str]:
    """Names of the registered tasks."""
    return sorted(TASKS)


def make_task(name: str, horizon: int | None = None, **env_kwargs: Any) -> Task:
    """Build a registered task; ``env_kwargs`` override the task's env kwargs."""
    if name not in TASKS:
        raise UnknownTaskError(f"unknown task {name!r}; choose from: {', '.join(list_tasks())}")
    spec = TASKS[name]
    horizon = spec.horizon if horizon is None else horizon
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    return Task(name, spec, horizon, {**spec.env_kwargs, **env_kwargs})


__all__ = ["Task", "TaskSpec", "TASKS", "UnknownTaskError", "list_tasks", "make_task"]
