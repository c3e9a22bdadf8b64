"""MB-MPO (Clavera, Rothfuss et al., CoRL 2018), Algorithm 1, and ME-TRPO as alpha = 0.

Each iteration:
1. collect real rollouts with the adapted policies, one per meta-task (the first iteration:
   uniform random actions), and add them to a FIFO buffer;
2. fit the dynamics ensemble on the buffer;
3. ``meta_steps`` times: imagine trajectories with the pre-update policy in each task's model,
   take one vanilla policy-gradient step per task (step size alpha, std included), imagine
   trajectories with the adapted policies, and take a TRPO step on the mean post-update
   surrogate with the gradient through the inner step (second-order MAML).

Every meta-task is one model of the ensemble (``num_tasks / num_models`` tasks per model).
Imagined steps are scored with the official code's model-side reward where the task has one
(``imagined_reward``; the control cost on the raw action), else with the task's own. Defaults
are the official code's values (DESIGN.md); the ``quick`` preset is a laptop-sized version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from algorithms import register
from algorithms.common.advantages import (
    discounted_returns,
    fit_linear_baseline,
    gae,
    normalize_per_task,
)
from algorithms.common.maml import (
    PolicyBatch,
    adapt,
    detach_params,
    expand_params,
    mean_kl,
    subsample,
    surrogate,
)
from algorithms.common.model_based import ModelBasedAlgorithm, ModelBasedConfig
from algorithms.common.policy import GaussianMLPPolicy, Params
from algorithms.common.rollout import Trajectories, imagine
from algorithms.common.trpo import trpo_step
from benchmark.config import param
from benchmark.errors import ConfigError, DivergenceError


@dataclass
class MBMPOConfig(ModelBasedConfig):
    """MB-MPO settings; defaults are the official CoRL 2018 values."""

    # Real data
    initial_random_steps: int = param(8000, ge=1)
    """Uniform-random real steps before the first fit. The official script asks for 5000,
    but its sampler runs 20 envs until 5000 steps of finished paths: 2 x 20 x 200 = 8000 real
    steps (sandbox/ours/sampler/random_vectorized_sampler.py); all 8000 are counted here."""
    buffer_size: int = param(100_000, ge=1)
    """FIFO buffer of the most recent real transitions (the official dynamics_data_buffer_size
    1e5, sandbox/ours/algos/ModelMAML/model_batch_maml_polopt.py)."""
    real_rollouts_per_task: int = param(1, ge=1)
    """Real rollouts of one horizon per meta-task and iteration (20 x 200 = 4000 steps)."""
    # Meta-learning
    num_tasks: int = param(20, ge=1)
    """Meta-tasks per meta step; task t uses model t // (num_tasks / num_models)."""
    imagined_trajectories: int = param(50, ge=1)
    """Imagined trajectories per task, pre-update and post-update each."""
    imagined_horizon: int | None = param(None, ge=1)
    """Length of imagined trajectories; None uses the task's horizon."""
    meta_steps: int = param(30, ge=1)
    """Meta (TRPO) steps per iteration."""
    inner_lr: float = param(1e-3, ge=0)
    """Inner policy-gradient step size alpha; 0 turns MB-MPO into ME-TRPO."""
    first_order: bool = False
    """Drop the second-order term of the meta-gradient (not the paper's method)."""
    max_kl: float = param(0.01, gt=0)
    """TRPO trust region: mean KL between old and new post-update policies."""
    cg_iters: int = param(10, ge=1)
    """Conjugate-gradient iterations of the TRPO step."""
    cg_damping: float = param(1e-5, ge=0)
    """Damping added to the Fisher-vector products."""
    backtrack_ratio: float = param(0.8, gt=0, lt=1)
    """Line-search shrink factor."""
    max_backtracks: int = param(15, ge=1)
    """Line-search steps before the update is rejected."""
    fisher_subsample: int = param(5, ge=1)
    """Fisher-vector products use every n-th imagined sample (1: all). The Fisher only
    preconditions the step; the line search checks the KL bound on all samples."""
    fisher_product: Literal["exact", "finite_difference"] = "exact"
    """How a Fisher-vector product is taken: 'exact' differentiates the KL's gradient again;
    'finite_difference' is the official code's symmetric finite difference of the KL's
    gradient with step 1 / |theta| (with fisher_subsample=1: the official TRPO step)."""
    discount: float = param(0.99, gt=0, le=1)
    """Discount factor gamma."""
    gae_lambda: float = param(1.0, ge=0, le=1)
    """GAE lambda (1: Monte-Carlo returns minus the linear baseline)."""
    normalize_advantages: bool = True
    """Centre and scale advantages within each task."""
    policy_hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layers of the Gaussian MLP policy (tanh)."""
    policy_init_std: float = param(1.0, gt=0)
    """Initial standard deviation of the policy."""
    policy_min_std: float = param(1e-6, gt=0)
    """Floor on the policy's standard deviation, applied where it is used (the official policy
    class's ``min_std``, 1e-6, which never binds); raise it to keep the policy exploring."""
    imagined_termination: Literal["restart", "mask"] = "restart"
    """What an imagined trajectory does when the task says it ended: 'restart' from a fresh
    start state, so every meta-task's batch holds imagined_trajectories x horizon samples (the
    official sampler); 'mask' the rest of its steps (fewer samples where episodes end early)."""
    model_assignment: Literal["task", "random_step"] = "task"
    """'task': each task's trajectories use its own model; 'random_step': a random model at
    every imagined step (Kurutach et al.'s ME-TRPO)."""
    # Fig. 3 ablation
    model_bias_max: float = param(0.0, ge=0)
    """Each model's normalized prediction gets N(b_k, model_noise_std^2), b_k ~ U(0, this)."""
    model_noise_std: float = param(0.0, ge=0)
    """Standard deviation of the noise added to normalized predictions (Fig. 3: 0.1)."""

    def check(self) -> None:
        if self.model_assignment == "task" and self.num_tasks % self.num_models:
            raise ConfigError(
                f"num_tasks ({self.num_tasks}) must be a multiple of num_models "
                f"({self.num_models}) so every model gets the same number of tasks"
            )
        if self.policy_min_std > self.policy_init_std:
            raise ConfigError(
                f"policy_min_std ({self.policy_min_std}) must not exceed policy_init_std "
                f"({self.policy_init_std})"
            )


