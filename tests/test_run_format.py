"""The run directory format, the CLI, resume and bad input."""

from __future__ import annotations

import csv
import json
import os
import platform
from pathlib import Path

import pytest
import torch
import yaml

import algorithms
from algorithms.random_policy import RandomPolicy
from benchmark import rundir
from benchmark.cli import main
from benchmark.rundir import REQUIRED_COLUMNS, RunDir, atomic_write_text

RUN = ["run", "--algo", "random", "--task", "halfcheetah", "--seed", "0", "--quiet"]


def progress_rows(path: Path) -> list[dict[str, str]]:
    with open(path / "progress.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def snapshot(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_random_run_writes_a_complete_run_directory(tmp_path):
    out = tmp_path / "run"
    assert main([*RUN, "--steps", "2000", "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {
        "progress.csv",
        "config.yaml",
        "meta.json",
        "checkpoint.pt",
    }
    rows = progress_rows(out)
    assert list(rows[0])[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
    assert [int(r["env_steps"]) for r in rows] == [2000]
    assert float(rows[0]["return_mean"]) < 0  # random HalfCheetah goes nowhere
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "done" and meta["error"] is None
    assert meta["versions"]["torch"].startswith("2.") and meta["git_commit"]
    # The tests run one thread with AVX2 kernels on x86-64 (tests/__init__.py); the run says so.
    assert meta["torch_threads"] == 1 and meta["cpu_capability"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert meta["cpu_capability"] == "AVX2"
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["algo"] == "random" and config["steps"] == 2000
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["env_steps"] == 2000 and checkpoint["progress_rows"] == 1


def test_evaluation_grid_follows_eval_every(tmp_path):
    out = tmp_path / "run"
    main([*RUN, "--steps", "2500", "--set", "eval_every=1000", "--out", str(out)])
    assert [int(r["env_steps"]) for r in progress_rows(out)] == [1000, 2000, 2500]


def test_finished_run_is_not_redone_or_touched(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*RUN, "--steps", "1000", "--out", str(out)]
    main(args)
    before = snapshot(out)
    assert main(args) == 0
    assert "already complete" in capsys.readouterr().err
    assert snapshot(out) == before


def test_same_seed_gives_identical_progress(tmp_path):
    for name in "ab":
        main([*RUN, "--steps", "1500", "--set", "eval_every=500", "--out", str(tmp_path / name)])
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
    assert strip(progress_rows(tmp_path / "a")) == strip(progress_rows(tmp_path / "b"))


def test_crashed_run_resumes_without_duplicates_or_gaps(tmp_path, monkeypatch):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    args = [*RUN, "--steps", "2000", "--set", "eval_every=500"]
    main([*args, "--out", str(reference)])

    original_log = rundir.DirectoryLogger.log
    calls = {"n": 0}

    def crash_on_third_log(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # like a kill: no status update, no clean-up
        return original_log(self, *a, **k)

    monkeypatch.setattr(rundir.DirectoryLogger, "log", crash_on_third_log)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(crashed)])
    assert json.loads((crashed / "meta.json").read_text())["status"] == "running"
    assert len(progress_rows(crashed)) == 2
    monkeypatch.setattr(rundir.DirectoryLogger, "log", original_log)

    assert main([*args, "--out", str(crashed)]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]  # noqa: E731
    assert strip(progress_rows(crashed)) == strip(progress_rows(reference))
    meta = json.loads((crashed / "meta.json").read_text())
    assert meta["status"] == "done" and meta["resumes"] == 1


def test_diverging_run_is_marked_failed_with_the_reason(tmp_path, monkeypatch, capsys):
    def nan_evaluate(self, act):
        return float("nan"), 0.0

    monkeypatch.setattr(rundir.DirectoryLogger, "evaluate", nan_evaluate)
    out = tmp_path / "run"
    assert main([*RUN, "--steps", "1000", "--out", str(out)]) == 1
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "failed"
    assert "DivergenceError" in meta["error"] and "return_mean" in meta["error"]
    assert "return_mean is nan" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--algo", "nope"], "unknown algorithm 'nope'; choose from: a2c, ddpg, grbal"),
        (["--task", "halfcheeta"], "unknown task 'halfcheeta'; choose from: ant, ant-cripple"),
        (["--set", "eval_evry=10"], "unknown config key 'eval_evry' (did you mean eval_every?)"),
        (["--set", "eval_every=abc"], "run.eval_every: expected int, got 'abc'"),
        (["--set", "eval_every=0"], "run.eval_every: must be >= 1, got 0"),
        (["--set", "horizon=2.5"], "run.horizon"),
        (["--set", "env.no_such_kwarg=1"], "no_such_kwarg"),
        (["--steps", "0"], "steps: must be a positive integer, got 0"),
        (["--seed", "-1"], "seed: must be a non-negative integer"),
        (["--preset", "paper"], "unknown preset 'paper' for random"),
    ],
)
def test_bad_input_is_one_clear_line_exit_2_and_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    args = [*RUN, "--steps", "1000", "--out", str(out)]
    for flag in ("--algo", "--task", "--steps", "--seed"):
        if flag in extra:  # replace the default value of that flag
            i = args.index(flag)
            del args[i : i + 2]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_unknown_key_suggests_the_closest(capsys):
    assert main([*RUN, "--steps", "10", "--set", "eval_evry=10"]) == 2
    assert "did you mean eval_every" in capsys.readouterr().err


def test_finished_run_of_another_config_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    main([*RUN, "--steps", "1000", "--out", str(out)])
    before = snapshot(out)
    other_seed = ["run", "--algo", "random", "--task", "halfcheetah", "--seed", "1", "--quiet"]
    assert main([*other_seed, "--steps", "1000", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "a run of another config" in err and "seed: 0 -> 1" in err
    assert snapshot(out) == before


def test_a_run_recorded_before_a_setting_existed_resumes_as_its_default(tmp_path, capsys):
    """Settings are only ever added with a default that keeps the earlier behaviour: a run
    whose config.yaml and checkpoint lack one resumes (and is not 'another config')."""
    out = tmp_path / "run"
    args = [*RUN, "--steps", "2000", "--set", "eval_every=1000", "--out", str(out)]
    assert main(args) == 0
    rows = progress_rows(out)
    config = yaml.safe_load((out / "config.yaml").read_text())
    del config["run"]["eval_episodes"]  # as if the setting came after the run
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    del checkpoint["config"]["run"]["eval_episodes"]
    torch.save(checkpoint, out / "checkpoint.pt")
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads((out / "meta.json").read_text())["status"] == "done"
    assert progress_rows(out) == rows
    # a value other than the default is another config
    assert main([*args, "--set", "eval_episodes=3"]) == 2
    assert "eval_episodes: 5 -> 3" in capsys.readouterr().err


def test_later_algorithm_settings_take_their_defaults_in_a_recorded_config():
    from algorithms.mbmpo import MBMPO
    from benchmark.run import with_later_settings

    recorded = {"algo": "mbmpo", "run": {}, "algorithm": {"fisher_subsample": 1}}
    completed = with_later_settings(recorded, MBMPO)
    assert completed["algorithm"]["fisher_product"] == "exact"
    assert completed["algorithm"]["fisher_subsample"] == 1  # recorded values win
    assert completed["run"]["eval_episodes"] == 5
    assert recorded == {"algo": "mbmpo", "run": {}, "algorithm": {"fisher_subsample": 1}}


def test_foreign_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main([*RUN, "--steps", "1000", "--out", str(out)]) == 2
    assert "holds no run" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_checkpoint_of_a_newer_format_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    args = [*RUN, "--steps", "1000", "--out", str(out)]
    main(args)
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    torch.save({**checkpoint, "format_version": 99}, out / "checkpoint.pt")
    assert main(args) == 2
    assert "checkpoint format 99" in capsys.readouterr().err


def test_atomic_write_leaves_the_old_file_whole_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "file.txt"
    target.write_text("old contents")

    def fail_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(rundir.DiskFullError, match="disk full while writing .*file.txt"):
        atomic_write_text(target, "new contents")
    assert target.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]  # no temp file left behind


def test_progress_reader_rejects_foreign_csv(tmp_path):
    (tmp_path / "progress.csv").write_text("a,b\n1,2\n")
    with pytest.raises(rundir.RunDirError, match="missing columns"):
        rundir.read_progress(tmp_path / "progress.csv")
    assert RunDir(tmp_path).load_checkpoint() is None


def test_list_names_algorithms_tasks_and_acktr(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "random" in out and "halfcheetah" in out and "point2d" in out
    assert "acktr" in out and "not available" in out


def test_registry_and_entry_point_plugins(monkeypatch, scratch_registry):
    assert algorithms.get_algorithm("random") is RandomPolicy
    with pytest.raises(algorithms.UnknownAlgorithmError, match="choose from"):
        algorithms.get_algorithm("nope")
    with pytest.raises(TypeError):
        algorithms.register("bad")(object)

    class Plugin(RandomPolicy):
        """An outside algorithm."""

    class FakeEntryPoint:
        name = "myplugin"

        def load(self):
            return Plugin

    monkeypatch.setattr(algorithms, "_loaded", False)
    monkeypatch.setattr(algorithms, "entry_points", lambda group: [FakeEntryPoint()])
    assert "myplugin" in algorithms.list_algorithms()
    assert algorithms.get_algorithm("myplugin") is Plugin
