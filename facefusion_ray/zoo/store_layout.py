"""Where a model store keeps its objects and a node its copies, and what checking them says.

Store layout (`FACEFUSION_RAY_MODEL_STORE`, default `cache_root()/store`):
    sources/<model_id>/<sha256>/<file>                        the source exactly as published
    prepared/<model_id>/<sha16>-<recipe>-r<N>.onnx            the base (CPU FP32) preparation
    prepared/<model_id>/<sha16>-<recipe>-r<N>-<variant recipe>-r<M>.onnx    a declared variant
    prepared/...onnx.sha256                                   sidecar: the prepared file's SHA-256
    models.lock.json                                          the pins (lockfile.py)
    models.added.json                                         private models (registry.py)
Recipe ids are part of the names so that switching a model to another recipe with the same
version can never pick up a stale file. The node cache (default `cache_root()/node-cache`)
mirrors `sources/` and `prepared/`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.errors import ModelError
from facefusion_ray.storage import (
    ObjectNotFoundError,
    describe_location,
    join,
    object_size,
    sha256_of_object,
)
from facefusion_ray.zoo.lockfile import LOCK_FILE_NAME
from facefusion_ray.zoo.manifest import ModelSpec, Preparation
from facefusion_ray.zoo.preparation import Recipe, get_recipe

SYMBOLIC_SPATIAL = "symbolic_spatial"  # manifest parameter: prepare with symbolic height/width


def prepared_file_name(
    source_sha256: str,
    base: Preparation,
    variant: Preparation | None = None,
    symbolic_spatial: bool = False,
) -> str:
    """The steps in the order they run: base recipe, symbolic input size, variant recipe."""
    name = f"{source_sha256[:16]}-{base.recipe}-r{base.version}"
    if symbolic_spatial:
        name += f"-{SYMBOLIC_SPATIAL}"
    if variant is not None:
        name += f"-{variant.recipe}-r{variant.version}"
    return f"{name}.onnx"


@dataclass(frozen=True)
class PullResult:
    model_id: str
    source_sha256: str
    fetched_from: str | None  # the upstream location used, None when the store had the source
    built: tuple[str, ...]  # prepared files built and put into the store by this pull
    seconds: float


@dataclass(frozen=True)
class ObjectCheck:
    label: str  # "source", "prepared" or "variant <name>"
    location: str
    expected_sha256: str | None
    actual_sha256: str | None
    size_bytes: int | None  # None: the object is missing
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class VerifyResult:
    model_id: str
    checks: tuple[ObjectCheck, ...]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{c.label} {c.location}: {c.problem}" for c in self.checks if not c.ok)


@dataclass(frozen=True)
class ModelStatus:
    model_id: str
    present: bool  # the source and the base prepared file are in the store
    verified: bool | None  # None when the hashes were not checked
    size_bytes: int  # source and prepared files together, as stored
    variants: Mapping[str, bool]  # declared variant -> present in the store
    source: tuple[str, ...]  # the manifest's upstream locations
    pinned_sha256: str | None  # from the manifest, else from the lock file, else None
    # How the source came into the store, e.g. "imported: /models/inswapper_128.onnx";
    # None before the lock file records it.
    origin: str | None = None


@dataclass(frozen=True)
class PreparedFile:
    label: str
    name: str
    base: Recipe
    variant: Recipe | None
    symbolic_spatial: bool


class StoreLayout:
    """Object keys in the store at `root` of `filesystem`, paths in the node cache, node locks."""

    def __init__(self, filesystem: Any, root: str, node_cache: Path) -> None:
        self._filesystem = filesystem
        self._root = root
        self._node_cache = node_cache

    def prepared_files(self, spec: ModelSpec, sha256: str) -> list[PreparedFile]:
        files = [self.prepared_file(spec, sha256, None)]
        files += [self.prepared_file(spec, sha256, name) for name in sorted(spec.variants)]
        return files

    def prepared_file(self, spec: ModelSpec, sha256: str, variant: str | None) -> PreparedFile:
        base = get_recipe(spec.preparation.recipe, spec.preparation.version)
        symbolic_spatial = spec.parameters.get(SYMBOLIC_SPATIAL, False) is True
        if variant is None:
            name = prepared_file_name(sha256, spec.preparation, None, symbolic_spatial)
            return PreparedFile("prepared", name, base, None, symbolic_spatial)
        if variant not in spec.variants:
            declared = ", ".join(sorted(spec.variants)) or "none"
            raise ModelError(
                f"model {spec.model_id} has no variant {variant!r} (declared: {declared})"
            )
        preparation = spec.variants[variant]
        return PreparedFile(
            label=variant_label(variant),
            name=prepared_file_name(sha256, spec.preparation, preparation, symbolic_spatial),
            base=base,
            variant=get_recipe(preparation.recipe, preparation.version),
            symbolic_spatial=symbolic_spatial,
        )

    def presence(self, spec: ModelSpec, sha256: str) -> Iterator[ObjectCheck]:
        keys = [("source", self.source_key(spec, sha256))]
        keys += [
            (prepared.label, self.prepared_key(spec.model_id, prepared.name))
            for prepared in self.prepared_files(spec, sha256)
        ]
        for label, key in keys:
            location = describe_location(self._filesystem, key)
            try:
                size: int | None = object_size(self._filesystem, key)
            except ObjectNotFoundError:
                size = None
            yield ObjectCheck(
                label, location, None, None, size, "missing" if size is None else None
            )

    def check_object(self, label: str, key: str, expected: str | None) -> ObjectCheck:
        location = describe_location(self._filesystem, key)
        try:
            size = object_size(self._filesystem, key)
        except ObjectNotFoundError:
            return ObjectCheck(label, location, expected, None, None, "missing")
        if expected is None:
            return ObjectCheck(label, location, None, None, size, f"not pinned in {LOCK_FILE_NAME}")
        actual = sha256_of_object(self._filesystem, key)
        problem = None if actual == expected else f"sha256 {actual}, expected {expected}"
        return ObjectCheck(label, location, expected, actual, size, problem)

    def source_key(self, spec: ModelSpec, sha256: str) -> str:
        return join(self._root, "sources", spec.model_id, sha256, spec.source.file)

    def prepared_key(self, model_id: str, name: str) -> str:
        return join(self._root, "prepared", model_id, name)

    def node_source_path(self, spec: ModelSpec, sha256: str) -> Path:
        return self._node_cache / "sources" / spec.model_id / sha256 / spec.source.file

    def node_prepared_path(self, model_id: str, name: str) -> Path:
        return self._node_cache / "prepared" / model_id / name

    def staging(self) -> Path:
        folder = self._node_cache / ".staging"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def node_lock(self, name: str) -> Iterator[None]:
        folder = self._node_cache / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f"{name}.lock")):
            yield


def variant_label(name: str) -> str:
    return f"variant {name}"


# What `verify` calls the files stored with a prepared file, by the suffix of their names.
_COMPANION_LABELS = {".meta.npz": "metadata", ".data": "weights"}


def companion_label(label: str, suffix: str) -> str:
    """`label` ("prepared", "variant fp16") of the prepared file, or of its companion with
    `suffix` ("" for the prepared file itself)."""
    return f"{label} {_COMPANION_LABELS[suffix]}" if suffix else label


class CorruptedStoreObject(Exception):
    def __init__(self, location: str, expected: str, actual: str) -> None:
        super().__init__(f"store object {location} has sha256 {actual}, expected {expected}")
        self.location = location
        self.expected = expected
        self.actual = actual

    def refusal(self, model_id: str) -> ModelError:
        return ModelError(
            f"model {model_id}: store object {self.location} has sha256 {self.actual}, expected "
            f"{self.expected}; it was not loaded. Repair it with "
            f"`facefusion-ray models pull --repair {model_id}`"
        )


def has_sha256(path: Path, expected: str | None) -> bool:
    return expected is not None and path.is_file() and file_sha256(path) == expected


def write_text_atomically(target: Path, text: str) -> None:
    with temporary_file_beside(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
