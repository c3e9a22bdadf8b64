"""``mbbench rehearse``: the smoke profile rehearsed for real (every job through the workflow,
a kill and resume per algorithm, full-size probes), the derived configs of the big profiles,
and the probe verdicts on known cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmark import jobs
from benchmark.cost import Rates, makespan, project_config
from benchmark.errors import ConfigError
from benchmark.rehearsal import (
    Probe,
    choose_probe_jobs,
    rehearsal_config,
    rehearse,
    resolve_job,
    summary,
    write_summary,
)
from benchmark.run import check_training_jobs
from tests.test_workflow import copy_workflow

REPO = Path(__file__).resolve().parents[1]


def profile(name: str) -> dict:
    return yaml.safe_load((REPO / "workflow" / "config" / f"{name}.yaml").read_text())


@pytest.fixture(scope="module")
def smoke_rehearsal(tmp_path_factory):
    root = tmp_path_factory.mktemp("rehearsal")
    copy_workflow(root)
    lines: list[str] = []
    result = rehearse(
        profile("smoke"),
        "smoke",
        root / "out",
        2,
        Rates.load(),
        log=lines.append,
        workflow_dir=root,
    )
    return result, root / "out", lines


def test_the_smoke_rehearsal_runs_every_job_kills_and_resumes_and_probes(smoke_rehearsal):
    result, out, lines = smoke_rehearsal
    assert result.failures() == [], summary(result)
    distinct = {
        (e, t, label)
        for e, s in profile("smoke")["experiments"].items()
        for t in s["tasks"]
        for label in s["algos"]
    }
    assert {(j.exp, j.task, j.label) for j in result.jobs} == distinct
    assert all(j.status == "done" and j.rows == 2 for j in result.jobs)  # two evaluations
    # One job of every algorithm was killed after its first checkpoint and resumed.
    assert sorted(k.algo for k in result.kills) == ["mbmpc", "mbmpo", "ppo", "random"]
    for kill in result.kills:
        assert kill.killed and kill.status_after_kill == "running"
        assert kill.final_status == "done" and kill.resumes == 1
    # Every rule of the profile ran on the rehearsal's outputs, the report included.
    for name in (
        "report.md",
        "claims.md",
        "report.html",
        "figures/smoke.png",
        "figures/smoke_plasticity.png",
        "tables/final_returns.md",
    ):
        assert (out / name).is_file(), name
    # Each algorithm's probe ran its job's sizes and measured time and memory.
    assert sorted(p.algo for p in result.probes) == ["mbmpc", "mbmpo", "ppo", "random"]
    for probe in result.probes:
        assert probe.status == "done" and probe.run_wall_s > 0 and probe.peak_rss_mb > 100
    mbmpo = next(p for p in result.probes if p.algo == "mbmpo")
    assert mbmpo.cuts["meta_steps"] == 1
    # The buffer filled to the job's peak (1,200 real steps) before the probe's iteration.
    assert mbmpo.probe_steps == 1200
    written = write_summary(result, out).read_text()
    assert "**Verdict: passed**" in written and "| mbmpo | smoke/point2d/mbmpo |" in written
    assert json.loads((out / "rehearsal.json").read_text())["failures"] == []


def test_probes_run_again_with_other_rates_keep_the_workflows_outcome(smoke_rehearsal, tmp_path):
    """``--probes-only``: the probes again, here with rates twice the shipped ones (a machine
    twice as slow), into the same folder; the kills and the workflow's outcome are kept."""
    first, out, _ = smoke_rehearsal
    write_summary(first, out)
    shipped = Rates.load()
    slow = Rates({k: 2 * v for k, v in shipped.seconds_per.items()}, shipped.patience_epochs, "x2")
    again = rehearse(profile("smoke"), "smoke", out, 2, slow, log=lambda _: None, probes_only=True)
    assert again.kills == first.kills and again.jobs == first.jobs
    assert again.workflow_exit == first.workflow_exit == 0
    assert again.rates == "x2" and "Rates of the requests and projections: x2." in summary(again)
    before = {p.algo: p for p in first.probes}
    for probe in again.probes:
        assert probe.status == "done" and probe.cpu_s is not None
        if probe.algo in ("mbmpo", "mbmpc"):  # modelled: projected from the rates
            assert probe.projected_s == pytest.approx(2 * before[probe.algo].projected_s)
    with pytest.raises(ConfigError, match="no rehearsal to run the probes again for"):
        rehearse(profile("smoke"), "smoke", tmp_path, 1, slow, probes_only=True)


