"""The training jobs of a workflow config: one per (experiment, task, algorithm label, seed).

Read by the workflow (workflow/rules/common.smk) and by ``mbbench plan``; imports nothing
heavy, because every SLURM job parses the workflow again.
"""

from __future__ import annotations

import json
import shlex
from typing import Any


def training_jobs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every training job of the config, as dicts of exp, task, algo (the label) and seed."""
    return [
        dict(exp=exp, task=task, algo=label, seed=seed)
        for exp, spec in config["experiments"].items()
        for task in spec["tasks"]
        for label in spec["algos"]
        for seed in spec["seeds"]
    ]


def job_settings(
    config: dict[str, Any], exp: str, label: str
) -> tuple[str, int, str | None, dict[str, Any]]:
    """(algorithm, steps, preset, settings) of one label of one experiment: the label's own
    values over the experiment's."""
    spec = config["experiments"][exp]
    algo = spec["algos"][label] or {}
    settings = {**spec.get("set", {}), **algo.get("set", {})}
    return algo.get("algo", label), algo.get("steps", spec["steps"]), algo.get("preset"), settings


def run_arguments(config: dict[str, Any], exp: str, label: str) -> list[str]:
    """``mbbench run`` arguments of one label's jobs (the algorithm, budget, preset and
    settings), shell-quoted: what the workflow's train rule passes."""
    algo, steps, preset, settings = job_settings(config, exp, label)
    args = [f"--algo {algo}", f"--steps {steps}"]
    if preset:
        args.append(f"--preset {preset}")
    args += [f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in settings.items()]
    return args


def schema_error_line(error: BaseException) -> str:
    """One line for a workflow config that failed its schema: where in the config (dotted path)
    and what is wrong, from the jsonschema ValidationError Snakemake's ``validate`` wraps."""
    candidates = [error.__cause__, error.__context__, *getattr(error, "args", ()), error]
    cause = next(c for c in candidates if c is error or hasattr(c, "absolute_path"))
    path = ".".join(str(p) for p in getattr(cause, "absolute_path", [])) or "(top level)"
    message = getattr(cause, "message", str(cause)).splitlines()[0]
    return f"config: {path}: {message}"
