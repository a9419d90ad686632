"""A video that ffmpeg reads over HTTP(S) with range requests, named by its location.

The URL is a signed one (it carries a signature that grants reading the object until it
expires), so it is kept out of every message: `str()` of a RemoteMedia is its location, its
repr hides the URL, and ffmpeg's own stderr has the URL replaced by the location (and any
other signed query string cut) before it becomes part of an error.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from facefusion_ray.media.container_header import ContainerHeader

T = TypeVar("T")

# ffmpeg gives up on a stalled connection after this long instead of hanging the chunk.
_READ_TIMEOUT_MICROSECONDS = 60_000_000
# Bounded range requests: a reader that stops or seeks (the end of a chunk, the index at the
# end of the file) leaves at most one request's bytes unread instead of the rest of the object.
# Measured on a 12 s clip cut in 64-frame chunks: 1 MiB requests read 1.95x the clip, 256 KiB
# 1.78x; smaller requests cost a round trip each (S3: ~20-50 ms), so a middle ground.
REQUEST_BYTES = 512 * 1024
INITIAL_REQUEST_BYTES = 64 * 1024
# Open without probing the first packets for stream facts the probe already has.
QUICK_OPEN_ARGS = ["-probesize", "32", "-analyzeduration", "0"]
_QUERY_OF_URL = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?'\"]*)\?[^\s'\"]*")


@dataclass(frozen=True)
class RemoteMedia:
    """`url`: what ffmpeg opens; `location`: what messages say (e.g. s3://bucket/key);
    `version`: changes whenever the object does (per-version caches key on it);
    `index_copy`: a local stand-in with the object's index and no media data
    (`index_copy.write_index_copy`), which packet scans read instead of the whole object;
    `header`: the container header as the driver read it, so no chunk reads it again."""

    url: str = field(repr=False)
    location: str
    version: str
    index_copy: str | None = None
    header: ContainerHeader | None = field(default=None, repr=False, compare=False)

    def __str__(self) -> str:
        return self.location


MediaSource = str | os.PathLike[str] | RemoteMedia


def is_remote_media(source: MediaSource) -> bool:
    return isinstance(source, RemoteMedia)


def ffmpeg_input_url(source: MediaSource) -> str:
    """The input as an ffmpeg URL: local paths as file: URLs, so names with ':' or a leading
    '-' are never misread; remote media as its URL."""
    if isinstance(source, RemoteMedia):
        return source.url
    return "file:" + os.path.abspath(source)


def ffmpeg_input_args(source: MediaSource) -> list[str]:
    """`-i` with the input, and for remote media a read timeout before it."""
    if isinstance(source, RemoteMedia):
        http = ["-rw_timeout", str(_READ_TIMEOUT_MICROSECONDS), "-multiple_requests", "1"]
        http += ["-request_size", str(REQUEST_BYTES)]
        http += ["-initial_request_size", str(INITIAL_REQUEST_BYTES)]
        return [*http, "-i", source.url]
    return ["-i", ffmpeg_input_url(source)]


def packet_scan_input_args(source: MediaSource) -> list[str]:
    """Input arguments for listing the packets of `source` (no frame is decoded): the index
    stand-in of remote media when it has one, with parsers off (its media data is zeros)."""
    if isinstance(source, RemoteMedia) and source.index_copy is not None:
        index_only = ["-fflags", "+noparse", *QUICK_OPEN_ARGS]
        return [*index_only, "-i", ffmpeg_input_url(source.index_copy)]
    return ffmpeg_input_args(source)


def hidden_urls(*sources: MediaSource | None) -> dict[str, str]:
    """{URL: location} for the remote ones among `sources`, for `without_urls`."""
    return {source.url: source.location for source in sources if isinstance(source, RemoteMedia)}


def without_urls(text: str, names: Mapping[str, str]) -> str:
    """`text` with each URL in `names` replaced by its name, and any remaining query string of a
    URL cut (signed URLs carry their signature there)."""
    for url, name in names.items():
        text = text.replace(url, name)
    return _QUERY_OF_URL.sub(r"\1?...", text)


class PerVersionCache(Generic[T]):
    """Facts read once per remote object version in this process (a chunk's URL is signed
    anew each time, so the URL cannot be the key); the least recently used are dropped."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, media: RemoteMedia, compute: Callable[[], T]) -> T:
        key = (media.location, media.version)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value
