"""Every registered algorithm: the same seed gives the same progress.csv on the CPU, and a run
interrupted without any clean-up resumes from its checkpoint to the uninterrupted run's
progress.csv, row for row (the in-process variant of tests/test_kill_resume.py)."""

from __future__ import annotations

import errno
import json
import subprocess

import pytest
import torch

from algorithms import list_algorithms
from benchmark import rundir
from tests.test_baselines import rows, run

# Small budgets that still cross several evaluation points, checkpoints and (for the
# learning algorithms) updates; ``preset`` picks SB3's zoo settings, whose on-policy batches
# (2048 and 1024 steps) fit in the budget.
STEPS = 600
EVAL = ["eval_every=120", "eval_episodes=2"]
MODEL_BASED = {
    "mbmpo": [
        "initial_random_steps=240",
        "num_models=2",
        "num_tasks=4",
        "imagined_trajectories=4",
        "imagined_horizon=10",
        "meta_steps=2",
        "model_hidden_sizes=[32,32]",
        "model_max_epochs=3",
    ],
    "mbmpc": [
        "initial_random_steps=240",
        "steps_per_iteration=120",
        "num_candidates=50",
        "planning_horizon=3",
        "model_hidden_sizes=[32,32]",
        "model_max_epochs=3",
    ],
}
# ME-TRPO with MB-MPO's task layout, so the two differ only in alpha at these tiny sizes.
MODEL_BASED["metrpo"] = [*MODEL_BASED["mbmpo"], "real_rollouts_per_task=1", "model_assignment=task"]
MODEL_BASED["grbal"] = [
    "initial_random_steps=240",
    "steps_per_iteration=120",
    "past_steps=4",
    "future_steps=4",
    "model_hidden_sizes=[32,32]",
    "model_max_epochs=3",
    "num_candidates=50",
    "planning_horizon=3",
]
MODEL_BASED["rebal"] = [*MODEL_BASED["grbal"], "recurrent_size=16"]
ON_POLICY_ZOO = {"ppo": 5000, "trpo": 2500}  # budgets of two or more zoo batches
MODEL_FREE_SMALL = {"rllab_trpo": ["batch_size=120"]}  # five updates in STEPS


def case(algo: str) -> tuple[int, list[str], str | None]:
    """Budget, settings and preset of ``algo``'s small run on point2d."""
    if algo in ON_POLICY_ZOO:
        steps = ON_POLICY_ZOO[algo]
        return steps, [f"eval_every={steps // 5}", "eval_episodes=2"], "zoo"
    return STEPS, [*MODEL_BASED.get(algo, []), *MODEL_FREE_SMALL.get(algo, []), *EVAL], None


def without_time(table):
    return [{k: v for k, v in r.items() if not k.startswith(("wall_time", "time_"))} for r in table]


def missing_evidence() -> list[str]:
    """What keeps a registered algorithm out of the evidence sets. The determinism, resume
    and SIGKILL tests are parametrized over the registry; an algorithm also needs the small
    settings those runs use (a model-based one without a MODEL_BASED entry would train at full
    size), a recorded fingerprint (tests/golden.py) and a learning case with a measured
    margin (tests/test_learning.py)."""
    from algorithms import get_algorithm
    from tests.golden import recorded
    from tests.test_kill_resume import test_sigkill_of_every_algorithm_at_every_moment as kill
    from tests.test_learning import missing_learning_cases

    kill_algos = next(
        m.args[1] for m in kill.pytestmark if m.name == "parametrize" and m.args[0] == "algo"
    )
    problems = []
    for algo in list_algorithms():
        if get_algorithm(algo).family == "model-based" and algo not in MODEL_BASED:
            problems.append(f"{algo}: no small settings in MODEL_BASED")
        if f"{algo}-point2d" not in recorded():
            problems.append(f"{algo}: no fingerprint (python -m tests.golden)")
        if algo not in kill_algos:
            problems.append(f"{algo}: not in the SIGKILL matrix")
    problems += [
        f"{algo}: no learning case (tests/test_learning.py)" for algo in missing_learning_cases()
    ]
    return problems


def test_every_registered_algorithm_is_in_every_evidence_set():
    assert missing_evidence() == []


def test_an_algorithm_registered_without_evidence_is_caught(scratch_registry):
    import algorithms
    from algorithms.mbmpc import MBMPC

    algorithms.register("unproven")(type("Unproven", (MBMPC,), {}))
    problems = missing_evidence()
    assert "unproven: no small settings in MODEL_BASED" in problems
    assert "unproven: no fingerprint (python -m tests.golden)" in problems
    assert "unproven: no learning case (tests/test_learning.py)" in problems


