"""Typed, validated configuration dataclasses.

Configs are dataclasses with a docstring per field (CleanRL style). Bounds and choices live in
the field's metadata through :func:`param`, so one declaration gives the default, the
documentation and the check. :func:`apply_overrides` takes ``key=value`` strings from the
command line, parses each value as YAML and checks it against the field's type and bounds
before anything runs.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import math
import textwrap
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from benchmark.errors import ConfigError

C = TypeVar("C")


def param(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with numeric bounds checked by :func:`validate`."""
    bounds = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt}.items() if v is not None}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: default.copy(), metadata=bounds)
    return dataclasses.field(default=default, metadata=bounds)


_BOUND_CHECKS = {
    "ge": (lambda v, b: v >= b, ">="),
    "gt": (lambda v, b: v > b, ">"),
    "le": (lambda v, b: v <= b, "<="),
    "lt": (lambda v, b: v < b, "<"),
}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError. Only lossless conversions."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: {value!r} is not {_type_name(tp)}"
        )
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        item_type = args[0] if args else Any
        return tuple(_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value!r}")
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r} ({type(value).__name__})")


def fields_of(cls: type) -> dict[str, tuple[Any, dataclasses.Field]]:
    """Field name -> (resolved type, Field) of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls)}


def validate(config: Any, prefix: str = "") -> None:
    """Check every field of a config dataclass against its type and bounds."""
    for name, (tp, fld) in fields_of(type(config)).items():
        key = f"{prefix}{name}"
        value = getattr(config, name)
        coerced = _coerce(value, tp, key)
        if coerced != value or type(coerced) is not type(value):
            object.__setattr__(config, name, coerced)
        for bound_name, bound in fld.metadata.items():
            if bound_name in _BOUND_CHECKS and coerced is not None:
                check, symbol = _BOUND_CHECKS[bound_name]
                if not check(coerced, bound):
                    raise ConfigError(f"{key}: must be {symbol} {bound}, got {coerced!r}")
    check_extra = getattr(config, "check", None)
    if callable(check_extra):
        check_extra()


def unknown_key_error(key: str, valid: list[str], what: str = "config key") -> ConfigError:
    """A ConfigError for an unknown key that suggests the closest valid ones."""
    close = difflib.get_close_matches(key, valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return ConfigError(f"unknown {what} {key!r}{hint}; valid keys: {', '.join(sorted(valid))}")


def apply_overrides(config: C, overrides: dict[str, Any], prefix: str = "") -> C:
    """A copy of ``config`` with ``overrides`` applied and validated."""
    known = fields_of(type(config))
    for key in overrides:
        if key not in known:
            raise unknown_key_error(f"{prefix}{key}", [f"{prefix}{k}" for k in known])
    updated = dataclasses.replace(config, **overrides)
    validate(updated, prefix)
    return updated


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """Parse ``["key=value", ...]``; values are read as YAML (``1e-3``, ``[64, 64]``, ``true``)."""
    parsed: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            parsed[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"{key}: cannot parse value {raw!r}: {error}") from None
    return parsed


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML-friendly data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def from_dict(cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Build and validate a config dataclass from plain data (e.g. a YAML mapping)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    return apply_overrides(cls(), data, prefix)


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it (CleanRL style), through the class's
    dataclass bases; a subclass's docstring wins."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # no source (built dynamically, frozen)
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def bounds_text(fld: dataclasses.Field) -> str:
    """A field's numeric bounds as text, e.g. '>= 0, < 1' ('' without bounds)."""
    return ", ".join(
        f"{_BOUND_CHECKS[name][1]} {bound}"
        for name, bound in fld.metadata.items()
        if name in _BOUND_CHECKS
    )


def describe(config: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Every field of a config dataclass instance: key, value, type, bounds, docstring."""
    docs, values = field_docs(type(config)), to_dict(config)
    return [
        {
            "key": f"{prefix}{name}",
            "value": values[name],
            "type": _type_name(tp),
            "bounds": bounds_text(fld),
            "doc": docs.get(name, ""),
        }
        for name, (tp, fld) in fields_of(type(config)).items()
    ]


def load_settings_file(path: str) -> dict[str, Any]:
    """A flat YAML mapping of settings (the keys ``--set`` takes), as ``mbbench config
    --format yaml`` writes it."""
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as error:
        raise ConfigError(f"--config {path}: cannot read it ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: not valid YAML ({error})") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"--config {path}: expected a mapping of setting: value")
    return data
