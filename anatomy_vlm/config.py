"""Shared configuration helpers: typed dataclass configs read from plain dicts (YAML, checkpoints).

``typed_from_dict(cls, data, where)`` is the one reader every config section uses: unknown keys are
an error naming the section, a nested dataclass field is read from its own mapping (so configs
compose: ``ModelConfig.vit`` is a ``ViTConfig``), and a class with a ``preset`` classmethod accepts
``{"preset": "tiny", ...overrides}``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def typed_from_dict(cls: type[T], data: Any, where: str) -> T:
    """An instance of the dataclass ``cls`` from ``data`` (a mapping, an instance, or ``None`` for defaults)."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    data = dict(data)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    preset = data.pop("preset", None) if hasattr(cls, "preset") else None
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known | ({'preset'} if hasattr(cls, 'preset') else set()))}")
    for name, value in list(data.items()):
        nested = _dataclass_of(hints.get(name))
        if nested is not None and (isinstance(value, dict) or value is None):
            data[name] = typed_from_dict(nested, value, f"{where}.{name}")
        elif isinstance(value, list):
            data[name] = tuple(value) if _is_tuple(hints.get(name)) else value
    try:
        return cls.preset(preset, **data) if preset is not None else cls(**data)  # type: ignore[attr-defined]
    except TypeError as error:
        raise ValueError(f"{where}: {error}") from error


def _alternatives(hint: Any) -> tuple:
    """``X | Y`` -> ``(X, Y)``; anything else -> ``(hint,)``."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass a field holds (``X`` or ``X | None``), else ``None``."""
    for candidate in _alternatives(hint):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _is_tuple(hint: Any) -> bool:
    return any(c is tuple or typing.get_origin(c) is tuple for c in _alternatives(hint))


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain data (tuples as lists), the inverse of ``typed_from_dict``."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


__all__ = ["config_to_dict", "typed_from_dict"]
