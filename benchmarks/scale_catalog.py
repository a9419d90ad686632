"""A synthetic catalog for the scale benchmark: short, small clips and source faces, each file
distinct, built from the sample photos so the embedded detector finds a face in every frame.

Clips are 128x128 H.264 with an AAC track: small frames keep the per-frame work (YuNet on a
128x128 canvas, ~1.5 ms, the classic swapper) far below the system's own costs (processes,
object-store requests, scheduling), which are what the benchmark measures.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.media.ffmpeg_tool import ffmpeg_executable
from facefusion_ray.media.images import read_image, write_image_atomic
from facefusion_ray.sample_media import build_sample_media

CLIP_SIZE = 128
SOURCE_SIZE = 128


@dataclass(frozen=True)
class CatalogShape:
    clips: int
    sources: int
    frames: int = 24
    fps: int = 12
    # Width and height of a clip; a lossless clip is MB-sized at 256 (the object-store reads of
    # a real catalog, whose files are larger than the ranged reads of a probe).
    size: int = CLIP_SIZE
    lossless: bool = False

    @property
    def renders(self) -> int:
        return self.clips * self.sources


@dataclass(frozen=True)
class Catalog:
    clips: list[Path]
    sources: list[Path]

    def bytes(self) -> dict[str, int]:
        return {
            "clips": sum(path.stat().st_size for path in self.clips),
            "sources": sum(path.stat().st_size for path in self.sources),
        }


def build_catalog(shape: CatalogShape, folder: Path) -> Catalog:
    """`shape.clips` clips and `shape.sources` source images under `folder`."""
    media = build_sample_media()
    photos = [read_image(media.source_tom_hanks), read_image(media.source_astronaut)]
    faces_folder, clips_folder = folder / "faces", folder / "clips"
    faces_folder.mkdir(parents=True)
    clips_folder.mkdir(parents=True)
    sources = []
    for index in range(shape.sources):
        path = faces_folder / f"face_{index:02d}.png"
        write_image_atomic(path, source_variant(photos[index % 2], index))
        sources.append(path)
    clips = []
    for index in range(shape.clips):
        path = clips_folder / f"clip_{index:05d}.mp4"
        frames = clip_frames(photos[index % 2], index, shape.frames, shape.size)
        encode_clip(frames, shape, path)
        clips.append(path)
    return Catalog(clips, sources)


def source_variant(photo: np.ndarray, index: int) -> np.ndarray:
    """The photo at the source size, mirrored on odd pairs and tinted per index: each source
    image is a distinct file with one face."""
    image = cv2.resize(photo, (SOURCE_SIZE, SOURCE_SIZE), interpolation=cv2.INTER_AREA)
    if (index // 2) % 2:
        image = image[:, ::-1]
    tint = np.array([index * 3 % 17, index * 5 % 13, index * 7 % 11], dtype=np.int16) - 6
    return np.clip(image.astype(np.int16) + tint, 0, 255).astype(np.uint8)


def clip_frames(photo: np.ndarray, index: int, frames: int, size: int) -> Iterator[np.ndarray]:
    """A slow push-in on the photo, its start and pace drawn from the clip's index, plus a
    little noise: every clip's frames differ from every other clip's."""
    rng = np.random.default_rng(index)
    height, width = photo.shape[:2]
    x0, y0 = rng.uniform(0, 0.06) * width, rng.uniform(0, 0.06) * height
    zoom = rng.uniform(0.04, 0.12)
    for frame in range(frames):
        t = frame / max(1, frames - 1)
        window = width * (0.94 - zoom * t)
        scale = size / window
        affine = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
        image = cv2.warpAffine(
            photo, affine, (size, size), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )  # fmt: skip
        noise = rng.integers(-3, 4, image.shape, dtype=np.int16)
        yield np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def encode_clip(frames: Iterator[np.ndarray], shape: CatalogShape, output: Path) -> None:
    seconds = shape.frames / shape.fps
    audio = f"sine=frequency=220:d={seconds}"
    command = [
        ffmpeg_executable(),
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-y"),
        *("-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{shape.size}x{shape.size}"),
        *("-r", str(shape.fps), "-i", "pipe:0", "-f", "lavfi", "-i", audio),
        *("-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast"),
        *(("-qp", "0") if shape.lossless else ("-crf", "23")),
        *("-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k"),
        *("-movflags", "+faststart", str(output)),
    ]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stderr is not None
    for frame in frames:
        process.stdin.write(frame.tobytes())
    process.stdin.close()
    stderr = process.stderr.read().decode(errors="replace")
    if process.wait() != 0:
        raise MediaError(f"could not encode the catalog clip {output.name}: {stderr[-300:]}")
