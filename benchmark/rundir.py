"""One run = one directory: ``progress.csv``, ``config.yaml``, ``meta.json``, ``checkpoint.pt``.

Every file is written atomically (a temporary file in the same directory, fsync, rename), so a
run killed at any moment leaves each file either as it was or complete, never truncated.
``progress.csv`` is rewritten whole at each evaluation point (it is small); the checkpoint
records how many of its rows it covers, so a resumed run drops rows logged after the last
checkpoint and logs them again: no duplicates, no gaps.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from benchmark.errors import DiskFullError, DivergenceError, RunDirError
from benchmark.logger import Policy, RunLogger
from benchmark.progress import ProgressReporter

PROGRESS = "progress.csv"
CONFIG = "config.yaml"
META = "meta.json"
CHECKPOINT = "checkpoint.pt"
REQUIRED_COLUMNS = ["env_steps", "wall_time_s", "return_mean", "return_std", "eval_episodes"]
CHECKPOINT_FORMAT = 2
"""Version of the checkpoint layout; a checkpoint of a newer format is refused."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole.

    Raises DiskFullError, naming the file, when the disk is full.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                error.errno,
                f"disk full while writing {path} ({len(data)} bytes); the previous "
                "version is intact: free space and run the same command to resume",
            ) from error
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def _parse_cell(text: str) -> float | int:
    if text == "":
        return math.nan
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_progress(path: Path) -> list[dict[str, float | int]]:
    """Rows of a progress.csv as dicts of numbers (empty cells become NaN)."""
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise RunDirError(f"{path}: not a progress file (missing columns {missing})")
            return [{k: _parse_cell(v) for k, v in row.items()} for row in reader]
    except RunDirError:
        raise
    except (TypeError, ValueError, csv.Error) as error:  # bad cells, bad UTF-8, bad CSV
        raise RunDirError(f"{path}: malformed progress file ({error})") from None


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    names = ["mbbench", "torch", "numpy", "mujoco", "gymnasium", "stable-baselines3", "sb3-contrib"]
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str:
    """The commit of the source tree this package runs from, or 'unknown'."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def progress_path(self) -> Path:
        return self.path / PROGRESS

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def meta_path(self) -> Path:
        return self.path / META

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def exists(self) -> bool:
        return self.meta_path.exists()

    def read_meta(self) -> dict[str, Any]:
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, ValueError) as error:  # ValueError: bad JSON or bad UTF-8
            raise self.damaged(self.meta_path, f"unreadable run metadata ({error})") from None
        if not isinstance(meta, dict):
            raise self.damaged(self.meta_path, "run metadata is not a JSON object")
        return meta

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def read_config(self) -> dict[str, Any]:
        try:
            config = yaml.safe_load(self.config_path.read_text())
        except (OSError, ValueError, yaml.YAMLError) as error:  # ValueError: bad UTF-8
            reason = " ".join(str(error).split())
            raise self.damaged(self.config_path, f"unreadable config ({reason})") from None
        if not isinstance(config, dict):
            raise self.damaged(self.config_path, "not a config mapping")
        return config

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def write_progress(self, rows: list[dict[str, Any]]) -> None:
        columns = list(REQUIRED_COLUMNS)
        for row in rows:
            columns += [k for k in row if k not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        # An empty cell and NaN are one thing (read_progress reads both as NaN): writing NaN
        # empty keeps a resumed run's file identical to an uninterrupted one's.
        writer.writerows(
            {k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
            for row in rows
        )
        atomic_write_text(self.progress_path, buffer.getvalue())

    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(self.checkpoint_path, buffer.getvalue())

    def damaged(self, path: Path, what: str) -> RunDirError:
        """The one-line error for a file of this run that cannot be used, and what to do."""
        return RunDirError(
            f"{path}: {what}; nothing in {self.path} was changed: move that directory aside "
            "and run the same command to start the run again"
        )

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint (None if there is none), checked to be one this version wrote."""
        if not self.checkpoint_path.exists():
            return None
        try:
            # weights_only: a checkpoint holds tensors and plain containers, never code.
            checkpoint = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
            # Only the error's kind: torch's own message advises weights_only=False, which
            # would not mend a damaged file (and would run code from it).
            raise self.damaged(
                self.checkpoint_path, f"corrupt or truncated checkpoint ({type(error).__name__})"
            ) from None
        if not isinstance(checkpoint, dict) or "format_version" not in checkpoint:
            raise self.damaged(self.checkpoint_path, "not a checkpoint of this suite")
        if checkpoint["format_version"] != CHECKPOINT_FORMAT:
            raise self.damaged(
                self.checkpoint_path,
                f"checkpoint format {checkpoint['format_version']!r}, this version reads "
                f"{CHECKPOINT_FORMAT}",
            )
        expected = {
            "config": dict,
            "env_steps": int,
            "progress_rows": int,
            "wall_time_s": float,
            "algorithm": dict,
        }
        for key, kind in expected.items():
            if not isinstance(checkpoint.get(key), kind):
                raise self.damaged(
                    self.checkpoint_path,
                    f"checkpoint entry {key!r} is missing or not a {kind.__name__}",
                )
        return checkpoint


