"""Face detection with YOLOv8n-face (yoloface_8n), decoded as FaceFusion 3.8.1 decodes it
(facefusion/face_detector.py).

The single output [1, 20, candidates] holds per candidate: box centre x, y, width, height,
score, then five landmarks as (x, y, visibility), all in input pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facefusion_ray.analysis.detector_geometry import (
    Detections,
    checked_input_name,
    detect_at_angles,
    fit_to_detector,
    to_nchw_batch,
)
from facefusion_ray.analysis.face import Face
from facefusion_ray.inference.sessions import ModelSession

DEFAULT_SIZE = (640, 640)
DEFAULT_SCORE_THRESHOLD = 0.5
# Input value = pixel / 255, BGR.
PIXEL_SCALE = 1 / 255.0
VALUES_PER_CANDIDATE = 20
_SCORE_COLUMN = 4
_LANDMARK_COLUMNS = slice(5, 20)


class YoloFaceDetector:
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
        blob = to_nchw_batch(canvas.pixels * PIXEL_SCALE)
        output = self._session.run({self._input_name: blob})[0]
        return canvas.to_frame(self.decode(output))

    def decode(self, output: np.ndarray) -> Detections:
        """Candidates scoring above the threshold (strictly, as FaceFusion), in input pixels."""
        rows = np.asarray(output, np.float32).reshape(VALUES_PER_CANDIDATE, -1).T
        selected = rows[rows[:, _SCORE_COLUMN] > self.score_threshold]
        centres, sizes = selected[:, 0:2], selected[:, 2:4]
        landmarks = selected[:, _LANDMARK_COLUMNS].reshape(-1, 5, 3)[:, :, :2]
        return Detections(
            boxes=np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1),
            scores=selected[:, _SCORE_COLUMN],
            landmarks=np.ascontiguousarray(landmarks),
        )
