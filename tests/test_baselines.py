"""MB-MPC and the Stable-Baselines3 baselines under the shared protocol."""

from __future__ import annotations

import csv
import tempfile

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
def test_sb3_algorithm_writes_a_valid_run_directory(tmp_path, monkeypatch, algo):
    scratch = tmp_path / "tmp"  # SB3's default logger made a directory here at every learn()
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    out = tmp_path / algo
    assert run(out, algo, "halfcheetah", 1000, ["eval_every=500", "eval_episodes=2"]) == 0
    # torch's own compile cache (torchinductor_<user>) appears here when the first process
    # to import torch._dynamo (lazily, from an optimizer step) is this one: not SB3's logger.
    leftovers = [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
    assert leftovers == []
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


SMALL_PAPER_SETS = {
    # Rollouts of 64 steps (checkpoints at their starts); DDPG adapts its parameter noise
    # every 8 of its 16 updates and redraws it at every 20-step episode end.
    "ppo": {"n_steps": 64, "batch_size": 32, "n_epochs": 2},
    "ddpg": {"train_freq": (64, "step"), "gradient_steps": 16, "adaption_interval": 8},
}


@pytest.mark.parametrize("algo", sorted(SMALL_PAPER_SETS))
def test_paper_sets_normalize_and_resume_exactly(monkeypatch, algo):
    """The paper presets of PPO and DDPG train on VecNormalize (the official settings): the
    running statistics move, the policy acts on normalized observations, and a run resumed
    from the checkpoint taken at a rollout start ends with the same weights (DDPG: with its
    perturbed actor and noise std) and statistics as the uninterrupted run (what
    benchmark.run does on resume: torch's generator restored too)."""
    import io

    import torch

    from algorithms import sb3
    from benchmark.logger import NullLogger

    small = {**sb3.HYPERPARAMS[algo]["paper"], **SMALL_PAPER_SETS[algo]}
    monkeypatch.setitem(sb3.HYPERPARAMS[algo], "paper", small)

    class KeepingLogger(NullLogger):
        def checkpoint(self, env_steps, state):
            if env_steps == 128:  # the start of the third rollout
                self.saved = io.BytesIO()
                torch.save({"state": state, "torch_rng": torch.get_rng_state()}, self.saved)

    def build(logger):
        torch.manual_seed(0)  # as benchmark.run seeds every run
        resolved = resolve_run(algo, "point2d", 0, 256, {"horizon": 20}, preset="paper")
        return get_algorithm(algo)(resolved.task, resolved.algorithm_config, 0, logger)

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
    state = whole.model.policy.state_dict()
    if algo == "ddpg":
        assert float(state["param_noise_std"]) != pytest.approx(0.2)  # it adapted
    for name, value in state.items():
        torch.testing.assert_close(resumed.model.policy.state_dict()[name], value, rtol=0, atol=0)
    for name, value in whole._normalizer_arrays().items():
        np.testing.assert_array_equal(resumed._normalizer_arrays()[name], value, err_msg=name)
    for stats in ("obs_rms", "ret_rms"):
        counts = (getattr(n, stats).count for n in (resumed.normalizer, whole.normalizer))
        assert next(counts) == next(counts), stats
    obs = np.array([1.0, -1.0])
    assert not np.allclose(whole._policy_obs(obs), obs)  # the policy sees normalized obs


def _paper_ddpg(task="halfcheetah-rllab", steps=1000):
    from benchmark.logger import NullLogger

    resolved = resolve_run("ddpg", task, 0, steps, preset="paper")
    return get_algorithm("ddpg")(resolved.task, resolved.algorithm_config, 0, NullLogger(10**9))


def test_paper_ddpg_has_the_official_networks_and_optimizers():
    """baselines/ddpg/models.py and ddpg.py: actor 32-32 tanh and critic 64-64 ReLU with
    LayerNorm, the action entering the critic's second layer, outputs in +-3e-3; actor lr
    1e-5 and critic lr 1e-3 kept through training; L2 0.01 on the critic's two hidden weight
    matrices only."""
    from torch import nn

    algo = _paper_ddpg()
    policy = algo.model.policy
    kinds = [type(m) for m in policy.actor.mu]
    assert kinds == [nn.Linear, nn.LayerNorm, nn.Tanh] * 2 + [nn.Linear, nn.Tanh]
    first, rest = policy.critic.q_networks[0].first, policy.critic.q_networks[0].rest
    assert [type(m) for m in first] == [nn.Linear, nn.LayerNorm, nn.ReLU]
    assert first[0].weight.shape == (64, 17)  # the observation alone
    assert rest[0].weight.shape == (64, 64 + 6)  # then the action joins
    for output in (policy.actor.mu[-2], rest[-1]):
        assert output.weight.abs().max() <= 3e-3 and output.bias.abs().max() <= 3e-3
    algo.train(1000)  # 5 cycles of 200 steps and 50 updates
    assert algo.model._n_updates == 200
    (actor_group,) = policy.actor.optimizer.param_groups
    decayed, rest_group = policy.critic.optimizer.param_groups
    assert actor_group["lr"] == 1e-5 and decayed["lr"] == rest_group["lr"] == 1e-3
    assert decayed["weight_decay"] == 0.01 and rest_group["weight_decay"] == 0
    assert [tuple(p.shape) for p in decayed["params"]] == [(64, 17), (64, 70)]
    n_critic = sum(1 for _ in policy.critic.parameters())
    assert len(decayed["params"]) + len(rest_group["params"]) == n_critic


def test_paper_ddpg_parameter_noise_adapts_and_is_redrawn_each_episode():
    """The acting actor is the actor plus noise on its Linear layers (LayerNorm untouched),
    redrawn at every episode end; a probe perturbation that moves actions by more than 0.2
    divides the std by 1.01, one that moves them less multiplies it."""
    import torch
    from torch import nn

    algo = _paper_ddpg()
    model, policy = algo.model, algo.model.policy
    algo.train(400)  # two episodes of 200 steps: the buffer holds a batch
    perturbed, actor = policy.perturbed_actor.mu, policy.actor.mu
    model._perturb(policy.perturbed_actor)  # the actor has trained since the last episode end
    for clean, noisy in zip(actor, perturbed, strict=True):
        for a, b in zip(clean.parameters(), noisy.parameters(), strict=True):
            assert torch.equal(a, b) == (not isinstance(clean, nn.Linear))
    obs = algo._policy_obs(np.zeros(18))
    exploring, _ = model.predict(obs, deterministic=False)  # what collects and paper_return
    with torch.no_grad():
        scaled = policy.perturbed_actor(policy.obs_to_tensor(obs)[0]).numpy()[0]
    np.testing.assert_allclose(exploring, policy.unscale_action(scaled), rtol=1e-6)
    assert not np.allclose(exploring, algo.act(np.zeros(18)))
    before = [p.clone() for p in perturbed.parameters()]
    model.learn(200, reset_num_timesteps=False)  # one more episode end
    assert not torch.equal(before[0], next(perturbed.parameters()))
    policy.param_noise_std.fill_(3.0)
    assert model.adapt_param_noise() > 0.2
    assert float(policy.param_noise_std) == pytest.approx(3.0 / 1.01)
    policy.param_noise_std.fill_(1e-4)
    assert model.adapt_param_noise() < 0.2
    assert float(policy.param_noise_std) == pytest.approx(1e-4 * 1.01)


def test_rllab_trpo_updates_within_its_kl_bound(tmp_path):
    """rllab's TRPO on real data: every accepted update moved the policy (KL > 0), stayed
    within the 0.01 bound and raised the surrogate; its paper_return is the training
    episodes' mean return."""
    out = tmp_path / "run"
    settings = ["batch_size=500", "eval_every=500", "eval_episodes=2"]
    assert run(out, "rllab_trpo", "point2d", 2000, settings) == 0
    table = rows(out)
    assert [int(r["env_steps"]) for r in table] == [500, 1000, 1500, 2000]
    for row in table:
        assert row["step_accepted"] == "1.0"
        assert 0 < float(row["kl"]) <= 0.01 and float(row["surrogate_gain"]) > 0
        assert row["paper_return"] == row["collected_return"]
