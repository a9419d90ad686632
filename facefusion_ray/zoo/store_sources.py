"""How a model store comes to hold a model's pinned source: from the store, the node cache
or the upstream locations, verified against its pin."""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from facefusion_ray.assets.fetch import fetch_asset, file_sha256
from facefusion_ray.errors import AssetError, ModelError
from facefusion_ray.storage import (
    describe_location,
    exists,
    put_atomic,
    sha256_of_object,
)
from facefusion_ray.zoo.lockfile import (
    LOCK_FILE_NAME,
    LockEntry,
    pin_first_download,
    read_lock,
    record_lock_entry,
    utc_timestamp,
)
from facefusion_ray.zoo.manifest import ModelSpec
from facefusion_ray.zoo.store_layout import (
    StoreLayout,
)

logger = logging.getLogger(__name__)


class SourceFiles:
    """ModelStore's handling of sources (a mixin: the store holds the state)."""

    # Set by ModelStore.__init__.
    url: str
    node_cache: Path
    _filesystem: Any
    _root: str
    _layout: StoreLayout

    # -- the source ----------------------------------------------------------------------------

    def _ensure_source(self, spec: ModelSpec, repair: bool) -> tuple[str, Path | None, str | None]:
        """(sha256, a verified local copy if one is at hand, the upstream location used)."""
        lock = read_lock(self._filesystem, self._root)
        entry = lock.get(spec.model_id)
        sha256 = self._pinned_sha256(spec, lock)
        if sha256 is None:
            return self._pin_first_pull(spec)
        key = self._layout.source_key(spec, sha256)
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
        with tempfile.TemporaryDirectory(prefix=".pin-", dir=self._layout.staging()) as folder:
            downloaded = Path(folder) / spec.source.file
            entry = pin_first_download(spec.model_id, spec.source, downloaded)
            key = self._layout.source_key(spec, entry.sha256)
            put_atomic(self._filesystem, downloaded, key)
            local_source = self._layout.node_source_path(spec, entry.sha256)
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
        target = self._layout.node_source_path(spec, sha256)
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
            self._copy_verified(self._layout.source_key(spec, sha256), target, sha256)
        return target
