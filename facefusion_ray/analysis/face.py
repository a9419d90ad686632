"""A detected face: where it is, how sure the detector is, and optionally who it is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """bbox: float32 (4,) x1, y1, x2, y2 in frame pixels. landmarks_5: float32 (5, 2) in frame
    pixels, ordered [right eye, left eye, nose tip, right mouth corner, left mouth corner]
    (YuNet's and ArcFace's order; "right" is the subject's right, on the image's left).
    embedding: the recognizer's raw vector; normed_embedding: the same with unit L2 norm."""

    bbox: np.ndarray
    score: float
    landmarks_5: np.ndarray
    embedding: np.ndarray | None = None
    normed_embedding: np.ndarray | None = None
