"""The reward and termination functions given to the model-based algorithms equal the env's
own, on real transitions, at default and non-default env kwargs."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

from benchmark.tasks import UnknownTaskError, list_tasks, make_task

N_TRANSITIONS = 2000

NON_DEFAULT_KWARGS = {
    "halfcheetah": {"forward_reward_weight": 0.7, "ctrl_cost_weight": 0.3},
    "hopper": {"ctrl_cost_weight": 0.3, "healthy_reward": 2.0, "healthy_z_range": (0.9, 1.5)},
    "walker2d": {
        "ctrl_cost_weight": 0.01,
        "healthy_reward": 0.5,
        "healthy_angle_range": (-0.5, 0.5),
    },
    "ant": {
        "ctrl_cost_weight": 0.2,
        "healthy_reward": 0.5,
        "healthy_z_range": (0.3, 0.9),
        "include_cfrc_ext_in_observation": True,
        "contact_cost_weight": 5e-4,
    },
    "swimmer": {"forward_reward_weight": 2.0, "ctrl_cost_weight": 1e-3},
    "pr2reach": {"reward_dist_weight": 2.0, "reward_control_weight": 0.05},
    "point2d": {"goal": (0.5, -0.5), "max_step": 0.2},
    "halfcheetah-cripple": {"ctrl_cost_weight": 0.3, "crippled_choices": (1, 4), "cripple_step": 7},
    "ant-cripple": {"ctrl_cost_weight": 0.2, "healthy_reward": 0.5, "crippled_choices": (3,)},
    "halfcheetah-dynamics": {"forward_reward_weight": 0.7, "mass_scale_range": (0.3, 3.0)},
    "halfcheetah-rllab": {"forward_reward_weight": 0.7, "ctrl_cost_weight": 0.3},
    "hopper-rllab": {"ctrl_cost_weight": 0.3, "alive_bonus": 2.0, "healthy_z_min": 1.0},
    "walker2d-rllab": {"ctrl_cost_weight": 0.01, "healthy_angle_range": (-0.5, 0.5)},
    "swimmer-rllab": {"forward_reward_weight": 2.0, "ctrl_cost_weight": 1e-2},
    "ant-rllab": {
        "ctrl_cost_weight": 0.02,
        "survive_reward": 0.5,
        "contact_cost_weight": 0.0,
        "healthy_z_range": (0.5, 1.0),  # ends some episodes: the termination check bites
    },
    "pr2reach-rllab": {"reward_dist_weight": 2.0, "reward_control_weight": 0.05},
    "point2d-flip": {"goal": (0.5, -0.5), "action_flip_prob": 1.0},
}


UNOBSERVED_REWARD_TERMS = {"ant-rllab": "reward_contact"}
"""Reward terms the observation cannot give, left out of the task's reward function (and
reported in the env's info): the one documented deviation of each such task."""


def collect(task, action_scale: float, seed: int = 0):
    """Real transitions under uniform random actions scaled by ``action_scale``."""
    env = task.make_env()
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    unobserved = UNOBSERVED_REWARD_TERMS.get(task.name)
    rows = {"obs": [], "act": [], "next_obs": [], "reward": [], "terminated": [], "unobserved": []}
    for _ in range(N_TRANSITIONS):
        act = rng.uniform(task.action_low, task.action_high) * action_scale
        next_obs, reward, terminated, truncated, info = env.step(act)
        term = info[unobserved] if unobserved else 0.0
        values = (obs, act, next_obs, reward, terminated, term)
        for key, value in zip(rows, values, strict=True):
            rows[key].append(value)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return {k: torch.as_tensor(np.asarray(v), dtype=torch.float64) for k, v in rows.items()}


