"""The dynamics ensemble and imagined rollouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from algorithms.common.buffer import TransitionBuffer
from algorithms.common.ensemble import (
    DynamicsEnsemble,
    EarlyStopping,
    EnsembleConfig,
    FrozenEnsemble,
    LockstepTrainer,
    fit_epoch_cap,
)
from algorithms.common.rollout import imagine
from benchmark.tasks import make_task


def random_transitions(task, n: int, seed: int = 0):
    env = task.make_env()
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(n):
        act = rng.uniform(task.action_low, task.action_high)
        next_obs, _, terminated, truncated, _ = env.step(act)
        rows.append((obs, act, next_obs))
        obs = next_obs if not (terminated or truncated) else env.reset()[0]
    env.close()
    return [torch.as_tensor(np.array(x), dtype=torch.float32) for x in zip(*rows, strict=True)]


@pytest.fixture(scope="module")
def cheetah():
    task = make_task("halfcheetah")
    return task, random_transitions(task, 12_000)


def make_ensemble(task, seed=0, **overrides):
    config = EnsembleConfig(**overrides)
    return DynamicsEnsemble(task.obs_dim, task.act_dim, task.model_input_dims, config, seed=seed)


def test_fit_beats_the_mean_predictor_by_5x_on_held_out_data(cheetah):
    task, (obs, act, next_obs) = cheetah
    train, test = slice(0, 10_000), slice(10_000, None)
    ensemble = make_ensemble(task, num_models=3, hidden_sizes=(256, 256), max_epochs=25)
    info = ensemble.fit(obs[train], act[train], next_obs[train])
    assert np.isfinite(info["train_loss"]) and np.isfinite(info["valid_loss"])
    target = (
        next_obs[test] - obs[test] - ensemble.normalizer.delta_mean
    ) / ensemble.normalizer.delta_std
    with torch.no_grad():
        model_mse = np.mean(
            [
                float(((ensemble.normalized_delta(k, obs[test], act[test]) - target) ** 2).mean())
                for k in range(3)
            ]
        )
    mean_mse = float((target**2).mean())  # predicting the (training) mean delta
    assert model_mse * 5 < mean_mse, (model_mse, mean_mse)


def test_frozen_fast_path_equals_the_trained_networks(cheetah):
    task, (obs, act, next_obs) = cheetah
    ensemble = make_ensemble(task, num_models=2, hidden_sizes=(64, 64), max_epochs=2)
    ensemble.fit(obs[:2000], act[:2000], next_obs[:2000])
    fast = ensemble.predict(obs[:100], act[:100])
    with torch.no_grad():
        for k in range(2):
            slow = obs[:100] + (
                ensemble.normalized_delta(k, obs[:100], act[:100]) * ensemble.normalizer.delta_std
                + ensemble.normalizer.delta_mean
            )
            torch.testing.assert_close(fast[k], slow, rtol=1e-4, atol=1e-4)


def test_loop_and_bmm_layouts_agree(cheetah):
    task, (obs, act, next_obs) = cheetah
    ensemble = make_ensemble(task, num_models=3, hidden_sizes=(64, 64), max_epochs=1)
    ensemble.fit(obs[:1000], act[:1000], next_obs[:1000])
    grouped_obs, grouped_act = obs[:300].view(3, 100, -1), act[:300].view(3, 100, -1)
    loop = ensemble.frozen("loop").predict_grouped(grouped_obs, grouped_act)
    bmm = ensemble.frozen("bmm").predict_grouped(grouped_obs, grouped_act)
    torch.testing.assert_close(loop, bmm, rtol=1e-5, atol=1e-5)
    ids = torch.arange(300) // 100
    assigned = ensemble.frozen().predict_assigned(obs[:300], act[:300], ids)
    torch.testing.assert_close(assigned.view(3, 100, -1), bmm, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("weight_norm", [True, False])
@pytest.mark.parametrize("sizes", [(3, 2, (16, 16), 40), (23, 6, (512, 512), 500)])
def test_lockstep_training_is_bit_identical_to_training_each_model_alone(weight_norm, sizes):
    """The lockstep trainer (one batched step of all models) against torch.optim.Adam on each
    model separately, with models dropping out and coming back as early stopping does: every
    weight and Adam moment equal bit for bit, at a small and at the faithful size."""
    obs_dim, act_dim, hidden, rows = sizes
    config = EnsembleConfig(hidden_sizes=hidden, weight_norm=weight_norm)
    alone = DynamicsEnsemble(obs_dim, act_dim, list(range(obs_dim)), config, seed=3)
    lockstep = DynamicsEnsemble(obs_dim, act_dim, list(range(obs_dim)), config, seed=3)
    trainer = LockstepTrainer(lockstep)
    generator = torch.Generator().manual_seed(0)
    for active in [[0, 1, 2, 3, 4], [0, 2, 3], [3], [0, 1, 2, 3, 4]]:
        x = torch.randn(len(active), rows, obs_dim + act_dim, generator=generator)
        y = torch.randn(len(active), rows, obs_dim, generator=generator)
        losses = trainer.step(active, x, y)
        for i, k in enumerate(active):
            loss = F.mse_loss(alone.models[k](x[i]), y[i])
            alone.optimizers[k].zero_grad()
            loss.backward()
            alone.optimizers[k].step()
            assert torch.equal(losses[i], loss.detach())
    trainer.write_back()
    for k in range(5):
        for mine, theirs in zip(
            lockstep.models[k].parameters(), alone.models[k].parameters(), strict=True
        ):
            assert torch.equal(mine, theirs)
            ours, ref = lockstep.optimizers[k].state[mine], alone.optimizers[k].state[theirs]
            assert ours.keys() == ref.keys()
            assert all(torch.equal(ours[key], ref[key]) for key in ref)


def test_held_out_losses_in_chunks_equal_one_pass(monkeypatch):
    """Large held-out sets are scored in chunks (bounded memory); the losses are the one-pass
    MSEs to float32 precision, for all models and for a subset."""
    from algorithms.common import ensemble as ensemble_module

    config = EnsembleConfig(hidden_sizes=(64, 64))
    model = DynamicsEnsemble(17, 6, list(range(17)), config, seed=1)
    trainer = LockstepTrainer(model)
    generator = torch.Generator().manual_seed(2)
    for active in [[0, 1, 2, 3, 4], [1, 3]]:
        x = torch.randn(len(active), 1000, 23, generator=generator)
        y = torch.randn(len(active), 1000, 17, generator=generator)
        one_pass = trainer.losses(active, x, y)
        monkeypatch.setattr(ensemble_module, "LOSS_CHUNK_ROWS", 128)  # 8 chunks, the last short
        chunked = trainer.losses(active, x, y)
        monkeypatch.undo()
        assert len(chunked) == len(active)
        for a, b in zip(chunked, one_pass, strict=True):
            assert b.item() > 0.5  # random targets: a loss far from zero, compared relatively
            torch.testing.assert_close(a, b, rtol=1e-6, atol=0)


@pytest.mark.parametrize(
    ("rule", "cap", "fewest", "most"),
    [
        ({"early_stop_persistence": 0.9}, 400, 1, 399),  # the official rule, faster average
        ({"early_stopping": "patience"}, 300, 6, 99),  # no 1% gain within 5 epochs
    ],
)
def test_early_stopping_ends_an_overfitting_fit_before_the_cap(cheetah, rule, cap, fewest, most):
    task, (obs, act, next_obs) = cheetah
    # 300 transitions and a wide net overfit at once: validation loss turns up.
    ensemble = make_ensemble(
        task, num_models=2, hidden_sizes=(256, 256), max_epochs=cap, batch_size=64, **rule
    )
    info = ensemble.fit(obs[:300], act[:300], next_obs[:300])
    assert all(fewest <= e <= most for e in info["epochs"]), info["epochs"]


@pytest.mark.parametrize(
    ("n_train", "max_epochs", "max_updates", "cap"),
    [
        (800, 500, None, 500),  # no update cap: the epoch cap
        (800, 500, 7, 4),  # 2 minibatches of 500 per epoch: 7 updates need 4 epochs
        (800, 500, 8, 4),
        (800, 500, 9, 5),
        (100_000, 500, 2000, 10),  # a large buffer: few epochs
        (800, 2, 7, 2),  # the epoch cap still binds
    ],
)
def test_the_update_cap_allows_whole_epochs_up_to_the_epoch_cap(
    n_train, max_epochs, max_updates, cap
):
    config = EnsembleConfig(max_epochs=max_epochs, max_updates=max_updates)
    assert fit_epoch_cap(config, n_train) == cap


def test_a_fit_stops_at_its_update_cap(cheetah, monkeypatch):
    """800 training rows in minibatches of 300: 3 updates an epoch, so a cap of 7 updates
    trains 3 epochs (9 lockstep updates), where the epoch cap alone would allow 50."""
    task, (obs, act, next_obs) = cheetah
    updates = []
    step = LockstepTrainer.step

    def counting(self, active, x, y):
        updates.append(len(active))
        return step(self, active, x, y)

    monkeypatch.setattr(LockstepTrainer, "step", counting)
    ensemble = make_ensemble(
        task, num_models=2, hidden_sizes=(16,), max_epochs=50, max_updates=7, batch_size=300
    )
    info = ensemble.fit(obs[:1000], act[:1000], next_obs[:1000])
    assert info["epochs"] == [3, 3]
    assert updates == [2] * 9


@pytest.mark.parametrize(
    ("rule", "losses", "stops_after_epoch"),
    [
        # best 1.0; 0.95 is not 10% better (1); 0.89 is (best, 0); then 1, 2, 3: stop.
        ("patience", [1.0, 0.95, 0.89, 0.85, 0.84, 0.83, 0.1], 6),
        # the average starts at 1.5 (previous 2.0): 1.495, then 0.99 * 1.495 + 0.01 * 100.
        ("official", [1.0, 100.0, 0.1], 2),
        ("official", [1.0] * 50, None),  # a flat loss never raises the average
    ],
)
def test_early_stopping_rules_stop_at_the_hand_computed_epoch(rule, losses, stops_after_epoch):
    config = EnsembleConfig(early_stopping=rule, patience=3, min_improvement=0.1)
    stopping = EarlyStopping(config)
    stopped = [stopping.stops_after(loss) for loss in losses]
    first = stopped.index(True) + 1 if True in stopped else None
    assert first == stops_after_epoch


@pytest.mark.parametrize("batches", ["fixed", "reshuffled"])
def test_fixed_minibatches_keep_their_members_for_the_whole_fit(cheetah, monkeypatch, batches):
    """'fixed' (the official batching): the same minibatches in every epoch, only their order
    changes; 'reshuffled': new ones every epoch."""
    task, (obs, act, next_obs) = cheetah
    members: list[frozenset] = []
    step = LockstepTrainer.step

    def recording(self, active, x, y):
        members.append(frozenset(x[0, :, 0].tolist()))  # model 0's rows, by a float feature
        return step(self, active, x, y)

    monkeypatch.setattr(LockstepTrainer, "step", recording)
    ensemble = make_ensemble(
        task, num_models=2, hidden_sizes=(16,), max_epochs=4, batch_size=300, batches=batches
    )
    ensemble.fit(obs[:1000], act[:1000], next_obs[:1000])  # 800 training rows: 3 batches
    epochs = [set(members[i : i + 3]) for i in range(0, 12, 3)]
    assert len(members) == 12 and all(len(batch) in (300, 200) for batch in members)
    if batches == "fixed":
        assert all(epoch == epochs[0] for epoch in epochs)
        assert len({tuple(members[i : i + 3]) for i in range(0, 12, 3)}) > 1  # order varies
    else:
        assert all(epoch.isdisjoint(epochs[0]) for epoch in epochs[1:])


def test_same_seed_gives_identical_weights(cheetah):
    task, (obs, act, next_obs) = cheetah
    weights = []
    for _ in range(2):
        ensemble = make_ensemble(task, seed=3, num_models=2, hidden_sizes=(32, 32), max_epochs=3)
        ensemble.fit(obs[:1000], act[:1000], next_obs[:1000])
        weights.append(ensemble.state_dict())
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    other = make_ensemble(task, seed=4, num_models=2, hidden_sizes=(32, 32))
    assert not torch.equal(
        other.state_dict()["models.0.layers.0.v"], weights[0]["models.0.layers.0.v"]
    )


def test_bias_option_shifts_predictions_by_the_drawn_bias(cheetah):
    task, (obs, act, next_obs) = cheetah
    ensemble = make_ensemble(task, num_models=3, hidden_sizes=(32, 32), max_epochs=1)
    ensemble.fit(obs[:1000], act[:1000], next_obs[:1000])
    clean = ensemble.predict(obs[:50], act[:50])
    bias = ensemble.sample_bias(bias_max=1.0, noise_std=0.0)
    assert bias.shape == (3,) and bool(((bias >= 0) & (bias <= 1)).all())
    shifted = ensemble.predict(obs[:50], act[:50])
    for k in range(3):
        torch.testing.assert_close(
            shifted[k] - clean[k], (bias[k] * ensemble.normalizer.delta_std).expand(50, -1)
        )
    assert not torch.equal(ensemble.sample_bias(1.0, 0.0), bias)  # resampled on request
    ensemble.sample_bias(0.5, 0.1)
    noisy = ensemble.predict(obs[:2000], act[:2000])
    residual = (
        noisy[0] - clean_pred(ensemble, obs[:2000], act[:2000])
    ) / ensemble.normalizer.delta_std
    assert abs(float(residual.mean()) - float(ensemble.bias[0])) < 0.01
    assert abs(float(residual.std()) - 0.1) < 0.01
    ensemble.sample_bias(0.0, 0.0)
    torch.testing.assert_close(ensemble.predict(obs[:50], act[:50]), clean)


def clean_pred(ensemble, obs, act):
    saved = ensemble.bias, ensemble.noise_std
    ensemble.bias, ensemble.noise_std = None, 0.0
    out = ensemble.predict(obs, act)[0]
    ensemble.bias, ensemble.noise_std = saved
    return out


def constant_delta_ensemble(obs_dim: int, act_dim: int, deltas: torch.Tensor) -> FrozenEnsemble:
    """A frozen ensemble whose model k predicts next = obs + deltas[k]."""
    k = deltas.shape[0]
    return FrozenEnsemble(
        torch.zeros(k, obs_dim + act_dim, 4),
        torch.zeros(k, 1, 4),
        [(torch.zeros(k, 4, obs_dim), deltas.view(k, 1, obs_dim))],
        torch.ones(obs_dim),
        clip=1000.0,
    )


def falling_hopper():
    """Hopper, an ensemble whose every prediction lowers the height by 0.1 (unhealthy below
    0.7), 4 tasks x 3 start states that fall after 6, 4 and 3 steps, and a still policy."""
    task = make_task("hopper")
    delta = torch.zeros(task.obs_dim)
    delta[1] = -0.1
    frozen = constant_delta_ensemble(task.obs_dim, task.act_dim, delta.expand(2, -1))
    start = torch.zeros(4, 3, task.obs_dim)
    start[..., 1] = torch.tensor([1.25, 1.05, 0.95]).view(1, 3)

    def policy(obs, noise):
        return torch.zeros(*obs.shape[:2], task.act_dim), torch.zeros(obs.shape[:2])

    return task, frozen, start, policy


def test_rollouts_mask_everything_after_termination():
    task, frozen, start, policy = falling_hopper()
    traj = imagine(frozen, policy, start, 10, task.reward_fn, task.termination_fn)
    assert traj.obs.shape == (4, 3, 10, task.obs_dim) and traj.mask.shape == (4, 3, 10)
    steps_alive = traj.mask.sum(-1)
    assert steps_alive[0].tolist() == [6.0, 4.0, 3.0]
    for j, alive in enumerate([6, 4, 3]):
        assert traj.mask[:, j, :alive].eq(1).all() and traj.mask[:, j, alive:].eq(0).all()
        assert traj.rewards[:, j, alive:].eq(0).all()
        assert traj.rewards[:, j, : alive - 1].gt(0).all()  # healthy steps pay the bonus
        frozen_obs = traj.obs[:, j, alive:]
        assert frozen_obs.eq(frozen_obs[:, :1]).all()  # the state stops changing


def test_restarted_rollouts_begin_a_new_episode_at_termination():
    """The official sampler's layout: a terminated imagined episode is followed by a new one
    from a fresh start state, so every row holds its full H samples."""
    task, frozen, start, policy = falling_hopper()
    fresh = torch.zeros(7, task.obs_dim)
    fresh[:, 1] = 1.25  # every restart falls after 6 steps
    fresh[:, 0] = torch.arange(7.0)  # tells the restart states apart
    traj = imagine(
        frozen,
        policy,
        start,
        10,
        task.reward_fn,
        task.termination_fn,
        generator=torch.Generator().manual_seed(0),
        restart_states=fresh,
    )
    assert traj.mask.eq(1).all() and traj.ends is not None and traj.episode_steps is not None
    for j, first in enumerate([6, 4, 3]):
        ends = [t for t in range(10) if traj.ends[0, j, t]]
        assert ends == [e for e in (first - 1, first + 5) if e < 10]
        restart_obs = traj.obs[:, j, first]
        assert restart_obs[:, 1].eq(1.25).all()  # a fresh start state, not the fallen one
        assert all(bool((fresh == row).all(-1).any()) for row in restart_obs)
        expected = [0]
        for t in range(1, 10):
            expected.append(0 if t - 1 in ends else expected[-1] + 1)
        assert traj.episode_steps[0, j].tolist() == expected
        # every other step is a real, healthy step (the falling one pays no health bonus)
        assert traj.rewards[:, j][~traj.ends[:, j]].gt(0).all()


def test_rollouts_use_one_model_per_task_group():
    obs_dim, act_dim = 2, 1
    frozen = constant_delta_ensemble(obs_dim, act_dim, torch.tensor([[1.0, 1.0], [2.0, 2.0]]))

    def policy(obs, noise):
        return torch.zeros(*obs.shape[:2], act_dim), torch.zeros(obs.shape[:2])

    traj = imagine(
        frozen,
        policy,
        torch.zeros(4, 5, obs_dim),
        3,
        lambda o, a, n: n[..., 0],
        lambda o, a, n: torch.zeros(n.shape[:-1], dtype=torch.bool),
    )
    # tasks 0-1 use model 0 (+1 a step), tasks 2-3 model 1 (+2 a step)
    assert traj.obs[:2, :, 2, 0].eq(2).all() and traj.obs[2:, :, 2, 0].eq(4).all()
    traj = imagine(
        frozen,
        policy,
        torch.zeros(4, 500, obs_dim),
        1,
        lambda o, a, n: n[..., 0],
        lambda o, a, n: torch.zeros(n.shape[:-1], dtype=torch.bool),
        model_assignment="random_step",
        generator=torch.Generator().manual_seed(0),
    )
    share_model0 = float((traj.rewards == 1).float().mean())
    assert 0.4 < share_model0 < 0.6


def test_transition_buffer_is_fifo():
    buffer = TransitionBuffer(2, 1, max_size=5)
    for i in range(4):
        buffer.add(torch.full((2, 2), float(i)), torch.zeros(2, 1), torch.zeros(2, 2))
    assert len(buffer) == 5
    assert buffer.obs[:, 0].tolist() == [1.0, 2.0, 2.0, 3.0, 3.0]


@pytest.fixture(scope="module")
def hopper_rollout_parts():
    """A fitted Hopper ensemble and a task-batched policy: rollouts that terminate unevenly."""
    from algorithms.common.policy import GaussianMLPPolicy

    task = make_task("hopper")
    obs, act, next_obs = random_transitions(task, 3000)
    ensemble = make_ensemble(task, num_models=2, hidden_sizes=(64, 64), max_epochs=3)
    ensemble.fit(obs, act, next_obs)
    policy = GaussianMLPPolicy(task.obs_dim, task.act_dim, input_dims=task.model_input_dims)
    params = {k: v.detach().expand(4, *v.shape).clone() for k, v in policy.base_params().items()}
    starts = obs[torch.randperm(len(obs), generator=torch.Generator().manual_seed(0))[: 4 * 12]]
    return task, ensemble, policy, params, starts.view(4, 12, -1)


@pytest.mark.parametrize("assignment", ["task", "random_step"])
@pytest.mark.parametrize("model_noise", [False, True])
def test_sharded_rollouts_equal_one_shard_and_repeat_exactly(
    hopper_rollout_parts, assignment, model_noise
):
    task, ensemble, policy, params, starts = hopper_rollout_parts
    ensemble.sample_bias(0.5, 0.3 if model_noise else 0.0)
    threads = torch.get_num_threads()

    def roll(num_shards):
        ensemble.generator.manual_seed(7)  # the noisy ablation's draws
        return imagine(
            ensemble.frozen(),
            lambda o, noise: policy.sample(o, params, noise=noise),
            starts,
            40,
            task.reward_fn,
            task.termination_fn,
            model_assignment=assignment,
            generator=torch.Generator().manual_seed(0),
            num_shards=num_shards,
        )

    try:
        one, three, again = roll(1), roll(3), roll(3)
    finally:
        ensemble.sample_bias(0.0, 0.0)
    assert torch.get_num_threads() == threads  # the shards' single-threading is undone
    alive_steps = one.mask.sum(-1)
    assert alive_steps.min() < 40 and alive_steps.max() > alive_steps.min()  # uneven ends
    # Shards only change how many rows a matmul sees: the same trajectories, up to rounding.
    assert torch.equal(one.mask, three.mask)
    for field in ("obs", "actions", "rewards", "log_probs"):
        torch.testing.assert_close(getattr(three, field), getattr(one, field), rtol=1e-4, atol=1e-4)
        assert torch.equal(getattr(three, field), getattr(again, field)), field


def test_predictions_do_not_share_memory_with_the_reused_buffers(cheetah):
    task, (obs, act, next_obs) = cheetah
    ensemble = make_ensemble(task, num_models=2, hidden_sizes=(32, 32), max_epochs=1)
    ensemble.fit(obs[:1000], act[:1000], next_obs[:1000])
    frozen = ensemble.frozen()
    first = frozen.predict_grouped(obs[:100].view(2, 50, -1), act[:100].view(2, 50, -1))
    kept = first.clone()
    frozen.predict_grouped(obs[100:200].view(2, 50, -1), act[100:200].view(2, 50, -1))
    assert torch.equal(first, kept)


def test_rollouts_reject_bad_shard_counts_and_assignments():
    frozen = constant_delta_ensemble(2, 1, torch.ones(2, 2))

    def policy(obs, noise):
        return torch.zeros(*obs.shape[:2], 1), torch.zeros(obs.shape[:2])

    def roll(**kwargs):
        return imagine(
            frozen,
            policy,
            torch.zeros(2, 3, 2),
            2,
            lambda o, a, n: n[..., 0],
            lambda o, a, n: torch.zeros(n.shape[:-1], dtype=torch.bool),
            **kwargs,
        )

    with pytest.raises(ValueError, match="num_shards"):
        roll(num_shards=0)
    with pytest.raises(ValueError, match="model_assignment"):
        roll(model_assignment="per_trajectory")
    assert roll(num_shards=8).obs.shape == (2, 3, 2, 2)  # more shards than trajectories


def test_mpc_random_member_predictor_draws_a_model_per_row_and_call():
    """The official MB-MPC's ``predict(pred_type='rand')``: each candidate's next state comes
    from a model drawn anew at every planning step."""
    from algorithms.common.planning import random_member_predictor

    frozen = constant_delta_ensemble(2, 1, torch.tensor([[1.0, 1.0], [2.0, 2.0]]))
    predict = random_member_predictor(frozen, torch.Generator().manual_seed(0))
    state, act = torch.zeros(1000, 2), torch.zeros(1000, 1)
    first, second = predict(state, act)[:, 0], predict(state, act)[:, 0]
    assert set(first.tolist()) == {1.0, 2.0} and 0.4 < float((first == 2).float().mean()) < 0.6
    assert 0.3 < float((first != second).float().mean()) < 0.7  # a new draw per call


def _silenced(ensemble: DynamicsEnsemble) -> DynamicsEnsemble:
    """Every model's last layer zeroed: each predicts the normalized delta 0, i.e. the mean
    delta of the data its normalization was fitted on."""
    with torch.no_grad():
        for model in ensemble.models:
            last = model.layers[-1]
            (last.g if last.g is not None else last.v).zero_()
            last.bias.zero_()
    return ensemble


def test_loss_on_new_transitions_is_the_mse_of_normalized_deltas(cheetah):
    """Known answer: models that predict the mean delta score the mean square of the
    normalized target on data they never saw."""
    task, (obs, act, next_obs) = cheetah
    ensemble = make_ensemble(task, num_models=2, hidden_sizes=(32, 32), max_epochs=1)
    ensemble.fit(obs[:4000], act[:4000], next_obs[:4000])
    _silenced(ensemble)
    new = slice(4000, 6000)
    target = (next_obs[new] - obs[new] - ensemble.normalizer.delta_mean) / (
        ensemble.normalizer.delta_std
    )
    expected = float(target.square().mean())
    assert ensemble.loss(obs[new], act[new], next_obs[new]) == pytest.approx(expected, rel=1e-5)


def test_watched_range_counts_predictions_outside_it_or_at_the_clip(cheetah):
    task, (obs, act, next_obs) = cheetah
    ensemble = make_ensemble(task, num_models=2, hidden_sizes=(32, 32), max_epochs=1)
    ensemble.fit(obs[:2000], act[:2000], next_obs[:2000])
    _silenced(ensemble)
    frozen = ensemble.frozen()
    assert frozen.off_range_share() is None  # nothing watched
    step = ensemble.normalizer.delta_mean  # what every prediction adds to obs
    low, high = torch.full((task.obs_dim,), -1.0), torch.full((task.obs_dim,), 1.0)
    frozen.watch_range(low, high)
    inside = torch.zeros(2, 6, task.obs_dim) - step  # predicts exactly 0: inside
    outside = inside.clone()
    outside[:, :2, 3] += 5.0  # 2 of 6 rows per model leave the range in one dimension
    a = torch.zeros(2, 6, task.act_dim)
    frozen.predict_grouped(inside, a)
    assert frozen.off_range_share() == 0.0
    frozen.predict_grouped(outside, a)
    assert frozen.off_range_share() == pytest.approx(4 / 24)
    at_clip = inside.reshape(12, -1).clone()
    at_clip[0, 0] = 5e3  # clipped to +-1000: counted even where the range is wider
    frozen.watch_range(low - 1e4, high + 1e4)
    frozen.predict_assigned(at_clip, a.reshape(12, -1), torch.zeros(12, dtype=torch.long))
    assert frozen.off_range_share() == pytest.approx(1 / 12)
