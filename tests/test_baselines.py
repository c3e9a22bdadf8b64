"""MB-MPC and the Stable-Baselines3 baselines under the shared protocol."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from algorithms import get_algorithm, list_algorithms
from benchmark.cli import main
from benchmark.run import resolve_run
from benchmark.rundir import REQUIRED_COLUMNS
from benchmark.tasks import list_tasks

SB3_ALGOS = ["ppo", "trpo", "ddpg", "sac", "td3", "a2c"]
MPC_POINT2D = [
    "initial_random_steps=600",
    "steps_per_iteration=300",
    "num_candidates=200",
    "planning_horizon=5",
    "model_hidden_sizes=[64,64]",
    "model_max_epochs=30",
    "eval_every=300",
    "eval_episodes=10",
]


def run(out, algo, task, steps, settings=(), seed=0, preset=None):
    args = ["run", "--algo", algo, "--task", task, "--steps", str(steps), "--seed", str(seed)]
    for item in settings:
        args += ["--set", item]
    if preset:
        args += ["--preset", preset]
    return main([*args, "--quiet", "--out", str(out)])


def rows(out):
    with open(out / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("algo", SB3_ALGOS)
def test_sb3_algorithm_writes_a_valid_run_directory(tmp_path, algo):
    out = tmp_path / algo
    assert run(out, algo, "halfcheetah", 1000, ["eval_every=500", "eval_episodes=2"]) == 0
    table = rows(out)
    assert list(table[0])[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
    assert [int(r["env_steps"]) for r in table] == [500, 1000]
    assert all(np.isfinite(float(r["return_mean"])) for r in table)


def test_mbmpc_beats_random_on_point2d(tmp_path):
    """Final evaluation return beats the random policy's (about -46) by at least 20."""
    assert run(tmp_path / "mpc", "mbmpc", "point2d", 1200, MPC_POINT2D) == 0
    assert (
        run(tmp_path / "rnd", "random", "point2d", 300, ["eval_every=300", "eval_episodes=10"]) == 0
    )
    final = float(rows(tmp_path / "mpc")[-1]["return_mean"])
    random_return = float(rows(tmp_path / "rnd")[-1]["return_mean"])
    assert final > random_return + 20, (final, random_return)


def test_every_algorithm_builds_on_every_task():
    from benchmark.logger import NullLogger

    for algo in list_algorithms():
        for task in list_tasks():
            resolved = resolve_run(algo, task, 0, 1000, preset=None)
            logger = NullLogger(eval_every=1000)
            instance = get_algorithm(algo)(resolved.task, resolved.algorithm_config, 0, logger)
            assert instance.env_steps == 0


def test_acktr_is_listed_as_not_available(capsys):
    assert "acktr" not in list_algorithms()
    main(["list"])
    assert "acktr" in capsys.readouterr().out
    assert run("/nonexistent/x", "acktr", "halfcheetah", 10) == 2


TINY = {
    "random": [],
    "mbmpo": [
        "initial_random_steps=100",
        "num_tasks=5",
        "imagined_trajectories=2",
        "imagined_horizon=5",
        "meta_steps=1",
        "model_hidden_sizes=[16,16]",
        "model_max_epochs=1",
    ],
    "mbmpc": [
        "initial_random_steps=100",
        "steps_per_iteration=50",
        "num_candidates=20",
        "planning_horizon=2",
        "model_hidden_sizes=[16,16]",
        "model_max_epochs=1",
    ],
}
TINY["metrpo"] = TINY["mbmpo"]


@pytest.mark.slow
@pytest.mark.parametrize("task", list_tasks())
@pytest.mark.parametrize("algo", list_algorithms())
def test_every_algorithm_runs_on_every_task(tmp_path, algo, task):
    settings = [*TINY.get(algo, []), "eval_every=100", "eval_episodes=1", "horizon=20"]
    assert run(tmp_path / "run", algo, task, 200, settings) == 0
    table = rows(tmp_path / "run")
    assert int(table[-1]["env_steps"]) == 200
    assert np.isfinite(float(table[-1]["return_mean"]))


def test_ppo_paper_normalizes_and_resumes_its_normalizer_exactly(monkeypatch):
    """The paper preset's PPO trains on VecNormalize (the official ppo2 setting): the running
    statistics move, the policy acts on normalized observations, and a run resumed from the
    checkpoint taken at a rollout start ends with the same weights and statistics as the
    uninterrupted run (what benchmark.run does on resume: torch's generator restored too)."""
    import io

    import torch

    from algorithms import sb3
    from benchmark.logger import NullLogger

    small = {**sb3.HYPERPARAMS["ppo"]["paper"], "n_steps": 64, "batch_size": 32, "n_epochs": 2}
    monkeypatch.setitem(sb3.HYPERPARAMS["ppo"], "paper", small)

    class KeepingLogger(NullLogger):
        def checkpoint(self, env_steps, state):
            if env_steps == 128:  # the start of the third rollout
                self.saved = io.BytesIO()
                torch.save({"state": state, "torch_rng": torch.get_rng_state()}, self.saved)

    def build(logger):
        torch.manual_seed(0)  # as benchmark.run seeds every run
        resolved = resolve_run("ppo", "point2d", 0, 256, preset="paper")
        return get_algorithm("ppo")(resolved.task, resolved.algorithm_config, 0, logger)

    keeping = KeepingLogger(eval_every=64)
    whole = build(keeping)
    whole.train(256)
    assert whole.normalizer is not None and whole.normalizer.obs_rms.count > 256
    keeping.saved.seek(0)
    checkpoint = torch.load(keeping.saved, weights_only=False)
    resumed = build(NullLogger(eval_every=64))
    resumed.load_state_dict(checkpoint["state"])
    torch.set_rng_state(checkpoint["torch_rng"])
    resumed.train(256)
    for name, value in whole.model.policy.state_dict().items():
        torch.testing.assert_close(resumed.model.policy.state_dict()[name], value, rtol=0, atol=0)
    for name, value in whole._normalizer_arrays().items():
        np.testing.assert_array_equal(resumed._normalizer_arrays()[name], value, err_msg=name)
    obs = np.array([1.0, -1.0])
    assert not np.allclose(whole._policy_obs(obs), obs)  # the policy sees normalized obs
