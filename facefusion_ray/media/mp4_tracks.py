"""Where an MP4/MOV file keeps each track's media data, from its `moov` box: the byte ranges of
every chunk of samples (stsc, stsz, stco/co64) of the tracks that are not video.

Fragmented files keep their samples' places in `moof` boxes instead; they get no ranges here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

_CONTAINERS = (b"trak", b"mdia", b"minf", b"stbl")
_VIDEO_HANDLER = b"vide"


def non_video_ranges(moov: bytes) -> list[tuple[int, int]]:
    """(offset, length) of the media data of every track of `moov` (the box's payload) that is
    not video, in file order."""
    ranges: list[tuple[int, int]] = []
    for kind, start, end in _boxes(moov, 0, len(moov)):
        if kind == b"trak":
            track = _track_boxes(moov, start, end)
            if _handler(moov, track) != _VIDEO_HANDLER:
                ranges.extend(_chunk_ranges(moov, track))
    return sorted(ranges)


def merged_ranges(ranges: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Sorted ranges joined where less than `gap` bytes lie between them (fewer requests)."""
    merged: list[tuple[int, int]] = []
    for offset, length in sorted(ranges):
        if merged and offset - (merged[-1][0] + merged[-1][1]) < gap:
            last_offset, last_length = merged[-1]
            merged[-1] = (last_offset, max(last_length, offset + length - last_offset))
        elif length > 0:
            merged.append((offset, length))
    return merged


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box in data[start:end]."""
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1 and offset + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            return
        yield kind, offset + header, offset + size
        offset += size


def _track_boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """The boxes inside a track that matter here, by type: (payload start, end)."""
    found: dict[bytes, tuple[int, int]] = {}
    for kind, payload, box_end in _boxes(data, start, end):
        if kind in _CONTAINERS:
            found.update(_track_boxes(data, payload, box_end))
        else:
            found.setdefault(kind, (payload, box_end))
    return found


def _handler(data: bytes, track: dict[bytes, tuple[int, int]]) -> bytes:
    if b"hdlr" not in track:
        return b""
    start, _ = track[b"hdlr"]
    return bytes(data[start + 8 : start + 12])  # after version/flags and pre_defined


def _chunk_ranges(data: bytes, track: dict[bytes, tuple[int, int]]) -> list[tuple[int, int]]:
    offsets = _chunk_offsets(data, track)
    if not offsets or b"stsc" not in track or b"stsz" not in track:
        return []
    sizes = _sample_sizes(data, track[b"stsz"][0])
    runs = _sample_runs(data, track[b"stsc"][0])
    ranges: list[tuple[int, int]] = []
    sample = 0
    for number, offset in enumerate(offsets, start=1):
        per_chunk = next((count for first, count in reversed(runs) if first <= number), 0)
        ranges.append((offset, sum(sizes[sample : sample + per_chunk])))
        sample += per_chunk
    return ranges


def _chunk_offsets(data: bytes, track: dict[bytes, tuple[int, int]]) -> list[int]:
    for kind, item in ((b"stco", ">I"), (b"co64", ">Q")):
        if kind in track:
            start, _ = track[kind]
            (count,) = struct.unpack_from(">I", data, start + 4)
            return list(struct.unpack_from(f">{count}{item[1]}", data, start + 8))
    return []


def _sample_sizes(data: bytes, start: int) -> list[int]:
    constant, count = struct.unpack_from(">II", data, start + 4)
    if constant:
        return [constant] * count
    return list(struct.unpack_from(f">{count}I", data, start + 12))


def _sample_runs(data: bytes, start: int) -> list[tuple[int, int]]:
    """(first chunk number, samples per chunk) of each stsc entry."""
    (count,) = struct.unpack_from(">I", data, start + 4)
    values = struct.unpack_from(f">{count * 3}I", data, start + 8)
    return [(values[index], values[index + 1]) for index in range(0, len(values), 3)]
