"""Render inputs and outputs that may live in an object store (s3://...) or on local disk.

ffmpeg reads and writes local files only, so remote inputs are staged into the node cache once
(keyed by URL and object version, under a file lock) and finished outputs are published with
one atomic write. Local locations are used in place.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fsspec
from filelock import FileLock

from facefusion_ray.atomic_files import temporary_file_beside
from facefusion_ray.errors import MediaError
from facefusion_ray.paths import cache_root
from facefusion_ray.storage.errors import ObjectNotFoundError, StorageError
from facefusion_ray.storage.filesystem import (
    describe_location,
    download,
    exists,
    object_etag,
    open_filesystem,
    put_atomic,
    redact,
    translated_errors,
)

STAGED_FOLDER_NAME = "staged"
_LOCAL_SCHEMES = ("file://", "local://")
_GLOB_CHARACTERS = frozenset("*?[")
# Staged inputs are the studio's footage and faces (biometric data): private to this account.
_PRIVATE_FOLDER_MODE = 0o700


def is_remote(location: str) -> bool:
    """True for a URL of a store other than the local disk (s3://bucket/key, ...)."""
    return "://" in location and not location.lower().startswith(_LOCAL_SCHEMES)


def stage_input(
    location: str,
    storage_options: Mapping[str, str] | None = None,
    planned_etag: str | None = None,
) -> Path:
    """A local file with the content of `location`, for ffmpeg and the image readers.

    A local path comes back as it is (MediaError when it is not a file). A remote object is
    downloaded into `<cache>/staged/<sha256 of URL and version>/<name>` once per version; callers
    on the same node that ask at the same time share that one download. With `planned_etag`,
    MediaError when the object is no longer that version (the one its job planned with).
    """
    if not is_remote(location):
        path = _local_path(location)
        if path.is_dir():
            raise MediaError(f"{path} is a folder, not a video or image file")
        if not path.is_file():
            raise MediaError(f"no such file: {path}")
        return path
    filesystem, path = open_filesystem(location, storage_options)
    described = describe_location(filesystem, path)
    info = _file_info(filesystem, path, location)
    if planned_etag is not None and object_etag(info) != planned_etag:
        raise MediaError(changed_since_planned(location))
    version = _object_version(info)
    digest = hashlib.sha256(f"{described}\n{version}".encode()).hexdigest()
    staged_root = cache_root() / STAGED_FOLDER_NAME
    staged = staged_root / digest / posixpath.basename(path)
    staged_root.mkdir(parents=True, exist_ok=True, mode=_PRIVATE_FOLDER_MODE)
    with FileLock(str(staged_root / f"{digest}.lock")):
        if staged.is_file():
            # The folder's time marks the last use for pruning; the file's own mtime stays, as
            # the fingerprint index is keyed by it.
            os.utime(staged.parent)
            return staged
        staged.parent.mkdir(exist_ok=True, mode=_PRIVATE_FOLDER_MODE)
        with temporary_file_beside(staged) as temporary:
            try:
                download(filesystem, path, temporary)
            except ObjectNotFoundError:
                raise MediaError(_missing_object_message(location)) from None
            if temporary.stat().st_size != info.get("size", temporary.stat().st_size):
                raise StorageError(redact(f"{location} changed while it was downloaded"))
            os.replace(temporary, staged)
    return staged


def publish_output(
    local_file: Path, location: str, storage_options: Mapping[str, str] | None = None
) -> None:
    """Move a finished local file to `location`; readers never see a partial output.

    Local destinations get the file by rename (a copy beside it then a rename when it is on
    another disk); remote ones by a single PUT, after which the local file is deleted.
    """
    if not is_remote(location):
        destination = _local_path(location)
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local_file, destination)
            return
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise StorageError(f"cannot write {destination}: {error.strerror}") from None
    filesystem, path = open_filesystem(location, storage_options)
    put_atomic(filesystem, local_file, path)
    local_file.unlink()


def same_location(first: str, second: str) -> bool:
    """True when two locations name the same file: local paths through symbolic links, `..` and
    hard links; URLs when they are equal once normalised."""
    if is_remote(first) or is_remote(second):
        return _normalized_url(first) == _normalized_url(second)
    one, other = _local_path(first), _local_path(second)
    if one.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def output_exists(location: str, storage_options: Mapping[str, str] | None = None) -> bool:
    if not is_remote(location):
        return _local_path(location).is_file()
    filesystem, path = open_filesystem(location, storage_options)
    return exists(filesystem, path)


def expand_glob(pattern: str, storage_options: Mapping[str, str] | None = None) -> list[str]:
    """The files matching `pattern` (`*`, `?`, `[...]`, and `**` across folders), sorted.

    Local matches keep the pattern's form (relative stays relative); remote ones are full URLs
    with the pattern's scheme. A pattern without wildcards yields itself when it is a file.
    Folders never match; a missing folder or bucket yields [].
    """
    if not is_remote(pattern):
        local = str(_local_path(pattern))
        if not has_wildcards(local):
            return [local] if os.path.isfile(local) else []
        return sorted(match for match in glob.glob(local, recursive=True) if os.path.isfile(match))
    scheme = pattern.split("://", 1)[0]
    filesystem, path = open_filesystem(pattern, storage_options)
    with translated_errors(filesystem, path, "cannot list"):
        try:
            if has_wildcards(path):
                found: dict[str, dict[str, Any]] = filesystem.glob(path, detail=True)
            else:
                found = {path: filesystem.info(path)}
        except FileNotFoundError:
            return []
    return sorted(f"{scheme}://{match}" for match, info in found.items() if _is_file(info))


def has_wildcards(pattern: str) -> bool:
    return any(character in _GLOB_CHARACTERS for character in pattern)


def _local_path(location: str) -> Path:
    for scheme in _LOCAL_SCHEMES:
        if location.lower().startswith(scheme):
            location = location[len(scheme) :]
            break
    return Path(location).expanduser()


def _normalized_url(location: str) -> str:
    scheme, _, path = location.partition("://")
    return f"{scheme.lower()}://{posixpath.normpath(path.lstrip('/'))}"


def _file_info(filesystem: fsspec.AbstractFileSystem, path: str, location: str) -> dict[str, Any]:
    try:
        with translated_errors(filesystem, path, "cannot stat"):
            info: dict[str, Any] = filesystem.info(path)
    except ObjectNotFoundError:
        raise MediaError(_missing_object_message(location)) from None
    if not _is_file(info):
        raise MediaError(redact(f"not a file: {location}"))
    return info


def _object_version(info: Mapping[str, Any]) -> str:
    """What changes when the object is replaced: its ETag, else its size and modification time."""
    etag = info.get("ETag") or info.get("etag")
    if etag:
        return f"etag:{etag}"
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    return f"size:{info.get('size')}:modified:{modified}"


def _is_file(info: Mapping[str, Any]) -> bool:
    return info.get("type") == "file"


def changed_since_planned(location: str) -> str:
    return redact(f"{location} changed since the job was planned")


def _missing_object_message(location: str) -> str:
    return redact(f"no such object: {location}")
