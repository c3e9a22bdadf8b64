"""Damaged files, bad paths and broken plugins: one clear line and exit code 2, never a
traceback, never advice that does not apply, and nothing overwritten."""

from __future__ import annotations

import json
import os
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
import torch

import algorithms
from benchmark.cli import main

STEPS = ["--steps", "300", "--set", "eval_every=100", "--set", "eval_episodes=1"]
COMMAND = ["run", "--algo", "random", "--task", "point2d", *STEPS, "--quiet"]


def interrupted_run(tmp_path: Path) -> Path:
    """A run directory as a kill would leave it: progress, checkpoint, meta 'running'."""
    out = tmp_path / "run"
    assert main([*COMMAND, "--out", str(out)]) == 0
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    return out


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def one_line_error(capsys, naming: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "weights_only" not in err, err
    assert naming in err, err
    return err


def checkpoint_of_wrong_types(path: Path) -> None:
    checkpoint = torch.load(path, weights_only=True)
    torch.save({**checkpoint, "env_steps": "three hundred"}, path)


def checkpoint_of_another_algorithm(path: Path) -> None:
    checkpoint = torch.load(path, weights_only=True)
    torch.save({**checkpoint, "algorithm": {"policy": [1, 2]}}, path)


DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "random bytes": lambda p: p.write_bytes(os.urandom(300)),
    "empty": lambda p: p.write_bytes(b""),
}
WRONG_TYPES = {
    "checkpoint.pt": [
        lambda p: torch.save([1, 2, 3], p),
        checkpoint_of_wrong_types,
        checkpoint_of_another_algorithm,
    ],
    "progress.csv": [
        lambda p: p.write_text(
            "env_steps,wall_time_s,return_mean,return_std,eval_episodes\nabc,x,y,z,w\n"
        )
    ],
    "config.yaml": [lambda p: p.write_text("- 1\n- 2\n"), lambda p: p.write_text("seed: [0]\n")],
    "meta.json": [lambda p: p.write_text("[1, 2]"), lambda p: p.write_text('"done"')],
}
CASES = [
    (name, f"{kind}", damage)
    for name in WRONG_TYPES
    for kind, damage in [*DAMAGE.items(), *(("wrong types", d) for d in WRONG_TYPES[name])]
]


@pytest.mark.parametrize(("name", "kind", "damage"), CASES, ids=[f"{n}-{k}" for n, k, _ in CASES])
def test_a_damaged_run_file_gets_one_line_and_nothing_changes(tmp_path, capsys, name, kind, damage):
    out = interrupted_run(tmp_path)
    damage(out / name)
    before = snapshot(out)
    capsys.readouterr()
    assert main([*COMMAND, "--out", str(out)]) == 2
    one_line_error(capsys, name)
    assert snapshot(out) == before


def test_out_that_cannot_hold_a_run_directory(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    for out, naming in [
        (a_file, "a file, not a directory"),
        (a_file / "below", "is a file, not a directory"),
    ]:
        assert main([*COMMAND, "--out", str(out)]) == 2
        one_line_error(capsys, naming)
    assert a_file.read_text() == "not a directory"
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main([*COMMAND, "--out", str(locked / "run")]) == 2
        one_line_error(capsys, "not writable")


def test_a_broken_plugin_is_reported_and_the_rest_keep_working(
    tmp_path, monkeypatch, capsys, scratch_registry
):
    broken = EntryPoint("broken_algo", "no_such_module_xyz:Algo", algorithms.ENTRY_POINT_GROUP)
    monkeypatch.setattr(algorithms, "entry_points", lambda group: [broken])
    monkeypatch.setattr(algorithms, "_loaded", False)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if "broken_algo" in line]
    assert "no_such_module_xyz" in line and "ModuleNotFoundError" in line
    run = ["run", "--algo", "broken_algo", "--task", "point2d", *STEPS, "--quiet"]
    assert main([*run, "--out", str(tmp_path / "b")]) == 2
    one_line_error(capsys, "no_such_module_xyz")
    assert not (tmp_path / "b").exists()
    assert main([*COMMAND, "--out", str(tmp_path / "ok")]) == 0
