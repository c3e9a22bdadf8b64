"""All run directories under a root into one tidy table (one row per evaluation point).

Runs that failed, are still running, or whose files are malformed are kept, with their
status and error, as one row with no evaluation columns: they are never silently dropped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from benchmark.errors import RunDirError
from benchmark.layout import parse_run_dir
from benchmark.rundir import RunDir, read_progress

ID_COLUMNS = [
    "experiment",
    "task",
    "algo",
    "algorithm",
    "seed",
    "horizon",
    "status",
    "error",
    "run_dir",
]
"""``algo`` is the run's label (its directory in results/runs/<experiment>/<task>/<label>/,
e.g. ``mbmpo_bias0.5``); ``algorithm`` the registered algorithm it ran."""


def find_runs(root: str | Path) -> list[RunDir]:
    """Run directories (those with a meta.json) under ``root``, sorted by path."""
    return [RunDir(p.parent) for p in sorted(Path(root).rglob("meta.json"))]


def aggregate(root: str | Path, warn: bool = True) -> pd.DataFrame:
    """One tidy DataFrame of every evaluation point of every run under ``root``."""
    root = Path(root)
    frames = []
    for run in find_runs(root):
        ids: dict[str, object] = {"run_dir": str(run.path)}
        try:
            meta = run.read_meta()
            config = run.read_config()
            location = parse_run_dir(root, run.path)
            ids |= {
                "experiment": location.experiment if location else "",
                "task": config["task"],
                "algo": location.label if location else config["algo"],
                "algorithm": config["algo"],
                "seed": int(config["seed"]),
                "horizon": meta.get("horizon", ""),  # older runs did not record it
                "status": meta.get("status", "unknown"),
                "error": meta.get("error") or "",
            }
            rows = read_progress(run.progress_path) if run.progress_path.exists() else []
        except (RunDirError, KeyError, ValueError, OSError) as error:
            if warn:
                print(f"warning: {run.path}: malformed run ({error})", file=sys.stderr)
            ids |= {"status": "malformed", "error": str(error)}
            rows = []
        frame = pd.DataFrame(rows) if rows else pd.DataFrame([{}])
        for key in ID_COLUMNS:
            frame[key] = ids.get(key, "")
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=ID_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    other = [c for c in table.columns if c not in ID_COLUMNS]
    return table[ID_COLUMNS + other]
