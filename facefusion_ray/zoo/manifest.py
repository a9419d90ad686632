"""Read and validate `models/manifest.json`: the model zoo as data.

Each entry names its source file (pinned by SHA-256, or, for files only their publisher hosts,
by the publisher's CRC32 `.hash` file until the store's lock file pins them at first pull), how
to prepare it for a session (recipe id + version) and which extra variants can be prepared (e.g.
FP16), its tensors (names, shapes, layout, normalisation) and kind-specific parameters such as a
detector's default thresholds. New models are new entries; the format stays the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from facefusion_ray.assets.fetch import Source, UrlSource, WheelMemberSource
from facefusion_ray.errors import ModelError
from facefusion_ray.zoo.model_spec import (
    Manifest,
    ModelSource,
    ModelSpec,
    ParameterValue,
    Preparation,
    TensorSpec,
    UpstreamHash,
)
from facefusion_ray.zoo.preparation import RECIPES

MANIFEST_FORMAT_VERSION = 1
MODEL_KINDS = frozenset(
    {
        "detector",
        "landmarker",
        "recognizer",
        "swapper",
        "embedding_converter",
        "enhancer",
        "occluder",
        "classifier",
    }
)
UPSTREAM_HASH_ALGORITHMS = frozenset({"crc32"})
TENSOR_DTYPES = frozenset({"float32", "float16", "float64", "int64", "int32", "uint8", "bool"})

_ROOT_KEYS = frozenset({"format_version", "reference", "models"})
_MODEL_KEYS = frozenset(
    {
        "kind",
        "description",
        "vendor",
        "license",
        "source",
        "preparation",
        "variants",
        "fp16_model",
        "size",
        "template",
        "inputs",
        "outputs",
        "parameters",
        "unverified",
    }
)
_SOURCE_KEYS = frozenset({"file", "sha256", "locations", "upstream_hash"})
_TENSOR_KEYS = frozenset(
    {"name", "shape", "dtype", "layout", "channel_order", "pixel_scale", "mean", "std"}
)
_SHA256 = re.compile(r"[0-9a-f]{64}")

_REPO_MANIFEST = Path(__file__).resolve().parents[2] / "models" / "manifest.json"
_BUNDLED_MANIFEST = Path(__file__).resolve().parents[1] / "_bundled_models" / "manifest.json"

_T = TypeVar("_T")


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
    _known_keys(root, _ROOT_KEYS, "manifest")
    version = _field(root, "format_version", int, "manifest")
    if version != MANIFEST_FORMAT_VERSION:
        raise _Invalid(f"format_version {version} is not {MANIFEST_FORMAT_VERSION}")
    _parse_reference(root.get("reference"))
    entries = _mapping(root.get("models"), "models")
    models = {
        model_id: _parse_model(model_id, _mapping(entry, f"models.{model_id}"))
        for model_id, entry in entries.items()
    }
    for spec in models.values():
        _check_fp16_model(spec, models)
    return Manifest(path=path, models=MappingProxyType(models))


def _parse_reference(value: Any) -> None:
    """Where the constants came from: free-form, but at least a repository and a version."""
    if value is None:
        return
    reference = _mapping(value, "reference")
    _field(reference, "repository", str, "reference")
    _field(reference, "version", str, "reference")


def _parse_model(model_id: str, entry: Mapping[str, Any]) -> ModelSpec:
    where = f"models.{model_id}"
    _known_keys(entry, _MODEL_KEYS, where)
    kind = _field(entry, "kind", str, where)
    if kind not in MODEL_KINDS:
        raise _Invalid(f"{where}.kind {kind!r} is not one of {sorted(MODEL_KINDS)}")
    template = entry.get("template")
    if template is not None and not isinstance(template, str):
        raise _Invalid(f"{where}.template must be a string or null")
    inputs = _list(entry.get("inputs"), f"{where}.inputs")
    outputs = _list(entry.get("outputs"), f"{where}.outputs")
    if not inputs or not outputs:
        raise _Invalid(f"{where} needs at least one input and one output")
    variants = _mapping(entry.get("variants", {}), f"{where}.variants")
    unverified = _list(entry.get("unverified", []), f"{where}.unverified")
    if not all(isinstance(note, str) for note in unverified):
        raise _Invalid(f"{where}.unverified must be a list of strings")
    spec = ModelSpec(
        model_id=model_id,
        kind=kind,
        description=_field(entry, "description", str, where),
        vendor=_field(entry, "vendor", str, where),
        license=_field(entry, "license", str, where),
        source=_parse_source(_mapping(entry.get("source"), f"{where}.source"), f"{where}.source"),
        preparation=_parse_preparation(entry.get("preparation"), f"{where}.preparation"),
        variants=MappingProxyType(
            {
                name: _parse_preparation(item, f"{where}.variants.{name}")
                for name, item in variants.items()
            }
        ),
        fp16_model=_optional(entry, "fp16_model", str, where),
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
    _check_tensor_names(spec, where)
    return spec


def _parse_preparation(value: Any, where: str) -> Preparation:
    preparation = _mapping(value, where)
    _known_keys(preparation, frozenset({"recipe", "version"}), where)
    recipe_id = _field(preparation, "recipe", str, where)
    version = _field(preparation, "version", int, where)
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise _Invalid(f"{where}.recipe {recipe_id!r} is not one of {sorted(RECIPES)}")
    if recipe.version != version:
        raise _Invalid(f"{where} asks for {recipe_id} r{version}; this code has r{recipe.version}")
    return Preparation(recipe=recipe_id, version=version)


def _parse_source(source: Mapping[str, Any], where: str) -> ModelSource:
    _known_keys(source, _SOURCE_KEYS, where)
    file_name = _field(source, "file", str, where)
    if not file_name or Path(file_name).name != file_name:
        raise _Invalid(f"{where}.file must be a plain file name")
    sha256 = _optional(source, "sha256", str, where)
    if sha256 is not None and not _SHA256.fullmatch(sha256):
        raise _Invalid(f"{where}.sha256 must be 64 lowercase hex digits or null")
    upstream_hash = None
    if source.get("upstream_hash") is not None:
        upstream_hash = _parse_upstream_hash(
            _mapping(source["upstream_hash"], f"{where}.upstream_hash"), f"{where}.upstream_hash"
        )
    if sha256 is None and upstream_hash is None:
        raise _Invalid(f"{where} needs a sha256 pin or an upstream_hash")
    return ModelSource(
        file=file_name,
        sha256=sha256,
        locations=_parse_locations(source.get("locations"), f"{where}.locations"),
        upstream_hash=upstream_hash,
    )


def _parse_upstream_hash(value: Mapping[str, Any], where: str) -> UpstreamHash:
    _known_keys(value, frozenset({"algorithm", "locations"}), where)
    algorithm = _field(value, "algorithm", str, where)
    if algorithm not in UPSTREAM_HASH_ALGORITHMS:
        raise _Invalid(
            f"{where}.algorithm {algorithm!r} is not one of {sorted(UPSTREAM_HASH_ALGORITHMS)}"
        )
    return UpstreamHash(
        algorithm=algorithm, sources=_parse_locations(value.get("locations"), f"{where}.locations")
    )


def _parse_locations(value: Any, where: str) -> tuple[Source, ...]:
    locations = _list(value, where)
    if not locations:
        raise _Invalid(f"{where} needs at least one location")
    return tuple(
        _parse_location(_mapping(item, f"{where}[{i}]"), f"{where}[{i}]")
        for i, item in enumerate(locations)
    )


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
    _known_keys(tensor, _TENSOR_KEYS, where)
    shape = _list(tensor.get("shape"), f"{where}.shape")
    if not all(isinstance(dim, int | str) and not isinstance(dim, bool) for dim in shape):
        raise _Invalid(f"{where}.shape must hold integers or symbolic names")
    dtype = _field(tensor, "dtype", str, where)
    if dtype not in TENSOR_DTYPES:
        raise _Invalid(f"{where}.dtype {dtype!r} is not one of {sorted(TENSOR_DTYPES)}")
    return TensorSpec(
        name=_field(tensor, "name", str, where),
        shape=tuple(shape),
        dtype=dtype,
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
    if not isinstance(parameters.get("symbolic_spatial", False), bool):
        raise _Invalid(f"{where}.symbolic_spatial must be true or false")
    return parameters


def _check_tensor_names(spec: ModelSpec, where: str) -> None:
    names = [tensor.name for tensor in (*spec.inputs, *spec.outputs)]
    if len(set(names)) != len(names):
        raise _Invalid(f"{where} repeats a tensor name: {names}")


def _check_fp16_model(spec: ModelSpec, models: Mapping[str, ModelSpec]) -> None:
    """The upstream FP16 file must be a drop-in replacement: same kind, same tensor names."""
    if spec.fp16_model is None:
        return
    where = f"models.{spec.model_id}.fp16_model"
    replacement = models.get(spec.fp16_model)
    if replacement is None:
        raise _Invalid(f"{where} names {spec.fp16_model!r}, which is not in the manifest")
    if "fp16" in spec.variants:
        raise _Invalid(f"{where} and an own fp16 variant exclude each other")
    if _interface(replacement) != _interface(spec):
        raise _Invalid(f"{where}: {spec.fp16_model} differs in kind, size or tensors")


def _interface(spec: ModelSpec) -> tuple[object, ...]:
    tensors = tuple((t.name, t.shape, t.dtype) for t in (*spec.inputs, *spec.outputs))
    return spec.kind, spec.size, spec.template, tensors


def _known_keys(mapping: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise _Invalid(f"{where} has unknown keys {unknown}; known: {sorted(known)}")


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
