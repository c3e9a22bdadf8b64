"""What a training job costs: seconds per phase from what drives each phase.

A model-based job alternates real collection, a model fit, policy improvement in imagination
and evaluation (``RealDataAlgorithm.train``). :func:`job_work` replays that schedule on paper
for a job's configuration and counts, per iteration, the quantities its phases' times are
proportional to:

==============  ==========================================================================
unit            what it counts
==============  ==========================================================================
env_steps       real and evaluation env steps (with a small policy)
plan_gflop      model arithmetic of random-shooting MPC (MB-MPC: collection and evaluation)
fit_gflop       model training: models x epochs x (3 passes over the training split + one
                over the held-out split), per sample one model's forward GFLOP
imagine_gflop   imagined model steps of MB-MPO/ME-TRPO meta steps
meta_samples    imagined samples through the meta (TRPO) steps
iterations      per-iteration overhead (checkpoint, bookkeeping)
==============  ==========================================================================

Rates (seconds per unit) are measured on a machine by ``mbbench perf --calibrate``
(:func:`calibrate`): short jobs at the faithful model size, each logged phase time divided
by its units. The project machine's rates ship in ``benchmark/reference/cost_rates.json``.

The official early-stopping rule's fits are projected at :data:`OFFICIAL_FIT_UPDATES`
minibatch updates per model, as many as its measured fits ran, or at the epoch cap
(``model_max_epochs``, or fewer where ``model_max_updates`` lowers it) where that is lower.
The patience rule is projected at the mean epochs its fits ran in calibration. Algorithms
without a schedule model here (the SB3 baselines, GrBAL, ReBAL, random) are projected from
``seconds_per_1000_steps``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

UNITS = ("env_steps", "plan_gflop", "fit_gflop", "imagine_gflop", "meta_samples", "iterations")
RATES_FILE = Path(__file__).parent / "reference" / "cost_rates.json"


def mlp_gflop(sizes: list[int]) -> float:
    """GFLOP of one forward pass of an MLP, per sample (a multiply-add counts 2)."""
    return sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) / 1e9


@dataclass
class Rates:
    """Seconds per unit (see the module docstring), measured on one machine."""

    seconds_per: dict[str, float]
    """Unit name -> seconds per unit."""
    patience_epochs: float = 30.0
    """Mean epochs of a patience-rule fit, as measured."""
    machine: str = ""
    """Where and when the rates were measured, and with how many threads."""

    @classmethod
    def load(cls, path: Path | str = RATES_FILE) -> Rates:
        """Rates from a JSON file (:meth:`save`)."""
        return cls(**json.loads(Path(path).read_text()))

    def save(self, path: Path | str) -> None:
        """Write the rates as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=2) + "\n")


def config_rates(config: dict[str, Any], explicit: str | Path | None = None) -> Rates:
    """The rates a workflow config's jobs are projected and requested with: ``explicit`` (a
    command's ``--rates``), else the config's ``rates`` file (a path relative to where the
    workflow runs, from ``mbbench perf --calibrate --out FILE`` on the machines that will run
    the jobs), else the shipped ones. A named file that is missing or unreadable is a
    ConfigError."""
    from benchmark.errors import ConfigError

    path = explicit or config.get("rates") or RATES_FILE
    try:
        return Rates.load(path)
    except (OSError, TypeError, ValueError) as error:
        raise ConfigError(f"rates {path}: cannot be read as a rates file ({error})") from None


@dataclass
class Iteration:
    """Units of one iteration, by the progress.csv time column they show up in."""

    collect: dict[str, float] = field(default_factory=dict)
    fit: dict[str, float] = field(default_factory=dict)
    imagine: dict[str, float] = field(default_factory=dict)
    meta: dict[str, float] = field(default_factory=dict)
    eval: dict[str, float] = field(default_factory=dict)
    buffer: int = 0
    fit_epochs: float = 0.0
    """Epochs the model charges this iteration's fit (:func:`planned_epochs`)."""
    imagined_held: int = 0
    """Imagined samples of one meta step, held at once (with their graph) for its update."""

    def columns(self) -> dict[str, dict[str, float]]:
        """The units behind each progress.csv time column."""
        return {
            "time_collect_s": self.collect,
            "time_fit_s": self.fit,
            "time_imagine_s": self.imagine,
            "time_meta_s": self.meta,
            "time_eval_s": self.eval,
        }

    def units(self) -> dict[str, float]:
        """All units of the iteration, its overhead (one iteration) included."""
        total = {"iterations": 1.0}
        for part in self.columns().values():
            for unit, amount in part.items():
                total[unit] = total.get(unit, 0.0) + amount
        return total


