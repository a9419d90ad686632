"""A render's analysers and processors, built from its model plan and its sessions.

Detector decoders, recognizer embedders and swapper types are found in registries keyed by a
field of the model's manifest entry (`decoder`, `embedder`, `model_type`), never by its id: a
model registered `--like` another gets the same one. A new family of models is one module,
one line in a registry here and one manifest entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import numpy as np

from facefusion_ray.analysis.arcface import ArcFaceRecognizer
from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.landmark_68 import Fan68Landmarker
from facefusion_ray.analysis.protocols import FaceDetector, FaceEmbedder
from facefusion_ray.analysis.scrfd import ScrfdDetector
from facefusion_ray.analysis.sface import SFaceRecognizer
from facefusion_ray.analysis.yoloface import YoloFaceDetector
from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.errors import SettingsError
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.inference.sessions import ModelSession
from facefusion_ray.pipeline.model_plan import ModelPlan, Role
from facefusion_ray.pipeline.sources import SourceIdentity
from facefusion_ray.processors.classic_swap import ClassicSwapper
from facefusion_ray.processors.enhancer import FaceEnhancer
from facefusion_ray.processors.neural_swap import NeuralSwapper
from facefusion_ray.processors.occlusion import OcclusionMasker
from facefusion_ray.processors.paste_back import Region
from facefusion_ray.processors.swapper import FaceSwapper
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import ModelSpec

DetectorFactory = Callable[[ModelSession, ModelSpec, SwapSettings], FaceDetector]
EmbedderFactory = Callable[[ModelSession], FaceEmbedder]
SwapperFactory = Callable[[ModelPlan, SwapSettings, SessionFactory, SourceIdentity], FaceSwapper]


def detector_sizes(spec: ModelSpec) -> tuple[tuple[int, int], ...]:
    """The (width, height) inputs a detector takes: its manifest `sizes` as squares (FaceFusion's
    --face-detector-size choices), else only its own size."""
    sides = spec.parameters.get("sizes")
    if isinstance(sides, tuple) and sides:
        return tuple((int(side), int(side)) for side in sides)
    return (spec.size,)


def checked_detector_size(settings: SwapSettings, spec: ModelSpec) -> tuple[int, int]:
    size = settings.face_detector_canvas
    allowed = detector_sizes(spec)
    if size not in allowed:
        choices = ", ".join(f"{width}x{height}" for width, height in allowed)
        raise SettingsError(
            f"face detector size {size[0]}x{size[1]} is not one of {spec.model_id}'s: {choices}"
        )
    return size


def _yunet(session: ModelSession, spec: ModelSpec, settings: SwapSettings) -> FaceDetector:
    return YuNetDetector(
        session,
        score_threshold=settings.face_detector_score,
        size=checked_detector_size(settings, spec),
        frame_aspect=settings.face_detector_frame_aspect,
    )


def _scrfd(session: ModelSession, spec: ModelSpec, settings: SwapSettings) -> FaceDetector:
    size = checked_detector_size(settings, spec)
    return ScrfdDetector(session, size=size, score_threshold=settings.face_detector_score)


def _yoloface(session: ModelSession, spec: ModelSpec, settings: SwapSettings) -> FaceDetector:
    size = checked_detector_size(settings, spec)
    return YoloFaceDetector(session, size=size, score_threshold=settings.face_detector_score)


def _neural_swapper(
    plan: ModelPlan, settings: SwapSettings, sessions: SessionFactory, source: SourceIdentity
) -> FaceSwapper:
    if source.embedding is None:
        raise ValueError("a neural swapper needs the source identity's embedding")
    swapper = plan.require(Role.SWAPPER)
    converter = plan.get(Role.EMBEDDING_CONVERTER)
    occluder = plan.get(Role.OCCLUDER)
    return NeuralSwapper(
        sessions.get(swapper.model_id),
        swapper.spec,
        source.embedding,
        embedding_converter=None if converter is None else sessions.get(converter.model_id),
        occluder=None
        if occluder is None
        else OcclusionMasker(sessions.get(occluder.model_id), occluder.spec),
        mask_blur=settings.face_mask_blur,
        mask_padding=settings.face_mask_padding,
    )


# Manifest field -> its registry. Each registry maps that field's value to a builder.
DETECTOR_DECODERS: dict[str, DetectorFactory] = {
    "yunet": _yunet,
    "scrfd": _scrfd,
    "yoloface": _yoloface,
}
RECOGNIZER_EMBEDDERS: dict[str, EmbedderFactory] = {
    "sface": SFaceRecognizer,
    "arcface": ArcFaceRecognizer,
}
SWAPPER_TYPES: dict[str, SwapperFactory] = {
    "inswapper": _neural_swapper,
    "hyperswap": _neural_swapper,
    "simswap": _neural_swapper,
}

_T = TypeVar("_T")


def registered(registry: Mapping[str, _T], spec: ModelSpec, field: str) -> _T:
    """The registry's entry named by the `field` parameter of `spec`'s manifest entry."""
    name = spec.parameters.get(field)
    entry = registry.get(str(name)) if name is not None else None
    if entry is None:
        raise SettingsError(
            f"model {spec.model_id}: its manifest entry's {field} is {name!r}, "
            f"not one of {', '.join(sorted(registry))}"
        )
    return entry


class FaceAnalyser:
    """Detection at the render's angles, then (when planned) 68-point landmark refinement."""

    def __init__(
        self,
        detector: FaceDetector,
        angles: Sequence[int],
        landmarker: Fan68Landmarker | None,
    ) -> None:
        self._detector = detector
        self._angles = tuple(angles)
        self._landmarker = landmarker

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        faces = self._detector.detect(frame_bgr, self._angles)
        if self._landmarker is not None:
            faces = [self._landmarker.refine(frame_bgr, face) for face in faces]
        return faces


