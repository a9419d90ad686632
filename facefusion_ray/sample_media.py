"""Builds the sample target video and source images from pinned photos of real faces."""

import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from filelock import FileLock

from facefusion_ray.assets import fetch_asset
from facefusion_ray.assets.samples import ASTRONAUT_PHOTO, T1_GROUP_PHOTO, TOM_HANKS_PHOTO
from facefusion_ray.errors import MediaError
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.paths import cache_root

logger = logging.getLogger(__name__)

# Bump when the generated media change, so caches holding the old ones are not reused.
SAMPLE_VERSION = 1
WIDTH, HEIGHT, FPS = 1280, 720, 30
GROUP_SHOT_SECONDS, ASTRONAUT_SHOT_SECONDS = 7.0, 3.0
# The frame the README's before/after picture shows: the middle of the astronaut shot, a
# public-domain NASA portrait.
PICTURE_FRAME = round((GROUP_SHOT_SECONDS + ASTRONAUT_SHOT_SECONDS / 2) * FPS)


@dataclass(frozen=True)
class Shot:
    """Camera move over one photo: a 16:9 window eased from `start` to `end` (x, y, width)."""

    photo: np.ndarray
    seconds: float
    start: tuple[float, float, float]
    end: tuple[float, float, float]


@dataclass(frozen=True)
class SampleMedia:
    target_video: Path
    source_tom_hanks: Path
    source_astronaut: Path
    group_photo: Path


def ease(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


def render_shot_frames(shot: Shot, width: int, height: int, fps: int) -> Iterator[np.ndarray]:
    frame_total = round(shot.seconds * fps)
    for index in range(frame_total):
        t = ease(index / max(1, frame_total - 1))
        x, y, window_width = (a + (b - a) * t for a, b in zip(shot.start, shot.end, strict=True))
        # Map the window onto the output with one affine warp: sub-pixel smooth motion.
        scale = width / window_width
        affine = np.array([[scale, 0.0, -x * scale], [0.0, scale, -y * scale]])
        yield cv2.warpAffine(
            shot.photo,
            affine,
            (width, height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )


def sample_shots(group: np.ndarray, astronaut: np.ndarray) -> list[Shot]:
    group_height, group_width = group.shape[:2]
    top = (group_height - group_width * HEIGHT / WIDTH) / 2
    return [
        # The group of six: a slow push-in from the full width towards the right half.
        Shot(group, GROUP_SHOT_SECONDS, (0.0, top, float(group_width)), (300.0, top + 60.0, 900.0)),
        # The astronaut: a drift across the upper part of the photo, where the face is.
        Shot(astronaut, ASTRONAUT_SHOT_SECONDS, (0.0, 0.0, 512.0), (60.0, 20.0, 400.0)),
    ]


def _sample_video_command(seconds: float, output: Path) -> list[str]:
    """ffmpeg reading BGR frames from stdin, with a soft two-tone chord as the audio track (easy
    to recognise in outputs), into H.264 + AAC."""
    audio = f"aevalsrc=0.2*sin(2*PI*220*t)+0.1*sin(2*PI*330*t):s=48000:d={seconds}"
    return [
        ffmpeg_executable(),
        *("-hide_banner", "-loglevel", "error", "-y"),
        *("-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS)),
        *("-i", "pipe:0", "-f", "lavfi", "-i", audio, "-map", "0:v", "-map", "1:a"),
        *("-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(output)),
    ]


def encode_sample_video(shots: list[Shot], output: Path) -> None:
    seconds = sum(shot.seconds for shot in shots)
    temporary = output.with_name(f".{output.stem}.partial-{os.getpid()}{output.suffix}")
    command = _sample_video_command(seconds, temporary)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None
    try:
        for shot in shots:
            for frame in render_shot_frames(shot, WIDTH, HEIGHT, FPS):
                process.stdin.write(frame.tobytes())
        process.stdin.close()
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.wait() != 0:
            raise MediaError(f"could not encode the sample video: {stderr.strip()[-300:]}")
        os.replace(temporary, output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        temporary.unlink(missing_ok=True)


def build_sample_media(destination: Path | None = None) -> SampleMedia:
    """Creates (once) and returns the sample target video and source images."""
    folder = destination or cache_root() / "samples" / f"v{SAMPLE_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    media = SampleMedia(
        target_video=folder / "group_target.mp4",
        source_tom_hanks=folder / "source_tom_hanks.png",
        source_astronaut=folder / "source_astronaut.png",
        group_photo=folder / "group_photo.jpg",
    )
    with FileLock(str(folder / ".build.lock")):
        group_path = fetch_asset(T1_GROUP_PHOTO)
        astronaut_path = fetch_asset(ASTRONAUT_PHOTO)
        if not media.group_photo.exists():
            write_image_atomic(media.group_photo, read_image(group_path))
        if not media.source_tom_hanks.exists():
            write_image_atomic(media.source_tom_hanks, read_image(fetch_asset(TOM_HANKS_PHOTO)))
        astronaut = read_image(astronaut_path)
        if not media.source_astronaut.exists():
            write_image_atomic(media.source_astronaut, astronaut)
        if not media.target_video.exists():
            logger.info("building the sample video %s", media.target_video)
            encode_sample_video(sample_shots(read_image(group_path), astronaut), media.target_video)
    return media
