"""The paper's MuJoCo tasks as the authors ran them: rllab's ``gym_mujoco`` envs, rebuilt on
Gymnasium's MuJoCo bindings.

The official MB-MPO code (jonasrothfuss/model_ensemble_meta_learning) trains on
``sandbox/ours/envs/mujoco/*_env_rand_param.py`` with ``log_scale_limit=0`` (so the physical
parameters are never changed), which subclass ``rllab/envs/gym_mujoco/*_env.py`` on the XMLs in
``vendor/mujoco_models``, wrapped in ``normalize()``. What that means for an env, and what these
classes reproduce:

- the XML's time step and rllab's frame skip (HalfCheetah: 0.01 s x 1; Gymnasium v5: 0.01 x 5);
- the observation of the rllab env (HalfCheetah: ``qpos[1:], qvel``);
- the reward of the rllab env, with the action clipped to the bounds first, as ``normalize()``
  does before it calls the env;
- rllab's reset noise: ``qpos + N(0, 0.01^2)``, ``qvel + N(0, 0.1^2)``.

Differences that remain are listed in docs/fidelity.md.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box

from benchmark.tasks.envs import PicklesWithItsArguments, PR2ReachEnv, TotalMassFromXML


class RllabMujocoEnv(PicklesWithItsArguments, MujocoEnv, utils.EzPickle, metaclass=abc.ABCMeta):
    """rllab's ``gym_mujoco.MujocoEnv`` semantics on Gymnasium's ``MujocoEnv``.

    Subclasses set ``xml_file`` and ``frame_skip`` and implement :meth:`_get_obs` and
    :meth:`_reward_and_termination`. The action is clipped to the action space before it is
    simulated and before any cost is charged on it (rllab's ``normalize()``).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"]}
    xml_file: str
    frame_skip: int
    timestep: float | None = None
    """rllab's physics time step where its XML's differs from Gymnasium's copy (else None)."""

    def __init__(
        self,
        reset_qpos_std: float = 0.01,
        reset_qvel_std: float = 0.1,
        **kwargs: Any,
    ) -> None:
        if reset_qpos_std < 0 or reset_qvel_std < 0:
            raise ValueError("reset noise scales must be >= 0")
        self._reset_qpos_std = float(reset_qpos_std)
        self._reset_qvel_std = float(reset_qvel_std)
        MujocoEnv.__init__(self, self.xml_file, self.frame_skip, observation_space=None, **kwargs)
        if self.timestep is not None:
            self.model.opt.timestep = self.timestep
        if "init_qpos" in [self.model.numeric(i).name for i in range(self.model.nnumeric)]:
            self.init_qpos = self.model.numeric("init_qpos").data.copy()  # as rllab reads it
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}
        obs_size = self._get_obs().size
        self.observation_space = Box(-np.inf, np.inf, (obs_size,), np.float64)

    @abc.abstractmethod
    def _get_obs(self) -> np.ndarray:
        """The env's observation of the current state."""

    @abc.abstractmethod
    def _reward_and_termination(
        self, x_before: float, action: np.ndarray
    ) -> tuple[float, bool, dict[str, float]]:
        """Reward, termination and info of the step just simulated (x before it, the clipped
        action)."""

    def step(self, action):
        low, high = self.action_space.low, self.action_space.high
        action = np.clip(np.asarray(action, dtype=np.float64), low, high)
        x_before = float(self.data.qpos[0])
        self.do_simulation(action, self.frame_skip)
        observation = self._get_obs()
        reward, terminated, info = self._reward_and_termination(x_before, action)
        if self.render_mode == "human":
            self.render()
        return observation, reward, terminated, False, info

    def reset_model(self) -> np.ndarray:
        qpos = self.init_qpos + self.np_random.normal(size=self.model.nq) * self._reset_qpos_std
        qvel = self.init_qvel + self.np_random.normal(size=self.model.nv) * self._reset_qvel_std
        self.set_state(qpos, qvel)
        return self._get_obs()


class _RllabForwardEnv(RllabMujocoEnv):
    """A locomotion env whose forward reward is the finite difference ``(x' - x) / dt`` (rllab's
    HalfCheetah, Hopper, Walker2d, Swimmer), with the control cost on the clipped action; by
    default it never terminates. Hopper, Walker2d and Swimmer put the x position in front of
    rllab's observation (dimension 0, a position dimension of the task): with several
    integrator substeps per action the finite difference is not a function of rllab's
    observation. HalfCheetah's is (below)."""

    def __init__(
        self, forward_reward_weight: float = 1.0, ctrl_cost_weight: float = 1e-3, **kwargs: Any
    ) -> None:
        self._forward_reward_weight = float(forward_reward_weight)
        self._ctrl_cost_weight = float(ctrl_cost_weight)
        super().__init__(**kwargs)

    def _forward_and_ctrl(self, x_before: float, action: np.ndarray) -> dict[str, float]:
        x_velocity = (float(self.data.qpos[0]) - x_before) / self.dt
        return {
            "x_velocity": x_velocity,
            "reward_forward": self._forward_reward_weight * x_velocity,
            "reward_ctrl": -self._ctrl_cost_weight * float(np.square(action).sum()),
        }

    def _reward_and_termination(self, x_before, action):
        info = self._forward_and_ctrl(x_before, action)
        return info["reward_forward"] + info["reward_ctrl"], False, info


