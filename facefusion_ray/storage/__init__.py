"""Storage shared by the model store and the analysis cache: fsspec URLs, atomic puts, redaction."""

from facefusion_ray.storage.errors import ObjectNotFoundError, StorageError, TransientStorageError
from facefusion_ray.storage.filesystem import (
    describe_location,
    download,
    exists,
    is_local,
    join,
    list_files,
    object_size,
    open_filesystem,
    open_for_reading,
    parse_storage_options,
    put_atomic,
    put_bytes_atomic,
    read_bytes,
    redact,
    remove,
    sha256_of_object,
)

__all__ = [
    "ObjectNotFoundError",
    "StorageError",
    "TransientStorageError",
    "describe_location",
    "download",
    "exists",
    "is_local",
    "join",
    "list_files",
    "object_size",
    "open_filesystem",
    "open_for_reading",
    "parse_storage_options",
    "put_atomic",
    "put_bytes_atomic",
    "read_bytes",
    "redact",
    "remove",
    "sha256_of_object",
]
