"""One run, start to finish: resolve and validate the configuration, prepare or resume the run
directory, train, and record the outcome in meta.json.

Everything that can be checked is checked before anything is written: a bad config never
creates or touches a run directory.
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from algorithms import Algorithm, AlgorithmConfig, UnknownAlgorithmError, get_algorithm
from benchmark import jobs, layout
from benchmark.config import (
    apply_overrides,
    fields_of,
    param,
    to_dict,
    unknown_key_error,
)
from benchmark.errors import ConfigError, DiskFullError, RunDirError
from benchmark.logger import NullLogger, RunLogger
from benchmark.progress import ProgressReporter
from benchmark.rundir import (
    DirectoryLogger,
    Evaluator,
    RunDir,
    finish_meta,
    new_meta,
    read_progress,
    resume_record,
)
from benchmark.tasks import Task, UnknownTaskError, make_task


@dataclass
class RunConfig:
    """Settings of the harness, shared by every algorithm."""

    eval_every: int = param(5000, ge=1)
    """Real env steps between evaluation points."""
    eval_episodes: int = param(5, ge=1)
    """Episodes of the current policy per evaluation point (not counted as learning samples)."""
    horizon: int | None = param(None, ge=1)
    """Episode length in steps; None keeps the task's default."""


class RunFailed(RuntimeError):
    """The run started but did not finish; meta.json holds the reason."""


@dataclass
class ResolvedRun:
    """A fully validated run: what to build, and the config to record."""

    algorithm_cls: type[Algorithm]
    task: Task
    algorithm_config: AlgorithmConfig
    run_config: RunConfig
    config: dict[str, Any]


