"""Errors of the storage layer (local folders and object stores reached through fsspec)."""

from facefusion_ray.errors import FaceFusionRayError


class StorageError(FaceFusionRayError):
    """A store could not be opened, reached, read or written; the message names the location."""


class ObjectNotFoundError(StorageError):
    """The store answered, but the object does not exist."""


class TransientStorageError(StorageError):
    """The store could not be reached in time, cut the answer off, asked to slow down or had
    an error of its own (5xx): the same request may well succeed a little later."""