class Evaluator:
    """The evaluation protocol shared by every algorithm.

    ``episodes`` episodes of a policy on a separate env at the task's horizon; those steps are
    not learning samples. Episode i always resets with the same seed, so every evaluation point
    of a run (and of every algorithm with the same run seed) sees the same start states.
    """

    def __init__(self, task: Any, seed: int, episodes: int) -> None:
        self.env = task.make_env(evaluation=True)
        self.episodes = episodes
        self.reset_seeds = [
            int(s) for s in np.random.SeedSequence([seed, 0xE7A1]).generate_state(episodes)
        ]

    def __call__(self, act: Policy) -> tuple[float, float]:
        """Mean and std of the undiscounted episode return of ``act(obs) -> action``.

        An ``act`` with a ``reset()`` method (a controller that adapts to the episode's
        transitions) is told when each episode starts.
        """
        returns = []
        for reset_seed in self.reset_seeds:
            obs, _ = self.env.reset(seed=reset_seed)
            if hasattr(act, "reset"):
                act.reset()
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = self.env.step(act(obs))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
        return float(np.mean(returns)), float(np.std(returns))

    def close(self) -> None:
        self.env.close()


class DirectoryLogger(RunLogger):
    """The run logger of a run directory: evaluation, progress rows, checkpoints.

    ``log`` refuses non-finite values (the run has diverged); ``checkpoint`` saves the
    algorithm's state together with how many progress rows it covers.
    """

    def __init__(
        self,
        run_dir: RunDir,
        evaluator: Evaluator,
        config: dict[str, Any],
        eval_every: int,
        rows: list[dict[str, Any]] | None = None,
        wall_time_offset: float = 0.0,
        progress: ProgressReporter | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.evaluator = evaluator
        self.config = config
        self.eval_every = eval_every
        self.rows: list[dict[str, Any]] = list(rows or [])
        self._start = time.monotonic() - wall_time_offset
        self.progress = progress
        """Shows the run's progress (a bar, or a line per evaluation point); None: silent."""

    @property
    def wall_time(self) -> float:
        return time.monotonic() - self._start

    def evaluate(self, act: Policy) -> tuple[float, float]:
        return self.evaluator(act)

    def log(self, env_steps: int, return_mean: float, return_std: float, **metrics: Any) -> None:
        """Append one evaluation point and write progress.csv."""
        row = {
            "env_steps": int(env_steps),
            "wall_time_s": round(self.wall_time, 3),
            "return_mean": return_mean,
            "return_std": return_std,
            "eval_episodes": self.evaluator.episodes,
            **metrics,
        }
        for key, value in row.items():
            if isinstance(value, int | float) and not math.isfinite(value):
                raise DivergenceError(f"{key} is {value} at env_steps={env_steps}")
        self.rows.append(row)
        self.run_dir.write_progress(self.rows)
        if self.progress is not None:
            self.progress.evaluation(env_steps, return_mean, return_std)

    def phase(self, name: str) -> None:
        if self.progress is not None:
            self.progress.set_phase(name)

    def checkpoint(self, env_steps: int, state: dict[str, Any]) -> None:
        """Save the algorithm state; a resumed run continues from here."""
        self.run_dir.save_checkpoint(
            {
                "format_version": CHECKPOINT_FORMAT,
                "config": self.config,
                "env_steps": int(env_steps),
                "progress_rows": len(self.rows),
                "wall_time_s": self.wall_time,
                "torch_rng": torch.get_rng_state(),
                "algorithm": state,
            }
        )


def new_meta(config: dict[str, Any], device: str) -> dict[str, Any]:
    return {
        "algo": config["algo"],
        "task": config["task"],
        "seed": config["seed"],
        "status": "running",
        "error": None,
        "device": device,
        **process_machine(),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "started": _now(),
        "ended": None,
        "resumes": 0,
    }


def process_machine() -> dict[str, Any]:
    """What this process runs on: the host, and what a run's floats depend on besides the seed
    (README, "Reliability"): the thread count and the vector instructions torch's kernels
    use."""
    return {
        "host": socket.gethostname(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def resume_record(env_steps: int) -> dict[str, Any]:
    """What meta.json's ``resumed_on`` list keeps of a process that resumed a run: where it
    took over (real steps), when, and on what (host, thread count, vector instructions).
    Timings and floats after ``env_steps`` are that machine's: a run resumed on another kind
    of CPU (AVX2 after AVX512, say) may differ from an uninterrupted one from there on."""
    return {"env_steps": int(env_steps), "started": _now(), **process_machine()}


def finish_meta(meta: dict[str, Any], status: str, error: str | None = None) -> dict[str, Any]:
    """meta.json at a run's end: its status, the error if it failed, the time, and the peak
    resident memory of the process that ended it (what a scheduler's memory request must
    cover; a resumed run's peak is its last process's)."""
    return {
        **meta,
        "status": status,
        "error": error,
        "ended": _now(),
        "peak_rss_mb": peak_rss_mb(),
        "cpu_time_s": cpu_time_s(),
    }


def cpu_time_s() -> float:
    """CPU seconds (user and system, all threads) of this process so far: the work done,
    which, unlike wall time, other processes on the machine hardly change."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 1)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in megabytes (Linux reports KiB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
