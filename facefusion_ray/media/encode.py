"""Encoding frames (BGR, or the video's own 4:2:0 planes) into video segments that concatenate
frame-exactly, tagged with the input's colour space.

Segment format: MP4 holding one encoder's stream (libx264 H.264 by default, B-frames on; the
encoders and their options are in video_codecs.py). Raw Annex B segments (`-f h264`)
would byte-concatenate, but raw H.264 carries no timestamps: with B-frames the re-muxed
output had unset PTS, lost packets and decoded 117 of 120 frames on this ffmpeg (9.0).
MP4 segments keep exact per-frame PTS and are joined by the concat demuxer (see assemble.py).
Every keyframe repeats SPS/PPS in-band (`repeat-headers`) so segments encoded with other
settings (another quality, lossless) still decode after being joined under one header.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.media.colour_tags import ColourTags
from facefusion_ray.media.ffmpeg_tool import FfmpegProcess
from facefusion_ray.media.images import ensure_readable_file, partial_path
from facefusion_ray.media.pixel_transfer import encoding_pipe_format
from facefusion_ray.media.process_cpu import ENCODE
from facefusion_ray.media.video_codecs import (
    FALLBACK_VIDEO_ENCODER,
    VIDEO_PRESETS,
    encoder_args,
    quality_value,
)

SEGMENT_SUFFIX = ".mp4"


def quality_to_crf(quality: int) -> int:
    """FaceFusion's libx264 mapping: quality 100 is CRF 0 (lossless), quality 0 is CRF 51."""
    return quality_value("libx264", quality)


# Kept under its old name: the presets every encoder family maps from.
X264_PRESETS = VIDEO_PRESETS