@pytest.mark.parametrize("action_scale", [1.0, 1.5])
@pytest.mark.parametrize("kwargs_kind", ["default", "non_default"])
@pytest.mark.parametrize("name", list_tasks())
def test_reward_and_termination_match_env(name, kwargs_kind, action_scale):
    kwargs = NON_DEFAULT_KWARGS[name] if kwargs_kind == "non_default" else {}
    task = make_task(name, **kwargs)
    data = collect(task, action_scale)
    reward = task.reward_fn(data["obs"], data["act"], data["next_obs"])
    terminated = task.termination_fn(data["obs"], data["act"], data["next_obs"])
    assert reward.shape == (N_TRANSITIONS,) and terminated.dtype == torch.bool
    observed = data["reward"] - data["unobserved"]
    np.testing.assert_allclose(reward.numpy(), observed.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(terminated.numpy(), data["terminated"].bool().numpy())


def test_the_unobserved_contact_cost_is_real_and_small():
    """rllab's Ant pays a contact cost its reward function cannot see: it is charged (not a
    vacuous deviation: charged on a third of random steps) and never above 84 clipped forces
    can make it."""
    data = collect(make_task("ant-rllab"), 1.0)
    contact = -data["unobserved"]
    assert (contact > 0).float().mean() > 0.1
    assert float(contact.max()) <= 84 * 5e-4 / 2 + 1e-12  # 84 clipped forces, weight 5e-4 / 2


def test_every_kwargs_table_entry_is_a_task():
    assert set(NON_DEFAULT_KWARGS) == set(list_tasks())


def test_hopper_terminations_are_exercised():
    """The tight z range makes hoppers fall often: the termination check is not vacuous."""
    task = make_task("hopper", **NON_DEFAULT_KWARGS["hopper"])
    data = collect(task, 1.0)
    assert 10 < int(data["terminated"].sum()) < N_TRANSITIONS


def test_hopper_without_termination_still_pays_health():
    task = make_task("hopper", terminate_when_unhealthy=False, healthy_z_range=(1.2, 2.0))
    data = collect(task, 1.0)
    reward = task.reward_fn(data["obs"], data["act"], data["next_obs"])
    np.testing.assert_allclose(reward.numpy(), data["reward"].numpy(), atol=1e-5)
    assert not task.termination_fn(data["obs"], data["act"], data["next_obs"]).any()


def test_reward_fns_are_batched_over_leading_dims():
    task = make_task("halfcheetah")
    obs = torch.randn(4, 5, task.obs_dim)
    act = torch.randn(4, 5, task.act_dim)
    assert task.reward_fn(obs, act, obs + 0.1).shape == (4, 5)
    assert task.termination_fn(obs, act, obs).shape == (4, 5)


def test_task_attributes():
    task = make_task("halfcheetah", horizon=123)
    assert (task.name, task.horizon, task.obs_dim, task.act_dim) == ("halfcheetah", 123, 18, 6)
    assert task.position_dims == (0,) and len(task.model_input_dims) == 17
    env = task.make_env()
    assert env.spec.max_episode_steps == 123
    env.close()
    ant = make_task("ant")
    assert ant.obs_dim == 29 and len(ant.model_input_dims) == 27  # the 2018 Ant's 27-d obs
    assert make_task("point2d").horizon == 30
    assert make_task("pr2reach").act_dim == 7


def test_pr2reach_goal_is_drawn_from_the_box():
    task = make_task("pr2reach")
    env = task.make_env()
    goals = np.array([env.reset(seed=s)[0][17:20] for s in range(50)])
    low, high = env.unwrapped.goal_low, env.unwrapped.goal_high
    assert np.all(goals >= low) and np.all(goals <= high)
    assert np.all(goals.std(0) > 0.05)  # actually random


def test_unknown_task_names_the_choices():
    with pytest.raises(UnknownTaskError, match="halfcheetah"):
        make_task("halfcheeta")


def test_unobservable_contact_cost_is_refused():
    with pytest.raises(ValueError, match="include_cfrc_ext_in_observation"):
        make_task("ant", contact_cost_weight=5e-4)


def test_crippled_actuators_have_no_effect_and_others_do():
    for name in ("halfcheetah-cripple", "ant-cripple"):
        task = make_task(name)
        env = task.make_env()
        env.reset(seed=4)
        unwrapped = env.unwrapped
        group = unwrapped.actuator_groups[int(unwrapped.crippled_group[0])]
        other = next(i for i in range(task.act_dim) if i not in group)
        base = np.full(task.act_dim, 0.3)

        def next_obs(action, task=task):
            copy = task.make_env()
            copy.reset(seed=4)
            return copy.step(action)[0]

        changed_crippled, changed_other = base.copy(), base.copy()
        changed_crippled[list(group)] = -0.9
        changed_other[other] = -0.9
        np.testing.assert_array_equal(next_obs(base), next_obs(changed_crippled))
        assert not np.array_equal(next_obs(base), next_obs(changed_other))


def test_ant_cripples_another_leg_in_evaluation():
    task = make_task("ant-cripple")
    assert task.make_env().unwrapped.crippled_choices == (0, 1, 2)
    assert task.make_env(evaluation=True).unwrapped.crippled_choices == (3,)


def test_cripple_mid_episode_starts_at_the_given_step():
    task = make_task("halfcheetah-cripple", cripple_step=3)
    env = task.make_env()
    env.reset(seed=0)
    masks = []
    for _ in range(5):
        masks.append(env.unwrapped.actuator_mask().min())
        env.step(np.zeros(task.act_dim))
    assert masks == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_random_dynamics_change_between_episodes():
    env = make_task("halfcheetah-dynamics").make_env()
    masses = set()
    for seed in range(4):
        env.reset(seed=seed)
        masses.add(round(float(env.unwrapped.model.body_mass[1]), 6))
    assert len(masses) == 4


def test_point2d_flip_mirrors_actions_in_some_episodes():
    env = make_task("point2d-flip").make_env()
    directions = []
    for seed in range(20):
        obs, _ = env.reset(seed=seed)
        next_obs = env.step(np.array([0.1, 0.0]))[0]
        directions.append(float(np.sign(next_obs[0] - obs[0])))
    assert set(directions) == {-1.0, 1.0}


def test_halfcheetah_without_the_deprecated_compiler_attribute_is_the_same_model():
    """Gymnasium's HalfCheetah-v5 XML sets settotalmass, which MuJoCo deprecated (a warning
    at every load). The suite's HalfCheetah applies the total mass after compiling instead:
    every model array, and a rollout, are identical to Gymnasium's."""
    import subprocess
    import sys

    ours = gym.make("mbbench/HalfCheetah-v5").unwrapped
    gymnasium_env = gym.make("HalfCheetah-v5").unwrapped
    for name in dir(gymnasium_env.model):
        value = getattr(gymnasium_env.model, name)
        if not name.startswith("_") and isinstance(value, np.ndarray):
            assert np.array_equal(value, getattr(ours.model, name)), name
    rng = np.random.default_rng(0)
    for env in (ours, gymnasium_env):
        env.reset(seed=3)
    for _ in range(100):
        action = rng.uniform(-1, 1, 6)
        assert np.array_equal(ours.step(action)[0], gymnasium_env.step(action)[0])
    loaded = subprocess.run(
        [sys.executable, "-c", "import benchmark.tasks as t; t.make_task('halfcheetah')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "deprecated" not in loaded.stdout + loaded.stderr


RLLAB_CONDITIONS = {
    # task: (seconds per action, rllab's observation size, position dims added in front)
    "halfcheetah-rllab": (0.01, 17, 0),
    "hopper-rllab": (0.02, 11, 1),
    "walker2d-rllab": (0.02, 17, 1),
    "swimmer-rllab": (0.01, 8, 1),
    "ant-rllab": (0.02, 27, 0),
    "pr2reach-rllab": (0.05, 17, 0),
}
"""The official envs' time steps and observation sizes (rllab/envs/gym_mujoco, vendor XMLs)."""


@pytest.mark.parametrize("name", sorted(RLLAB_CONDITIONS))
def test_rllab_tasks_step_and_observe_as_the_official_envs(name):
    dt, rllab_obs, added = RLLAB_CONDITIONS[name]
    task = make_task(name)
    env = task.make_env()
    assert env.unwrapped.dt == pytest.approx(dt)
    assert task.obs_dim == rllab_obs + added and len(task.position_dims) == added
    assert task.horizon == 200
    env.close()


def test_rllab_ant_starts_from_the_xml_init_qpos():
    env = make_task("ant-rllab", reset_qpos_std=0.0, reset_qvel_std=0.0).make_env()
    obs, _ = env.reset(seed=0)
    # rllab reads the XML's <numeric name="init_qpos">: z 0.55, legs bent (not qpos0's 0.75)
    np.testing.assert_allclose(obs[:13], [0.55, 1, 0, 0, 0, 0, 1, 0, -1, 0, -1, 0, 1])
    env.close()


def _settings(env) -> dict:
    """An env's scalar and small-array settings (its weights, ranges, choices)."""
    out = {}
    for key, value in vars(env).items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, tuple) or (isinstance(value, np.ndarray) and "goal" in key):
            out[key] = repr(np.asarray(value, dtype=object).tolist())
    return out


@pytest.mark.parametrize("name", sorted(NON_DEFAULT_KWARGS))
def test_a_copied_env_keeps_its_settings(name):
    """Gymnasium's MuJoCo envs pickle (and deep-copy) by calling the constructor again with
    the arguments EzPickle recorded: an env that records only its base class's arguments
    comes back with default weights."""
    env = make_task(name, **NON_DEFAULT_KWARGS[name]).make_env().unwrapped
    copied = pickle.loads(pickle.dumps(env))
    assert _settings(copied) == _settings(env)
    env.close()
    copied.close()


# The official model-side reward of each -rllab task, written out as the official envs'
# ``reward(obs, act, obs_next)`` (sandbox/ours/envs/mujoco/*_rand_param.py) on rllab's own
# observation: (rllab observation index of the velocity, control weight, action scaled by the
# half range, alive bonus, +-1000 clip). The suite's Hopper, Walker2d and Swimmer put x in front
# of rllab's observation (dimension 0), which the formula below drops first.
OFFICIAL_FORMULAS = {
    "halfcheetah-rllab": (8, 0.1, False, 0.0, True),
    "hopper-rllab": (5, 1e-3, False, 1.0, True),
    "walker2d-rllab": (8, 1e-3, False, 1.0, False),
    "swimmer-rllab": (3, 1e-4, False, 0.0, True),
    "ant-rllab": (13, 5e-3, True, 1.0, False),
}
X_IN_FRONT = {"hopper-rllab", "walker2d-rllab", "swimmer-rllab"}


def official_formula(name: str, act: np.ndarray, next_obs: np.ndarray, half_range) -> np.ndarray:
    """The official env's reward() in numpy, on rllab's observation."""
    if name == "pr2reach-rllab":
        distance = np.sum(np.square(next_obs[:, -3:]), axis=1)
        return -distance - 0.5 * 1e-2 * np.sum(np.square(act / half_range), axis=1)
    velocity_dim, w_ctrl, scaled, bonus, clip = OFFICIAL_FORMULAS[name]
    rllab_obs = next_obs[:, 1:] if name in X_IN_FRONT else next_obs
    a = act / half_range if scaled else act
    reward = rllab_obs[:, velocity_dim] + bonus - w_ctrl * np.sum(np.square(a), axis=1)
    return np.minimum(np.maximum(-1000.0, reward), 1000.0) if clip else reward


def ctrl_cost_of_clipped_part(task, act: torch.Tensor) -> torch.Tensor:
    """What the official reward charges beyond the env: the control cost of the raw action
    minus that of the clipped action."""
    env = task.make_env().unwrapped
    low, high = torch.as_tensor(task.action_low), torch.as_tensor(task.action_high)
    half_range = (high - low) / 2
    if task.name in ("ant-rllab", "pr2reach-rllab"):
        weight = getattr(env, "_ctrl_cost_weight", None) or env._reward_control_weight
        raw, clipped = act / half_range, act.clamp(low, high) / half_range
    else:
        weight, raw, clipped = env._ctrl_cost_weight, act, act.clamp(low, high)
    env.close()
    return weight * (raw.square().sum(-1) - clipped.square().sum(-1))


@pytest.mark.parametrize("name", sorted([*OFFICIAL_FORMULAS, "pr2reach-rllab"]))
def test_official_model_side_reward_is_the_official_formula(name):
    """On 2000 real transitions with actions up to 2x beyond the bounds, the official reward
    equals the official formula; it differs from the exact (env) reward by the control cost of
    the clipped part of the action, plus, where the official formula reads another quantity
    than the env pays (documented in docs/fidelity.md), exactly that quantity's difference."""
    task = make_task(name)
    data = collect(task, action_scale=2.0)
    obs, act, next_obs = data["obs"], data["act"], data["next_obs"]
    assert (act.abs() > torch.as_tensor(task.action_high)).any(), "no action beyond the bounds"
    official = task.official_reward_fn(obs, act, next_obs)
    half_range = (task.action_high - task.action_low) / 2
    expected = official_formula(name, act.numpy(), next_obs.numpy(), half_range)
    np.testing.assert_allclose(official.numpy(), expected, rtol=0, atol=1e-9)

    exact = task.reward_fn(obs, act, next_obs)
    np.testing.assert_allclose(
        exact.numpy(), (data["reward"] - data["unobserved"]).numpy(), atol=1e-5
    )
    extra_cost = ctrl_cost_of_clipped_part(task, act)
    assert (extra_cost > 0).float().mean() > 0.5  # the clipped part is charged: not vacuous
    term_difference = (official - exact) + extra_cost
    if name in ("halfcheetah-rllab", "ant-rllab"):  # the same velocity as the env's reward
        np.testing.assert_allclose(term_difference.numpy(), 0.0, atol=1e-9)
    elif name == "pr2reach-rllab":  # the next tip distance instead of the current one
        env = task.make_env().unwrapped
        w_dist = env._reward_dist_weight
        env.close()
        moved = -w_dist * (next_obs[:, 14:17].square().sum(-1) - obs[:, 14:17].square().sum(-1))
        np.testing.assert_allclose(term_difference.numpy(), moved.numpy(), atol=1e-9)
    else:  # the observed (Hopper, Walker2d: clipped) end-of-step qvel[0] for dx/dt
        env = task.make_env().unwrapped
        dt, velocity_dim = env.dt, env.data.qpos.size + (-1 if name == "swimmer-rllab" else 0)
        env.close()
        finite_difference = (next_obs[:, 0] - obs[:, 0]) / dt
        continuing = torch.ones(len(obs), dtype=torch.bool)  # a reset breaks obs -> next_obs
        continuing[1:] = (obs[1:] == next_obs[:-1]).all(-1)
        difference = next_obs[:, velocity_dim] - finite_difference
        np.testing.assert_allclose(
            term_difference[continuing].numpy(), difference[continuing].numpy(), atol=1e-9
        )


def test_official_reward_clips_at_1000_where_the_official_env_does():
    task = make_task("halfcheetah-rllab")
    obs = torch.zeros(3, task.obs_dim, dtype=torch.float64)
    next_obs = obs.clone()
    next_obs[:, 8] = torch.tensor([5e3, -5e3, 10.0])
    act = torch.zeros(3, task.act_dim, dtype=torch.float64)
    reward = task.official_reward_fn(obs, act, next_obs)
    np.testing.assert_array_equal(reward.numpy(), [1000.0, -1000.0, 10.0])


def test_imagined_reward_setting_picks_the_function_and_refuses_a_task_without_one():
    from benchmark.errors import ConfigError
    from benchmark.run import resolve_run

    with_official = {name for name in list_tasks() if make_task(name).official_reward_fn}
    assert with_official == {*OFFICIAL_FORMULAS, "pr2reach-rllab"}  # each one tested above
    rllab, v5 = make_task("halfcheetah-rllab"), make_task("halfcheetah")
    assert rllab.imagined_reward_fn("auto") is rllab.official_reward_fn is not None
    assert rllab.imagined_reward_fn("env") is rllab.reward_fn
    assert v5.official_reward_fn is None and v5.imagined_reward_fn("auto") is v5.reward_fn
    resolve_run("mbmpo", "halfcheetah", 0, 100, {"imagined_reward": "env"})
    with pytest.raises(ConfigError, match="imagined_reward: task 'halfcheetah' has no official"):
        resolve_run("mbmpo", "halfcheetah", 0, 100, {"imagined_reward": "official"})
    with pytest.raises(ConfigError, match="imagined_reward"):
        resolve_run("mbmpc", "halfcheetah", 0, 100, {"imagined_reward": "exact"})
