"""Per-frame work shared by the Ray actors and the single-process path: detect, swap, paste."""

from dataclasses import dataclass

import numpy as np

from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.engine.stage_clock import StageClock
from facefusion_ray.errors import SettingsError
from facefusion_ray.models.execution import ExecutionConfig
from facefusion_ray.models.manifest import get_model_spec
from facefusion_ray.models.session_factory import ModelUsage, SessionFactory
from facefusion_ray.models.store import resolve_model_path
from facefusion_ray.processors.classic_swap import AlignedSource, ClassicSwapper
from facefusion_ray.settings import SwapSettings


@dataclass(frozen=True)
class FrameOutcome:
    faces_detected: int
    faces_swapped: int


def fp16_variant_of(model_id: str) -> str | None:
    return "fp16" if "fp16" in get_model_spec(model_id).variants else None


def open_session_factory(execution: ExecutionConfig) -> SessionFactory:
    """Sessions open lazily, on the execution device the configuration asks for."""
    return SessionFactory(execution, resolve_model_path, fp16_variant_of)


def load_detector(settings: SwapSettings, sessions: SessionFactory) -> YuNetDetector:
    if settings.face_detector_model != "yunet":
        raise SettingsError(f"unknown face detector model: {settings.face_detector_model}")
    return YuNetDetector(sessions.get("yunet"), score_threshold=settings.face_detector_score)


class FramePipeline:
    """Holds the sessions for its whole life; `process` rewrites a frame in place."""

    def __init__(self, settings: SwapSettings, source: AlignedSource, clock: StageClock) -> None:
        self._sessions = open_session_factory(settings.execution)
        self._detector = load_detector(settings, self._sessions)
        self._swapper = ClassicSwapper(source, feather=settings.face_mask_feather)
        self._clock = clock

    def process(self, frame: np.ndarray) -> FrameOutcome:
        with self._clock.measure("detect"):
            faces = self._detector.detect(frame)
        with self._clock.measure("swap"):
            for face in faces:
                self._swapper.swap(frame, face)
        return FrameOutcome(faces_detected=len(faces), faces_swapped=len(faces))

    def model_calls(self) -> dict[str, ModelUsage]:
        return self._sessions.stats()