class HalfCheetahRllabEnv(TotalMassFromXML, _RllabForwardEnv):
    """rllab's ``gym_mujoco`` HalfCheetah: Gymnasium's XML (the same file as rllab's), one
    physics step of 0.01 s per action, observation ``qpos[1:], qvel`` (17), reward
    ``forward_reward_weight * dx/dt - ctrl_cost_weight * |clip(a)|^2``.

    With MuJoCo's Euler integrator ``x' = x + dt * qvel'[0]``, so the forward velocity is the
    next observation's ``qvel[0]`` (index 8), the quantity the official model-side reward reads.
    """

    xml_file = "half_cheetah.xml"
    frame_skip = 1

    def __init__(self, ctrl_cost_weight: float = 0.1, **kwargs: Any) -> None:
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[1:], self.data.qvel])


class _RllabWalkerEnv(_RllabForwardEnv):
    """rllab's Hopper and Walker2d: Gymnasium's XML (the same model as rllab's, written in local
    coordinates) with rllab's time step 0.004 s, 5 substeps per action (dt 0.02; Gymnasium v5:
    0.008); observation ``x, qpos[1:], clip(qvel, -10, 10)``; reward ``dx/dt + alive_bonus -
    ctrl_cost_weight * |clip(a)|^2``, the bonus paid on every step, the last included."""

    frame_skip = 5
    timestep = 0.004

    def __init__(self, alive_bonus: float = 1.0, **kwargs: Any) -> None:
        self._alive_bonus = float(alive_bonus)
        super().__init__(**kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, np.clip(self.data.qvel, -10.0, 10.0)])

    @abc.abstractmethod
    def _healthy(self) -> bool:
        """Whether the walker is still upright (else the episode ends)."""

    def _reward_and_termination(self, x_before, action):
        info = self._forward_and_ctrl(x_before, action)
        reward = info["reward_forward"] + self._alive_bonus + info["reward_ctrl"]
        return reward, not self._healthy(), info


class HopperRllabEnv(_RllabWalkerEnv):
    """rllab's Hopper (see :class:`_RllabWalkerEnv`). It ends unless every entry of rllab's
    observation is finite, all but its first are below ``state_max`` in magnitude, the height
    exceeds ``healthy_z_min`` and the torso angle is within ``healthy_angle_max``."""

    xml_file = "hopper.xml"

    def __init__(
        self,
        healthy_z_min: float = 0.7,
        healthy_angle_max: float = 0.2,
        state_max: float = 100.0,
        **kwargs: Any,
    ) -> None:
        self._healthy_z_min = float(healthy_z_min)
        self._healthy_angle_max = float(healthy_angle_max)
        self._state_max = float(state_max)
        super().__init__(**kwargs)

    def _healthy(self) -> bool:
        obs = self._get_obs()
        return bool(
            np.isfinite(obs[1:]).all()
            and (np.abs(obs[2:]) < self._state_max).all()
            and obs[1] > self._healthy_z_min
            and abs(obs[2]) < self._healthy_angle_max
        )


class Walker2dRllabEnv(_RllabWalkerEnv):
    """rllab's Walker2d (see :class:`_RllabWalkerEnv`). It ends unless the height lies in
    ``healthy_z_range`` and the torso angle in ``healthy_angle_range`` (both open)."""

    xml_file = "walker2d.xml"

    def __init__(
        self,
        healthy_z_range: tuple[float, float] = (0.8, 2.0),
        healthy_angle_range: tuple[float, float] = (-1.0, 1.0),
        **kwargs: Any,
    ) -> None:
        self._healthy_z_range = tuple(float(v) for v in healthy_z_range)
        self._healthy_angle_range = tuple(float(v) for v in healthy_angle_range)
        super().__init__(**kwargs)

    def _healthy(self) -> bool:
        z, angle = float(self.data.qpos[1]), float(self.data.qpos[2])
        (z_low, z_high), (a_low, a_high) = self._healthy_z_range, self._healthy_angle_range
        return z_low < z < z_high and a_low < angle < a_high


class SwimmerRllabEnv(_RllabForwardEnv):
    """rllab's Swimmer: Gymnasium's XML (rllab's model; its ``collision="predefined"`` with no
    pairs defined and Gymnasium's contype 0 both mean no contacts), one step of 0.01 s per action
    (Gymnasium v5: 4); observation ``x, qpos[2:], qvel``; reward ``dx/dt - ctrl_cost_weight *
    |clip(a)|^2`` with rllab's weight 1e-4."""

    xml_file = "swimmer.xml"
    frame_skip = 1

    def __init__(self, ctrl_cost_weight: float = 1e-4, **kwargs: Any) -> None:
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:1], self.data.qpos[2:], self.data.qvel])


