"""Policy, advantages, TRPO and the MAML meta-gradient."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from algorithms.common.advantages import (
    baseline_features,
    discounted_returns,
    fit_linear_baseline,
    gae,
    normalize_per_task,
)
from algorithms.common.maml import PolicyBatch, adapt, expand_params, mean_kl, surrogate
from algorithms.common.policy import GaussianMLPPolicy
from algorithms.common.trpo import finite_difference_fvp, flat, set_flat, trpo_step


def make_policy(obs_dim=3, act_dim=2, hidden=(8, 8), seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(obs_dim, act_dim, hidden, init_std=0.7).to(dtype)
    with torch.no_grad():
        for p in policy.params.values():
            p.add_(0.1 * torch.randn_like(p))
    return policy


def dist(policy, obs, params):
    mean = policy.mean(obs, params)
    std = params["log_std"].exp()
    if std.dim() > 1:
        std = std.unsqueeze(-2)
    return Independent(Normal(mean, std.expand_as(mean)), 1)


def test_log_prob_and_kl_match_torch_distributions():
    policy = make_policy()
    obs, act = torch.randn(7, 3), torch.randn(7, 2)
    params = policy.base_params()
    torch.testing.assert_close(
        policy.log_prob(obs, act, params), dist(policy, obs, params).log_prob(act)
    )
    other = {k: v + 0.05 * torch.randn_like(v) for k, v in params.items()}
    expected = kl_divergence(dist(policy, obs, params), dist(policy, obs, other))
    torch.testing.assert_close(policy.kl(obs, params, other), expected)


def test_task_batched_params_equal_a_loop_over_tasks():
    policy = make_policy()
    params = {
        k: v.detach() + 0.1 * torch.randn(4, *v.shape) for k, v in policy.base_params().items()
    }
    obs, act = torch.randn(4, 6, 3), torch.randn(4, 6, 2)
    batched = policy.log_prob(obs, act, params)
    for t in range(4):
        single = {k: v[t] for k, v in params.items()}
        torch.testing.assert_close(batched[t], policy.log_prob(obs[t], act[t], single))


def test_sampled_log_probs_are_the_policy_log_probs():
    policy = make_policy()
    params = policy.base_params()
    obs = torch.randn(50, 3)
    act, logp = policy.sample(obs, params, torch.Generator().manual_seed(0))
    torch.testing.assert_close(logp, policy.log_prob(obs, act, params).detach())


def test_min_std_floors_the_standard_deviation_where_it_is_used():
    """The official policy's min_std: std = max(exp(log_std), min_std) in sampling, log-probs
    and KL; below the floor the log-std parameter gets no gradient, above it the floor changes
    nothing."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(3, 2, (8, 8), init_std=1.0, min_std=0.3)
    obs, act = torch.randn(400, 3), torch.randn(400, 2)
    params = policy.base_params()
    unfloored = GaussianMLPPolicy(3, 2, (8, 8), init_std=1.0)
    unfloored.load_state_dict(policy.state_dict())
    with torch.no_grad():  # one dimension below the floor, one above
        params["log_std"].copy_(torch.log(torch.tensor([0.1, 0.5])))
        unfloored.params["log_std"].copy_(torch.log(torch.tensor([0.3, 0.5])))
    torch.testing.assert_close(policy.std(), torch.tensor([0.3, 0.5]))
    torch.testing.assert_close(
        policy.log_prob(obs, act, params), unfloored.log_prob(obs, act, unfloored.base_params())
    )
    drawn, _ = policy.sample(obs, params, noise=torch.ones(400, 2))
    torch.testing.assert_close(
        drawn - policy.mean(obs, params).detach(), torch.tensor([0.3, 0.5]).expand(400, 2)
    )
    params["log_std"].grad = None
    policy.log_prob(obs, act, params).sum().backward()
    grad = params["log_std"].grad
    assert grad[0] == 0 and grad[1] != 0
    with pytest.raises(ValueError, match="min_std"):
        GaussianMLPPolicy(3, 2, init_std=0.2, min_std=0.3)


def test_discounted_returns_and_gae_with_termination():
    rewards = torch.tensor([[[1.0, 2.0, 3.0, 0.0]]])
    mask = torch.tensor([[[1.0, 1.0, 1.0, 0.0]]])  # terminated after the third step
    returns = discounted_returns(rewards, mask, 0.5)
    torch.testing.assert_close(
        returns, torch.tensor([[[1 + 0.5 * 2 + 0.25 * 3, 2 + 1.5, 3.0, 0.0]]])
    )
    values = torch.tensor([[[0.5, 1.0, 2.0, 9.0]]])  # the masked value must not leak in
    torch.testing.assert_close(gae(rewards, values, mask, 0.5, 1.0), returns - values * mask)
    one_step = gae(rewards, values, mask, 0.5, 0.0)
    torch.testing.assert_close(
        one_step[0, 0, :3], torch.tensor([1 + 0.5 * 1.0 - 0.5, 2 + 0.5 * 2 - 1.0, 3 - 2.0])
    )


