"""Which cached analysis a job may reuse: the key over the models and options that shape it."""

from facefusion_ray.analysis.yunet import DEFAULT_NMS_THRESHOLD
from facefusion_ray.cache import AnalysisSettings
from facefusion_ray.errors import ModelError
from facefusion_ray.pipeline.frame_pipeline import RECOGNIZER
from facefusion_ray.pipeline.model_loading import job_manifest
from facefusion_ray.settings import SwapSettings
from facefusion_ray.zoo.model_store import ModelStore


def pinned_sha256(store: ModelStore, model_id: str) -> str:
    status = store.status(model_id, check_hashes=False)
    if status.pinned_sha256 is None:
        raise ModelError(f"model {model_id} has no pinned sha256 yet: pull it first")
    return status.pinned_sha256


def analysis_settings(settings: SwapSettings) -> AnalysisSettings:
    """Detector (and recognizer when faces are embedded) by hash, with the detection options."""
    store = ModelStore(settings.model_store, manifest=job_manifest(settings))
    detector = settings.face_detector_model
    embedded = settings.face_selector.needs_embeddings
    landmarker = settings.face_landmarker_model
    return AnalysisSettings(
        detector_id=detector,
        detector_sha256=pinned_sha256(store, detector),
        detector_size=store.manifest.model(detector).size,
        score_threshold=settings.face_detector_score,
        nms_threshold=DEFAULT_NMS_THRESHOLD,
        angles=settings.face_detector_angles,
        landmarker_id=landmarker,
        landmarker_sha256=pinned_sha256(store, landmarker) if landmarker else None,
        recognizer_id=RECOGNIZER if embedded else None,
        recognizer_sha256=pinned_sha256(store, RECOGNIZER) if embedded else None,
    )
