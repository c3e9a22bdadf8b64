"""Where a run's directory lives: ``<runs root>/<experiment>/<task>/<label>/seed<k>/``.

The one place that knows the layout: the workflow's training jobs, ``mbbench run``'s default
``--out`` and the aggregation all use it. ``label`` is the algorithm's name, or the
experiment's label for a variant of it (``mbmpo_bias0.5``). Imports nothing heavy, so the
workflow can use it while it is parsed.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

DEFAULT_RUNS_ROOT = Path("results/runs")
MANUAL_EXPERIMENT = "manual"
"""The experiment of runs started by hand (``mbbench run`` without ``--out``)."""


class RunLocation(NamedTuple):
    """The parts of a run directory's path below the runs root."""

    experiment: str
    task: str
    label: str
    seed: int


def run_dir(root: str | Path, experiment: str, task: str, label: str, seed: int | str) -> Path:
    """The run directory of one (experiment, task, label, seed) under the runs root."""
    return Path(root) / experiment / task / label / f"seed{seed}"


def parse_run_dir(root: str | Path, path: str | Path) -> RunLocation | None:
    """The location of ``path`` below ``root``, or None where it does not follow the layout.

    The last four parts of the path are read, so a folder that holds several runs roots
    (``results/reference/``, one per shipped experiment) names its runs as each root does."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return None
    if len(parts) < 4 or not parts[-1].startswith("seed") or not parts[-1][4:].isdigit():
        return None
    return RunLocation(parts[-4], parts[-3], parts[-2], int(parts[-1][4:]))
