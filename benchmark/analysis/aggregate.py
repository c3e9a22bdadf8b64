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
    "model_fit",
    "run_dir",
]
"""``algo`` is the run's label (its directory in results/runs/<experiment>/<task>/<label>/,
e.g. ``mbmpo_bias0.5``); ``algorithm`` the registered algorithm it ran; ``model_fit`` how its
dynamics models were fitted (:func:`model_fit_label`; '' for a model-free run)."""


def model_fit_label(algorithm_config: dict) -> str:
    """How a run fitted its dynamics models, from its recorded algorithm settings: the
    stopping rule and the caps per fit, e.g. 'official, <=500 epochs', 'official, <=500
    epochs, <=2000 updates' or 'patience 5 / 1%, <=500 epochs'. Tables carry it so that a
    variant fit is labelled wherever its returns appear; '' for an algorithm without a model
    fit."""
    if "model_max_epochs" not in algorithm_config:
        return ""
    cap = f"<={int(algorithm_config['model_max_epochs'])} epochs"
    if algorithm_config.get("model_max_updates") is not None:
        cap += f", <={int(algorithm_config['model_max_updates'])} updates"
    rule = algorithm_config.get("model_early_stopping")
    if rule == "patience":
        patience = int(algorithm_config.get("model_patience", 0))
        gain = float(algorithm_config.get("model_min_improvement", 0.0))
        rule = f"patience {patience} / {gain:.0%}"
    return f"{rule}, {cap}" if rule else cap


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
                "model_fit": model_fit_label(config.get("algorithm") or {}),
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


def select_labels(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The aggregated table with each of ``names`` made to name one set of runs.

    A name is a run label (``mbmpo_official``) or, where the same label was run in several
    experiments under the compared root, ``EXPERIMENT/LABEL`` (``fitrules/mbmpo_official``):
    the rows of that experiment's label are relabelled to the qualified name, so two
    experiments' runs of one label can be compared with each other. A bare label that several
    experiments ran is refused rather than pooled, since their runs differ in more than the
    label says (budget, settings). Raises ValueError naming what is there."""
    table = table.copy()
    for name in names:
        if "/" in name:
            experiment, label = name.split("/", 1)
            rows = (table["experiment"] == experiment) & (table["algo"] == label)
            if not rows.any():
                holders = sorted(set(table.loc[table["algo"] == label, "experiment"]))
                where = (
                    f"experiments with runs of {label!r}: {', '.join(holders)}"
                    if holders
                    else f"no experiment has runs of {label!r}"
                )
                raise ValueError(f"no runs of {name!r}; {where}")
            table.loc[rows, "algo"] = name
            continue
        experiments = sorted(set(table.loc[table["algo"] == name, "experiment"]))
        if not experiments:
            found = ", ".join(sorted(set(table["algo"]))) or "none"
            raise ValueError(f"no runs of {name!r}; found: {found}")
        if len(experiments) > 1:
            raise ValueError(
                f"{name!r} names runs of {len(experiments)} experiments "
                f"({', '.join(experiments)}); write EXPERIMENT/LABEL, e.g. "
                f"{experiments[-1]}/{name}"
            )
    return table
