"""The model store: pinned sources and prepared ONNX files, shared by every node through a folder
or an object store, copied once per node into a local cache and verified before anything opens
them.

Store layout (`FACEFUSION_RAY_MODEL_STORE`, default `cache_root()/store`):
    sources/<model_id>/<sha256>/<file>                        the source exactly as published
    prepared/<model_id>/<sha16>-<recipe>-r<N>.onnx            the base (CPU FP32) preparation
    prepared/<model_id>/<sha16>-<recipe>-r<N>-<variant recipe>-r<M>.onnx    a declared variant
    prepared/...onnx.sha256                                   sidecar: the prepared file's SHA-256
    models.lock.json                                          the source SHA-256s (lockfile.py)
    models.added.json                                         private models (registry.py)
Recipe ids are part of the names so that switching a model to another recipe with the same
version can never pick up a stale file. The node cache (default `cache_root()/node-cache`)
mirrors `sources/` and `prepared/`.

Upstream locations are only contacted when the store lacks a source (or holds a damaged one and a
repair is asked for). Objects appear atomically, so concurrent pulls on several nodes at worst
fetch and build the same bytes twice; on one node a file lock makes them wait for each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from facefusion_ray.assets.fetch import fetch_asset, file_sha256
from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.errors import AssetError, ModelError
from facefusion_ray.paths import cache_root
from facefusion_ray.storage import (
    ObjectNotFoundError,
    describe_location,
    download,
    exists,
    join,
    object_size,
    open_filesystem,
    put_atomic,
    redact,
    sha256_of_object,
)
from facefusion_ray.zoo.lockfile import (
    LOCK_FILE_NAME,
    ORIGIN_ADDED,
    LockEntry,
    pin_first_download,
    read_lock,
    record_lock_entry,
    utc_timestamp,
)
from facefusion_ray.zoo.manifest import Manifest, ModelSpec, Preparation, load_manifest
from facefusion_ray.zoo.preparation import (
    SIDECAR_SUFFIX,
    Recipe,
    get_recipe,
    sidecar_path,
    write_prepared_model,
    write_prepared_variant,
)
from facefusion_ray.zoo.registry import (
    Registration,
    read_registrations,
    record_registration,
    registry_path,
    with_registrations,
)

logger = logging.getLogger(__name__)

STORE_ENV = "FACEFUSION_RAY_MODEL_STORE"
SYMBOLIC_SPATIAL = "symbolic_spatial"  # manifest parameter: prepare with symbolic height/width


def default_store_url() -> str:
    return os.environ.get(STORE_ENV) or str(cache_root() / "store")


def default_node_cache() -> Path:
    return cache_root() / "node-cache"


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
class _PreparedFile:
    label: str
    name: str
    base: Recipe
    variant: Recipe | None
    symbolic_spatial: bool


class _CorruptedStoreObject(Exception):
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


class ModelStore:
    """Models in a store at `url` (a folder or s3://bucket/prefix), cached on this node."""

    def __init__(
        self,
        url: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        node_cache: Path | None = None,
        manifest: Manifest | None = None,
    ) -> None:
        self.url = url or default_store_url()
        self.node_cache = node_cache if node_cache is not None else default_node_cache()
        self._filesystem, self._root = open_filesystem(self.url, storage_options)
        self._manifest = manifest
        self._merged_manifest: Manifest | None = None
        self._store_tag = hashlib.sha256(self.url.encode()).hexdigest()[:12]

    @property
    def manifest(self) -> Manifest:
        """The manifest given (or the bundled one) with the private models registered here."""
        if self._merged_manifest is None:
            base = self._manifest if self._manifest is not None else load_manifest()
            where = describe_location(self._filesystem, registry_path(self._root))
            self._merged_manifest = with_registrations(base, self.registrations(), where)
        return self._merged_manifest

    def registrations(self) -> dict[str, Registration]:
        return read_registrations(self._filesystem, self._root)

    def register(self, registration: Registration) -> None:
        """Record a private model (its source must be adopted first, see `adopt_source`)."""
        record_registration(self._filesystem, self._root, registration)
        self._merged_manifest = None
        logger.info(
            "registered %s like %s in %s",
            registration.model_id,
            registration.like,
            describe_location(self._filesystem, registry_path(self._root)),
        )

    def lock_entry(self, model_id: str) -> LockEntry | None:
        return read_lock(self._filesystem, self._root).get(model_id)

    def adopt_source(self, spec: ModelSpec, local_file: Path, entry: LockEntry) -> bool:
        """Make `local_file`, whose SHA-256 the caller computed as `entry.sha256`, the source
        of `spec` without contacting any upstream: put it into the store unless an intact copy
        is there, and record `entry` unless the lock file pins that file already. Refuses a file
        that contradicts an existing pin. True when the store changed."""
        pin = spec.source.sha256
        current = self.lock_entry(spec.model_id)
        if pin is None and current is not None and current.file == spec.source.file:
            pin = current.sha256
        if pin is not None and pin != entry.sha256:
            raise ModelError(
                f"{local_file.name} has sha256 {entry.sha256}, but model {spec.model_id} is "
                f"pinned at {pin}"
            )
        key = self._source_key(spec, entry.sha256)
        changed = False
        if not exists(self._filesystem, key) or (
            sha256_of_object(self._filesystem, key) != entry.sha256
        ):
            put_atomic(self._filesystem, local_file, key)
            changed = True
            logger.info(
                "stored source of %s from %s at %s",
                spec.model_id,
                local_file,
                describe_location(self._filesystem, key),
            )
        # The object goes first: a lock entry must never point at a missing source.
        if current is None or (current.file, current.sha256) != (entry.file, entry.sha256):
            record_lock_entry(self._filesystem, self._root, spec.model_id, entry)
            changed = True
        return changed

    def describe(self) -> str:
        return describe_location(self._filesystem, self._root)

    def pull(self, model_id: str, repair: bool = False) -> PullResult:
        """Make the store hold the verified source and every prepared file of `model_id`.

        With `repair`, objects already in the store are re-hashed and damaged ones replaced:
        the source from its upstream locations, prepared files by preparing the source again.
        """
        started = time.perf_counter()
        spec = self.manifest.model(model_id)
        with self._node_lock(f"pull-{self._store_tag}-{model_id}"):
            sha256, local_source, fetched_from = self._ensure_source(spec, repair)
            built = self._ensure_prepared(spec, sha256, local_source, repair)
        return PullResult(
            model_id=model_id,
            source_sha256=sha256,
            fetched_from=fetched_from,
            built=tuple(built),
            seconds=time.perf_counter() - started,
        )

    def local_path(self, model_id: str, variant: str | None = None, repair: bool = False) -> Path:
        """The verified prepared file in the node cache, copied from the store once per node
        (pulled into the store first when it is not there)."""
        spec = self.manifest.model(model_id)
        sha256 = self._pinned_sha256(spec) or self.pull(model_id).source_sha256
        prepared = self._prepared_file(spec, sha256, variant)
        target = self._node_prepared_path(model_id, prepared.name)
        # The node copy is checked against the lock file's pin, not the sidecar beside it.
        if _has_sha256(target, self._prepared_pin(spec, prepared.name)):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{target}.lock"):
            if _has_sha256(target, self._prepared_pin(spec, prepared.name)):
                return target  # another process on this node copied it while we waited
            if target.exists():
                logger.warning(
                    "node cache file %s fails its sha256 check; deleting it and copying it again",
                    target,
                )
                target.unlink()
            sidecar_path(target).unlink(missing_ok=True)
            self._copy_prepared_to_node(spec, sha256, prepared, target, repair)
        return target

    def source_path(self, model_id: str) -> Path:
        """The verified source file, exactly as published, in the node cache."""
        spec = self.manifest.model(model_id)
        sha256 = self._pinned_sha256(spec)
        if sha256 is None or not exists(self._filesystem, self._source_key(spec, sha256)):
            sha256 = self.pull(model_id).source_sha256
        try:
            return self._node_source(spec, sha256)
        except _CorruptedStoreObject as corrupted:
            raise corrupted.refusal(model_id) from None

    def node_prepared_path(self, spec: ModelSpec, variant: str | None = None) -> Path:
        """Where `local_path` keeps a prepared file on this node (it may not exist yet)."""
        sha256 = self._pinned_sha256(spec)
        if sha256 is None:
            raise ModelError(f"model {spec.model_id} is not pinned yet: pull it first")
        return self._node_prepared_path(
            spec.model_id, self._prepared_file(spec, sha256, variant).name
        )

    def verify(self, model_id: str) -> VerifyResult:
        """Re-hash the model's objects in the store against their pins in the lock file (the
        source's, and each prepared file's). Nothing is fetched, nothing is changed."""
        spec = self.manifest.model(model_id)
        sha256 = self._pinned_sha256(spec)
        if sha256 is None:
            location = describe_location(self._filesystem, join(self._root, "sources", model_id))
            problem = f"never pulled: no sha256 in the manifest or in {LOCK_FILE_NAME}"
            return VerifyResult(
                model_id, (ObjectCheck("source", location, None, None, None, problem),)
            )
        checks = [self._check_object("source", self._source_key(spec, sha256), sha256)]
        lock = read_lock(self._filesystem, self._root)
        for prepared in self._prepared_files(spec, sha256):
            key = self._prepared_key(model_id, prepared.name)
            pin = self._prepared_pin(spec, prepared.name, lock)
            checks.append(self._check_object(prepared.label, key, pin))
        return VerifyResult(model_id, tuple(checks))

    def pinned_sha256s(self, model_ids: Collection[str]) -> dict[str, str]:
        """The pinned SHA-256 of each model; one not pinned yet is pulled, which pins it."""
        lock = read_lock(self._filesystem, self._root)
        return {
            model_id: self._pinned_sha256(self.manifest.model(model_id), lock)
            or self.pull(model_id).source_sha256
            for model_id in model_ids
        }

    def status(self, model_id: str, check_hashes: bool = True) -> ModelStatus:
        spec = self.manifest.model(model_id)
        sources = tuple(location.describe() for location in spec.source.locations)
        lock = read_lock(self._filesystem, self._root)
        pinned = self._pinned_sha256(spec, lock)
        if pinned is None:
            return ModelStatus(
                model_id, False, False, 0, dict.fromkeys(spec.variants, False), sources, None
            )
        if check_hashes:
            checks = self.verify(model_id).checks
        else:
            checks = tuple(self._presence(spec, pinned))
        present = {check.label: check.size_bytes is not None for check in checks}
        return ModelStatus(
            model_id=model_id,
            present=present["source"] and present["prepared"],
            verified=all(check.ok for check in checks) if check_hashes else None,
            size_bytes=sum(check.size_bytes or 0 for check in checks),
            variants={name: present[_variant_label(name)] for name in spec.variants},
            source=sources,
            pinned_sha256=pinned,
            origin=self._describe_origin(lock.get(model_id), spec),
        )

    # -- the source ----------------------------------------------------------------------------

    def _ensure_source(self, spec: ModelSpec, repair: bool) -> tuple[str, Path | None, str | None]:
        """(sha256, a verified local copy if one is at hand, the upstream location used)."""
        lock = read_lock(self._filesystem, self._root)
        entry = lock.get(spec.model_id)
        sha256 = self._pinned_sha256(spec, lock)
        if sha256 is None:
            return self._pin_first_pull(spec)
        key = self._source_key(spec, sha256)
        present = exists(self._filesystem, key)
        if present and repair:
            actual = sha256_of_object(self._filesystem, key)
            if actual != sha256:
                location = describe_location(self._filesystem, key)
                logger.warning(
                    "store object %s has sha256 %s, expected %s; fetching it again from its "
                    "sources",
                    location,
                    actual,
                    sha256,
                )
                present = False
        local_source: Path | None = None
        fetched_from: str | None = None
        if not present:
            local_source, fetched_from = self._fetch_pinned(spec, sha256, entry)
            put_atomic(self._filesystem, local_source, key)
            logger.info(
                "stored source of %s from %s at %s",
                spec.model_id,
                fetched_from,
                describe_location(self._filesystem, key),
            )
        if entry is None or entry.sha256 != sha256 or entry.file != spec.source.file:
            recorded = LockEntry(
                file=spec.source.file,
                sha256=sha256,
                upstream_hash=None,
                pulled_from=fetched_from or "already in the store",
                pulled_at=utc_timestamp(),
            )
            record_lock_entry(self._filesystem, self._root, spec.model_id, recorded)
        return sha256, local_source, fetched_from

    def _pin_first_pull(self, spec: ModelSpec) -> tuple[str, Path, str]:
        with tempfile.TemporaryDirectory(prefix=".pin-", dir=self._staging()) as folder:
            downloaded = Path(folder) / spec.source.file
            entry = pin_first_download(spec.model_id, spec.source, downloaded)
            key = self._source_key(spec, entry.sha256)
            put_atomic(self._filesystem, downloaded, key)
            local_source = self._node_source_path(spec, entry.sha256)
            local_source.parent.mkdir(parents=True, exist_ok=True)
            os.replace(downloaded, local_source)
        # The object goes first: a lock entry must never point at a missing source.
        record_lock_entry(self._filesystem, self._root, spec.model_id, entry)
        logger.info(
            "stored source of %s from %s at %s",
            spec.model_id,
            entry.pulled_from,
            describe_location(self._filesystem, key),
        )
        return entry.sha256, local_source, entry.pulled_from

    def _fetch_pinned(
        self, spec: ModelSpec, sha256: str, entry: LockEntry | None
    ) -> tuple[Path, str]:
        failures: list[str] = []
        asset = spec.source.asset(spec.model_id, sha256)
        for location in spec.source.locations:
            try:
                return fetch_asset(
                    dataclasses.replace(asset, sources=(location,))
                ), location.describe()
            except AssetError as error:
                failures.append(str(error))
        detail = "; ".join(failures)
        if spec.source.sha256 is None and entry is not None:
            detail += (
                f" (the sha256 was pinned in {LOCK_FILE_NAME} on {entry.pulled_at} from "
                f"{entry.pulled_from}; a different file is published now)"
            )
        raise ModelError(f"cannot fetch model {spec.model_id}: {detail}")

    def _node_source(self, spec: ModelSpec, sha256: str) -> Path:
        target = self._node_source_path(spec, sha256)
        if target.is_file() and file_sha256(target) == sha256:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{target}.lock"):
            if target.is_file():
                if file_sha256(target) == sha256:
                    return target
                logger.warning(
                    "node cache file %s fails its sha256 check; copying it again", target
                )
                target.unlink()
            self._copy_verified(self._source_key(spec, sha256), target, sha256)
        return target

    # -- prepared files ------------------------------------------------------------------------

    def _ensure_prepared(
        self, spec: ModelSpec, sha256: str, local_source: Path | None, repair: bool
    ) -> list[str]:
        built: list[str] = []
        lock = read_lock(self._filesystem, self._root)
        for prepared in self._prepared_files(spec, sha256):
            key = self._prepared_key(spec.model_id, prepared.name)
            pin = self._prepared_pin(spec, prepared.name, lock)
            if self._prepared_object_in_store(key, pin, check_hashes=repair):
                continue
            if local_source is None:
                try:
                    local_source = self._node_source(spec, sha256)
                except _CorruptedStoreObject as corrupted:
                    raise corrupted.refusal(spec.model_id) from None
            self._pin_prepared(
                spec, prepared.name, self._build_and_store(local_source, prepared, key)
            )
            built.append(prepared.name)
        return built

    def _prepared_object_in_store(self, key: str, expected: str | None, check_hashes: bool) -> bool:
        """True when the object is there (and, checked, has the lock file's pin). An object
        without a pin (built by an older release) is built again and pinned."""
        if expected is None or not exists(self._filesystem, key):
            return False
        if not check_hashes:
            return True
        actual = sha256_of_object(self._filesystem, key)
        if actual == expected:
            return True
        location = describe_location(self._filesystem, key)
        logger.warning(
            "store object %s has sha256 %s, expected %s; preparing it again",
            location,
            actual,
            expected,
        )
        return False

    def _build_and_store(self, local_source: Path, prepared: _PreparedFile, key: str) -> str:
        """Build, store with its sidecar, and return the prepared file's SHA-256."""
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=self._staging()) as folder:
            destination = Path(folder) / prepared.name
            if prepared.variant is None:
                write_prepared_model(
                    local_source,
                    destination,
                    prepared.base,
                    symbolic_spatial=prepared.symbolic_spatial,
                )
            else:
                write_prepared_variant(
                    local_source,
                    destination,
                    prepared.base,
                    prepared.variant,
                    symbolic_spatial=prepared.symbolic_spatial,
                )
            # The sidecar goes last: its presence says the object beside it is complete.
            put_atomic(self._filesystem, destination, key)
            put_atomic(self._filesystem, sidecar_path(destination), key + SIDECAR_SUFFIX)
            digest = file_sha256(destination)
        logger.info(
            "built and stored %s in %.2f s",
            describe_location(self._filesystem, key),
            time.perf_counter() - started,
        )
        return digest

    def _pin_prepared(self, spec: ModelSpec, name: str, sha256: str) -> None:
        entry = read_lock(self._filesystem, self._root).get(spec.model_id)
        if entry is None:
            raise ModelError(f"model {spec.model_id} has no entry in {LOCK_FILE_NAME}")
        if entry.prepared_sha256(name) != sha256:
            record_lock_entry(
                self._filesystem, self._root, spec.model_id, entry.with_prepared(name, sha256)
            )

    def _prepared_pin(
        self, spec: ModelSpec, name: str, lock: Mapping[str, LockEntry] | None = None
    ) -> str | None:
        entries = lock if lock is not None else read_lock(self._filesystem, self._root)
        entry = entries.get(spec.model_id)
        if entry is None or entry.file != spec.source.file:
            return None
        return entry.prepared_sha256(name)

    def _required_pin(self, spec: ModelSpec, name: str) -> str:
        pin = self._prepared_pin(spec, name)
        if pin is None:
            raise ModelError(
                f"model {spec.model_id}: {name} is not pinned in {LOCK_FILE_NAME}; run "
                "`facefusion-ray models pull --repair`"
            )
        return pin

    def _copy_prepared_to_node(
        self, spec: ModelSpec, sha256: str, prepared: _PreparedFile, target: Path, repair: bool
    ) -> None:
        key = self._prepared_key(spec.model_id, prepared.name)
        pin = self._prepared_pin(spec, prepared.name)
        if not self._prepared_object_in_store(key, pin, check_hashes=False):
            self.pull(spec.model_id, repair=repair)
        try:
            expected = self._required_pin(spec, prepared.name)
            self._copy_verified(key, target, expected)
        except _CorruptedStoreObject as corrupted:
            if not repair:
                raise corrupted.refusal(spec.model_id) from None
            logger.warning("%s; repairing it from the sources", corrupted)
            self.pull(spec.model_id, repair=True)
            expected = self._required_pin(spec, prepared.name)
            try:
                self._copy_verified(key, target, expected)
            except _CorruptedStoreObject as still_corrupted:
                raise still_corrupted.refusal(spec.model_id) from None
        _write_text_atomically(sidecar_path(target), f"{expected}  {target.name}\n")

    def _copy_verified(self, key: str, target: Path, expected: str) -> None:
        """Copy a store object to `target`, which appears only when it has the expected hash."""
        started = time.perf_counter()
        location = describe_location(self._filesystem, key)
        with temporary_file_beside(target) as temporary:
            download(self._filesystem, key, temporary)
            actual = file_sha256(temporary)
            if actual != expected:
                raise _CorruptedStoreObject(location, expected, actual)
            os.replace(temporary, target)
        logger.info(
            "copied %s into the node cache at %s in %.2f s",
            location,
            target,
            time.perf_counter() - started,
        )

    # -- names, pins, checks -------------------------------------------------------------------

    def _describe_origin(self, entry: LockEntry | None, spec: ModelSpec) -> str | None:
        if entry is None or entry.file != spec.source.file:
            return None
        if entry.origin == ORIGIN_ADDED:
            registration = self.registrations().get(spec.model_id)
            if registration is not None:
                return f"{ORIGIN_ADDED} like {registration.like}: {entry.pulled_from}"
        return f"{entry.origin}: {entry.pulled_from}"

    def _pinned_sha256(
        self, spec: ModelSpec, lock: Mapping[str, LockEntry] | None = None
    ) -> str | None:
        if spec.source.sha256 is not None:
            return spec.source.sha256
        entries = lock if lock is not None else read_lock(self._filesystem, self._root)
        entry = entries.get(spec.model_id)
        return entry.sha256 if entry is not None and entry.file == spec.source.file else None

    def _prepared_files(self, spec: ModelSpec, sha256: str) -> list[_PreparedFile]:
        files = [self._prepared_file(spec, sha256, None)]
        files += [self._prepared_file(spec, sha256, name) for name in sorted(spec.variants)]
        return files

    def _prepared_file(self, spec: ModelSpec, sha256: str, variant: str | None) -> _PreparedFile:
        base = get_recipe(spec.preparation.recipe, spec.preparation.version)
        symbolic_spatial = spec.parameters.get(SYMBOLIC_SPATIAL, False) is True
        if variant is None:
            name = prepared_file_name(sha256, spec.preparation, None, symbolic_spatial)
            return _PreparedFile("prepared", name, base, None, symbolic_spatial)
        if variant not in spec.variants:
            declared = ", ".join(sorted(spec.variants)) or "none"
            raise ModelError(
                f"model {spec.model_id} has no variant {variant!r} (declared: {declared})"
            )
        preparation = spec.variants[variant]
        return _PreparedFile(
            label=_variant_label(variant),
            name=prepared_file_name(sha256, spec.preparation, preparation, symbolic_spatial),
            base=base,
            variant=get_recipe(preparation.recipe, preparation.version),
            symbolic_spatial=symbolic_spatial,
        )

    def _presence(self, spec: ModelSpec, sha256: str) -> Iterator[ObjectCheck]:
        keys = [("source", self._source_key(spec, sha256))]
        keys += [
            (prepared.label, self._prepared_key(spec.model_id, prepared.name))
            for prepared in self._prepared_files(spec, sha256)
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

    def _check_object(self, label: str, key: str, expected: str | None) -> ObjectCheck:
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

    def _source_key(self, spec: ModelSpec, sha256: str) -> str:
        return join(self._root, "sources", spec.model_id, sha256, spec.source.file)

    def _prepared_key(self, model_id: str, name: str) -> str:
        return join(self._root, "prepared", model_id, name)

    def _node_source_path(self, spec: ModelSpec, sha256: str) -> Path:
        return self.node_cache / "sources" / spec.model_id / sha256 / spec.source.file

    def _node_prepared_path(self, model_id: str, name: str) -> Path:
        return self.node_cache / "prepared" / model_id / name

    def _staging(self) -> Path:
        folder = self.node_cache / ".staging"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @contextmanager
    def _node_lock(self, name: str) -> Iterator[None]:
        folder = self.node_cache / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f"{name}.lock")):
            yield

    def __repr__(self) -> str:
        return f"ModelStore({redact(self.url)!r}, node_cache={str(self.node_cache)!r})"


def resolve_model_path(model_id: str, variant: str | None = None) -> Path:
    """The verified prepared file of `model_id` on this node, from the default store."""
    return ModelStore().local_path(model_id, variant)


def resolve_source_path(model_id: str) -> Path:
    """The verified pinned source file of `model_id`, exactly as published."""
    return ModelStore().source_path(model_id)


def prepared_model_path(spec: ModelSpec, variant: str | None = None) -> Path:
    """Where `resolve_model_path` keeps the prepared file of `spec` (it may not exist yet)."""
    return ModelStore().node_prepared_path(spec, variant)


def _variant_label(name: str) -> str:
    return f"variant {name}"


def _has_sha256(path: Path, expected: str | None) -> bool:
    return expected is not None and path.is_file() and file_sha256(path) == expected


def _write_text_atomically(target: Path, text: str) -> None:
    with temporary_file_beside(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
