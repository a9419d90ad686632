"""What the pipeline needs of a face detector and a face embedder, whichever model is behind."""

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from facefusion_ray.analysis.face import Face


class FaceDetector(Protocol):
    """A detector model's decoder: faces of a frame, also looked for turned by `angles`."""

    def detect(self, frame_bgr: np.ndarray, angles: Sequence[int] = (0,)) -> list[Face]: ...


class FaceFinder(Protocol):
    """Every face of a frame, as a render's analysis finds them (angles and landmarks set)."""

    def detect(self, frame_bgr: np.ndarray) -> list[Face]: ...


class FaceEmbedder(Protocol):
    def embed(
        self, frame_bgr: np.ndarray, landmarks_5: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...
