"""Reading and atomically writing still images with OpenCV (BGR uint8)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.errors import MediaError
from facefusion_ray.media.pixel_limit import DEFAULT_MAX_PIXELS, check_image_file


def ensure_readable_file(path: str | os.PathLike[str]) -> Path:
    """Return `path` as a Path, or raise MediaError saying why it cannot be read as a file."""
    file_path = Path(path)
    if not file_path.exists():
        raise MediaError(f"file not found: {file_path}")
    if file_path.is_dir():
        raise MediaError(f"is a directory, not a video or image: {file_path}")
    if not file_path.is_file():
        raise MediaError(f"not a regular file: {file_path}")
    try:
        with file_path.open("rb") as handle:
            is_empty = handle.read(1) == b""
    except OSError as error:
        raise MediaError(f"cannot read {file_path}: {error.strerror or error}") from error
    if is_empty:
        raise MediaError(f"empty file, not a video or image: {file_path}")
    return file_path


def partial_path(target: Path) -> Path:
    """A unique hidden temporary name beside `target` (same folder, so os.replace is atomic).

    The real suffix stays last because ffmpeg and OpenCV pick the format from it.
    """
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.stem}.partial-{token}{target.suffix}")


def decode_image_file(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray | None:
    """The image as BGR uint8, or None when OpenCV cannot decode the (readable) file. An image
    whose header claims more than `max_pixels` (None: no limit) is refused before decoding."""
    file_path = ensure_readable_file(path)
    check_image_file(file_path, max_pixels)
    try:
        data = np.frombuffer(file_path.read_bytes(), dtype=np.uint8)
    except OSError as error:
        raise MediaError(f"cannot read {file_path}: {error.strerror or error}") from error
    # imdecode instead of imread: imread cannot open non-ASCII paths on every platform.
    try:
        return cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as error:
        raise MediaError(f"cannot decode image {file_path}: {_opencv_reason(error)}") from None


def read_image(
    path: str | os.PathLike[str], max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read an image file as a BGR uint8 array of shape (height, width, 3)."""
    image = decode_image_file(path, max_pixels)
    if image is None:
        raise MediaError(f"not an image: {path}")
    return image


def _opencv_reason(error: cv2.error) -> str:
    """OpenCV's message without its source location and 'error:' prefixes, on one line."""
    text = " ".join(str(error).split())
    if "CV_IO_MAX_IMAGE_PIXELS" in text:
        return "its header claims more pixels than OpenCV decodes"
    return text.rsplit("error:", 1)[-1].strip() or "OpenCV cannot decode it"


def write_image_atomic(
    path: str | os.PathLike[str], image: np.ndarray, params: Sequence[int] = ()
) -> None:
    """Encode `image` in the format named by the suffix of `path` and publish it atomically.

    Readers see either the previous file or the complete new one, never a partial write.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    try:
        ok, encoded = cv2.imencode(suffix, image, list(params))
    except cv2.error as error:
        raise MediaError(f"cannot encode image as '{suffix}': {target}") from error
    if not ok:
        raise MediaError(f"cannot encode image as '{suffix}': {target}")
    temporary = partial_path(target)
    try:
        temporary.write_bytes(encoded.tobytes())
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise MediaError(f"cannot write image {target}: {error.strerror or error}") from error
