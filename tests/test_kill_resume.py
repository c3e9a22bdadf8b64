"""A run killed with SIGKILL and started again with the same command ends with the same
progress.csv as an uninterrupted run (CPU, same seed), for every registered algorithm and at
several moments: before the first checkpoint, during a model fit (SB3: during training),
during an evaluation, right after a checkpoint. Which occurrence of the moment, and a small
delay, are drawn per run; the run reports its phases (``--progress phases``) so the test
knows when to strike.

The default suite kills one model-based and one SB3 algorithm at a drawn moment; the whole
matrix is in the slow set (``make test-all``).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from algorithms import get_algorithm, list_algorithms
from tests.test_reliability import case

MOMENTS = ("before_first_checkpoint", "fitting", "evaluating", "after_checkpoint")
DEFAULT_CASES = [("mbmpo", "fitting"), ("ppo", "after_checkpoint")]
"""Kept in the default suite: one model-based algorithm, one SB3 algorithm."""


def command(algo: str, out: Path) -> list[str]:
    steps, settings, preset = case(algo)
    args = [sys.executable, "-m", "benchmark.cli", "run", "--algo", algo, "--task", "point2d"]
    args += ["--steps", str(steps), "--progress", "phases", "--out", str(out)]
    if preset is not None:
        args += ["--preset", preset]
    for item in settings:
        args += ["--set", item]
    return args


def progress(out: Path) -> list[dict[str, str]]:
    with open(out / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in r.items() if not k.startswith(("wall_time", "time_"))} for r in rows]


def phase_word(algo: str, moment: str) -> str | None:
    """The phase line that marks ``moment`` for ``algo`` (None: watch the checkpoint file)."""
    family = get_algorithm(algo).family
    if moment == "fitting":
        return {"model-based": "fitting", "model-free": "training"}.get(family, "acting")
    if moment == "evaluating":
        return "evaluating"
    return None


def kill_at(process: subprocess.Popen, out: Path, algo: str, moment: str, rng: random.Random):
    """Watch the run's phase lines and checkpoint; SIGKILL it at ``moment``. Returns the
    phase it was in, or None if it finished first."""
    checkpoint = out / "checkpoint.pt"
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    word = phase_word(algo, moment)
    occurrence = rng.randint(1, 2)
    seen, last_stamp = 0, None
    deadline = time.monotonic() + 300
    while process.poll() is None:
        assert time.monotonic() < deadline, "the run neither finished nor reached the moment"
        if moment == "before_first_checkpoint":
            if lines and not checkpoint.exists():
                time.sleep(rng.uniform(0.0, 0.3))
                break
        elif moment == "after_checkpoint":
            stamp = checkpoint.stat().st_mtime_ns if checkpoint.exists() else None
            if stamp is not None and stamp != last_stamp:
                seen, last_stamp = seen + 1, stamp
                if seen == occurrence:
                    break
        else:
            seen = sum(word in line for line in lines)
            if seen >= occurrence:
                time.sleep(rng.uniform(0.0, 0.05))
                break
        time.sleep(0.005)
    if process.poll() is not None:
        return None
    process.send_signal(signal.SIGKILL)
    process.wait()
    phases = [line for line in lines if "steps=" not in line]
    return phases[-1].strip() if phases else "(no phase yet)"


def check_kill_and_resume(tmp_path: Path, algo: str, moment: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    reference = tmp_path / "reference"
    subprocess.run(command(algo, reference), check=True, env=env, capture_output=True)
    rng = random.Random(f"{algo}-{moment}-{os.getpid()}")
    killed = tmp_path / "killed"
    for _attempt in range(3):  # a moment drawn too late may find the run finished
        if killed.exists():
            subprocess.run(["rm", "-rf", str(killed)], check=True)
        process = subprocess.Popen(
            command(algo, killed),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        phase = kill_at(process, killed, algo, moment, rng)
        finished = json.loads((killed / "meta.json").read_text())["status"] == "done"
        if phase is not None and not finished:  # (killed while exiting after its last write)
            break
    else:
        pytest.skip(f"{algo} finished before it could be killed at {moment}")
    meta = json.loads((killed / "meta.json").read_text())
    assert meta["status"] == "running", meta
    had_checkpoint = (killed / "checkpoint.pt").exists()
    subprocess.run(command(algo, killed), check=True, env=env, capture_output=True)
    assert progress(killed) == progress(reference), f"killed at {moment} ({phase})"
    meta = json.loads((killed / "meta.json").read_text())
    assert meta["status"] == "done"
    assert meta["resumes"] == int(had_checkpoint)


@pytest.mark.parametrize(("algo", "moment"), DEFAULT_CASES)
def test_sigkill_then_same_command_resumes_to_the_same_progress(tmp_path, algo, moment):
    check_kill_and_resume(tmp_path, algo, moment)


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("algo", list_algorithms())
def test_sigkill_of_every_algorithm_at_every_moment(tmp_path, algo, moment):
    check_kill_and_resume(tmp_path, algo, moment)


EXTEND_SETTINGS = [
    "eval_every=600",
    "eval_episodes=2",
    "initial_random_steps=600",
    "meta_steps=2",
]
"""A quick MB-MPO on point2d whose iterations are 600 steps (20 tasks x 30): budgets of 1800
and 3000 end at an iteration's end."""


