"""A limit on the pixels of an image or a video frame, checked from the file's header before
anything is decoded: a 2.6 MB PNG can claim 30000x30000 pixels and take gigabytes to decode.

Image sizes are read from the header bytes of PNG, JPEG, GIF, BMP and WebP files (the formats a
studio hands in); video sizes from ffmpeg's stream summary. Other image formats keep OpenCV's
own limit (2^30 pixels), whose error is reported as one line too.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

from facefusion_ray.errors import MediaError

DEFAULT_MAX_PIXELS = 8192 * 8192  # 8K x 8K: 67.1 megapixels
MAX_PIXELS_OPTION = "--max-pixels"
_HEADER_BYTES = 64 * 1024
_VIDEO_SIZE = re.compile(r"(?:^|[\s,])(\d{1,7})x(\d{1,7})(?=[\s,\[]|$)")
_JPEG_SIZE_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def check_pixels(width: int, height: int, max_pixels: int, location: str) -> None:
    """Raises MediaError (one line) when width x height exceeds `max_pixels`."""
    if width * height > max_pixels:
        raise MediaError(
            f"{location}: {width}x{height} pixels ({width * height / 1e6:.1f} MP) exceed the "
            f"limit of {max_pixels / 1e6:.1f} MP; raise it with {MAX_PIXELS_OPTION} if this "
            "is intended"
        )


def check_image_file(path: str | os.PathLike[str], max_pixels: int | None) -> None:
    """Checks an image's header against the limit (None: no limit); formats whose header is not
    parsed here pass."""
    if max_pixels is None:
        return
    size = image_header_size(Path(path))
    if size is not None:
        check_pixels(*size, max_pixels, str(path))


def video_header_size(stream_details: str) -> tuple[int, int] | None:
    """(width, height) from a stream summary such as 'h264 (High), yuv420p(tv), 1280x720 [SAR
    1:1 DAR 16:9], 25 fps'."""
    match = _VIDEO_SIZE.search(stream_details)
    return (int(match[1]), int(match[2])) if match else None


def image_header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, GIF, BMP or WebP file; None for other
    formats or a header too damaged to say."""
    try:
        with path.open("rb") as stream:
            head = stream.read(_HEADER_BYTES)
    except OSError:
        return None
    for parse in (_png, _gif, _bmp, _webp, _jpeg):
        size = parse(head)
        if size is not None:
            return size
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR" or len(head) < 24:
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _gif(head: bytes) -> tuple[int, int] | None:
    if head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 10:
        return None
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"BM" or len(head) < 26:
        return None
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP" or len(head) < 30:
        return None
    kind = head[12:16]
    if kind == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if kind == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 9 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _JPEG_SIZE_MARKERS:
            height, width = struct.unpack(">HH", head[position + 5 : position + 9])
            return width, height
        length = struct.unpack(">H", head[position + 2 : position + 4])[0]
        position += 2 + length
    return None
