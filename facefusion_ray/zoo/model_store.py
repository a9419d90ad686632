"""The model store: pinned sources and prepared ONNX files, shared by every node through a folder
or an object store, copied once per node into a local cache and verified before anything opens
them.

Where it keeps what: store_layout.py.

Upstream locations are only contacted when the store lacks a source (or holds a damaged one and a
repair is asked for). Objects appear atomically, so concurrent pulls on several nodes at worst
fetch and build the same bytes twice; on one node a file lock makes them wait for each other.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Collection, Mapping
from pathlib import Path

from filelock import FileLock

from facefusion_ray.errors import ModelError
from facefusion_ray.paths import cache_root
from facefusion_ray.storage import (
    describe_location,
    exists,
    join,
    open_filesystem,
    put_atomic,
    redact,
    sha256_of_object,
)
from facefusion_ray.zoo.lockfile import (
    LOCK_FILE_NAME,
    ORIGIN_ADDED,
    LockEntry,
    read_lock,
    record_lock_entry,
)
from facefusion_ray.zoo.manifest import Manifest, ModelSpec, load_manifest
from facefusion_ray.zoo.preparation import (
    sidecar_path,
)
from facefusion_ray.zoo.registry import (
    Registration,
    read_registrations,
    record_registration,
    registry_path,
    with_registrations,
)
from facefusion_ray.zoo.store_layout import (
    CorruptedStoreObject,
    ModelStatus,
    ObjectCheck,
    PullResult,
    StoreLayout,
    VerifyResult,
    companion_label,
    variant_label,
)
from facefusion_ray.zoo.store_prepared import PreparedFiles
from facefusion_ray.zoo.store_sources import SourceFiles

logger = logging.getLogger(__name__)

STORE_ENV = "FACEFUSION_RAY_MODEL_STORE"


def default_store_url() -> str:
    return os.environ.get(STORE_ENV) or str(cache_root() / "store")


def default_node_cache() -> Path:
    return cache_root() / "node-cache"


class ModelStore(SourceFiles, PreparedFiles):
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
        self._layout = StoreLayout(self._filesystem, self._root, self.node_cache)

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
        key = self._layout.source_key(spec, entry.sha256)
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
        with self._layout.node_lock(f"pull-{self._store_tag}-{model_id}"):
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
        prepared = self._layout.prepared_file(spec, sha256, variant)
        target = self._layout.node_prepared_path(model_id, prepared.name)
        # The node copy (with its metadata and weights) is checked against the lock file's
        # pins, not the sidecar beside it.
        if self.node_copy_intact(spec, prepared.name, target):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{target}.lock"):
            if self.node_copy_intact(spec, prepared.name, target):
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
        if sha256 is None or not exists(self._filesystem, self._layout.source_key(spec, sha256)):
            sha256 = self.pull(model_id).source_sha256
        try:
            return self._node_source(spec, sha256)
        except CorruptedStoreObject as corrupted:
            raise corrupted.refusal(model_id) from None

    def node_prepared_path(self, spec: ModelSpec, variant: str | None = None) -> Path:
        """Where `local_path` keeps a prepared file on this node (it may not exist yet)."""
        sha256 = self._pinned_sha256(spec)
        if sha256 is None:
            raise ModelError(f"model {spec.model_id} is not pinned yet: pull it first")
        return self._layout.node_prepared_path(
            spec.model_id, self._layout.prepared_file(spec, sha256, variant).name
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
        checks = [
            self._layout.check_object("source", self._layout.source_key(spec, sha256), sha256)
        ]
        lock = read_lock(self._filesystem, self._root)
        for prepared in self._layout.prepared_files(spec, sha256):
            names = [prepared.name, *self.companion_names(spec, prepared.name, lock)]
            for name in names:
                key = self._layout.prepared_key(model_id, name)
                label = companion_label(prepared.label, name.removeprefix(prepared.name))
                pin = self._prepared_pin(spec, name, lock)
                checks.append(self._layout.check_object(label, key, pin))
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
            checks = tuple(self._layout.presence(spec, pinned))
        present = {check.label: check.size_bytes is not None for check in checks}
        return ModelStatus(
            model_id=model_id,
            present=present["source"] and present["prepared"],
            verified=all(check.ok for check in checks) if check_hashes else None,
            size_bytes=sum(check.size_bytes or 0 for check in checks),
            variants={name: present[variant_label(name)] for name in spec.variants},
            source=sources,
            pinned_sha256=pinned,
            origin=self._describe_origin(lock.get(model_id), spec),
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