class AntRllabEnv(RllabMujocoEnv):
    """rllab's Ant: Gymnasium's XML (the same file as rllab's, whose ``init_qpos`` numeric rllab
    starts from), 2 steps of 0.01 s per action (dt 0.02; Gymnasium v5: 0.05); observation
    ``qpos[2:], qvel`` (27); reward ``qvel[0] + survive_reward - ctrl_cost_weight *
    |clip(a) / half_range|^2 - contact_cost_weight * |clip(cfrc_ext, -1, 1)|^2``. It ends when
    the observation is not finite or the torso height leaves ``healthy_z_range`` (closed).

    The contact cost reads the external contact forces, which the observation does not hold:
    the task's reward function leaves it out, as the official code's model-side reward does
    (docs/fidelity.md); ``info["reward_contact"]`` reports it.
    """

    xml_file = "ant.xml"
    frame_skip = 2

    def __init__(
        self,
        ctrl_cost_weight: float = 5e-3,
        contact_cost_weight: float = 5e-4,
        survive_reward: float = 1.0,
        healthy_z_range: tuple[float, float] = (0.2, 1.0),
        **kwargs: Any,
    ) -> None:
        self._ctrl_cost_weight = float(ctrl_cost_weight)
        self._contact_cost_weight = float(contact_cost_weight)
        self._survive_reward = float(survive_reward)
        self._healthy_z_range = tuple(float(v) for v in healthy_z_range)
        super().__init__(**kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[2:], self.data.qvel])

    def _reward_and_termination(self, x_before, action):
        half_range = (self.action_space.high - self.action_space.low) / 2
        forward = float(self.data.qvel[0])
        ctrl = self._ctrl_cost_weight * float(np.square(action / half_range).sum())
        contact_forces = np.clip(self.data.cfrc_ext, -1.0, 1.0)
        contact = self._contact_cost_weight * float(np.square(contact_forces).sum())
        reward = forward + self._survive_reward - ctrl - contact
        z_low, z_high = self._healthy_z_range
        obs = self._get_obs()
        healthy = np.isfinite(obs).all() and z_low <= obs[0] <= z_high
        info = {"x_velocity": forward, "reward_ctrl": -ctrl, "reward_contact": -contact}
        return reward, not healthy, info


class PR2ReachRllabEnv(PR2ReachEnv):
    """rllab's PR2 reaching task, as close as public files allow: the official env steps the
    left arm of a PR2 model (``vendor/mujoco_models/pr2.xml``, meshes not redistributable here)
    for 0.05 s per action without gravity; this one steps Gymnasium's Pusher arm, a simplified
    PR2 right arm (0.01 s x 5, no gravity).

    As in rllab: a goal drawn uniformly from a box at every reset (rllab's box relative to the
    left shoulder, mirrored to the right arm: x 0.45..0.65 m ahead, y 0.06..0.56 m outward,
    z -0.19..0.21 m); observation ``qpos[:7], qvel[:7], goal - tip`` (17); reward ``-|goal -
    tip|^2`` measured before the action is simulated ``- reward_control_weight *
    |clip(a) / half_range|^2``; rllab's reset noise on the arm. What differs is in
    docs/fidelity.md (arm kinematics, gripper length, actuator range, joint damping).
    """

    def __init__(
        self,
        goal_low: tuple[float, float, float] = (0.45, -1.162, -0.191),
        goal_high: tuple[float, float, float] = (0.65, -0.662, 0.209),
        reward_dist_weight: float = 1.0,
        reward_control_weight: float = 5e-3,
        reset_qpos_std: float = 0.01,
        reset_qvel_std: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self._reset_qpos_std = float(reset_qpos_std)
        self._reset_qvel_std = float(reset_qvel_std)
        super().__init__(goal_low, goal_high, reward_dist_weight, reward_control_weight, **kwargs)
        self.observation_space = Box(-np.inf, np.inf, (17,), np.float64)

    def step(self, action):
        low, high = self.action_space.low, self.action_space.high
        action = np.clip(np.asarray(action, dtype=np.float64), low, high)
        distance = -self._reward_dist_weight * float(np.sum(np.square(self._tip_to_goal())))
        self.do_simulation(action, self.frame_skip)
        scaled = action / ((high - low) / 2)
        ctrl = -self._reward_control_weight * float(np.sum(np.square(scaled)))
        if self.render_mode == "human":
            self.render()
        info = {"reward_dist": distance, "reward_ctrl": ctrl}
        return self._get_obs(), distance + ctrl, False, False, info

    def _tip_to_goal(self) -> np.ndarray:
        return self._goal - self.get_body_com("tips_arm")

    def reset_model(self):
        super().reset_model()  # draws the goal, parks the object, places the goal marker
        qpos, qvel = self.data.qpos.copy(), np.zeros(self.model.nv)
        qpos[:7] = self.init_qpos[:7] + self.np_random.normal(size=7) * self._reset_qpos_std
        qvel[:7] = self.init_qvel[:7] + self.np_random.normal(size=7) * self._reset_qvel_std
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_obs(self):
        return np.concatenate([self.data.qpos[:7], self.data.qvel[:7], self._tip_to_goal()])