def seconds(units: dict[str, float], rates: Rates) -> float:
    """Projected seconds of some units."""
    return sum(amount * rates.seconds_per.get(unit, 0.0) for unit, amount in units.items())


def has_schedule(algo: str) -> bool:
    """Whether :func:`job_work` models this algorithm's schedule."""
    from algorithms import get_algorithm
    from algorithms.mbmpc import MBMPC
    from algorithms.mbmpo import MBMPO

    return issubclass(get_algorithm(algo), (MBMPO, MBMPC))


OFFICIAL_FIT_UPDATES = 10_000
"""Minibatch updates per model an official-rule fit is charged, unless its epoch cap allows
fewer. The rule (a model stops when the 0.99 rolling average of its held-out loss rises) ran
8,000-10,700 updates per fit at every buffer size from 12k to 48k transitions in the
official-rule runs of the fit-rule comparison (MB-MPO paper preset, halfcheetah-rllab,
2026-12-07/08; fewer epochs as the data grew: 447 at 12k, 139 at 48k) and 7,600-13,900 in
refits from 72k checkpoints; the first fit, on 6,400 rows, hit its 500-epoch cap (6,500).
Measured on one task and algorithm: other tasks' fits may stop elsewhere (ME-TRPO's and
MB-MPC's use the same rule); :data:`RUNTIME_MARGIN` covers up to twice the projection."""


def planned_epochs(config: Any, patience_epochs: float, n_train: int) -> float:
    """Epochs the model charges a fit on ``n_train`` training rows per model: the epochs of
    :data:`OFFICIAL_FIT_UPDATES` updates for the official rule, the calibrated mean for the
    patience rule, either at most the cap; the cap is the lower of ``model_max_epochs`` and
    what ``model_max_updates`` allows at this size (``fit_epoch_cap``, the fit's own rule)."""
    from algorithms.common.ensemble import batches_per_epoch, fit_epoch_cap

    ensemble = config.ensemble_config()
    cap = fit_epoch_cap(ensemble, n_train)
    if config.model_early_stopping == "patience":
        return min(cap, patience_epochs)
    return min(cap, OFFICIAL_FIT_UPDATES / batches_per_epoch(ensemble, n_train))


