"""Per-frame face analysis: detection, landmarks and identity embeddings."""

from facefusion_ray.analysis.face import Face
from facefusion_ray.analysis.sface import SFaceRecognizer
from facefusion_ray.analysis.templates import WARP_TEMPLATES, estimate_similarity
from facefusion_ray.analysis.yunet import YuNetDetector

__all__ = ["WARP_TEMPLATES", "Face", "SFaceRecognizer", "YuNetDetector", "estimate_similarity"]
