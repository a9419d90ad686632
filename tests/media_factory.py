"""Tiny synthetic videos for tests, generated with the bundled ffmpeg's lavfi sources."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from facefusion_ray.media import ffmpeg_executable

INDEX_BITS = 8
INDEX_BLOCK_WIDTH = 20
INDEXED_SIZE = (INDEX_BITS * INDEX_BLOCK_WIDTH, 48)  # width, height


def run_ffmpeg_cli(*args: str) -> str:
    """Run the bundled ffmpeg; return its stderr, failing the test helper loudly on error."""
    completed = subprocess.run(
        [ffmpeg_executable(), "-nostdin", "-hide_banner", "-y", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    stderr = completed.stderr.decode("utf-8", errors="replace")
    if completed.returncode != 0:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {stderr[-2000:]}")
    return stderr


def make_clip(
    path: Path,
    *,
    frames: int,
    rate: str = "30",
    size: str = "160x90",
    audio: bool = True,
    video_args: tuple[str, ...] = ("-c:v", "libx264", "-pix_fmt", "yuv420p"),
    audio_args: tuple[str, ...] = ("-c:a", "aac"),
    before_video_input: tuple[str, ...] = (),
    pattern: str = "testsrc2",
) -> Path:
    """A test-pattern clip of exactly `frames` frames, with a sine tone as long as the video.

    testsrc2 rounds sizes down to even numbers; use pattern="testsrc" for odd sizes.
    """
    seconds = frames / _rate_value(rate) + 0.5
    args = ["-loglevel", "error", *before_video_input]
    args += ["-f", "lavfi", "-i", f"{pattern}=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    args += ["-map", "0:v", "-frames:v", str(frames), *video_args]
    if audio:
        args += ["-map", "1:a", *audio_args, "-shortest"]
    run_ffmpeg_cli(*args, str(path))
    return path


def make_indexed_clip(
    path: Path,
    *,
    frames: int,
    rate: str = "25",
    video_args: tuple[str, ...] = ("-c:v", "libx264", "-qp", "0"),
    audio: bool = False,
    before_video_input: tuple[str, ...] = (),
    extra_filter: str = "",
) -> Path:
    """A clip whose frame i shows i in binary as 8 black/white blocks (see `frame_index`).

    `extra_filter` is appended to the source's filter chain (e.g. a setpts for odd timing).
    """
    width, height = INDEXED_SIZE
    bits = f"bitand(N\\,pow(2\\,floor(X/{INDEX_BLOCK_WIDTH})))"
    source = (
        f"color=c=black:size={width}x{height}:rate={rate},format=yuv444p,"
        f"geq=lum='if({bits}\\,235\\,16)':cb=128:cr=128"
    )
    if extra_filter:
        source += f",{extra_filter}"
    args = ["-loglevel", "error", *before_video_input, "-f", "lavfi", "-i", source]
    if audio:
        seconds = frames / _rate_value(rate) + 0.5
        args += ["-f", "lavfi", "-i", f"sine=duration={seconds}", "-map", "0:v", "-map", "1:a"]
    args += ["-frames:v", str(frames), *video_args]
    run_ffmpeg_cli(*args, str(path))
    return path


def frame_index(frame: np.ndarray) -> int:
    """Read back the number `make_indexed_clip` drew into a frame."""
    middle_row = frame[frame.shape[0] // 2]
    return sum(
        1 << bit
        for bit in range(INDEX_BITS)
        if middle_row[bit * INDEX_BLOCK_WIDTH + INDEX_BLOCK_WIDTH // 2].mean() > 128
    )


def stream_summary(path: Path) -> str:
    """ffmpeg's `-i` stream listing of a file (ffmpeg exits 1 without an output; ignored)."""
    completed = subprocess.run(
        [ffmpeg_executable(), "-nostdin", "-hide_banner", "-i", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    return completed.stderr.decode("utf-8", errors="replace")


def container_summary_facts(path: Path) -> tuple[float, str]:
    """(Duration in seconds, "NN fps" of the first video stream) as ffmpeg's `-i` reports them.

    These come from the container's own timestamps, so they catch broken DTS that exact
    frame counting and PTS-based probing would not.
    """
    summary = stream_summary(path)
    duration = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", summary)
    rate = re.search(r"Video: .*?, ([\d.]+ fps)", summary)
    assert duration is not None and rate is not None, summary
    hours, minutes, seconds = duration.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds), rate[1]


def _rate_value(rate: str) -> float:
    numerator, _, denominator = rate.partition("/")
    return float(numerator) / float(denominator or 1)
