"""Frame-exact decoding of any frame range, one frame in memory at a time: as delivered (4:2:0
planes or BGR bytes), with a whole-frame BGR view made on first use."""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.media.container_header import ContainerHeader, cached_container_header
from facefusion_ray.media.ffmpeg_tool import FfmpegProcess
from facefusion_ray.media.images import read_image
from facefusion_ray.media.pixel_transfer import PipeFormat, decoding_pipe_format
from facefusion_ray.media.probe import (
    MAIN_VIDEO_STREAM,
    FrameTimestamps,
    MediaInfo,
    read_frame_timestamps,
)
from facefusion_ray.media.process_cpu import DECODE
from facefusion_ray.media.remote_media import (
    QUICK_OPEN_ARGS,
    MediaSource,
    RemoteMedia,
    ffmpeg_input_args,
    hidden_urls,
)
from facefusion_ray.media.video_codecs import NO_HWACCEL, hwaccel_args
from facefusion_ray.media.yuv_colour import BT601, YuvMatrix
from facefusion_ray.storage.errors import TransientStorageError

# ffmpeg's words for a store that failed to answer, not one that refused: a 5xx status (S3
# throttles with 503 SlowDown) or a connection that was refused, dropped or timed out.
_STORE_FAILED_TO_ANSWER = re.compile(
    r"Server returned 5XX|HTTP error 5\d\d|Connection (?:refused|reset by peer|timed out)"
)

# Two microseconds: more than the error of `-ss`'s six decimals and of the stream start times
# ffmpeg prints to six decimals, so the cut keeps the keyframe, and less than half a tick of
# every common time base (1/90000 s and coarser), so the demuxer, rounding the seek point to
# its ticks, lands on the keyframe. A finer time base lands on the keyframe before: pre-roll
# as between keyframes, the same frames.
_KEYFRAME_AIM_SECONDS = 2e-6


