"""Learning evidence on a MuJoCo task: every registered algorithm beats uniform random actions.

`make test-learning` runs this module (marker ``learning``, outside the default run). Task:
HalfCheetah, horizon 200 (the paper's MB-MPO setting); each algorithm runs seeds 0 and 1 at
once, one thread each, for the budget in ``CASES``; its score is the mean over the two seeds
of the final evaluation return (the mean action, 5 episodes). It must exceed the random
policy's mean return (measured here, about -60) by the stated margin.

How the margins were chosen: from runs of these exact settings on the project's machine
(``measured``: seeds 0 and 1; a fixed seed reproduces them exactly on the CPU), each margin is
about half of the measured gain over random, so another platform's floating point or a
library update can move a seed by tens without failing the test, while a learner that is
broken (random-level return) fails it. What the margins show: a policy that holds still
scores about 0 here (no control cost, no progress), so a margin below ~60 shows that the
algorithm learned to stop flailing, and above it that it moves forward: TD3 (150) must; the
others, at these small budgets, only have to beat random clearly (DDPG's official settings,
140, move forward too). (MB-MPO's margin was 70
until its models took the official weight-norm initialisation, with which its two seeds
ended at 10 and 19 instead of 109 and 40: half that gain is 40.)

GrBAL and ReBAL are also compared with MB-MPC at the same 8000 steps (the same task with
unchanged dynamics, where adaptation is not what they are for): their measured gains are
stated in ``ADAPTIVE_VS_MBMPC`` and asserted with room for noise.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from algorithms import get_algorithm, list_algorithms

pytestmark = pytest.mark.learning

TASK, HORIZON, SEEDS = "halfcheetah", 200, (0, 1)
RANDOM_RANGE = (-90.0, -30.0)  # measured: -52 +- 31 over 10 episodes (one seed)


@dataclass(frozen=True)
class LearningCase:
    """One algorithm's learning test."""

    preset: str | None
    """Named config of the algorithm (None: its defaults)."""
    steps: int
    """Real env steps per seed."""
    margin: float
    """Required excess of the 2-seed mean final return over the random policy's."""
    measured: tuple[float, float]
    """Final returns of seeds 0 and 1 measured when the margin was chosen."""
    settings: tuple[str, ...] = ()
    """Extra --set overrides."""


CASES: dict[str, LearningCase] = {
    # Re-measured 2026-11-23 with the official weight-norm initialisation (g = 1; before:
    # MB-MPO 108.7 and 39.5, ME-TRPO 13.0 and 14.7, MB-MPC -25.9 and -7.4) and ME-TRPO's KL
    # bound enforced.
    "mbmpo": LearningCase("quick", 16_000, 40.0, (10.4, 19.3)),
    "metrpo": LearningCase("quick", 12_000, 45.0, (66.9, 3.9)),
    "mbmpc": LearningCase("quick", 8_000, 25.0, (-0.1, -20.8)),
    "grbal": LearningCase("quick", 8_000, 40.0, (16.2, 8.4)),
    "rebal": LearningCase("quick", 8_000, 55.0, (28.8, 37.6)),
    "ppo": LearningCase("zoo", 30_000, 40.0, (11.3, 3.6)),
    "trpo": LearningCase("zoo", 30_000, 35.0, (-4.5, 0.7)),
    "rllab_trpo": LearningCase("quick", 100_000, 40.0, (-2.8, 37.2)),
    "a2c": LearningCase("zoo", 30_000, 30.0, (42.1, -45.1)),
    "sac": LearningCase("paper", 5_000, 35.0, (-3.3, 3.0)),
    "td3": LearningCase("zoo", 25_000, 150.0, (239.1, 312.8)),
    # OpenAI baselines' DDPG as the official script ran it (algorithms/baselines_ddpg.py);
    # the former 'paper' set, now 'gaussian', measured 71.3 / 16.7 at 10k steps.
    "ddpg": LearningCase("paper", 40_000, 140.0, (174.4, 281.5)),
}
"""The learning set: every registered algorithm but the random reference."""

ADAPTIVE_VS_MBMPC = {"grbal": 15.0, "rebal": 25.0}
"""Required 2-seed mean final-return difference over MB-MPC at 8000 steps. Measured: GrBAL
+28.9 (12.3 against -16.6), ReBAL +49.9 (33.2 against -16.6); the gains over random actions
(about -62) are 74.3 and 95.2."""


def run_seeds(
    tmp: Path, algo: str, steps: int, preset: str | None, settings: tuple[str, ...]
) -> list[float]:
    """Final evaluation returns of seeds 0 and 1, run at once as `mbbench run` processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    processes = []
    for seed in SEEDS:
        args = [sys.executable, "-m", "benchmark.cli", "run", "--algo", algo, "--task", TASK]
        args += ["--seed", str(seed), "--steps", str(steps), "--quiet"]
        args += ["--out", str(tmp / f"{algo}-seed{seed}")]
        if preset:
            args += ["--preset", preset]
        for item in (f"run.horizon={HORIZON}", f"run.eval_every={steps}", *settings):
            args += ["--set", item]
        processes.append(subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate()
        assert process.returncode == 0, f"{algo}: {err[-2000:]}"
    finals = []
    for seed in SEEDS:
        with open(tmp / f"{algo}-seed{seed}" / "progress.csv", newline="") as handle:
            finals.append(float(list(csv.DictReader(handle))[-1]["return_mean"]))
    return finals


@pytest.fixture(scope="module")
def finals(tmp_path_factory):
    """Final returns per algorithm, each run once per test session (MB-MPC is shared)."""
    cache: dict[str, list[float]] = {}

    def get(algo: str) -> list[float]:
        if algo not in cache:
            tmp = tmp_path_factory.mktemp(algo)
            if algo == "random":
                cache[algo] = run_seeds(tmp, "random", 1000, None, ("run.eval_episodes=10",))
            else:
                case = CASES[algo]
                cache[algo] = run_seeds(tmp, algo, case.steps, case.preset, case.settings)
        return cache[algo]

    return get


def test_random_actions_score_as_measured(finals):
    assert all(RANDOM_RANGE[0] < r < RANDOM_RANGE[1] for r in finals("random")), finals("random")


@pytest.mark.parametrize("algo", sorted(CASES))
def test_algorithm_beats_random_actions_by_its_margin(finals, algo):
    random_return = float(np.mean(finals("random")))
    score = float(np.mean(finals(algo)))
    case = CASES[algo]
    print(
        f"\n{algo}: finals {finals(algo)} (measured {case.measured}), random {random_return:.1f}, "
        f"gain {score - random_return:.1f} (margin {case.margin})"
    )
    assert score > random_return + case.margin, (algo, finals(algo), random_return)


@pytest.mark.parametrize("algo", sorted(ADAPTIVE_VS_MBMPC))
def test_adaptive_mpc_against_mbmpc_at_the_same_budget(finals, algo):
    gain = float(np.mean(finals(algo)) - np.mean(finals("mbmpc")))
    print(f"\n{algo} - mbmpc: {gain:.1f} (required {ADAPTIVE_VS_MBMPC[algo]})")
    assert gain > ADAPTIVE_VS_MBMPC[algo], (finals(algo), finals("mbmpc"))


def missing_learning_cases() -> list[str]:
    """Registered learners without a learning case (the random reference needs none)."""
    return [
        algo
        for algo in list_algorithms()
        if get_algorithm(algo).family != "reference" and algo not in CASES
    ]
