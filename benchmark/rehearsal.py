"""Rehearse a workflow profile before paying for it (``mbbench rehearse``, ``make rehearse``).

Three stages, into a results folder of the rehearsal's own:

1. **Derived config.** Every distinct training job of the profile (experiment x task x label,
   the first seed) with a shrunken budget and sizes from its algorithm
   (``Algorithm.rehearsal_settings``): a run of seconds to minutes that still passes through
   initial data, a model fit, an improvement step, two evaluations and two checkpoints.
2. **Kill and resume, then the workflow.** One job of each algorithm is started as the
   workflow's train rule starts it and killed with SIGKILL right after its first checkpoint;
   then the real workflow (``snakemake`` with the derived config and the local profile) runs
   every job, resuming the killed ones, and every aggregation, figure, table, report and claims
   rule of the profile, and ``snakemake --report`` builds the HTML report.
3. **Full-size probes.** Per algorithm, its largest jobs (longest projected time, most data
   held, longest horizon) run one iteration at full size (``Algorithm.full_size_probe``):
   the job's own networks, batches, tasks and horizon and, for model-based algorithms, a
   buffer filled to the most the job holds; only repeated work (epochs, meta steps, planned
   steps) is cut. Its CPU time (hardly changed by other processes, unlike its wall time)
   over the cost model's projection of the same run gives the pace at which the whole job is
   estimated (its projection x that ratio), held against the runtime the workflow asks a
   scheduler for (:func:`~benchmark.cost.runtime_request_min`): a job its own request would
   kill fails the rehearsal. Its peak resident memory is held
   against the job's memory request (``memory_mb``); data a probe does not hold, such as an
   off-policy replay buffer's later part, is added at the request's own rate per transition.

The summary (``rehearsal.md``, ``rehearsal.json``) lists every job, the kills and resumes, the
workflow's outcome and the probes, and ends with the verdict. What a rehearsal does not prove:
that the full runs learn, that their later iterations keep the probe's rates (the cost model
says they scale with the units it counts), or that a cluster's nodes are like this machine.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmark import jobs, layout
from benchmark.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
"""The repository root: the Snakefile and workflow/ the rehearsal runs."""

THREAD_ENV = {"OMP_NUM_THREADS": "1"}
"""One torch thread per job, as the workflow's train rule runs them."""


def resolve_job(algo: str, task: str, steps: int, settings: dict[str, Any], preset: str | None):
    """The resolved run of one job (``benchmark.run.resolve_run``, seed 0)."""
    from benchmark.run import resolve_run

    return resolve_run(algo, task, 0, steps, dict(settings), preset=preset)


def _without_eval_keys(settings: dict[str, Any]) -> dict[str, Any]:
    drop = {"eval_every", "eval_episodes", "run.eval_every", "run.eval_episodes"}
    return {k: v for k, v in settings.items() if k not in drop}


