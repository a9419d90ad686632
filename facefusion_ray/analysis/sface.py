"""Face embeddings with SFace, fed exactly as OpenCV's FaceRecognizerSF feeds it.

The face is warped onto the arcface_112_v2 template (least-squares similarity of the 5
landmarks, bilinear, black border) and given to the network as RGB float32 NCHW in 0..255;
the network normalises internally.
"""

from __future__ import annotations

import cv2
import numpy as np

from facefusion_ray.analysis.templates import estimate_similarity
from facefusion_ray.inference.sessions import ModelSession

SFACE_TEMPLATE = "arcface_112_v2"
SFACE_CROP_SIZE = (112, 112)


class SFaceRecognizer:
    def __init__(self, session: ModelSession) -> None:
        self._session = session
        self._input_name = session.input_names[0]

    def align(self, frame_bgr: np.ndarray, landmarks_5: np.ndarray) -> np.ndarray:
        """The 112x112 BGR face crop the network sees."""
        matrix = estimate_similarity(landmarks_5, SFACE_TEMPLATE, SFACE_CROP_SIZE)
        return cv2.warpAffine(frame_bgr, matrix, SFACE_CROP_SIZE, flags=cv2.INTER_LINEAR)

    def embed(
        self, frame_bgr: np.ndarray, landmarks_5: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(raw (128,), L2-normalised (128,)) float32 embedding of the face at `landmarks_5`."""
        crop = self.align(frame_bgr, landmarks_5)
        blob = crop[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        raw = self._session.run({self._input_name: blob})[0].reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(raw))
        normed = raw / norm if norm > 0 else raw.copy()
        return raw, normed
