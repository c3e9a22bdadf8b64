"""Save and restore the complete state of a live env, so a training run that is checkpointed
mid-episode continues bit for bit after a restart.

What a Gymnasium env carries between steps: the wrappers' counters (TimeLimit's elapsed steps),
the unwrapped env's random generator and array attributes (a goal, a point's position) and,
for MuJoCo envs, the simulator's data: positions, velocities, the solver's warm start, and
the kinematics of the last step that the env reads before stepping again (Pusher's reward
reads body positions computed by the previous ``mj_step``). The state is made of tensors,
numbers and dicts only, so it goes into a ``weights_only`` checkpoint.

Numpy's and Python's random generators are saved the same way (:func:`rng_state`,
:func:`global_numpy_rng_state`, :func:`python_rng_state`).
"""

from __future__ import annotations

import random
from typing import Any

import gymnasium as gym
import numpy as np
import torch

# MjData arrays whose size changes with the number of contacts and constraints of the moment:
# recomputed by every mj_step from the fixed-size state, so they are not saved.
_VARIABLE_SIZE_PREFIXES = ("efc_", "efm_", "iefc_", "iacc", "ifrc_", "island_", "map_", "contact")

_WRAPPER_COUNTERS = ("_elapsed_steps", "_has_reset")


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, copy=True))


def rng_state(generator: np.random.Generator) -> dict[str, Any]:
    """State of a numpy Generator (plain dict of ints and strings)."""
    return generator.bit_generator.state


def set_rng_state(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = state


def global_numpy_rng_state() -> dict[str, Any]:
    """State of numpy's legacy global generator (``np.random.*``), as tensors and numbers."""
    # SB3 samples replay batches and action noise from this legacy generator.
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }


def set_global_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state(  # noqa: NPY002
        (
            state["name"],
            state["keys"].numpy().astype(np.uint32),
            state["pos"],
            state["has_gauss"],
            state["cached_gaussian"],
        )
    )


def python_rng_state() -> dict[str, Any]:
    """State of Python's ``random`` module (plain ints)."""
    version, internal, gauss = random.getstate()
    return {"version": version, "internal": list(internal), "gauss": gauss}


def set_python_rng_state(state: dict[str, Any]) -> None:
    random.setstate((state["version"], tuple(state["internal"]), state["gauss"]))


def _mujoco_data_state(data: Any) -> dict[str, torch.Tensor]:
    state = {}
    for name in dir(data):
        if name.startswith("_") or name.startswith(_VARIABLE_SIZE_PREFIXES):
            continue
        value = getattr(data, name, None)
        if isinstance(value, np.ndarray):
            state[name] = _to_tensor(value)
    state["time"] = torch.tensor(float(data.time), dtype=torch.float64)
    return state


def _set_mujoco_data_state(data: Any, state: dict[str, torch.Tensor]) -> None:
    for name, value in state.items():
        if name == "time":
            data.time = float(value)
            continue
        target = getattr(data, name)
        array = value.numpy()
        if target.shape != array.shape:
            raise ValueError(f"MuJoCo state {name}: shape {array.shape}, env has {target.shape}")
        target[...] = array


def env_state(env: gym.Env) -> dict[str, Any]:
    """Everything that decides what ``env`` does next (wrappers included)."""
    wrappers = []
    layer = env
    while isinstance(layer, gym.Wrapper):
        wrappers.append({k: getattr(layer, k) for k in _WRAPPER_COUNTERS if hasattr(layer, k)})
        layer = layer.env
    unwrapped = layer
    attributes = {
        name: _to_tensor(value)
        for name, value in vars(unwrapped).items()
        if isinstance(value, np.ndarray)
    }
    state: dict[str, Any] = {"wrappers": wrappers, "attributes": attributes}
    if unwrapped._np_random is not None:
        state["np_random"] = rng_state(unwrapped._np_random)
    data = getattr(unwrapped, "data", None)
    if data is not None and type(data).__name__ == "MjData":
        state["mujoco"] = _mujoco_data_state(data)
    return state


def set_env_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Restore what :func:`env_state` returned into an env built the same way."""
    layer, wrappers = env, list(state["wrappers"])
    while isinstance(layer, gym.Wrapper):
        if not wrappers:
            raise ValueError("env state has fewer wrapper layers than the env")
        for key, value in wrappers.pop(0).items():
            setattr(layer, key, value)
        layer = layer.env
    if wrappers:
        raise ValueError("env state has more wrapper layers than the env")
    for name, value in state["attributes"].items():
        setattr(layer, name, value.numpy().copy())
    if "np_random" in state:
        layer.np_random = np.random.default_rng()
        set_rng_state(layer.np_random, state["np_random"])
    if "mujoco" in state:
        _set_mujoco_data_state(layer.data, state["mujoco"])
    if hasattr(layer, "sync_model"):  # model parameters kept as env attributes (mass, ...)
        layer.sync_model()