def rehearsal_config(config: dict[str, Any], results: str | Path) -> dict[str, Any]:
    """The profile ``config`` as a rehearsal: results under ``results``, one seed per
    experiment, each label's budget and sizes from its algorithm's ``rehearsal_settings``
    (at the longest horizon among the experiment's tasks), two evaluations of one episode."""
    derived = copy.deepcopy(config)
    derived["results"] = str(results)
    derived["note"] = f"Rehearsal (shrunken budgets, one seed): {config.get('note', '')}".strip()
    for exp, spec in derived["experiments"].items():
        spec["seeds"] = spec["seeds"][:1]
        for label in list(spec["algos"]):
            algo, steps, preset, settings = jobs.job_settings(config, exp, label)
            budgets = []
            for task in spec["tasks"]:
                resolved = resolve_job(algo, task, steps, settings, preset)
                budgets.append(
                    resolved.algorithm_cls.rehearsal_settings(
                        resolved.algorithm_config, resolved.task.horizon
                    )
                )
            short_steps = max(b[0] for b in budgets)
            shrunk: dict[str, Any] = {}
            for _, values in budgets:  # per key, the largest value any task needs
                for key, value in values.items():
                    shrunk[key] = max(shrunk.get(key, value), value)
            entry = dict(spec["algos"][label] or {})
            entry["algo"] = algo
            entry["steps"] = short_steps
            entry["set"] = {
                **_without_eval_keys(entry.get("set", {})),
                **shrunk,
                "eval_every": max(1, short_steps // 2),
                "eval_episodes": 1,
            }
            spec["algos"][label] = entry
        spec["set"] = _without_eval_keys(spec.get("set", {}))
        if "note" in spec:
            spec["note"] = f"rehearsal: {spec['note']}"
    return derived


def job_run_dir(config: dict[str, Any], job: dict[str, Any]) -> Path:
    """A job's run directory under the config's results (workflow/rules/common.smk)."""
    root = f"{config['results']}/runs"
    return layout.run_dir(root, job["exp"], job["task"], job["algo"], job["seed"])


def run_command(config: dict[str, Any], job: dict[str, Any]) -> list[str]:
    """The command the workflow's train rule runs for ``job`` (workflow/rules/train.smk)."""
    out = job_run_dir(config, job)
    args = " ".join(jobs.run_arguments(config, job["exp"], job["algo"]))
    return [
        sys.executable,
        "-m",
        "benchmark.cli",
        "run",
        "--task",
        job["task"],
        "--seed",
        str(job["seed"]),
        *shlex.split(args),
        "--out",
        str(out),
        "--extend",
    ]


@dataclass
class KillResult:
    """One job started as the workflow starts it and killed after its first checkpoint."""

    algo: str
    run_dir: str
    killed: bool
    """SIGKILLed while running, after its first checkpoint."""
    status_after_kill: str
    """meta.json's status right after the kill ('running' is what a killed run says)."""
    resumes: int | None = None
    """meta.json's resume count once the workflow has finished the run (1: resumed)."""
    final_status: str | None = None

    @property
    def ok(self) -> bool:
        return (
            self.killed
            and self.status_after_kill == "running"
            and self.final_status == "done"
            and (self.resumes or 0) >= 1
        )


def kill_after_first_checkpoint(command: list[str], run_dir: Path, algo: str) -> KillResult:
    """Start ``command`` and SIGKILL it as soon as its run directory holds a checkpoint."""
    checkpoint = run_dir / "checkpoint.pt"
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **THREAD_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while process.poll() is None and not checkpoint.exists():
        time.sleep(0.002)
    killed = process.poll() is None
    if killed:
        process.send_signal(signal.SIGKILL)
    process.wait()
    meta_path = run_dir / "meta.json"
    status = json.loads(meta_path.read_text())["status"] if meta_path.exists() else "missing"
    return KillResult(algo, str(run_dir), killed, status)


@dataclass
class JobOutcome:
    """A rehearsed training job after the workflow."""

    exp: str
    task: str
    label: str
    algo: str
    steps: int
    status: str
    """meta.json's status ('done'; 'failed' with ``error``; 'missing' if it never ran)."""
    error: str | None
    rows: int
    """progress.csv rows (evaluation points)."""
    wall_s: float
    peak_rss_mb: float | None

    @property
    def ok(self) -> bool:
        return self.status == "done" and self.rows >= 1


def job_outcome(config: dict[str, Any], job: dict[str, Any]) -> JobOutcome:
    """What the workflow left in one job's run directory."""
    run = job_run_dir(config, job)
    algo, steps, _, _ = jobs.job_settings(config, job["exp"], job["algo"])
    meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").exists() else {}
    rows, wall = 0, 0.0
    if (run / "progress.csv").exists():
        lines = (run / "progress.csv").read_text().splitlines()
        rows = max(0, len(lines) - 1)
        if rows:
            header = lines[0].split(",")
            wall = float(lines[-1].split(",")[header.index("wall_time_s")] or 0.0)
    return JobOutcome(
        job["exp"],
        job["task"],
        job["algo"],
        algo,
        steps,
        meta.get("status", "missing"),
        meta.get("error"),
        rows,
        wall,
        meta.get("peak_rss_mb"),
    )


@dataclass
class Probe:
    """One full-size iteration of one of the profile's jobs, against that job's requests."""

    algo: str
    exp: str
    task: str
    label: str
    why: str
    """Which of the algorithm's jobs this is: longest, most data, longest horizon."""
    horizon: int
    job_steps: int
    probe_steps: int
    cuts: dict[str, Any]
    projected_s: float
    """The cost model's projection of the probe itself."""
    request_min: int
    """The full job's runtime request (minutes)."""
    job_projected_s: float
    request_mb: int
    """The full job's memory request."""
    data_extrapolated_mb: float = 0.0
    """Memory the job's data adds beyond the probe's (at the request's rate per transition)."""
    measured_s: float | None = None
    """The probe's process, start to end (imports included)."""
    run_wall_s: float | None = None
    """The run's own wall time (progress.csv)."""
    cpu_s: float | None = None
    """CPU seconds of the probe's run (meta.json's ``cpu_time_s``, imports included): the
    work the projection covers, hardly changed by other processes on the machine."""
    load_before: float | None = None
    """The machine's one-minute load average as the probe started (other processes, other
    probes): wall times beside more busy processes than cores are slower than a job's."""
    peak_rss_mb: float | None = None
    status: str = "not run"
    error: str | None = None

    @property
    def time_ratio(self) -> float | None:
        """The probe's CPU seconds over the projected seconds of its run (the rates were
        measured on an idle machine, one thread per job, where the two agree); its wall time
        where no CPU time was recorded."""
        spent = self.cpu_s if self.cpu_s is not None else self.run_wall_s
        if spent is None or self.projected_s <= 0:
            return None
        return spent / self.projected_s

    @property
    def job_estimate_s(self) -> float | None:
        """The whole job at the probe's pace: its projection x the probe's ratio, plus the
        process start-up the probe paid."""
        ratio = self.time_ratio
        if ratio is None or self.measured_s is None:
            return None
        startup = 0.0 if self.cpu_s is not None else self.measured_s - (self.run_wall_s or 0)
        return self.job_projected_s * ratio + max(0.0, startup)

    @property
    def memory_mb(self) -> float | None:
        return None if self.peak_rss_mb is None else self.peak_rss_mb + self.data_extrapolated_mb

    def problems(self) -> list[str]:
        """Why the job's own requests would not carry it (empty: they would)."""
        if self.status != "done":
            return [f"the probe did not finish ({self.status}: {self.error})"]
        found = []
        estimate = self.job_estimate_s
        if estimate is not None and estimate > self.request_min * 60:
            found.append(
                f"at the probe's pace ({self.time_ratio:.2f} x its projection) the job takes "
                f"{estimate / 60:,.0f} min: more than its request of {self.request_min:,} min"
            )
        if self.memory_mb is not None and self.memory_mb > self.request_mb:
            found.append(
                f"needs {self.memory_mb:,.0f} MB, more than its request of {self.request_mb:,} MB"
            )
        return found


def choose_probe_jobs(config: dict[str, Any], rates: Any) -> list[tuple[str, dict[str, Any]]]:
    """Per algorithm, the jobs a full-size probe measures: the longest (projected time), the
    one holding the most data and the longest-horizon one, each once; ``(why, job)`` pairs."""
    from benchmark.cost import project_config

    seen: dict[tuple, dict[str, Any]] = {}
    for p in project_config(config, rates):
        key = (p.exp, p.task, p.label)
        if key in seen:
            continue
        algo, steps, preset, settings = jobs.job_settings(config, p.exp, p.label)
        resolved = resolve_job(algo, p.task, steps, settings, preset)
        seen[key] = dict(
            algo=algo,
            exp=p.exp,
            task=p.task,
            label=p.label,
            seconds=p.seconds,
            peak=p.peak_transitions,
            horizon=resolved.task.horizon,
            width=resolved.task.obs_dim + resolved.task.act_dim,
        )
    chosen: list[tuple[str, dict[str, Any]]] = []
    for algo in dict.fromkeys(j["algo"] for j in seen.values()):
        mine = [j for j in seen.values() if j["algo"] == algo]
        picks = {}
        # Ties (jobs projected per 1000 steps) go to the widest task: the largest networks.
        for why, key in (
            ("longest", lambda j: (j["seconds"], j["peak"], j["width"])),
            ("most data", lambda j: (j["peak"], j["seconds"], j["width"])),
            ("longest horizon", lambda j: (j["horizon"], j["seconds"], j["width"])),
        ):
            job = max(mine, key=key)
            ident = (job["exp"], job["task"], job["label"])
            picks.setdefault(ident, (why, job))
            if picks[ident][0] != why and why not in picks[ident][0]:
                picks[ident] = (f"{picks[ident][0]}, {why}", job)
        chosen += list(picks.values())
    return chosen


def plan_probe(config: dict[str, Any], why: str, job: dict[str, Any], rates: Any) -> Probe:
    """The probe of one job: its budget and cuts, and what the job asks a scheduler for."""
    from benchmark.cost import has_schedule, memory_mb, project, runtime_request_min

    algo, steps, preset, settings = jobs.job_settings(config, job["exp"], job["label"])
    resolved = resolve_job(algo, job["task"], steps, settings, preset)
    task = resolved.task
    probe_steps, cuts = resolved.algorithm_cls.full_size_probe(
        resolved.algorithm_config, task.horizon, steps
    )
    probe_settings = probe_run_settings(settings, cuts, probe_steps)
    projected_s, probe_peak, _ = project(
        algo, preset, probe_steps, probe_settings, job["task"], rates
    )
    if not has_schedule(algo):
        # Projected per 1000 real steps: the pace of a long job, whose steps are nearly all
        # taken by its policy or planner and whose evaluations are rare. The probe's random
        # initial steps are not charged, its one evaluation episode is.
        random_steps = probe_settings.get(
            "initial_random_steps", getattr(resolved.algorithm_config, "initial_random_steps", 0)
        )
        charged = min(probe_steps, max(0, probe_steps - random_steps)) + task.horizon
        projected_s = charged / 1000 * resolved.algorithm_cls.seconds_per_1000(preset)
    job_s, job_peak, job_imagined = project(algo, preset, steps, settings, job["task"], rates)
    per_transition_mb = (memory_mb(10**6, task.obs_dim, task.act_dim) - 2000) / 10**6
    # Only a buffer grows with the steps taken (model-based and off-policy algorithms).
    grows = resolved.algorithm_cls.off_policy or has_schedule(algo)
    return Probe(
        algo=algo,
        exp=job["exp"],
        task=job["task"],
        label=job["label"],
        why=why,
        horizon=task.horizon,
        job_steps=steps,
        probe_steps=probe_steps,
        cuts=cuts,
        projected_s=projected_s,
        request_min=runtime_request_min(job_s),
        job_projected_s=job_s,
        request_mb=memory_mb(job_peak, task.obs_dim, task.act_dim, job_imagined),
        data_extrapolated_mb=max(0, job_peak - probe_peak) * per_transition_mb if grows else 0.0,
    )


def probe_run_settings(settings: dict[str, Any], cuts: dict[str, Any], steps: int) -> dict:
    """A probe's settings: the job's, its cuts, and one evaluation (one episode) at its end."""
    return {**_without_eval_keys(settings), **cuts, "eval_every": steps, "eval_episodes": 1}


def run_probe(config: dict[str, Any], probe: Probe, out: Path) -> Probe:
    """Run ``probe`` (``mbbench run``, one thread) into ``out``; fill in what it measured."""
    _, _, preset, settings = jobs.job_settings(config, probe.exp, probe.label)
    command = [sys.executable, "-m", "benchmark.cli", "run", "--algo", probe.algo]
    command += ["--task", probe.task, "--seed", "0", "--steps", str(probe.probe_steps)]
    command += ["--out", str(out), "--quiet"]
    if preset:
        command += ["--preset", preset]
    for key, value in probe_run_settings(settings, probe.cuts, probe.probe_steps).items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    probe.load_before = round(os.getloadavg()[0], 2)
    start = time.perf_counter()
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, **THREAD_ENV}, capture_output=True, text=True
    )
    probe.measured_s = time.perf_counter() - start
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    probe.status = meta.get("status", "missing")
    probe.error = meta.get("error") or (done.stderr.strip().splitlines() or [None])[-1]
    if probe.status == "done":
        probe.error = None
    probe.peak_rss_mb = meta.get("peak_rss_mb")
    probe.cpu_s = meta.get("cpu_time_s") if probe.status == "done" else None
    progress = out / "progress.csv"
    if progress.exists() and probe.status == "done":
        lines = progress.read_text().splitlines()
        header = lines[0].split(",")
        probe.run_wall_s = float(lines[-1].split(",")[header.index("wall_time_s")])
    return probe


