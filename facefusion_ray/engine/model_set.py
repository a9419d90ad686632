"""The models of one job: which manifest and store the actors read, and how each is built."""

from pathlib import Path

from facefusion_ray.analysis.scrfd import ScrfdDetector
from facefusion_ray.analysis.yoloface import YoloFaceDetector
from facefusion_ray.analysis.yunet import YuNetDetector
from facefusion_ray.errors import SettingsError
from facefusion_ray.models.execution import ExecutionConfig
from facefusion_ray.models.manifest import Manifest, ModelSpec, load_manifest
from facefusion_ray.models.session_factory import SessionFactory
from facefusion_ray.models.store import ModelStore
from facefusion_ray.settings import SwapSettings

Detector = YuNetDetector | ScrfdDetector | YoloFaceDetector
SCRFD_DECODED = ("scrfd", "retinaface")


def job_manifest(settings: SwapSettings) -> Manifest:
    path = None if settings.manifest_path is None else Path(settings.manifest_path)
    return load_manifest(path)


def open_model_sessions(settings: SwapSettings, execution: ExecutionConfig) -> SessionFactory:
    """Sessions open lazily from the job's store, on the device `execution` asks for."""
    manifest = job_manifest(settings)
    store = ModelStore(settings.model_store, manifest=manifest)

    def fp16_variant_of(model_id: str) -> str | None:
        return "fp16" if "fp16" in manifest.model(model_id).variants else None

    return SessionFactory(execution, store.local_path, fp16_variant_of)


def model_spec(settings: SwapSettings, model_id: str, kind: str) -> ModelSpec:
    spec = job_manifest(settings).model(model_id)
    if spec.kind != kind:
        raise SettingsError(f"model {model_id} is a {spec.kind}, not a {kind}")
    return spec


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
