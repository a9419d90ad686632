"""Reading remote targets in place: object metadata for identity, short-lived signed URLs for
ffmpeg's HTTP range requests, and the settings that choose between that and staging a copy.

Every read of a remote target goes through this module or `locations.stage_input`, both with
the job's storage options: pointing `client_kwargs.endpoint_url` (or AWS_ENDPOINT_URL) at a
proxy makes every byte of the target pass through it, signed URLs included, since a signed
URL names the endpoint it was signed for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from facefusion_ray.errors import MediaError
from facefusion_ray.option_scopes import Scope, check_declared_values, declared
from facefusion_ray.storage.errors import ObjectNotFoundError, StorageError
from facefusion_ray.storage.filesystem import (
    S3_PROTOCOLS,
    object_etag,
    open_filesystem,
    redact,
    sha256_of_object,
    translated_errors,
)
from facefusion_ray.storage.locations import changed_since_planned

METADATA_IDENTITY = "metadata"
CONTENT_IDENTITY = "content"
TARGET_IDENTITIES = (METADATA_IDENTITY, CONTENT_IDENTITY)
# Smaller remote targets are staged whole: a few requests, and no range reads to sign.
STAGE_WHOLE_BELOW_BYTES = 16 * 1024 * 1024
# SigV4 signatures live at most a week.
_MAX_SIGNED_SECONDS = 7 * 24 * 3600
_IDENTITY_VERSION = 1


@dataclass(frozen=True)
class TargetReads:
    """How a render reads a remote (s3://) target; none of it changes a pixel."""

    # What names the target in the keys: the object's metadata (ETag, size, version id,
    # location) or, when asked, the SHA-256 of its whole content (read once by the driver).
    identity: str = declared(METADATA_IDENTITY, Scope.NEITHER, choices=TARGET_IDENTITIES)
    # Targets smaller than this are staged whole on each node; larger ones are read by range.
    stage_below_bytes: int = declared(STAGE_WHOLE_BELOW_BYTES, Scope.NEITHER, bounds=(0, None))
    # Lifetime of the signed URL each chunk (and the driver's probe) reads through: it must
    # outlast one chunk's decoding, which reads as it renders.
    signed_url_seconds: int = declared(3600, Scope.NEITHER, bounds=(60, _MAX_SIGNED_SECONDS))

    def __post_init__(self) -> None:
        check_declared_values(self)


@dataclass(frozen=True)
class RemoteObject:
    """One version of a remote object, from a single metadata request."""

    location: str  # the URL as given, e.g. s3://bucket/clip.mp4
    size: int
    etag: str
    version_id: str | None = None

    @property
    def fingerprint(self) -> str:
        """The target's identity for keys: SHA-256 of the location, ETag, size and version.
        Equal for the same object version, different once it is replaced."""
        text = f"remote-object:{_IDENTITY_VERSION}\n{self.location}\n{self.etag}\n{self.size}"
        return hashlib.sha256(f"{text}\n{self.version_id or ''}".encode()).hexdigest()


def remote_object(location: str, storage_options: Mapping[str, str] | None = None) -> RemoteObject:
    """The object's size, ETag and version id (one HEAD); MediaError when it does not exist."""
    filesystem, path = open_filesystem(location, storage_options)
    try:
        with translated_errors(filesystem, path, "cannot stat"):
            info: dict[str, Any] = filesystem.info(path)
    except ObjectNotFoundError:
        raise MediaError(redact(f"no such object: {location}")) from None
    if info.get("type") != "file":
        raise MediaError(redact(f"not a file: {location}"))
    etag = object_etag(info)
    if not etag:
        raise StorageError(redact(f"{location} has no ETag: ask for --target-identity content"))
    version = info.get("VersionId") or info.get("version_id")
    return RemoteObject(location, int(info["size"]), etag, str(version) if version else None)


def signed_url(
    target: RemoteObject, seconds: int, storage_options: Mapping[str, str] | None = None
) -> str:
    """A URL that lets a plain HTTP client (ffmpeg) read `target` for `seconds`, pinned to its
    version where the bucket keeps versions. Signing is local: it contacts no server.

    The URL carries a signature: it never goes into a log, report or error line."""
    filesystem, path = open_filesystem(target.location, storage_options)
    if not (set(_protocols(filesystem)) & S3_PROTOCOLS):
        raise StorageError(redact(f"cannot read {target.location} by range: not an S3 URL"))
    extra = {} if target.version_id is None else {"VersionId": target.version_id}
    with translated_errors(filesystem, path, "cannot sign"):
        return str(filesystem.sign(path, expiration=seconds, **extra))


def range_reader(
    target: RemoteObject, storage_options: Mapping[str, str] | None = None
) -> Callable[[int, int], bytes]:
    """A function reading `length` bytes of `target` from `offset` (fewer at its end), one
    ranged GET each."""
    filesystem, path = open_filesystem(target.location, storage_options)

    def read(offset: int, length: int) -> bytes:
        end = min(offset + length, target.size)
        if end <= offset:
            return b""
        with translated_errors(filesystem, path, "cannot read"):
            return bytes(filesystem.cat_file(path, start=offset, end=end))

    return read


def content_sha256(location: str, storage_options: Mapping[str, str] | None = None) -> str:
    """SHA-256 of the whole object, streamed (the full-content identity)."""
    filesystem, path = open_filesystem(location, storage_options)
    return sha256_of_object(filesystem, path)


def check_unchanged(target: RemoteObject, storage_options: Mapping[str, str] | None) -> None:
    """MediaError when the object is no longer the version the job planned with."""
    current = remote_object(target.location, storage_options)
    if (current.etag, current.size) != (target.etag, target.size):
        raise MediaError(changed_since_planned(target.location))


def _protocols(filesystem: Any) -> tuple[str, ...]:
    protocol = filesystem.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