@pytest.mark.parametrize("algo", list_algorithms())
def test_same_seed_gives_identical_progress(tmp_path, algo):
    steps, settings, preset = case(algo)
    tables = []
    for name, seed in (("a", 0), ("b", 0), ("other_seed", 1)):
        assert run(tmp_path / name, algo, "point2d", steps, settings, seed=seed, preset=preset) == 0
        tables.append(without_time(rows(tmp_path / name)))
    assert len(tables[0]) >= 4
    assert tables[0] == tables[1]
    assert tables[0] != tables[2]  # the comparison can fail: another seed changes the numbers


def crash_on_third_log(out, algo: str, monkeypatch) -> None:
    """Run ``algo``'s small case into ``out`` and kill it, as a SIGKILL would (no status
    update, no clean-up), at its third progress row, after a checkpoint was written."""
    steps, settings, preset = case(algo)
    original_log = rundir.DirectoryLogger.log
    calls = {"n": 0}

    def die_on_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # like a kill: no status update, no clean-up
        return original_log(self, *args, **kwargs)

    monkeypatch.setattr(rundir.DirectoryLogger, "log", die_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(out, algo, "point2d", steps, settings, preset=preset)
    assert (out / "checkpoint.pt").exists()
    monkeypatch.setattr(rundir.DirectoryLogger, "log", original_log)


@pytest.mark.parametrize("algo", list_algorithms())
def test_interrupted_run_resumes_to_the_same_progress(tmp_path, monkeypatch, algo):
    steps, settings, preset = case(algo)
    reference = tmp_path / "reference"
    assert run(reference, algo, "point2d", steps, settings, preset=preset) == 0

    crashed = tmp_path / "crashed"
    crash_on_third_log(crashed, algo, monkeypatch)
    assert run(crashed, algo, "point2d", steps, settings, preset=preset) == 0
    assert without_time(rows(crashed)) == without_time(rows(reference))
    meta = json.loads((crashed / "meta.json").read_text())
    assert meta["resumes"] == 1
    (resumed,) = meta["resumed_on"]  # the process that took over, where and on what
    assert 0 < resumed["env_steps"] < steps
    assert resumed["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert resumed["torch_threads"] == torch.get_num_threads()


def test_a_run_resumed_on_another_kind_of_cpu_says_so(tmp_path, monkeypatch, capsys):
    """A run that started on other vector instructions than the resuming process's is
    resumed, with one line on stderr saying its numbers may differ from there on."""
    algo = "mbmpc"
    steps, settings, preset = case(algo)
    out = tmp_path / "run"
    crash_on_third_log(out, algo, monkeypatch)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "cpu_capability": "OTHER"}))
    capsys.readouterr()
    assert run(out, algo, "point2d", steps, settings, preset=preset) == 0
    here = torch.backends.cpu.get_cpu_capability()
    assert f"resumed on {here} where it started on OTHER" in capsys.readouterr().err


@pytest.fixture
def small_file_system(tmp_path):
    """A 4 MB tmpfs mounted for the test (needs root; skipped elsewhere)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(directory):
    """Write into ``directory`` until the file system is full."""
    with open(directory / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC


def test_full_disk_stops_the_run_with_a_clear_error_and_loses_nothing(
    tmp_path, small_file_system, monkeypatch, capsys
):
    algo, steps, settings = "mbmpc", STEPS, [*MODEL_BASED["mbmpc"], *EVAL]
    reference = tmp_path / "reference"
    assert run(reference, algo, "point2d", steps, settings) == 0
    out = small_file_system / "run"

    original_log = rundir.DirectoryLogger.log
    calls = {"n": 0}

    def fill_disk_before_third(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            fill(small_file_system)
        return original_log(self, *args, **kwargs)

    monkeypatch.setattr(rundir.DirectoryLogger, "log", fill_disk_before_third)
    capsys.readouterr()
    assert run(out, algo, "point2d", steps, settings) == 1
    error = capsys.readouterr().err
    assert "disk full while writing" in error and "progress.csv" in error, error
    # What was written before the disk filled is whole: two rows and their checkpoint.
    assert without_time(rows(out)) == without_time(rows(reference))[:2]
    checkpoint = rundir.RunDir(out).load_checkpoint()
    assert checkpoint is not None and checkpoint["progress_rows"] == 2
    assert not list(out.glob(".*.tmp"))  # no half-written temporaries left behind

    (small_file_system / "filler").unlink()  # space again: the same command resumes
    monkeypatch.setattr(rundir.DirectoryLogger, "log", original_log)
    assert run(out, algo, "point2d", steps, settings) == 0
    assert without_time(rows(out)) == without_time(rows(reference))
    assert json.loads((out / "meta.json").read_text())["resumes"] == 1
