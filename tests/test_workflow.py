"""The Snakemake workflow, run for real on the smoke config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def copy_workflow(dest: Path) -> None:
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    shutil.copytree(REPO / "workflow", dest / "workflow")


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{env_bin}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(SNAKEMAKE), "--cores", "2", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_smoke_workflow_runs_end_to_end(tmp_path):
    copy_workflow(tmp_path)
    result = snakemake(tmp_path, "--configfile", "workflow/config/smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/summary/runs.csv")
    assert set(table["status"]) == {"done"}
    assert table["env_steps"].max() == 300


def test_default_config_dry_run_lists_its_jobs(tmp_path):
    copy_workflow(tmp_path)
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train" in result.stdout


def test_bad_config_is_rejected_before_anything_runs(tmp_path):
    copy_workflow(tmp_path)
    (tmp_path / "bad.yaml").write_text(
        "results: results\nexperiments:\n  x: {tasks: [point2d], seeds: [0], steps: -5,"
        " algos: {random: {}}}\n"
    )
    result = snakemake(tmp_path, "--configfile", "bad.yaml")
    assert result.returncode != 0
    assert "steps" in result.stderr and "minimum" in result.stderr
    assert not (tmp_path / "results").exists()


def test_aggregate_lists_malformed_runs(tmp_path, capsys):
    from benchmark.analysis.aggregate import aggregate
    from benchmark.cli import main

    good = tmp_path / "runs/e/halfcheetah/random/seed0"
    assert (
        main(
            [
                "run",
                "--algo",
                "random",
                "--task",
                "point2d",
                "--steps",
                "60",
                "--set",
                "eval_every=30",
                "--quiet",
                "--out",
                str(good),
            ]
        )
        == 0
    )
    bad = tmp_path / "runs/e/point2d/random/seed1"
    shutil.copytree(good, bad)
    (bad / "progress.csv").write_text("garbage\n")
    table = aggregate(tmp_path / "runs")
    assert set(table["status"]) == {"done", "malformed"}
    assert str(bad) in capsys.readouterr().err
    assert len(table[table["status"] == "done"]) == 2