def job_work(
    algo: str, config: Any, run: Any, task: Any, steps: int, patience_epochs: float = 30.0
) -> list[Iteration]:
    """Replay a model-based job's schedule (``RealDataAlgorithm.train``): its iterations'
    units. ``config`` and ``run`` are the resolved algorithm and harness settings
    (``benchmark.run.resolve_run``), ``task`` gives dimensions and the horizon, ``steps``
    the real-step budget."""
    from algorithms import get_algorithm
    from algorithms.mbmpo import MBMPO

    if not has_schedule(algo):
        raise ValueError(f"{algo}: no schedule model; projected from seconds_per_1000_steps")
    policy_search = issubclass(get_algorithm(algo), MBMPO)
    horizon = task.horizon
    n_in = len(task.model_input_dims) + task.act_dim
    model = mlp_gflop([n_in, *config.model_hidden_sizes, task.obs_dim])
    if policy_search:
        per_iteration = config.num_tasks * config.real_rollouts_per_task * horizon
    else:
        per_iteration = config.steps_per_iteration
        plan_per_step = config.num_candidates * config.planning_horizon * model
    # MB-MPO evaluates the mean action and the stochastic policy.
    eval_steps = run.eval_episodes * horizon * (2 if policy_search else 1)
    every = run.eval_every
    iterations: list[Iteration] = []
    env_steps = 0
    last_eval = 0
    while env_steps < steps:
        first = not iterations
        n = min(config.initial_random_steps if first else per_iteration, steps - env_steps)
        env_steps += n
        it = Iteration(buffer=min(config.buffer_size, env_steps))
        it.collect = {"env_steps": float(n)}
        if not first and not policy_search:
            it.collect["plan_gflop"] = n * plan_per_step
        valid = max(1, round(it.buffer * config.model_valid_fraction))
        passes = 3 * (it.buffer - valid) + valid
        it.fit_epochs = planned_epochs(config, patience_epochs, it.buffer - valid)
        it.fit = {"fit_gflop": it.fit_epochs * config.num_models * model * passes}
        if policy_search:
            rollouts = 2 if config.inner_lr > 0 else 1
            per_meta_step = rollouts * config.num_tasks * config.imagined_trajectories
            per_meta_step *= config.imagined_horizon or horizon
            samples = config.meta_steps * per_meta_step
            it.imagined_held = per_meta_step
            it.imagine = {"imagine_gflop": samples * model}
            it.meta = {"meta_samples": float(samples)}
        if env_steps // every > last_eval // every or env_steps >= steps:
            it.eval = {"env_steps": float(eval_steps)}
            if not policy_search:
                it.eval["plan_gflop"] = eval_steps * plan_per_step
            last_eval = env_steps
        iterations.append(it)
    return iterations


def total_units(iterations: list[Iteration]) -> dict[str, float]:
    """The units of a whole job."""
    total: dict[str, float] = dict.fromkeys(UNITS, 0.0)
    for it in iterations:
        for unit, amount in it.units().items():
            total[unit] += amount
    return total


def calibrate(runs: list[tuple[list[Iteration], list[dict[str, str]]]]) -> dict[str, float]:
    """Rates from runs: each a replayed schedule and the progress.csv rows it logged (one per
    iteration: evaluate every iteration when calibrating).

    Each time column is explained by its units in a fixed order: env steps from the first
    (random) collections, planning from the rest of MPC collections and evaluations, the
    fit, imagination and meta steps directly, and the per-iteration overhead from wall time
    the phases do not account for.
    """
    sums: dict[str, list[float]] = {u: [0.0, 0.0] for u in UNITS}  # seconds, units

    def add(unit: str, secs: float, amount: float) -> None:
        sums[unit][0] += secs
        sums[unit][1] += amount

    for iterations, rows in runs:
        if len(rows) != len(iterations):
            raise ValueError("calibration runs must log every iteration (eval_every small)")
        for it, row in zip(iterations, rows, strict=True):
            if "plan_gflop" not in it.collect:
                add("env_steps", float(row["time_collect_s"]), it.collect["env_steps"])
    env_rate = sums["env_steps"][0] / sums["env_steps"][1]
    for iterations, rows in runs:
        wall_before = 0.0
        for it, row in zip(iterations, rows, strict=True):
            for column, units in it.columns().items():
                secs = float(row.get(column) or 0.0)
                if not units or (column == "time_collect_s" and "plan_gflop" not in units):
                    continue
                env = units.get("env_steps", 0.0)
                if "plan_gflop" in units:
                    add("plan_gflop", secs - env * env_rate, units["plan_gflop"])
                elif column == "time_eval_s":
                    add("env_steps", secs, env)
                else:
                    (unit,) = units
                    add(unit, secs, units[unit])
            wall = float(row["wall_time_s"])
            phases = sum(float(row.get(c) or 0.0) for c in it.columns())
            add("iterations", max(0.0, wall - wall_before - phases), 1.0)
            wall_before = wall
    return {u: s / n for u, (s, n) in sums.items() if n > 0}


