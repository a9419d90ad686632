"""A local stand-in of an MP4/MOV file for reading its index: every top-level box copied at its
own offset except the media payload (`mdat`), which stays a hole of zeros in a sparse file, but
for the data of the tracks that are not video (audio), copied in at its own place.

Packet timing (the frame count and each frame's time) lives in the index (`moov`, and `moof`
in fragmented files), so scanning the stand-in's packets gives the real file's timing while
only the index crossed the network. Other containers (Matroska, MPEG-TS) keep their timing in
the media data: `write_index_copy` says no and they are scanned whole.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from facefusion_ray.media.mp4_tracks import merged_ranges, non_video_ranges

ReadRange = Callable[[int, int], bytes]  # (offset, length) -> at most `length` bytes

# A top-level box that may open an ISO-BMFF (MP4, MOV, 3GP) file.
_OPENING_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide"})
_PAYLOAD_BOXES = frozenset({b"mdat"})
# Small: the header of the media data after a short index costs a window of video bytes.
_READ_AHEAD_BYTES = 16 * 1024
_MAX_BOXES = 1_000_000
# Audio chunks closer than this are read in one request (the bytes between come along).
_MERGE_GAP_BYTES = 16 * 1024
_PARALLEL_READS = 8


class _WindowReader:
    """Small reads served from one read-ahead window, so a run of small boxes costs one request."""

    def __init__(self, read_range: ReadRange) -> None:
        self._read_range = read_range
        self._start = 0
        self._window = b""

    def read(self, offset: int, length: int) -> bytes:
        end = offset + length
        if not (self._start <= offset and end <= self._start + len(self._window)):
            if length > _READ_AHEAD_BYTES:
                return self._read_range(offset, length)
            self._start, self._window = offset, self._read_range(offset, _READ_AHEAD_BYTES)
        return self._window[offset - self._start : end - self._start]


def write_index_copy(read_range: ReadRange, size: int, destination: Path) -> IndexCopy | None:
    """Write the stand-in of a `size`-byte file to `destination`; None when the file is not a
    well-formed ISO-BMFF file at its top level. The media data of the tracks that are not video
    (audio, mostly a few percent of a file) is copied in too where the index places it, so
    the stand-in can also give the target's audio (`IndexCopy.other_tracks`)."""
    reader = _WindowReader(read_range)  # one for the scan and the copy: its window serves both
    boxes = _top_level_boxes(reader, size)
    if boxes is None:
        return None
    moov = b""
    with destination.open("wb") as copy:
        for offset, length, header, kind in boxes:
            kept = header if kind in _PAYLOAD_BOXES else length  # a payload's header only
            data = reader.read(offset, kept)
            if len(data) != kept:
                return None
            copy.seek(offset)
            copy.write(data)
            moov = data[header:] if kind == b"moov" else moov
        copy.truncate(size)
        if any(kind == b"moof" for *_, kind in boxes):
            return IndexCopy(other_tracks=False)  # fragments place their samples themselves
        ranges = merged_ranges(non_video_ranges(moov), _MERGE_GAP_BYTES)
        for (offset, length), data in zip(ranges, _read_all(read_range, ranges), strict=True):
            if len(data) != length or offset + length > size:
                return IndexCopy(other_tracks=False)
            copy.seek(offset)
            copy.write(data)
    return IndexCopy(other_tracks=True)


@dataclass(frozen=True)
class IndexCopy:
    # True when the media data of every track but video is in the stand-in too.
    other_tracks: bool


def _read_all(read_range: ReadRange, ranges: list[tuple[int, int]]) -> Iterator[bytes]:
    """The ranges' bytes, in order, fetched a few at a time."""
    with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
        yield from pool.map(lambda item: read_range(*item), ranges)


def _top_level_boxes(reader: _WindowReader, size: int) -> list[tuple[int, int, int, bytes]] | None:
    """(offset, length, header length, type) of each top-level box, or None unless they tile
    the file and include the index."""
    boxes: list[tuple[int, int, int, bytes]] = []
    offset = 0
    while offset < size:
        if len(boxes) >= _MAX_BOXES:
            return None
        header = reader.read(offset, min(16, size - offset))
        if len(header) < 8:
            return None
        length, kind = struct.unpack(">I4s", header[:8])
        header_length = 8
        if length == 1:
            if len(header) < 16:
                return None
            (length,) = struct.unpack(">Q", header[8:16])
            header_length = 16
        elif length == 0:
            length = size - offset  # the last box runs to the end of the file
        if length < 8 or offset + length > size or not _is_box_type(kind):
            return None
        if not boxes and kind not in _OPENING_BOXES:
            return None
        boxes.append((offset, length, header_length, kind))
        offset += length
    return boxes if any(kind == b"moov" for *_, kind in boxes) else None


def _is_box_type(kind: bytes) -> bool:
    return all(32 <= byte < 127 for byte in kind)
