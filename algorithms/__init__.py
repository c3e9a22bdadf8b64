"""Algorithm registry.

Algorithms register with ``@register("name")``. Outside packages add theirs through the entry
point group ``mbbench.algorithms`` (an entry point names an :class:`Algorithm` subclass):

    [project.entry-points."mbbench.algorithms"]
    myalgo = "mypackage.myalgo:MyAlgo"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points

from algorithms.base import Algorithm, AlgorithmConfig, Family

ENTRY_POINT_GROUP = "mbbench.algorithms"
_REGISTRY: dict[str, type[Algorithm]] = {}
# Built-in algorithm modules, imported on first lookup so `import algorithms` stays cheap.
_BUILTIN_MODULES = [
    "algorithms.random_policy",
    "algorithms.mbmpo",
    "algorithms.mbmpc",
    "algorithms.grbal",
    "algorithms.rllab_trpo",
    "algorithms.sb3",
]
_loaded = False


class UnknownAlgorithmError(KeyError):
    """Raised for an algorithm name that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def register(name: str) -> Callable[[type[Algorithm]], type[Algorithm]]:
    """Class decorator: make an :class:`Algorithm` available as ``name``."""

    def decorate(cls: type[Algorithm]) -> type[Algorithm]:
        if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
            raise TypeError(f"{cls!r} is not an Algorithm subclass")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"algorithm {name!r} is already registered by {_REGISTRY[name]!r}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


@dataclass(frozen=True)
class UnavailableAlgorithm:
    """A baseline the paper used that the suite lists but cannot run (no implementation in
    the libraries it builds on): it is shown as not available, never run or relabelled."""

    name: str
    family: Family
    reason: str


_UNAVAILABLE: dict[str, UnavailableAlgorithm] = {}
_BROKEN_PLUGINS: dict[str, str] = {}
"""Entry-point algorithms whose import failed: name -> why (reported, never raised)."""


def register_unavailable(name: str, family: Family, reason: str) -> None:
    """List ``name`` as a baseline that is not available, and why."""
    _UNAVAILABLE[name] = UnavailableAlgorithm(name, family, reason)


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        import_module(module)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in _REGISTRY:
            continue
        try:
            register(entry.name)(entry.load())
        except Exception as error:  # noqa: BLE001 - a broken plugin must not break the rest
            reason = " ".join(f"{type(error).__name__}: {error}".split())
            _BROKEN_PLUGINS[entry.name] = f"plugin {entry.value!r} failed to load ({reason})"


def list_algorithms() -> list[str]:
    """Names of the registered algorithms (built-in and plugins)."""
    _load_all()
    return sorted(_REGISTRY)


def list_unavailable() -> list[UnavailableAlgorithm]:
    """Baselines that are listed but not available, sorted by name."""
    _load_all()
    return [_UNAVAILABLE[name] for name in sorted(_UNAVAILABLE)]


def broken_plugins() -> dict[str, str]:
    """Plugin algorithms (entry points) that failed to load, and why."""
    _load_all()
    return dict(_BROKEN_PLUGINS)


def algorithms_of_family(family: Family) -> list[str]:
    """Registered algorithms of one family ('model-based', 'model-free', 'reference')."""
    return [name for name in list_algorithms() if _REGISTRY[name].family == family]


def get_algorithm(name: str) -> type[Algorithm]:
    """The algorithm class registered as ``name``."""
    _load_all()
    if name in _BROKEN_PLUGINS:
        raise UnknownAlgorithmError(f"algorithm {name!r}: {_BROKEN_PLUGINS[name]}")
    if name in _UNAVAILABLE:
        raise UnknownAlgorithmError(
            f"algorithm {name!r} is not available: {_UNAVAILABLE[name].reason}"
        )
    if name not in _REGISTRY:
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}; choose from: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]


__all__ = [
    "Algorithm",
    "AlgorithmConfig",
    "UnavailableAlgorithm",
    "UnknownAlgorithmError",
    "algorithms_of_family",
    "broken_plugins",
    "get_algorithm",
    "list_algorithms",
    "list_unavailable",
    "register",
    "register_unavailable",
]
