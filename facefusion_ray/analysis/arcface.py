"""Face embeddings with FaceFusion's ArcFace export (arcface_w600k_r50), fed as FaceFusion feeds it.

The face is warped onto the arcface_112_v2 template at 112x112 (least-squares similarity of the
5 landmarks, replicated border) and given to the network as RGB float32 NCHW scaled to [-1, 1].
"""

from __future__ import annotations

import cv2
import numpy as np

from facefusion_ray.analysis.templates import estimate_similarity
from facefusion_ray.inference.sessions import ModelSession

ARCFACE_TEMPLATE = "arcface_112_v2"
ARCFACE_CROP_SIZE = (112, 112)
ARCFACE_PIXEL_CENTRE = 127.5


class ArcFaceRecognizer:
    def __init__(self, session: ModelSession) -> None:
        self._session = session
        self._input_name = session.input_names[0]

    def align(self, frame_bgr: np.ndarray, landmarks_5: np.ndarray) -> np.ndarray:
        """The 112x112 BGR face crop the network sees."""
        matrix = estimate_similarity(landmarks_5, ARCFACE_TEMPLATE, ARCFACE_CROP_SIZE)
        return cv2.warpAffine(
            frame_bgr,
            matrix,
            ARCFACE_CROP_SIZE,
            flags=cv2.INTER_AREA,
            borderMode=cv2.BORDER_REPLICATE,
        )

    def embed(
        self, frame_bgr: np.ndarray, landmarks_5: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(raw (512,), L2-normalised (512,)) float32 embedding of the face at `landmarks_5`."""
        crop = self.align(frame_bgr, landmarks_5).astype(np.float32)
        scaled = crop / ARCFACE_PIXEL_CENTRE - 1.0
        blob = np.ascontiguousarray(scaled[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
        raw = self._session.run({self._input_name: blob})[0].reshape(-1).astype(np.float32)
        norm = float(np.linalg.norm(raw))
        normed = raw / norm if norm > 0 else raw.copy()
        return raw, normed
