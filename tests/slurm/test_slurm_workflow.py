"""The smoke workflow on a real SLURM cluster (Snakemake's slurm executor plugin), against a
local run of the same config; one training job is cancelled with scancel mid-run.

Run with ``make test-slurm`` (root: it installs and starts slurm-wlm and munge)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.slurm.cluster import ClusterUnavailable, SlurmCluster
from tests.test_workflow import SMOKE_OUTPUTS, copy_workflow

pytestmark = pytest.mark.slurm

SNAKEMAKE = Path(sys.executable).parent / "snakemake"
SMOKE = ["--configfile", "workflow/config/smoke.yaml"]
# What a cluster without an accounting database needs; nothing else is added to the profile.
NO_ACCOUNTING = ["--slurm-no-account", "--slurm-status-command", "squeue"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        started = SlurmCluster(tmp_path_factory.mktemp("slurm")).__enter__()
    except ClusterUnavailable as error:
        pytest.skip(f"no SLURM cluster: {error}")
    yield started
    started.stop()


def environment(extra: dict[str, str]) -> dict[str, str]:
    env_bin = str(Path(sys.executable).parent)
    return {**extra, "PATH": f"{env_bin}:{os.environ['PATH']}"}


def run_metas(root: Path) -> dict[str, dict]:
    return {
        str(path.parent.relative_to(root)): json.loads(path.read_text())
        for path in sorted(root.glob("results/runs/*/*/*/seed*/meta.json"))
    }


def progress_without_time(run: Path) -> list[list[str]]:
    lines = (run / "progress.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if not name.startswith(("wall_time", "time_"))]
    return [[line.split(",")[i] for i in keep] for line in lines]


SLOW_ENOUGH_TO_CANCEL = {"mbmpo", "mbmpc"}
"""The smoke profile's random and PPO runs end within a second or two of their first
checkpoint: a cancel sent then can arrive after the run finished."""


def cancel_one_training_job_after_its_checkpoint(cluster, root, process) -> tuple[Path, str]:
    """scancel the first model-based training job seen running with a checkpoint on disk."""
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        queued = set(cluster.squeue_job_ids())
        for meta_path in sorted(root.glob("results/runs/*/*/*/seed*/meta.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            jobs = meta.get("slurm_job_ids") or []
            has_checkpoint = (meta_path.parent / "checkpoint.pt").exists()
            slow = meta.get("algo") in SLOW_ENOUGH_TO_CANCEL
            running = meta["status"] == "running" and has_checkpoint
            if slow and running and jobs and jobs[-1] in queued:
                cluster.scancel(jobs[-1])
                return meta_path.parent, jobs[-1]
        time.sleep(0.1)
    pytest.fail("no training job could be cancelled mid-run")


def test_smoke_workflow_on_slurm_equals_a_local_run_and_survives_scancel(cluster, tmp_path):
    local, on_slurm = tmp_path / "local", tmp_path / "slurm"
    for root in (local, on_slurm):
        root.mkdir()
        copy_workflow(root)
    result = subprocess.run(
        [str(SNAKEMAKE), "--cores", "2", *SMOKE],
        cwd=local,
        env=environment(dict(os.environ)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    command = [str(SNAKEMAKE), "--workflow-profile", "workflow/profiles/slurm", *SMOKE]
    command += NO_ACCOUNTING
    env = environment(cluster.env)
    log = open(tmp_path / "snakemake_slurm.log", "w")  # noqa: SIM115
    process = subprocess.Popen(command, cwd=on_slurm, env=env, stdout=log, stderr=log)
    cancelled_run, cancelled_job = cancel_one_training_job_after_its_checkpoint(
        cluster, on_slurm, process
    )
    returncode = process.wait(timeout=1800)
    if returncode != 0:  # the cancelled job was not retried within the first invocation
        again = subprocess.run(command, cwd=on_slurm, env=env, stdout=log, stderr=log)
        returncode = again.returncode
    log.close()
    assert returncode == 0, (tmp_path / "snakemake_slurm.log").read_text()[-3000:]

    # The cancelled run was started again and resumed from its checkpoint.
    meta = json.loads((cancelled_run / "meta.json").read_text())
    assert meta["status"] == "done" and meta["resumes"] >= 1, meta
    assert meta["slurm_job_ids"][0] == cancelled_job and len(meta["slurm_job_ids"]) >= 2

    # Every training job ran as a SLURM job of this cluster.
    metas = run_metas(on_slurm)
    assert len(metas) == 8 and metas.keys() == run_metas(local).keys()
    known = cluster.known_job_ids()
    for name, run_meta in metas.items():
        assert run_meta["status"] == "done", name
        assert run_meta.get("slurm_job_ids") and set(run_meta["slurm_job_ids"]) <= known, name
        assert "slurm_job_ids" not in run_metas(local)[name]

    # Nothing of the cancelled job is left running.
    leftovers = subprocess.run(["pgrep", "-f", str(on_slurm)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"processes left behind: {leftovers.stdout}"

    # Same numbers and same products as the local run.
    for name in metas:
        assert progress_without_time(on_slurm / name) == progress_without_time(local / name), name
    for path in SMOKE_OUTPUTS:
        assert (on_slurm / path).is_file(), path
        if path.endswith((".csv", ".png")):
            assert (on_slurm / path).read_bytes() == (local / path).read_bytes(), path