def test_the_rehearsal_config_keeps_every_job_of_the_big_profiles_and_is_brief():
    rates = Rates.load()
    for name in ("claims", "paper"):
        config = profile(name)
        derived = rehearsal_config(config, "/tmp/rehearsal")
        check_training_jobs(derived)  # every shrunken job still resolves
        original = {(j["exp"], j["task"], j["algo"]) for j in jobs.training_jobs(config)}
        rehearsed = jobs.training_jobs(derived)
        assert {(j["exp"], j["task"], j["algo"]) for j in rehearsed} == original
        assert len(rehearsed) == len(original)  # one seed each
        for exp, label in {(j["exp"], j["algo"]) for j in rehearsed}:
            algo, steps, _, settings = jobs.job_settings(derived, exp, label)
            assert settings["eval_every"] * 2 <= steps and settings["eval_episodes"] == 1
        # Every iteration of a rehearsed controller finishes an episode, or its paper_return
        # (the returns of the episodes it finished) is missing and the aggregate figures of
        # its experiment have nothing to draw (the claims rehearsal of 2026-12-07, at
        # horizon 1000 with 100-step iterations).
        for job in rehearsed:
            algo, steps, preset, settings = jobs.job_settings(derived, job["exp"], job["algo"])
            resolved = resolve_job(algo, job["task"], steps, settings, preset)
            if hasattr(resolved.algorithm_cls, "iteration_steps"):
                per_iteration = resolved.algorithm_cls.iteration_steps(
                    resolved.algorithm_config, resolved.task.horizon
                )
                assert per_iteration >= resolved.task.horizon, (job, per_iteration)
        # Minutes, where the profile takes days: the modelled jobs by the cost model.
        modelled = [p.seconds for p in project_config(derived, rates) if p.modelled]
        assert max(modelled) < 60 and makespan(modelled, 2) < 15 * 60
        # A probe per algorithm of the profile, the longest-horizon jobs among them.
        chosen = choose_probe_jobs(config, rates)
        algos = {
            jobs.job_settings(config, j["exp"], j["algo"])[0] for j in jobs.training_jobs(config)
        }
        assert {job["algo"] for _, job in chosen} == algos
        if name == "claims":
            mbmpo = [job for why, job in chosen if job["algo"] == "mbmpo"]
            assert max(job["horizon"] for job in mbmpo) == 1000


def probe(**measured) -> Probe:
    base = dict(
        algo="mbmpo",
        exp="e",
        task="t",
        label="l",
        why="longest",
        horizon=200,
        job_steps=100_000,
        probe_steps=10_000,
        cuts={},
        projected_s=100.0,
        request_min=200,
        job_projected_s=6000.0,
        request_mb=2100,
    )
    return Probe(**base, status="done", **measured)


def test_a_probe_fails_a_job_its_own_requests_would_kill():
    # 100 s projected, 120 s run: the 6,000 s job takes about 120 min, within 200 min.
    assert probe(measured_s=125, run_wall_s=120, peak_rss_mb=900).problems() == []
    # Twice as slow as projected: 6,000 s x 2.1 = 210 min > 200 min.
    slow = probe(measured_s=215, run_wall_s=210, peak_rss_mb=900).problems()
    assert len(slow) == 1 and "210 min" in slow[0] and "200 min" in slow[0]
    # More memory than asked for, by itself or with the data it did not hold yet.
    assert "2,500 MB" in probe(measured_s=1, run_wall_s=100, peak_rss_mb=2500).problems()[0]
    grown = probe(measured_s=1, run_wall_s=100, peak_rss_mb=1900, data_extrapolated_mb=300)
    assert "2,200 MB" in grown.problems()[0]
    # CPU time, where recorded, sets the pace: a probe slowed by neighbours is not judged by
    # its wall time (2.1 x projected) but by its work (1.2 x).
    busy = probe(measured_s=215, run_wall_s=210, cpu_s=120.0, peak_rss_mb=900)
    assert busy.time_ratio == pytest.approx(1.2) and busy.problems() == []
    unfinished = Probe(**{**probe().__dict__, "status": "failed", "error": "MemoryError"})
    assert "did not finish (failed: MemoryError)" in unfinished.problems()[0]


def test_the_rehearse_command_refuses_bad_input_before_running_anything(tmp_path, capsys):
    from benchmark.cli import main

    assert main(["rehearse", "--configfile", str(tmp_path / "none.yaml")]) == 2
    bad = yaml.safe_load((REPO / "workflow/config/smoke.yaml").read_text())
    bad["experiments"]["smoke"]["algos"]["mbmpo"]["set"]["meta_stepz"] = 2
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert main(["rehearse", "--configfile", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no such config file" in err and "meta_stepz" in err
    assert not (tmp_path / "out").exists()
