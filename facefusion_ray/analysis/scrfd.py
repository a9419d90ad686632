"""Face detection with SCRFD-style models (scrfd_2.5g, retinaface_10g), decoded as FaceFusion
3.8.1 decodes both (facefusion/face_detector.py).

The nine outputs are read by position: scores for strides 8, 16, 32, then box distances for
the same strides, then landmark offsets. Each output has one row per anchor, two anchors per
grid cell; distances and offsets are in units of the stride.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facefusion_ray.analysis.detector_geometry import (
    Detections,
    DetectorCanvas,
    anchor_centres,
    checked_input_name,
    detect_at_angles,
    distance_to_box,
    distance_to_landmarks,
    fit_to_detector,
    to_nchw_batch,
)
from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.sessions import ModelSession

STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2
DEFAULT_SIZE = (640, 640)
DEFAULT_SCORE_THRESHOLD = 0.5
# Input value = (pixel - 127.5) / 128, BGR.
PIXEL_MEAN = 127.5
PIXEL_STD = 128.0


class ScrfdDetector:
    """`size` is the network input (width, height); a model with a fixed input size must match.
    `nms_threshold` None uses FaceFusion's threshold for the number of angles (0.4 for one)."""

    def __init__(
        self,
        session: ModelSession,
        size: tuple[int, int] = DEFAULT_SIZE,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float | None = None,
    ) -> None:
        self._session = session
        self._input_name = checked_input_name(session, size)
        if len(session.output_names) != 3 * len(STRIDES):
            raise ValueError(
                f"model {session.name} has {len(session.output_names)} outputs, expected 9"
            )
        self.size = size
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def detect(self, frame_bgr: np.ndarray, angles: Sequence[int] = (0,)) -> list[Face]:
        """Faces in a BGR frame, best score first, in the frame's pixel coordinates."""
        return detect_at_angles(
            frame_bgr, angles, self._detect_upright, self.score_threshold, self.nms_threshold
        )

    def _detect_upright(self, frame_bgr: np.ndarray) -> Detections:
        canvas = fit_to_detector(frame_bgr, self.size)
        blob = to_nchw_batch((canvas.pixels - PIXEL_MEAN) / PIXEL_STD)
        outputs = self._session.run({self._input_name: blob})
        return canvas.to_frame(self.decode(outputs, canvas))

    def decode(self, outputs: Sequence[np.ndarray], canvas: DetectorCanvas) -> Detections:
        """Candidates scoring at least the threshold, in canvas pixels."""
        height, width = canvas.pixels.shape[:2]
        stride_count = len(STRIDES)
        parts = []
        for index, stride in enumerate(STRIDES):
            scores = np.asarray(outputs[index]).reshape(-1)
            selected = np.flatnonzero(scores >= self.score_threshold)
            if selected.size == 0:
                continue
            centres = anchor_centres(height, width, stride, ANCHORS_PER_CELL)[selected]
            box_distances = np.asarray(outputs[index + stride_count]).reshape(-1, 4)
            landmark_offsets = np.asarray(outputs[index + 2 * stride_count]).reshape(-1, 10)
            parts.append(
                Detections(
                    boxes=distance_to_box(centres, box_distances[selected] * stride),
                    scores=scores[selected],
                    landmarks=distance_to_landmarks(centres, landmark_offsets[selected] * stride),
                )
            )
        return Detections.concatenate(parts)
