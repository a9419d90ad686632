"""Per-frame work shared by the Ray actors and the single-process path: detect, swap, paste."""

from dataclasses import dataclass, replace

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.identities import nearest_person
from facefusion_ray.analysis.select import select_faces
from facefusion_ray.analysis.sface import SFaceRecognizer
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.inference.session_factory import ModelUsage, SessionFactory
from facefusion_ray.pipeline.model_loading import (
    FaceAnalyser,
    load_analyser,
    model_spec,
    open_model_sessions,
)
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.processors.classic_swap import ClassicSwapper
from facefusion_ray.processors.debug_overlay import draw_debug_overlay
from facefusion_ray.processors.enhancer import FaceEnhancer
from facefusion_ray.processors.neural_swap import NeuralSwapper
from facefusion_ray.processors.occlusion import OcclusionMasker
from facefusion_ray.processors.paste_back import Region
from facefusion_ray.settings import SwapSettings


@dataclass(frozen=True)
class FrameOutcome:
    faces_detected: int
    faces_swapped: int
    swapped: tuple[Face, ...] = ()


def open_session_factory(
    execution: ExecutionConfig, settings: SwapSettings | None = None
) -> SessionFactory:
    """Sessions of the job's models (default store and manifest when no settings are given)."""
    return open_model_sessions(settings or SwapSettings(), execution)


# The recognizer that embeds target faces for the reference selector.
RECOGNIZER = "sface"


def load_recognizer(sessions: SessionFactory) -> SFaceRecognizer:
    return SFaceRecognizer(sessions.get(RECOGNIZER))


def with_embeddings(
    frame: np.ndarray, faces: list[Face], recognizer: SFaceRecognizer
) -> list[Face]:
    embedded = []
    for face in faces:
        raw, normed = recognizer.embed(frame, face.landmarks_5)
        embedded.append(replace(face, embedding=raw, normed_embedding=normed))
    return embedded


class ClassicBatchSwapper:
    """The classic swapper behind the batch interface the neural swappers have."""

    def __init__(self, swapper: ClassicSwapper) -> None:
        self._swapper = swapper

    def swap_batch(self, frame: np.ndarray, faces: list[Face]) -> list[Region]:
        return [self._swapper.swap(frame, face) for face in faces]


def build_swapper(
    settings: SwapSettings, sessions: SessionFactory, source: SourceIdentity
) -> ClassicBatchSwapper | NeuralSwapper:
    if settings.uses_classic_swapper:
        if source.aligned is None:
            raise ValueError("the classic swapper needs an aligned source face")
        return ClassicBatchSwapper(
            ClassicSwapper(source.aligned, feather=settings.face_mask_feather)
        )
    if source.embedding is None:
        raise ValueError("a neural swapper needs the source identity's embedding")
    spec = model_spec(settings, settings.face_swapper_model, "swapper")
    converter = None
    if spec.parameters.get("model_type") == "simswap":
        converter = sessions.get("crossface_simswap")
    occluder = None
    if settings.face_occluder_model is not None:
        occluder_spec = model_spec(settings, settings.face_occluder_model, "occluder")
        occluder = OcclusionMasker(sessions.get(occluder_spec.model_id), occluder_spec)
    return NeuralSwapper(
        sessions.get(spec.model_id),
        spec,
        source.embedding,
        embedding_converter=converter,
        occluder=occluder,
        mask_blur=settings.face_mask_blur,
        mask_padding=settings.face_mask_padding,
    )


def build_enhancer(settings: SwapSettings, sessions: SessionFactory) -> FaceEnhancer | None:
    """The enhancer runs on the swapped faces only, after the swap (FaceFusion's order)."""
    if settings.face_enhancer_model is None:
        return None
    spec = model_spec(settings, settings.face_enhancer_model, "enhancer")
    return FaceEnhancer(
        sessions.get(spec.model_id),
        spec,
        blend=settings.face_enhancer_blend,
        mask_blur=settings.face_mask_blur,
    )


