"""One frame of a render beside the same frame of its target: the picture a README shows."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from facefusion_ray.comparison.frames import iter_selected_frames
from facefusion_ray.media.images import write_image_atomic

LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
GAP_PIXELS = 4
JPEG_QUALITY = 85


def write_before_after(
    target: str | os.PathLike[str],
    output: str | os.PathLike[str],
    frame_index: int,
    destination: Path,
    height: int = 360,
) -> Path:
    """Frame `frame_index` of `target` (left, "before") and of `output` (right, "after"), each
    scaled to `height` rows, written as one JPEG; MediaError if either lacks the frame."""
    panels = []
    for video, label in ((target, "before"), (output, "after")):
        [(_, frame)] = list(iter_selected_frames(video, [frame_index]))
        panels.append(_labelled(_scaled(frame, height), label))
    gap = np.full((height, GAP_PIXELS, 3), 255, dtype=np.uint8)
    picture = np.hstack([panels[0], gap, panels[1]])
    write_image_atomic(destination, picture, (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
    return destination


def _scaled(frame: np.ndarray, height: int) -> np.ndarray:
    width = round(frame.shape[1] * height / frame.shape[0])
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def _labelled(panel: np.ndarray, label: str) -> np.ndarray:
    scale = panel.shape[0] / 480
    origin = (round(12 * scale), panel.shape[0] - round(14 * scale))
    thickness = max(1, round(2 * scale))
    for colour, extra in (((0, 0, 0), 3), ((255, 255, 255), 0)):
        cv2.putText(panel, label, origin, LABEL_FONT, scale, colour, thickness + extra, cv2.LINE_AA)
    return panel