@dataclass
class Rehearsal:
    """Everything a rehearsal found; :func:`summary` writes it as Markdown."""

    profile: str
    results: str
    host: str
    cores: int
    started: str
    stage_seconds: dict[str, float] = field(default_factory=dict)
    kills: list[KillResult] = field(default_factory=list)
    workflow_exit: int | None = None
    report_exit: int | None = None
    jobs: list[JobOutcome] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    rates: str = ""
    """The rates the requests and projections were computed with (where and when measured)."""

    @classmethod
    def load(cls, path: Path) -> Rehearsal:
        """A rehearsal from its ``rehearsal.json`` (:func:`write_summary`)."""
        record = json.loads(path.read_text())
        record.pop("failures", None)
        record["kills"] = [KillResult(**k) for k in record.get("kills", [])]
        record["jobs"] = [JobOutcome(**j) for j in record.get("jobs", [])]
        record["probes"] = [Probe(**p) for p in record.get("probes", [])]
        return cls(**record)

    def failures(self) -> list[str]:
        """Every problem found; empty when the rehearsal passed."""
        found = []
        for k in self.kills:
            if not k.ok:
                found.append(
                    f"kill/resume {k.algo} ({k.run_dir}): killed={k.killed}, status after the "
                    f"kill {k.status_after_kill}, then {k.final_status} with "
                    f"{k.resumes} resumes"
                )
        if self.workflow_exit not in (0, None):
            found.append(f"snakemake exited with {self.workflow_exit} (logs/snakemake.log)")
        if self.report_exit not in (0, None):
            found.append(f"snakemake --report exited with {self.report_exit}")
        for j in self.jobs:
            if not j.ok:
                found.append(f"job {j.exp}/{j.task}/{j.label}: {j.status} ({j.error})")
        for p in self.probes:
            found += [f"probe {p.algo} ({p.exp}/{p.task}/{p.label}): {x}" for x in p.problems()]
        return found


