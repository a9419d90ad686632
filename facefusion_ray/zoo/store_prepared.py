"""How a model store builds, pins and copies the prepared files of a model."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.errors import ModelError
from facefusion_ray.storage import (
    describe_location,
    download,
    exists,
    put_atomic,
    sha256_of_object,
)
from facefusion_ray.zoo.lockfile import (
    LOCK_FILE_NAME,
    LockEntry,
    read_lock,
    record_lock_entry,
)
from facefusion_ray.zoo.manifest import ModelSpec
from facefusion_ray.zoo.model_metadata import METADATA_SUFFIX
from facefusion_ray.zoo.preparation import (
    SIDECAR_SUFFIX,
    WEIGHTS_SUFFIX,
    companion_paths,
    sidecar_path,
    write_prepared_model,
    write_prepared_variant,
)
from facefusion_ray.zoo.store_layout import (
    CorruptedStoreObject,
    PreparedFile,
    StoreLayout,
    has_sha256,
    write_text_atomically,
)

logger = logging.getLogger(__name__)


class PreparedFiles:
    """ModelStore's handling of prepared files (a mixin: the store holds the state)."""

    # Set by ModelStore.__init__.
    url: str
    node_cache: Path
    _filesystem: Any
    _root: str
    _layout: StoreLayout

    # -- prepared files ------------------------------------------------------------------------

    def _ensure_prepared(
        self, spec: ModelSpec, sha256: str, local_source: Path | None, repair: bool
    ) -> list[str]:
        built: list[str] = []
        lock = read_lock(self._filesystem, self._root)
        for prepared in self._layout.prepared_files(spec, sha256):
            key = self._layout.prepared_key(spec.model_id, prepared.name)
            if self._complete_in_store(spec, prepared.name, lock, check_hashes=repair):
                continue
            if local_source is None:
                try:
                    local_source = self._node_source(spec, sha256)
                except CorruptedStoreObject as corrupted:
                    raise corrupted.refusal(spec.model_id) from None
            for name, digest in self._build_and_store(local_source, prepared, key).items():
                self._pin_prepared(spec, name, digest)
            built.append(prepared.name)
        return built

    def _complete_in_store(
        self,
        spec: ModelSpec,
        name: str,
        lock: Mapping[str, LockEntry] | None = None,
        check_hashes: bool = False,
    ) -> bool:
        """The prepared file and its companions are in the store with their pins."""
        entries = lock if lock is not None else read_lock(self._filesystem, self._root)
        return all(
            self._prepared_object_in_store(
                self._layout.prepared_key(spec.model_id, each),
                self._prepared_pin(spec, each, entries),
                check_hashes=check_hashes,
            )
            for each in [name, *self.companion_names(spec, name, entries)]
        )

    def companion_names(
        self, spec: ModelSpec, name: str, lock: Mapping[str, LockEntry] | None = None
    ) -> list[str]:
        """What is stored with prepared file `name`: its metadata, always (a file prepared
        before metadata existed has no pin for it, so it is prepared again), and its weights
        when it was prepared with them beside it."""
        weights = name + WEIGHTS_SUFFIX
        has_weights = self._prepared_pin(spec, weights, lock) is not None
        return [name + METADATA_SUFFIX, *([weights] if has_weights else [])]

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

    def _build_and_store(
        self, local_source: Path, prepared: PreparedFile, key: str
    ) -> dict[str, str]:
        """Build, store with its companions and sidecar; the SHA-256 of each file by name."""
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=self._layout.staging()) as folder:
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
            digests: dict[str, str] = {}
            # Companions first, the sidecar last: its presence says the rest is complete.
            for companion in companion_paths(destination):
                companion_key = key + companion.name.removeprefix(destination.name)
                put_atomic(self._filesystem, companion, companion_key)
                digests[companion.name] = file_sha256(companion)
            put_atomic(self._filesystem, destination, key)
            put_atomic(self._filesystem, sidecar_path(destination), key + SIDECAR_SUFFIX)
            digests[prepared.name] = file_sha256(destination)
        logger.info(
            "built and stored %s in %.2f s",
            describe_location(self._filesystem, key),
            time.perf_counter() - started,
        )
        return digests

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
        self, spec: ModelSpec, sha256: str, prepared: PreparedFile, target: Path, repair: bool
    ) -> None:
        if not self._complete_in_store(spec, prepared.name):
            self.pull(spec.model_id, repair=repair)
        try:
            expected = self._copy_with_companions(spec, prepared.name, target)
        except CorruptedStoreObject as corrupted:
            if not repair:
                raise corrupted.refusal(spec.model_id) from None
            logger.warning("%s; repairing it from the sources", corrupted)
            self.pull(spec.model_id, repair=True)
            try:
                expected = self._copy_with_companions(spec, prepared.name, target)
            except CorruptedStoreObject as still_corrupted:
                raise still_corrupted.refusal(spec.model_id) from None
        write_text_atomically(sidecar_path(target), f"{expected}  {target.name}\n")

    def _copy_with_companions(self, spec: ModelSpec, name: str, target: Path) -> str:
        """Copy prepared file `name` and its companions to the node, each checked against its
        pin, the prepared file last; returns its pin."""
        for companion in self.companion_names(spec, name):
            companion_key = self._layout.prepared_key(spec.model_id, companion)
            companion_target = target.with_name(companion)
            pin = self._required_pin(spec, companion)
            if not has_sha256(companion_target, pin):
                self._copy_verified(companion_key, companion_target, pin, logging.DEBUG)
        expected = self._required_pin(spec, name)
        self._copy_verified(self._layout.prepared_key(spec.model_id, name), target, expected)
        return expected

    def node_copy_intact(self, spec: ModelSpec, name: str, target: Path) -> bool:
        """True when the node's copy of prepared file `name` and its companions match their
        pins."""
        names = [name, *self.companion_names(spec, name)]
        return all(
            has_sha256(target.with_name(each), self._prepared_pin(spec, each)) for each in names
        )

    def _copy_verified(
        self, key: str, target: Path, expected: str, level: int = logging.INFO
    ) -> None:
        """Copy a store object to `target`, which appears only when it has the expected hash."""
        started = time.perf_counter()
        location = describe_location(self._filesystem, key)
        with temporary_file_beside(target) as temporary:
            download(self._filesystem, key, temporary)
            actual = file_sha256(temporary)
            if actual != expected:
                raise CorruptedStoreObject(location, expected, actual)
            os.replace(temporary, target)
        logger.log(
            level,
            "copied %s into the node cache at %s in %.2f s",
            location,
            target,
            time.perf_counter() - started,
        )
