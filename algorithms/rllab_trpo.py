"""rllab's TRPO with its linear feature baseline: the MB-MPO paper's model-free TRPO.

The official script (``experiments/run_scripts/mf_comparison/trpo_train.py`` of
jonasrothfuss/model_ensemble_meta_learning) runs ``sandbox.rocky.tf.algos.trpo.TRPO`` with a
``GaussianMLPPolicy`` (32-32 tanh, initial std 1), rllab's ``LinearFeatureBaseline``, 50,000
real steps per iteration, KL bound 0.01, discount 0.99, lambda 1, centred advantages and the
conjugate-gradient optimizer's defaults (10 iterations, damping 1e-5, backtracking 0.8 x 15).
sb3-contrib's TRPO has no linear baseline (docs/fidelity.md); this is the same update built
from the parts MB-MPO's meta step uses (the policy, the baseline, GAE and the TRPO step), on
real data: one iteration reads top to bottom in :meth:`RllabTRPO.train`.

What differs from rllab: the batch is exactly ``batch_size`` steps, so an episode still running
when it is full is cut there (rllab's sampler finishes it; with horizon 200 and no early
termination, 50,000 steps are 250 whole episodes either way), and a fresh environment starts
every batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from algorithms import register
from algorithms.base import AlgorithmConfig, SeededAlgorithm
from algorithms.common.advantages import (
    discounted_returns,
    fit_linear_baseline,
    gae,
    normalize_per_task,
)
from algorithms.common.maml import PolicyBatch, detach_params, mean_kl, surrogate
from algorithms.common.model_based import collect_real
from algorithms.common.policy import GaussianMLPPolicy
from algorithms.common.trpo import trpo_step
from benchmark.config import param
from benchmark.errors import DivergenceError


@dataclass
class RllabTRPOConfig(AlgorithmConfig):
    """rllab TRPO settings (defaults: the official mf_comparison/trpo_train.py)."""

    batch_size: int = param(50_000, ge=1)
    """Real steps collected per policy update."""
    max_kl: float = param(0.01, gt=0)
    """Bound on the mean KL between the old and the new policy (rllab's step_size)."""
    discount: float = param(0.99, gt=0, le=1)
    """Discount of returns and advantages."""
    gae_lambda: float = param(1.0, ge=0, le=1)
    """GAE's lambda (1: discounted returns minus the baseline)."""
    normalize_advantages: bool = True
    """Centre and scale the advantages over the batch (rllab's center_adv)."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layers of the policy's mean (tanh)."""
    init_std: float = param(1.0, gt=0)
    """Initial standard deviation of the Gaussian policy (learned, state-independent)."""
    cg_iters: int = param(10, ge=1)
    """Conjugate-gradient iterations for the natural gradient."""
    cg_damping: float = param(1e-5, ge=0)
    """Damping added to the Fisher-vector products."""
    backtrack_ratio: float = param(0.8, gt=0, lt=1)
    """Step shrink factor of the line search."""
    max_backtracks: int = param(15, ge=1)
    """Line-search steps before the update is rejected."""


@register("rllab_trpo")
class RllabTRPO(SeededAlgorithm):
    """Model-free TRPO as rllab ran it (linear feature baseline, whole-batch Fisher)."""

    Config = RllabTRPOConfig
    family = "model-free"
    published_name = "TRPO"
    seconds_per_1000_steps = {None: 1.0}
    presets = {
        "paper": {},
        # Short budgets (the learning test): 20 updates in 100k steps, each allowed to move
        # further (KL 0.05), advantages with GAE's usual lambda.
        "quick": {"batch_size": 5000, "max_kl": 0.05, "gae_lambda": 0.97},
    }
    config: RllabTRPOConfig

    @classmethod
    def rehearsal_settings(
        cls, config: RllabTRPOConfig, horizon: int
    ) -> tuple[int, dict[str, Any]]:
        batch = min(config.batch_size, 2 * horizon)
        return 2 * batch, {"batch_size": batch}

    @classmethod
    def full_size_probe(
        cls, config: RllabTRPOConfig, horizon: int, steps: int
    ) -> tuple[int, dict[str, Any]]:
        return min(steps, config.batch_size), {}  # one update of the whole batch

    def __init__(self, task, config, seed, logger, device="cpu") -> None:
        super().__init__(task, config, seed, logger, device)
        self.policy = GaussianMLPPolicy(
            task.obs_dim,
            task.act_dim,
            config.hidden_sizes,
            config.init_std,
            input_dims=task.model_input_dims,
            generator=self.generator,
        ).to(self.device)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """The policy's mean action (the evaluation protocol's deterministic policy)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        return self.policy.mean(x, self.policy.base_params()).cpu().numpy()

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, float]:
        """A stochastic action and its log-probability (from the training generator)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        action, logp = self.policy.sample(x, self.policy.base_params(), self.generator)
        return action.cpu().numpy(), float(logp)

    def sample_batch(self, n_steps: int) -> tuple[dict[str, torch.Tensor], list[float]]:
        """``n_steps`` real steps with the stochastic policy on a fresh env: the batch as
        [1, 1, n] tensors (one row of episodes back to back, ``ends`` on each one's last
        step) and the returns of the episodes that finished."""
        logps: list[float] = []

        def act(obs: np.ndarray) -> np.ndarray:
            action, logp = self._act(obs)
            logps.append(logp)
            return action

        env = self.task.make_env()
        steps = collect_real(env, act, n_steps, int(self.rng.integers(2**31)))
        env.close()
        self.env_steps += n_steps
        columns = {"obs": steps.obs, "act": steps.act, "logp": np.array(logps)}
        columns |= {"reward": steps.reward, "end": steps.end, "t": steps.t}
        dtypes = {"end": torch.bool, "t": torch.int64}
        batch = {}
        for key, values in columns.items():
            tensor = torch.as_tensor(values, dtype=dtypes.get(key, torch.float32))
            batch[key] = tensor.to(self.device).unsqueeze(0).unsqueeze(0)  # [1, 1, n, ...]
        return batch, steps.returns

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One TRPO step on the batch: linear baseline, GAE, KL-bounded natural gradient."""
        cfg = self.config
        mask = torch.ones_like(batch["reward"])
        returns = discounted_returns(batch["reward"], mask, cfg.discount, batch["end"])
        policy_obs = batch["obs"][..., self.task.model_input_dims]
        values = fit_linear_baseline(policy_obs, returns, mask, episode_steps=batch["t"])
        adv = gae(batch["reward"], values, mask, cfg.discount, cfg.gae_lambda, batch["end"])
        if cfg.normalize_advantages:
            adv = normalize_per_task(adv, mask)
        data = PolicyBatch(
            obs=batch["obs"][0],
            act=batch["act"][0],
            adv=adv[0],
            mask=mask[0],
            logp_old=batch["logp"][0],
        )
        old = {k: v.unsqueeze(0) for k, v in detach_params(self.policy.base_params()).items()}

        def objective(create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
            new = {k: v.unsqueeze(0) for k, v in self.policy.base_params().items()}
            return surrogate(self.policy, new, data), mean_kl(self.policy, old, new, data)

        result = trpo_step(
            list(self.policy.params.values()),
            objective,
            cfg.max_kl,
            cfg.cg_iters,
            cfg.cg_damping,
            cfg.backtrack_ratio,
            cfg.max_backtracks,
        )
        for name, value in self.policy.params.items():
            if not torch.isfinite(value).all():
                raise DivergenceError(f"policy parameter {name} is not finite")
        return {
            "kl": result.kl,
            "surrogate_gain": result.surrogate_after - result.surrogate_before,
            "step_accepted": float(result.accepted),
            "policy_std": float(self.policy.std().mean()),
        }

    def train(self, total_steps: int) -> None:
        while self.env_steps < total_steps:
            stats: dict[str, float] = {"iteration": self.iteration}
            self.logger.phase(f"iteration {self.iteration}: sampling")
            start = time.perf_counter()
            batch, returns = self.sample_batch(
                min(self.config.batch_size, total_steps - self.env_steps)
            )
            stats["time_collect_s"] = time.perf_counter() - start
            if returns:
                # rllab's AverageReturn: the training episodes of the stochastic policy.
                stats["collected_return"] = stats["paper_return"] = float(np.mean(returns))
            self.logger.phase(f"iteration {self.iteration}: updating the policy")
            start = time.perf_counter()
            stats |= self.update(batch)
            stats["time_update_s"] = time.perf_counter() - start
            self.iteration += 1
            if self.logger.evaluation_due(self.env_steps, total_steps):
                self.logger.phase(f"iteration {self.iteration}: evaluating")
                start = time.perf_counter()
                mean, std = self.logger.evaluate(self.act)
                stats["time_eval_s"] = time.perf_counter() - start
                self.logger.log(self.env_steps, mean, std, **stats)
            self.logger.checkpoint(self.env_steps, self.state_dict())

    def state_dict(self) -> dict[str, Any]:
        policy = {k: v.detach().clone() for k, v in self.policy.state_dict().items()}
        return {**super().state_dict(), "policy": policy}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.policy.load_state_dict(state["policy"])