def _split_overrides(
    overrides: dict[str, Any], algorithm_cls: type[Algorithm]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Sort ``--set`` keys into run settings, env kwargs (``env.X``) and algorithm settings."""
    run_keys, algo_keys = set(fields_of(RunConfig)), set(fields_of(algorithm_cls.Config))
    run, env, algo = {}, {}, {}
    for key, value in overrides.items():
        if key.startswith("env."):
            env[key[4:]] = value
        elif key.startswith("run.") or key in run_keys:
            run[key.removeprefix("run.")] = value
        elif key.startswith("algo.") or key in algo_keys:
            algo[key.removeprefix("algo.")] = value
        else:
            valid = sorted(run_keys | algo_keys) + ["env.<env kwarg>"]
            raise unknown_key_error(key, valid)
    ambiguous = run_keys & algo_keys & set(overrides)
    if ambiguous:
        raise ConfigError(f"ambiguous keys {sorted(ambiguous)}: write run.KEY or algo.KEY")
    return run, env, algo


def configure_algorithm(
    algorithm_cls: type[Algorithm], preset: str | None, overrides: dict[str, Any] | None = None
) -> AlgorithmConfig:
    """The algorithm's config: defaults, then the named ``preset``, then ``overrides``,
    validated."""
    if preset is not None and preset not in algorithm_cls.presets:
        choices = ", ".join(sorted(algorithm_cls.presets)) or "none"
        raise ConfigError(
            f"unknown preset {preset!r} for {algorithm_cls.name}; choose from: {choices}"
        )
    preset_values = algorithm_cls.presets.get(preset, {}) if preset else {}
    return apply_overrides(algorithm_cls.Config(), {**preset_values, **(overrides or {})})


def resolve_run(
    algo: str,
    task: str,
    seed: int,
    steps: int,
    overrides: dict[str, Any] | None = None,
    preset: str | None = None,
) -> ResolvedRun:
    """Validate everything about a run without touching the disk."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed: must be a non-negative integer, got {seed!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"steps: must be a positive integer, got {steps!r}")
    algorithm_cls = get_algorithm(algo)
    run_over, env_over, algo_over = _split_overrides(overrides or {}, algorithm_cls)
    algorithm_config = configure_algorithm(algorithm_cls, preset, algo_over)
    run_config = apply_overrides(RunConfig(), run_over, "run.")
    try:
        task_obj = make_task(task, horizon=run_config.horizon, **env_over)
    except TypeError as error:  # gymnasium raises TypeError for an unknown env kwarg
        raise ConfigError(f"env kwargs {sorted(env_over)} rejected by {task}: {error}") from None
    check_task = getattr(algorithm_config, "check_task", None)
    if check_task is not None:  # settings that depend on the task
        check_task(task_obj)
    config = {
        "algo": algo,
        "task": task,
        "seed": seed,
        "steps": steps,
        "preset": preset,
        "run": to_dict(run_config),
        "env": {k: list(v) if isinstance(v, tuple) else v for k, v in env_over.items()},
        "algorithm": to_dict(algorithm_config),
    }
    return ResolvedRun(algorithm_cls, task_obj, algorithm_config, run_config, config)


def check_training_jobs(config: dict[str, Any]) -> None:
    """Resolve every training job of a workflow config (algorithm, task, preset, keys,
    types, ranges) before anything runs: a typo fails the whole workflow here (its
    ``onstart``), naming the job. Raises ValueError."""
    checked = set()
    for job in jobs.training_jobs(config):
        algo, steps, preset, settings = jobs.job_settings(config, job["exp"], job["algo"])
        key = (algo, job["task"], steps, preset, json.dumps(settings, sort_keys=True))
        if key in checked:
            continue
        checked.add(key)
        try:
            resolve_run(algo, job["task"], job["seed"], steps, dict(settings), preset=preset)
        except (ConfigError, UnknownTaskError, UnknownAlgorithmError, ValueError) as error:
            raise ValueError(
                f"config: experiment {job['exp']!r}, task {job['task']!r}, "
                f"algorithm label {job['algo']!r}: {error}"
            ) from None


def default_run_dir(config: dict[str, Any], root: str | Path = layout.DEFAULT_RUNS_ROOT) -> Path:
    """Where ``mbbench run`` writes a run without ``--out``: experiment ``manual``."""
    return layout.run_dir(
        root, layout.MANUAL_EXPERIMENT, config["task"], config["algo"], config["seed"]
    )


def _config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return diffs


def _extension(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` is ``old`` with a larger budget and nothing else changed."""
    return new["steps"] > old["steps"] and not _config_diff({**old, "steps": new["steps"]}, new)


def with_later_settings(
    recorded: dict[str, Any], algorithm_cls: type[Algorithm] | None
) -> dict[str, Any]:
    """A recorded run config (config.yaml, a checkpoint's) completed with the settings the
    suite gained after it was written, at their defaults. A setting is only ever added with a
    default that keeps the earlier behaviour, so a run recorded without it ran as that default
    does, and resuming or extending it stays allowed."""
    sections = {"run": to_dict(RunConfig())}
    if algorithm_cls is not None:
        sections["algorithm"] = to_dict(algorithm_cls.Config())
    out = dict(recorded)
    for key, defaults in sections.items():
        section = recorded.get(key)
        if isinstance(section, dict):
            out[key] = {**{k: v for k, v in defaults.items() if k not in section}, **section}
    return out


def check_run_dir(
    run_dir: RunDir,
    config: dict[str, Any],
    extend: bool = False,
    algorithm_cls: type[Algorithm] | None = None,
) -> str:
    """What to do with ``run_dir``: 'new', 'resume', 'extend' or 'done'. Raises RunDirError if
    it cannot hold this run (a file, not writable, foreign content, another config). With
    ``extend``, a run of the same config but a smaller budget is continued ('extend').
    ``algorithm_cls`` completes an older config.yaml with settings added since
    (``with_later_settings``). Reads only."""
    path = run_dir.path
    if path.exists() and not path.is_dir():
        raise RunDirError(f"--out {path}: a file, not a directory; choose another --out")
    ancestor = path
    while not ancestor.exists():  # the first existing folder on the way must take new ones
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunDirError(f"--out {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunDirError(f"--out {path}: {ancestor} is not writable")
    if run_dir.exists():
        recorded = with_later_settings(run_dir.read_config(), algorithm_cls)
        if extend and _extension(recorded, config):
            return "extend"
        diff = _config_diff(recorded, config)
        if diff:
            raise RunDirError(
                f"{run_dir.config_path}: a run of another config ({'; '.join(diff[:5])}); "
                "choose another --out or remove that directory"
            )
        return "done" if run_dir.read_meta().get("status") == "done" else "resume"
    if path.exists() and any(p for p in path.iterdir() if not p.name.startswith(".")):
        raise RunDirError(f"{path} is not empty and holds no run; choose another --out")
    return "new"


def _rows_covered(run_dir: RunDir, checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The progress rows a checkpoint covers (those logged after it are dropped: a resumed
    run logs them again)."""
    n_rows = checkpoint["progress_rows"]
    try:
        rows = read_progress(run_dir.progress_path)[:n_rows] if n_rows else []
    except (OSError, RunDirError) as error:
        raise run_dir.damaged(run_dir.progress_path, f"unreadable ({error})") from None
    if len(rows) != n_rows:
        raise run_dir.damaged(run_dir.progress_path, "fewer rows than its checkpoint covers")
    return rows


def branch_point(
    source: RunDir, config: dict[str, Any], algorithm_cls: type[Algorithm]
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """What a run branched from ``source`` starts with: its checkpoint, its progress rows up
    to that checkpoint, and the record of the branch (source, steps, changed settings) for
    meta.json. The branch shares the source's algorithm, task, seed, env and run settings;
    its algorithm settings and budget may differ. Raises before anything is written."""
    where = f"--branch-from {source.path}"
    if not algorithm_cls.extendable:
        raise ConfigError(
            f"--branch-from: {config['algo']} runs cannot be branched (its schedules depend on "
            "the budget)"
        )
    if not source.exists():
        raise RunDirError(f"{where}: no run there (no meta.json)")
    checkpoint = source.load_checkpoint()
    if checkpoint is None:
        raise RunDirError(f"{where}: no checkpoint to branch from")
    recorded = with_later_settings(checkpoint["config"], algorithm_cls)
    for key in ("algo", "task", "seed", "env", "run"):
        if recorded.get(key) != config.get(key):
            raise RunDirError(
                f"{where}: its {key} is {recorded.get(key)!r}, this run's {config.get(key)!r}; "
                "a branch changes algorithm settings and the budget only"
            )
    if checkpoint["env_steps"] >= config["steps"]:
        raise RunDirError(
            f"{where}: its checkpoint is at {checkpoint['env_steps']} steps; "
            f"--steps ({config['steps']}) must be larger"
        )
    rows = _rows_covered(source, checkpoint)
    changed = _config_diff(
        {**recorded, "steps": config["steps"], "preset": config["preset"]}, config
    )
    record = {
        "run": str(source.path),
        "env_steps": int(checkpoint["env_steps"]),
        "changed": changed,
    }
    return checkpoint, rows, record


def resolve_recorded(config: dict[str, Any]) -> ResolvedRun:
    """A run resolved again from the settings its config.yaml recorded (every value
    explicit, so later changes of defaults or presets do not alter it)."""
    overrides = {
        **{f"algo.{k}": v for k, v in config["algorithm"].items()},
        **{f"run.{k}": v for k, v in config["run"].items()},
        **{f"env.{k}": v for k, v in config["env"].items()},
    }
    return resolve_run(config["algo"], config["task"], config["seed"], config["steps"], overrides)


def load_run_algorithm(
    run_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    logger: RunLogger | None = None,
) -> Algorithm:
    """Rebuild a run's algorithm from its config.yaml and load its checkpoint (for analysis
    of a trained agent). ``overrides`` change algorithm settings (validated as ``--set``
    values are); ``logger`` (default: one that evaluates and records nothing) is the one the
    algorithm talks to."""
    run = RunDir(run_dir)
    config = run.read_config()
    checkpoint = run.load_checkpoint()
    if checkpoint is None:
        raise RunDirError(f"{run.path}: no checkpoint to analyse")
    config = with_later_settings(config, get_algorithm(config["algo"]))
    if overrides:
        config = {**config, "algorithm": {**config["algorithm"], **overrides}}
    resolved = resolve_recorded(config)
    algorithm = resolved.algorithm_cls(
        resolved.task, resolved.algorithm_config, config["seed"], logger or NullLogger()
    )
    algorithm.load_state_dict(checkpoint["algorithm"])
    return algorithm


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - for third-party code using the global RNG
    torch.manual_seed(seed)


def execute(
    resolved: ResolvedRun,
    out: str | Path,
    device: str = "cpu",
    progress: str = "auto",
    extend: bool = False,
    branch_from: str | Path | None = None,
) -> str:
    """Run (or resume) training into ``out``. Returns the final status, 'done'.

    ``progress``: 'auto' (a live bar on a terminal, a line per evaluation point otherwise),
    'bar', 'lines' or 'quiet'. ``extend``: a run in ``out`` of the same config but a smaller
    budget (finished or not) is continued from its checkpoint to this budget (model-based
    algorithms only; for a new run, or one of this budget, it changes nothing); config.yaml
    then records the new budget and meta.json each extension. ``branch_from``: a new run in
    ``out`` starts from the checkpoint of the run in that directory, with this run's algorithm
    settings and budget (``branch_point``); once ``out`` holds the branch, the same call resumes
    it. Raises RunDirError before writing anything if ``out`` cannot be used, and RunFailed if
    training failed (meta.json then says why).
    """
    config = resolved.config
    run_dir = RunDir(out)
    action = check_run_dir(run_dir, config, extend, resolved.algorithm_cls)
    if action == "extend" and not resolved.algorithm_cls.extendable:
        raise ConfigError(
            f"--extend: {config['algo']} runs cannot be extended (its schedules depend on the "
            "budget); start a new run with the larger budget"
        )
    extended_from = run_dir.read_config()["steps"] if action == "extend" else None
    if action == "extend":
        action = "resume"
    if action == "done":
        print(f"{run_dir.path}: already complete, nothing to do", file=sys.stderr)
        return "done"
    # Everything is read and checked, and the algorithm built and restored, before anything
    # is written: a damaged file stops the run with one line and leaves the directory as it
    # was.
    checkpoint = run_dir.load_checkpoint() if action == "resume" else None
    branch = None
    if branch_from is not None and action == "new":
        checkpoint, branch_rows, branch = branch_point(
            RunDir(branch_from), config, resolved.algorithm_cls
        )
    recorded = (  # a branch's checkpoint is of another config by design (branch_point)
        with_later_settings(checkpoint["config"], resolved.algorithm_cls)
        if checkpoint is not None and branch is None
        else None
    )
    if recorded is not None and _config_diff(recorded, config):
        if extended_from is None or not _extension(recorded, config):
            raise RunDirError(f"{run_dir.checkpoint_path}: checkpoint of another config")
    if extended_from is not None and checkpoint is None:
        raise RunDirError(f"{run_dir.path}: no checkpoint to extend from")
    rows: list[dict[str, Any]] = []
    if branch is not None:
        rows = branch_rows
    elif checkpoint is not None:
        rows = _rows_covered(run_dir, checkpoint)
    old_meta = run_dir.read_meta() if action == "resume" else None

    seed_everything(config["seed"])
    evaluator = Evaluator(resolved.task, config["seed"], resolved.run_config.eval_episodes)
    reporter = ProgressReporter(
        f"{config['algo']}/{config['task']}/seed{config['seed']}",
        total=config["steps"],
        initial=checkpoint["env_steps"] if checkpoint else 0,
        mode=progress,
    )
    logger = DirectoryLogger(
        run_dir,
        evaluator,
        config,
        eval_every=resolved.run_config.eval_every,
        rows=rows,
        wall_time_offset=checkpoint["wall_time_s"] if checkpoint else 0.0,
        progress=reporter,
    )
    try:
        algorithm = resolved.algorithm_cls(
            resolved.task, resolved.algorithm_config, config["seed"], logger, device
        )
        if checkpoint is not None:
            try:
                if "torch_rng" in checkpoint:
                    torch.set_rng_state(checkpoint["torch_rng"])
                algorithm.load_state_dict(checkpoint["algorithm"])
            except Exception as error:  # noqa: BLE001 - any mismatch is a damaged state
                raise run_dir.damaged(
                    run_dir.checkpoint_path,
                    f"its state does not fit {config['algo']} ({type(error).__name__}: {error})",
                ) from None
    except BaseException:
        evaluator.close()
        raise

    run_dir.path.mkdir(parents=True, exist_ok=True)
    if old_meta is None:
        run_dir.write_config(config)
        meta = new_meta(config, device)
        if branch is not None:
            meta["branched_from"] = branch
    else:
        meta = {**old_meta, "status": "running", "error": None, "ended": None}
        meta["resumes"] = int(meta.get("resumes", 0)) + (checkpoint is not None)
        if checkpoint is not None:
            resumed = resume_record(checkpoint["env_steps"])
            meta["resumed_on"] = [*meta.get("resumed_on", []), resumed]
            started_on = meta.get("cpu_capability")
            if started_on and started_on != resumed["cpu_capability"]:
                print(
                    f"{run_dir.path}: resumed on {resumed['cpu_capability']} where it started on "
                    f"{started_on}: from {resumed['env_steps']} steps its numbers may differ "
                    "from an uninterrupted run's, and its times are another CPU's",
                    file=sys.stderr,
                )
        if extended_from is not None:
            run_dir.write_config(config)
            extension = {"from_steps": extended_from, "to_steps": config["steps"]}
            meta["extensions"] = [*meta.get("extensions", []), extension]
    meta["horizon"] = resolved.task.horizon  # for analysis, which reads run directories only
    if os.environ.get("SLURM_JOB_ID"):  # provenance: every SLURM job that worked on this run
        meta["slurm_job_ids"] = [*meta.get("slurm_job_ids", []), os.environ["SLURM_JOB_ID"]]
    try:
        run_dir.write_meta(meta)
        run_dir.write_progress(rows)
        reporter.watch(lambda: algorithm.env_steps)
        algorithm.train(config["steps"])
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        try:
            run_dir.write_meta(finish_meta(meta, "failed", reason))
        except DiskFullError:
            pass  # meta.json keeps saying 'running'; stderr carries the reason
        raise RunFailed(f"{run_dir.path}: run failed: {reason}") from error
    finally:
        reporter.close()
        evaluator.close()
    run_dir.write_meta(finish_meta(meta, "done"))
    return "done"
