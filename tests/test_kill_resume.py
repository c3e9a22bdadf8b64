"""A run killed with SIGKILL at a random moment and started again with the same command ends
with the same progress.csv as an uninterrupted run (CPU, same seed)."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_baselines import MPC_POINT2D
from tests.test_mbmpo import POINT2D_SMALL

CASES = {
    "mbmpo": (
        1800,
        [*POINT2D_SMALL[:-2], "meta_steps=2", "eval_every=300", "eval_episodes=2"],
        None,
    ),
    "mbmpc": (
        2100,
        [*MPC_POINT2D[:-3], "model_max_epochs=5", "eval_every=300", "eval_episodes=2"],
        None,
    ),
    # zoo PPO: 2048-step batches; it checkpoints at the first batch start after an evaluation
    "ppo": (5000, ["eval_every=1000", "eval_episodes=2"], "zoo"),
}
"""Budget, settings and preset per algorithm."""


def command(algo: str, out: Path) -> list[str]:
    steps, settings, preset = CASES[algo]
    args = [sys.executable, "-m", "benchmark.cli", "run", "--algo", algo, "--task", "point2d"]
    args += ["--steps", str(steps), "--quiet", "--out", str(out)]
    if preset is not None:
        args += ["--preset", preset]
    for item in settings:
        args += ["--set", item]
    return args


def progress(out: Path) -> list[dict[str, str]]:
    with open(out / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in r.items() if not k.startswith(("wall_time", "time_"))} for r in rows]


@pytest.mark.parametrize("algo", sorted(CASES))
def test_sigkill_then_same_command_resumes_to_the_same_progress(tmp_path, algo):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(command(algo, reference), check=True, env=env, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        command(algo, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists():  # kill after the first checkpoint ...
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    time.sleep(random.Random(0).uniform(0.0, 1.0))  # ... at a random moment after it
    if process.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert json.loads((killed / "meta.json").read_text())["status"] == "running"

    subprocess.run(command(algo, killed), check=True, env=env, capture_output=True)
    assert progress(killed) == progress(reference)
    meta = json.loads((killed / "meta.json").read_text())
    assert meta["status"] == "done" and meta["resumes"] == 1