def test_returns_and_gae_stop_at_episode_ends_within_a_row():
    """A row holding two episodes back to back (restarted imagined rollouts) gives the same
    returns and advantages as the two episodes in rows of their own."""
    rewards = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]])
    values = torch.tensor([[[0.5, 1.0, 2.0, 3.0, 1.5]]])
    ends = torch.tensor([[[False, True, False, False, False]]])
    mask = torch.ones(1, 1, 5)
    returns = discounted_returns(rewards, mask, 0.5, ends)
    adv = gae(rewards, values, mask, 0.5, 0.9, ends)
    for part in (slice(0, 2), slice(2, 5)):
        r, v, m = rewards[..., part], values[..., part], mask[..., part]
        torch.testing.assert_close(returns[..., part], discounted_returns(r, m, 0.5))
        torch.testing.assert_close(adv[..., part], gae(r, v, m, 0.5, 0.9))
    steps = torch.tensor([[[0, 1, 0, 1, 2]]])
    feats = baseline_features(torch.zeros(1, 1, 5, 2), steps)
    torch.testing.assert_close(feats[0, 0, :, 4], steps[0, 0].float() / 100)


def test_linear_baseline_fits_each_task_on_its_own_data():
    torch.manual_seed(0)
    obs = torch.randn(3, 20, 10, 2)
    feats = baseline_features(obs)
    assert feats.shape == (3, 20, 10, 2 * 2 + 4)
    assert torch.allclose(feats[0, 0, 7, 4:7], torch.tensor([0.07, 0.07**2, 0.07**3]))
    true_coef = torch.randn(3, feats.shape[-1])
    returns = torch.einsum("tnhf,tf->tnh", feats, true_coef)  # exactly linear, per task
    mask = torch.ones(3, 20, 10)
    values = fit_linear_baseline(obs, returns, mask)
    torch.testing.assert_close(values, returns, rtol=1e-3, atol=1e-3)
    adv = normalize_per_task(torch.randn(3, 20, 10) * 5 + 2, mask)
    torch.testing.assert_close(adv.mean((1, 2)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(adv.std((1, 2), correction=0), torch.ones(3), atol=1e-4, rtol=0)


def random_batch(policy, params, n_tasks, n=40, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_tasks, n, policy.obs_dim, generator=gen, dtype=dtype)
    act, logp = policy.sample(obs, params, gen)
    adv = torch.randn(n_tasks, n, generator=gen, dtype=dtype)
    mask = (torch.rand(n_tasks, n, generator=gen) > 0.1).to(dtype)
    return PolicyBatch(obs, act.to(dtype), adv, mask, logp.to(dtype))


def test_meta_gradient_matches_finite_differences_through_the_inner_step():
    policy = make_policy(obs_dim=2, act_dim=1, hidden=(3,), dtype=torch.float64)
    params = policy.base_params()
    n_tasks, alpha = 3, 0.5  # a large step so the second-order term matters
    pre = random_batch(policy, {k: v.detach() for k, v in params.items()}, n_tasks, seed=1)
    adapted_old = {k: v.detach() for k, v in adapt(policy, params, pre, alpha, False).items()}
    post = random_batch(policy, adapted_old, n_tasks, seed=2)

    def objective(create_graph=True, first_order=False):
        return surrogate(policy, adapt(policy, params, pre, alpha, create_graph, first_order), post)

    names = list(params)
    grad = flat(torch.autograd.grad(objective(), [params[k] for k in names]))
    theta = flat([params[k].detach() for k in names])
    eps, numeric = 1e-6, torch.zeros_like(theta)
    for i in range(theta.numel()):
        values = []
        for sign in (1, -1):
            shifted = theta.clone()
            shifted[i] += sign * eps
            set_flat([params[k] for k in names], shifted)
            values.append(float(objective(create_graph=False).detach()))
        numeric[i] = (values[0] - values[1]) / (2 * eps)
    set_flat([params[k] for k in names], theta)
    rel_error = float((grad - numeric).norm() / numeric.norm())
    assert rel_error < 1e-4, rel_error
    first_order = flat(torch.autograd.grad(objective(first_order=True), [params[k] for k in names]))
    assert float((first_order - numeric).norm() / numeric.norm()) > 1e-2  # the test can tell


@pytest.mark.parametrize("fisher_product", ["exact", "finite_difference"])
@pytest.mark.parametrize("seed", range(5))
def test_trpo_step_respects_the_kl_bound_and_improves_the_surrogate(seed, fisher_product):
    policy = make_policy(seed=seed)
    params = policy.base_params()
    old = {k: v.detach().clone() for k, v in params.items()}
    batch = random_batch(policy, old, 1, n=200, seed=seed, dtype=torch.float32)
    batch = PolicyBatch(batch.obs[0], batch.act[0], batch.adv[0], batch.mask[0], batch.logp_old[0])

    def objective(create_graph):
        return surrogate_flat(policy, params, batch), kl_flat(policy, old, params, batch)

    max_kl = 0.01
    before = float(objective(False)[0].detach())
    result = trpo_step(list(params.values()), objective, max_kl, fisher_product=fisher_product)
    after_surrogate, after_kl = (float(v.detach()) for v in objective(False))
    assert result.accepted
    assert after_kl <= max_kl * 1.5 and after_kl <= max_kl + 1e-7
    assert after_surrogate > before
    assert after_kl > max_kl * 0.1  # it used the trust region, not a timid step


def test_trpo_with_subsampled_curvature_still_enforces_the_kl_bound():
    policy = make_policy(seed=7)
    params = policy.base_params()
    old = {k: v.detach().clone() for k, v in params.items()}
    batch = random_batch(policy, old, 1, n=500, seed=7, dtype=torch.float32)
    batch = PolicyBatch(batch.obs[0], batch.act[0], batch.adv[0], batch.mask[0], batch.logp_old[0])
    sub = PolicyBatch(
        *(t[::5] for t in (batch.obs, batch.act, batch.adv, batch.mask, batch.logp_old))
    )

    def objective(create_graph):
        return surrogate_flat(policy, params, batch), kl_flat(policy, old, params, batch)

    before = float(objective(False)[0].detach())
    result = trpo_step(
        list(params.values()),
        objective,
        0.01,
        curvature_kl=lambda: kl_flat(policy, old, params, sub),
    )
    after_surrogate, after_kl = (float(v.detach()) for v in objective(False))
    assert result.accepted and after_kl <= 0.01 and after_surrogate > before


def test_finite_difference_fisher_product_takes_the_official_step():
    """The official product: (g(theta + eps v) - g(theta - eps v)) / (2 eps), eps = 1/|theta|.
    With g(theta) = theta^3 (f = sum theta^4 / 4) it is 3 theta^2 v + eps^2 v^3 exactly, which
    pins the step; parameters come back unchanged."""
    theta = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    before = theta.detach().clone()
    fvp = finite_difference_fvp([theta], lambda: theta.pow(4).sum() / 4, damping=1e-3)
    eps = 1 / before.norm()
    expected = 3 * before**2 * v + eps**2 * v**3 + 1e-3 * v
    torch.testing.assert_close(fvp(v), expected)
    torch.testing.assert_close(theta.detach(), before)


def test_finite_difference_fisher_product_approximates_the_exact_one_on_a_policy_kl():
    policy = make_policy(seed=3, dtype=torch.float64)
    params = policy.base_params()
    old = {k: v.detach().clone() for k, v in params.items()}
    batch = random_batch(policy, old, 1, n=300, seed=3, dtype=torch.float64)
    batch = PolicyBatch(batch.obs[0], batch.act[0], batch.adv[0], batch.mask[0], batch.logp_old[0])
    names = list(params)
    tensors = [params[k] for k in names]
    kl_grad = flat(
        torch.autograd.grad(kl_flat(policy, old, params, batch), tensors, create_graph=True)
    )
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(kl_grad.numel(), dtype=torch.float64, generator=gen)
    exact = flat(torch.autograd.grad(kl_grad @ v, tensors))
    fvp = finite_difference_fvp(tensors, lambda: kl_flat(policy, old, params, batch), 0.0)
    # the official step (1/|theta|, here about 0.2) is large: close to the exact product for a
    # small v, not for a large one
    small = fvp(1e-3 * v) / 1e-3
    assert float((small - exact).norm() / exact.norm()) < 1e-3
    large = fvp(v)
    assert float((large - exact).norm() / exact.norm()) > 1e-3


def surrogate_flat(policy, params, batch):
    ratio = torch.exp(policy.log_prob(batch.obs, batch.act, params) - batch.logp_old)
    return (ratio * batch.adv * batch.mask).sum() / batch.mask.sum()


def kl_flat(policy, old, new, batch):
    return (policy.kl(batch.obs, old, new) * batch.mask).sum() / batch.mask.sum()


def test_alpha_zero_is_plain_trpo_on_the_same_data():
    policy = make_policy(dtype=torch.float64)
    params = policy.base_params()
    old = {k: v.detach().clone() for k, v in params.items()}
    n_tasks = 2
    batch = random_batch(policy, old, n_tasks, seed=3)
    adapted = adapt(policy, params, batch, 0.0, create_graph=True)
    meta = surrogate(policy, adapted, batch)
    plain = surrogate(policy, expand_params(params, n_tasks), batch)
    names = list(params)
    g_meta = flat(torch.autograd.grad(meta, [params[k] for k in names]))
    g_plain = flat(torch.autograd.grad(plain, [params[k] for k in names]))
    torch.testing.assert_close(g_meta, g_plain)
    kl = mean_kl(policy, expand_params(old, n_tasks), adapted, batch)
    assert float(kl.detach()) == 0.0