def rehearse(
    config: dict[str, Any],
    profile: str,
    out: Path,
    cores: int,
    rates: Any,
    probes: bool = True,
    log: Callable[[str], None] = print,
    workflow_dir: Path = REPO,
    probes_only: bool = False,
) -> Rehearsal:
    """Rehearse ``config`` into ``out`` (the stages of the module docstring), with the
    Snakefile and workflow/ of ``workflow_dir``. ``probes_only``: run the probes again (with
    other rates, say, or on a quieter machine) and keep the kills and the workflow's outcome
    of the rehearsal already in ``out``."""
    import yaml

    from benchmark.run import check_training_jobs

    out = out.resolve()
    try:
        check_training_jobs(config)  # the profile itself, before anything is written
    except ValueError as error:
        raise ConfigError(str(error)) from None
    derived = rehearsal_config(config, out)
    try:
        check_training_jobs(derived)
    except ValueError as error:
        raise ConfigError(f"the rehearsal's shrunken settings: {error}") from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    derived_path = out / "rehearsal.yaml"
    derived_path.write_text(
        f"# Rehearsal of {profile}, written by mbbench rehearse.\n"
        + yaml.safe_dump(derived, sort_keys=False)
    )
    result = Rehearsal(
        profile,
        str(out),
        socket.gethostname(),
        cores,
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    training = jobs.training_jobs(derived)
    result.rates = rates.machine or "unknown machine"
    if probes_only:
        previous = out / "rehearsal.json"
        if not previous.exists():
            raise ConfigError(f"{previous}: no rehearsal to run the probes again for")
        kept = Rehearsal.load(previous)
        result.kills, result.jobs = kept.kills, kept.jobs
        result.workflow_exit, result.report_exit = kept.workflow_exit, kept.report_exit
        result.stage_seconds = {k: v for k, v in kept.stage_seconds.items() if k != "probes"}
        log(f"probes of {profile} again; the workflow's outcome of {kept.started} kept")
        return _run_probes(config, result, out, cores, rates, log)
    log(f"rehearsal of {profile}: {len(training)} jobs, config {derived_path}")

    start = time.perf_counter()
    first_of_algo: dict[str, dict[str, Any]] = {}
    for job in training:
        algo = jobs.job_settings(derived, job["exp"], job["algo"])[0]
        first_of_algo.setdefault(algo, job)
    to_kill = []
    for algo, job in first_of_algo.items():
        run = job_run_dir(derived, job)
        if (run / "meta.json").exists():  # a rehearsal started again: keep what is there
            continue
        to_kill.append((algo, job, run))
    with ThreadPoolExecutor(max(1, cores)) as pool:
        result.kills = list(
            pool.map(
                lambda item: kill_after_first_checkpoint(
                    run_command(derived, item[1]), item[2], item[0]
                ),
                to_kill,
            )
        )
    for k in result.kills:
        log(f"  killed {k.algo} after its first checkpoint: {k.killed} ({k.run_dir})")
    result.stage_seconds["kill"] = time.perf_counter() - start

    start = time.perf_counter()
    snakemake = str(Path(sys.executable).parent / "snakemake")
    base = [snakemake, "--configfile", str(derived_path)]
    base += ["--workflow-profile", "workflow/profiles/local"]
    log(f"  snakemake --cores {cores} (log: {out / 'logs' / 'snakemake.log'})")
    with open(out / "logs" / "snakemake.log", "w") as handle:
        result.workflow_exit = subprocess.run(
            [*base, "--cores", str(cores)],
            cwd=workflow_dir,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **THREAD_ENV},
        ).returncode
        result.report_exit = subprocess.run(
            [*base, "--report", str(out / "report.html")],
            cwd=workflow_dir,
            stdout=handle,
            stderr=subprocess.STDOUT,
        ).returncode
    result.stage_seconds["workflow"] = time.perf_counter() - start
    result.jobs = [job_outcome(derived, job) for job in training]
    for k in result.kills:
        meta_path = Path(k.run_dir) / "meta.json"
        if meta_path.exists():
            meta = json.loads(meta_path.read_text())
            k.resumes, k.final_status = int(meta.get("resumes", 0)), meta.get("status")

    if probes:
        _run_probes(config, result, out, cores, rates, log)
    return result


