"""A live env's saved state, restored into a fresh env, continues bit for bit: the same
observations, rewards, terminations and resets (what a mid-episode checkpoint relies on)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.tasks import list_tasks, make_task
from benchmark.tasks.state import (
    env_state,
    global_numpy_rng_state,
    set_env_state,
    set_global_numpy_rng_state,
)


def play(env, actions):
    """Step through ``actions``, resetting (unseeded) whenever an episode ends."""
    trace = []
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        trace.append((obs.copy(), reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            trace.append((obs.copy(), None, None, None))
    return trace


@pytest.mark.parametrize("name", list_tasks())
def test_restored_env_continues_identically(name):
    task = make_task(name, horizon=25)  # short: the continuation crosses episode ends
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1.5, 1.5, (90, task.act_dim)) * task.action_high
    env = task.make_env()
    env.reset(seed=3)
    play(env, actions[:37])  # mid-episode, after one reset
    state = env_state(env)
    expected = play(env, actions[37:])

    fresh = task.make_env()
    fresh.reset(seed=99)  # a different episode, overwritten by the restore
    fresh.step(actions[0])
    set_env_state(fresh, state)
    got = play(fresh, actions[37:])
    assert len(got) == len(expected)
    for (o1, r1, t1, u1), (o2, r2, t2, u2) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert (r1, t1, u1) == (r2, t2, u2)


def test_restore_refuses_an_env_built_differently():
    state = env_state(make_task("point2d").make_env())
    state["wrappers"].append({})
    with pytest.raises(ValueError, match="more wrapper layers"):
        set_env_state(make_task("point2d").make_env(), state)


def test_global_numpy_rng_round_trip():
    # the legacy global generator is the one SB3 draws from
    # ruff: noqa: NPY002
    np.random.seed(5)
    state = global_numpy_rng_state()
    first = np.random.normal(size=4)
    np.random.seed(6)
    set_global_numpy_rng_state(state)
    np.testing.assert_array_equal(np.random.normal(size=4), first)
