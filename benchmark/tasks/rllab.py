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

from typing import Any

import numpy as np
from gymnasium import utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box

from benchmark.tasks.envs import TotalMassFromXML


class RllabMujocoEnv(MujocoEnv, utils.EzPickle):
    """rllab's ``gym_mujoco.MujocoEnv`` semantics on Gymnasium's ``MujocoEnv``.

    Subclasses set ``xml_file`` and ``frame_skip`` and implement :meth:`_get_obs` and
    :meth:`_reward_and_termination`. The action is clipped to the action space before it is
    simulated and before any cost is charged on it (rllab's ``normalize()``).
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"]}
    xml_file: str
    frame_skip: int

    def __init__(
        self,
        reset_qpos_std: float = 0.01,
        reset_qvel_std: float = 0.1,
        **kwargs: Any,
    ) -> None:
        utils.EzPickle.__init__(self, reset_qpos_std, reset_qvel_std, **kwargs)
        if reset_qpos_std < 0 or reset_qvel_std < 0:
            raise ValueError("reset noise scales must be >= 0")
        self._reset_qpos_std = float(reset_qpos_std)
        self._reset_qvel_std = float(reset_qvel_std)
        MujocoEnv.__init__(self, self.xml_file, self.frame_skip, observation_space=None, **kwargs)
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}
        obs_size = self._get_obs().size
        self.observation_space = Box(-np.inf, np.inf, (obs_size,), np.float64)

    def _get_obs(self) -> np.ndarray:
        raise NotImplementedError

    def _reward_and_termination(
        self, x_before: float, action: np.ndarray
    ) -> tuple[float, bool, dict[str, float]]:
        raise NotImplementedError

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


class HalfCheetahRllabEnv(TotalMassFromXML, RllabMujocoEnv):
    """rllab's ``gym_mujoco`` HalfCheetah: Gymnasium's XML (the same file as rllab's), one
    physics step of 0.01 s per action, observation ``qpos[1:], qvel`` (17), reward
    ``forward_reward_weight * dx/dt - ctrl_cost_weight * |clip(a)|^2``.

    With MuJoCo's Euler integrator ``x' = x + dt * qvel'[0]``, so the forward velocity is the
    next observation's ``qvel[0]`` (index 8), the quantity the official model-side reward reads.
    """

    xml_file = "half_cheetah.xml"
    frame_skip = 1

    def __init__(
        self, forward_reward_weight: float = 1.0, ctrl_cost_weight: float = 0.1, **kwargs: Any
    ) -> None:
        self._forward_reward_weight = float(forward_reward_weight)
        self._ctrl_cost_weight = float(ctrl_cost_weight)
        super().__init__(**kwargs)
        utils.EzPickle.__init__(self, forward_reward_weight, ctrl_cost_weight, **kwargs)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[1:], self.data.qvel])

    def _reward_and_termination(self, x_before, action):
        x_velocity = (float(self.data.qpos[0]) - x_before) / self.dt
        forward = self._forward_reward_weight * x_velocity
        ctrl = self._ctrl_cost_weight * float(np.square(action).sum())
        info = {"x_velocity": x_velocity, "reward_forward": forward, "reward_ctrl": -ctrl}
        return forward - ctrl, False, info
