"""The models of one job: which manifest and store the actors read, and how each is built."""

from pathlib import Path

import numpy as np

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.landmark_68 import Fan68Landmarker
from facefusion_ray.analysis.scrfd import ScrfdDetector
from facefusion_ray.analysis.yoloface import YoloFaceDetector
from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.errors import SettingsError
from facefusion_ray.inference.execution import ExecutionConfig
from facefusion_ray.inference.session_factory import SessionFactory
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.manifest import Manifest, ModelSpec, load_manifest
from facefusion_ray.zoo.model_store import ModelStore

Detector = YuNetDetector | ScrfdDetector | YoloFaceDetector
# FaceFusion estimates 68 points from 5 with this model to know a face's angle for 2DFAN4.
FAN_68_FROM_5 = "fan_68_5"
SCRFD_DECODED = ("scrfd", "retinaface")


def job_manifest(settings: SwapSettings) -> Manifest:
    """The job's manifest with the private models registered in the job's store."""
    path = None if settings.manifest_path is None else Path(settings.manifest_path)
    return ModelStore(settings.model_store, manifest=load_manifest(path)).manifest


def open_model_sessions(settings: SwapSettings, execution: ExecutionConfig) -> SessionFactory:
    """Sessions open lazily from the job's store, on the device `execution` asks for."""
    manifest = job_manifest(settings)
    store = ModelStore(settings.model_store, manifest=manifest)

    def fp16_variant_of(model_id: str) -> str | None:
        return "fp16" if "fp16" in manifest.model(model_id).variants else None

    return SessionFactory(execution, store.local_path, fp16_variant_of)


class SessionsPerStore:
    """One lazy session factory per (model store, manifest) on one device: the renders a
    process serves share each model's session."""

    def __init__(self, execution: ExecutionConfig) -> None:
        self._execution = execution
        self._factories: dict[tuple[str | None, str | None], SessionFactory] = {}

    def sessions_for(self, settings: SwapSettings) -> SessionFactory:
        key = (settings.model_store, settings.manifest_path)
        if key not in self._factories:
            self._factories[key] = open_model_sessions(settings, self._execution)
        return self._factories[key]


def model_spec(settings: SwapSettings, model_id: str, kind: str) -> ModelSpec:
    spec = job_manifest(settings).model(model_id)
    if spec.kind != kind:
        raise SettingsError(f"model {model_id} is a {spec.kind}, not a {kind}")
    return spec


class FaceAnalyser:
    """Detection at the job's angles, then (when configured) 68-point landmark refinement."""

    def __init__(
        self,
        detector: Detector,
        angles: tuple[int, ...],
        landmarker: Fan68Landmarker | None,
    ) -> None:
        self._detector = detector
        self._angles = angles
        self._landmarker = landmarker

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        faces = self._detector.detect(frame_bgr, self._angles)
        if self._landmarker is not None:
            faces = [self._landmarker.refine(frame_bgr, face) for face in faces]
        return faces


def load_analyser(settings: SwapSettings, sessions: SessionFactory) -> FaceAnalyser:
    landmarker = None
    if settings.face_landmarker_model is not None:
        model_spec(settings, settings.face_landmarker_model, "landmarker")
        estimator = (
            sessions.get(FAN_68_FROM_5) if FAN_68_FROM_5 in job_manifest(settings).models else None
        )
        landmarker = Fan68Landmarker(
            sessions.get(settings.face_landmarker_model),
            estimator,
            score_threshold=settings.face_landmarker_score,
        )
    return FaceAnalyser(
        load_detector(settings, sessions), settings.face_detector_angles, landmarker
    )


def load_detector(settings: SwapSettings, sessions: SessionFactory) -> Detector:
    model_id = settings.face_detector_model
    spec = model_spec(settings, model_id, "detector")
    session = sessions.get(model_id)
    score = settings.face_detector_score
    if model_id == "yunet":
        return YuNetDetector(session, score_threshold=score)
    if model_id.startswith(SCRFD_DECODED):
        return ScrfdDetector(session, size=spec.size, score_threshold=score)
    if model_id.startswith("yoloface"):
        return YoloFaceDetector(session, size=spec.size, score_threshold=score)
    raise SettingsError(f"no decoder for face detector model {model_id}")


def check_models_exist(settings: SwapSettings) -> None:
    """Fail in the driver, before any actor starts, when a named model is not in the manifest."""
    model_spec(settings, settings.face_detector_model, "detector")
    if not settings.uses_classic_swapper:
        model_spec(settings, settings.face_swapper_model, "swapper")
    if settings.face_enhancer_model is not None:
        model_spec(settings, settings.face_enhancer_model, "enhancer")
    if settings.face_landmarker_model is not None:
        model_spec(settings, settings.face_landmarker_model, "landmarker")
    if settings.face_occluder_model is not None:
        model_spec(settings, settings.face_occluder_model, "occluder")
