"""What ffmpeg's stream summary for `-i FILE` says about a file: formats, start times, the
main video stream, audio, rotation. (There is no ffprobe.)"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from fractions import Fraction

from facefusion_ray.errors import MediaError
from facefusion_ray.media.ffmpeg_tool import FfmpegProcess, meaningful_stderr_line
from facefusion_ray.media.images import ensure_readable_file
from facefusion_ray.media.remote_media import (
    MediaSource,
    PerVersionCache,
    RemoteMedia,
    ffmpeg_input_args,
    hidden_urls,
)
from facefusion_ray.media.remote_media import ffmpeg_input_url as ffmpeg_input_url

# Demuxers whose input seeking (`-ss` before `-i`) lands before the wanted frame, so accurate
# seeking can then drop exactly the frames before it. MPEG-TS/PS seeking can overshoot to a
# later keyframe, so those (and anything unknown) are decoded from the start instead.
_ACCURATE_SEEK_FORMATS = frozenset({"mov", "mp4", "matroska", "webm", "avi", "nut"})

_INPUT_LINE = re.compile(r"^Input #0, (?P<formats>.+?), from '")
_DURATION_LINE = re.compile(r"^\s*Duration: .*?start: (?P<start>-?\d+(?:\.\d+)?)")
_STREAM_LINE = re.compile(r"^\s*Stream #0:\d+\S*: (?P<type>\w+): (?P<details>.*)$")
_STREAM_START = re.compile(r", start (?P<start>-?\d+(?:\.\d+)?)")
_NOMINAL_RATE = re.compile(r", (?P<rate>\d+(?:\.\d+)?) (?:fps|tbr)\b")
_ROTATION = re.compile(r"display ?matrix: rotation of (?P<degrees>-?\d+(?:\.\d+)?) degrees", re.I)


@dataclass(frozen=True)
class ContainerHeader:
    """What ffmpeg's stream summary for `-i FILE` says about a file."""

    formats: tuple[str, ...]
    start_time: float
    video_start_time: float | None
    video_details: str | None
    has_audio: bool
    rotation: int

    @property
    def is_image(self) -> bool:
        return any(name == "image2" or name.endswith("_pipe") for name in self.formats)

    @property
    def seeks_accurately(self) -> bool:
        return any(name in _ACCURATE_SEEK_FORMATS for name in self.formats)

    @property
    def video_start_offset(self) -> float:
        """Seconds from the file's start time (which `-ss` is relative to) to the first frame."""
        if self.video_start_time is None:
            return 0.0
        return self.video_start_time - self.start_time

    @property
    def nominal_frame_rate(self) -> Fraction | None:
        match = _NOMINAL_RATE.search(self.video_details or "")
        return None if match is None else Fraction(match["rate"])


def read_container_header(path: MediaSource) -> ContainerHeader:
    """Parse ffmpeg's stream summary; MediaError if ffmpeg cannot open the file as media.
    Remote media is read by range: the header and index, never the whole object."""
    file_path = path if isinstance(path, RemoteMedia) else ensure_readable_file(path)
    # Without an output ffmpeg always exits non-zero, so only the printed summary counts.
    process = FfmpegProcess(ffmpeg_input_args(file_path), hidden=hidden_urls(file_path))
    try:
        process.wait()
        stderr = process.stderr_text()
    finally:
        process.close()
    header = _parse_header(stderr.splitlines())
    if header is None:
        reason = meaningful_stderr_line(stderr)
        if isinstance(file_path, RemoteMedia):  # a refused or failed request reads the same
            raise MediaError(f"cannot read {file_path} as a video: {reason}")
        raise MediaError(f"not a video or image: {file_path} ({reason})")
    if header.video_details is None:
        raise MediaError(f"not a video or image (no video stream): {file_path}")
    return header


def cached_container_header(path: MediaSource) -> ContainerHeader:
    """`read_container_header`, read once per file version: every chunk of a video needs it."""
    if isinstance(path, RemoteMedia):
        if path.header is not None:
            return path.header
        return REMOTE_HEADERS.get(path, lambda: read_container_header(path))
    file_path = ensure_readable_file(path)
    status = os.stat(file_path)
    return _header_of_version(str(file_path), status.st_size, status.st_mtime_ns)


REMOTE_HEADERS: PerVersionCache[ContainerHeader] = PerVersionCache()


@functools.lru_cache(maxsize=8)
def _header_of_version(path: str, size: int, modified_ns: int) -> ContainerHeader:
    return read_container_header(path)


def _parse_header(lines: list[str]) -> ContainerHeader | None:
    formats: tuple[str, ...] | None = None
    start_time = 0.0
    video_start_time: float | None = None
    video_details: str | None = None
    has_audio = False
    rotation = 0
    in_main_video_stream = False
    for line in lines:
        if formats is None:
            if (input_match := _INPUT_LINE.match(line)) is not None:
                formats = tuple(input_match["formats"].split(","))
            continue
        if (duration_match := _DURATION_LINE.match(line)) is not None:
            start_time = float(duration_match["start"])
        elif (stream_match := _STREAM_LINE.match(line)) is not None:
            stream_type, details = stream_match["type"], stream_match["details"]
            has_audio = has_audio or stream_type == "Audio"
            in_main_video_stream = (
                stream_type == "Video" and video_details is None and not _is_cover_art(details)
            )
            if in_main_video_stream:
                video_details = details
                start_match = _STREAM_START.search(details)
                video_start_time = float(start_match["start"]) if start_match else None
        elif in_main_video_stream and (rotation_match := _ROTATION.search(line)) is not None:
            # The display matrix angle is counter-clockwise; report the clockwise turn a player
            # applies, like the legacy `rotate` tag phones write (portrait video -> 90).
            rotation = round(-float(rotation_match["degrees"])) % 360
    if formats is None:
        return None
    return ContainerHeader(
        formats, start_time, video_start_time, video_details, has_audio, rotation
    )


def _is_cover_art(stream_details: str) -> bool:
    return "(attached pic)" in stream_details or "thumbnail" in stream_details