@dataclass(frozen=True, eq=False)
class DecodedFrame:
    """A frame as the decoder delivered it: the video's own 4:2:0 planes (I420 layout) where the
    pipe carries them, else BGR bytes. These bytes are never changed: they are what the
    analysis cache fingerprints and what an untouched frame is encoded from."""

    delivered: bytes | bytearray | memoryview
    pixel_format: str
    width: int
    height: int
    # The colour matrix of the planes, for converting the regions that faces touch.
    matrix: YuvMatrix = BT601

    @functools.cached_property
    def pixels(self) -> np.ndarray:
        """The whole frame as BGR, as the analysis reads it, converted on first use. From BGR
        bytes this shares their memory: fingerprint before changing it."""
        pipe = PipeFormat(self.pixel_format, self.width, self.height, self.matrix)
        return pipe.to_bgr(self.delivered)

    def pixels_if_converted(self) -> np.ndarray | None:
        """`pixels` if something has asked for them already, else None (nothing converted)."""
        converted = self.__dict__.get("pixels")
        return converted if isinstance(converted, np.ndarray) else None

    @property
    def planes(self) -> np.ndarray | None:
        """The delivered 4:2:0 planes as one read-only (height * 3 / 2, width) array, or None
        when the frame came as BGR."""
        if self.pixel_format != "yuv420p":
            return None
        planes = np.frombuffer(self.delivered, dtype=np.uint8)
        planes = planes.reshape(self.height * 3 // 2, self.width)
        planes.flags.writeable = False
        return planes

    def fingerprint(self) -> str:
        return delivered_frame_fingerprint(
            self.delivered, self.pixel_format, self.width, self.height
        )


def iter_frames(path: MediaSource, start: int, count: int, info: MediaInfo) -> Iterator[np.ndarray]:
    """Yield frames `start .. start+count-1` of `path` as (height, width, 3) BGR uint8 arrays.

    The range is checked now; ffmpeg starts on the first `next()` and is killed if the
    consumer stops early. MediaError if the file ends before the range does.
    """
    return (frame.pixels for frame in iter_decoded_frames(path, start, count, info))


def iter_decoded_frames(
    path: MediaSource,
    start: int,
    count: int,
    info: MediaInfo,
    hwaccel: str = NO_HWACCEL,
) -> Iterator[DecodedFrame]:
    """`iter_frames` with the decoder's bytes of every frame, for fingerprinting them.

    `hwaccel` decodes on that device (`video_codecs.DECODE_HWACCELS`); the frames come back to
    system memory and are cut to the same range as on the CPU."""
    if start < 0 or count < 0 or start + count > info.frame_count:
        raise ValueError(
            f"frame range {start}..{start + count - 1} is outside the {info.frame_count} frames "
            f"of {path}"
        )
    if info.kind == "image":
        return _image_frames(path, count)
    header = cached_container_header(path)
    pipe = decoding_pipe_format(info.pixel_format, info.width, info.height, info.colour)
    args = _decode_args(path, start, count, info, header, pipe, hwaccel)
    frames = _decoded_frames(args, path, start, count, info, pipe)
    return frames if hwaccel == NO_HWACCEL else _naming_hwaccel(frames, hwaccel)


def _naming_hwaccel(frames: Iterator[DecodedFrame], hwaccel: str) -> Iterator[DecodedFrame]:
    """A failed hardware decode says so: its ffmpeg error alone reads like a damaged file."""
    try:
        yield from frames
    except MediaError as error:
        raise MediaError(f"decode hwaccel {hwaccel}: {error}") from error


def _image_frames(path: MediaSource, count: int) -> Iterator[DecodedFrame]:
    if isinstance(path, RemoteMedia):
        raise MediaError(f"{path} is an image: images are staged, not read by range")
    if count:
        # `info` comes from probe_media, which held the image to the job's pixel limit.
        pixels = np.ascontiguousarray(read_image(path, max_pixels=None))
        height, width = pixels.shape[:2]
        yield DecodedFrame(pixels.data, "bgr24", width, height)


def _decode_args(
    path: MediaSource,
    start: int,
    count: int,
    info: MediaInfo,
    header: ContainerHeader,
    pipe: PipeFormat,
    hwaccel: str = NO_HWACCEL,
) -> list[str]:
    position_args: list[str] = []
    filter_args: list[str] = []
    if header.seeks_accurately:
        # Input seeking decodes from the last keyframe at or before the seek point and drops
        # the frames timed before it.
        if start > 0:
            seek_seconds = header.video_start_offset + _seek_seconds(path, start, info)
            position_args = ["-ss", f"{max(seek_seconds, 0.0):.6f}"]
        # The range also ends by time: when a damaged frame inside it cannot be decoded, the
        # range comes up short (an error) instead of being filled with the frames after it.
        if start + count < info.frame_count:
            end_seconds = header.video_start_offset + _seconds_before_frame(
                path, start + count, info
            )
            position_args += ["-to", f"{end_seconds:.6f}"]
    elif start > 0:
        filter_args = ["-vf", f"trim=start_frame={start}"]  # decode from the start, then count
    # The probe knew the stream already: a chunk of a remote target does not read the file's
    # start again to learn it (a request per chunk).
    open_args = QUICK_OPEN_ARGS if isinstance(path, RemoteMedia) else []
    return [
        "-loglevel", "error",
        *hwaccel_args(hwaccel),
        *open_args,
        *position_args,
        *ffmpeg_input_args(path),
        "-map", MAIN_VIDEO_STREAM,
        *filter_args,
        "-frames:v", str(count),
        "-fps_mode", "passthrough",
        *pipe.conversion_args,
        "-f", "rawvideo",
        "-pix_fmt", pipe.ffmpeg_pixel_format,
        "pipe:1",
    ]  # fmt: skip


def _seek_seconds(path: MediaSource, start: int, info: MediaInfo) -> float:
    """Where a range starting at frame `start` seeks to, in seconds after the first frame.

    Between keyframes: half a frame early, so timestamp rounding neither skips frame `start`
    nor lets frame `start - 1` through. On a keyframe: a hair before its own time, so the
    demuxer lands on it instead of on the keyframe before (half a frame early would decode
    that whole group of pictures only to drop it)."""
    if not _is_keyframe(start, info):
        return _seconds_before_frame(path, start, info)
    assert info.fps is not None
    if info.constant_frame_rate:
        return float(start / info.fps) - _KEYFRAME_AIM_SECONDS
    timestamps = _frame_timestamps(path, info)
    return timestamps.seconds_from_first(float(timestamps.ticks[start])) - _KEYFRAME_AIM_SECONDS


def _is_keyframe(frame: int, info: MediaInfo) -> bool:
    position = bisect.bisect_left(info.keyframes, frame)
    return position < len(info.keyframes) and info.keyframes[position] == frame


def _frame_timestamps(path: MediaSource, info: MediaInfo) -> FrameTimestamps:
    timestamps = read_frame_timestamps(path)
    if len(timestamps.ticks) != info.frame_count:
        raise MediaError(f"video changed since it was probed: {path}")
    return timestamps


def _seconds_before_frame(path: MediaSource, start: int, info: MediaInfo) -> float:
    """Seconds after the first frame's time that lie halfway between frames start-1 and start."""
    assert info.fps is not None
    if info.constant_frame_rate:
        return float((start - Fraction(1, 2)) / info.fps)
    timestamps = _frame_timestamps(path, info)
    halfway = (float(timestamps.ticks[start - 1]) + float(timestamps.ticks[start])) / 2
    return timestamps.seconds_from_first(halfway)


def _decoded_frames(
    args: list[str],
    path: MediaSource,
    start: int,
    count: int,
    info: MediaInfo,
    pipe: PipeFormat,
) -> Iterator[DecodedFrame]:
    frame_bytes = pipe.frame_bytes
    process = FfmpegProcess(args, stdout=subprocess.PIPE, kind=DECODE, hidden=hidden_urls(path))
    try:
        stdout = process.process.stdout
        assert stdout is not None
        for produced in range(count):
            buffer = _read_exactly(stdout, frame_bytes)
            if buffer is None:
                raise _truncated_error(process, path, start, start + produced, count, info)
            yield DecodedFrame(
                buffer, pipe.ffmpeg_pixel_format, pipe.width, pipe.height, pipe.matrix
            )
        if process.wait() != 0:
            raise _decode_failure(
                path,
                f"cannot decode {path} frames {start}..{start + count - 1}: "
                f"{process.failure_reason()}",
            )
    finally:
        process.close()


def _read_exactly(stream: IO[bytes], size: int) -> bytearray | None:
    """Read one whole frame, or None when the stream ends first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        received = stream.readinto(view[filled:])  # type: ignore[attr-defined]
        if not received:
            return None
        filled += received
    return buffer


def _truncated_error(
    process: FfmpegProcess,
    path: MediaSource,
    start: int,
    stopped_at: int,
    count: int,
    info: MediaInfo,
) -> MediaError:
    return_code = process.wait()
    reason = f"; ffmpeg: {process.failure_reason()}" if return_code != 0 else ""
    return _decode_failure(
        path,
        f"truncated video: {path} ended at frame {stopped_at} of {info.frame_count} "
        f"(reading frames {start}..{start + count - 1}){reason}",
    )


def _decode_failure(path: MediaSource, message: str) -> MediaError | TransientStorageError:
    """A transient store error when ffmpeg read `path` by range and the store failed to answer
    (the chunk runs again later), else a media error."""
    if isinstance(path, RemoteMedia) and _STORE_FAILED_TO_ANSWER.search(message):
        return TransientStorageError(message)
    return MediaError(message)


def delivered_frame_fingerprint(
    delivered: bytes | bytearray | memoryview, pixel_format: str, width: int, height: int
) -> str:
    """The cache's frame fingerprint: SHA-256 hex of the pixel format and size, then the bytes
    the decoder delivered. Hashing the 4:2:0 planes reads half the bytes of the BGR frame."""
    digest = hashlib.sha256(f"{pixel_format}:{width}x{height}".encode())
    digest.update(delivered)
    return digest.hexdigest()


def frame_fingerprint(frame: np.ndarray) -> str:
    """SHA-256 hex of a frame's shape and pixel bytes, for comparing frames across runs."""
    pixels = np.ascontiguousarray(frame)
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    digest = hashlib.sha256(f"{height}x{width}x{channels}".encode())
    digest.update(pixels.data)
    return digest.hexdigest()