def _extend_run(
    out: Path,
    steps: int,
    extend: bool,
    settings=EXTEND_SETTINGS,
    algo="mbmpo",
    branch_from: Path | None = None,
    seed: int = 0,
):
    """``mbbench run`` (quick preset for MB-MPO) into ``out``, with ``--extend`` or not."""
    from benchmark.cli import main

    cli = ["run", "--algo", algo, "--task", "point2d", "--steps", str(steps), "--quiet"]
    cli += ["--seed", str(seed)]
    if branch_from is not None:
        cli += ["--branch-from", str(branch_from)]
    cli += ["--out", str(out), *(["--preset", "quick"] if algo == "mbmpo" else [])]
    for item in settings:
        cli += ["--set", item]
    return main([*cli, "--extend"] if extend else cli)


def _values(out: Path) -> list[list[str]]:
    """progress.csv without its timing columns."""
    with open(out / "progress.csv", newline="") as handle:
        table = list(csv.reader(handle))
    keep = [i for i, name in enumerate(table[0]) if not name.startswith(("wall_time", "time_"))]
    return [[row[i] for i in keep] for row in table]


def test_an_extended_run_equals_a_run_started_with_the_larger_budget(tmp_path, quick_mbmpo_run):
    assert _extend_run(tmp_path / "extended", 1800, extend=False) == 0
    assert json.loads((tmp_path / "extended" / "meta.json").read_text())["status"] == "done"
    assert _extend_run(tmp_path / "extended", 3000, extend=True) == 0
    assert _values(tmp_path / "extended") == _values(quick_mbmpo_run)
    assert len(_values(quick_mbmpo_run)) == 1 + 5  # evaluated at 600, ..., 3000
    meta = json.loads((tmp_path / "extended" / "meta.json").read_text())
    assert meta["status"] == "done"
    assert meta["extensions"] == [{"from_steps": 1800, "to_steps": 3000}]
    assert "steps: 3000" in (tmp_path / "extended" / "config.yaml").read_text()


def test_extend_refuses_anything_but_a_larger_budget_of_the_same_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _extend_run(out, 1800, extend=False) == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    assert _extend_run(out, 1200, extend=True) != 0  # smaller: another config
    assert _extend_run(out, 3000, extend=True, settings=[*EXTEND_SETTINGS, "inner_lr=0.01"]) != 0
    assert _extend_run(out, 3000, extend=False) != 0  # a larger budget needs --extend
    errors = capsys.readouterr().err
    assert "steps: 1800 -> 1200" in errors and "inner_lr" in errors
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before
    # A model-free run starts and finishes with --extend (the workflow always passes it), but
    # cannot be continued to a larger budget.
    assert _extend_run(tmp_path / "ppo", 400, True, ["eval_every=200"], algo="ppo") == 0
    assert _extend_run(tmp_path / "ppo", 400, True, ["eval_every=200"], algo="ppo") == 0
    assert _extend_run(tmp_path / "ppo", 600, True, ["eval_every=200"], algo="ppo") != 0
    assert "ppo runs cannot be extended" in capsys.readouterr().err


def test_a_branch_continues_its_source_with_the_changed_settings(tmp_path, capsys, quick_mbmpo_run):
    source, same, changed = tmp_path / "source", tmp_path / "same", tmp_path / "changed"
    assert _extend_run(source, 1800, extend=False) == 0
    before = sorted((p.name, p.stat().st_mtime_ns) for p in source.iterdir())
    # unchanged settings: the branch is the run started with the larger budget
    assert _extend_run(same, 3000, extend=False, branch_from=source) == 0
    assert _values(same) == _values(quick_mbmpo_run)
    # another inner step size from 1800 steps on: the same rows up to the branch point
    settings = [*EXTEND_SETTINGS, "inner_lr=0.01"]
    assert _extend_run(changed, 3000, False, settings, branch_from=source) == 0
    assert _values(changed)[:4] == _values(source)  # header + 600, 1200, 1800
    assert _values(changed)[4:] != _values(same)[4:]
    meta = json.loads((changed / "meta.json").read_text())
    assert meta["status"] == "done"
    assert meta["branched_from"] == {
        "run": str(source),
        "env_steps": 1800,
        "changed": ["algorithm.inner_lr: 0.001 -> 0.01"],
    }
    assert "inner_lr: 0.01" in (changed / "config.yaml").read_text()
    # the same command again: the branch is complete, nothing is redone
    assert _extend_run(changed, 3000, False, settings, branch_from=source) == 0
    assert "already complete" in capsys.readouterr().err
    # refused before anything is written: another seed, a budget not past the checkpoint,
    # a source without a run
    assert _extend_run(tmp_path / "b1", 3000, False, branch_from=source, seed=1) != 0
    assert _extend_run(tmp_path / "b2", 1800, False, branch_from=source) != 0
    assert _extend_run(tmp_path / "b3", 3000, False, branch_from=tmp_path / "none") != 0
    errors = capsys.readouterr().err
    assert "its seed is 0, this run's 1" in errors
    assert "must be larger" in errors and "no run there" in errors
    assert not any((tmp_path / name).exists() for name in ("b1", "b2", "b3"))
    assert sorted((p.name, p.stat().st_mtime_ns) for p in source.iterdir()) == before
