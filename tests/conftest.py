from __future__ import annotations

from pathlib import Path

import pytest

# The CPU and one thread for every test process: tests/__init__.py.


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch):
    """The algorithm registry, swapped for a copy the test may add to; restored afterwards.

    The built-ins are loaded into the real registry first: loading them while the copy is in
    place would register them into the copy only and leave the real registry empty (and marked
    loaded) for every later test. A test that re-reads entry points also sets ``_loaded`` False.
    """
    import algorithms

    algorithms.list_algorithms()
    monkeypatch.setattr(algorithms, "_REGISTRY", dict(algorithms._REGISTRY))
    monkeypatch.setattr(algorithms, "_BROKEN_PLUGINS", dict(algorithms._BROKEN_PLUGINS))
    return algorithms


@pytest.fixture(scope="session")
def quick_mbmpo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quick MB-MPO run on point2d of 3000 steps (5 iterations of 600), started with that
    budget; shared by the extension, branch and frozen-model tests. Read it, never write it."""
    from tests.test_kill_resume import _extend_run

    out = tmp_path_factory.mktemp("quick_mbmpo") / "run"
    assert _extend_run(out, 3000, extend=False) == 0
    return out
