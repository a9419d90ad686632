"""The analysis cache: per-frame results as Parquet chunks in a local folder or an object store.

Layout: `<root>/v<SCHEMA_VERSION>/<analysis_key>/<video_fingerprint>/<start>-<end>.parquet`,
start and end (exclusive) as 10 zero-padded digits, so any chunk size can serve any range.

Least-recently-used bookkeeping: an object's modification time is its write time, and each
`<analysis_key>/<video_fingerprint>` folder holds an `access.json` ({chunk file name: last hit,
epoch seconds}) rewritten on a hit at most once per `access_update_interval_seconds`. The same
mechanism serves local folders and S3, where an object's LastModified cannot be touched without
rewriting it. Concurrent hits may lose each other's update; that only makes LRU approximate.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from facefusion_ray.atomic_files import PRIVATE_FILE_MODE, make_private_folders
from facefusion_ray.cache.integrity import check_sealed, seal
from facefusion_ray.cache.schema import (
    SCHEMA_VERSION,
    FrameAnalysis,
    InvalidAnalysisData,
    check_schema,
    parquet_to_table,
    records_to_table,
    table_to_parquet,
    table_to_records,
)
from facefusion_ray.paths import cache_root
from facefusion_ray.storage import (
    ObjectNotFoundError,
    describe_location,
    is_local,
    join,
    open_filesystem,
    put_bytes_atomic,
    read_bytes,
    redact,
    remove,
)
from facefusion_ray.storage.filesystem import translated_errors

ANALYSIS_CACHE_ENV = "FACEFUSION_RAY_ANALYSIS_CACHE"
ACCESS_INDEX_NAME = "access.json"
DEFAULT_ACCESS_UPDATE_INTERVAL_SECONDS = 60.0
_CHUNK_NAME = re.compile(r"^(\d{10})-(\d{10})\.parquet$")
_VERSION_FOLDER = re.compile(r"^v(\d+)$")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheEntry:
    """One stored chunk: frames [start, end) of one video under one analysis key."""

    path: str
    schema_version: int
    analysis_key: str
    video_fingerprint: str
    start: int
    end: int
    size_bytes: int
    modified: float
    last_access: float

    @property
    def name(self) -> str:
        return chunk_file_name(self.start, self.end)


def chunk_file_name(start: int, end: int) -> str:
    return f"{start:010d}-{end:010d}.parquet"


def default_cache_url() -> str:
    return os.environ.get(ANALYSIS_CACHE_ENV) or str(cache_root() / "analysis")


class AnalysisCache:
    def __init__(
        self,
        url: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        access_update_interval_seconds: float = DEFAULT_ACCESS_UPDATE_INTERVAL_SECONDS,
    ) -> None:
        self.url = url or default_cache_url()
        self.filesystem, self.root = open_filesystem(self.url, storage_options)
        self.is_local = is_local(self.filesystem)
        self.access_update_interval_seconds = access_update_interval_seconds
        self._recorded_access: dict[str, float] = {}  # chunk path -> last access written

    def describe(self) -> str:
        return describe_location(self.filesystem, self.root)

    def folder(self, analysis_key: str, video_fingerprint: str) -> str:
        return join(self.root, f"v{SCHEMA_VERSION}", analysis_key, video_fingerprint)

    def write(
        self,
        video_fingerprint: str,
        analysis_key: str,
        records: Sequence[FrameAnalysis],
        frame_size: tuple[int, int] | None = None,
    ) -> str:
        """Store contiguous frames as one chunk and return its path. Atomic: readers and
        concurrent writers of the same range see one whole file, never a torn one.
        `frame_size` (width, height) bounds the coordinates a reader accepts back."""
        if not records:
            raise ValueError("no frames to write")
        start = records[0].frame_index
        if [record.frame_index for record in records] != list(range(start, start + len(records))):
            raise ValueError("cached frames must be contiguous and in order")
        _check_path_part(video_fingerprint, "video fingerprint")
        _check_path_part(analysis_key, "analysis key")
        table = seal(records_to_table(video_fingerprint, analysis_key, records), frame_size)
        payload = table_to_parquet(table)
        folder = self.folder(analysis_key, video_fingerprint)
        path = join(folder, chunk_file_name(start, start + len(records)))
        self._put(payload, path)
        return path

    def lookup(
        self,
        video_fingerprint: str,
        analysis_key: str,
        start: int,
        count: int,
        expected_fingerprints: Sequence[str] | None = None,
    ) -> list[FrameAnalysis] | None:
        """Frames [start, start + count) gathered from whichever chunks cover them, or None
        when any frame is missing. A bad chunk is logged, deleted and counts as missing."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if expected_fingerprints is not None and len(expected_fingerprints) != count:
            raise ValueError(f"{len(expected_fingerprints)} expected fingerprints for {count}")
        _check_path_part(video_fingerprint, "video fingerprint")
        _check_path_part(analysis_key, "analysis key")
        end = start + count
        expected = (
            None
            if expected_fingerprints is None
            else dict(zip(range(start, end), expected_fingerprints, strict=True))
        )
        folder = self.folder(analysis_key, video_fingerprint)
        listed = self._entries_in(folder, with_access=False)
        candidates = [entry for entry in listed if entry.start < end and entry.end > start]
        found: dict[int, FrameAnalysis] = {}
        used: list[CacheEntry] = []
        position = start
        while position < end:
            covering = [entry for entry in candidates if entry.start <= position < entry.end]
            if not covering:
                return None
            best = max(covering, key=lambda entry: entry.end)
            candidates.remove(best)
            try:
                records = self.read_entry(best, expected)
            except ObjectNotFoundError:
                continue
            except InvalidAnalysisData as error:
                self.discard(best, str(error))
                continue
            for record in records:
                if start <= record.frame_index < end:
                    found.setdefault(record.frame_index, record)
            used.append(best)
            position = best.end
        self._record_access(folder, used, listed)
        return [found[index] for index in range(start, end)]

    def read_entry(
        self, entry: CacheEntry, expected_fingerprints: Mapping[int, str] | None = None
    ) -> list[FrameAnalysis]:
        """The chunk's frames after every check; raises InvalidAnalysisData for a bad chunk."""
        table = parquet_to_table(read_bytes(self.filesystem, entry.path))
        check_schema(table.schema)
        check_sealed(table)
        if table.num_rows != entry.end - entry.start:
            raise InvalidAnalysisData(
                f"{table.num_rows} rows where the name promises {entry.end - entry.start}"
            )
        records = table_to_records(table)
        for column, wanted in (
            ("video_fingerprint", entry.video_fingerprint),
            ("analysis_key", entry.analysis_key),
        ):
            if set(table.column(column).to_pylist()) != {wanted}:
                raise InvalidAnalysisData(f"{column} column does not match the path")
        indices = table.column("frame_index").to_numpy()
        if not np.array_equal(indices, np.arange(entry.start, entry.end)):
            raise InvalidAnalysisData("frame indices do not match the name")
        for record in records:
            wanted = (expected_fingerprints or {}).get(record.frame_index)
            if wanted is not None and wanted != record.frame_fingerprint:
                raise InvalidAnalysisData(f"frame {record.frame_index} fingerprint differs")
        return records

    def discard(self, entry: CacheEntry, reason: str) -> None:
        location = describe_location(self.filesystem, entry.path)
        logger.warning(redact(f"analysis cache: removing bad chunk {location}: {reason}"))
        remove(self.filesystem, entry.path)

    def entries(self, video_fingerprint: str | None = None) -> list[CacheEntry]:
        """Every chunk of every schema version, optionally of one video only."""
        return [
            entry
            for entry in self._entries_in(self.root, with_access=True)
            if video_fingerprint is None or entry.video_fingerprint == video_fingerprint
        ]

    def remove_entries(self, entries: Sequence[CacheEntry]) -> None:
        """Delete chunks, then the access index of every folder they leave empty."""
        for entry in entries:
            remove(self.filesystem, entry.path)
        folders = {entry.path.rsplit("/", 1)[0] for entry in entries}
        for folder in folders:
            if not self._entries_in(folder, with_access=False):
                remove(self.filesystem, join(folder, ACCESS_INDEX_NAME))
                if self.is_local:
                    _remove_empty_folder(Path(folder))

    def unexpected_files(self) -> list[str]:
        """Files in the store that are neither chunks nor access indexes (writes in progress
        excluded)."""
        return [
            path
            for path in self._listing(self.root)
            if self._parse(path) is None
            and path.rsplit("/", 1)[-1] != ACCESS_INDEX_NAME
            and not path.endswith(".partial")
        ]

    def _entries_in(self, prefix: str, with_access: bool) -> list[CacheEntry]:
        """Chunks below `prefix`; without access indexes, last access is the write time."""
        access_indexes: dict[str, dict[str, float]] = {}
        entries = []
        for path, info in self._listing(prefix).items():
            parsed = self._parse(path)
            if parsed is None:
                continue
            version, analysis_key, video, start, end = parsed
            modified = _modified_seconds(info)
            last_access = modified
            if with_access:
                folder = path.rsplit("/", 1)[0]
                if folder not in access_indexes:
                    access_indexes[folder] = self._read_access_index(folder)
                recorded = access_indexes[folder].get(chunk_file_name(start, end), 0.0)
                last_access = max(modified, recorded)
            entries.append(
                CacheEntry(
                    path=path,
                    schema_version=version,
                    analysis_key=analysis_key,
                    video_fingerprint=video,
                    start=start,
                    end=end,
                    size_bytes=int(info.get("size") or 0),
                    modified=modified,
                    last_access=last_access,
                )
            )
        return sorted(entries, key=lambda entry: entry.path)

    def _parse(self, path: str) -> tuple[int, str, str, int, int] | None:
        if not path.startswith(self.root + "/"):
            return None
        parts = path[len(self.root) + 1 :].split("/")
        if len(parts) != 4:
            return None
        version_folder, analysis_key, video, name = parts
        version = _VERSION_FOLDER.match(version_folder)
        chunk = _CHUNK_NAME.match(name)
        if version is None or chunk is None:
            return None
        start, end = int(chunk.group(1)), int(chunk.group(2))
        if end <= start:
            return None
        return int(version.group(1)), analysis_key, video, start, end

    def _listing(self, prefix: str) -> dict[str, dict[str, Any]]:
        with translated_errors(self.filesystem, prefix, "cannot list"):
            try:
                return dict(self.filesystem.find(prefix, detail=True))
            except FileNotFoundError:
                return {}

    def _read_access_index(self, folder: str) -> dict[str, float]:
        try:
            loaded = json.loads(read_bytes(self.filesystem, join(folder, ACCESS_INDEX_NAME)))
        except (ObjectNotFoundError, ValueError):
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {
            str(name): float(seconds)
            for name, seconds in loaded.items()
            if isinstance(seconds, int | float)
        }

    def _record_access(
        self, folder: str, used: Sequence[CacheEntry], listed: Sequence[CacheEntry]
    ) -> None:
        now = time.time()
        interval = self.access_update_interval_seconds

        def is_stale(entry: CacheEntry, recorded: float) -> bool:
            return now - max(entry.modified, recorded) >= interval

        # Skip even reading the index while this instance's own record is recent enough.
        if not any(is_stale(entry, self._recorded_access.get(entry.path, 0.0)) for entry in used):
            return
        index = self._read_access_index(folder)
        if not any(is_stale(entry, index.get(entry.name, 0.0)) for entry in used):
            return
        present = {entry.name for entry in listed}
        updated = {name: seconds for name, seconds in index.items() if name in present}
        updated.update({entry.name: now for entry in used})
        self._put(json.dumps(updated, sort_keys=True).encode(), join(folder, ACCESS_INDEX_NAME))
        self._recorded_access.update({entry.path: now for entry in used})

    def _put(self, payload: bytes, path: str) -> None:
        if not self.is_local:
            put_bytes_atomic(self.filesystem, payload, path)
            return
        make_private_folders(Path(path).parent)
        put_bytes_atomic(self.filesystem, payload, path)
        # put_bytes_atomic leaves files readable for the shared model store; embeddings are
        # biometric, and the 0700 folders keep the file private until this chmod.
        os.chmod(path, PRIVATE_FILE_MODE)


def _check_path_part(value: str, what: str) -> None:
    if not value or not re.fullmatch(r"[0-9A-Za-z_.-]+", value) or value in (".", ".."):
        raise ValueError(f"{what} {value!r} is not a plain name")


def _modified_seconds(info: Mapping[str, Any]) -> float:
    modified = info.get("mtime", info.get("LastModified"))
    if isinstance(modified, datetime):
        return modified.timestamp()
    if isinstance(modified, int | float):
        return float(modified)
    return 0.0


def _remove_empty_folder(folder: Path) -> None:
    with suppress(OSError):  # another writer may have just added a chunk
        folder.rmdir()
