"""Exact facts about a video or image: display size, frame count and rational frame rate.

There is no ffprobe, so facts come from two ffmpeg runs: the stream summary ffmpeg prints for
`-i FILE` (format, audio, rotation, start times) and a `framecrc` listing of the main video
stream's packets (time base, size, codec, one line per packet) for the count and timing.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from array import array
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.media.colour_tags import ColourTags, parse_colour_tags
from facefusion_ray.media.container_header import (
    ContainerHeader,
    cached_container_header,
    read_container_header,
)
from facefusion_ray.media.ffmpeg_tool import FfmpegProcess, meaningful_stderr_line
from facefusion_ray.media.images import decode_image_file, ensure_readable_file
from facefusion_ray.media.pixel_limit import DEFAULT_MAX_PIXELS, check_pixels, video_header_size
from facefusion_ray.media.remote_media import (
    MediaSource,
    PerVersionCache,
    RemoteMedia,
    hidden_urls,
    packet_scan_input_args,
)

MediaKind = Literal["video", "image"]

# The main video stream, as `-map` sees it: upper-case V skips cover art and thumbnails.
MAIN_VIDEO_STREAM = "0:V:0"

_AV_PKT_FLAG_KEY = 0x1
_AV_PKT_FLAG_DISCARD = 0x4
_NO_TIMESTAMP = -(2**63)
_RATE_TOLERANCE_FLOOR = 1e-4
# Decoding aims half a frame before a frame's grid time, so a quarter frame of jitter is safe.
_CONSTANT_RATE_SLACK = 0.25


@dataclass(frozen=True)
class MediaInfo:
    """Facts about one video or image.

    width/height are the display size: ffmpeg applies the rotation metadata when decoding, so
    decoded frames have exactly this shape. rotation is the clockwise turn a player applies to
    the stored frames (0/90/180/270, like the legacy `rotate` tag). fps is exact (None for
    images) and duration is frame_count / fps.
    """

    path: str
    kind: MediaKind
    width: int
    height: int
    fps: Fraction | None
    frame_count: int
    duration: float
    has_audio: bool
    rotation: int
    video_codec: str
    # False when frame timestamps stray from the fps grid by over a quarter frame, so frame i
    # is not at i/fps and decoding must seek by the real timestamps.
    constant_frame_rate: bool = True
    # ffmpeg's name of the decoded pixel format, e.g. "yuv420p" or "yuvj420p"; "" if unknown.
    pixel_format: str = ""
    # Colour matrix, primaries, transfer and range as the file tags them ("" where it does not).
    colour: ColourTags = field(default_factory=ColourTags)
    # Display indices of the keyframes a decode can start at, landing on the frame itself
    # (`decode` aims at its exact time: on the fps grid, or its timestamp where the rate is
    # not constant). () when there is nothing to plan around: unknown, or every frame is one.
    keyframes: tuple[int, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready fields; fps is an exact rational string such as "30000/1001" or "30/1"."""
        return {
            "path": self.path,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else f"{self.fps.numerator}/{self.fps.denominator}",
            "frame_count": self.frame_count,
            "duration": self.duration,
            "has_audio": self.has_audio,
            "rotation": self.rotation,
            "video_codec": self.video_codec,
            "constant_frame_rate": self.constant_frame_rate,
            "pixel_format": self.pixel_format,
            "color_space": self.colour.space,
            "color_primaries": self.colour.primaries,
            "color_trc": self.colour.transfer,
            "color_range": self.colour.range,
            "keyframes": list(self.keyframes),
        }


@dataclass
class _PacketTiming:
    time_base: Fraction = Fraction(1)
    width: int = 0
    height: int = 0
    codec: str = ""
    count: int = 0
    timestamps: array[int] = field(default_factory=lambda: array("q"))
    durations: Counter[int] = field(default_factory=Counter)
    key_count: int = 0
    key_timestamps: array[int] = field(default_factory=lambda: array("q"))

    def add_packet(self, pts: int, duration: int, key: bool) -> None:
        self.count += 1
        if pts != _NO_TIMESTAMP:
            self.timestamps.append(pts)
            if key:
                self.key_timestamps.append(pts)
        self.key_count += key
        if duration > 0:
            self.durations[duration] += 1

    def presentation_times(self) -> np.ndarray | None:
        """Every frame's timestamp in display order, or None unless all frames have one."""
        if self.count == 0 or len(self.timestamps) != self.count:
            return None
        return np.sort(np.frombuffer(self.timestamps, dtype=np.int64))


@dataclass(frozen=True)
class FrameTimestamps:
    """Each frame's presentation time, in display order, in ticks of `time_base`."""

    time_base: Fraction
    ticks: np.ndarray

    def seconds_from_first(self, ticks: float) -> float:
        return float((ticks - float(self.ticks[0])) * self.time_base)