class FrameAnalyser:
    """What a frame's analysis runs: detection and, when the selector needs them, embeddings.

    The models are opened on first use, so a job served from the analysis cache never loads
    them.
    """

    def __init__(self, settings: SwapSettings, sessions: SessionFactory, clock: StageClock) -> None:
        self._settings = settings
        self._sessions = sessions
        self._clock = clock
        self._detector: FaceAnalyser | None = None
        self._recognizer: SFaceRecognizer | None = None

    def analyse(self, frame: np.ndarray) -> list[Face]:
        if self._detector is None:
            self._detector = load_analyser(self._settings, self._sessions)
        with self._clock.measure("detect"):
            faces = self._detector.detect(frame)
        if self._settings.face_selector.needs_embeddings and faces:
            if self._recognizer is None:
                self._recognizer = load_recognizer(self._sessions)
            with self._clock.measure("embed"):
                faces = with_embeddings(frame, faces, self._recognizer)
        return faces


class FramePipeline:
    """Holds the sessions for its whole life; `process` (= `apply(analyse(frame))`) rewrites a
    frame in place.

    `reference_embedding` is the normed embedding of the reference face, needed (only) in
    the `reference` selector mode; the recognizer is loaded only then.
    """

    def __init__(
        self,
        settings: SwapSettings,
        source: SourceIdentity,
        clock: StageClock,
        reference_embedding: np.ndarray | None = None,
        identity_map: IdentityMap | None = None,
        sessions: SessionFactory | None = None,
    ) -> None:
        self._settings = settings
        # Pipelines of several renders in one actor share its sessions (one copy of each model).
        self._sessions = (
            sessions if sessions is not None else open_model_sessions(settings, settings.execution)
        )
        self._analysis = FrameAnalyser(settings, self._sessions, clock)
        self._selection = settings.face_selector
        self._reference_embedding = reference_embedding
        self._swapper = build_swapper(settings, self._sessions, source)
        self._enhancer = build_enhancer(settings, self._sessions)
        self._identity_map = identity_map
        self._person_swappers = (
            [build_swapper(settings, self._sessions, person) for person in identity_map.sources]
            if identity_map is not None
            else []
        )
        self._clock = clock
        self._debug_overlay = settings.debug_overlay

    def process(self, frame: np.ndarray) -> FrameOutcome:
        return self.apply(frame, self.analyse(frame))

    def analyse(self, frame: np.ndarray) -> list[Face]:
        return self._analysis.analyse(frame)

    def apply(self, frame: np.ndarray, faces: list[Face]) -> FrameOutcome:
        """Select among analysed faces and swap them into `frame` in place."""
        chosen = select_faces(faces, self._selection, self._reference_embedding)
        if self._identity_map is not None:
            chosen = self._swap_mapped_people(frame, chosen)
        elif chosen:
            with self._clock.measure("swap"):
                self._swapper.swap_batch(frame, chosen)
        if self._enhancer is not None and chosen:
            with self._clock.measure("enhance"):
                self._enhancer.enhance_batch(frame, chosen)
        if self._debug_overlay:
            draw_debug_overlay(frame, faces, chosen)
        return FrameOutcome(len(faces), len(chosen), tuple(chosen))

    def _swap_mapped_people(self, frame: np.ndarray, faces: list[Face]) -> list[Face]:
        """Each face that is one of the mapped people gets that person's source."""
        assert self._identity_map is not None
        threshold = self._selection.reference_face_distance
        by_person: dict[int, list[Face]] = {}
        for face in faces:
            if face.normed_embedding is None:
                raise ValueError("the identity map needs an embedding for every face")
            person = nearest_person(face.normed_embedding, self._identity_map.centroids, threshold)
            if person is not None:
                by_person.setdefault(person, []).append(face)
        with self._clock.measure("swap"):
            for person, person_faces in sorted(by_person.items()):
                self._person_swappers[person].swap_batch(frame, person_faces)
        return [face for person_faces in by_person.values() for face in person_faces]

    def model_calls(self) -> dict[str, ModelUsage]:
        return self._sessions.stats()
