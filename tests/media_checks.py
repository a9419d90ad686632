"""Helpers for tests that compare rendered videos with their inputs."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facefusion_ray.media import iter_frames, probe_media


def decoded_frames(path: Path) -> Iterator[np.ndarray]:
    info = probe_media(path)
    return iter_frames(path, 0, info.frame_count, info)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
