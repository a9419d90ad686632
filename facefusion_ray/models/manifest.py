"""Read and validate `models/manifest.json`: the model zoo as data.

Each entry names a pinned source file, how to prepare it for a session (recipe id + version),
its tensors (names, shapes, layout, normalisation) and kind-specific parameters such as a
detector's default thresholds. New models are new entries; the format stays the same.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from facefusion_ray.assets.fetch import Asset, Source, UrlSource, WheelMemberSource
from facefusion_ray.errors import ModelError

MANIFEST_FORMAT_VERSION = 1
MODEL_KINDS = frozenset(
    {"detector", "landmarker", "recognizer", "swapper", "enhancer", "occluder", "classifier"}
)

_REPO_MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.json"
_BUNDLED_MANIFEST = Path(__file__).resolve().parents[1] / "_bundled_models" / "manifest.json"

ParameterValue = int | float | str | bool | tuple[int | float | str, ...]
_T = TypeVar("_T")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output. Inputs also say how pixels become values:
    value = (pixel * pixel_scale - mean) / std, channels in `channel_order`."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str
    layout: str | None = None
    channel_order: str | None = None
    pixel_scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Preparation:
    recipe: str
    version: int


@dataclass(frozen=True)
class ModelSpec:
    model_id: str
    kind: str
    description: str
    vendor: str
    license: str
    source: Asset
    preparation: Preparation
    size: tuple[int, int]
    template: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: Mapping[str, ParameterValue]

    def float_parameter(self, name: str) -> float:
        value = self._parameter(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ModelError(f"model {self.model_id}: parameter {name} is not a number")
        return float(value)

    def int_parameter(self, name: str) -> int:
        value = self._parameter(name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"model {self.model_id}: parameter {name} is not an integer")
        return value

    def _parameter(self, name: str) -> ParameterValue:
        if name not in self.parameters:
            raise ModelError(f"model {self.model_id}: manifest has no parameter {name}")
        return self.parameters[name]


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: Mapping[str, ModelSpec]

    def model(self, model_id: str) -> ModelSpec:
        try:
            return self.models[model_id]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise ModelError(f"unknown model {model_id!r}; the manifest has: {known}") from None


def default_manifest_path() -> Path:
    """The repository's models/manifest.json, or the copy bundled into an installed wheel."""
    if _REPO_MANIFEST.is_file():
        return _REPO_MANIFEST
    if _BUNDLED_MANIFEST.is_file():
        return _BUNDLED_MANIFEST
    raise ModelError(f"model manifest not found at {_REPO_MANIFEST} or {_BUNDLED_MANIFEST}")


def load_manifest(path: Path | None = None) -> Manifest:
    if path is None:
        return _load_default_manifest()
    return _parse_manifest_file(path)


def get_model_spec(model_id: str) -> ModelSpec:
    return load_manifest().model(model_id)


@lru_cache(maxsize=1)
def _load_default_manifest() -> Manifest:
    return _parse_manifest_file(default_manifest_path())


def _parse_manifest_file(path: Path) -> Manifest:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelError(f"cannot read model manifest {path}: {error}") from error
    try:
        return _parse_manifest(path, document)
    except _Invalid as error:
        raise ModelError(f"invalid model manifest {path}: {error}") from None


class _Invalid(Exception):
    pass


def _parse_manifest(path: Path, document: Any) -> Manifest:
    root = _mapping(document, "manifest")
    version = _field(root, "format_version", int, "manifest")
    if version != MANIFEST_FORMAT_VERSION:
        raise _Invalid(f"format_version {version} is not {MANIFEST_FORMAT_VERSION}")
    entries = _mapping(root.get("models"), "models")
    models = {
        model_id: _parse_model(model_id, _mapping(entry, f"models.{model_id}"))
        for model_id, entry in entries.items()
    }
    return Manifest(path=path, models=MappingProxyType(models))