# Short jobs at the faithful model size (512 x 512 ensembles, 1000 x 10 planning), every
# iteration evaluated so each phase's time is logged: about two minutes on 2 cores.
CALIBRATION_JOBS: list[tuple[str, str, int, dict[str, Any]]] = [
    (
        "mbmpo",
        "paper",
        6000,
        {
            "initial_random_steps": 2000,
            "num_tasks": 10,
            "meta_steps": 2,
            "model_max_epochs": 5,
            "run.eval_every": 1,
            "run.eval_episodes": 2,
        },
    ),
    (
        "mbmpc",
        "paper",
        700,
        {
            "initial_random_steps": 500,
            "steps_per_iteration": 100,
            "model_max_epochs": 5,
            "run.horizon": 20,
            "run.eval_every": 1,
            "run.eval_episodes": 1,
        },
    ),
    (
        "mbmpo",
        "paper",
        4000,
        {
            "initial_random_steps": 2000,
            "num_tasks": 10,
            "meta_steps": 1,
            "model_early_stopping": "patience",
            "run.eval_every": 1,
            "run.eval_episodes": 1,
        },
    ),
]


def measure(
    algo: str, preset: str | None, steps: int, settings: dict[str, Any], task: str, out: Path
) -> tuple[list[Iteration], list[dict[str, str]]]:
    """Run one job into ``out`` (quietly) and return its replayed schedule and logged rows."""
    import csv

    from benchmark.run import execute, resolve_run

    resolved = resolve_run(algo, task, 0, steps, dict(settings), preset=preset)
    execute(resolved, out, progress="quiet")
    with open(Path(out) / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    schedule = job_work(algo, resolved.algorithm_config, resolved.run_config, resolved.task, steps)
    return schedule, rows


# A few seconds of every phase, not measured: the first job in a process pays one-time costs
# (MuJoCo model compilation, torch's first kernels, imports) that a long job pays once but a
# calibration would charge to every iteration (0.57 s per iteration against 0.16 s after it).
CALIBRATION_WARMUP: tuple[str, str, int, dict[str, Any]] = (
    "mbmpo",
    "paper",
    600,
    {
        "initial_random_steps": 500,
        "num_tasks": 5,
        "meta_steps": 1,
        "model_max_epochs": 1,
        "run.horizon": 50,
        "run.eval_every": 1,
        "run.eval_episodes": 1,
    },
)


def calibrate_machine(workdir: Path, task: str = "halfcheetah", note: str = "") -> Rates:
    """Run :data:`CALIBRATION_JOBS` under ``workdir`` (after :data:`CALIBRATION_WARMUP`) and
    derive this machine's rates."""
    algo, preset, steps, settings = CALIBRATION_WARMUP
    measure(algo, preset, steps, settings, task, workdir / "warmup")
    measured = []
    patience_epochs: list[float] = []
    for i, (algo, preset, steps, settings) in enumerate(CALIBRATION_JOBS):
        schedule, rows = measure(algo, preset, steps, settings, task, workdir / f"job{i}")
        if settings.get("model_early_stopping") == "patience":
            patience_epochs += [float(r["model_epochs"]) for r in rows]
        else:
            measured.append((schedule, rows))
    return Rates(
        seconds_per=calibrate(measured),
        patience_epochs=sum(patience_epochs) / len(patience_epochs),
        machine=note,
    )


class Projection(NamedTuple):
    """What :func:`project` foresees for one job."""

    seconds: float
    peak_transitions: int
    """Real transitions held at the largest (buffer or replay buffer)."""
    imagined_samples: int
    """Imagined samples held at once for one meta step (MB-MPO, ME-TRPO; 0 otherwise)."""


def project(
    algo: str, preset: str | None, steps: int, settings: dict[str, Any], task: str, rates: Rates
) -> Projection:
    """Projected seconds of one job, and the data it holds at its largest."""
    from algorithms import get_algorithm
    from benchmark.run import resolve_run

    if not has_schedule(algo):
        seconds_per_1000 = get_algorithm(algo).seconds_per_1000(preset)
        return Projection(steps / 1000 * seconds_per_1000, min(steps, 10**6), 0)
    resolved = resolve_run(algo, task, 0, steps, dict(settings), preset=preset)
    schedule = job_work(
        algo,
        resolved.algorithm_config,
        resolved.run_config,
        resolved.task,
        steps,
        rates.patience_epochs,
    )
    return Projection(
        seconds(total_units(schedule), rates),
        max(it.buffer for it in schedule),
        max(it.imagined_held for it in schedule),
    )


@dataclass
class JobProjection:
    """One training job's projected cost."""

    exp: str
    task: str
    label: str
    seed: int
    seconds: float
    peak_transitions: int
    modelled: bool
    """False: projected from the class's seconds_per_1000_steps, not a schedule model."""


def project_config(config: dict[str, Any], rates: Rates) -> list[JobProjection]:
    """Every training job of a workflow config, projected."""
    from benchmark.jobs import job_settings, training_jobs

    cache: dict[tuple, Projection] = {}
    projections = []
    for job in training_jobs(config):
        algo, steps, preset, settings = job_settings(config, job["exp"], job["algo"])
        key = (algo, job["task"], steps, preset, json.dumps(settings, sort_keys=True))
        if key not in cache:
            cache[key] = project(algo, preset, steps, settings, job["task"], rates)
        secs, peak, _ = cache[key]
        projections.append(
            JobProjection(
                job["exp"], job["task"], job["algo"], job["seed"], secs, peak, has_schedule(algo)
            )
        )
    return projections


def makespan(durations: list[float], cores: int) -> float:
    """Wall time of one-core jobs on ``cores`` cores, longest first onto the least loaded
    core (within 4/3 of the best schedule; never shorter than the longest job)."""
    load = [0.0] * max(1, cores)
    for d in sorted(durations, reverse=True):
        i = load.index(min(load))
        load[i] += d
    return max(load)


RUNTIME_MARGIN = 2.0
"""A scheduler is asked for this many times a job's projected time: machines differ, clusters
are busy."""


def runtime_request_min(seconds: float, attempt: int = 1) -> int:
    """Minutes a job asks a scheduler for: its projection x :data:`RUNTIME_MARGIN`, at least
    10; a retry (after a time-out, say) asks for ``attempt`` times as much."""
    return attempt * max(10, round(seconds * RUNTIME_MARGIN / 60))


IMAGINED_BYTES_PER_DIM = 56
"""Resident bytes per imagined sample held for a meta step, per observation and action
dimension: the most measured (peak RSS of MB-MPO's paper preset against its meta batch,
halfcheetah-rllab and ant-rllab, horizons 200 and 1000, 2026-12-07; docs/performance.md)."""


def memory_mb(peak_transitions: int, obs_dim: int, act_dim: int, imagined_samples: int = 0) -> int:
    """Megabytes a job asks for: the interpreter, torch and MuJoCo (~2 GB with room), its data
    (obs, action, next obs as float32), held twice while a checkpoint is written, and the
    imagined samples of one meta step with what the meta-gradient keeps of them."""
    per_transition = 4 * (2 * obs_dim + act_dim)
    imagined = imagined_samples * IMAGINED_BYTES_PER_DIM * (obs_dim + act_dim)
    return 2000 + (2 * peak_transitions * per_transition + imagined) // 10**6


PHASE_COLUMNS = ("time_collect_s", "time_fit_s", "time_imagine_s", "time_meta_s", "time_eval_s")
"""The progress.csv columns of a model-based iteration's phases (``Iteration.columns``)."""


@dataclass
class RunCheck:
    """A finished (or partly run) job's measured seconds next to the cost model's."""

    run_dir: str
    iterations: int
    """Iterations compared (every one logged a progress row)."""
    measured: dict[str, float]
    """Phase column (and 'overhead', 'total') -> measured seconds, summed over iterations."""
    projected: dict[str, float]
    """The same keys, projected from the rates with the epochs the run's fits really ran."""
    projected_by_plan: float
    """What ``mbbench plan`` projects for these iterations (official fits at
    :data:`OFFICIAL_FIT_UPDATES`, patience fits at the calibrated mean, either within the
    epoch cap): the figure the scheduler requests are built on."""
    mean_epochs: float
    """Mean epochs per fit the run logged."""


def check_run(run_dir: str | Path, rates: Rates) -> RunCheck:
    """Hold a model-based run's logged phase times against the cost model, iteration by
    iteration: the schedule replayed from its recorded config, each fit charged the epochs
    it logged. The run must have logged every iteration (``eval_every`` no larger than an
    iteration's real steps), else there is no per-iteration time to compare."""
    from benchmark.run import resolve_recorded
    from benchmark.rundir import RunDir, read_progress

    run = RunDir(run_dir)
    config = run.read_config()
    if not has_schedule(config["algo"]):
        raise ValueError(f"{run.path}: {config['algo']} has no schedule model")
    rows = read_progress(run.progress_path) if run.progress_path.exists() else []
    resolved = resolve_recorded(config)
    cfg = resolved.algorithm_config
    schedule = job_work(
        config["algo"],
        cfg,
        resolved.run_config,
        resolved.task,
        config["steps"],
        rates.patience_epochs,
    )
    steps_at, done = [], 0
    for it in schedule:
        done += int(it.collect["env_steps"])
        steps_at.append(done)
    logged = [int(float(r["env_steps"])) for r in rows]
    if not rows or logged != steps_at[: len(rows)]:
        raise ValueError(
            f"{run.path}: its progress rows (at {logged[:4]}... steps) are not one per "
            f"iteration (at {steps_at[:4]}...): evaluate every iteration to check it"
        )
    schedule = schedule[: len(rows)]
    measured = dict.fromkeys([*PHASE_COLUMNS, "overhead", "total"], 0.0)
    projected = dict(measured)
    for it, row in zip(schedule, rows, strict=True):
        epochs = float(row.get("model_epochs") or it.fit_epochs)
        fit_units = {u: a * epochs / it.fit_epochs for u, a in it.fit.items()}
        for column, units in it.columns().items():
            if column == "time_fit_s":
                units = fit_units
            measured[column] += float(row.get(column) or 0.0)
            projected[column] += seconds(units, rates)
        projected["overhead"] += rates.seconds_per.get("iterations", 0.0)
    measured["total"] = float(rows[-1]["wall_time_s"])
    measured["overhead"] = measured["total"] - sum(measured[c] for c in PHASE_COLUMNS)
    projected["total"] = sum(projected[c] for c in (*PHASE_COLUMNS, "overhead"))
    mean_epochs = sum(float(r.get("model_epochs") or 0.0) for r in rows) / len(rows)
    return RunCheck(
        str(run.path),
        len(rows),
        measured,
        projected,
        seconds(total_units(schedule), rates),
        mean_epochs,
    )


def format_checks(checks: list[RunCheck], root: str | Path = ".") -> str:
    """Markdown: per run, each phase's measured / projected seconds, and the totals."""
    names = [c.removeprefix("time_").removesuffix("_s") for c in PHASE_COLUMNS]
    head = ["run", "iterations", "epochs per fit", *names, "overhead", "total"]
    lines = [
        "Measured / projected seconds per phase (projected with the epochs each fit ran):",
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join("---" for _ in head) + " |",
    ]
    for c in checks:
        cells = [
            f"{c.measured[k]:.0f} / {c.projected[k]:.0f} ({_ratio(c.measured[k], c.projected[k])})"
            for k in (*PHASE_COLUMNS, "overhead", "total")
        ]
        run = os.path.relpath(c.run_dir, root)
        lines.append(
            f"| {run} | {c.iterations} | {c.mean_epochs:.1f} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "| run | measured h | projected h (epochs run) | projected h (plan's epochs) |",
        "| --- | --- | --- | --- |",
    ]
    for c in checks:
        run = os.path.relpath(c.run_dir, root)
        lines.append(
            f"| {run} | {c.measured['total'] / 3600:.2f} | {c.projected['total'] / 3600:.2f} | "
            f"{c.projected_by_plan / 3600:.2f} |"
        )
    measured = sum(c.measured["total"] for c in checks)
    projected = sum(c.projected["total"] for c in checks)
    lines += ["", f"measured_over_projected={measured / projected:.3f} runs={len(checks)}"]
    return "\n".join(lines)


def _ratio(measured: float, projected: float) -> str:
    return f"{measured / projected:.2f}" if projected > 0 else "–"