def _run_probes(
    config: dict[str, Any],
    result: Rehearsal,
    out: Path,
    cores: int,
    rates: Any,
    log: Callable[[str], None],
) -> Rehearsal:
    start = time.perf_counter()
    planned = [plan_probe(config, why, job, rates) for why, job in choose_probe_jobs(config, rates)]
    log(
        f"  {len(planned)} full-size probes, "
        f"{sum(p.projected_s for p in planned) / 60:.0f} min projected"
    )

    def one(probe: Probe) -> Probe:
        name = f"{probe.algo}-{probe.exp}-{probe.task}-{probe.label}".replace("/", "_")
        target = out / "probes" / name
        if target.exists():  # probes run again start afresh
            shutil.rmtree(target)
        done = run_probe(config, probe, target)
        log(
            f"  probe {name}: {done.status}, {done.measured_s:.0f} s "
            f"(projected {done.projected_s:.0f} s), peak {done.peak_rss_mb} MB"
        )
        return done

    ordered = sorted(planned, key=lambda p: -p.projected_s)  # longest first
    with ThreadPoolExecutor(max(1, cores)) as pool:
        result.probes = list(pool.map(one, ordered))
    result.stage_seconds["probes"] = time.perf_counter() - start
    return result


def summary(result: Rehearsal) -> str:
    """The rehearsal as Markdown: stages, jobs, kills, probes, verdict."""
    from benchmark.cost import RUNTIME_MARGIN

    failures = result.failures()
    minutes = {k: v / 60 for k, v in result.stage_seconds.items()}
    lines = [
        f"# Rehearsal of the {result.profile} profile",
        "",
        f"{result.started}, host {result.host}, {result.cores} cores. Written by "
        "`mbbench rehearse` (benchmark/rehearsal.py says what each stage does and what a "
        "rehearsal does not prove).",
        "",
        f"Rates of the requests and projections: {result.rates or 'not recorded'}.",
        "",
        "Minutes per stage: "
        + ", ".join(f"{k} {v:.1f}" for k, v in minutes.items())
        + f"; total {sum(minutes.values()):.1f}.",
        "",
        f"**Verdict: {'passed' if not failures else 'FAILED'}**"
        + ("" if not failures else f" ({len(failures)} problems)"),
        "",
    ]
    lines += [f"- {f}" for f in failures]
    lines += [
        "",
        f"## The workflow: {len(result.jobs)} jobs (one seed each), every rule",
        "",
        f"snakemake exit {result.workflow_exit}, `snakemake --report` exit {result.report_exit}.",
        "",
        "| experiment | task | label | algorithm | steps | status | rows | wall s | peak MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for j in result.jobs:
        status = j.status if j.error is None else f"{j.status}: {j.error}"
        lines.append(
            f"| {j.exp} | {j.task} | {j.label} | {j.algo} | {j.steps:,} | {status} | {j.rows} "
            f"| {j.wall_s:.0f} | {j.peak_rss_mb or ''} |"
        )
    lines += [
        "",
        "## Killed after the first checkpoint, resumed by the workflow",
        "",
        "| algorithm | run | killed | status after the kill | final status | resumes |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k in result.kills:
        run = os.path.relpath(k.run_dir, result.results)
        lines.append(
            f"| {k.algo} | {run} | {k.killed} | {k.status_after_kill} | {k.final_status} "
            f"| {k.resumes} |"
        )
    if result.probes:
        lines += [
            "",
            "## Full-size probes against the jobs' requests",
            "",
            "One iteration at the job's own sizes (cuts: repeated work only). Time: the probe's "
            "CPU seconds over the cost model's projection of the same run (rates measured on an "
            "idle machine, where CPU and wall time agree; CPU time hardly depends on what else "
            "runs, wall time does: load is the one-minute load average as the probe started); "
            "the job at that pace (its projection x the ratio) against the runtime it asks for "
            f"({RUNTIME_MARGIN:g} x its projection, at least 10 min). "
            "Memory: the probe's peak resident set, plus the data it did not hold at the "
            "request's rate per transition, against the job's request.",
            "",
            "| algorithm | job | why | horizon | probe steps | cuts | wall s | load | CPU s "
            "| projected s | ratio | job at this pace, min | job request min "
            "| peak MB (+ extrapolated) | request MB | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
            "| --- | --- |",
        ]
        for p in result.probes:
            cuts = ", ".join(f"{k}={v}" for k, v in p.cuts.items()) or "none"
            ratio = f"{p.time_ratio:.2f}" if p.time_ratio is not None else "-"
            estimate = "-" if p.job_estimate_s is None else f"{p.job_estimate_s / 60:,.0f}"
            memory = "-" if p.peak_rss_mb is None else f"{p.peak_rss_mb:.0f}"
            if p.data_extrapolated_mb:
                memory += f" (+{p.data_extrapolated_mb:.0f})"
            verdict = "; ".join(p.problems()) or "within its requests"
            lines.append(
                f"| {p.algo} | {p.exp}/{p.task}/{p.label} | {p.why} | {p.horizon} "
                f"| {p.probe_steps:,} | {cuts} | {p.run_wall_s or 0:.0f} | {p.load_before} "
                f"| {p.cpu_s if p.cpu_s is not None else '-'} | {p.projected_s:.0f} | {ratio} "
                f"| {estimate} | {p.request_min:,} | {memory} | {p.request_mb:,} | {verdict} |"
            )
    return "\n".join(lines) + "\n"


def write_summary(result: Rehearsal, out: Path) -> Path:
    """``rehearsal.md`` and ``rehearsal.json`` in ``out``; the Markdown's path."""
    path = out / "rehearsal.md"
    path.write_text(summary(result))
    record = asdict(result)
    record["failures"] = result.failures()
    (out / "rehearsal.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
