"""Helpers for tests that compare rendered videos with their inputs."""

import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from facefusion_ray.media import iter_frames, probe_media


def decoded_frames(path: Path) -> Iterator[np.ndarray]:
    info = probe_media(path)
    return iter_frames(path, 0, info.frame_count, info)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def frames_decoded(command: Sequence[str]) -> int:
    """How many frames the decoder of a media-layer ffmpeg `command` decodes, those it drops
    before the range included: the command run again with ffmpeg's stream statistics."""
    command = list(command)
    command[command.index("-loglevel") + 1] = "verbose"
    completed = subprocess.run(command, capture_output=True, check=True)
    counts = re.findall(rb"(\d+) frames decoded", completed.stderr)
    assert len(counts) == 1, completed.stderr.decode(errors="replace")[-2000:]
    return int(counts[0])
