"""Behaviour kept bit for bit: every registered algorithm's short seeded run reproduces the
progress.csv fingerprint recorded before the refactor that moved the training loops into the
base classes (tests/golden.py says how they are made and when they may be recorded again)."""

from __future__ import annotations

import pytest

from algorithms import list_algorithms
from tests.golden import HOPPER_CASES, recorded, run_case


def test_every_registered_algorithm_has_a_fingerprint():
    missing = {f"{algo}-point2d" for algo in list_algorithms()} - set(recorded())
    assert not missing, f"record fingerprints for {sorted(missing)}: python -m tests.golden"


@pytest.mark.parametrize("name", sorted(recorded()))
def test_run_reproduces_its_recorded_fingerprint(tmp_path, name):
    if name not in HOPPER_CASES and name.removesuffix("-point2d") not in list_algorithms():
        pytest.fail(f"{name}: recorded for an algorithm that is no longer registered")
    assert run_case(name, tmp_path / "run") == recorded()[name]
