"""Per-frame face analysis cached as Parquet in an object store, keyed by content."""

from facefusion_ray.cache.keys import AnalysisSettings, video_fingerprint
from facefusion_ray.cache.schema import SCHEMA_VERSION, FrameAnalysis
from facefusion_ray.cache.store import AnalysisCache

__all__ = [
    "SCHEMA_VERSION",
    "AnalysisCache",
    "AnalysisSettings",
    "FrameAnalysis",
    "video_fingerprint",
]
