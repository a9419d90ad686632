"""What a published output was, so that a later run can tell whether it is still that file.

A size is not enough: an output edited in place without changing its size must be rendered
again. Local outputs are compared by SHA-256; remote ones by the ETag the store gave the upload
(no download), or by streaming them through SHA-256 when the store gives none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import fsspec

from facefusion_ray.assets.fetch import file_sha256
from facefusion_ray.storage.errors import ObjectNotFoundError
from facefusion_ray.storage.filesystem import (
    describe_location,
    is_local,
    object_size,
    open_filesystem,
    sha256_of_object,
    translated_errors,
)

logger = logging.getLogger(__name__)


def published_identity(
    location: str, sha256: str, storage_options: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The record of a just-published output whose bytes hash to `sha256`."""
    filesystem, path = open_filesystem(location, storage_options)
    identity: dict[str, object] = {"bytes": object_size(filesystem, path), "sha256": sha256}
    etag = _etag(filesystem, path)
    if etag:
        identity["etag"] = etag
    return identity


def still_published(
    location: str, record: Mapping[str, object], storage_options: Mapping[str, str] | None = None
) -> bool:
    """True when `location` still holds exactly the bytes `record` describes; a difference is
    logged with the location."""
    filesystem, path = open_filesystem(location, storage_options)
    try:
        size = object_size(filesystem, path)
    except ObjectNotFoundError:
        return False
    reason = None
    if not isinstance(record.get("sha256"), str):
        reason = "no checksum was recorded when it was published"
    elif size != record.get("bytes"):
        reason = f"its size changed from {record.get('bytes')} to {size} bytes"
    elif not _same_content(filesystem, path, record):
        reason = "its content changed since it was published (same size)"
    if reason is not None:
        where = describe_location(filesystem, path)
        logger.warning("published output %s is rendered again: %s", where, reason)
    return reason is None


def _same_content(
    filesystem: fsspec.AbstractFileSystem, path: str, record: Mapping[str, object]
) -> bool:
    recorded_etag = record.get("etag")
    if recorded_etag and not is_local(filesystem):
        return _etag(filesystem, path) == recorded_etag
    if is_local(filesystem):
        return file_sha256(Path(path)) == record["sha256"]
    return sha256_of_object(filesystem, path) == record["sha256"]


def _etag(filesystem: fsspec.AbstractFileSystem, path: str) -> str | None:
    if is_local(filesystem):
        return None
    with translated_errors(filesystem, path, "cannot stat"):
        filesystem.invalidate_cache(path)
        info = filesystem.info(path)
    etag = info.get("ETag") or info.get("etag")
    return str(etag) if etag else None
