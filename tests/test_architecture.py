"""The shape of the code base: layers that depend one way, facts on the registry, one
evaluation-due rule.

Layers: the ground floor (settings, errors, the run-logger protocol, run-directory layout and
format, tasks) depends on nothing else of the suite; algorithms depend on the ground floor
only; analysis reads run directories (and the registry's facts), never the harness (run, cli,
perf, cost, frozen_models), which sits on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from algorithms import (
    UnknownAlgorithmError,
    algorithms_of_family,
    get_algorithm,
    list_algorithms,
    list_unavailable,
)
from benchmark.logger import NullLogger, RunLogger

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("algorithms", "benchmark")
HARNESS = (
    "benchmark.run",
    "benchmark.cli",
    "benchmark.perf",
    "benchmark.cost",
    "benchmark.frozen_models",
)
GROUND_FLOOR = (
    "benchmark.config",
    "benchmark.errors",
    "benchmark.jobs",
    "benchmark.logger",
    "benchmark.layout",
    "benchmark.rundir",
    "benchmark.tasks",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Modules of this project that ``path`` imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


GRAPH = {
    module_name(path): project_imports(path)
    for package in PACKAGES
    for path in sorted((ROOT / package).rglob("*.py"))
}


def within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(importers: tuple[str, ...] | str, forbidden: tuple[str, ...] | str) -> list:
    return [
        (module, target)
        for module, targets in GRAPH.items()
        if within(module, importers)
        for target in targets
        if within(target, forbidden)
    ]


def test_the_import_scan_sees_real_imports():
    assert "benchmark.run" in GRAPH["benchmark.cli"]
    assert "algorithms.common.planning" in GRAPH["algorithms.mbmpc"]


def test_algorithms_never_import_the_harness_or_analysis():
    assert not violations("algorithms", (*HARNESS, "benchmark.analysis"))


def test_analysis_never_imports_the_harness():
    assert not violations("benchmark.analysis", HARNESS)


def test_the_ground_floor_imports_no_higher_layer():
    assert not violations(GROUND_FLOOR, ("algorithms", *HARNESS, "benchmark.analysis"))


def test_grbal_finds_its_planner_in_the_planning_module_not_in_mbmpc():
    assert "algorithms.mbmpc" not in GRAPH["algorithms.grbal"]
    assert "algorithms.common.planning" in GRAPH["algorithms.grbal"]


def test_module_import_graph_has_no_cycle():
    modules = set(GRAPH)

    def resolve(target: str) -> str | None:
        while target and target not in modules:  # `from pkg import name` names a module or not
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {t for t in map(resolve, GRAPH[m]) if t and t != m} for m in modules}
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] if target in path else path
                pytest.fail(f"import cycle: {' -> '.join([*cycle, target])}")
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(modules):
        if module not in state:
            visit(module, [module])


def test_every_registered_algorithm_states_its_facts():
    for name in list_algorithms():
        cls = get_algorithm(name)
        assert cls.name == name
        assert cls.family in ("model-based", "model-free", "reference"), name
        assert isinstance(cls.off_policy, bool)
        assert cls.seconds_per_1000(None) > 0
        for preset in cls.presets:
            assert cls.seconds_per_1000(preset) > 0
    model_free = {"ppo", "trpo", "rllab_trpo", "ddpg", "sac", "td3", "a2c"}
    assert set(algorithms_of_family("model-free")) == model_free
    assert algorithms_of_family("reference") == ["random"]
    assert {n for n in list_algorithms() if get_algorithm(n).off_policy} == {"ddpg", "td3", "sac"}
    assert get_algorithm("metrpo").published_name == "ME-TRPO"
    assert get_algorithm("mbmpo").seconds_per_1000("quick") < get_algorithm(
        "mbmpo"
    ).seconds_per_1000(None)


def test_a_listed_but_unavailable_baseline_says_why_and_never_runs():
    [acktr] = [m for m in list_unavailable() if m.name == "acktr"]
    assert acktr.family == "model-free" and "sb3-contrib" in acktr.reason
    with pytest.raises(UnknownAlgorithmError, match="not available"):
        get_algorithm("acktr")


@pytest.mark.parametrize(
    ("eval_every", "logged", "env_steps", "total", "due"),
    [
        (100, [], 99, 1000, False),  # no grid point crossed yet
        (100, [], 100, 1000, True),  # reached one
        (100, [], 250, 1000, True),  # crossed two in one iteration: one evaluation
        (100, [200], 299, 1000, False),
        (100, [200], 300, 1000, True),
        (100, [200], 250, 250, True),  # the budget is spent: its last step is evaluated
        (100, [250], 250, 250, False),  # ...once
        (100, [100], 150, 1000, False),
    ],
)
def test_evaluation_due_rule(eval_every, logged, env_steps, total, due):
    logger = NullLogger(eval_every=eval_every)
    logger.rows = [{"env_steps": s} for s in logged]
    assert isinstance(logger, RunLogger)
    assert logger.evaluation_due(env_steps, total) is due
