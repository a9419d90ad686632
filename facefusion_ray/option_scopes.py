"""What each field of a render's settings is for, declared beside the field's definition.

Every field says whether it shapes the per-frame analysis (which the analysis cache stores),
changes only the output's pixels, or neither (where and how fast the work runs). Keys are
computed from these declarations (`values_in_scope`), never from a hand-written list, so a
field added later is keyed by what it declares, and a field that declares nothing is refused.
Bounds and choices declared here are checked by `check_declared_values`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from facefusion_ray.errors import SettingsError


class Scope(StrEnum):
    # Shapes the analysis results that the cache stores, and so the pixels too.
    ANALYSIS = "analysis"
    # Changes the output's pixels, never the stored analysis.
    PIXELS = "pixels"
    # Changes where, how fast or with which resources the work runs, never a pixel.
    NEITHER = "neither"


_SCOPE = "scope"
_BOUNDS = "bounds"
_CHOICES = "choices"
_NESTED = "nested"
_LABEL = "label"


def declared(
    default: Any,
    scope: Scope,
    *,
    bounds: tuple[float | None, float | None] | None = None,
    choices: Sequence[object] | None = None,
    label: str | None = None,
) -> Any:
    """A dataclass field with its scope, and optionally its inclusive bounds or choices;
    `label` names the field in error messages (default: its name with spaces)."""
    metadata: dict[str, object] = {_SCOPE: scope}
    if label is not None:
        metadata[_LABEL] = label
    if bounds is not None:
        metadata[_BOUNDS] = bounds
    if choices is not None:
        metadata[_CHOICES] = tuple(choices)
    return dataclasses.field(default=default, metadata=metadata)


def nested(factory: Callable[[], Any]) -> Any:
    """A field holding another settings dataclass whose own fields declare their scopes."""
    return dataclasses.field(default_factory=factory, metadata={_NESTED: True})


def choices_of(owner: type, name: str) -> tuple[object, ...] | None:
    field = {field.name: field for field in dataclasses.fields(owner)}[name]
    return field.metadata.get(_CHOICES)


def values_in_scope(settings: Any, scope: Scope, prefix: str = "") -> dict[str, object]:
    """`{dotted field path: value}` of every field of `settings` declared with `scope`."""
    values: dict[str, object] = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        path = prefix + field.name
        if field.metadata.get(_NESTED):
            values.update(values_in_scope(value, scope, path + "."))
            continue
        declared_scope = field.metadata.get(_SCOPE)
        if declared_scope is None:
            raise TypeError(f"{type(settings).__name__}.{field.name} declares no scope")
        if declared_scope is scope:
            values[path] = value
    return values


def check_declared_values(settings: Any) -> None:
    """SettingsError for the first field outside its declared bounds or choices."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        label = field.metadata.get(_LABEL) or field.name.replace("_", " ")
        choices = field.metadata.get(_CHOICES)
        if choices is not None and isinstance(value, tuple):
            if not value or any(item not in choices for item in value):
                raise SettingsError(f"{label} are some of {' '.join(map(str, choices))}")
        elif choices is not None and value not in choices:
            raise SettingsError(f"unknown {label}: {value}")
        bounds = field.metadata.get(_BOUNDS)
        if bounds is not None and value is not None:
            _check_bounds(label, value, bounds)


def _check_bounds(label: str, value: float, bounds: tuple[float | None, float | None]) -> None:
    low, high = bounds
    if low is not None and high is not None:
        if not low <= value <= high:
            raise SettingsError(f"{label} must be between {low:g} and {high:g}")
    elif low is not None and value < low:
        raise SettingsError(f"{label} must be at least {low:g}")
    elif high is not None and value > high:
        raise SettingsError(f"{label} must be at most {high:g}")