def load_detector(
    plan: ModelPlan, settings: SwapSettings, sessions: SessionFactory
) -> FaceDetector:
    detector = plan.require(Role.DETECTOR)
    build = registered(DETECTOR_DECODERS, detector.spec, "decoder")
    return build(sessions.get(detector.model_id), detector.spec, settings)


def load_analyser(
    plan: ModelPlan, settings: SwapSettings, sessions: SessionFactory
) -> FaceAnalyser:
    landmarker = None
    planned_landmarker = plan.get(Role.LANDMARKER)
    if planned_landmarker is not None:
        estimator = plan.get(Role.LANDMARK_ESTIMATOR)
        landmarker = Fan68Landmarker(
            sessions.get(planned_landmarker.model_id),
            None if estimator is None else sessions.get(estimator.model_id),
            score_threshold=settings.face_landmarker_score,
        )
    return FaceAnalyser(
        load_detector(plan, settings, sessions), settings.face_detector_angles, landmarker
    )


def load_recognizer(spec: ModelSpec, sessions: SessionFactory) -> FaceEmbedder:
    return registered(RECOGNIZER_EMBEDDERS, spec, "embedder")(sessions.get(spec.model_id))


class ClassicBatchSwapper:
    """The classic swapper behind the batch interface the neural swappers have."""

    def __init__(self, swapper: ClassicSwapper) -> None:
        self._swapper = swapper

    def swap_batch(self, frame: np.ndarray, faces: list[Face]) -> list[Region]:
        return [self._swapper.swap(frame, face) for face in faces]

    def reach(self, face: Face, frame_shape: tuple[int, ...]) -> Region:
        return self._swapper.reach(face, frame_shape)


def build_swapper(
    plan: ModelPlan, settings: SwapSettings, sessions: SessionFactory, source: SourceIdentity
) -> FaceSwapper:
    swapper = plan.get(Role.SWAPPER)
    if swapper is None:
        if source.aligned is None:
            raise ValueError("the classic swapper needs an aligned source face")
        return ClassicBatchSwapper(
            ClassicSwapper(source.aligned, feather=settings.face_mask_feather)
        )
    build = registered(SWAPPER_TYPES, swapper.spec, "model_type")
    return build(plan, settings, sessions, source)


def build_enhancer(
    plan: ModelPlan, settings: SwapSettings, sessions: SessionFactory
) -> FaceEnhancer | None:
    """The enhancer runs on the swapped faces only, after the swap (FaceFusion's order)."""
    enhancer = plan.get(Role.ENHANCER)
    if enhancer is None:
        return None
    return FaceEnhancer(
        sessions.get(enhancer.model_id),
        enhancer.spec,
        blend=settings.face_enhancer_blend,
        mask_blur=settings.face_mask_blur,
    )
