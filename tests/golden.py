"""Fingerprints of short seeded runs, one per case below: the sha256 of progress.csv with its
timing columns removed (they measure the machine, not the algorithm).

A refactor that claims to keep behaviour must reproduce every recorded fingerprint bit for
bit (tests/test_golden.py). The point2d cases are the determinism test's
(tests/test_reliability.py); the hopper cases add a MuJoCo task with early terminations, the
ensemble's noise and bias ablation and ME-TRPO's random model per imagined step.

Fingerprints are recorded and checked on one torch thread (tests/__init__.py): with two they
changed for 8 of the 19 cases, so fingerprints taken with the machine's default thread count
held only on machines with as many cores.

Record the fingerprints again only when a change of results is intended, and say why in the
commit: ``python -m tests.golden --write``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import tempfile
from pathlib import Path

from tests.test_baselines import run
from tests.test_reliability import MODEL_BASED, case

GOLDEN_FILE = Path(__file__).parent / "data" / "golden_progress.json"

HOPPER_STEPS = 480  # 240 random steps + two iterations of 120: every iteration finishes an episode
HOPPER_EVAL = ["eval_every=250", "eval_episodes=2", "horizon=100"]
HOPPER_CASES: dict[str, tuple[str, list[str]]] = {
    "mbmpo-hopper-noisy": ("mbmpo", [*MODEL_BASED["mbmpo"], "model_bias_max=0.5"]),
    "metrpo-hopper-random-step": (
        "metrpo",
        [*MODEL_BASED["metrpo"], "model_assignment=random_step", "num_tasks=3"],
    ),
    "mbmpc-hopper": ("mbmpc", MODEL_BASED["mbmpc"]),
    "grbal-hopper": ("grbal", MODEL_BASED["grbal"]),
    "rebal-hopper": ("rebal", MODEL_BASED["rebal"]),
}
"""Model-based runs on a task whose episodes end early (Hopper falls)."""


def fingerprint(progress_csv: Path) -> str:
    """sha256 of ``progress_csv`` without the columns whose names start with wall_time or
    time_ (column order and every other cell's text kept)."""
    with open(progress_csv, newline="") as handle:
        table = list(csv.reader(handle))
    keep = [i for i, name in enumerate(table[0]) if not name.startswith(("wall_time", "time_"))]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([[row[i] for i in keep] for row in table])
    return hashlib.sha256(text.getvalue().encode()).hexdigest()


def run_case(name: str, out: Path) -> str:
    """Run the case ``name`` (``<algo>-point2d`` or a hopper case) into ``out``; its
    fingerprint."""
    if name in HOPPER_CASES:
        algo, settings = HOPPER_CASES[name]
        code = run(out, algo, "hopper", HOPPER_STEPS, [*settings, *HOPPER_EVAL])
    else:
        algo = name.removesuffix("-point2d")
        steps, settings, preset = case(algo)
        code = run(out, algo, "point2d", steps, settings, preset=preset)
    if code != 0:
        raise RuntimeError(f"case {name} exited with {code}")
    return fingerprint(out / "progress.csv")


def recorded() -> dict[str, str]:
    """The recorded fingerprints, by case name."""
    return json.loads(GOLDEN_FILE.read_text())


def main() -> None:
    from algorithms import list_algorithms

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"record into {GOLDEN_FILE}")
    args = parser.parse_args()
    names = [f"{algo}-point2d" for algo in list_algorithms()] + list(HOPPER_CASES)
    prints = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            prints[name] = run_case(name, Path(tmp) / name)
            print(name, prints[name], flush=True)
    if args.write:
        GOLDEN_FILE.parent.mkdir(exist_ok=True)
        GOLDEN_FILE.write_text(json.dumps(prints, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
