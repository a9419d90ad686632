"""Per-frame work shared by the Ray actors and the single-process path: detect, swap, paste."""

from dataclasses import dataclass, replace

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.identities import nearest_person
from facefusion_ray.analysis.protocols import FaceEmbedder
from facefusion_ray.analysis.select import select_faces
from facefusion_ray.inference.session_factory import ModelUsage, SessionFactory
from facefusion_ray.media.yuv_colour import Box
from facefusion_ray.pipeline.model_loading import (
    FaceAnalyser,
    build_enhancer,
    build_swapper,
    load_analyser,
    load_recognizer,
)
from facefusion_ray.pipeline.model_plan import ModelPlan, Role
from facefusion_ray.pipeline.sources import IdentityMap, SourceIdentity
from facefusion_ray.pipeline.stage_clock import StageClock
from facefusion_ray.processors.debug_overlay import draw_debug_overlay
from facefusion_ray.settings import SwapSettings


@dataclass(frozen=True)
class FrameOutcome:
    faces_detected: int
    faces_swapped: int
    swapped: tuple[Face, ...] = ()


def with_embeddings(frame: np.ndarray, faces: list[Face], recognizer: FaceEmbedder) -> list[Face]:
    embedded = []
    for face in faces:
        raw, normed = recognizer.embed(frame, face.landmarks_5)
        embedded.append(replace(face, embedding=raw, normed_embedding=normed))
    return embedded


class FrameAnalyser:
    """What a frame's analysis runs: detection and, when the selector needs them, embeddings.

    The models are opened on first use, so a job served from the analysis cache never loads
    them.
    """

    def __init__(
        self, settings: SwapSettings, plan: ModelPlan, sessions: SessionFactory, clock: StageClock
    ) -> None:
        self._settings = settings
        self._plan = plan
        self._sessions = sessions
        self._clock = clock
        self._detector: FaceAnalyser | None = None
        self._recognizer: FaceEmbedder | None = None

    def analyse(self, frame: np.ndarray) -> list[Face]:
        if self._detector is None:
            self._detector = load_analyser(self._plan, self._settings, self._sessions)
        with self._clock.measure("detect"):
            faces = self._detector.detect(frame)
        recognizer = self._plan.get(Role.TARGET_RECOGNIZER)
        if recognizer is not None and faces:
            if self._recognizer is None:
                self._recognizer = load_recognizer(recognizer.spec, self._sessions)
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
        plan: ModelPlan,
        source: SourceIdentity,
        clock: StageClock,
        sessions: SessionFactory,
        reference_embedding: np.ndarray | None = None,
        identity_map: IdentityMap | None = None,
    ) -> None:
        # Pipelines of several renders in one actor share its sessions (one copy of each model).
        self._sessions = sessions
        self._analysis = FrameAnalyser(settings, plan, sessions, clock)
        self._selection = settings.face_selector
        self._reference_embedding = reference_embedding
        self._swapper = build_swapper(plan, settings, sessions, source)
        self._enhancer = build_enhancer(plan, settings, sessions)
        self._identity_map = identity_map
        self._person_swappers = (
            [build_swapper(plan, settings, sessions, person) for person in identity_map.sources]
            if identity_map is not None
            else []
        )
        self._clock = clock
        self._debug_overlay = settings.debug_overlay

    def process(self, frame: np.ndarray) -> FrameOutcome:
        return self.apply(frame, self.analyse(frame))

    def analyse(self, frame: np.ndarray) -> list[Face]:
        return self._analysis.analyse(frame)

    def choose(self, faces: list[Face]) -> list[Face]:
        """The analysed faces the selector picks for swapping."""
        return select_faces(faces, self._selection, self._reference_embedding)

    def reach(
        self, faces: list[Face], chosen: list[Face], frame_shape: tuple[int, ...]
    ) -> list[Box] | None:
        """The frame rectangles `apply` reads and writes for these faces (None: anywhere in
        the frame, when the debug overlay draws on it)."""
        if self._debug_overlay and faces:
            return None
        regions = [self._swapper.reach(face, frame_shape) for face in chosen]
        if self._enhancer is not None:
            regions += [self._enhancer.reach(face, frame_shape) for face in chosen]
        return [(region.x0, region.y0, region.x1, region.y1) for region in regions]

    def apply(
        self, frame: np.ndarray, faces: list[Face], chosen: list[Face] | None = None
    ) -> FrameOutcome:
        """Swap the chosen faces (by default those the selector picks among the analysed
        `faces`) into `frame` in place."""
        if chosen is None:
            chosen = self.choose(faces)
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