class SegmentEncoder:
    """Encode frames into one MP4 segment; the file appears at `path` only on a clean close.

    Use as a context manager: an exception inside the `with` block kills ffmpeg and leaves
    nothing at `path`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: Fraction,
        quality: int = 80,
        preset: str = "veryfast",
        encoder: str = FALLBACK_VIDEO_ENCODER,
        colour: ColourTags | None = None,
    ) -> None:
        """`colour`: the input's colour tags, carried onto the segment; BGR frames are turned
        into YUV in their matrix."""
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self._colour = colour or ColourTags()
        self._pipe = encoding_pipe_format(width, height, self._colour)
        self.fps = Fraction(fps)
        self.encoder = encoder
        self._encoder_args = encoder_args(encoder, quality, preset, width, height)
        self.frames_written = 0
        self._temporary = partial_path(self.path)
        self._process: FfmpegProcess | None = None
        self._finished = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: np.ndarray) -> None:
        """Append one frame: BGR uint8 of shape (height, width, 3) or, for an even size, its
        4:2:0 planes in I420 layout, uint8 of shape (height * 3 / 2, width), in the matrix of
        the `colour` tags (written through as they are)."""
        if self._finished:
            raise ValueError(f"segment encoder for {self.path} is already closed")
        process = self._process or self._start()
        stdin = process.process.stdin
        assert stdin is not None
        try:
            stdin.write(self._pipe_bytes(frame).data)
        except BrokenPipeError:
            process.wait()
            reason = process.failure_reason()
            self.abort()
            raise MediaError(f"cannot encode segment {self.path}: {reason}") from None
        self.frames_written += 1

    def _pipe_bytes(self, frame: np.ndarray) -> np.ndarray:
        bgr_shape = (self.height, self.width, 3)
        planes_shape = self._pipe.planes_shape if self._pipe.is_yuv420 else None
        if frame.dtype == np.uint8 and frame.shape == bgr_shape:
            return self._pipe.from_bgr(frame)
        if frame.dtype == np.uint8 and frame.shape == planes_shape:
            return np.ascontiguousarray(frame)
        expected = f"{bgr_shape}" + (f" or 4:2:0 planes {planes_shape}" if planes_shape else "")
        raise ValueError(
            f"frame must be uint8 with shape {expected}, got {frame.dtype} {frame.shape}"
        )

    def close(self) -> None:
        """Finish encoding and move the segment to `path`; MediaError if ffmpeg failed."""
        if self._finished:
            return
        process = self._process
        if process is None:
            self.abort()
            raise MediaError(f"no frames written to segment: {self.path}")
        stdin = process.process.stdin
        assert stdin is not None
        with contextlib.suppress(BrokenPipeError):  # ffmpeg already exited; see its exit code
            stdin.close()
        if process.wait() != 0:
            reason = process.failure_reason()
            self.abort()
            raise MediaError(f"cannot encode segment {self.path}: {reason}")
        self._finished = True
        process.close()
        try:
            os.replace(self._temporary, self.path)
        except OSError as error:
            self._temporary.unlink(missing_ok=True)
            reason = error.strerror or error
            raise MediaError(f"cannot write segment {self.path}: {reason}") from error

    def abort(self) -> None:
        """Stop ffmpeg and delete the partial output; `path` is left untouched."""
        self._finished = True
        if self._process is not None:
            self._process.close()
        self._temporary.unlink(missing_ok=True)

    def _start(self) -> FfmpegProcess:
        self._process = FfmpegProcess(self._ffmpeg_args(), stdin=subprocess.PIPE, kind=ENCODE)
        return self._process

    def _ffmpeg_args(self) -> list[str]:
        return [
            "-loglevel", "error",
            "-f", "rawvideo",
            "-pix_fmt", self._pipe.ffmpeg_pixel_format,
            "-video_size", f"{self.width}x{self.height}",
            "-framerate", f"{self.fps.numerator}/{self.fps.denominator}",
            "-i", "pipe:0",
            *self._pipe.conversion_args,
            *self._colour_args(),
            *self._encoder_args,
            "-f", "mp4",
            "-y", "file:" + os.path.abspath(self._temporary),
        ]  # fmt: skip

    def _colour_args(self) -> list[str]:
        colour_filter = self._colour.output_filter()
        return [] if colour_filter is None else ["-vf", colour_filter]


def segment_frame_count(path: str | os.PathLike[str]) -> int:
    """Frames in a segment written by SegmentEncoder, read from its MP4 sample table."""
    segment = ensure_readable_file(path)
    try:
        with segment.open("rb") as handle:
            sample_count = _mp4_sample_count(handle, segment.stat().st_size)
    except OSError as error:
        raise MediaError(f"cannot read segment {segment}: {error.strerror or error}") from error
    if sample_count is None:
        raise MediaError(f"not a video segment (no MP4 sample table): {segment}")
    return sample_count


def _mp4_sample_count(handle: BinaryIO, file_size: int) -> int | None:
    """Sample count of the first video track: moov/trak[hdlr=vide]/mdia/minf/stbl/stsz."""
    movie = _find_box(handle, 0, file_size, b"moov")
    if movie is None:
        return None
    for kind, start, end in _iter_boxes(handle, *movie):
        media = _find_box(handle, start, end, b"mdia") if kind == b"trak" else None
        if media is None or _read_at(handle, media, b"hdlr", offset=8, size=4) != b"vide":
            continue
        sample_table = _find_path(handle, media, (b"minf", b"stbl"))
        if sample_table is None:
            return None
        # stsz payload: version/flags, constant sample size, sample count.
        sample_count = _read_at(handle, sample_table, b"stsz", offset=8, size=4)
        return None if sample_count is None else int.from_bytes(sample_count, "big")
    return None


def _find_path(
    handle: BinaryIO, span: tuple[int, int], path: tuple[bytes, ...]
) -> tuple[int, int] | None:
    found: tuple[int, int] | None = span
    for box_type in path:
        if found is None:
            return None
        found = _find_box(handle, *found, box_type)
    return found


def _read_at(
    handle: BinaryIO, span: tuple[int, int], box_type: bytes, offset: int, size: int
) -> bytes | None:
    """`size` bytes at `offset` into the payload of the `box_type` child of `span`."""
    box = _find_box(handle, *span, box_type)
    if box is None or box[1] - box[0] < offset + size:
        return None
    handle.seek(box[0] + offset)
    data = handle.read(size)
    return data if len(data) == size else None


def _find_box(handle: BinaryIO, start: int, end: int, box_type: bytes) -> tuple[int, int] | None:
    """(payload start, payload end) of the first `box_type` box between start and end."""
    for kind, payload_start, payload_end in _iter_boxes(handle, start, end):
        if kind == box_type:
            return payload_start, payload_end
    return None


def _iter_boxes(handle: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each ISO-BMFF box between start and end."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        header = handle.read(16)
        if len(header) < 8:
            return
        size, kind = int.from_bytes(header[:4], "big"), header[4:8]
        header_size = 8
        if size == 1 and len(header) == 16:
            size, header_size = int.from_bytes(header[8:16], "big"), 16
        elif size == 0:
            size = end - position
        if size < header_size or position + size > end:
            return
        yield kind, position + header_size, position + size
        position += size