def probe_media(path: MediaSource, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> MediaInfo:
    """Probe a video or image file; MediaError for anything that is not readable media, or
    whose header claims more than `max_pixels` pixels per frame (None: no limit).

    Remote media (a video read by range) costs its header, its index and, where the index
    does not list the packets' timing (MPEG-TS), a read of the whole stream."""
    remote = isinstance(path, RemoteMedia)
    header = cached_container_header(path) if remote else read_container_header(path)
    if header.is_image:
        return _probe_image(path, header, max_pixels)
    if max_pixels is None:
        return _probe_video(path, header)
    size = video_header_size(header.video_details or "")
    if size is not None:
        check_pixels(*size, max_pixels, media_name(path))
    info = _probe_video(path, header)  # reads packets, never decodes a frame
    check_pixels(info.width, info.height, max_pixels, media_name(path))  # a summary without size
    return info


def media_name(path: MediaSource) -> str:
    """How messages and MediaInfo name the input: its path, or a remote input's location."""
    return str(path) if isinstance(path, RemoteMedia) else os.fspath(path)


def _probe_image(path: MediaSource, header: ContainerHeader, max_pixels: int | None) -> MediaInfo:
    if isinstance(path, RemoteMedia):
        raise MediaError(f"{path} is an image: images are staged, not read by range")
    image = decode_image_file(path, max_pixels)
    if image is None:
        raise MediaError(f"unsupported or corrupt image: {path}")
    height, width = image.shape[:2]
    codec_match = re.match(r"(\w+)", header.video_details or "")
    return MediaInfo(
        path=os.fspath(path),
        kind="image",
        width=width,
        height=height,
        fps=None,
        frame_count=1,
        duration=0.0,
        has_audio=False,
        rotation=0,
        video_codec=codec_match[1] if codec_match else "",
    )


def _probe_video(path: MediaSource, header: ContainerHeader) -> MediaInfo:
    timing = _read_packet_timing(path)
    if timing.count == 0:
        raise MediaError(f"video has no frames: {path}")
    fps = frame_rate_from_timing(timing, _nominal_rate(header))
    if fps is None:
        raise MediaError(f"cannot determine the frame rate of: {path}")
    width, height = timing.width, timing.height
    constant_rate = _is_constant_rate(timing, fps)
    if header.rotation % 180 == 90:
        width, height = height, width  # ffmpeg autorotates decoded frames
    return MediaInfo(
        path=media_name(path),
        kind="video",
        width=width,
        height=height,
        fps=fps,
        frame_count=timing.count,
        duration=float(timing.count / fps),
        has_audio=header.has_audio,
        rotation=header.rotation,
        video_codec=timing.codec,
        constant_frame_rate=constant_rate,
        pixel_format=_pixel_format(header.video_details or ""),
        colour=parse_colour_tags(header.video_details or ""),
        keyframes=_keyframes(timing, fps, constant_rate),
    )


def _keyframes(timing: _PacketTiming, fps: Fraction, constant_rate: bool) -> tuple[int, ...]:
    """The display indices of the keyframes a decode lands on exactly (`MediaInfo.keyframes`).
    At a constant rate decoding aims at a frame's place on the fps grid, so a keyframe whose
    timestamp is off the grid (Matroska's rounded milliseconds) is left out: a chunk starting
    there decodes from the keyframe before, as any chunk does that starts between keyframes."""
    times = timing.presentation_times()
    if times is None or timing.key_count in (0, timing.count):
        return ()
    indices = np.searchsorted(times, np.frombuffer(timing.key_timestamps, dtype=np.int64))
    first = int(times[0])
    keyframes = sorted(set(int(index) for index in indices))
    if constant_rate:
        frame_ticks = 1 / (fps * timing.time_base)
        keyframes = [k for k in keyframes if int(times[k]) - first == k * frame_ticks]
    return tuple(keyframes)


def _pixel_format(video_details: str) -> str:
    """The pixel format in a stream summary such as 'h264 (High), yuv420p(tv, bt709), 1280x720'."""
    for part in re.split(r",\s*(?![^()]*\))", video_details):
        name = part.split("(", 1)[0].strip()
        if re.fullmatch(r"(yuv|yuvj|nv|gray|rgb|bgr|gbr|p0)\w*", name):
            return name
    return ""


def _is_constant_rate(timing: _PacketTiming, fps: Fraction) -> bool:
    times = timing.presentation_times()
    if times is None or len(times) < 2:
        return True  # nothing to contradict the grid
    frame_ticks = float(1 / (fps * timing.time_base))
    grid = times[0] + np.arange(len(times), dtype=np.float64) * frame_ticks
    return bool(np.abs(times - grid).max() <= _CONSTANT_RATE_SLACK * frame_ticks)


def read_frame_timestamps(path: MediaSource) -> FrameTimestamps:
    """Every frame's timestamp, via one packet scan cached per file version in this process."""
    if isinstance(path, RemoteMedia):
        return _REMOTE_TIMESTAMPS.get(path, lambda: _frame_timestamps(path))
    file_path = ensure_readable_file(path)
    status = file_path.stat()
    return _cached_frame_timestamps(str(file_path.resolve()), status.st_size, status.st_mtime_ns)


_REMOTE_TIMESTAMPS: PerVersionCache[FrameTimestamps] = PerVersionCache()


@functools.lru_cache(maxsize=8)
def _cached_frame_timestamps(path: str, size: int, modified_ns: int) -> FrameTimestamps:
    return _frame_timestamps(path)


def _frame_timestamps(path: MediaSource) -> FrameTimestamps:
    timing = _read_packet_timing(path)
    times = timing.presentation_times()
    if times is None:
        raise MediaError(f"video frames lack timestamps: {path}")
    return FrameTimestamps(timing.time_base, times)


def _nominal_rate(header: ContainerHeader) -> Fraction | None:
    rate = header.nominal_frame_rate
    return None if rate is None or rate <= 0 else snap_frame_rate(rate, 1e-3)


def _read_packet_timing(path: MediaSource) -> _PacketTiming:
    """Count the main video stream's packets by stream-copying them into a framecrc listing."""
    args = ["-loglevel", "error", *packet_scan_input_args(path), "-map", MAIN_VIDEO_STREAM]
    args += ["-c", "copy", "-f", "framecrc", "pipe:1"]
    process = FfmpegProcess(args, stdout=subprocess.PIPE, hidden=hidden_urls(path))
    timing = _PacketTiming()
    try:
        assert process.process.stdout is not None
        for raw_line in process.process.stdout:
            _apply_framecrc_line(timing, raw_line.decode("ascii", errors="replace"))
        return_code = process.wait()
        stderr = process.stderr_text()
    finally:
        process.close()
    if return_code != 0:
        raise MediaError(f"cannot read video {path}: {meaningful_stderr_line(stderr)}")
    if "partial file" in stderr:
        raise MediaError(f"truncated video: {path} (its data ends before its index says)")
    return timing


def _apply_framecrc_line(timing: _PacketTiming, line: str) -> None:
    if line.startswith("#tb 0:"):
        timing.time_base = Fraction(line.split(":", 1)[1].strip())
    elif line.startswith("#dimensions 0:"):
        width, height = line.split(":", 1)[1].strip().split("x")
        timing.width, timing.height = int(width), int(height)
    elif line.startswith("#codec_id 0:"):
        timing.codec = line.split(":", 1)[1].strip()
    elif line.startswith("0,"):
        # stream, dts, pts, duration, size, checksum[, F=flags][, S=side data...]
        fields = [field.strip() for field in line.split(",")]
        # framecrc writes the flags only when they differ from a plain keyframe's.
        flags = next((int(f[2:], 16) for f in fields[6:] if f.startswith("F=")), _AV_PKT_FLAG_KEY)
        if flags & _AV_PKT_FLAG_DISCARD:
            return  # dropped by an edit list: demuxed but never shown
        key = bool(flags & _AV_PKT_FLAG_KEY)
        timing.add_packet(pts=int(fields[2]), duration=int(fields[3]), key=key)


def frame_rate_from_timing(
    timing: _PacketTiming, nominal_rate: Fraction | None = None
) -> Fraction | None:
    """Exact frame rate from packet timestamps, or None without usable timestamps.

    When every frame lasts the same whole number of ticks the rate is exact (1/30000 and 1001
    ticks -> 30000/1001). Coarse time bases (Matroska's milliseconds) round each timestamp, so
    the average rate only narrows it down: the container's nominal rate wins when it agrees,
    else the nearest standard rate, else a close rational.
    """
    typical_duration = timing.durations.most_common(1)[0][0] if timing.durations else None
    if len(timing.timestamps) >= 2:
        span = max(timing.timestamps) - min(timing.timestamps)
        if span > 0:
            intervals = len(timing.timestamps) - 1
            if typical_duration is not None and span == typical_duration * intervals:
                return 1 / (typical_duration * timing.time_base)
            measured = intervals / (span * timing.time_base)
            # Each end of the span may be off by up to one tick of rounding.
            return snap_frame_rate(measured, 2 / span + _RATE_TOLERANCE_FLOOR, nominal_rate)
    if typical_duration is not None:
        measured = 1 / (typical_duration * timing.time_base)
        tolerance = 1 / typical_duration + _RATE_TOLERANCE_FLOOR
        return snap_frame_rate(measured, tolerance, nominal_rate)
    return nominal_rate


def snap_frame_rate(
    measured: Fraction, relative_tolerance: float, preferred: Fraction | None = None
) -> Fraction:
    """`preferred`, else the nearest integer or NTSC (k*1000/1001) rate, if within tolerance.

    Falls back to a close rational with a denominator of at most 1001.
    """
    candidates = [
        Fraction(round(measured)),
        Fraction(round(measured * Fraction(1001, 1000)) * 1000, 1001),
    ]
    candidates = [candidate for candidate in candidates if candidate > 0]
    nearest = min(candidates, key=lambda candidate: abs(candidate - measured), default=None)
    for candidate in (preferred, nearest):
        if candidate is not None and abs(candidate - measured) <= measured * Fraction(
            relative_tolerance
        ):
            return candidate
    return measured.limit_denominator(1001)
