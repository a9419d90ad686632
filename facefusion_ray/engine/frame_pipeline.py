"""Per-frame work shared by the Ray actors and the single-process path: detect, swap, paste."""

from dataclasses import dataclass

import numpy as np

from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.engine.stage_clock import StageClock
from facefusion_ray.errors import SettingsError
from facefusion_ray.models.sessions import ModelSession
from facefusion_ray.models.store import resolve_model_path
from facefusion_ray.processors.classic_swap import AlignedSource, ClassicSwapper
from facefusion_ray.settings import SwapSettings


@dataclass(frozen=True)
class FrameOutcome:
    faces_detected: int
    faces_swapped: int


def load_detector(settings: SwapSettings) -> tuple[YuNetDetector, ModelSession]:
    if settings.face_detector_model != "yunet":
        raise SettingsError(f"unknown face detector model: {settings.face_detector_model}")
    session = ModelSession(
        resolve_model_path("yunet"), name="yunet", intra_op_threads=settings.threads_per_worker
    )
    return YuNetDetector(session, score_threshold=settings.face_detector_score), session


class FramePipeline:
    """Holds the sessions for its whole life; `process` rewrites a frame in place."""

    def __init__(self, settings: SwapSettings, source: AlignedSource, clock: StageClock) -> None:
        self._detector, self._detector_session = load_detector(settings)
        self._swapper = ClassicSwapper(source, feather=settings.face_mask_feather)
        self._clock = clock

    def process(self, frame: np.ndarray) -> FrameOutcome:
        with self._clock.measure("detect"):
            faces = self._detector.detect(frame)
        with self._clock.measure("swap"):
            for face in faces:
                self._swapper.swap(frame, face)
        return FrameOutcome(faces_detected=len(faces), faces_swapped=len(faces))

    def model_calls(self) -> dict[str, dict[str, float]]:
        return self._detector_session.stats()
