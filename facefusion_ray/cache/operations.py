"""Maintenance of an analysis cache: statistics, LRU pruning, verification, purging a video."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facefusion_ray.cache.analysis_chunks import AnalysisCache, CacheEntry
from facefusion_ray.cache.schema import SCHEMA_VERSION, InvalidAnalysisData
from facefusion_ray.storage import ObjectNotFoundError, describe_location, redact

logger = logging.getLogger(__name__)


@dataclass
class VerifyReport:
    checked: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    outdated: list[str] = field(default_factory=list)  # chunks of another schema version

    @property
    def ok(self) -> bool:
        return not self.bad


def cache_stats(cache: AnalysisCache) -> dict[str, Any]:
    """Entries (chunks), bytes, distinct videos and keys, oldest and newest last use (UTC).
    Every chunk of the current schema is read with every check: `frames` counts the frames of
    valid chunks only, `bad_entries` and `bad_frames` the damaged ones (logged, not removed)."""
    entries = cache.entries()
    last_uses = [entry.last_access for entry in entries]
    bad = [entry for entry in entries if _damage(cache, entry) is not None]
    bad_frames = sum(entry.end - entry.start for entry in bad)
    return {
        "cache": cache.describe(),
        "entries": len(entries),
        "bytes": sum(entry.size_bytes for entry in entries),
        "frames": sum(entry.end - entry.start for entry in entries) - bad_frames,
        "bad_entries": len(bad),
        "bad_frames": bad_frames,
        "videos": len({entry.video_fingerprint for entry in entries}),
        "analysis_keys": len({entry.analysis_key for entry in entries}),
        "oldest": _iso(min(last_uses)) if last_uses else None,
        "newest": _iso(max(last_uses)) if last_uses else None,
    }


def prune(cache: AnalysisCache, max_bytes: int) -> list[CacheEntry]:
    """Remove least recently used chunks until the cache holds at most `max_bytes`."""
    if max_bytes < 0:
        raise ValueError("max bytes must not be negative")
    entries = sorted(cache.entries(), key=lambda entry: (entry.last_access, entry.path))
    total = sum(entry.size_bytes for entry in entries)
    removed = []
    for entry in entries:
        if total <= max_bytes:
            break
        removed.append(entry)
        total -= entry.size_bytes
    cache.remove_entries(removed)
    return removed


def verify(cache: AnalysisCache) -> VerifyReport:
    """Re-read every chunk of the current schema with every check; nothing is removed."""
    report = VerifyReport()
    for entry in cache.entries():
        if entry.schema_version != SCHEMA_VERSION:
            report.outdated.append(entry.path)
            continue
        report.checked += 1
        try:
            cache.read_entry(entry)
        except ObjectNotFoundError:
            report.checked -= 1  # removed by someone else meanwhile
        except InvalidAnalysisData as error:
            report.bad.append((entry.path, str(error)))
    report.bad.extend((path, "not a cache file") for path in cache.unexpected_files())
    return report


def purge_video(cache: AnalysisCache, video_fingerprint: str) -> list[CacheEntry]:
    """Remove every chunk of one video, under every analysis key and schema version."""
    removed = cache.entries(video_fingerprint)
    cache.remove_entries(removed)
    return removed


def _damage(cache: AnalysisCache, entry: CacheEntry) -> str | None:
    """Why a chunk of the current schema cannot be used (logged with its location), or None.
    Chunks of other schema versions are not read (no lookup ever reads them)."""
    if entry.schema_version != SCHEMA_VERSION:
        return None
    try:
        cache.read_entry(entry)
    except ObjectNotFoundError:
        return None
    except InvalidAnalysisData as error:
        location = describe_location(cache.filesystem, entry.path)
        logger.warning(redact(f"analysis cache: bad chunk {location}: {error}"))
        return str(error)
    return None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