QUICK = {
    "imagined_trajectories": 20,
    "meta_steps": 10,
    "model_max_epochs": 15,
    "initial_random_steps": 4000,
}
"""A laptop-sized MB-MPO: fewer imagined trajectories and meta steps, capped model epochs."""


@register("mbmpo")
class MBMPO(ModelBasedAlgorithm):
    """Model-Based Meta-Policy Optimization (Clavera, Rothfuss et al. 2018)."""

    Config = MBMPOConfig
    presets = {"paper": {}, "quick": QUICK}
    published_name = "MB-MPO"
    progress_columns = {
        **ModelBasedAlgorithm.progress_columns,
        "imagined_return_pre, imagined_return_post": "mean imagined return of the pre-update "
        "and adapted policies, mean over the iteration's meta steps",
        "imagined_return_post_last": "the adapted policies' imagined return at the last meta step",
        "meta_kl, meta_surrogate_gain, meta_step_accepted": "the meta (TRPO) step: mean KL "
        "between old and new adapted policies, surrogate gain, share of steps accepted",
        "inner_kl": "KL between the pre-update and the adapted policies",
        "policy_std": "the pre-update policy's mean standard deviation",
        "paper_return": "the stochastic pre-update policy's evaluation return (the paper's "
        "Fig. 1 metric)",
        "time_imagine_s, time_meta_s": "seconds imagining trajectories, taking meta steps",
    }
    paper_return_is_pre_update_policy = True
    """Fig. 1 plots MB-MPO's stochastic pre-update policy (ME-TRPO: its training rollouts)."""
    # paper: ~100 s per 1000 steps in the first iteration; the model fit grows with the data
    seconds_per_1000_steps = {None: 150.0, "quick": 55.0}
    config: MBMPOConfig

    def __init__(self, task, config, seed, logger, device="cpu") -> None:
        super().__init__(task, config, seed, logger, device)
        cfg = self.config
        self.horizon = cfg.imagined_horizon or task.horizon
        self.policy = GaussianMLPPolicy(
            task.obs_dim,
            task.act_dim,
            cfg.policy_hidden_sizes,
            cfg.policy_init_std,
            input_dims=task.model_input_dims,
            generator=self.generator,
            min_std=cfg.policy_min_std,
        ).to(self.device)
        self.adapted: Params | None = None  # the adapted policies that collect real data
        self.start_states = self._reset_states(4096)
        # Restarting only matters where episodes end; tasks that never end keep the masked
        # layout (identical results, no extra random draws).
        self.restart_imagined = cfg.imagined_termination == "restart" and task.can_terminate
        self.real_envs: list[Any] = []

    # ------------------------------------------- Algorithm 1's steps (the loop: RealDataAlgorithm)
    # Each iteration: collect real rollouts with the adapted policies (the first: random
    # actions), fit the ensemble (ModelBasedAlgorithm.fit_model), ``improve`` = meta steps,
    # evaluate the pre-update policy when an evaluation point is due, checkpoint.
    @property
    def steps_per_iteration(self) -> int:
        return self.config.num_tasks * self.config.real_rollouts_per_task * self.task.horizon

    @classmethod
    def iteration_steps(cls, config: MBMPOConfig, horizon: int) -> int:
        return config.num_tasks * config.real_rollouts_per_task * horizon

    @classmethod
    def rehearsal_sizes(cls, config: MBMPOConfig, horizon: int) -> dict[str, Any]:
        return {
            "num_models": min(config.num_models, 2),
            "num_tasks": min(config.num_tasks, 2),
            "real_rollouts_per_task": 1,
            "imagined_trajectories": min(config.imagined_trajectories, 4),
            "meta_steps": min(config.meta_steps, 2),
            "model_max_epochs": min(config.model_max_epochs, 2),
        }

    @classmethod
    def probe_cuts(cls, config: MBMPOConfig) -> dict[str, Any]:
        return {"meta_steps": 1, "model_max_epochs": 1}

    def collect_with_policy(self, n_steps: int) -> list[float]:
        return self._collect_adapted(n_steps)

    def improve(self) -> dict[str, float]:
        """``meta_steps`` meta steps in the freshly fitted models; their mean diagnostics
        (times summed)."""
        cfg = self.config
        if cfg.model_bias_max > 0 or cfg.model_noise_std > 0:
            self.ensemble.sample_bias(cfg.model_bias_max, cfg.model_noise_std)
        frozen = self.watched_models()
        steps = []
        for i in range(cfg.meta_steps):
            self.logger.phase(f"iteration {self.iteration}: meta step {i + 1}/{cfg.meta_steps}")
            steps.append(self.meta_step(frozen))
        stats = {
            key: float(np.sum(values) if key.startswith("time_") else np.mean(values))
            for key, values in ((key, [s[key] for s in steps]) for key in steps[0])
        }
        stats["imagined_return_post_last"] = steps[-1]["imagined_return_post"]
        off_range = frozen.off_range_share()
        if off_range is not None:
            stats["imagined_off_range"] = off_range
        return stats

    def evaluate(self) -> tuple[float, float, dict[str, float]]:
        """The pre-update policy: its mean action's return, and (what the paper plotted,
        'PrePolicy-AverageReturn') its stochastic return as ``paper_return``. It is the policy
        the next iteration starts from, so the official code logged the same quantity at the
        start of that iteration, before its model fit."""
        params = detach_params(self.policy.base_params())

        def act_mean(obs: np.ndarray) -> np.ndarray:
            o = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            with torch.no_grad():
                return self.policy.mean(o, params).cpu().numpy().astype(np.float64)

        eval_gen = self.evaluation_generator()

        def act_sample(obs: np.ndarray) -> np.ndarray:
            o = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            act, _ = self.policy.sample(o, params, eval_gen)
            return act.cpu().numpy().astype(np.float64)

        mean, std = self.logger.evaluate(act_mean)
        policy_std = float(self.policy.std().mean())
        stats = {"policy_std": policy_std}
        if self.paper_return_is_pre_update_policy:
            stats["paper_return"], _ = self.logger.evaluate(act_sample)
        return mean, std, stats

    def close(self) -> None:
        for env in self.real_envs:
            env.close()
        self.real_envs = []

    # ----------------------------------------------------------------- real environment
    def _reset_states(self, n: int) -> torch.Tensor:
        """Initial observations of the real env, the start states of imagined rollouts."""
        env = self.task.make_env()
        seeds = np.random.default_rng([self.seed, 1]).integers(2**31, size=n)
        states = np.array([env.reset(seed=int(s))[0] for s in seeds])
        env.close()
        return torch.as_tensor(states, dtype=torch.float32, device=self.device)

    def _collect_adapted(self, n_steps: int) -> list[float]:
        """Real rollouts with each task's adapted policy, all tasks stepped in lockstep."""
        cfg = self.config
        n_tasks = cfg.num_tasks
        if not self.real_envs:
            self.real_envs = [self.task.make_env() for _ in range(n_tasks)]
        quota = [n_steps // n_tasks + (t < n_steps % n_tasks) for t in range(n_tasks)]
        obs = np.stack([env.reset(seed=int(self.rng.integers(2**31)))[0] for env in self.real_envs])
        episode_return = np.zeros(n_tasks)
        transitions, returns = [], []
        assert self.adapted is not None
        for step in range(max(quota)):
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            act, _ = self.policy.sample(obs_t.unsqueeze(1), self.adapted, self.generator)
            act = act.squeeze(1).cpu().numpy().astype(np.float64)
            for t, env in enumerate(self.real_envs):
                if step >= quota[t]:
                    continue
                next_obs, reward, terminated, truncated, _ = env.step(act[t])
                transitions.append((obs[t].copy(), act[t], next_obs))
                episode_return[t] += float(reward)
                if terminated or truncated or step == quota[t] - 1:
                    if terminated or truncated:
                        returns.append(episode_return[t])
                    episode_return[t] = 0.0
                    next_obs, _ = env.reset()
                obs[t] = next_obs
        obs, act, next_obs = (np.array(x) for x in zip(*transitions, strict=True))
        self.buffer.add(obs, act, next_obs)
        self.env_steps += len(transitions)
        return returns

    # ----------------------------------------------------------------- meta-learning
    def _imagine(self, frozen, params: Params) -> Trajectories:
        cfg = self.config
        idx = torch.randint(
            len(self.start_states),
            (cfg.num_tasks, cfg.imagined_trajectories),
            generator=self.generator,
        )
        starts = self.start_states[idx.to(self.device)]
        return imagine(
            frozen,
            lambda o, noise: self.policy.sample(o, params, noise=noise),
            starts,
            self.horizon,
            self.model_reward_fn,
            self.task.termination_fn,
            model_assignment=cfg.model_assignment,
            generator=self.generator,
            restart_states=self.start_states if self.restart_imagined else None,
        )

    def _batch(self, traj: Trajectories) -> PolicyBatch:
        cfg = self.config
        returns = discounted_returns(traj.rewards, traj.mask, cfg.discount, traj.ends)
        policy_obs = traj.obs[..., self.task.model_input_dims]
        values = fit_linear_baseline(
            policy_obs, returns, traj.mask, episode_steps=traj.episode_steps
        )
        adv = gae(traj.rewards, values, traj.mask, cfg.discount, cfg.gae_lambda, traj.ends)
        if cfg.normalize_advantages:
            adv = normalize_per_task(adv, traj.mask)
        n_tasks = traj.obs.shape[0]
        return PolicyBatch(
            obs=traj.obs.reshape(n_tasks, -1, traj.obs.shape[-1]),
            act=traj.actions.reshape(n_tasks, -1, traj.actions.shape[-1]),
            adv=adv.reshape(n_tasks, -1),
            mask=traj.mask.reshape(n_tasks, -1),
            logp_old=traj.log_probs.reshape(n_tasks, -1),
        )

    def _adapted(self, pre: PolicyBatch, create_graph: bool) -> Params:
        cfg = self.config
        params = self.policy.base_params()
        if cfg.inner_lr == 0:
            return expand_params(params, cfg.num_tasks)
        return adapt(self.policy, params, pre, cfg.inner_lr, create_graph, cfg.first_order)

    def meta_step(self, frozen) -> dict[str, float]:
        """One meta step: pre-update rollouts, inner step, post-update rollouts, TRPO."""
        cfg = self.config
        timings = {}
        start = time.perf_counter()
        base = detach_params(self.policy.base_params())
        pre_traj = self._imagine(frozen, base)
        pre = self._batch(pre_traj)
        if cfg.inner_lr > 0:
            adapted_old = detach_params(self._adapted(pre, create_graph=False))
            post_traj = self._imagine(frozen, adapted_old)
            post = self._batch(post_traj)
        else:
            adapted_old, post_traj, post = expand_params(base, cfg.num_tasks), pre_traj, pre
        timings["imagine"] = time.perf_counter() - start

        start = time.perf_counter()

        def objective(create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
            adapted = self._adapted(pre, create_graph)
            return surrogate(self.policy, adapted, post), mean_kl(
                self.policy, adapted_old, adapted, post
            )

        pre_sub, post_sub = (
            subsample(pre, cfg.fisher_subsample),
            subsample(post, cfg.fisher_subsample),
        )
        adapted_sub_old = (
            adapted_old
            if cfg.fisher_subsample == 1
            else detach_params(self._adapted(pre_sub, create_graph=False))
        )

        def curvature_kl() -> torch.Tensor:
            adapted = self._adapted(pre_sub, create_graph=True)
            return mean_kl(self.policy, adapted_sub_old, adapted, post_sub)

        result = trpo_step(
            list(self.policy.params.values()),
            objective,
            cfg.max_kl,
            cfg.cg_iters,
            cfg.cg_damping,
            cfg.backtrack_ratio,
            cfg.max_backtracks,
            # a KL of its own where the products do not use the objective's graph
            curvature_kl=(
                curvature_kl
                if cfg.fisher_subsample > 1 or cfg.fisher_product == "finite_difference"
                else None
            ),
            fisher_product=cfg.fisher_product,
        )
        with torch.no_grad():
            inner_kl = float(
                (
                    self.policy.kl(pre.obs, expand_params(base, cfg.num_tasks), adapted_old)
                    * pre.mask
                )
                .sum()
                .div(pre.mask.sum())
            )
        for name, value in self.policy.params.items():
            if not torch.isfinite(value).all():
                raise DivergenceError(f"policy parameter {name} is not finite")
        # The policies that collect the next real data: the last meta step's adapted policies,
        # adapted from theta as it was before that step's TRPO update, as the official code
        # collects (the policy keeps the parameters its inner step computed before
        # optimize_policy ran: sandbox/ours/algos/ModelMAML/model_batch_maml_polopt.py).
        # ME-TRPO (alpha = 0) collects with its current policy, the updated theta.
        self.adapted = (
            adapted_old
            if cfg.inner_lr > 0
            else expand_params(detach_params(self.policy.base_params()), cfg.num_tasks)
        )
        timings["meta"] = time.perf_counter() - start
        return {
            "imagined_return_pre": float(pre_traj.returns.mean()),
            "imagined_return_post": float(post_traj.returns.mean()),
            "meta_kl": result.kl,
            "meta_surrogate_gain": result.surrogate_after - result.surrogate_before,
            "meta_step_accepted": float(result.accepted),
            "inner_kl": inner_kl,
            **{f"time_{k}_s": v for k, v in timings.items()},
        }

    # ----------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "policy": self.policy.state_dict(), "adapted": self.adapted}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.policy.load_state_dict(state["policy"])
        self.adapted = state["adapted"]


@dataclass
class METRPOConfig(MBMPOConfig):
    """ME-TRPO (Kurutach et al. 2018) as MB-MPO's machinery without adaptation; defaults are
    the MB-MPO paper's ME-TRPO baseline (experiments/run_scripts/mb_comparison/
    model_ensemble_trpo_train.py): 4000 real and 50,000 imagined steps per iteration and TRPO
    step, a random model at every imagined step, all real data kept, up to 1000 model epochs."""

    inner_lr: float = param(0.0, ge=0, le=0)
    """No inner step: alpha = 0."""
    initial_random_steps: int = param(4000, ge=1)
    """Uniform-random real steps before the first fit (official: 4000)."""
    buffer_size: int = param(1_000_000, ge=1)
    """Real transitions kept (the official ME-TRPO keeps every one)."""
    real_rollouts_per_task: int = param(4, ge=1)
    """Real rollouts per task and iteration: 5 x 4 x 200 = 4000 real steps (official)."""
    num_tasks: int = param(5, ge=1)
    """Policy copies rolled out per step; with alpha = 0 only their number of samples matters:
    5 x 50 x 200 = 50,000 imagined steps per TRPO step (official batch_size_dynamics_samples)."""
    model_assignment: Literal["task", "random_step"] = "random_step"
    """A random model at every imagined step (Kurutach et al.; the official baseline)."""
    model_max_epochs: int = param(1000, ge=1)
    """Cap on model epochs per fit (official: 1000)."""


@register("metrpo")
class METRPO(MBMPO):
    """ME-TRPO: MB-MPO's machinery with alpha = 0 (set model_assignment=random_step for
    Kurutach et al.'s random model per imagined step)."""

    Config = METRPOConfig
    presets = {
        "paper": {},
        "quick": {
            **QUICK,
            "model_assignment": "task",
            "num_tasks": 20,
            "real_rollouts_per_task": 1,
        },
        "mbmpo": {
            "num_tasks": 20,
            "real_rollouts_per_task": 1,
            "model_assignment": "task",
            "initial_random_steps": 8000,
            "buffer_size": 100_000,
            "model_max_epochs": 500,
        },
    }
    """``mbmpo``: MB-MPO's own settings with alpha = 0 (the suite's ME-TRPO before it followed
    the official baseline); ``quick`` keeps them too, so quick runs stay comparable."""
    published_name = "ME-TRPO"
    paper_return_is_pre_update_policy = False
