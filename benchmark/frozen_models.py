"""Policy optimisation in a run's frozen models: more MB-MPO meta steps from a checkpoint.

An MB-MPO iteration fits the models, then takes ``meta_steps`` meta steps in them. When a run
stops improving, either half may be the limit. This diagnostic separates them: from a run's
checkpoint (the models of its last fit, the policy after its last meta step) it takes more
meta steps in the same models, with no new real data and no fit, optionally with other
settings of the meta step (``fisher_product``, ``max_kl``, ...), and evaluates the pre-update
policy in the real env along the way with the run's own protocol. Where the imagined return
keeps rising and the real one follows, the optimisation was slow; where neither rises, the
policy is at a standstill in the models as well; where only the imagined one rises, the models
are what limits it.

The first evaluation (before any further step) repeats the run's last logged one exactly: the
same policy, the same evaluation episodes and noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError
from benchmark.logger import NullLogger, Policy
from benchmark.run import load_run_algorithm
from benchmark.rundir import Evaluator, RunDir


class _EvaluatingLogger(NullLogger):
    """Evaluates with the run's protocol (an ``Evaluator`` given once the algorithm, and so
    its task, is built); records nothing."""

    evaluator: Evaluator | None = None

    def evaluate(self, act: Policy) -> tuple[float, float]:
        assert self.evaluator is not None
        return self.evaluator(act)


def optimise_in_frozen_models(
    run_dir: str | Path,
    meta_steps: int,
    eval_every: int,
    overrides: dict[str, Any] | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """``meta_steps`` more meta steps in the models of the run's checkpoint; one row per meta
    step (its diagnostics: imagined returns, KL, surrogate gain, acceptance, policy std), with
    the pre-update policy's real evaluation (``paper_return``, the deterministic
    ``return_mean``) at step 0 and every ``eval_every`` steps. ``overrides`` change algorithm
    settings of the meta steps; ``report`` sees each row as it is made."""
    if meta_steps < 1 or eval_every < 1:
        raise ConfigError("meta_steps and eval_every must be positive")
    config = RunDir(run_dir).read_config()
    logger = _EvaluatingLogger()
    algorithm = load_run_algorithm(run_dir, overrides, logger)
    if not hasattr(algorithm, "meta_step"):
        raise ConfigError(f"{config['algo']} takes no meta steps (MB-MPO and ME-TRPO do)")
    # the run's own task object and evaluation episodes, as the harness evaluates the run
    evaluator = Evaluator(algorithm.task, algorithm.seed, int(config["run"]["eval_episodes"]))
    logger.evaluator = evaluator
    try:
        frozen = algorithm.watched_models()
        rows = []
        for step in range(meta_steps + 1):
            row: dict[str, Any] = {"meta_step": step}
            if step > 0:
                start = time.perf_counter()
                row |= algorithm.meta_step(frozen)
                row["time_step_s"] = time.perf_counter() - start
            if step % eval_every == 0 or step == meta_steps:
                mean, _, stats = algorithm.evaluate()
                row |= {"return_mean": mean, **stats}
            if report is not None:
                report(row)
            rows.append(row)
    finally:
        evaluator.close()
    return rows
