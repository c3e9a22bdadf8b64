"""The Snakemake workflow, run for real on the smoke config."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
SMOKE_OUTPUTS = [
    "results/report.md",
    "results/figures/smoke.png",
    "results/figures/smoke.pdf",
    "results/figures/smoke_plasticity.png",
    "results/figures/smoke_plasticity.pdf",
    "results/tables/final_returns.md",
    "results/tables/final_returns.csv",
    "results/tables/samples_needed.md",
    "results/tables/samples_needed.csv",
    "results/claims.md",
    "results/claims.csv",
]


def copy_workflow(dest: Path) -> None:
    """The workflow and the reference runs a profile may draw (as a clone has them)."""
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    shutil.copytree(REPO / "workflow", dest / "workflow")
    shutil.copytree(REPO / "results" / "reference", dest / "results" / "reference")


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{env_bin}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(SNAKEMAKE), "--cores", "2", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    copy_workflow(root)
    result = snakemake(root, "--configfile", "workflow/config/smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_smoke_workflow_produces_every_figure_and_table(smoke):
    for path in SMOKE_OUTPUTS:
        assert (smoke / path).stat().st_size > 0, path
    table = pd.read_csv(smoke / "results/summary/runs.csv")
    assert set(table["status"]) == {"done"}
    assert set(table["algo"]) == {"random", "ppo", "mbmpo", "mbmpc"}
    report = (smoke / "results/report.md").read_text()
    assert "figures/smoke.png" in report
    # Rows name how their models were fitted (model-free rows: nothing); the profile's note
    # heads every table as it does the figures.
    assert re.search(r"\| smoke \| point2d \| mbmpo \| official, <=\d+ epochs \| 2 \|", report)
    assert "| smoke | point2d | ppo |  | 2 |" in report
    note = yaml.safe_load((smoke / "workflow/config/smoke.yaml").read_text())["note"]
    for name in ("final_returns.md", "samples_needed.md"):
        assert (smoke / "results/tables" / name).read_text().startswith(note)
    # Every claim has a row; C5 is judged on the plasticity run's grid; the others look for
    # their experiments (fig1, fig3, fig4, adaptation) and say which runs they need.
    verdicts = pd.read_csv(smoke / "results/claims.csv")
    assert set(verdicts["claim"]) == {"C1", "C2", "C3", "C4", "C5", "G1"}
    c5 = verdicts[verdicts["claim"] == "C5"].iloc[0]
    assert c5["n"] == "2500 grid points" and c5["verdict"] in (
        "supported",
        "contradicted",
        "inconclusive",
    )
    c2 = verdicts[verdicts["claim"] == "C2"].iloc[0]
    assert c2["verdict"] == "inconclusive" and c2["reason"].startswith("no runs")
    assert (
        "[smoke_plasticity](figures/smoke_plasticity.png)"
        in (smoke / "results/claims.md").read_text()
    )


def test_rerun_after_a_lost_job_redoes_only_what_is_missing(smoke):
    lost = smoke / "results/runs/smoke/point2d/random/seed1"
    shutil.rmtree(lost)
    kept = smoke / "results/runs/smoke/point2d/mbmpo/seed0/progress.csv"
    before = kept.stat().st_mtime_ns
    result = snakemake(smoke, "--configfile", "workflow/config/smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    job_counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stderr + result.stdout, re.M))
    assert job_counts.get("train") == "1", result.stderr[-3000:]
    assert (lost / "run.done").exists() and kept.stat().st_mtime_ns == before


def test_killed_workflow_rerun_finishes_only_what_was_missing(smoke):
    fast = smoke / "results/runs/smoke/point2d/random/seed0"
    slow = smoke / "results/runs/smoke/point2d/mbmpo/seed1"
    shutil.rmtree(fast)
    shutil.rmtree(slow)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    args = [str(SNAKEMAKE), "--cores", "2", "--configfile", "workflow/config/smoke.yaml"]
    process = subprocess.Popen(
        args,
        cwd=smoke,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (fast / "run.done").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    # Snakemake records a job as complete a moment after its output appears; a kill inside
    # that window (wider on a loaded machine) would leave the fast job incomplete too.
    time.sleep(1.0)
    assert not (slow / "run.done").exists()  # still training: kill it mid-run
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    fast_done = (fast / "run.done").stat().st_mtime_ns

    assert (
        snakemake(smoke, "--unlock", "--configfile", "workflow/config/smoke.yaml").returncode == 0
    )
    result = snakemake(smoke, "--rerun-incomplete", "--configfile", "workflow/config/smoke.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    job_counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stderr + result.stdout, re.M))
    assert job_counts.get("train") == "1", result.stderr[-3000:]  # only the killed run
    assert (slow / "run.done").exists() and (fast / "run.done").stat().st_mtime_ns == fast_done


def test_a_raised_budget_continues_the_finished_model_based_runs(tmp_path):
    """Raising a model-based label's budget in the config and running again continues its runs
    from their checkpoints (meta.json records the extension) instead of refusing them."""
    copy_workflow(tmp_path)
    config = (
        "results: results\nexperiments:\n  x:\n    tasks: [point2d]\n    seeds: [0]\n"
        "    steps: {steps}\n    set: {{eval_every: 150}}\n    algos:\n      mbmpo:\n"
        "        set: {{initial_random_steps: 150, num_tasks: 5, imagined_trajectories: 4,"
        " meta_steps: 1, model_hidden_sizes: [16, 16], model_max_epochs: 2}}\n"
    )
    for steps in (300, 450):  # 150 random steps, then iterations of 5 x 30
        (tmp_path / "x.yaml").write_text(config.format(steps=steps))
        result = snakemake(tmp_path, "--configfile", "x.yaml")
        assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "results/runs/x/point2d/mbmpo/seed0"
    meta = yaml.safe_load((run / "meta.json").read_text())
    assert meta["status"] == "done" and meta["extensions"] == [{"from_steps": 300, "to_steps": 450}]
    steps = [line.split(",")[0] for line in (run / "progress.csv").read_text().splitlines()]
    assert steps == ["env_steps", "150", "300", "450"]


def test_paper_dry_run_lists_the_full_job_set(tmp_path):
    copy_workflow(tmp_path)
    result = snakemake(tmp_path, "-n", "-p", "--configfile", "workflow/config/paper.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, re.MULTILINE))
    # Fig. 1 on the rllab tasks and on Gymnasium v5: 2 x 6 tasks x 7 algorithms x 3 seeds;
    # Fig. 3: 6 variants x 3 seeds; Fig. 4: 2 x 3 seeds; Fig. 2: 1 run; GrBAL/ReBAL: 3 tasks
    # x 4 algorithms x 3 seeds.
    assert int(counts["train"]) == 2 * 6 * 7 * 3 + 6 * 3 + 2 * 3 + 1 + 3 * 4 * 3
    # The paper's tasks, and the paper's metric with the deterministic evaluation beside it.
    for rllab_task in ["halfcheetah", "hopper", "walker2d", "ant", "swimmer", "pr2reach"]:
        assert f"runs/fig1/{rllab_task}-rllab/mbmpo/seed0/" in result.stdout
    assert "runs/fig3/halfcheetah-rllab/" in result.stdout
    assert "runs/fig4/halfcheetah-rllab/" in result.stdout
    assert int(counts["figure_evaluation"]) == int(counts["figure"])
    # rliable's across-task figure for the experiments over several tasks: the two Fig. 1s
    # and the adaptation experiment
    assert int(counts["figure_aggregate"]) == 3
    assert "--metric paper_return" in result.stdout


SHIPPED_PROFILES = sorted((Path(__file__).resolve().parents[1] / "workflow/config").glob("*.yaml"))


@pytest.mark.parametrize("profile", SHIPPED_PROFILES, ids=[p.stem for p in SHIPPED_PROFILES])
def test_every_shipped_profile_passes_the_start_of_run_check(profile):
    """The check the workflow runs at its start (onstart) accepts every job of every shipped
    profile: a dry run does not run it, and the claims profile once set the model-fit rule on
    labels with no model fit (PPO, GrBAL), which would have stopped it at its first second."""
    from benchmark.run import check_training_jobs

    check_training_jobs(yaml.safe_load(profile.read_text()))


def test_default_config_dry_run_lists_its_jobs(tmp_path):
    copy_workflow(tmp_path)
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train" in result.stdout and "report" in result.stdout


def test_lint_reports_nothing_but_the_conda_and_container_advice(tmp_path):
    """The rules have no conda environment or container on purpose (README: one venv made by
    `make` runs every rule); every other lint is fixed."""
    copy_workflow(tmp_path)
    result = snakemake(tmp_path, "--lint")
    lints = re.findall(r"^    \* (.+?):?$", result.stdout + result.stderr, re.MULTILINE)
    assert lints, result.stdout[-2000:]  # the lint ran and printed its advice
    assert set(lints) == {"Specify a conda environment or container for each rule."}, lints


BAD_CONFIGS = {
    "out-of-range budget": (
        "{tasks: [point2d], seeds: [0], steps: -5, algos: {random: {}}}",
        "config: experiments.x.steps: -5 is less than the minimum of 1",
    ),
    "malformed experiment": (
        "{tasks: [point2d], seeds: [0], steps: 10, algos: {random: {}}, colour: red}",
        "config: experiments.x: Additional properties are not allowed ('colour' was unexpected)",
    ),
    "unknown task": (
        "{tasks: [nosuchtask], seeds: [0], steps: 100, algos: {mbmpo: {}}}",
        "config: experiment 'x', task 'nosuchtask', algorithm label 'mbmpo': unknown task",
    ),
    "unknown algorithm": (
        "{tasks: [point2d], seeds: [0], steps: 100, algos: {fast: {algo: nosuch}}}",
        "algorithm label 'fast': unknown algorithm 'nosuch'; choose from:",
    ),
    "unknown preset": (
        "{tasks: [point2d], seeds: [0], steps: 100, algos: {mbmpo: {preset: fast}}}",
        "algorithm label 'mbmpo': unknown preset 'fast' for mbmpo; choose from: paper, quick",
    ),
    "misspelled setting": (
        "{tasks: [point2d], seeds: [0], steps: 100, algos: {mbmpc: {set: {num_candidate: 5}}}}",
        "label 'mbmpc': unknown config key 'num_candidate' (did you mean num_candidates?)",
    ),
    "out-of-range setting": (
        "{tasks: [point2d], seeds: [0], steps: 100, algos: {mbmpo: {set: {inner_lr: -1}}}}",
        "algorithm label 'mbmpo': inner_lr: must be >= 0, got -1.0",
    ),
    "setting the task cannot take": (
        "{tasks: [point2d], seeds: [0], steps: 100,"
        " algos: {mbmpo: {set: {imagined_reward: official}}}}",
        "imagined_reward: task 'point2d' has no official model-side reward",
    ),
    "missing rates file": (
        "{tasks: [point2d], seeds: [0], steps: 100, algos: {random: {}}}\nrates: nosuch.json",
        "rates nosuch.json: cannot be read as a rates file",
    ),
}


@pytest.mark.parametrize(
    ("kind", "dry_run"),
    [(kind, True) for kind in sorted(BAD_CONFIGS)]
    # A real run parses the workflow the same way: one kind of each check suffices.
    + [("out-of-range budget", False), ("misspelled setting", False)],
)
def test_bad_config_fails_with_one_line_before_anything_is_written(tmp_path, kind, dry_run):
    """Each kind of bad workflow config stops ``snakemake -n`` and a real run alike with one
    line naming the experiment (and label) and what is wrong: no traceback, no results."""
    experiment, expected = BAD_CONFIGS[kind]
    copy_workflow(tmp_path)
    (tmp_path / "bad.yaml").write_text(f"results: results\nexperiments:\n  x: {experiment}\n")
    result = snakemake(tmp_path, *(["-n"] if dry_run else []), "--configfile", "bad.yaml")
    assert result.returncode != 0
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], lines
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["reference"]  # as copied


def test_aggregate_lists_malformed_runs(tmp_path, capsys):
    from benchmark.analysis.aggregate import aggregate
    from benchmark.cli import main

    good = tmp_path / "runs/e/point2d/random/seed0"
    args = ["run", "--algo", "random", "--task", "point2d", "--steps", "60"]
    assert main([*args, "--set", "eval_every=30", "--quiet", "--out", str(good)]) == 0
    bad = tmp_path / "runs/e/point2d/random/seed1"
    shutil.copytree(good, bad)
    (bad / "progress.csv").write_text("garbage\n")
    table = aggregate(tmp_path / "runs")
    assert set(table["status"]) == {"done", "malformed"}
    assert str(bad) in capsys.readouterr().err
    assert len(table[table["status"] == "done"]) == 2