def _parse_model(model_id: str, entry: Mapping[str, Any]) -> ModelSpec:
    where = f"models.{model_id}"
    kind = _field(entry, "kind", str, where)
    if kind not in MODEL_KINDS:
        raise _Invalid(f"{where}.kind {kind!r} is not one of {sorted(MODEL_KINDS)}")
    preparation = _mapping(entry.get("preparation"), f"{where}.preparation")
    template = entry.get("template")
    if template is not None and not isinstance(template, str):
        raise _Invalid(f"{where}.template must be a string or null")
    inputs = _list(entry.get("inputs"), f"{where}.inputs")
    outputs = _list(entry.get("outputs"), f"{where}.outputs")
    if not inputs or not outputs:
        raise _Invalid(f"{where} needs at least one input and one output")
    return ModelSpec(
        model_id=model_id,
        kind=kind,
        description=_field(entry, "description", str, where),
        vendor=_field(entry, "vendor", str, where),
        license=_field(entry, "license", str, where),
        source=_parse_source(model_id, _mapping(entry.get("source"), f"{where}.source")),
        preparation=Preparation(
            recipe=_field(preparation, "recipe", str, f"{where}.preparation"),
            version=_field(preparation, "version", int, f"{where}.preparation"),
        ),
        size=_size(entry.get("size"), f"{where}.size"),
        template=template,
        inputs=tuple(_parse_tensor(item, f"{where}.inputs[{i}]") for i, item in enumerate(inputs)),
        outputs=tuple(
            _parse_tensor(item, f"{where}.outputs[{i}]") for i, item in enumerate(outputs)
        ),
        parameters=MappingProxyType(
            _parse_parameters(entry.get("parameters", {}), f"{where}.parameters")
        ),
    )


def _parse_source(model_id: str, source: Mapping[str, Any]) -> Asset:
    where = f"models.{model_id}.source"
    file_name = _field(source, "file", str, where)
    locations = _list(source.get("locations"), f"{where}.locations")
    try:
        return Asset(
            name=f"model {model_id} ({file_name})",
            filename=file_name,
            sha256=_field(source, "sha256", str, where),
            sources=tuple(
                _parse_location(_mapping(item, f"{where}.locations[{i}]"), f"{where}[{i}]")
                for i, item in enumerate(locations)
            ),
        )
    except ValueError as error:
        raise _Invalid(str(error)) from None


def _parse_location(location: Mapping[str, Any], where: str) -> Source:
    kind = _field(location, "type", str, where)
    if kind == "url":
        return UrlSource(_field(location, "url", str, where))
    if kind == "wheel_member":
        return WheelMemberSource(
            requirement=_field(location, "requirement", str, where),
            member=_field(location, "member", str, where),
        )
    raise _Invalid(f"{where}.type {kind!r} is not 'url' or 'wheel_member'")


def _parse_tensor(item: Any, where: str) -> TensorSpec:
    tensor = _mapping(item, where)
    shape = _list(tensor.get("shape"), f"{where}.shape")
    if not all(isinstance(dim, int | str) and not isinstance(dim, bool) for dim in shape):
        raise _Invalid(f"{where}.shape must hold integers or symbolic names")
    return TensorSpec(
        name=_field(tensor, "name", str, where),
        shape=tuple(shape),
        dtype=_field(tensor, "dtype", str, where),
        layout=_optional(tensor, "layout", str, where),
        channel_order=_optional(tensor, "channel_order", str, where),
        pixel_scale=_optional_number(tensor, "pixel_scale", where),
        mean=_optional_numbers(tensor, "mean", where),
        std=_optional_numbers(tensor, "std", where),
    )


def _parse_parameters(value: Any, where: str) -> dict[str, ParameterValue]:
    parameters: dict[str, ParameterValue] = {}
    for name, item in _mapping(value, where).items():
        if isinstance(item, list):
            if not all(isinstance(element, int | float | str) for element in item):
                raise _Invalid(f"{where}.{name} must be a list of numbers or strings")
            parameters[name] = tuple(item)
        elif isinstance(item, int | float | str | bool):
            parameters[name] = item
        else:
            raise _Invalid(f"{where}.{name} must be a number, string, boolean or list")
    return parameters


def _size(value: Any, where: str) -> tuple[int, int]:
    items = _list(value, where)
    if len(items) != 2 or not all(isinstance(v, int) and v > 0 for v in items):
        raise _Invalid(f"{where} must be [width, height] in pixels")
    return items[0], items[1]


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(f"{where} must be a list")
    return value


def _field(mapping: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _Invalid(f"{where}.{key} must be a {kind.__name__}")
    return value


def _optional(mapping: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T | None:
    return None if mapping.get(key) is None else _field(mapping, key, kind, where)


def _optional_number(mapping: Mapping[str, Any], key: str, where: str) -> float | None:
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"{where}.{key} must be a number")
    return float(value)


def _optional_numbers(mapping: Mapping[str, Any], key: str, where: str) -> tuple[float, ...] | None:
    value = mapping.get(key)
    if value is None:
        return None
    items = _list(value, f"{where}.{key}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
        raise _Invalid(f"{where}.{key} must be a list of numbers")
    return tuple(float(v) for v in items)
