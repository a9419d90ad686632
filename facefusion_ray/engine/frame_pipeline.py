"""Per-frame work shared by the Ray actors and the single-process path: detect, swap, paste."""

from dataclasses import dataclass, replace

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.select import select_faces
from facefusion_ray.analysis.sface import SFaceRecognizer
from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.engine.stage_clock import StageClock
from facefusion_ray.errors import SettingsError
from facefusion_ray.models.execution import ExecutionConfig
from facefusion_ray.models.manifest import get_model_spec
from facefusion_ray.models.session_factory import ModelUsage, SessionFactory
from facefusion_ray.models.store import resolve_model_path
from facefusion_ray.processors.classic_swap import AlignedSource, ClassicSwapper
from facefusion_ray.processors.debug_overlay import draw_debug_overlay
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


def load_recognizer(sessions: SessionFactory) -> SFaceRecognizer:
    return SFaceRecognizer(sessions.get("sface"))


def with_embeddings(
    frame: np.ndarray, faces: list[Face], recognizer: SFaceRecognizer
) -> list[Face]:
    embedded = []
    for face in faces:
        raw, normed = recognizer.embed(frame, face.landmarks_5)
        embedded.append(replace(face, embedding=raw, normed_embedding=normed))
    return embedded


class FramePipeline:
    """Holds the sessions for its whole life; `process` rewrites a frame in place.

    `reference_embedding` is the normed embedding of the reference face, needed (only) in
    the `reference` selector mode; the recognizer is loaded only then.
    """

    def __init__(
        self,
        settings: SwapSettings,
        source: AlignedSource,
        clock: StageClock,
        reference_embedding: np.ndarray | None = None,
    ) -> None:
        self._sessions = open_session_factory(settings.execution)
        self._detector = load_detector(settings, self._sessions)
        self._selection = settings.face_selector
        self._reference_embedding = reference_embedding
        self._recognizer = (
            load_recognizer(self._sessions) if self._selection.needs_embeddings else None
        )
        self._swapper = ClassicSwapper(source, feather=settings.face_mask_feather)
        self._clock = clock
        self._debug_overlay = settings.debug_overlay

    def process(self, frame: np.ndarray) -> FrameOutcome:
        with self._clock.measure("detect"):
            faces = self._detector.detect(frame)
        if self._recognizer is not None and faces:
            with self._clock.measure("embed"):
                faces = with_embeddings(frame, faces, self._recognizer)
        chosen = select_faces(faces, self._selection, self._reference_embedding)
        with self._clock.measure("swap"):
            for face in chosen:
                self._swapper.swap(frame, face)
        if self._debug_overlay:
            draw_debug_overlay(frame, faces, chosen)
        return FrameOutcome(faces_detected=len(faces), faces_swapped=len(chosen))

    def model_calls(self) -> dict[str, ModelUsage]:
        return self._sessions.stats()
