"""Typed settings: dataclasses built from TOML/JSON tables with every value checked against its annotation.

`from_dict(cls, table)` refuses unknown keys and values of the wrong type (naming the setting); `check_choices`
checks `Literal` fields of a dataclass built in Python.
"""

from __future__ import annotations

import dataclasses
import types
import typing

from videomae.errors import ConfigError, VideoMAEError


def _strip_optional(tp):
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def coerce(value, tp, key: str):
    """Check and convert a TOML/JSON value to the annotated field type."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} cannot be empty")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table of settings, got {value!r}")
        return from_dict(tp, value, key + ".")
    origin = typing.get_origin(tp) or tp
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key} must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if origin is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if origin is str and isinstance(value, str):
        return value
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis and len(value) != len(args):
            raise ConfigError(f"{key} expects {len(args)} values, got {len(value)}: {list(value)}")
        item = args[0] if args else typing.Any
        items = [coerce(v, item, f"{key}[{i}]") if item is not typing.Any else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict and isinstance(value, dict):
        return dict(value)
    raise ConfigError(f"{key} expects {getattr(tp, '__name__', tp)}, got {value!r}")


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a nested dict; unknown keys raise with the list of valid ones."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = set(data) - set(names)
    if unknown:
        raise ConfigError(f"unknown setting {prefix + sorted(unknown)[0]!r}; valid: {', '.join(names)}")
    return cls(**{k: coerce(v, hints[k], prefix + k) for k, v in data.items()})


def check_choices(settings, prefix: str = "", error: type[VideoMAEError] = ConfigError) -> None:
    """Raise `error` naming the field when a `Literal`-typed field of dataclass `settings` holds another value."""
    hints = typing.get_type_hints(type(settings))
    for field in dataclasses.fields(settings):
        tp, _ = _strip_optional(hints[field.name])
        value = getattr(settings, field.name)
        if typing.get_origin(tp) is typing.Literal and value is not None and value not in typing.get_args(tp):
            raise error(f"{prefix}{field.name} must be one of {list(typing.get_args(tp))}, got {value!r}")
