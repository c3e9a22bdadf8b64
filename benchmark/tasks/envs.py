"""Environments the suite defines itself: the paper's 2D point env, its PR2 reaching task
(on Gymnasium's Pusher arm), an Ant-v5 whose forward reward can be recomputed from the
observation, and the changing-dynamics envs of GrBAL/ReBAL (Nagabandi, Clavera et al. 2019):
a HalfCheetah and an Ant with crippled joints or legs, a HalfCheetah with random mass and
damping, and a 2D point whose actions are mirrored in some episodes.

The dynamics change is never in the observation: an agent can only infer it from recent
transitions. Costs are charged on the commanded action, so every reward stays a function of
(obs, action, next_obs).

They are registered with Gymnasium under the ``mbbench/`` namespace when
:mod:`benchmark.tasks` is imported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.pusher_v5 import PusherEnv


class Point2DEnv(gym.Env):
    """The 2D point env of the paper's Fig. 2.

    s' = s + clip(a, -max_step, max_step), r = -||s' - goal||, s_0 ~ U(-start_range,
    start_range)^2. It never terminates; the horizon (30 in the paper) is the TimeLimit's.
    With ``action_flip_prob`` > 0 (task ``point2d-flip``), each episode is, with that
    probability, mirrored: s' = s - clip(a, ...), which the observation does not show.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        max_step: float = 0.1,
        start_range: float = 2.0,
        goal: tuple[float, float] = (0.0, 0.0),
        action_flip_prob: float = 0.0,
        render_mode: str | None = None,
    ) -> None:
        if max_step <= 0 or start_range <= 0:
            raise ValueError("max_step and start_range must be positive")
        if not 0.0 <= action_flip_prob <= 1.0:
            raise ValueError("action_flip_prob must be in [0, 1]")
        self.action_flip_prob = float(action_flip_prob)
        self.action_sign = np.ones(1)
        self.max_step = float(max_step)
        self.start_range = float(start_range)
        self.goal = np.asarray(goal, dtype=np.float64)
        self.render_mode = render_mode
        self.action_space = spaces.Box(-self.max_step, self.max_step, (2,), np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self._state = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = self.np_random.uniform(-self.start_range, self.start_range, size=2)
        if self.action_flip_prob > 0:
            flipped = self.np_random.uniform() < self.action_flip_prob
            self.action_sign = np.array([-1.0 if flipped else 1.0])
        return self._state.copy(), {}

    def step(self, action):
        step = np.clip(np.asarray(action, dtype=np.float64), -self.max_step, self.max_step)
        step = step * self.action_sign
        self._state = self._state + step
        reward = -float(np.linalg.norm(self._state - self.goal))
        return self._state.copy(), reward, False, False, {}


class PicklesWithItsArguments:
    """Mixin for a subclass of a Gymnasium MuJoCo env: pickle and deep-copy rebuild it from the
    arguments its own constructor was called with.

    Gymnasium's MuJoCo envs pickle through ``EzPickle`` (the simulator cannot be pickled): the
    copy is built by calling the class again with the arguments recorded by the last
    ``EzPickle.__init__`` call, which is the base class's, so a subclass came back with the
    base's arguments bound to its own parameters (default weights, or a TypeError). The
    arguments are recorded here before any ``__init__`` runs.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        env = super().__new__(cls)
        env._constructor_arguments = (args, kwargs)
        return env

    def __getstate__(self) -> dict[str, Any]:
        args, kwargs = self._constructor_arguments
        return {"_ezpickle_args": args, "_ezpickle_kwargs": kwargs}


class PR2ReachEnv(PicklesWithItsArguments, PusherEnv):
    """The paper's PR2 task as a reaching task on Gymnasium's 7-DoF Pusher arm.

    A goal is drawn uniformly from the box [goal_low, goal_high] at every reset; the reward
    is -reward_dist_weight * ||tip - goal||^2 - reward_control_weight * ||a||^2. The
    observation is the arm's 7 joint angles and velocities, the tip position and the goal
    (20 numbers). The pusher's object is parked out of the arm's reach.
    """

    def __init__(
        self,
        goal_low: tuple[float, float, float] = (0.3, -0.9, -0.1),
        goal_high: tuple[float, float, float] = (0.8, -0.3, 0.3),
        reward_dist_weight: float = 1.0,
        reward_control_weight: float = 0.1,
        **kwargs: Any,
    ) -> None:
        self.goal_low = np.asarray(goal_low, dtype=np.float64)
        self.goal_high = np.asarray(goal_high, dtype=np.float64)
        if self.goal_low.shape != (3,) or np.any(self.goal_low > self.goal_high):
            raise ValueError("goal_low and goal_high must be 3-vectors with goal_low <= goal_high")
        self._goal = (self.goal_low + self.goal_high) / 2
        super().__init__(
            reward_dist_weight=reward_dist_weight,
            reward_control_weight=reward_control_weight,
            **kwargs,
        )
        self.observation_space = spaces.Box(-np.inf, np.inf, (20,), np.float64)

    def _get_rew(self, action):
        tip = self.get_body_com("tips_arm")
        reward_dist = -self._reward_dist_weight * float(np.sum(np.square(tip - self._goal)))
        reward_ctrl = -self._reward_control_weight * float(np.sum(np.square(action)))
        return reward_dist + reward_ctrl, {"reward_dist": reward_dist, "reward_ctrl": reward_ctrl}

    def reset_model(self):
        self._goal = self.np_random.uniform(self.goal_low, self.goal_high)
        qpos = self.init_qpos.copy()
        qpos[-4:-2] = (5.0, 5.0)  # the object, far out of reach
        # The goal marker's slide joints are (y, x): put it under the goal, for rendering.
        offset = self._goal[:2] - self.model.body("goal").pos[:2]
        qpos[-2:] = offset[::-1]
        qvel = self.init_qvel + self.np_random.uniform(-0.005, 0.005, size=self.model.nv)
        qvel[-4:] = 0
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_obs(self):
        return np.concatenate(
            [
                self.data.qpos.flatten()[:7],
                self.data.qvel.flatten()[:7],
                self.get_body_com("tips_arm"),
                self._goal,
            ]
        )


class QposAntEnv(PicklesWithItsArguments, AntEnv):
    """Ant-v5 with the forward velocity taken from qpos, as in the other locomotion envs.

    Ant-v5 measures it on the torso's ``xpos``, which MuJoCo computes at the start of
    ``mj_step``: it lags qpos by one physics substep, so the reward is not a function of
    (obs, action, next_obs) (measured: off by up to 0.07 a step). Everything else is Ant-v5.
    """

    def step(self, action):
        x_before = float(self.data.qpos[0])
        observation, _, terminated, truncated, info = super().step(action)
        x_velocity = (float(self.data.qpos[0]) - x_before) / self.dt
        reward, reward_info = self._get_rew(x_velocity, action)
        info.update(reward_info, x_velocity=x_velocity)
        return observation, reward, terminated, truncated, info


class _ActuatorCripple:
    """Mixin for a MuJoCo env: at every reset, one group of actuators (a joint, a leg) drawn
    from ``crippled_choices`` stops working, from step ``cripple_step`` of the episode on (0:
    the whole episode). The commanded action still pays its control cost."""

    actuator_groups: tuple[tuple[int, ...], ...]

    def _init_cripple(self, crippled_choices: tuple[int, ...], cripple_step: int) -> None:
        choices = tuple(int(c) for c in crippled_choices)
        if not choices or not all(0 <= c < len(self.actuator_groups) for c in choices):
            raise ValueError(
                f"crippled_choices must name groups 0..{len(self.actuator_groups) - 1}, "
                f"got {crippled_choices}"
            )
        if cripple_step < 0:
            raise ValueError("cripple_step must be >= 0")
        self.crippled_choices = choices
        self.cripple_step = int(cripple_step)
        self.crippled_group = np.array([choices[0]])
        self.episode_step = np.zeros(1, dtype=np.int64)

    def actuator_mask(self) -> np.ndarray:
        mask = np.ones(self.model.nu)
        if self.episode_step[0] >= self.cripple_step:
            mask[list(self.actuator_groups[int(self.crippled_group[0])])] = 0.0
        return mask

    def do_simulation(self, ctrl, n_frames) -> None:
        super().do_simulation(np.asarray(ctrl) * self.actuator_mask(), n_frames)
        self.episode_step += 1

    def reset_model(self):
        self.crippled_group = np.array([self.np_random.choice(self.crippled_choices)])
        self.episode_step = np.zeros(1, dtype=np.int64)
        return super().reset_model()


class TotalMassFromXML:
    """Mixin for a MuJoCo env whose XML sets ``<compiler settotalmass=...>``, an attribute
    MuJoCo deprecated (it prints a warning at every load). The model is compiled without it
    and then given that total mass as MuJoCo's warning advises (``mj_setTotalmass``, then
    ``mj_setConst``): every array of the model equals the one compiled with the attribute
    (tests/test_tasks.py)."""

    fullpath: str
    width: int
    height: int

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        xml = Path(self.fullpath).read_text()
        found = re.search(r'\s*settotalmass="([^"]*)"', xml)
        if found is None:
            return super()._initialize_simulation()  # type: ignore[misc]
        model = mujoco.MjModel.from_xml_string(xml.replace(found.group(0), "", 1))
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        mujoco.mj_setTotalmass(model, float(found.group(1)))
        data = mujoco.MjData(model)
        mujoco.mj_setConst(model, data)
        return model, data


class HalfCheetahV5Env(PicklesWithItsArguments, TotalMassFromXML, HalfCheetahEnv):
    """Gymnasium's HalfCheetah-v5, loaded without MuJoCo's deprecation warning."""


class HalfCheetahCrippleEnv(_ActuatorCripple, HalfCheetahV5Env):
    """HalfCheetah-v5 with one of its six joint motors (bthigh, bshin, bfoot, fthigh, fshin,
    ffoot) disabled, drawn per episode from ``crippled_choices``."""

    actuator_groups = ((0,), (1,), (2,), (3,), (4,), (5,))

    def __init__(
        self,
        crippled_choices: tuple[int, ...] = (0, 1, 2, 3, 4, 5),
        cripple_step: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_cripple(crippled_choices, cripple_step)


class AntCrippleEnv(_ActuatorCripple, QposAntEnv):
    """The suite's Ant with one leg (its hip and ankle motors) disabled, drawn per episode
    from ``crippled_choices``: legs 0-3 are the XML's legs 4, 1, 2, 3 (actuator order)."""

    actuator_groups = ((0, 1), (2, 3), (4, 5), (6, 7))

    def __init__(
        self,
        crippled_choices: tuple[int, ...] = (0, 1, 2),
        cripple_step: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._init_cripple(crippled_choices, cripple_step)


class HalfCheetahRandomDynamicsEnv(HalfCheetahV5Env):
    """HalfCheetah-v5 whose body masses and joint damping are scaled, at every reset, by
    factors drawn log-uniformly from ``mass_scale_range`` and ``damping_scale_range``."""

    def __init__(
        self,
        mass_scale_range: tuple[float, float] = (0.5, 2.0),
        damping_scale_range: tuple[float, float] = (0.5, 2.0),
        **kwargs: Any,
    ) -> None:
        for name, (low, high) in (
            ("mass_scale_range", mass_scale_range),
            ("damping_scale_range", damping_scale_range),
        ):
            if not 0 < low <= high:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got {(low, high)}")
        super().__init__(**kwargs)
        self.mass_scale_range = tuple(float(x) for x in mass_scale_range)
        self.damping_scale_range = tuple(float(x) for x in damping_scale_range)
        self.base_mass = self.model.body_mass.copy()
        self.base_damping = self.model.dof_damping.copy()
        self.dynamics_scales = np.ones(2)

    def sync_model(self) -> None:
        """Write ``dynamics_scales`` (mass, damping) into the MuJoCo model."""
        self.model.body_mass[:] = self.base_mass * self.dynamics_scales[0]
        self.model.dof_damping[:] = self.base_damping * self.dynamics_scales[1]

    def reset_model(self):
        log_uniform = lambda r: float(np.exp(self.np_random.uniform(*np.log(r))))  # noqa: E731
        self.dynamics_scales = np.array(
            [log_uniform(self.mass_scale_range), log_uniform(self.damping_scale_range)]
        )
        self.sync_model()
        return super().reset_model()


def register_envs() -> None:
    """Register this module's envs with Gymnasium (idempotent)."""
    for env_id, entry_point in [
        ("mbbench/Point2D-v0", f"{__name__}:Point2DEnv"),
        ("mbbench/HalfCheetah-v5", f"{__name__}:HalfCheetahV5Env"),
        ("mbbench/PR2Reach-v0", f"{__name__}:PR2ReachEnv"),
        ("mbbench/Ant-v5", f"{__name__}:QposAntEnv"),
        ("mbbench/HalfCheetahCripple-v0", f"{__name__}:HalfCheetahCrippleEnv"),
        ("mbbench/AntCripple-v0", f"{__name__}:AntCrippleEnv"),
        ("mbbench/HalfCheetahRandomDynamics-v0", f"{__name__}:HalfCheetahRandomDynamicsEnv"),
        ("mbbench/HalfCheetahRllab-v0", "benchmark.tasks.rllab:HalfCheetahRllabEnv"),
        ("mbbench/HopperRllab-v0", "benchmark.tasks.rllab:HopperRllabEnv"),
        ("mbbench/Walker2dRllab-v0", "benchmark.tasks.rllab:Walker2dRllabEnv"),
        ("mbbench/SwimmerRllab-v0", "benchmark.tasks.rllab:SwimmerRllabEnv"),
        ("mbbench/AntRllab-v0", "benchmark.tasks.rllab:AntRllabEnv"),
        ("mbbench/PR2ReachRllab-v0", "benchmark.tasks.rllab:PR2ReachRllabEnv"),
    ]:
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=entry_point)
